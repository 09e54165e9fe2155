"""Shared fixtures: a CliRunner on the real `fnd` app, real runs several tests read, and helpers to read a
run's files."""

import dataclasses
import functools
import json
import os
import shutil
import tempfile

from fndcli.kernels import jitenv

# numba-tiled's numba settings for the test processes too, before numba is imported: the tests that call its
# kernel in-process then share the compiled kernel (numba's cache) with the processes fnd starts for it.
os.environ.update(jitenv.settings())
from pathlib import Path

import pandas as pd
import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from fndcli.cli import app

SEEDED_GFLOPS, SEEDED_GB_S = 1e5, 1e4  # far above any kernel here: no row is above its ceiling


@pytest.fixture(scope="session")
def history_store(tmp_path_factory):
    """Every run adds itself to the history store (fndcli.history): the suite's runs go to an SQLite file of
    the session's own (FND_DB), never to the user's ~/.local/share/fnd/history.db; in memory (/dev/shm) where
    there is one, as a write's fsync on a disk costs 20 ms here, a second on every 50 runs."""
    shm = Path("/dev/shm")
    scratch = Path(tempfile.mkdtemp(prefix="fnd-history-", dir=shm)) if shm.is_dir() else None
    directory = scratch or tmp_path_factory.mktemp("fnd-history")
    os.environ["FND_DB"] = f"sqlite:///{directory / 'history.db'}"
    yield os.environ["FND_DB"]
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def ceilings_cache(tmp_path_factory, history_store):
    """matmul-bench's % peak is of this machine's ceilings, from fnd peak's cache (`fndcli.bench.peak`). The
    suite gets a cache of its own, seeded for every dtype and thread count with SEEDED_GFLOPS and SEEDED_GB_S,
    so a test's run need not measure (a few seconds each); tests/test_peak.py measures for real, in caches of
    its own."""
    from fndcli.bench.peak import cache_file, store_cache

    os.environ["FND_CACHE_DIR"] = str(tmp_path_factory.mktemp("fnd-cache"))
    common = {
        "device": "cpu",
        "isa": jitenv.isa()[0],
        "best_s": 0.02,
        "calls": 1,
        "repeats": 1,
        "measured_utc": "2026-01-01T00:00:00+00:00",
    }
    store_cache(
        [
            {
                **common,
                "what": "fma",
                "kernel": "fma x64",
                "dtype": d,
                "threads": t,
                "gflops": SEEDED_GFLOPS,
                "gb_s": None,
                "work": SEEDED_GFLOPS * 1e9 * 0.02,
            }
            for d in ("float32", "float64")
            for t in range(1, (os.cpu_count() or 1) + 1)
        ]
        + [
            {
                **common,
                "what": "bandwidth",
                "kernel": "triad",
                "dtype": "float64",
                "threads": t,
                "gflops": None,
                "gb_s": SEEDED_GB_S,
                "work": SEEDED_GB_S * 1e9 * 0.02,
            }
            for t in range(1, (os.cpu_count() or 1) + 1)
        ]
    )
    return cache_file()


@functools.cache
def _command(app):
    """The click command Typer builds from the app (~20 ms here), once a process as `fnd` itself builds it:
    typer's CliRunner would build it again for every invocation, hundreds of times a suite."""
    return typer.main.get_command(app)


@pytest.fixture
def fnd(monkeypatch):
    """fnd(*args) -> Result, through the real Typer app; stdout is not a terminal."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(typer.testing, "_get_command", _command)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


# --- runs several tests read -----------------------------------------------------------------
# A matmul-bench run costs ~2.7 s here, most of it the pyperf worker's `import torch`. Where tests differ only
# in what they read of a run, they share one: a session fixture below, each test keeping its own assertions.
# A session fixture is made once per xdist worker that asks for it, so the tests that share one are in one
# xdist_group named after it (ladder_run: "ladder-run"). They read its files and never change them.

EXAMPLES = Path(__file__).parent.parent / "examples"
KERNELS = f"{EXAMPLES / 'mykernels.py'}"
CHAPTER_MATMUL = "mykernels.py:chapter_matmul"  # as named in examples/, where kernels_that_fail_run runs
# the chapter's five (the default --impl), in one quick worker process
LADDER = ("matmul-bench", "--quick", "--shape", "4x8x3", "--seed", "3")
RUDE = """
import torch
torch.set_num_threads(torch.get_num_threads() + 1)
torch.set_default_dtype(torch.float64)
print("hello from the user's file")

def matmul(a, b):
    return a @ b
"""


def _nan_row(a, b):
    import torch  # here, not at the top: conftest stays quick to import

    return (a @ b).index_fill(0, torch.tensor([1]), float("nan"))


BROKEN = {  # registry implementations broken four ways at 4x5x3: (kernel, the row's error)
    "einsum": (lambda a, b: (a @ b).t(), "returned shape (3, 4), expected (4, 3)"),
    "dot": (  # checked before torch on the same case: only dot is blamed (each kernel gets its own copy)
        lambda a, b: a.mul_(0) @ b,
        "wrote to its input a: a matmul must leave a and b as it found them",
    ),
    "broadcast": (lambda a, b: (a @ b).tolist(), "returned list, not a tensor"),
    "loops": (_nan_row, "wrong result: 3 of 12 values not finite (NaN or inf) where a @ b has none"),
}


@dataclasses.dataclass(frozen=True)
class SharedRun:
    """A real run that several tests read: its (CliRunner's) Result, its --out directory, the --impl values
    it was given, and torch's (threads, default dtype) in this process before and after it."""

    result: object
    out: Path
    impls: tuple
    torch_before: tuple
    torch_after: tuple


def shared_run(directory, *args, impls=(), patch=lambda mp: None):
    """fnd(*args, --impl each of impls, --out directory/out) through the real Typer app, as the `fnd` fixture
    runs it; patch(monkeypatch) sets what the run alone needs (undone after it)."""
    import torch

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_COLOR", "1")
        patch(mp)
        before = (torch.get_num_threads(), torch.get_default_dtype())
        argv = [*args, *[a for impl in impls for a in ("--impl", impl)], "--out", directory / "out"]
        result = CliRunner().invoke(app, [str(a) for a in argv])
        after = (torch.get_num_threads(), torch.get_default_dtype())
    return SharedRun(result, directory / "out", tuple(impls), before, after)


@pytest.fixture(scope="session")
def ladder_run(tmp_path_factory):
    """LADDER, exit 0. Read by test_matmul_cli.py (its files), test_show.py (show prints what it printed) and
    test_compare.py (BASE of two quick runs)."""
    return shared_run(tmp_path_factory.mktemp("ladder-run"), *LADDER)


def timed_threads():
    """A thread count other than torch's in this process (1 in make test): a worker that ignores --threads
    is seen."""
    import torch

    return 1 if torch.get_num_threads() != 1 else 2


@pytest.fixture(scope="session")
def interleaved_run(tmp_path_factory):
    """The path users run: the default preset, real worker processes, options forwarded to them. broadcast
    and torch at 8x64x32, float64, seed 5, on timed_threads(), and at 60000^3, where the cost guard
    skips both (no worker runs for them). Read by test_matmul_cli.py (its timings against a clock of its
    own: xdist_group "timed", one timed test at a time) and test_memory.py."""
    shapes = ("--shape", "8x64x32", "--shape", "60000x60000x60000")
    args = ("--dtype", "float64", "--seed", "5", "--threads", timed_threads())
    return shared_run(
        tmp_path_factory.mktemp("interleaved"), "matmul-bench", *shapes, *args, impls=["broadcast", "torch"]
    )


@pytest.fixture(scope="session")
def kernels_that_pass_run(tmp_path_factory):
    """Your kernels beside torch and numpy at 4x6x3, all correct, exit 0: mykernels.py's chapter_matmul and
    row_broadcast, torch, numpy, and rude.py:matmul, whose file changes torch's settings on import. One thread
    (auto_threads, at this shape), in an environment whose BLAS would otherwise take every core
    (OMP_NUM_THREADS unset: make test sets it to 1). Read by test_user_code.py and test_beyond.py."""
    directory = tmp_path_factory.mktemp("kernels-that-pass")
    (directory / "rude.py").write_text(RUDE)
    impls = [
        f"{KERNELS}:chapter_matmul",
        f"{KERNELS}:row_broadcast",
        "torch",
        "numpy",
        f"{directory / 'rude.py'}:matmul",
    ]

    def every_core_by_default(mp):
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.delenv(name, raising=False)

    args = ("matmul-bench", "--quick", "--shape", "4x6x3")
    return shared_run(directory, *args, impls=impls, patch=every_core_by_default)


@pytest.fixture(scope="session")
def kernels_that_fail_run(tmp_path_factory):
    """float64 at 4x5x3, exit 1, no traceback: the registry's einsum, dot, broadcast and loops broken as
    BROKEN says, torch, and mykernels.py:chapter_matmul (its output is float32), named from examples/ as
    CHAPTER_MATMUL (a longer name narrows the table's last column until BROKEN's reasons wrap). Read by
    test_matmul_cli.py and test_user_code.py."""
    from fndcli.kernels.registry import IMPLS

    def patch(mp):
        mp.chdir(EXAMPLES)
        for name, (bad, _) in BROKEN.items():
            mp.setitem(IMPLS, name, dataclasses.replace(IMPLS[name], fn=bad))

    impls = [*BROKEN, "torch", CHAPTER_MATMUL]
    args = ("matmul-bench", "--quick", "--dtype", "float64", "--shape", "4x5x3")
    return shared_run(tmp_path_factory.mktemp("kernels-that-fail"), *args, impls=impls, patch=patch)


@pytest.fixture(scope="session")
def wrong_and_skipped_run(tmp_path_factory):
    """exit 1: dot flipped (a wrong result), torch, loops, later.py:mm, which raises on its third call, and
    exits.py:mm, which calls sys.exit(3); at 4x6x3,
    and at 1024^3 under --max-seconds 30, where the cost guard skips loops and dot. Read by
    test_matmul_cli.py and test_bad_input.py."""
    from fndcli.kernels.registry import IMPLS

    def flipped_dot(a, b):
        return IMPLS["torch"].fn(a, b).flip(0)

    directory = tmp_path_factory.mktemp("wrong-and-skipped")
    (directory / "exits.py").write_text("import sys\n\ndef mm(a, b):\n    sys.exit(3)\n")
    (
        directory / "later.py"
    ).write_text(  # right on its first call at a shape (8x8x8 is fnd's probe), not its third
        "CALLS = {}\n\ndef mm(a, b):\n    n = CALLS[a.shape] = CALLS.get(a.shape, 0) + 1\n"
        "    if n == 3 and a.shape[0] != 8:\n        raise ValueError('third call')\n    return a @ b\n"
    )
    impls = ["dot", "torch", "loops", f"{directory / 'later.py'}:mm", f"{directory / 'exits.py'}:mm"]
    args = ("--shape", "4x6x3", "--shape", "1024x1024x1024", "--max-seconds", "30")
    return shared_run(
        directory,
        "matmul-bench",
        "--quick",
        *args,
        impls=impls,
        patch=lambda mp: mp.setitem(IMPLS, "dot", dataclasses.replace(IMPLS["dot"], fn=flipped_dot)),
    )


def run_files(out_dir, command):
    """The (csv frame, sidecar dict) of the single run of `command` in out_dir."""
    csvs = sorted(p for p in Path(out_dir).glob(f"{command}-*.csv") if p.with_suffix(".json").exists())
    assert len(csvs) == 1, csvs
    return pd.read_csv(csvs[0]), json.loads(csvs[0].with_suffix(".json").read_text())


def flagged(frame):
    """Each matmul-bench row whose timings the run flagged as not to be trusted (a busy host)."""
    return frame["unstable"].notna() & (frame["unstable"].astype(str) != "")


def assert_unless_flagged(figures, expected, flags):
    """Each figure (speedup, % peak) equals its expected value, unless its row, or the row it is relative
    to, was flagged on a busy host: then it has none, by design (bench.stats)."""
    for got, want, flag in zip(figures, expected, flags):
        assert (got != got) if flag else got == pytest.approx(want), (got, want, flag)


def assert_one_line_error(result, *fragments):
    """Exit 2, exactly one line on stderr that starts 'Error:', no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_rejected(fnd, tmp_path, command, args, *fragments):
    """Bad input to `command`: exit 2, one line naming what was wrong, and nothing written."""
    out = tmp_path / "out"
    result = fnd(command, *args, "--out", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()
    return result


def fail_on_call(monkeypatch, owner, name, nth, error):
    """Replace owner.name with the real function that raises `error` on its nth call instead."""
    real, calls = getattr(owner, name), []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


RUN_EACH = """
import contextlib, io, json, sys
from fndcli.cli import main
out = []
for args in ARGS:
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["fnd", *args]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out.append([code, stdout.getvalue(), stderr.getvalue()])
print(json.dumps(out))
"""


def fnd_each_in_a_fresh_process(invocations, prelude=""):
    """[(exit code, stdout, stderr)] of fnd's entry point called with each argument list in turn, in one fresh
    Python process that runs `prelude` first. A process that ends before it reports (os._exit somewhere) fails
    the assertion here, rather than ending pytest's own process."""
    import subprocess
    import sys

    code = prelude + f"\nARGS = {[[str(a) for a in args] for args in invocations]!r}\n" + RUN_EACH
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), (proc.returncode, proc.stdout, proc.stderr)
    return [tuple(r) for r in json.loads(proc.stdout)]
