"""Saved runs read back, for `fnd show` and `fnd compare`: no torch, no numba.

A run is the files one command wrote into its `--out` directory, tied together by its
sidecar `<command>-<stamp>.json` (whose `files` lists them all). Any of them names the run:
the CSV, the sidecar, the `.pyperf.json`, an extra CSV; a directory names its newest run
(of a given command, when one is asked for).
"""
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COMMANDS = ("matmul-bench", "init-sweep", "gradcheck", "train")
# Text columns: an empty cell reads back as NaN; these want "".
TEXT_COLUMNS = {"matmul-bench": ("error", "skipped", "baseline"), "init-sweep": ("reason", "grad_verdict"),
                "gradcheck": ("rule",), "train": ()}


class RunError(Exception):
    """A path that is not a readable fnd run."""


@dataclass
class SavedRun:
    """One run read back: its sidecar, its main rows, and the files beside them."""

    sidecar_path: Path
    meta: dict
    rows: pd.DataFrame                          # the main CSV (init-sweep: the summary, one row per scheme x act)
    extras: dict = field(default_factory=dict)  # suffix -> DataFrame of the other CSVs
    pyperf_path: Path | None = None

    @property
    def command(self):
        return self.meta["command"]

    @property
    def stem(self):
        return self.sidecar_path.name[: -len(".json")]

    def process_means(self):
        """{pyperf benchmark name: [mean of each worker process's values]}, warmups and calibration excluded."""
        if self.pyperf_path is None:
            return {}
        import pyperf

        try:
            suite = pyperf.BenchmarkSuite.load(str(self.pyperf_path))
        except (OSError, ValueError) as e:
            raise RunError(f"cannot read {self.pyperf_path}: {e}") from e
        return {bench.get_name(): [math.fsum(run.values) / len(run.values) for run in bench.get_runs() if run.values]
                for bench in suite.get_benchmarks()}


def _sidecar(path):
    """The sidecar's dict if `path` is one, else None."""
    if path.suffix != ".json" or path.name.endswith(".pyperf.json"):
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("command") in COMMANDS and "files" in meta else None


def _sidecars(directory, command=None):
    """[(path, meta)] of the runs in a directory (of one command, if given), oldest first."""
    out = []
    for path in directory.glob("*.json"):
        meta = _sidecar(path)
        if meta and (command is None or meta["command"] == command):
            out.append((meta.get("started_utc", ""), path.name, path, meta))
    return [(path, meta) for *_, path, meta in sorted(out, key=lambda run: run[:2])]


def find_sidecar(path, command=None):
    """(sidecar path, its dict) of the run that `path` names (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{str(path)!r} does not exist")
    if path.is_dir():
        found = _sidecars(path, command)
        if not found:
            what = f"no {command} run" if command else "no fnd run"
            raise RunError(f"{what} in directory {str(path)!r}")
        return found[-1]
    meta = _sidecar(path)
    if meta:
        return path, meta
    for sidecar, meta in _sidecars(path.parent):
        if path.name in meta["files"]:
            return sidecar, meta
    raise RunError(f"{str(path)!r} is not part of an fnd run (no sidecar beside it lists it)")


def load(path, command=None):
    """Read the run that `path` names; RunError if it cannot be read."""
    sidecar, meta = find_sidecar(path, command)
    if command and meta["command"] != command:
        raise RunError(f"{str(path)!r} is a {meta['command']} run, not {command}")
    stem = sidecar.name[: -len(".json")]
    directory = sidecar.parent
    csvs = {}
    for name in meta["files"]:
        if name.endswith(".csv"):
            try:
                csvs[name[len(stem):]] = pd.read_csv(directory / name)
            except (OSError, ValueError) as e:
                raise RunError(f"cannot read {str(directory / name)!r}: {e}") from e
    main = "-summary.csv" if meta["command"] == "init-sweep" else ".csv"
    if main not in csvs:
        raise RunError(f"run {stem!r} has no {stem}{main}")
    rows = csvs.pop(main)
    for column in TEXT_COLUMNS[meta["command"]]:
        if column in rows:
            rows[column] = rows[column].astype(object).where(rows[column].notna(), "").astype(str)
    pyperf_name = f"{stem}.pyperf.json"
    pyperf_path = directory / pyperf_name if pyperf_name in meta["files"] else None
    return SavedRun(sidecar, meta, rows, csvs, pyperf_path)
