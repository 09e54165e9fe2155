"""`fnd bisect GOOD BAD -- COMMAND` (issue 32): the first commit at which a command's result turns, on real
git repositories made here. A check's steps are real runs of gradcheck; a timing's steps are --gate runs
written as fnd writes them (test_compare.fake_matmul_run: 16 worker processes a step, each kernel's speed
read from its commit), since real worker processes cost ~3 s each here: scripts/bisect-trials bisects real
ones."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, run_files
from test_at_rev import git
from test_compare import fake_matmul_run

from fndcli import kinds
from fndcli.bisect.search import Search

# The chapter's Lin with its weight gradient right (GOOD) or halved (the bug)
MODEL = open(__file__.replace("tests/test_bisect.py", "examples/chapter_model.py")).read()
RIGHT = "self.w.g = self.inp.t() @ self.out.g"
HALVED = "self.w.g = self.inp.t() @ self.out.g * 0.5"
SMALL = ["--n-in", "8", "--hidden", "4", "--batch", "16"]


def commits_of(repo):
    return git(repo, "rev-list", "--reverse", "HEAD").split()


def make_repo(path, files_at):
    """A repository with one commit per entry of files_at: {name: text} written, then committed."""
    path.mkdir()
    git(path, "init", "-q")
    (path / ".gitignore").write_text("__pycache__/\n")
    for i, files in enumerate(files_at, 1):
        for name, text in files.items():
            (path / name).write_text(text)
        git(path, "add", ".")
        git(path, "commit", "-q", "--allow-empty", "-m", f"commit {i}")
    return path, commits_of(path)


@pytest.fixture(scope="module")
def model_repo(tmp_path_factory):
    """8 commits of model.py: commit 5 halves Lin's weight gradient, commit 6 does not import (a syntax error,
    gone again in 7), the others add a comment; notes.txt beside it changes in 3."""
    versions = []
    for i in range(1, 9):
        text = MODEL.replace(RIGHT, HALVED) if i >= 5 else MODEL
        text += "\ndef oops(:\n" if i == 6 else f"\n# revision {i}\n"
        versions.append({"model.py": text, **({"notes.txt": "unrelated\n"} if i == 3 else {})})
    return make_repo(tmp_path_factory.mktemp("model") / "repo", versions)


def bisect(fnd, tmp_path, good, bad, *command):
    return fnd("bisect", "--out", tmp_path / "out", good, bad, "--", *command)


def test_a_check_names_the_commit_that_broke_the_backward_pass(fnd, model_repo, tmp_path):
    """Commit 5 of 8 breaks Lin's backward: gradcheck's own verdict at each step finds it, in at most
    ceil(log2 7) + 2 runs; commit 6, which does not import, is skipped and said."""
    repo, commits = model_repo
    result = bisect(
        fnd, tmp_path, commits[0], commits[-1], "gradcheck", "--model", f"{repo}/model.py:Model", *SMALL
    )
    assert result.exit_code == 0, result.output
    steps, meta = run_files(tmp_path / "out", "bisect")
    assert meta["outcome"] == "found" and meta["first_bad"] == commits[4] and meta["parent"] == commits[3]
    assert meta["first_bad_subject"] == "commit 5" and meta["mode"] == "check" and meta["candidates"] == 7
    assert f"first bad commit: {commits[4]} commit 5" in result.stdout
    assert list(steps["role"][:2]) == ["GOOD", "BAD"] and list(steps["verdict"][:2]) == ["exit 0", "exit 1"]
    by_commit = dict(zip(steps["commit"], steps["verdict"]))
    assert by_commit[commits[4]] == "bad" and by_commit[commits[3]] == "good"
    assert by_commit.get(commits[5]) == "skip"  # the search steps on it: c4 good, then c6
    skipped = steps[steps["commit"] == commits[5]]["note"].iloc[0]
    assert skipped.startswith("does not run: ") and "SyntaxError" in skipped
    assert steps["runs"].sum() <= math.ceil(math.log2(7)) + 2
    for stem in steps["run"].dropna():  # each step a run of its own, beside the bisect's, its commit's code
        assert (tmp_path / "out" / f"{stem}.json").exists()
    shown = fnd("show", tmp_path / "out" / f"{next((tmp_path / 'out').glob('bisect-*.csv')).stem}.csv")
    assert shown.exit_code == 0 and f"first bad commit: {commits[4]}" in shown.stdout
    assert git(repo, "status", "--porcelain") == ""  # the work tree untouched


def test_a_check_whose_good_and_bad_agree_is_no_difference(fnd, model_repo, tmp_path):
    repo, commits = model_repo
    result = bisect(
        fnd, tmp_path, commits[0], commits[2], "gradcheck", "--model", f"{repo}/model.py:Model", *SMALL
    )
    assert result.exit_code == 1, result.output
    steps, meta = run_files(tmp_path / "out", "bisect")
    assert meta["outcome"] == "no difference" and meta["first_bad"] is None and len(steps) == 2
    assert "no difference" in result.stdout and "first bad commit" not in result.stdout
    csv = next((tmp_path / "out").glob("bisect-*.csv"))
    assert list(pd.read_csv(csv).columns) == kinds.BISECT.written()
    assert "GOOD fails the check too" not in result.stdout  # both pass here


def test_a_good_that_fails_the_check_too_is_said(fnd, model_repo, tmp_path):
    """Commits 5 and 7 both halve the weight gradient: no difference, and the line says GOOD fails too."""
    repo, commits = model_repo
    result = bisect(
        fnd, tmp_path, commits[4], commits[6], "gradcheck", "--model", f"{repo}/model.py:Model", *SMALL
    )
    assert result.exit_code == 1, result.output
    assert "no difference" in result.stdout and "GOOD fails the check too (exit 1)" in result.stdout


@pytest.mark.parametrize(
    "ends,command,fragments",
    [
        (("nope", -1), ["gradcheck", "--model", "{repo}/model.py:Model"], ["GOOD: 'nope' is no commit of"]),
        ((0, "v9"), ["gradcheck", "--model", "{repo}/model.py:Model"], ["BAD: 'v9' is no commit of"]),
        ((-1, 0), ["gradcheck", "--model", "{repo}/model.py:Model"], ["is not an ancestor of BAD"]),
        ((0, 0), ["gradcheck", "--model", "{repo}/model.py:Model"], ["GOOD and BAD are one commit"]),
        ((0, -1), ["peak"], ["runs matmul-bench (a timing) or gradcheck", "'peak' is none of them"]),
        ((0, -1), ["gradcheck"], ["the command names none of your files"]),
        ((0, -1), ["gradcheck", "--model", "{repo}/model.py:Model@HEAD"], ["without @REV"]),
        ((0, -1), ["matmul-bench", "--impl", "{repo}/k.py:mm", "--quick"], ["drop --quick"]),
        (
            (0, -1),
            ["gradcheck", "--model", "{repo}/model.py:Model", "--out", "x"],
            ["--out is fnd bisect's own"],
        ),
        ((0, -1), [], ["Missing argument '-- COMMAND ...'"]),
    ],
)
def test_bad_input_is_one_line_and_nothing_written(fnd, model_repo, tmp_path, ends, command, fragments):
    repo, commits = model_repo
    good, bad = (commits[e] if isinstance(e, int) else e for e in ends)
    result = bisect(fnd, tmp_path, good, bad, *[c.format(repo=repo) for c in command])
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_code_that_does_not_load_at_good_is_bad_input(fnd, model_repo, tmp_path):
    repo, commits = model_repo
    result = bisect(fnd, tmp_path, commits[5], commits[-1], "gradcheck", "--model", f"{repo}/model.py:Model")
    assert_one_line_error(result, "gradcheck at GOOD", "SyntaxError")
    assert not list((tmp_path / "out").glob("bisect-*"))


# --- the timing path -------------------------------------------------------------------------------------

KERN = "import torch\n\nSLOW = {slow}\n\n\ndef mm(a, b):  # {i}\n    return torch.mm(a, b)\n"


def timing_repo(path, slows):
    return make_repo(path, [{"kern.py": KERN.format(slow=s, i=i)} for i, s in enumerate(slows)])


@pytest.fixture
def gate_runs(monkeypatch):
    """matmul-bench steps as --gate runs on disk: each kernel FILE.py:NAME@COMMIT timed SLOW (its file's, at
    that commit) times 10 us in each of 16 worker processes, the processes' host speed shared (drift up to
    30 %), 1 % noise each (x e^N(0, 1) in the runs whose number, from 1, is in `.spoiled`). Records the argv
    of each run."""
    from fndcli.bisect.run import Outcome
    from fndcli.cli import bisect as cli_bisect

    class Calls(list):
        spoiled = ()

    calls = Calls()

    def factory(out, db, no_history):
        def run_fnd(argv):
            calls.append(argv)
            impls = [argv[i + 1] for i, a in enumerate(argv) if a == "--impl"]
            rng = np.random.default_rng(len(calls))
            drift = 1e-5 * np.exp(rng.uniform(0, 0.3, 16))
            speed = {}
            for impl in impls:
                path, _, commit = impl.rpartition("@")
                text = git(path.rpartition(":")[0].rpartition("/")[0], "show", f"{commit}:kern.py")
                speed[impl] = float(text.split("SLOW = ")[1].split()[0])
            noise = (lambda: math.exp(rng.standard_normal())) if len(calls) in calls.spoiled else None
            processes = {
                impl: [[d * s * (noise() if noise else 1 + 0.01 * rng.standard_normal())] * 3 for d in drift]
                for impl, s in speed.items()
            }
            csv = fake_matmul_run(out, processes, stamp=f"20261130-12{len(calls):04d}")
            return Outcome(0, csv.with_suffix(".json"))

        return run_fnd

    monkeypatch.setattr(cli_bisect, "_fnd_in_process", factory)
    return calls


def test_a_timing_names_the_commit_that_made_the_kernel_slower(fnd, tmp_path, gate_runs):
    """7 commits, the kernel 3x slower from commit 5: GOOD against BAD, then each step the candidate paired
    with both in one run, then commit 5 against its parent: named, with its change and interval."""
    repo, commits = timing_repo(tmp_path / "repo", [1, 1, 1, 1, 3, 3, 3])
    result = bisect(fnd, tmp_path, commits[0], commits[-1], "matmul-bench", "--impl", f"{repo}/kern.py:mm")
    assert result.exit_code == 0, result.output
    steps, meta = run_files(tmp_path / "out", "bisect")
    assert meta["first_bad"] == commits[4] and meta["mode"] == "timing" and meta["runs"] == len(gate_runs)
    assert len(gate_runs) <= math.ceil(math.log2(6)) + 2
    assert all("--gate" in argv for argv in gate_runs)
    first = gate_runs[0]
    assert [a.rpartition("@")[2] for a in first if "@" in a] == [commits[0], commits[-1]]
    assert [a.rpartition("@")[2] for a in gate_runs[1] if "@" in a] == [commits[0], commits[3], commits[-1]]
    ends = steps.iloc[0]
    assert ends["role"] == "GOOD vs BAD" and ends["verdict"] == "REGRESSION"
    assert ends["ci_low"] < 2.0 < ends["ci_high"]
    # commit 4 good, then commit 5 timed beside it (its parent, judged good): the last step times the pair
    assert [a.rpartition("@")[2] for a in gate_runs[2] if "@" in a] == [
        commits[0],
        *commits[3:5],
        commits[-1],
    ]
    parent = steps[steps["role"] == "vs parent"].iloc[0]
    assert parent["verdict"] == "REGRESSION" and parent["ci_low"] < 2.0 < parent["ci_high"]
    assert parent["runs"] == 0 and parent["run"].startswith("in matmul-bench-") and len(gate_runs) == 3
    assert f"against its parent {commits[3][:12]}: REGRESSION +" in result.stdout
    assert set(steps.loc[steps["role"] == "step", "verdict"]) <= {"good", "bad"}


def test_a_timing_that_cannot_tell_adds_processes_then_skips(fnd, tmp_path, gate_runs):
    """A commit halfway between GOOD's speed and BAD's is like neither: its step runs twice (processes
    pooled), then says so and is skipped, as git bisect skips: the first bad commit is then one of two
    (exit 3)."""
    repo, commits = timing_repo(tmp_path / "repo", [1, 1, 1.7, 3])
    result = bisect(fnd, tmp_path, commits[0], commits[-1], "matmul-bench", "--impl", f"{repo}/kern.py:mm")
    steps, meta = run_files(tmp_path / "out", "bisect")
    middle = steps[steps["commit"] == commits[2]].iloc[0]
    assert middle["verdict"] == "skip" and middle["runs"] == 2 and middle["note"].startswith("cannot tell:")
    assert result.exit_code == 3 and meta["outcome"] == "among"
    assert meta["among"] == [commits[2], commits[3]] and "the first bad commit is one of" in result.stdout


def test_a_noisy_first_run_is_set_aside_and_the_last_step_times_the_bad_child_beside_it(
    fnd, tmp_path, gate_runs
):
    """5 commits, 3x slower from commit 3: commit 3 is stepped on first (bad), then commit 2, timed beside its
    child judged bad. Commit 2's first run is spoiled (noise x e^N(0, 1)): it cannot tell, pooled or not; the
    second run alone judges it good, and the first bad commit is set against its parent from that run."""
    repo, commits = timing_repo(tmp_path / "repo", [1, 1, 3, 3, 3])
    gate_runs.spoiled = {3}
    result = bisect(fnd, tmp_path, commits[0], commits[-1], "matmul-bench", "--impl", f"{repo}/kern.py:mm")
    assert result.exit_code == 0, result.output
    steps, meta = run_files(tmp_path / "out", "bisect")
    assert meta["first_bad"] == commits[2] and meta["parent"] == commits[1] and len(gate_runs) == 4
    assert [a.rpartition("@")[2] for a in gate_runs[2] if "@" in a] == [*commits[:3], commits[-1]]
    step = steps[steps["commit"] == commits[1]].iloc[0]
    assert step["verdict"] == "good" and step["runs"] == 2
    parent = steps[steps["role"] == "vs parent"].iloc[0]
    assert parent["verdict"] == "REGRESSION" and parent["run"] == "in matmul-bench-20261130-120004"


def test_a_timing_of_identical_speed_is_no_difference(fnd, tmp_path, gate_runs):
    repo, commits = timing_repo(tmp_path / "repo", [1, 1, 1])
    result = bisect(fnd, tmp_path, commits[0], commits[-1], "matmul-bench", "--impl", f"{repo}/kern.py:mm")
    assert result.exit_code == 1, result.output
    steps, meta = run_files(tmp_path / "out", "bisect")
    assert meta["outcome"] == "no difference" and meta["first_bad"] is None
    assert list(steps["verdict"]) == ["same"] and len(gate_runs) == 1
    assert "no difference" in result.stdout and "first bad commit" not in result.stdout


# --- the search, on its own -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 15, 16, 33])
def test_a_line_of_n_commits_takes_at_most_ceil_log2_n_steps(n):
    for first_bad in range(n):
        search, steps = Search([f"c{i}" for i in range(n)], {f"c{i}": [f"c{i - 1}"] for i in range(1, n)}), 0
        while (c := search.next()) is not None:
            steps += 1
            search.mark(c, "bad" if int(c[1:]) >= first_bad else "good")
        assert search.first_bad() == [f"c{first_bad}"] and steps <= math.ceil(math.log2(n))


def test_a_merge_is_bisected_on_both_sides():
    """a - b - m - d (BAD), with c on a side branch merged at m; c introduced the change: found."""
    parents = {"a": [], "b": ["a"], "c": ["a"], "m": ["b", "c"], "d": ["m"]}
    bad = {"c", "m", "d"}
    search = Search(["a", "b", "c", "m", "d"], parents)
    while (c := search.next()) is not None:
        search.mark(c, "bad" if c in bad else "good")
    assert search.first_bad() == ["c"]


def test_skipped_commits_leave_the_first_bad_among_them():
    search = Search(["a", "b", "c", "d"], {"b": ["a"], "c": ["b"], "d": ["c"]})
    while (c := search.next()) is not None:
        search.mark(c, "skip" if c in ("b", "c") else "good" if c == "a" else "bad")
    assert search.first_bad() == ["b", "c", "d"]


# --- the judging, on its own ------------------------------------------------------------------------------


def _pair(verdict, change=0.0):
    from fndcli.bisect.judge import Pair

    return Pair(verdict, change, change - 0.05, change + 0.05, "")


def test_a_step_is_bad_when_any_moved_row_is_like_bad_good_only_when_every_one_is_like_good():
    """Two rows moved between GOOD and BAD, k1 the more. Like BAD: moved against GOOD as BAD did, not
    against BAD; like GOOD: moved against BAD the other way, not against GOOD; neither: cannot tell."""
    from fndcli.bisect.judge import step_verdict

    directions = {"k1": "REGRESSION", "k2": "REGRESSION"}
    like_bad = (_pair("REGRESSION", 1.0), _pair("same"))  # (against GOOD, against BAD)
    like_good = (_pair("same", 0.01), _pair("improved", -0.5))
    neither = (_pair("same"), _pair("same"))

    def step(k1, k2):
        return step_verdict({"k1": k1[0], "k2": k2[0]}, {"k1": k1[1], "k2": k2[1]}, directions)

    bad = step(like_bad, neither)
    assert bad.verdict == "bad" and (bad.change, bad.low, bad.high) == (1.0, 0.95, 1.05)  # k1 against GOOD
    assert step(neither, like_bad).verdict == "bad"
    assert step(like_good, like_good).verdict == "good"
    skipped = step(like_good, neither)
    assert (
        skipped.verdict == "skip" and skipped.note == "cannot tell: k2: against GOOD same, against BAD same"
    )
    assert skipped.more_would_help and not step(like_good, (_pair("BROKEN"), _pair("same"))).more_would_help


def test_the_row_that_moved_most_is_the_largest_ratio_either_way():
    """+50 % (x1.5) moved less than -40 % (x0.6: 1 / 0.6 = 1.67 the other way); `same` did not move."""
    from fndcli.bisect.judge import moved

    ends = {"a": _pair("REGRESSION", 0.5), "b": _pair("improved", -0.4), "c": _pair("same", 3.0)}
    assert list(moved(ends).items()) == [("b", "improved"), ("a", "REGRESSION")]


@pytest.mark.parametrize(
    "verdicts, expected, more",
    [
        (["same", "same"], "same", False),
        (["same", "inconclusive"], "inconclusive", True),  # one row cannot say: more processes may
        (["inconclusive", "inconclusive"], "inconclusive", True),
        (["BROKEN", "BROKEN"], "BROKEN", False),  # a wrong result is wrong however many processes run it
        (["untimed", "same"], "inconclusive", False),  # no row that more processes could judge
        (["BROKEN", "inconclusive"], "inconclusive", True),
    ],
)
def test_good_against_bad_with_no_row_moved(verdicts, expected, more):
    from fndcli.bisect.judge import ends_verdict

    judged = ends_verdict({f"k{i}": _pair(v) for i, v in enumerate(verdicts)})
    assert (judged.verdict, judged.more_would_help) == (expected, more)


# --- merges -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def merge_repo(tmp_path_factory):
    """kern/ over two merges: s branches off x before GOOD (adds kern/s.py), c off GOOD (adds kern/c.py); on
    trunk y (k.py v2), m1 merges c into y, m2 merges s into m1, then BAD (k.py v3). {name: hash}."""
    repo = tmp_path_factory.mktemp("merges") / "repo"
    (repo / "kern").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "symbolic-ref", "HEAD", "refs/heads/trunk")  # whatever the default branch is called
    at = {}

    def commit(name, path, text):
        (repo / path).write_text(text)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", name)
        at[name] = git(repo, "rev-parse", "HEAD")

    def merge(name, branch):
        git(repo, "merge", "-q", "--no-ff", "-m", name, branch)
        at[name] = git(repo, "rev-parse", "HEAD")

    commit("x", "kern/k.py", "v0")
    git(repo, "checkout", "-q", "-b", "s")
    commit("s", "kern/s.py", "s")
    git(repo, "checkout", "-q", "trunk")
    commit("good", "kern/k.py", "v1")
    git(repo, "checkout", "-q", "-b", "c")
    commit("c", "kern/c.py", "c")
    git(repo, "checkout", "-q", "trunk")
    commit("y", "kern/k.py", "v2")
    merge("m1", "c")
    merge("m2", "s")
    commit("bad", "kern/k.py", "v3")
    return repo, at


def test_the_candidates_follow_both_sides_of_a_merge_and_only_commits_after_good(merge_repo):
    """c, on a side branch off GOOD, is a candidate and m1's second parent; s, which branched off before
    GOOD, is not between GOOD and BAD (`--ancestry-path`): its change enters at m2, m1 its only parent."""
    from fndcli.bisect.commits import commit_range

    repo, at = merge_repo
    span = commit_range(repo / "kern" / "k.py", at["good"], at["bad"])
    assert sorted(span.order[:2]) == sorted([at["y"], at["c"]])
    assert span.order[2:] == [at["m1"], at["m2"], at["bad"]]
    assert span.parents[at["m1"]] == [at["y"], at["c"]] and span.parents[at["m2"]] == [at["m1"]]


def test_a_merge_found_bad_is_set_against_its_first_parent(merge_repo):
    """y and c good, m1 (their merge) bad: the first bad commit is m1, and the code before it is trunk's,
    its first parent y. Each step's exit stands in for a check's (0 good, 1 bad)."""
    from fndcli.bisect.command import parse
    from fndcli.bisect.commits import commit_range
    from fndcli.bisect.run import Bisect, Outcome

    repo, at = merge_repo
    span = commit_range(repo / "kern" / "k.py", at["good"], at["bad"])
    bad = {at["m1"], at["m2"], at["bad"]}
    ran = []

    def run_fnd(argv):
        ran.append(argv[2].rpartition("@")[2])
        return Outcome(1 if ran[-1] in bad else 0, None)

    result = Bisect(parse(["gradcheck", "--model", f"{repo}/kern/k.py:M"]), span, run_fnd).run()
    assert result.outcome == "found" and result.first_bad.commit == at["m1"] and result.parent == at["y"]
    assert {at["y"], at["c"]} <= set(ran[2:])  # both sides of the merge stepped on


# --- fnd history offers the bisect ------------------------------------------------------------------------


def test_history_offers_the_bisect_of_a_change_point_whose_commits_were_not_all_measured(fnd, tmp_path):
    """10 commits, the kernel 1.5x slower from commit 6, commits 4 and 5 never measured: the change point at 6
    has two commits before it unmeasured, and fnd history gives the bisect that finds which; with every
    commit measured it offers none."""
    import sqlite3

    from test_history_cmd import history_json, make_history

    db, hashes = make_history(tmp_path, 10, slower_at=6)
    result, doc = history_json(fnd, tmp_path, db, "--repo", tmp_path / "kernels")
    assert result.exit_code == 0 and not [line for line in doc["footer"] if "fnd bisect" in line]
    with sqlite3.connect(db.removeprefix("sqlite:///")) as con:
        ids = [r for (r,) in con.execute("SELECT id FROM runs WHERE git_commit IN (?, ?)", hashes[3:5])]
        for table in ("timings", "cells", "runs"):
            con.execute(f"DELETE FROM {table} WHERE {'id' if table == 'runs' else 'run_id'} IN (?, ?)", ids)
    result, doc = history_json(fnd, tmp_path, db, "--repo", tmp_path / "kernels")
    assert result.exit_code == 0, result.output
    (offer,) = [line for line in doc["footer"] if "fnd bisect" in line]
    three, six = hashes[2][:10], hashes[5][:10]
    assert offer == (
        f"REGRESSION at {six} of kern.py:mm 4x4x4: 2 commit(s) before it not measured; to find which: "
        f"fnd bisect {three} {six} -- matmul-bench --impl kern.py:mm --shape 4x4x4 --dtype float32 "
        "--device cpu --threads 2"
    )


def test_the_candidates_are_the_commits_that_change_the_files_directory(tmp_path):
    """git walks GOOD..BAD limited to kern/: a commit that changes only a file elsewhere loads its parent's
    code and is no step; a BAD that leaves kern/ alone stands for the newest commit that changed it."""
    from fndcli.bisect.commits import commit_range

    (tmp_path / "repo").mkdir()
    files = [{"kern/k.py": "v1"}, {"README": "a"}, {"kern/k.py": "v2"}, {"README": "b"}, {"kern/k.py": "v3"}]
    (tmp_path / "repo" / "kern").mkdir()
    repo = tmp_path / "repo"
    git(repo, "init", "-q")
    for i, changed in enumerate([*files, {"README": "c"}], 1):
        for name, text in changed.items():
            (repo / name).write_text(text)
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"commit {i}")
    commits = commits_of(repo)
    span = commit_range(repo / "kern" / "k.py", commits[0], commits[4])
    assert span.order == [commits[2], commits[4]] and span.parents[commits[4]] == [commits[2]]
    assert span.directory == "kern" and span.good == commits[0]
    span = commit_range(repo / "kern" / "k.py", commits[0], commits[5])  # BAD changes README only
    assert span.order == [commits[2], commits[4], commits[5]] and span.parents[commits[5]] == [commits[4]]


def test_a_steps_command_names_the_file_at_each_commit_however_the_option_was_spelled():
    from fndcli.bisect.command import parse

    command = parse(["matmul-bench", "--impl=k.py:mm", "--impl", "torch", "--shape", "8x8x8"])
    assert command.at("a", "b") == [
        "matmul-bench", "--impl", "k.py:mm@a", "--impl", "k.py:mm@b", "--impl", "torch", "--shape", "8x8x8",
        "--gate",
    ]  # fmt: skip
    assert parse(["gradcheck", "--model", "m.py:Net"]).at("c") == ["gradcheck", "--model", "m.py:Net@c"]
    assert parse(["matmul-bench", "--impl", "pkg.mod:mm", "--impl", "k.py:mm"]).references == (
        (3, "k.py:mm"),
    )
