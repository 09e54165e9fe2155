"""What one run adds to the history, read from the files it wrote: its facts, its main CSV's cells, and
every worker process's values from its pyperf file.

Read from the files rather than from the command's frames, so the store holds exactly what the
files hold: a cell's number is the CSV's text parsed by Python's float (pandas wrote it as the
shortest repr, so it parses back to the very float), a text cell the CSV's text.
"""

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from fndcli.bench.spec import benchmark_name
from fndcli.history.facts import Commit, Machine, versions
from fndcli.kind import BOOL, LABEL, NUMBER
from fndcli.kinds import MATMUL_BENCH, kind_of


@dataclass(frozen=True)
class Entry:
    """One run, ready for the store: its `runs` row (ids aside), its machine, its cells and its timings."""

    run: dict
    machine: Machine
    cells: list  # [{row, name, number, text}]
    timings: list  # [{benchmark, process, value, seconds, row}]


def entry_of(sidecar_path, commit: Commit, machine: Machine):
    """The Entry of the run whose sidecar is at `sidecar_path`."""
    sidecar_path = Path(sidecar_path).resolve()
    meta = json.loads(sidecar_path.read_text())
    kind = kind_of(meta)
    directory = sidecar_path.parent
    stem = "" if kind.own_directory else sidecar_path.name[: -len(".json")]
    with open(directory / f"{stem}{kind.main}", newline="") as f:
        rows = list(csv.DictReader(f))
    git = asdict(commit)
    git["git_commit"] = git.pop("commit")
    run = {
        "command": meta["command"],
        "kind": kind.name,
        "status": meta["status"],
        "exit_code": meta["exit_code"],
        "started_utc": meta["started_utc"],
        "finished_utc": meta["finished_utc"],
        **git,
        **versions(),
        "fnd_commit": meta.get("git_commit"),
        "config": json.dumps(meta.get("config", {})),
        "sidecar": json.dumps(meta),
        "path": str(sidecar_path),
    }
    pyperf_files = [directory / n for n in meta["files"] if str(n).endswith(".pyperf.json")]
    return Entry(run, machine, cells(kind, rows), timings(pyperf_files, rows if kind is MATMUL_BENCH else []))


def cells(kind, rows):
    """Each CSV cell as the kind types its column: a number (a bool as 1 or 0) or text; empty is None."""
    types = {c.name: c.type for c in kind.columns}
    out = []
    for i, row in enumerate(rows):
        for name, text in row.items():
            kind_of_cell = types.get(name, LABEL)
            if kind_of_cell == NUMBER:
                number = float(text) if text else None
                out.append(_cell(i, name, None if number is not None and math.isnan(number) else number))
            elif kind_of_cell == BOOL:
                out.append(_cell(i, name, {"True": 1.0, "False": 0.0}.get(text)))
            else:  # an empty text cell is "" (a reason not given), an empty label is missing
                out.append(_cell(i, name, text=text if text or kind_of_cell != LABEL else None))
    return out


def _cell(row, name, number=None, text=None):
    return {"row": row, "name": name, "number": number, "text": text}


def timings(pyperf_files, bench_rows):
    """Every value of every worker process in the pyperf files (warmups and calibration aside, as
    `fnd compare` reads them), each tied to the matmul-bench row of its benchmark."""
    if not pyperf_files:
        return []
    import pyperf

    row_of = {
        benchmark_name(r["impl"], f"{r['m']}x{r['k']}x{r['n']}", r["dtype"], r["device"]): i
        for i, r in enumerate(bench_rows)
    }
    out = []
    for path in pyperf_files:
        for bench in pyperf.BenchmarkSuite.load(str(path)).get_benchmarks():
            name = bench.get_name()
            runs = [run.values for run in bench.get_runs() if run.values]
            out += [
                {"benchmark": name, "process": p, "value": v, "seconds": s, "row": row_of.get(name)}
                for p, values in enumerate(runs)
                for v, s in enumerate(values)
            ]
    return out
