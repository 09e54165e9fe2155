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
