"""The history store (issue 31, item 1): every measuring run added in one transaction, to real SQLite files
and to a real PostgreSQL server these tests start; every figure read back equals its file's, read here with
pandas and pyperf; faults are one line and exit 2, and lose nothing."""

import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import EXAMPLES, assert_one_line_error

from fndcli.history import store as history
from fndcli.history.entry import entry_of
from fndcli.history.facts import Commit, code_directory, commit_of, this_machine
from fndcli.history.schema import SCHEMA
from fndcli.kinds import kind_of

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
# the tests that need a PostgreSQL server share one, and the ladder run: one xdist worker starts both
SHARED = pytest.mark.xdist_group("ladder-run")


def stored(url, path=None):
    """The store's runs (those of the run whose sidecar is `path`, if given)."""
    store = history.Store(history.parse_url(url))
    try:
        runs = store.read()
    finally:
        store.close()
    return [r for r in runs if path is None or r["run"]["path"] == str(Path(path).resolve())]


def main_csv(sidecar):
    return sidecar.with_name(sidecar.name[: -len(".json")] + kind_of(json.loads(sidecar.read_text())).main)


def sidecar_of(out, command):
    (path,) = [p for p in Path(out).glob(f"{command}-*.json") if not p.name.endswith(".pyperf.json")]
    return path


def table_counts(path):
    with sqlite3.connect(path) as db:
        return {
            t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("machines", "runs", "cells")
        }


def assert_cells_are_the_csv(run, csv_path):
    """Each stored cell is its CSV cell: a number the float pandas reads (True 1, False 0), a text the text,
    NULL an empty cell; and there is one for every cell."""
    numbers = pd.read_csv(csv_path)
    texts = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    cells = {(c["row"], c["name"]): c for c in run["cells"]}
    assert len(cells) == texts.size and len(texts) > 0
    for (row, name), cell in cells.items():
        if cell["number"] is not None:
            assert cell["number"] == float(numbers.at[row, name]), (row, name)
        elif cell["text"] is not None:
            assert cell["text"] == texts.at[row, name], (row, name)
        else:
            assert texts.at[row, name] in ("", "nan"), (row, name)


def assert_timings_are_the_pyperf_file(run, pyperf_path):
    """Every worker process's values, in order, as pyperf reads the file (calibration and warmups aside)."""
    import pyperf

    want = {
        (bench.get_name(), p): list(values)
        for bench in pyperf.BenchmarkSuite.load(str(pyperf_path)).get_benchmarks()
        for p, values in enumerate(run.values for run in bench.get_runs() if run.values)
    }
    got = {}
    for t in run["timings"]:
        got.setdefault((t["benchmark"], t["process"]), []).append(t["seconds"])
    assert got == want and want


@SHARED
def test_a_matmul_run_is_stored_with_its_commit_machine_versions_cells_and_worker_values(ladder_run):
    import numba
    import torch

    from fndcli.kernels.jitenv import isa
    from fndcli.machine import cpu_model, physical_cores

    sidecar = sidecar_of(ladder_run.out, "matmul-bench")
    meta = json.loads(sidecar.read_text())
    (run,) = stored(os.environ["FND_DB"], sidecar)  # conftest's store: the suite's runs go there
    facts = run["run"]
    assert_cells_are_the_csv(run, sidecar.with_suffix(".csv"))
    assert_timings_are_the_pyperf_file(run, sidecar.with_suffix(".pyperf.json"))
    frame = pd.read_csv(sidecar.with_suffix(".csv"))
    for t in run["timings"]:  # each value tied to its row
        r = frame.iloc[t["row"]]
        assert t["benchmark"] == f"{r['impl']} {r.m}x{r.k}x{r.n} {r['dtype']} {r.device}"
    assert (facts["command"], facts["kind"], facts["status"], facts["exit_code"]) == (
        "matmul-bench",
        "matmul-bench",
        "complete",
        0,
    )
    assert json.loads(facts["config"]) == meta["config"] and "db" not in meta["config"]
    assert (facts["started_utc"], facts["finished_utc"]) == (meta["started_utc"], meta["finished_utc"])
    assert (facts["torch_version"], facts["numba_version"]) == (torch.__version__, numba.__version__)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)  # pytest's directory
    assert facts["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert (facts["cpu_model"], facts["isa"], facts["cores"], facts["cpus"]) == (
        cpu_model(),
        isa()[0],
        physical_cores(),
        os.cpu_count(),
    )
    assert facts["fingerprint"] == this_machine().fingerprint and len(facts["fingerprint"]) == 16


def test_the_commit_is_the_one_of_the_repository_the_users_code_comes_from(fnd, tmp_path, monkeypatch):
    repo, elsewhere = tmp_path / "kernels", tmp_path / "elsewhere"
    repo.mkdir(), elsewhere.mkdir()
    shutil.copy(EXAMPLES / "chapter_model.py", repo)

    def git(*args):
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "Model: the chapter's <b>élan</b>")
    (repo / "chapter_model.py").write_text((repo / "chapter_model.py").read_text() + "\n# changed\n")
    monkeypatch.chdir(elsewhere)  # not a git repository: the code's repository is the one that counts
    db = f"sqlite:///{tmp_path / 'h.db'}"
    model = f"{repo / 'chapter_model.py'}:Model"
    assert code_directory({"impl": ["torch", model]}) == repo.resolve()
    result = fnd("gradcheck", "--batch", "4", "--model", model, "--db", db, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0 and result.stderr == "", result.output
    (run,) = stored(db)
    when = git("log", "-1", "--format=%cI").strip()
    assert {k: run["run"][k] for k in ("repo", "git_commit", "dirty", "branch", "subject")} == {
        "repo": str(repo.resolve()),
        "git_commit": git("rev-parse", "HEAD").strip(),
        "dirty": True,
        "branch": "main",
        "subject": "Model: the chapter's <b>élan</b>",
    }
    assert pd.Timestamp(run["run"]["commit_utc"]) == pd.Timestamp(when)
    assert_cells_are_the_csv(run, sidecar_of(tmp_path / "out", "gradcheck").with_suffix(".csv"))


def test_outside_a_git_repository_the_run_is_kept_its_commit_unknown_said_once(fnd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    result = fnd("peak", "--db", db, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("Note: ")]
    assert len(notes) == 1 and "not in a git repository" in notes[0] and not result.stderr, result.output
    (run,) = stored(db)
    assert Commit(*(run["run"][k] for k in ("repo", "git_commit"))) == Commit()
    assert commit_of(tmp_path) == Commit()
    assert_cells_are_the_csv(run, sidecar_of(tmp_path / "out", "peak").with_suffix(".csv"))


def corrupt(path):
    path.write_bytes(b"not a database, " * 512)
    return f"sqlite:///{path}"


def newer(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE fnd_store (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO fnd_store VALUES ('schema', ?)", (str(SCHEMA + 1),))
    return f"sqlite:///{path}"


def not_fnds(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "make, fragments",
    [
        (corrupt, ["is not an SQLite database, or is damaged", "file is not a database"]),
        (newer, [f"written by a newer fnd (history schema {SCHEMA + 1}; this fnd writes {SCHEMA})"]),
        (not_fnds, ["holds tables named as fnd's (runs) but is not an fnd history store"]),
        (lambda p: "postgresql://fnd@/fnd?host=/nonexistent-dir", ["cannot reach the history store", "fnd@"]),
        (lambda p: "history.db", ["'history.db' is not a database URL: give sqlite:///"]),
        (lambda p: "mysql://u@h/db", ["in sqlite or postgresql, not mysql"]),
        (lambda p: "sqlite://", ["in memory, which keeps nothing"]),
        (lambda p: f"sqlite:///{p.parent / 'no-such-dir' / 'h.db'}", ["no-such-dir does not exist"]),
        (lambda p: " ", ["--db (or FND_DB) is empty: give a URL"]),  # --db "$UNSET": not the home store
    ],
    ids=[
        "corrupt",
        "newer",
        "not-fnds",
        "pg-not-answering",
        "not-a-url",
        "mysql",
        "in-memory",
        "no-directory",
        "empty",
    ],
)
def test_a_store_that_cannot_be_written_is_one_line_and_exit_2_before_any_work(
    fnd, tmp_path, make, fragments
):
    path = tmp_path / "h.db"
    db = make(path)
    before = path.read_bytes() if path.exists() else None
    result = fnd("gradcheck", "--batch", "4", "--db", db, "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()  # refused before the work and --out
    assert (path.read_bytes() if path.exists() else None) == before


def test_a_store_locked_beyond_its_timeout_is_exit_2_before_the_work(fnd, tmp_path):
    path = tmp_path / "h.db"
    assert fnd("peak", "--db", f"sqlite:///{path}", "--out", tmp_path / "first").exit_code == 0
    before = table_counts(path)
    with sqlite3.connect(path, isolation_level=None) as other:
        other.execute("BEGIN IMMEDIATE")  # another writer, holding the lock
        started = time.perf_counter()
        result = fnd("peak", "--db", f"sqlite:///{path}?timeout=0.1", "--out", tmp_path / "out")
        waited = time.perf_counter() - started
        other.execute("ROLLBACK")
    assert_one_line_error(
        result, f"the history store {path} is locked: another process held it for over 0.1 s"
    )
    assert 0.1 <= waited and not (tmp_path / "out").exists()
    assert table_counts(path) == before


def test_a_history_write_that_fails_after_the_work_keeps_the_files(fnd, tmp_path, monkeypatch):
    """The store is checked before the work; locked by another writer during it, beyond the timeout: the
    run's files stay, one line says why the history lacks the run, exit 2."""
    from fndcli.bench import peak

    path, held = tmp_path / "h.db", []
    real = peak.run_peak

    def locked_meanwhile(*args, **kwargs):
        held.append(sqlite3.connect(path, isolation_level=None))
        held[-1].execute("BEGIN IMMEDIATE")
        return real(*args, **kwargs)

    monkeypatch.setattr(peak, "run_peak", locked_meanwhile)
    result = fnd("peak", "--db", f"sqlite:///{path}?timeout=0.1", "--out", tmp_path / "out", "-q")
    held[0].close()
    assert_one_line_error(result, "history write failed: the history store", "is locked", "files are kept")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert [Path(f).suffix for f in files] == [".csv", ".json"] and result.stdout.count("\n") == 2
    assert table_counts(path)["runs"] == 0


def test_ctrl_c_mid_write_leaves_the_store_as_it_was(fnd, tmp_path, monkeypatch):
    """Ctrl-C after the run's row went in and before its cells did: the transaction is rolled back, its new
    machine row with it; the run's files stay; exit 130."""
    import fndcli.history.entry as entry

    path = tmp_path / "h.db"

    class Interrupted(list):
        def __iter__(self):
            raise KeyboardInterrupt

    real = entry.entry_of

    def interrupted_once_its_row_is_in(*args):
        run = real(*args)
        return dataclasses.replace(run, cells=Interrupted(run.cells))

    monkeypatch.setattr(entry, "entry_of", interrupted_once_its_row_is_in)
    result = fnd("peak", "--db", f"sqlite:///{path}", "--out", tmp_path / "out", "-q")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == (
        "Error: history write interrupted (Ctrl-C): the store is as it was, without this run; "
        "this run's files are kept"
    )
    assert table_counts(path) == {"machines": 0, "runs": 0, "cells": 0}
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_no_history_opens_no_store_and_refuses_db(fnd, tmp_path, monkeypatch):
    path = tmp_path / "h.db"
    monkeypatch.setenv("FND_DB", corrupt(path))  # it would be refused: --no-history never opens it
    assert fnd("peak", "--no-history", "--out", tmp_path / "out", "-q").exit_code == 0
    assert path.read_bytes() == b"not a database, " * 512
    result = fnd(
        "peak", "--no-history", "--db", f"sqlite:///{tmp_path / 'other.db'}", "--out", tmp_path / "x"
    )
    assert_one_line_error(result, "'--db'", "--no-history adds nothing to a store")


WRITER = """
import contextlib, os, sys, time
from fndcli.history import store
from fndcli.history.entry import entry_of
from fndcli.history.facts import Commit, this_machine
url, sidecar, ready = sys.argv[1:]
real = store.Store._writing

@contextlib.contextmanager
def holding(self):  # each transaction holds the store's lock a while: the other writer must wait for it
    with real(self) as conn:
        yield conn
        time.sleep(0.1)

store.Store._writing = holding
open(os.path.join(ready, str(os.getpid())), "w").close()
while len(os.listdir(ready)) < 2:  # the two start together
    time.sleep(0.002)
opened = store.Store.open(url)
opened.record(entry_of(sidecar, Commit(), this_machine()))
"""


def test_two_runs_written_at_once_both_land(fnd, tmp_path):
    """Two processes open a store not made yet at the same moment (both make its tables), then write a run
    each, each transaction holding the lock 0.1 s: what Run does at its start and its end. Nothing is lost."""
    (tmp_path / "ready").mkdir()
    db = f"sqlite:///{tmp_path / 'h.db'}"
    for i in range(2):
        assert fnd("peak", "--no-history", "--out", tmp_path / str(i), "-q").exit_code == 0
    sidecars = [str(sidecar_of(tmp_path / str(i), "peak")) for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db, sidecar, str(tmp_path / "ready")], stderr=subprocess.PIPE
        )
        for sidecar in sidecars
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    runs = stored(db)
    assert sorted(r["run"]["path"] for r in runs) == sidecars
    for run in runs:
        assert_cells_are_the_csv(run, Path(run["run"]["path"]).with_suffix(".csv"))


# --- PostgreSQL: a real server, started once for the tests that ask for it ----------------------------------


class Postgres:
    """A server of the tests' own, on a unix socket in `root`; `database(name)` makes one, gives its URL."""

    def __init__(self, root):
        self.root = root

    def database(self, name):
        import psycopg

        with psycopg.connect(host=str(self.root), user="postgres", dbname="postgres", autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.root}"


@pytest.fixture(scope="session")
def postgres():
    """initdb and pg_ctl start into a temporary directory (as the postgres user when the suite runs as root:
    initdb refuses root), listening on a unix socket there and no TCP port; stopped at the end."""
    if not PG_BIN:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): apt-get install postgresql"
        )
    bin = PG_BIN[-1].parent
    root = Path(
        tempfile.mkdtemp(prefix="fnd-pg-", dir="/tmp")
    )  # short: a socket's path has at most 107 bytes
    user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if user:
        shutil.chown(root, "postgres")
    data = root / "data"
    started = time.perf_counter()
    subprocess.run(
        [*user, bin / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-k {root} -c listen_addresses='' -F"
    subprocess.run(
        [*user, bin / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    print(f"PostgreSQL started in {time.perf_counter() - started:.2f} s")
    try:
        yield Postgres(root)
    finally:
        subprocess.run(
            [*user, bin / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@SHARED
def test_the_same_runs_read_back_identically_from_sqlite_and_postgresql(fnd, postgres, ladder_run, tmp_path):
    """gradcheck and init-sweep through the real commands into PostgreSQL; then those and the ladder, the same
    entries, into a new SQLite file and a new PostgreSQL database: both read back the same, to the bit."""
    cli = postgres.database("cli")
    sweep = (
        "init-sweep",
        "--depth",
        "2",
        "--width",
        "8",
        "--seeds",
        "2",
        "--scheme",
        "kaiming",
        "--act",
        "relu",
    )
    for args in (("gradcheck", "--batch", "4"), sweep):
        result = fnd(*args, "--db", cli, "--out", tmp_path, "-q")
        assert result.exit_code == 0, result.output
    sidecars = [sidecar_of(tmp_path, c) for c in ("gradcheck", "init-sweep")]
    sidecars.append(sidecar_of(ladder_run.out, "matmul-bench"))
    commit, machine = commit_of(Path.cwd()), this_machine()
    urls = [f"sqlite:///{tmp_path / 'h.db'}", postgres.database("same")]
    for url in urls:
        store = history.Store.open(url)
        for sidecar in sidecars:
            store.record(entry_of(sidecar, commit, machine))
        store.close()
    from_sqlite, from_postgresql = (stored(url) for url in urls)
    assert from_sqlite == from_postgresql and len(from_postgresql) == 3 and from_postgresql[2]["timings"]
    through_the_cli = stored(cli)
    assert [r["cells"] for r in through_the_cli] == [r["cells"] for r in from_postgresql[:2]]
    for run, sidecar in zip(through_the_cli, sidecars):
        assert_cells_are_the_csv(run, main_csv(sidecar))


@SHARED
def test_two_writers_at_once_on_postgresql_both_land(postgres, ladder_run, monkeypatch):
    """Two connections make the tables of a new database at once and write at once, each holding its
    transaction open 0.05 s: the advisory lock queues them, both runs land."""
    url = postgres.database("concurrent")
    entry = entry_of(sidecar_of(ladder_run.out, "matmul-bench"), Commit(), this_machine())
    real = history.Store._writing

    def holding(self):
        import contextlib

        @contextlib.contextmanager
        def held():
            with real(self) as conn:
                yield conn
                time.sleep(0.05)

        return held()

    monkeypatch.setattr(history.Store, "_writing", holding)
    start, errors = threading.Barrier(2), []

    def write():
        start.wait()
        try:
            store = history.Store.open(url)
            store.record(entry)
            store.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    runs = stored(url)
    assert len(runs) == 2 and runs[0] == runs[1] and len(runs[0]["timings"]) == len(entry.timings)


@SHARED
def test_fnd_history_reads_the_same_from_postgresql_as_from_sqlite(fnd, postgres, tmp_path):
    """The same runs (a kernel 1.5x slower from commit 6 of 10) kept in a real PostgreSQL server and in an
    SQLite file: `fnd history` gives the same rows, the regression at commit 6 alone, and the same gate."""
    from test_history_cmd import history_json, make_history

    docs, codes = [], []
    for name, db in (("sqlite", None), ("postgresql", postgres.database("history-cmd"))):
        (tmp_path / name).mkdir()
        url, hashes = make_history(tmp_path / name, 10, slower_at=6, db=db)
        result, doc = history_json(fnd, tmp_path / name, url)
        assert result.exit_code == 0, result.output
        docs.append({**doc, "store": None})
        codes.append(fnd("history", "--db", url, "--gate", "--out", tmp_path / name / "g", "-q").exit_code)
    assert docs[0] == docs[1] and codes == [1, 1]
    assert [(r["commit"], r["change"]) for r in docs[1]["rows"] if r["change"]] == [
        (hashes[5][:10], "REGRESSION")
    ]
