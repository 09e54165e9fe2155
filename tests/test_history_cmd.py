"""`fnd history` (issue 31, item 2): one row per benchmark and commit from the history store, change points
proposed by ruptures and confirmed by compare's verdict, and a gate.

The runs are not measured here (ten real matmul-bench runs would cost half a minute): fake runs on disk, as
fnd writes them (tests/test_compare.py's fake_matmul_run), each added to a store by the path a real run
takes (`entry_of` with the git facts `commit_of` reads, `Store.record`), one per commit of a real git
repository."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error
from test_compare import fake_matmul_run

from fndcli.history import store as history
from fndcli.history.changes import median_interval
from fndcli.history.entry import entry_of
from fndcli.history.facts import commit_of, this_machine
from fndcli.kinds import HISTORY

BENCHMARK = "kern.py:mm 4x4x4 float32 cpu"


def make_history(
    tmp_path,
    commits,
    slower_at=None,
    factor=1.5,
    seed=0,
    processes=(8, 17),
    impls=("kern.py:mm",),
    subject="kernel v{}".format,
    db=None,
    steady=None,
    host_noise=0.0,
    fixed_at=None,
):
    """A store (`db`, else a new SQLite file) of one matmul-bench run per commit of a git repository of
    `commits` commits, 8 to 16 worker processes each of values around 1e-5 with 2 % noise, `factor` times
    slower from commit `slower_at`; commit i's subject is subject(i).
    With `steady` (one of impls), that one keeps its level throughout, and each worker process runs at a
    speed of its own (sd `host_noise` on the log scale) shared by every benchmark it times, as a --gate run's
    processes do on a busy host. With `fixed_at`, the kernel is back to its level from that commit on, timed
    by 2 worker processes a commit there (a --quick-like few). (the store's URL, [each commit's hash])."""
    repo = tmp_path / "kernels"
    repo.mkdir()
    rng = np.random.default_rng(seed)
    db = db or f"sqlite:///{tmp_path / 'h.db'}"
    store, machine, hashes = history.Store.open(db), this_machine(), []

    def git(*args, when=None):
        env = {**os.environ, **({"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when} if when else {})}
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True, env=env)

    git("init", "-q", "-b", "main")
    try:
        for i in range(1, commits + 1):
            (repo / "kern.py").write_text(f"# version {i}\n")
            git("add", ".")
            when = f"2026-01-{i:02d}T12:00:00+00:00"
            git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", subject(i), when=when)
            level = 1e-5 * (
                factor if slower_at and i >= slower_at and not (fixed_at and i >= fixed_at) else 1.0
            )
            if fixed_at and i >= fixed_at:
                processes = (2, 3)
            if steady:
                hosts = np.exp(host_noise * rng.standard_normal(rng.integers(*processes)))
                timed = {
                    impl: [
                        list(h * (1e-5 if impl == steady else level) * (1 + 0.02 * rng.standard_normal(3)))
                        for h in hosts
                    ]
                    for impl in impls
                }
            else:
                runs = [
                    list(level * (1 + 0.02 * rng.standard_normal(3))) for _ in range(rng.integers(*processes))
                ]
                timed = dict.fromkeys(impls, runs)
            csv = fake_matmul_run(
                tmp_path / "runs" / str(i),
                timed,
                stamp=f"20260101-{i:02d}0000",
                status="complete",
                exit_code=0,
                finished_utc=when,
            )
            commit = commit_of(repo)
            store.record(entry_of(csv.with_suffix(".json"), commit, machine))
            hashes.append(commit.commit)
    finally:
        store.close()
    return db, hashes


def history_json(fnd, tmp_path, db, *args):
    result = fnd("history", "--db", db, "--format", "json", "--out", tmp_path / "o", *args)
    return result, (json.loads(result.stdout) if result.exit_code in (0, 1, 3) else None)


def test_a_kernel_15x_slower_from_commit_6_is_one_regression_there_and_the_gate_fails(fnd, tmp_path):
    db, hashes = make_history(tmp_path, 10, slower_at=6)
    result, doc = history_json(fnd, tmp_path, db)
    assert result.exit_code == 0, result.output
    rows = [r for r in doc["rows"] if r["benchmark"] == BENCHMARK]
    assert [r["commit"] for r in rows] == [h[:10] for h in hashes]  # one row per commit, in commit order
    assert [r["subject"] for r in rows] == [f"kernel v{i}" for i in range(1, 11)]
    assert all(8 <= r["n"] <= 16 and r["threads"] == 2 for r in rows)
    marked = [(r["commit"], r["change"]) for r in rows if r["change"]]
    assert marked == [(hashes[5][:10], "REGRESSION")]
    (six,) = [r for r in rows if r["change"]]
    assert 0.4 < six["size"] < 0.6 and six["p"] < 0.05
    assert rows[6]["median_s"] / rows[4]["median_s"] == pytest.approx(1.5, rel=0.05)
    assert all(r["low_s"] < r["median_s"] < r["high_s"] < 1.1 * r["low_s"] for r in rows)  # 2 % noise
    written = pd.read_csv(next((tmp_path / "o").glob("history-*.csv")))
    assert list(written.columns) == HISTORY.written() and len(written) == 10

    gate = fnd("history", "--db", db, "--gate", "--out", tmp_path / "g")
    assert gate.exit_code == 1, gate.output
    assert "REGRESSION" in gate.stdout and BENCHMARK in gate.stderr
    before = fnd(
        "history", "--db", db, "--gate", "--out", tmp_path / "g", "--since", "2026-01-01", "*:mm 4x4x4*"
    )
    assert before.exit_code == 1  # a glob matching it
    none = fnd("history", "--db", db, "--gate", "--out", tmp_path / "g", "torch")
    assert_one_line_error(none, "no matmul-bench runs", "torch")


@pytest.mark.parametrize("n, low, high", [(5, None, None), (6, 1, 6), (10, 2, 9), (20, 6, 15)])
def test_a_commits_interval_is_the_order_statistics_a_binomial_gives(n, low, high):
    """Hand-worked: [X(k), X(n+1-k)] covers the median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1);
    k is the largest that keeps it >= 95 %. n = 10: P(<= 1) = 11/1024 = 1.1 %, P(<= 2) = 56/1024 = 5.5 %,
    so k = 2. Five samples: even (min, max) covers only 1 - 2/32 = 93.75 %, no interval. scipy checks the
    hand's k, and the coverage it gives."""
    from scipy.stats import binom

    k = int(binom.ppf(0.025, n, 0.5))  # the least k with P(<= k) >= 2.5 %: P(<= k - 1) is under it
    assert (k or None) == low and (high is None or high == n + 1 - k)
    assert k == 0 or 1 - 2 * binom.cdf(k - 1, n, 0.5) >= 0.95 > 1 - 2 * binom.cdf(k, n, 0.5)
    x = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))  # X(i) = i
    got = median_interval(x)
    assert got == ((low, high) if low else pytest.approx((np.nan, np.nan), nan_ok=True))


def test_an_anchor_from_the_same_processes_finds_a_5_percent_step_the_hosts_speed_hides(fnd, tmp_path):
    """Each process's speed moves ~20 % (a busy host) and moves torch alike; the kernel is 5 % slower from
    commit 11 of 20. On its own times the step is lost; over torch's from the same processes (--anchor) it is
    the one REGRESSION, at commit 11, and --gate fails; torch's own series is left out."""
    db, hashes = make_history(
        tmp_path, 20, slower_at=11, factor=1.05, impls=("kern.py:mm", "torch"), steady="torch", host_noise=0.2
    )
    _, plain = history_json(fnd, tmp_path, db, "kern.py:mm*", "--threshold", "0.01")
    assert (hashes[10][:10], "REGRESSION") not in [(r["commit"], r["change"]) for r in plain["rows"]]
    result, doc = history_json(fnd, tmp_path, db, "--anchor", "torch", "--threshold", "0.01")
    assert result.exit_code == 0, result.output
    rows = doc["rows"]
    assert {r["benchmark"] for r in rows} == {BENCHMARK} and {r["anchor"] for r in rows} == {"torch"}
    assert [(r["commit"], r["change"]) for r in rows if r["change"]] == [(hashes[10][:10], "REGRESSION")]
    # each process's fastest kernel value over its fastest torch value: ~1 before, ~1.05 after
    assert rows[5]["median_s"] == pytest.approx(1.0, abs=0.02) and rows[15]["median_s"] == pytest.approx(
        1.05, abs=0.02
    )
    assert 0.03 < rows[10]["size"] < 0.07
    table = fnd("history", "--db", db, "--anchor", "torch", "--threshold", "0.01", "--out", tmp_path / "t")
    assert "x torch" in table.stdout and " µs" not in table.stdout
    gate = fnd(
        "history", "--db", db, "--anchor", "torch", "--threshold", "0.01", "--gate", "--out", tmp_path / "g"
    )
    assert gate.exit_code == 1, gate.output
    assert_one_line_error(
        fnd("history", "--db", db, "--command", "gradcheck", "--anchor", "torch"), "--anchor", "matmul-bench"
    )


def test_a_regression_then_a_fix_too_few_processes_can_judge_is_not_a_regression_at_head(fnd, tmp_path):
    """1.5x slower from commit 4, back from commit 9, where 2 processes a commit cannot judge the step: the
    regression is confirmed, the fix reads `not judged`, and --gate exits 3 (it cannot tell whether head
    still regresses), not 1 ("REGRESSION at head" blamed a head that had fixed it)."""
    db, hashes = make_history(tmp_path, 10, slower_at=4, fixed_at=9)
    result, doc = history_json(fnd, tmp_path, db, "--gate")
    marked = [(r["commit"], r["change"]) for r in doc["rows"] if r["change"]]
    assert marked == [(hashes[3][:10], "REGRESSION"), (hashes[8][:10], "not judged")], marked
    assert result.exit_code == 3, result.output
    assert "REGRESSION at head" not in result.output
    table = fnd("history", "--db", db, "--out", tmp_path / "t")
    assert "nan" not in table.stdout  # a not-judged row's size and p: blank


def test_identical_code_over_30_commits_shows_no_change_point(fnd, tmp_path):
    db, hashes = make_history(tmp_path, 30, seed=1)
    result, doc = history_json(fnd, tmp_path, db, "--gate")
    assert result.exit_code == 0, result.output
    assert len(doc["rows"]) == 30 and not [r for r in doc["rows"] if r["change"]]


def test_an_empty_store_and_bad_input_are_one_line_and_exit_2(fnd, tmp_path):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert_one_line_error(fnd("history", "--db", missing, "--out", tmp_path / "o"), "does not exist")
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "o").exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    history.Store.open(empty).close()
    assert_one_line_error(fnd("history", "--db", empty, "--out", tmp_path / "o"), "no matmul-bench runs")
    for args, fragment in (
        (["--since", "last week"], "--since"),
        (["--threshold", "2"], "--threshold"),
        (["--machine", "0123456789abcdef"], "0123456789abcdef"),
        (["--machine", "zz"], "'zz' is not a machine fingerprint"),
    ):
        assert_one_line_error(fnd("history", "--db", empty, "--out", tmp_path / "o", *args), fragment)


def test_a_change_too_few_processes_can_judge_is_not_judged_and_the_gate_exits_3(fnd, tmp_path):
    """--quick runs: one worker process a commit, 1.75x slower from commit 5 of 6. ruptures proposes commit 5,
    but 4 samples before it and 2 after cannot be tested (compare needs 5 a side): the row says `not judged`,
    and --gate exits 3, not 0: a change nobody could judge is not a pass (issue 31; compare's exit 3)."""
    db, hashes = make_history(tmp_path, 6, slower_at=5, factor=1.75, processes=(1, 2))
    result, doc = history_json(fnd, tmp_path, db, "--gate")
    assert result.exit_code == 3, result.output
    marked = {r["commit"]: r["change"] for r in doc["rows"] if r["change"]}
    assert hashes[4][:10] in marked and set(marked.values()) == {"not judged"}, marked
    assert any(f"{len(marked)} proposed but not judged" in line for line in doc["footer"])
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"Error: not judged: a change proposed at {BENCHMARK} 2t at {hashes[4][:10]}")


def test_a_kernel_loaded_at_another_revision_is_left_out_of_the_history(fnd, tmp_path):
    """The paired gate times kern.py:mm@HEAD~1 beside kern.py:mm in each run: the @REV row's code is not the
    commit its run is filed under (a newcomer's trial: a HEAD~2 series labelled with each head's subject), so
    only kern.py:mm's series is shown; its own commits' runs give the base's figures."""
    db, hashes = make_history(tmp_path, 3, impls=("kern.py:mm@HEAD~1", "kern.py:mm"))
    result, doc = history_json(fnd, tmp_path, db)
    assert result.exit_code == 0, result.output
    assert {r["benchmark"] for r in doc["rows"]} == {BENCHMARK} and len(doc["rows"]) == 3


def test_runs_at_an_unknown_commit_are_counted_in_the_no_runs_line(fnd, tmp_path, monkeypatch):
    """A gradcheck made outside a git repository is kept with its commit unknown; history, which follows
    commits, has nothing to show, and its line says it holds such a run rather than 'none'."""
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    assert fnd("gradcheck", "--batch", "4", "--db", db, "-q", "--out", tmp_path / "r").exit_code == 0
    assert_one_line_error(
        fnd("history", "--command", "gradcheck", "--db", db, "--out", tmp_path / "o"),
        "no gradcheck runs",
        "the commands it holds for that machine: none",
        "1 run(s) there at an unknown commit, made outside a git repository",
    )


def test_repo_keeps_the_runs_of_commits_one_repository_holds(fnd, tmp_path):
    """Two projects' runs in one store (10 commits of one, 6 of another): --repo DIR keeps those of the
    repository holding DIR, a clone of it included; a directory outside git is one line, exit 2."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    db, ours = make_history(tmp_path / "a", 10, slower_at=6)
    _, theirs = make_history(tmp_path / "b", 6, seed=3, db=db, subject="other v{}".format)
    assert not set(ours) & set(theirs)  # other subjects, other commits
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", tmp_path / "a" / "kernels", clone], check=True)
    for where, hashes in (
        (tmp_path / "a" / "kernels", ours),
        (clone, ours),
        (tmp_path / "b" / "kernels", theirs),
    ):
        result, doc = history_json(fnd, tmp_path, db, "--repo", where)
        assert result.exit_code == 0, result.output
        assert [r["commit"] for r in doc["rows"]] == [h[:10] for h in hashes]
    _, both = history_json(fnd, tmp_path, db)
    assert len(both["rows"]) == 16
    (tmp_path / "plain").mkdir()
    assert_one_line_error(
        fnd("history", "--db", db, "--repo", tmp_path / "plain", "--out", tmp_path / "o"),
        "not in a git repository",
    )
