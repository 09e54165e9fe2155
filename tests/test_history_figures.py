"""`fnd history --command NAME` (issue 31): the other commands' figures per series over commits, on a store
of real runs of the real commands, each added with --db as a user adds it, at each commit of a small git
repository: the chapter's model, its backward bugged at commit 3 (w.g halved), its loss reworded at commit 4
(the same loss, rounded differently: its last bits move, nothing else). Every figure checked here is read
from the run's own CSV with pandas."""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import EXAMPLES, assert_one_line_error
from typer.testing import CliRunner

from fndcli.cli import app
from fndcli.kernels import jitenv
from fndcli.kinds import HISTORY_FIGURES, kind_of

pytestmark = pytest.mark.xdist_group("history-figures")  # the module's runs, made once: on one worker


COMMITS = 5
BUG = ("self.w.g = self.inp.t() @ self.out.g", "self.w.g = 0.5 * self.inp.t() @ self.out.g")  # from commit 3
REWORDED = ("(inp.squeeze() - targ).pow(2).mean()", "((inp.squeeze() - targ) / 3).pow(2).mean() * 9")  # 4
TINY = ("--n-in", "5", "--hidden", "4")
INIT_SWEEP = tuple("init-sweep --depth 5 --seeds 2 --scheme normal --scheme kaiming --act relu".split())
TRAIN = ("train", *TINY, *"--samples 256 --batch-size 16 --epochs 1".split())
PEAK = tuple("peak --threads 1 --dtype float64 --no-bandwidth".split())
# fnd peak's cache, planted before each run: a measurement each, five at commits 2 and 4, halved from 4
PEAK_GFLOPS = {
    1: (100.0,),
    2: (100.0, 101.0, 99.0, 100.5, 99.5),
    3: (100.0,),
    4: (50.0, 50.5, 49.5, 51.0, 49.0),
}
PEAK_GFLOPS[5] = (50.0,)


def source(i):
    """The model file at commit i."""
    text = (EXAMPLES / "chapter_model.py").read_text() + f"\n# commit {i}\n"
    for edit, since in ((BUG, 3), (REWORDED, 4)):
        assert edit[0] in text
        text = text.replace(*edit) if i >= since else text
    return text


def forget_user_code(mp, repo):
    """What each fnd process starts without, and these runs in one process share: the user's file, imported
    once per process (fndcli.userref)."""
    from fndcli import userref

    mp.setattr(userref, "_loaded", {})
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").is_relative_to(repo):
            del sys.modules[name]


def plant_peak(gflops, when):
    """fnd peak's cache holding one FMA ceiling (float64, 1 thread), as tests/conftest.py seeds it."""
    from fndcli.bench.peak import store_cache

    row = {"what": "fma", "kernel": "fma x64", "dtype": "float64", "threads": 1, "device": "cpu"}
    common = {"isa": jitenv.isa()[0], "best_s": 0.02, "calls": 1, "repeats": 1, "measured_utc": when}
    store_cache([{**row, **common, "gflops": gflops, "gb_s": None, "work": gflops * 1e9 * 0.02}])


@pytest.fixture(scope="module", autouse=True)
def built_once():
    """Typer builds fnd's click command again at each invoke (70 ms here; these tests invoke it 30 times):
    here it is built once."""
    import typer.main
    import typer.testing

    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.testing, "_get_command", lambda _: command)
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(the store's URL, {commit number: its hash}, the runs' directory runs/I/COMMAND): gradcheck and train
    at each commit, init-sweep at 1, 3 and 5 (and at 5 at another width too), peak at each (five times at 2
    and 4; at 1 twice, the second run's cached row the first's measurement), reproduce's backprop claims
    at 5."""
    tmp = tmp_path_factory.mktemp("history-figures")
    shm = Path("/dev/shm")  # as conftest's history_store: a write's fsync on this disk costs 20 ms
    scratch = Path(tempfile.mkdtemp(prefix="fnd-history-figures-", dir=shm)) if shm.is_dir() else tmp
    repo, runs, db = tmp / "net", tmp / "runs", f"sqlite:///{scratch / 'h.db'}"
    repo.mkdir()
    model = f"{repo / 'net.py'}:Model"
    hashes, runner = {}, CliRunner()

    def git(*args, when=None):
        env = {**os.environ, **({"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when} if when else {})}
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True, env=env)

    def fnd(i, name, *args):
        result = runner.invoke(app, [*map(str, args), "--db", db, "--out", str(runs / str(i) / name), "-q"])
        assert result.exit_code in (0, 1), (args, result.output)

    git("init", "-q", "-b", "main")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_COLOR", "1")
        mp.setenv("FND_CACHE_DIR", str(tmp / "cache"))
        mp.chdir(repo)  # init-sweep and reproduce measure fnd's own code: their commit is this directory's
        for i in range(1, COMMITS + 1):
            forget_user_code(mp, repo)
            (repo / "net.py").write_text(source(i))
            git("add", ".")
            when = f"2026-01-{i:02d}T12:00:00+00:00"
            git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"model v{i}", when=when)
            hashes[i] = git("rev-parse", "HEAD").stdout.strip()
            fnd(i, "gradcheck", "gradcheck", "--model", model, *TINY, "--batch", "8")
            fnd(i, "train", *TRAIN, "--model", model)
            if i in (1, 3, 5):
                fnd(i, "init-sweep", *INIT_SWEEP, "--width", "16", "--backward")
            for k, gflops in enumerate(PEAK_GFLOPS[i]):
                plant_peak(gflops, f"{when[:17]}{k:02d}+00:00")
                fnd(i, f"peak-{k}", *PEAK)
            if i == 1:  # again: the same measurement, from the cache
                fnd(i, "peak-again", *PEAK)
        fnd(5, "init-sweep-8", *INIT_SWEEP, "--width", "8", "--backward")
        fnd(5, "reproduce", "reproduce", "--quick", "--section", "backprop")
    yield db, hashes, runs
    if scratch != tmp:
        shutil.rmtree(scratch, ignore_errors=True)


def history(store, tmp_path, *args):
    """`fnd history --format json` on the store: (the result, its rows as {series title: [row, ...]})."""
    result = CliRunner().invoke(
        app, ["history", "--db", store[0], "--format", "json", "--out", str(tmp_path / "o"), *map(str, args)]
    )
    doc = json.loads(result.stdout) if result.exit_code in (0, 1) else {"rows": []}
    series = {}
    for row in doc["rows"]:  # a series is headed SERIES: FIGURE (train's: FIGURE alone)
        title = f"{row['series']}: {row['figure']}" if row["series"] else row["figure"]
        series.setdefault(title, []).append(row)
    return result, series


def csv_of(runs, i, name, suffix=".csv"):
    """The main CSV of the run made at commit i in runs/I/NAME, read with pandas."""
    (path,) = (runs / str(i) / name).rglob(f"*{suffix}")
    return pd.read_csv(path)


def test_gradcheck_marks_the_planted_bug_where_it_lands_and_the_gate_fails_at_head(store, tmp_path):
    db, hashes, runs = store
    result, series = history(store, tmp_path, "--command", "gradcheck")
    assert result.exit_code == 0, result.output
    frames = {i: csv_of(runs, i, "gradcheck") for i in hashes}
    checks = frames[1][["check", "tensor", "shape", "dtype"]].astype(str).agg(" ".join, axis=1)
    assert list(series) == [f"{name}: rel_err" for name in checks]  # one series a check, in the CSV's order
    for n, (title, rows) in enumerate(series.items()):
        assert [r["commit"] for r in rows] == [hashes[i][:10] for i in hashes], title
        assert [r["value"] for r in rows] == [frames[i]["rel_err"][n] for i in hashes], title
        assert [r["verdict"] for r in rows] == [str(frames[i]["passed"][n]) for i in hashes], title
        fails_from_3 = [frames[i]["passed"][n] for i in hashes] == [True, True, False, False, False]
        # the bug, and nothing else: the loss reworded at 4 moves its last bits only
        assert [r["change"] for r in rows] == ["", "", "REGRESSION" if fails_from_3 else "", "", ""], title
    moved = frames[4]["rel_err"] != frames[3]["rel_err"]  # the loss reworded: forward's 6e-08 is now 0, ...
    assert moved.sum() >= 3 and ((frames[4]["rel_err"] - frames[3]["rel_err"]).abs() < 1e-6).all()
    failing = [t for t, rows in series.items() if rows[-1]["verdict"] == "False"]
    assert "autograd d loss / d lin1.w 5x4 float32: rel_err" in failing
    written = pd.read_csv(next((tmp_path / "o").glob("history-*.csv")))
    assert list(written.columns) == HISTORY_FIGURES.written() and len(written) == COMMITS * len(series)
    meta = json.loads(next((tmp_path / "o").glob("history-*.json")).read_text())
    assert (meta["command"], meta["config"]["command"], meta["gated"]) == (
        "history",
        "gradcheck",
        len(failing),
    )
    assert kind_of(meta) is HISTORY_FIGURES

    gate = CliRunner().invoke(
        app, ["history", "--db", db, "--command", "gradcheck", "--gate", "--out", tmp_path]
    )
    assert gate.exit_code == 1, gate.output
    lines = gate.stderr.strip().splitlines()
    assert len(lines) == len(failing) and all(line.startswith("Error: failing at head: ") for line in lines)
    assert all(f"(False since {hashes[3][:10]})" in line for line in lines), lines
    passing = CliRunner().invoke(
        app, ["history", "--db", db, "--command", "gradcheck", "--gate", "--out", tmp_path, "lin1.b"]
    )
    assert passing.exit_code == 0, passing.output


def test_train_follows_each_metric_at_the_last_epoch_moves_with_the_bug_and_never_gates(store, tmp_path):
    db, hashes, runs = store
    result, series = history(store, tmp_path, "--command", "train", "--gate")
    assert result.exit_code == 0, result.output
    last = {i: csv_of(runs, i, "train").iloc[-1] for i in hashes}
    assert list(series) == ["train_loss", "valid_loss", "valid_metric"]
    for metric, rows in series.items():
        values = [last[i][metric] for i in hashes]
        assert [r["value"] for r in rows] == values and {r["verdict"] for r in rows} == {None}
        assert [r["change"] for r in rows] == ["", "", "moved", "", ""], metric
        assert rows[2]["size"] == pytest.approx((values[2] - values[1]) / abs(values[1]))
    # the loss reworded at commit 4: the valid loss differs in its last bits, which are not a change
    assert last[4]["valid_loss"] != last[3]["valid_loss"]
    assert last[4]["valid_loss"] == pytest.approx(last[3]["valid_loss"], rel=1e-6)


def test_init_sweep_follows_each_scheme_activation_and_direction_and_a_new_failing_setting_gates(
    store, tmp_path
):
    db, hashes, runs = store
    result, series = history(store, tmp_path, "--command", "init-sweep")
    assert result.exit_code == 0, result.output
    for width, commits in (("16", (1, 3, 5)), ("8", (5,))):
        summaries = {
            i: csv_of(runs, i, "init-sweep" + ("-8" if width == "8" else ""), "-summary.csv") for i in commits
        }
        for n, row in summaries[commits[0]].iterrows():
            for figure, verdict in (("decades", "verdict"), ("grad_decades", "grad_verdict")):
                rows = series[f"{row['scheme']} {row['act']} [width={width}]: {figure}"]
                assert [r["commit"] for r in rows] == [hashes[i][:10] for i in commits]
                assert [r["value"] for r in rows] == [summaries[i][figure][n] for i in commits]
                assert [r["verdict"] for r in rows] == [summaries[i][verdict][n] for i in commits]
                if width == "16":  # fnd's own code, the same at every commit: no change
                    assert [r["change"] for r in rows] == ["", "", ""]
                else:  # first seen at head, after the first commit read
                    failing = summaries[5][verdict][n].split(" ")[0] in ("vanishing", "exploding")
                    assert rows[0]["change"] == ("REGRESSION" if failing else "new")
    assert len(series) == 2 * 2 * len(summaries[5])
    exploding = [t for t, rows in series.items() if "[width=16]" in t and rows[-1]["verdict"] == "exploding"]
    assert exploding  # normal's stack explodes at every commit: never a change, so not a failure at head
    gate = CliRunner().invoke(
        app, ["history", "--db", db, "--command", "init-sweep", "--gate", "--out", tmp_path]
    )
    named = [line for line in gate.stderr.splitlines() if line.startswith("Error: failing at head")]
    assert gate.exit_code == 1 and named and all("[width=8]" in line for line in named), gate.output


def test_peak_counts_each_measurement_once_judges_a_halving_and_never_gates(store, tmp_path):
    db, hashes, runs = store
    result, series = history(store, tmp_path, "--command", "peak", "--gate")
    assert result.exit_code == 0, result.output
    (rows,) = series.values()
    gflops = {
        i: [csv_of(runs, i, f"peak-{k}")["gflops"][0] for k in range(len(PEAK_GFLOPS[i]))] for i in hashes
    }
    assert [r["value"] for r in rows] == [statistics.median(gflops[i]) for i in hashes]
    assert [r["runs"] for r in rows] == [len(gflops[i]) for i in hashes]  # commit 1's second run: not counted
    assert [r["change"] for r in rows] == ["", "", "", "REGRESSION", ""]  # and --gate exits 0
    assert rows[3]["size"] == pytest.approx(-0.5, abs=0.02) and rows[3]["p"] < 0.01
    since = history(store, tmp_path, "--command", "peak", "--since", "2026-01-03")[1]
    assert [r["commit"] for r in since["fma fma x64 float64 1 cpu: gflops"]] == [
        hashes[i][:10] for i in (3, 4, 5)
    ]


def test_reproduce_follows_each_claim_its_text_and_verdict(store, tmp_path):
    db, hashes, runs = store
    result, series = history(store, tmp_path, "--command", "reproduce")
    assert result.exit_code == 0, result.output
    claims = csv_of(runs, 5, "reproduce", "claims.csv")
    assert list(series) == [f"{s} {c}: fnd" for s, c in zip(claims["section"], claims["claim"])]
    assert [rows[0]["value"] for rows in series.values()] == list(claims["fnd"])
    assert [rows[0]["verdict"] for rows in series.values()] == list(claims["verdict"])


def test_no_runs_of_the_command_is_one_line_naming_those_held_and_the_page_is_matmul_benchs(store, tmp_path):
    db, hashes, runs = store
    for args in (["--command", "matmul-bench"], ["--command", "gradcheck", "--branch", "elsewhere"]):
        result = CliRunner().invoke(app, ["history", "--db", db, "--out", str(tmp_path / "o"), *args])
        assert_one_line_error(result, "runs", "gradcheck, init-sweep, peak, reproduce, train")
    html = CliRunner().invoke(
        app, ["history", "--db", db, "--command", "train", "--html", str(tmp_path / "p")]
    )
    assert_one_line_error(html, "--html", "matmul-bench's timings only")
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()
