"""What `fnd history --command NAME` reads back: the figures each kind follows (`fndcli.kind.Follow`), one
series per row key and figure on one machine, one row per commit in commit order; where each changed; which
fail at head. `history` is the one call the command makes, for matmul-bench's timings too.

A deterministic figure (the code, its seed and the machine fix it: a gradient's error, a stack's decades, a
loss) changes where it differs from the previous commit's by more than RTOL relative (ATOL absolute, for a
figure near 0), or where its verdict changes. A measured one (peak's rates) is judged as matmul-bench's
times are (`changes.change_points`), each run one sample of its reciprocal: the time a unit of work takes.
"""

import json
import math
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from fndcli.history import changes, read
from fndcli.history.schema import CELLS, RUNS
from fndcli.kind import BOOL, NUMBER
from fndcli.kinds import KINDS, MATMUL_BENCH

# float32 sums taken in another order (another thread count, another torch) move a figure by ~1e-7 relative;
# carried through an epoch of training, by ~1e-6. 1e-4 is far above that and far below any change that
# matters (a gradient bug moves rel_err by orders of magnitude, an init scheme its decades by tenths).
RTOL = 1e-4
ATOL = 1e-6  # a figure near 0 (a rel_err of 0, decades of -1.5e-09): float32's noise, 10x its epsilon

# a deterministic series' change: into a failing verdict (from another, or in a series first seen after the
# first commit read), out of one, between two that pass, first seen (not failing), its figure alone
REGRESSION, FIXED, VERDICT, NEW, MOVED = "REGRESSION", "fixed", "verdict", "new", "moved"
VERDICT_CHANGES = (REGRESSION, FIXED, VERDICT, NEW)
BY_NAME = {k.name: k for k in KINDS}


@dataclass(frozen=True)
class History:
    """What `fnd history` shows of one command's runs on one machine."""

    rows: list  # as its kind names them: fndcli.kinds.HISTORY (matmul-bench), HISTORY_FIGURES (the others)
    gated: list  # the series --gate fails on (exit 1), named
    unjudged: list  # the rows of changes proposed but not judged that --gate counts (exit 3): matmul-bench's
    series: int


@dataclass
class Point(read.Commit):
    """One commit of one series: the newest run's figure and verdict there (a measured figure: every run's
    value, in `samples`)."""

    value: float | str | None = None
    verdict: str | None = None


@dataclass
class Run:
    """One run read back: its kind, its commit's facts, its settings, the cells its kind follows."""

    id: int
    kind: object  # fndcli.kind.Kind
    facts: dict  # git_commit, commit_utc, subject, branch
    config: dict
    rows: dict = field(default_factory=dict)  # {row: {column: a number, a text, 'True'/'False' for a bool}}


def history(store, command, fingerprint, s, pattern=None, since=None, branch=None, anchor=None, commits=None):
    """The History of `command`'s complete runs at a known commit on the machine `fingerprint`: matmul-bench's
    timings per benchmark (`read.matmul_series`, `changes.history_rows`), the others' figures per series."""
    if command == MATMUL_BENCH.command:
        series = read.matmul_series(store, fingerprint, pattern, since, branch, anchor, commits)
        rows, gated = changes.history_rows(series, s, anchor)
        return History(rows, gated, [r for r in rows if r["change"] == "not judged"], len(series))
    runs = _runs(store, command, fingerprint, since, branch, commits)
    series = figure_series(runs, pattern)
    commits = list(dict.fromkeys(r.facts["git_commit"] for r in runs))
    rows, gated = [], []
    for (kind, name, figure), points in series.items():
        marks = _measured(points, name, s) if kind.history.measured else _compared(points, kind, commits[0])
        rows += [_row(name, figure, p, *mark) for p, mark in zip(points, marks)]
        # a series with a failing verdict (not train's, not peak's), at head
        gates = kind.history.failing and points[-1].commit == commits[-1]
        since_commit = gates and _failing_since(points, marks)
        if since_commit:
            gated.append(f"{title(name, figure)} ({points[-1].verdict} since {since_commit[:10]})")
    return History(rows, gated, [], len(series))


def title(series, figure):
    """A series as `fnd history` heads it: its row's key values, then the figure followed (train's: the
    figure alone)."""
    return f"{series}: {figure}" if series else figure


def commands(store, fingerprint):
    """The commands whose complete runs at a known commit the store holds for the machine, sorted; then
    how many complete runs it holds there at an unknown commit (made outside a git repository)."""
    query = read.runs_kept(sa.select(RUNS.c.command).distinct(), fingerprint)
    unknown = read.complete_on(sa.select(sa.func.count()).select_from(RUNS), fingerprint)
    unknown = unknown.where(RUNS.c.git_commit.is_(None))
    with store._faults(), store.engine.connect() as conn:
        return sorted(conn.execute(query).scalars()), conn.execute(unknown).scalar()


def _runs(store, command, fingerprint, since, branch, commits=None):
    """Each complete run of `command` at a known commit on the machine, in commit order, with the cells of
    the columns its kind follows."""
    kinds = [k for k in KINDS if k.command == command and k.history]
    wanted = {c for k in kinds for c in _followed(k)}
    query = read.runs_kept(
        sa.select(
            *(RUNS.c.id, RUNS.c.kind, RUNS.c.config),
            *(RUNS.c.git_commit, RUNS.c.commit_utc, RUNS.c.subject, RUNS.c.branch),
            *(CELLS.c.row, CELLS.c.name, CELLS.c.number, CELLS.c.text),
        )
        .join(CELLS, CELLS.c.run_id == RUNS.c.id)
        .where(RUNS.c.kind.in_([k.name for k in kinds]), CELLS.c.name.in_(sorted(wanted)))
        .order_by(RUNS.c.commit_utc, RUNS.c.id, CELLS.c.row),
        fingerprint,
        command,
        since,
        branch,
        commits,
    )
    with store._faults(), store.engine.connect() as conn:
        cells = conn.execute(query).mappings().all()
    runs = {}
    for c in cells:
        kind = BY_NAME[c["kind"]]
        run = runs.get(c["id"]) or runs.setdefault(
            c["id"],
            Run(
                c["id"],
                kind,
                {k: c[k] for k in ("git_commit", "commit_utc", "subject", "branch")},
                json.loads(c["config"]),
            ),
        )
        run.rows.setdefault(c["row"], {})[c["name"]] = _value(kind, c)
    return list(runs.values())


def _followed(kind):
    """The columns a kind's history reads: its keys, figures, verdicts."""
    follow = kind.history
    return {*kind.names(key=True), *(c for pair in follow.figures for c in pair if c), follow.once} - {None}


def _value(kind, cell):
    """A cell as its CSV wrote it: a number, a text, a bool as 'True' or 'False'; None where empty."""
    types = {c.name: c.type for c in kind.columns}
    if types.get(cell["name"]) == BOOL:
        return None if cell["number"] is None else str(bool(cell["number"]))
    return cell["number"] if types.get(cell["name"]) == NUMBER else cell["text"]


def figure_series(runs, pattern=None):
    """{(kind, series, figure): [Point, ...] in commit order} of the runs, those whose title matches the
    pattern (`read.matching`)."""
    settings = _settings(runs)
    series, seen = {}, set()
    for run in runs:
        follow = run.kind.history
        for values in run.rows.values():  # in the CSV's order: a later row (epoch) overwrites an earlier
            name = " ".join(_shown(values[k]) for k in _series_key(run.kind)) + settings.get(run.id, "")
            for figure, verdict in follow.figures:
                value, measurement = values.get(figure), (name, figure, values.get(follow.once))
                if value is None or not read.matching(title(name, figure), pattern):
                    continue
                if follow.once and measurement in seen:  # reported by an earlier run (peak's cached rows)
                    continue
                seen.add(measurement)
                at = series.setdefault((run.kind, name, figure), {})
                facts = run.facts
                point = at.get(facts["git_commit"]) or at.setdefault(
                    facts["git_commit"],
                    Point(facts["git_commit"], facts["commit_utc"], facts["subject"], facts["branch"]),
                )
                point.runs.add(run.id)
                if follow.measured:
                    point.samples.append(value)
                else:  # the newest run at a commit gives its figure
                    point.value, point.verdict = value, verdict and values.get(verdict)
    return {key: list(at.values()) for key, at in series.items()}


def _series_key(kind):
    """The key columns that name a kind's series: its keys, its figures, verdicts and `last` aside."""
    follow = kind.history
    aside = {c for pair in follow.figures for c in pair} | {follow.last}
    return [k for k in kind.names(key=True) if k not in aside]


def _shown(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _settings(runs):
    """{run id: ' [KEY=VALUE ...]', the settings (the sidecar's config, --out aside) in which the run differs
    from another run of its kind}: runs of other settings are series apart. '' where all are alike."""
    configs = {
        r.id: {k: v if isinstance(v, str) else json.dumps(v) for k, v in r.config.items() if k != "out"}
        for r in runs
        if r.kind.history.settings
    }
    out = {}
    for kind in {r.kind for r in runs}:
        mine = [configs[r.id] for r in runs if r.kind is kind and r.id in configs]
        differ = sorted(k for k in {k for c in mine for k in c} if len({c.get(k) for c in mine}) > 1)
        for r in runs:
            if r.kind is kind and differ and r.id in configs:
                said = " ".join(f"{k}={configs[r.id].get(k, '(unset)')}" for k in differ)
                out[r.id] = f" [{said}]"
    return out


def _compared(points, kind, first):
    """(change, size, p) of each commit of a deterministic series: its verdict or its figure beyond the
    tolerance, against the previous commit's."""
    failing, marks = kind.history.failing, []
    for i, p in enumerate(points):
        if i == 0:
            # first seen after the first commit read: a check added, a setting changed
            new = p.commit != first
            marks.append(((REGRESSION if p.verdict in failing else NEW) if new else "", math.nan, math.nan))
            continue
        before = points[i - 1]
        numbers = isinstance(p.value, float) and isinstance(before.value, float)
        size = (p.value - before.value) / abs(before.value) if numbers and before.value else math.nan
        if p.verdict != before.verdict:
            change = REGRESSION if p.verdict in failing else FIXED if before.verdict in failing else VERDICT
        elif numbers and not math.isclose(p.value, before.value, rel_tol=RTOL, abs_tol=ATOL):
            change = MOVED
        else:
            change, size = "", math.nan
        marks.append((change, size, math.nan))
    return marks


def _failing_since(points, marks):
    """The commit of the series' newest verdict change when that change is into a failing verdict, else
    None."""
    verdict_changes = [i for i, (change, *_) in enumerate(marks) if change in VERDICT_CHANGES]
    newest = verdict_changes[-1] if verdict_changes else None
    return points[newest].commit if newest is not None and marks[newest][0] == REGRESSION else None


def _measured(points, name, s):
    """(change, size, p) of each commit of a measured rate, by `changes.change_points` on each run's time a
    unit of work takes; size is the rate's change. Each commit's value: the median of its runs'."""
    commits = [
        read.Commit(p.commit, p.commit_utc, p.subject, p.branch, [1 / v for v in p.samples]) for p in points
    ]
    found, unjudged = changes.change_points(name, commits, s)
    marks = []
    for i, p in enumerate(points):
        p.value = float(np.median(p.samples))
        r = found.get(i) or ({"verdict": "not judged"} if i in unjudged else {})
        size = 1 / (1 + r["change"]) - 1 if math.isfinite(r.get("change", math.nan)) else math.nan
        marks.append((r.get("verdict", ""), size, r.get("p", math.nan)))
    return marks


def _row(series, figure, point, change, size, p):
    return {
        "series": series,
        "figure": figure,
        "commit": point.commit[:10],
        "date": read.commit_date(point.commit_utc),
        "subject": point.subject or "",
        "value": point.value,
        "verdict": point.verdict,
        "runs": len(point.runs),
        "change": change,
        "size": size,
        "p": p,
    }
