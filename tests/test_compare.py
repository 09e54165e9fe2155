"""`fnd compare` and `fnd show`: the statistics on textbook cases, every verdict, every exit code, real
runs."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyperf
import pytest
from conftest import LADDER, assert_one_line_error, run_files

from fndcli.backprop.gradcheck import COLUMNS as GRADCHECK_COLUMNS
from fndcli.bench.stats import COLUMNS
from fndcli.runs.compare import Settings
from fndcli.runs.judging import judge, timing_row

MACHINE = {"cpu_model": "Test CPU", "cpu_count": 2, "gpu": None}


def fake_matmul_run(directory, processes, stamp="20261130-120000", correct=None, **meta):
    """A matmul-bench run on disk as fnd writes one: the CSV, the sidecar and pyperf's file.

    processes: {impl: [[values of one worker process], ...]} at shape 4x4x4; correct: {impl: False}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"matmul-bench-{stamp}"
    rows, benches = [], []
    for impl, runs in processes.items():
        name = f"{impl} 4x4x4 float32 cpu"
        values = [v for run in runs for v in run]
        ok = (correct or {}).get(impl, True)
        rows.append(
            {
                "impl": impl,
                "m": 4,
                "k": 4,
                "n": 4,
                "dtype": "float32",
                "device": "cpu",
                "threads": 2,
                "median_s": float(np.median(values)) if values else math.nan,
                "correct": ok,
                "error": "" if ok else "wrong result: relative error 1.00e+00 > 0.0001 (float32 tolerance)",
                "skipped": "",
            }
        )
        if runs:
            benches.append(
                pyperf.Benchmark(
                    [
                        pyperf.Run(
                            run,
                            warmups=[(1, run[0])],
                            collect_metadata=False,
                            metadata={"name": name, "loops": 1, "unit": "second"},
                        )
                        for run in runs
                    ]
                )
            )
    pd.DataFrame(rows).reindex(columns=COLUMNS).to_csv(directory / f"{stem}.csv", index=False)
    files = [f"{stem}.csv"]
    if benches:
        pyperf.BenchmarkSuite(benches).dump(str(directory / f"{stem}.pyperf.json"))
        files.append(f"{stem}.pyperf.json")
    sidecar = {
        "command": "matmul-bench",
        "started_utc": f"2026-11-30T{stamp[9:11]}:00:00+00:00",
        "files": files,
        "fnd_version": "0.1.0",
        "torch_version": "2.13.0",
        "python_version": "3.11.7",
        "pyperf_version": "2.11.0",
        "preset": "gate",
        "config": {"seed": 0},
        **MACHINE,
        **meta,
    }
    (directory / f"{stem}.json").write_text(json.dumps(sidecar))
    return directory / f"{stem}.csv"


def processes(center, n=5, spread=0.01, seed=0, values=3):
    """n worker processes whose means scatter by `spread` around `center`, each with `values` values."""
    rng = np.random.default_rng(seed)
    means = center * (1 + spread * rng.standard_normal(n))
    return [list(m * (1 + 0.002 * rng.standard_normal(values))) for m in means]


@pytest.mark.parametrize(
    "new_center,new_spread,expected",
    [
        (1.30, 0.01, "REGRESSION"),
        (0.70, 0.01, "improved"),
        (1.10, 0.005, "small"),  # significant, on the threshold: neither beyond nor inside it
        (1.00, 0.01, "same"),
        (1.05, 0.20, "inconclusive"),  # noisy: the interval crosses 0 and 10 %
    ],
)
def test_each_timing_verdict(new_center, new_spread, expected):
    """16 processes a side, runs whose levels move by 2 %: each verdict (judge sets it, after Holm's
    correction)."""
    base = [np.mean(p) for p in processes(1.0, n=16, spread=0.005, seed=1)]
    new = [np.mean(p) for p in processes(new_center, n=16, spread=new_spread, seed=2)]
    row = timing_row("k", "median s/call", base, new, Settings(), "", tau2=(0.02**2, 0.02**2))
    assert judge([row], Settings())[0]["verdict"] == expected


def test_a_true_slowdown_exits_1_through_the_real_command(fnd, tmp_path):
    fake_matmul_run(tmp_path / "base", {"torch": processes(1e-5, seed=1), "einsum": processes(2e-5, seed=2)})
    fake_matmul_run(
        tmp_path / "new",
        {"torch": processes(1.3e-5, seed=3), "einsum": processes(2e-5, seed=4)},
        stamp="20261130-130000",
    )
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: REGRESSION: torch 4x4x4 float32 cpu 2t (median s/call)")
    frame, meta = run_files(tmp_path / "out", "compare")
    verdicts = frame.set_index("key")["verdict"].to_dict()
    assert verdicts == {"torch 4x4x4 float32 cpu 2t": "REGRESSION", "einsum 4x4x4 float32 cpu 2t": "same"}
    torch_row = frame.set_index("key").loc["torch 4x4x4 float32 cpu 2t"]
    assert torch_row["n_base"] == 5 and torch_row["p"] < 0.05 / 2  # Holm over the two rows
    assert 0.2 < torch_row["change"] < 0.4 and meta["counts"] == {"REGRESSION": 1, "same": 1}
    assert "geometric mean of the NEW/BASE time ratios" in result.stdout and "exit 1" in result.stdout
    assert meta["geomean_ratio"] == pytest.approx(
        math.sqrt((1 + torch_row["change"]) * (1 + frame.set_index("key").iloc[1]["change"]))
    )
    # a compare run is its CSV: show says so, of its files and of a directory holding only compare runs
    for named in (tmp_path / "out" / meta["files"][0], next((tmp_path / "out").glob("compare-*.json"))):
        assert_one_line_error(
            fnd("show", named), "is from a compare run, which show and compare do not read back"
        )
    assert_one_line_error(
        fnd("show", tmp_path / "out"), "only compare and history runs, which are not read back"
    )


def test_broken_missing_added_untimed_and_the_options_that_gate(fnd, tmp_path):
    fake_matmul_run(
        tmp_path / "base",
        {
            "torch": processes(1e-5, seed=1),
            "dot": processes(9e-5, seed=2),
            "loops": processes(1e-2, seed=3),
            "broadcast": processes(5e-5, seed=5),
        },
    )
    fake_matmul_run(
        tmp_path / "new",
        {
            "torch": processes(0.5e-5, seed=4),
            "dot": [],
            "einsum": processes(2e-5, seed=6),
            "broadcast": processes(5e-5, n=2),
        },
        stamp="20261130-130000",
        correct={"dot": False},
    )
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "o1", "--format", "csv")
    assert result.exit_code == 1, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout)).set_index("key")
    assert frame["verdict"].to_dict() == {
        "torch 4x4x4 float32 cpu 2t": "improved",
        "dot 4x4x4 float32 cpu 2t": "BROKEN",
        "loops 4x4x4 float32 cpu 2t": "missing",
        "broadcast 4x4x4 float32 cpu 2t": "insufficient",
        "einsum 4x4x4 float32 cpu 2t": "added",
    }
    assert "re-run both with fnd matmul-bench --gate" in frame.loc["broadcast 4x4x4 float32 cpu 2t", "note"]
    assert "wrong result" in frame.loc["dot 4x4x4 float32 cpu 2t", "note"]
    # without the BROKEN row: improvements and insufficient rows gate only when asked
    fake_matmul_run(
        tmp_path / "new2",
        {"torch": processes(0.5e-5, seed=4), "broadcast": processes(5e-5, n=2)},
        stamp="20261130-140000",
    )
    base, new2 = tmp_path / "base", tmp_path / "new2"
    unjudged = fnd("compare", base, new2, "--out", tmp_path / "o2")  # nothing failed, one row not judged
    assert unjudged.exit_code == 3 and "NOT JUDGED: 1 of 4 row(s) (1 insufficient)" in unjudged.stdout
    assert fnd("compare", base, new2, "--out", tmp_path / "o5", "--allow-unjudged").exit_code == 0
    assert fnd("compare", base, new2, "--out", tmp_path / "o3", "--fail-on-improvement").exit_code == 1
    strict = fnd("compare", base, new2, "--out", tmp_path / "o4", "--strict")
    assert strict.exit_code == 1 and "Error: insufficient: broadcast" in strict.stderr
    both = fnd("compare", base, new2, "--out", tmp_path / "o6", "--strict", "--allow-unjudged")
    assert_one_line_error(both, "'--strict'", "give one")


def test_untimed_rows_are_shown_not_gated(fnd, tmp_path):
    fake_matmul_run(tmp_path / "base", {"torch": processes(1e-5), "loops": []})
    fake_matmul_run(
        tmp_path / "new", {"torch": processes(1e-5, seed=3), "loops": []}, stamp="20261130-130000"
    )
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path / "o", "compare")
    assert frame.set_index("key")["verdict"].to_dict() == {
        "torch 4x4x4 float32 cpu 2t": "same",
        "loops 4x4x4 float32 cpu 2t": "untimed",
    }


def test_different_machines_exit_2_unless_allowed(fnd, tmp_path):
    fake_matmul_run(tmp_path / "base", {"torch": processes(1e-5)})
    fake_matmul_run(
        tmp_path / "new",
        {"torch": processes(1e-5, seed=2)},
        stamp="20261130-130000",
        cpu_model="Other CPU",
        torch_version="2.14.1",
    )
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "o")
    assert_one_line_error(
        result, "different machines", "cpu_model 'Test CPU' vs 'Other CPU'", "--allow-mismatch"
    )
    assert not (tmp_path / "o").exists()
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--allow-mismatch", "--out", tmp_path / "o")
    assert result.exit_code == 0 and "DIFFERENT MACHINES" in result.stdout
    assert "versions differ: torch_version 2.13.0 -> 2.14.1" in result.stdout  # listed, and allowed


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["missing.csv", "missing.csv"], ["does not exist"]),
        (["{base}", "{other}"], ["BASE is a matmul-bench run and NEW a gradcheck run"]),
        (["{empty}", "{other}"], ["no gradcheck run in directory"]),
        (["{base}", "{empty}"], ["no matmul-bench run in directory"]),
        (
            ["{base}", "{orphan}"],
            [
                "no matmul-bench run in directory",
                "; matmul-bench-20261130-120000.csv is there "
                "without its sidecar matmul-bench-20261130-120000.json",
            ],
        ),
        (["{base}", "{new}", "--threshold", "0"], ["'--threshold'"]),
        (["{base}", "{disjoint}"], ["share no row: they measured different things (--threads 2 -> 1)"]),
        (["{peak}", "{peak}"], ["not peak: fnd show it"]),
    ],
)
def test_bad_input_exits_2(fnd, tmp_path, args, fragments):
    paths = {
        "base": fake_matmul_run(
            tmp_path / "base", {"torch": processes(1e-5)}, config={"seed": 0, "threads": 2}
        ),
        "new": fake_matmul_run(tmp_path / "new", {"torch": processes(1e-5)}),
        "disjoint": fake_matmul_run(
            tmp_path / "disjoint", {"einsum": processes(1e-5)}, config={"seed": 0, "threads": 1}
        ),
        "empty": tmp_path / "empty",
    }
    (tmp_path / "empty").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "gradcheck-20261130-120000.csv").write_text(",".join(GRADCHECK_COLUMNS) + "\n")
    (other / "gradcheck-20261130-120000.json").write_text(
        json.dumps({"command": "gradcheck", "files": ["gradcheck-20261130-120000.csv"]})
    )
    paths["other"] = other / "gradcheck-20261130-120000.csv"
    from fndcli.bench.peak import COLUMNS as PEAK_COLUMNS

    (other / "peak-20261130-120000.csv").write_text(",".join([*PEAK_COLUMNS, "source"]) + "\n")
    (other / "peak-20261130-120000.json").write_text(
        json.dumps({"command": "peak", "files": ["peak-20261130-120000.csv"]})
    )
    paths["peak"] = other / "peak-20261130-120000.json"
    (tmp_path / "orphan").mkdir()  # a run's CSV copied without its sidecar
    (tmp_path / "orphan" / "matmul-bench-20261130-120000.csv").write_bytes(paths["base"].read_bytes())
    paths["orphan"] = tmp_path / "orphan"
    result = fnd("compare", *[a.format(**paths) for a in args], "--out", tmp_path / "o")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "o").exists()


@pytest.mark.xdist_group("ladder-run")
def test_quick_runs_are_insufficient_not_judged_and_exit_3(fnd, tmp_path, ladder_run):
    """Real runs: --quick times in one process, so there is one sample a side: nothing is judged, which is not
    a pass (exit 3, said in the headline and on stderr, no geometric mean). BASE is conftest's ladder run, NEW
    the same command again."""
    base, new = ladder_run.out, tmp_path / "new"
    assert ladder_run.result.exit_code == 0, ladder_run.result.output
    result = fnd(*LADDER, "--out", new)
    assert result.exit_code == 0, result.output
    result = fnd("compare", base, new, "--out", tmp_path / "o", "--format", "md")
    assert result.exit_code == 3, result.output
    assert "| torch 4x8x3 float32 cpu 2t | median s/call |" in result.stdout.replace(" 1t |", " 2t |")
    assert "insufficient" in result.stdout and "re-run both with fnd matmul-bench --gate" in result.stdout
    assert "- NOT JUDGED: 5 of 5 row(s) (5 insufficient); exit 3" in result.stdout
    assert "geometric mean" not in result.stdout and "5 not judged -> exit 3" in result.stdout
    assert "Error: not judged: 5 row(s), none failed and none passed" in result.stderr
    # too few samples to test: each row shows each run's own median, as its CSV and table have it
    compared, meta = run_files(tmp_path / "o", "compare")
    assert meta["exit_code"] == 3 and meta["not_judged"] == 5 and meta["gated"] == 0
    assert meta["geomean_ratio"] is None
    medians = [run_files(side, "matmul-bench")[0]["median_s"] for side in (base, new)]
    assert len(compared) == 5 and (compared["verdict"] == "insufficient").all()
    assert compared["base"].tolist() == pytest.approx(medians[0].tolist(), rel=1e-12)
    assert compared["new"].tolist() == pytest.approx(medians[1].tolist(), rel=1e-12)
    assert compared["change"].tolist() == pytest.approx((medians[1] / medians[0] - 1).tolist())
    # flagged unstable too (as a busy host makes it): one process a side is still what to fix, with --gate
    csv = next(new.glob("matmul-bench-*.csv"))
    pd.read_csv(csv).assign(unstable="process means spread 40 %").to_csv(csv, index=False)
    again = fnd("compare", base, new, "--out", tmp_path / "o2", "--format", "md")
    assert (
        again.exit_code == 3
        and "insufficient" in again.stdout
        and "unstable" not in again.stdout.split("verdicts")[1]
    )


def test_compare_and_show_the_other_commands(fnd, tmp_path, monkeypatch):
    """Real runs of init-sweep, gradcheck and train: a stable verdict lost, a check that fails, a
    divergence are BROKEN; an unchanged run is the same; show renders each."""
    from fndcli.backprop import model as fnd_model

    small = {
        "init-sweep": [
            "--scheme",
            "kaiming",
            "--act",
            "relu",
            "--depth",
            "8",
            "--width",
            "32",
            "--batch",
            "16",
        ],
        "gradcheck": ["--batch", "8", "--n-in", "6", "--hidden", "5"],
        "train": ["--samples", "300", "--epochs", "6", "--n-in", "8", "--hidden", "8"],
    }
    for command, args in small.items():
        assert fnd(command, *args, "--out", tmp_path / command / "base").exit_code == 0
        assert fnd(command, *args, "--out", tmp_path / command / "same").exit_code == 0
        result = fnd(
            "compare",
            tmp_path / command / "base",
            tmp_path / command / "same",
            "--out",
            tmp_path / "o",
            "--format",
            "csv",
        )
        assert result.exit_code == 0, (command, result.output)
        rows = pd.read_csv(pd.io.common.StringIO(result.stdout))
        timings = rows[rows["what"].str.contains("s/step")]
        # one train run is one sample (its epochs share a process): shown, never judged, and not a reason
        # for exit 3 (it never could be judged); the change is of the two runs' median step times
        assert (timings["verdict"] == "info").all(), timings
        assert len(timings) == (2 if command == "train" else 0)
        if command == "train":
            step = [
                run_files(tmp_path / command / side, "train")[0]["step_s"].median()
                for side in ("base", "same")
            ]
            hand = timings[timings["what"] == "hand-written step s/step"].iloc[0]
            assert float(hand["base"]) == pytest.approx(step[0]) and hand["change"] == pytest.approx(
                step[1] / step[0] - 1
            )
        shown = fnd("show", tmp_path / command / "same")
        assert shown.exit_code == 0 and "versions: fnd" in shown.stdout, shown.output
    # a change for the worse in each: a stable verdict lost, a failing check, a divergence
    assert (
        fnd(
            "init-sweep",
            *small["init-sweep"][:-4],
            "--width",
            "2",
            "--batch",
            "16",
            "--out",
            tmp_path / "init-sweep" / "bad",
        ).exit_code
        == 0
    )
    monkeypatch.setattr(fnd_model.MSE, "backward", lambda self, g=1.0: g * self._diff / self._diff.numel())
    assert fnd("gradcheck", *small["gradcheck"], "--out", tmp_path / "gradcheck" / "bad").exit_code == 1
    monkeypatch.undo()
    assert fnd("train", *small["train"], "--lr", "1000", "--out", tmp_path / "train" / "bad").exit_code == 1
    for command, what in (("init-sweep", "verdict"), ("gradcheck", "rel_err"), ("train", "diverged epoch")):
        result = fnd(
            "compare", tmp_path / command / "base", tmp_path / command / "bad", "--out", tmp_path / command
        )
        assert result.exit_code == 1 and "Error: BROKEN" in result.stderr, (command, result.output)
        frame, meta = run_files(tmp_path / command, "compare")
        assert what in set(frame.loc[frame["verdict"] == "BROKEN", "what"]) and meta["compared"] == command
    assert (
        "settings differ: --width 32 -> 2"
        in fnd(
            "compare",
            tmp_path / "init-sweep" / "base",
            tmp_path / "init-sweep" / "bad",
            "--out",
            tmp_path / "o",
        ).stdout
    )


def test_a_directorys_newest_run_corrupt_is_an_error_not_an_older_run_in_its_place(fnd, tmp_path):
    fake_matmul_run(tmp_path, {"torch": processes(1e-5)}, stamp="20261130-120000")
    (tmp_path / "matmul-bench-20261130-130000.json").write_text('{"command": "matmul-bench", "fi')  # cut off
    assert_one_line_error(fnd("show", tmp_path), "corrupt run sidecar", "20261130-130000", "the newest run")
    (tmp_path / "matmul-bench-20261130-130000.json").write_text("[1, 2]")  # JSON, but not a sidecar
    for named in (tmp_path, tmp_path / "matmul-bench-20261130-130000.json"):
        assert_one_line_error(fnd("show", named), "is named like a run sidecar but is not one fnd writes")
    (tmp_path / "matmul-bench-20261130-130000.json").rename(tmp_path / "matmul-bench-20261130-110000.json")
    assert fnd("show", tmp_path).exit_code == 0  # an older corrupt one does not hide the newest good one


def test_malformed_runs_are_one_line_errors(fnd, tmp_path):
    """A CSV with other columns, a sidecar cut off mid-write, a run compared with itself."""
    good = fake_matmul_run(tmp_path / "good", {"torch": processes(1e-5)})
    bad = fake_matmul_run(tmp_path / "bad", {"torch": processes(1e-5, seed=2)}, stamp="20261130-130000")
    pd.read_csv(bad).rename(columns={"median_s": "median", "correct": "ok"}).to_csv(bad, index=False)
    for command in (["compare", good, bad, "--out", tmp_path / "o"], ["show", bad]):
        assert_one_line_error(fnd(*command), "lacks column(s) median_s, correct", "not as fnd writes it")
    cut = fake_matmul_run(tmp_path / "cut", {"torch": processes(1e-5)}, stamp="20261130-140000")
    sidecar = cut.with_suffix(".json")
    sidecar.write_text(sidecar.read_text()[:40])
    for named in (sidecar, cut, tmp_path / "cut"):
        assert_one_line_error(fnd("compare", good, named, "--out", tmp_path / "o"), "corrupt run sidecar")
        assert_one_line_error(fnd("show", named), "corrupt run sidecar", sidecar.name)
    assert not (tmp_path / "o").exists()
    garbage = fake_matmul_run(tmp_path / "garbage", {"torch": processes(1e-5)}, stamp="20261130-150000")
    garbage.write_text(garbage.read_text().replace(",True,", ",maybe,"))
    short = fake_matmul_run(
        tmp_path / "short", {"torch": processes(1e-5), "einsum": processes(2e-5)}, stamp="20261130-160000"
    )
    short.write_text(short.read_text().rstrip() + "\nloops\n")
    odd = fake_matmul_run(
        tmp_path / "odd", {"torch": processes(1e-5)}, stamp="20261130-170000", config="seed 0"
    )
    for named, fragment in ((garbage, "column correct holds 'maybe'"), (short, "column m is empty in row 3")):
        for command in (["compare", good, named, "--out", tmp_path / "o"], ["show", named]):
            assert_one_line_error(fnd(*command), fragment)
    # a sidecar's fields as fnd writes them, or one line naming the field (not a traceback in compare's
    # header)
    late = fake_matmul_run(
        tmp_path / "late", {"torch": processes(1e-5)}, stamp="20261130-180000", started_utc=5
    )
    newer = fake_matmul_run(
        tmp_path / "newer", {"torch": processes(1e-5)}, stamp="20261130-190000", schema=99
    )
    for named, fragment in (
        (odd, "field config holds 'seed 0'"),
        (late, "field started_utc holds 5"),
        (newer, "written by a newer fnd (sidecar schema 99, this one reads 1)"),
    ):
        for command in (["compare", good, named, "--out", tmp_path / "o"], ["show", named]):
            assert_one_line_error(fnd(*command), fragment)
    itself = fnd("compare", good, good.with_suffix(".json"), "--out", tmp_path / "o")
    assert itself.exit_code == 0 and "Warning: BASE and NEW are the same run" in itself.stderr
    assert "every row is compared with itself" in itself.stderr, itself.output


def test_a_sidecar_field_of_another_json_type_is_refused_and_an_int_in_a_float_field_is_read(fnd, tmp_path):
    """JSON has no int/float split fnd could rely on (a float field written 2 reads back an int), but a bool
    is not a count and a string is not a thread count: each refused on one line naming the field."""
    whole = fake_matmul_run(tmp_path / "whole", {"torch": processes(1e-5)}, load_avg_start=2, rtol=1)
    assert fnd("show", whole).exit_code == 0
    for stamp, field, value in (
        ("20261130-130000", "seed", True),
        ("20261130-140000", "threads", "2"),
        ("20261130-150000", "cpu_count", False),
    ):
        named = fake_matmul_run(tmp_path / field, {"torch": processes(1e-5)}, stamp=stamp, **{field: value})
        assert_one_line_error(fnd("show", named), f"field {field} holds {value!r}: not as fnd writes it")


def test_a_run_named_by_a_relative_and_an_absolute_path_is_the_same_run(fnd, tmp_path, monkeypatch):
    good = fake_matmul_run(tmp_path / "runs", {"torch": processes(1e-5)})
    monkeypatch.chdir(tmp_path)
    itself = fnd("compare", Path("runs") / good.name, good, "--out", tmp_path / "o")
    assert itself.exit_code == 0 and "Warning: BASE and NEW are the same run" in itself.stderr, itself.output


def test_compare_and_show_load_neither_torch_nor_numba(tmp_path):
    from test_startup import fnd_without

    fake_matmul_run(tmp_path / "base", {"torch": processes(1e-5)})
    fake_matmul_run(tmp_path / "new", {"torch": processes(1e-5, seed=2)}, stamp="20261130-130000")
    for args in (
        ["show", str(tmp_path / "new")],
        ["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--out", str(tmp_path / "o")],
    ):
        proc = fnd_without(("torch", "numba", "matplotlib"), *args)
        assert proc.returncode == 0, proc.stderr
        assert "torch" in proc.stdout


def test_show_formats(fnd, tmp_path):
    csv = fake_matmul_run(tmp_path / "run", {"torch": processes(1e-5), "einsum": processes(2e-5)})
    table = fnd("show", csv)
    assert table.exit_code == 0 and "matmul ladder" in table.stdout and "command:" in table.stdout
    md = fnd("show", tmp_path / "run", "--format", "md")
    assert md.stdout.startswith("### fnd matmul-bench: matmul-bench-20261130-120000")
    assert "| impl | m | k | n | device | median_s |" in md.stdout
    torch_cells = next(line for line in md.stdout.splitlines() if line.startswith("| torch |")).split(" | ")
    median = pd.read_csv(csv).set_index("impl").loc["torch", "median_s"]  # 1e-5 s: shown with its unit
    assert torch_cells[5] == f"{median * 1e6:.3g} µs" and "e+" not in md.stdout and "e-0" not in md.stdout
    as_csv = fnd("show", tmp_path / "run" / "matmul-bench-20261130-120000.pyperf.json", "--format", "csv")
    assert pd.read_csv(pd.io.common.StringIO(as_csv.stdout))["impl"].tolist() == ["torch", "einsum"]
    doc = json.loads(fnd("show", tmp_path / "run", "--format", "json").stdout)
    assert doc["run"]["command"] == "matmul-bench" and len(doc["rows"]) == 2
    assert_one_line_error(fnd("show", tmp_path / "nowhere"), "'RUN'", "does not exist")


def test_a_directory_of_another_commands_runs_says_what_it_holds(fnd, tmp_path):
    assert fnd("gradcheck", "--batch", "4", "--out", tmp_path / "gc").exit_code == 0
    assert fnd("train", "--samples", "100", "--epochs", "1", "--out", tmp_path / "tr").exit_code == 0
    result = fnd("compare", tmp_path / "gc", tmp_path / "tr", "--out", tmp_path / "o")
    assert_one_line_error(result, "no train run in directory", "it holds gradcheck runs")
    assert not (tmp_path / "o").exists()


def test_a_run_cut_short_is_named_in_the_header(fnd, tmp_path, monkeypatch):
    from conftest import fail_on_call

    from fndcli.backprop import gradcheck

    assert fnd("gradcheck", "--batch", "4", "--out", tmp_path / "new").exit_code == 0
    with monkeypatch.context() as patch:
        fail_on_call(patch, gradcheck, "finite_difference_rows", 1, KeyboardInterrupt)
        assert fnd("gradcheck", "--batch", "4", "--out", tmp_path / "base").exit_code == 130
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "o")
    assert "BASE: interrupted (Ctrl-C): its rows are those that finished" in result.stdout, result.output
    assert "NEW: interrupted" not in result.stdout and "added" in result.stdout  # the rows BASE did not reach


def test_pair_with_a_run_that_cannot_be_read_blames_the_run_not_pair(fnd, tmp_path):
    result = fnd("compare", tmp_path / "nope", "--pair", "a", "b", "--out", tmp_path / "o")
    assert_one_line_error(result, "Invalid value for 'BASE'", "nope' does not exist")
    run = fake_matmul_run(tmp_path, {"torch": processes(1e-5), "einsum": processes(2e-5)})
    result = fnd("compare", run, "--pair", "torch", "dot", "--out", tmp_path / "o")
    assert_one_line_error(result, "Invalid value for '--pair'", "'dot' is not in run")
