"""The layout issue 19 set: rooms by concern, short command bodies, no giant modules, few modules at the
top."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "fndcli"
ROOMS = {"cli", "kernels", "bench", "init", "backprop", "runs", "report", "reproduce", "history", "bisect"}


def _commands():
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command"
                for d in node.decorator_list
            ):
                yield path.name, node


def test_every_room_is_a_package_and_the_top_holds_only_what_they_share():
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms == ROOMS
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert len(top) <= 10, top


GENERATED = {"gemm.py", "peak.py"}  # fndcli/kernels/*_source.py writes them (make regen)


def test_the_generated_kernels_are_marked_generated_and_left_to_their_generator():
    attributes = (PACKAGE.parent / ".gitattributes").read_text()
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    for name in GENERATED:
        assert f"fndcli/kernels/{name} linguist-generated=true" in attributes
        assert f'"fndcli/kernels/{name}"' in pyproject  # ruff's extend-exclude: its generator formats it
        assert (PACKAGE / "kernels" / name.replace(".py", "_source.py")).exists()


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if not (p.name in GENERATED and p.parent.name == "kernels")),
    ids=str,
)
def test_no_module_but_generated_code_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


def test_each_command_body_reads_its_options_calls_its_core_and_ends_in_30_statements():
    """Statements, not lines: ruff's format lays a call over as many lines as it takes."""
    bodies = {}
    for name, node in _commands():
        body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # the docstring aside
        bodies[node.name] = sum(isinstance(n, ast.stmt) for statement in body for n in ast.walk(statement))
    assert len(bodies) == 10 and max(bodies.values()) <= 30, bodies


def test_the_design_page_maps_every_module():
    """docs/design.md's layout names each module in its room: a module no one listed is one no one finds."""
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    layout = design[design.index("## Layout") : design.index("How data flows")]
    missing = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.stem not in ("__init__", "__main__") and not re.search(rf"\b{p.stem}\b", layout)
    ]
    assert not missing, missing


def test_nothing_points_readers_at_a_file_outside_the_repository():
    root = PACKAGE.parent
    files = [
        *PACKAGE.rglob("*.py"),
        *(root / "docs").glob("*.md"),
        root / "README.md",
        root / "pyproject.toml",
    ]
    outside = [str(p.relative_to(root)) for p in files if "../shared" in p.read_text()]
    assert not outside, outside
