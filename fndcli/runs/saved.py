"""Saved runs read back, for `fnd show` and `fnd compare`: no torch, no numba.

A run is the files one command wrote into its `--out` directory, tied together by its
sidecar `<command>-<stamp>.json` (whose `files` lists them all). Any of them names the run:
the CSV, the sidecar, the `.pyperf.json`, an extra CSV; a directory names its newest run
(of a given command, when one is asked for). A `fnd reproduce` run is a directory of its own,
`reproduce-<stamp>/`, whose sidecar is `reproduce.json`: the directory, or any file in it,
names it, and a directory of runs counts it among its runs.
"""

import dataclasses
import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fndcli.kind import BOOL, NUMBER, TEXT
from fndcli.kinds import KINDS, READ, kind_of
from fndcli.machine import METADATA_TYPES
from fndcli.numerics import first_line
from fndcli.runs.sidecar import SCHEMA, Sidecar, holds

NAMES = (
    "layer",
    "parameter",
    "finding",
    "shape",
)  # init-sweep --model's per-layer and per-parameter CSVs: text
SIDECAR = {k.command: k.own_directory for k in KINDS if k.own_directory}  # a run in a directory of its own
NOT_READ = tuple(
    dict.fromkeys(k.command for k in KINDS if not k.read)
)  # show and compare do not read them: the CSV is the verdict (history's two kinds are one command)


def _types(annotation):
    """The JSON types a field of Sidecar may hold (a float may be written as an int; None where it is
    optional)."""
    kinds = set(annotation.__args__ if isinstance(annotation, types.UnionType) else (annotation,))
    return tuple(kinds | ({int} if float in kinds else set()))


# What every sidecar's fields hold: Sidecar's, and those of fndcli.machine.run_metadata, flattened into it.
COMMON_TYPES = {
    **{f.name: _types(f.type) for f in dataclasses.fields(Sidecar) if f.name not in ("machine", "own")},
    **METADATA_TYPES,
}


class RunError(Exception):
    """A path that is not a readable fnd run."""


@dataclass
class SavedRun:
    """One run read back: its sidecar, its main rows, and the files beside them."""

    sidecar_path: Path
    meta: dict
    rows: pd.DataFrame  # the main CSV (init-sweep: the summary, one row per scheme x act)
    extras: dict = field(default_factory=dict)  # suffix -> DataFrame of the other CSVs
    pyperf_path: Path | None = None

    @property
    def command(self):
        return self.meta["command"]

    @property
    def kind(self):
        """What the rows are (fndcli.kinds): the command's, or init-sweep --model's."""
        return kind_of(self.meta)

    @property
    def stem(self):
        """The run's name: its files' common stem, or its directory's name (reproduce)."""
        if self.sidecar_path.name == SIDECAR.get(self.command):
            return self.sidecar_path.parent.name
        return self.sidecar_path.name[: -len(".json")]

    def process_samples(self):
        """{pyperf benchmark name: [each worker process's fastest value]}, warmups and calibration excluded,
        in the order the processes ran. The fastest of a process's values is its least disturbed: measured
        here (scripts/gate-calibration), run levels moved about half as much by it as by the mean."""
        return {name: [min(values) for values in runs] for name, runs in self.process_values().items()}

    def process_values(self):
        """{pyperf benchmark name: [each worker process's values]}, warmups and calibration excluded."""
        if self.pyperf_path is None:
            return {}
        import pyperf

        try:
            suite = pyperf.BenchmarkSuite.load(str(self.pyperf_path))
        except (OSError, ValueError) as e:
            raise RunError(f"cannot read {self.pyperf_path}: {e}") from e
        return {
            bench.get_name(): [list(run.values) for run in bench.get_runs() if run.values]
            for bench in suite.get_benchmarks()
        }


def _not_read():
    """The name prefixes of the runs show and compare do not read."""
    return tuple(f"{c}-" for c in NOT_READ)


def _might_be_sidecar(path):
    """A name fnd gives sidecars: <command>-<stamp>[-N].json, or reproduce.json."""
    return (
        path.suffix == ".json"
        and not path.name.endswith(".pyperf.json")
        and (path.name in SIDECAR.values() or any(path.name.startswith(f"{c}-") for c in READ))
    )


def _sidecar(path):
    """The sidecar's dict if `path` is one, else None; RunError if it is named like one but cannot be read."""
    if not _might_be_sidecar(path):
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise RunError(
            f"{str(path)!r} is a corrupt run sidecar ({first_line(e)}): cut off mid-write, or edited?"
        )
    if not (isinstance(meta, dict) and meta.get("command") in READ and isinstance(meta.get("files"), list)):
        raise RunError(
            f"{str(path)!r} is named like a run sidecar but is not one fnd writes (no command and files "
            "list): edited?"
        )
    _check_sidecar(meta, path)
    return meta


def _check_sidecar(meta, path):
    """RunError unless each field holds what fnd writes there (a hand-edited started_utc of 5 would end as a
    traceback in compare's header), and the schema is one this fnd reads."""
    if isinstance(meta.get("schema"), int) and meta["schema"] > SCHEMA:
        raise RunError(
            f"{str(path)!r} was written by a newer fnd (sidecar schema {meta['schema']}, this one reads "
            f"{SCHEMA}): upgrade fnd to read it"
        )
    _check_fields(meta, path, COMMON_TYPES.items())  # config is a dict before the kind is read from it
    _check_fields(meta, path, kind_of(meta).fields)


def _check_fields(meta, path, declared):
    """RunError naming the first of `declared` ((name, JSON types)) that the sidecar holds otherwise."""
    for name, kinds in declared:
        if name in meta and not holds(meta[name], kinds):
            raise RunError(
                f"{str(path)!r}: field {name} holds {meta[name]!r}: not as fnd writes it (edited?)"
            )


def _sidecars(directory, command=None, corrupt=None):
    """[(path, meta)] of the runs in a directory and its reproduce-* run directories (of one command, if
    given), oldest first. Corrupt sidecars are skipped, their errors appended to `corrupt`."""
    out = []
    for path in [*directory.glob("*.json"), *(directory.glob(f"reproduce-*/{SIDECAR['reproduce']}"))]:
        try:
            meta = _sidecar(path)
        except RunError as e:
            if corrupt is not None:
                corrupt.append((path, str(e)))
            continue
        if meta and (command is None or meta["command"] == command):
            out.append((meta.get("started_utc", ""), path.name, path, meta))
    return [(path, meta) for *_, path, meta in sorted(out, key=lambda run: run[:2])]


def _stamp(sidecar):
    """The UTC stamp in a sidecar's name (yyyymmdd-HHMMSS, sortable), or its directory's for
    reproduce.json."""
    found = re.search(
        r"\d{8}-\d{6}", sidecar.name if sidecar.name != SIDECAR["reproduce"] else sidecar.parent.name
    )
    return found.group(0) if found else ""


def find_sidecar(path, command=None):
    """(sidecar path, its dict) of the run that `path` names (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise RunError(f"{str(path)!r} does not exist")
    if path.is_dir() and (path / SIDECAR["reproduce"]).is_file():  # a reproduce run's own directory
        path = path / SIDECAR["reproduce"]
    if path.is_dir():
        corrupt = []
        found = _sidecars(path, command, corrupt)
        if not found:
            what = f"no {command} run" if command else "no fnd run"
            orphans = sorted(
                p.name
                for p in path.glob(f"{command or '*'}-*.csv")  # a run's files without their sidecar
                if not p.name.startswith(_not_read())
            )
            held = sorted({meta["command"] for _, meta in _sidecars(path)}) if command else []
            why = (
                f"; {corrupt[-1][1]}"
                if corrupt
                else f"; {orphans[-1]} is there without its sidecar {orphans[-1][:-4]}.json"
                if orphans
                else f"; it holds {' and '.join(held)} runs"
                if held
                else f"; only {' and '.join(NOT_READ)} runs, which are not read back (their verdicts are "
                "their CSVs)"
                if any(p.name.startswith(_not_read()) for p in path.glob("*.json"))
                else ""
            )
            raise RunError(f"{what} in directory {str(path)!r}{why}")
        newer = [
            e for p, e in corrupt if _stamp(p) > _stamp(found[-1][0]) and p.name.startswith(command or "")
        ]
        if newer:  # the newest run is the one asked for: never an older one in its place, unsaid
            raise RunError(f"{newer[-1]} (the newest run in {str(path)!r}; name an older one to read it)")
        return found[-1]
    meta = _sidecar(path)
    if meta:
        return path, meta
    corrupt = []
    for sidecar, meta in _sidecars(path.parent, corrupt=corrupt):
        if path.name in meta["files"]:
            return sidecar, meta
    for sidecar, error in corrupt:  # the sidecar that would have listed it
        if path.name.startswith(sidecar.name[: -len(".json")]) or sidecar.name in SIDECAR.values():
            raise RunError(error)
    if path.name.startswith(_not_read()):
        raise RunError(
            f"{str(path)!r} is from a {path.name.split('-')[0]} run, which show and compare do not read "
            f"back (its verdicts are its CSV); they read the runs of {', '.join(READ)}"
        )
    raise RunError(f"{str(path)!r} is not part of an fnd run (no sidecar beside it lists it)")


def load(path, command=None):
    """Read the run that `path` names; RunError if it cannot be read, or does not read as fnd writes a run."""
    try:
        sidecar, meta = find_sidecar(path, command)
    except OSError as e:  # a name too long, a directory that cannot be listed
        raise RunError(f"cannot read {str(path)!r}: {e.strerror or first_line(e)}") from e
    if command and meta["command"] != command:
        raise RunError(f"{str(path)!r} is a {meta['command']} run, not {command}")
    directory = sidecar.parent
    own_directory = sidecar.name == SIDECAR.get(meta["command"])
    stem = "" if own_directory else sidecar.name[: -len(".json")]
    csvs = {}
    kind = kind_of(meta)
    text = dict.fromkeys([*kind.of_type(TEXT), *NAMES], str)  # "1.10", a layer's name, is not a number
    for name in meta["files"]:
        if isinstance(name, str) and name.endswith(".csv"):
            try:
                csvs[name[len(stem) :]] = pd.read_csv(directory / name, dtype=text)
            except (OSError, ValueError) as e:
                raise RunError(f"cannot read {str(directory / name)!r}: {first_line(e)}") from e
    main = kind.main
    if main not in csvs:
        raise RunError(f"run {stem or directory.name!r} has no {stem}{main}")
    rows = csvs.pop(main)
    missing = [c for c in kind.names(read=True) if c not in rows]
    if missing:
        raise RunError(
            f"{str(directory / (stem + main))!r} lacks column(s) {', '.join(missing)}: not as fnd "
            "writes it (another fnd version, or edited?)"
        )
    _check_values(rows, kind, str(directory / (stem + main)))
    for column in kind.of_type(TEXT):
        if column in rows:
            rows[column] = rows[column].astype(object).where(rows[column].notna(), "").astype(str)
    pyperf_name = f"{stem}.pyperf.json"
    pyperf_path = directory / pyperf_name if pyperf_name in meta["files"] else None
    return SavedRun(sidecar, meta, rows, csvs, pyperf_path)


def _check_values(rows, kind, path):
    """RunError unless the columns show and compare read hold what fnd writes there (numbers are made
    numeric)."""

    def refuse(column, what):
        raise RunError(f"{path!r}: column {column} {what}: not as fnd writes it (edited, or cut off?)")

    for column in kind.names(read=True, type=NUMBER):
        numbers = pd.to_numeric(rows[column], errors="coerce")
        bad = rows[column][rows[column].notna() & numbers.isna()]
        if len(bad):
            refuse(column, f"holds {bad.iloc[0]!r}, not a number")
        rows[column] = numbers
    for column in kind.names(read=True, type=BOOL):
        odd = set(rows[column].dropna().astype(str)) - {"True", "False"}
        if odd:
            refuse(column, f"holds {sorted(odd)[0]!r}, not True or False")
    for column in kind.names(key=True):
        if rows[column].isna().any():
            refuse(
                column, f"is empty in row {int(rows[column].isna().to_numpy().argmax()) + 1} (a short row?)"
            )
