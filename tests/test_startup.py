"""The front door: --help, --version and usage errors answer without torch, pandas, numba, matplotlib,
pyperf or SQLAlchemy."""

import subprocess
import sys

import pytest
from conftest import fnd_each_in_a_fresh_process

from fndcli import names
from fndcli.backprop import model
from fndcli.init import schemes as inits
from fndcli.kernels import registry as kernels

HEAVY = (
    "torch",
    "pandas",
    "numpy",
    "numba",
    "matplotlib",
    "pyperf",
    "scipy",
    "sqlalchemy",
    "psycopg",
    "ruptures",
)


def blocking(modules):
    """Python source that makes importing any of `modules` (or their submodules) raise ImportError."""
    return (
        f"import sys\nclass Blocker:\n    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(modules)!r}:\n"
        f"            raise ImportError(f'import of {{name}} blocked by the test')\n"
        f"sys.meta_path.insert(0, Blocker())\n"
    )


def fnd_without(modules, *args):
    """Run fnd in a fresh process in which importing any of `modules` fails."""
    code = blocking(modules) + f"sys.argv = ['fnd', *{list(args)!r}]\nfrom fndcli.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def fnd_without_heavy_modules(*args):
    return fnd_without(HEAVY, *args)


def test_help_version_and_usage_errors_need_no_heavy_module(tmp_path):
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text("[init-sweep]\nwidht = 5\n")
    bad_table = tmp_path / "table.toml"
    bad_table.write_text("[init_sweep]\ndepth = 5\n")
    bad_value = tmp_path / "value.toml"
    bad_value.write_text("[train]\nlr = -1\n")
    helps = [
        ["--help"],
        ["--version"],
        *[[c, "--help"] for c in ("matmul-bench", "init-sweep", "gradcheck", "train", "peak")],
    ]
    errors = [
        (["matmul-bench", "--bogus"], "No such option: --bogus"),
        (["matmul-bench", "--shape", "5x0x3"], "zero dimension"),
        (["init-sweep", "--scheme", "he"], "'he'"),
        (["init-sweep", "--config", str(bad_key)], "unknown key 'widht'"),
        (["train", "--config", str(bad_table)], "unknown table [init_sweep]"),
        (["train", "--config", str(bad_value)], "[train] lr: must be a positive"),
        (["train", "--seed", str(2**64)], "outside 0 to 2^64 - 1"),
        (["peak", "--threads", "0"], "'--threads'"),
    ]
    results = fnd_each_in_a_fresh_process([*helps, *(args for args, _ in errors)], blocking(HEAVY))
    for args, (code, stdout, stderr) in zip(helps, results):
        assert code == 0 and stderr == "", (args, stderr)
        assert "Usage" in stdout or stdout.startswith("fnd "), args
    for (args, fragment), (code, stdout, stderr) in zip(errors, results[len(helps) :]):
        assert code == 2 and stdout == "", (args, stdout)
        assert stderr.startswith("Error: ") and stderr.count("\n") == 1 and fragment in stderr, stderr


def test_the_blocker_blocks(tmp_path):
    """The test above would pass vacuously if blocking did not work: a command's work needs them."""
    proc = fnd_without_heavy_modules("gradcheck", "--batch", "2", "--out", str(tmp_path))
    assert proc.returncode != 0 and "blocked by the test" in proc.stderr


def test_version_names_fnd_and_python(fnd):
    import platform

    import fndcli

    result = fnd("--version")
    assert (
        result.exit_code == 0
        and result.stdout == f"fnd {fndcli.__version__} (Python {platform.python_version()})\n"
    )


def test_flags_show_no_value_placeholder_and_config_names_its_table(fnd):
    result = fnd("matmul-bench", "--help")
    quick = next(line for line in result.stdout.splitlines() if "--quick" in line)
    assert "<bool>" not in result.stdout and "bool" not in quick
    assert "[matmul-bench] table" in " ".join(result.stdout.split())


def _unwrapped(text):
    """text without whitespace: --help wraps its lines anywhere, even after a hyphen inside a name."""
    return "".join(text.split())


@pytest.mark.parametrize(
    "command,registry",
    [
        ("matmul-bench", {name: spec.summary for name, spec in names.IMPL_SPECS.items()}),
        ("init-sweep", names.SCHEMES),
        ("init-sweep", names.ACTS),
        ("gradcheck", names.LOSSES),
        ("train", names.TASKS),
        ("train", names.LABELS),
    ],
    ids=["impl", "scheme", "act", "loss", "task", "labels"],
)
def test_help_lists_each_name_with_its_summary(fnd, command, registry):
    """'name: summary', as names.listing writes it, for every entry of the registry the option takes."""
    result = fnd(command, "--help")
    assert result.exit_code == 0
    for name, summary in registry.items():
        assert _unwrapped(f"{name}: {summary}") in _unwrapped(result.stdout), name


def test_registries_and_their_code_agree():
    assert list(kernels.IMPLS) == list(names.IMPL_SPECS)
    assert all(
        kernels.IMPLS[n].devices == s.devices and kernels.IMPLS[n].fn for n, s in names.IMPL_SPECS.items()
    )
    assert list(inits.SCHEMES) == list(names.SCHEMES)
    assert [inits.make_act(a).name for a in names.ACTS] == list(names.ACTS)
    assert list(model.LOSSES) == list(names.LOSSES)


@pytest.mark.parametrize("alias,scheme", [("kaiming", "kaiming-normal"), ("xavier", "xavier-normal")])
def test_aliases_resolve_to_their_scheme(alias, scheme):
    assert names.resolve_scheme_name(alias) == scheme


def test_a_scheme_resolves_to_itself_and_an_unknown_name_is_rejected():
    assert [names.resolve_scheme_name(s) for s in names.SCHEMES] == list(names.SCHEMES)
    assert set(names.ALIASES).isdisjoint(names.SCHEMES)
    with pytest.raises(
        ValueError, match="unknown init scheme 'he'; known: normal, .*, lsuv, xavier, kaiming$"
    ):
        names.resolve_scheme_name("he")
