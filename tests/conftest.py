"""Shared fixtures: a CliRunner on the real `fnd` app, and helpers to read a run's files."""

import json
import os

from fndcli.kernels import jitenv

# numba-tiled's numba settings for the test processes too, before numba is imported: the tests that call its
# kernel in-process then share the compiled kernel (numba's cache) with the processes fnd starts for it.
os.environ.update(jitenv.settings())
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fndcli.cli import app

SEEDED_GFLOPS, SEEDED_GB_S = 1e5, 1e4  # far above any kernel here: no row is above its ceiling


@pytest.fixture(autouse=True, scope="session")
def ceilings_cache(tmp_path_factory):
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


@pytest.fixture
def fnd(monkeypatch):
    """fnd(*args) -> Result, through the real Typer app; stdout is not a terminal."""
    monkeypatch.setenv("NO_COLOR", "1")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def run_files(out_dir, command):
    """The (csv frame, sidecar dict) of the single run of `command` in out_dir."""
    csvs = sorted(p for p in Path(out_dir).glob(f"{command}-*.csv") if p.with_suffix(".json").exists())
    assert len(csvs) == 1, csvs
    return pd.read_csv(csvs[0]), json.loads(csvs[0].with_suffix(".json").read_text())


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
