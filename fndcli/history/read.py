"""What `fnd history` reads back from the store: matmul-bench's timings per benchmark and commit, on one
machine, each worker process's fastest value (as `fnd compare` samples a run: `SavedRun.process_samples`);
`runs_kept`, the runs every reader counts.

Read only: a store that holds no runs is said, never made.
"""

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from fndcli.bench.spec import split_name
from fndcli.history.schema import CELLS, MACHINES, RUNS, SCHEMA, STORE, TIMINGS
from fndcli.history.store import Store, StoreError, parse_url


@dataclass
class Commit:
    """One commit of one benchmark's series: its facts and every worker process's fastest value, over all of
    that commit's runs on the machine."""

    commit: str
    commit_utc: str
    subject: str
    branch: str | None
    samples: list = field(default_factory=list)  # seconds, one per worker process
    runs: set = field(default_factory=set)


def open_reading(db):
    """The store `db` names (--db, FND_DB; None: the default file), for reading; StoreError when there is no
    store there, or it is not fnd's, or a newer fnd wrote it."""
    url = parse_url(db)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise StoreError(f"the history store {url.database} does not exist: no run has been added to it yet")
    store = Store(url)
    with store._faults(), store.engine.connect() as conn:
        if STORE.name not in sa.inspect(conn).get_table_names():
            store.close()
            raise StoreError(f"the history store {store.where} is empty: no run has been added to it yet")
        found = conn.execute(sa.select(STORE.c.value).where(STORE.c.key == "schema")).scalar()
    if (found or "").isdigit() and int(found) > SCHEMA:
        store.close()
        raise StoreError(
            f"the history store {store.where} was written by a newer fnd (history schema {found}; this fnd "
            f"reads {SCHEMA}): upgrade fnd"
        )
    return store


def matching(name, pattern):
    """Whether a benchmark's name matches the pattern: a glob when it holds * ? or [, else a substring."""
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


AT_REV = re.compile(r".+:[^\W\d]\w*@.+")  # FILE.py:NAME@REV, as fndcli.userref reads it


def at_rev(benchmark):
    """Whether a benchmark times the user's code at another revision (`kern.py:mm@origin/main 64x64x64
    float32 cpu`): not the code of the commit its run is filed under."""
    return bool(AT_REV.fullmatch(split_name(benchmark)[0]))


def complete_on(query, fingerprint):
    """The query (of RUNS) kept to the complete runs on the machine `fingerprint`."""
    return query.join(MACHINES, RUNS.c.machine_id == MACHINES.c.id).where(
        MACHINES.c.fingerprint == fingerprint, RUNS.c.status == "complete"
    )


def commit_date(utc):
    """A commit's time as history rows show it: '2026-01-04 12:00' (UTC), '' when unknown."""
    return (utc or "")[:16].replace("T", " ")


def runs_kept(query, fingerprint, command=None, since=None, branch=None, commits=None):
    """The query (of RUNS) kept to the complete runs at a known commit on the machine `fingerprint`: those of
    `command`, of commits made since `since` (UTC ISO text), made on `branch`, of `commits` (a set of hashes:
    --repo's), where given."""
    query = complete_on(query, fingerprint).where(RUNS.c.git_commit.is_not(None))
    for column, value in ((RUNS.c.command, command), (RUNS.c.branch, branch)):
        if value:
            query = query.where(column == value)
    if commits is not None:
        query = query.where(RUNS.c.git_commit.in_(sorted(commits)))
    return query.where(RUNS.c.commit_utc >= since) if since else query


def commits_of(store, fingerprint, command):
    """The commits at which the store holds complete runs of `command` on the machine."""
    query = runs_kept(sa.select(RUNS.c.git_commit).distinct(), fingerprint, command)
    with store._faults(), store.engine.connect() as conn:
        return set(conn.execute(query).scalars())


def matmul_series(store, fingerprint, pattern=None, since=None, branch=None, anchor=None, commits=None):
    """{(benchmark, threads): [Commit, ...] in commit order (commit time, then the first run's id)} of the
    complete matmul-bench runs made on the machine `fingerprint` at a known commit. A kernel loaded at
    another revision (`@REV`: the paired gate's base) is left out: its code is not that commit's, and the
    runs made at its own commit give its series. With `anchor` (an implementation), each sample is over the
    anchor's from the same run and worker process at the same shape, dtype, device and threads, as
    `fnd compare --anchor` divides them: the host's speed at that minute cancels. The anchor's own series,
    and a sample whose process has no anchor, are left out."""
    threads = CELLS.alias("threads")
    query = (
        sa.select(
            RUNS.c.id,
            RUNS.c.git_commit,
            RUNS.c.commit_utc,
            RUNS.c.subject,
            RUNS.c.branch,
            TIMINGS.c.benchmark,
            TIMINGS.c.process,
            sa.func.min(TIMINGS.c.seconds).label("fastest"),
            threads.c.number.label("threads"),
        )
        .join(TIMINGS, TIMINGS.c.run_id == RUNS.c.id)
        .outerjoin(
            threads,
            sa.and_(
                threads.c.run_id == RUNS.c.id, threads.c.row == TIMINGS.c.row, threads.c.name == "threads"
            ),
        )
        .group_by(RUNS.c.id, TIMINGS.c.benchmark, TIMINGS.c.process, threads.c.number)
        .order_by(RUNS.c.commit_utc, RUNS.c.id, TIMINGS.c.benchmark, TIMINGS.c.process)
    )
    query = runs_kept(query, fingerprint, "matmul-bench", since, branch, commits)
    with store._faults(), store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    fastest = (
        {(r["id"], r["benchmark"], r["process"], r["threads"]): r["fastest"] for r in rows} if anchor else {}
    )
    out = {}
    for r in rows:
        impl, rest = split_name(r["benchmark"])
        if not matching(r["benchmark"], pattern) or at_rev(r["benchmark"]) or (anchor and impl == anchor):
            continue
        value = r["fastest"]
        if anchor:
            ref = fastest.get((r["id"], f"{anchor} {rest}", r["process"], r["threads"]))
            if not ref:
                continue
            value /= ref
        key = (r["benchmark"], None if r["threads"] is None else int(r["threads"]))
        commits = out.setdefault(key, {})
        c = commits.setdefault(
            r["git_commit"], Commit(r["git_commit"], r["commit_utc"], r["subject"], r["branch"])
        )
        c.samples.append(value)
        c.runs.add(r["id"])
    return {key: list(commits.values()) for key, commits in out.items()}


def machines(store):
    """{fingerprint: cpu model} of the machines the store holds runs of."""
    with store._faults(), store.engine.connect() as conn:
        return dict(conn.execute(sa.select(MACHINES.c.fingerprint, MACHINES.c.cpu_model)).all())
