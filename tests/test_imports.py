"""Imports flow one way (docs/design.md): no circle between modules or rooms, and none up a floor."""

import ast
import functools
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("import-graph")  # one worker parses the modules: graph(), once

PACKAGE = Path(__file__).parent.parent / "fndcli"
# Each floor may import its own and those below it, never those above (the longest prefix names a module's
# floor).
FLOORS = {
    "fndcli": 0,
    "fndcli.names": 0,
    "fndcli.numerics": 0,
    "fndcli.machine": 0,
    "fndcli.gitrev": 0,
    "fndcli.userref": 0,
    "fndcli.memory": 0,
    "fndcli.kind": 0,
    "fndcli.kinds": 0,  # facts, registries' names, what every floor shares
    "fndcli.kernels": 1,  # the code that runs: matmuls, FMA chains
    "fndcli.settings": 2,
    "fndcli.bench": 2,
    "fndcli.init": 2,
    "fndcli.backprop": 2,  # the commands' cores
    "fndcli.runs": 3,
    "fndcli.report": 3,  # runs read back and compared; rendering
    "fndcli.history": 3,  # runs remembered across commits
    "fndcli.reproduce": 4,  # every room's core, for the chapter's claims
    "fndcli.bisect": 4,  # fnd's runs across commits, judged as compare judges them
    "fndcli.cli": 5,
    "fndcli.__main__": 5,  # the command line
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


MODULES = dict(_modules())


def imports(path):
    """The fnd modules a file imports, at its top or inside a function (a lazy import is an import too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fndcli")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fndcli"):
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            }
    return found


@functools.cache
def graph():
    """{module: the fnd modules it imports}: every module parsed, once a process (0.8 s), when a test asks."""
    return {name: imports(path) for name, path in MODULES.items()}


def floor(module):
    return FLOORS[max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)]


def room(module):
    """A module's room: its package under fndcli (bench, init, ...), or itself at the top."""
    return ".".join(module.split(".")[:2])


def _cycle(graph):
    """A circle in `graph` ({node: nodes it imports}) as a list of nodes, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"

    return next((c for node in sorted(graph) if node not in state and (c := visit(node, [node]))), None)


def test_every_module_has_a_floor():
    assert all(floor(m) is not None for m in MODULES)


def test_no_import_goes_up_a_floor():
    up = sorted(
        f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})"
        for m, deps in graph().items()
        for d in deps
        if floor(d) > floor(m)
    )
    assert not up, "\n".join(up)


def test_no_modules_import_each_other_round_a_circle():
    assert _cycle(graph()) is None, " -> ".join(_cycle(graph()))


def test_no_rooms_import_each_other_round_a_circle():
    rooms = {}
    for m, deps in graph().items():
        rooms.setdefault(room(m), set()).update(room(d) for d in deps if room(d) != room(m))
    assert _cycle(rooms) is None, " -> ".join(_cycle(rooms))


def test_nothing_imports_the_cli_and_no_private_name_crosses_a_module():
    assert not [
        m
        for m, deps in graph().items()
        if not m.startswith("fndcli.cli")
        and m != "fndcli.__main__"
        and any(d.startswith("fndcli.cli") for d in deps)
    ]
    crossing = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fndcli"):
                crossing += [
                    f"{name}: {a.name} from {node.module}" for a in node.names if a.name.startswith("_")
                ]
    assert not crossing, crossing


@pytest.mark.parametrize(
    "graph, circle",
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": set(), "c": {"a", "b"}}, None),
    ],
)
def test_the_circle_finder_finds_circles(graph, circle):
    assert _cycle(graph) == circle
