"""`fnd matmul-bench` through the real Typer app and the real pyperf worker subprocess (--quick)."""

import statistics
import subprocess
import sys
import time

import pandas as pd
import pyperf
import pytest
import torch
from conftest import (
    BROKEN,
    CHAPTER_MATMUL,
    SEEDED_GB_S,
    SEEDED_GFLOPS,
    assert_one_line_error,
    assert_rejected,
    assert_unless_flagged,
    flagged,
    run_files,
    timed_threads,
)

from fndcli.bench.run import COLUMNS
from fndcli.kernels.registry import IMPLS
from fndcli.names import CHAPTER


@pytest.mark.xdist_group("ladder-run")
def test_ladder_writes_csv_sidecar_and_pyperf_json(ladder_run):
    result, out = ladder_run.result, ladder_run.out  # conftest.LADDER: the defaults but shape and seed
    assert result.exit_code == 0, result.output
    frame, meta = run_files(out, "matmul-bench")
    assert list(frame.columns) == COLUMNS
    assert list(frame["impl"]) == list(CHAPTER)  # the chapter's five, in its order
    assert frame["correct"].all() and (frame["rel_err"] < 1e-5).all() and frame["error"].isna().all()
    assert (frame[["m", "k", "n"]].values == [4, 8, 3]).all()
    assert (frame["n_values"] == 3).all() and (frame["median_s"] > 0).all()
    assert frame["gflops"].tolist() == pytest.approx((2 * 4 * 8 * 3 / frame["median_s"] / 1e9).tolist())
    # speedups are over the three loops, the chapter's baseline, and say so
    assert (frame["baseline"] == "loops").all()
    loops = frame.loc[frame["impl"] == "loops", "median_s"].iloc[0]
    loops_flagged = flagged(frame)[frame["impl"] == "loops"].iloc[0]
    assert_unless_flagged(frame["speedup"], loops / frame["median_s"], flagged(frame) | loops_flagged)
    assert "speedup: the median of loops ÷ the row's median" in result.stdout
    # % peak is of this machine's float32 FMA ceiling at the run's threads: the suite's seeded cache
    # (conftest.py)
    assert_unless_flagged(frame["pct_peak"], 100 * frame["gflops"] / SEEDED_GFLOPS, flagged(frame))
    assert [(c["dtype"], c["threads"], c["gflops"], c["gb_s"]) for c in meta["peak"]] == [
        ("float32", frame["threads"].iloc[0], SEEDED_GFLOPS, SEEDED_GB_S)
    ]
    caption = " ".join(result.stdout.split())  # as wrapped to the table's width
    assert "% peak: of 1e+05 GFLOP/s, this machine's float32 FMA peak at" in caption
    # no --threads, 192 FLOPs a call: one thread, chosen, recorded and said
    assert (frame["threads"] == 1).all() and meta["config"]["threads"] == 1
    assert meta["threads_note"].startswith("timed on 1 thread: every shape is under 4 MFLOP")
    assert "timed on 1 thread: every shape is under 4 MFLOP" in caption
    assert "(fnd peak), measured 2026-01-01 00:00 UTC (cached)" in caption
    for key in (
        "fnd_version",
        "torch_version",
        "threads",
        "cpu_model",
        "device",
        "dtype",
        "seed",
        "git_commit",
        "command_line",
        "config",
        "started_utc",
    ):
        assert key in meta, key
    assert meta["seed"] == 3 and meta["config"]["seed"] == 3 and meta["config"]["shape"] == ["4x8x3"]
    assert meta["config"]["impl"] == list(CHAPTER) and meta["status"] == "complete"
    pyperf_file = out / meta["files"][1]
    suite = pyperf.BenchmarkSuite.load(str(pyperf_file))
    assert sorted(suite.get_benchmark_names()) == sorted(f"{i} 4x8x3 float32 cpu" for i in CHAPTER)
    stats = subprocess.run(
        [sys.executable, "-m", "pyperf", "stats", str(pyperf_file)], capture_output=True, text=True
    )
    assert stats.returncode == 0 and "torch 4x8x3 float32 cpu" in stats.stdout
    # every path written is printed, and the table has no colour codes (not a terminal, NO_COLOR)
    for name in meta["files"] + [pyperf_file.with_suffix("").with_suffix(".json").name]:
        assert name in result.stdout
    assert "\x1b[" not in result.stdout and "einsum" in result.stdout


def test_config_file_beneath_flags(fnd, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[matmul-bench]\nimpl = ["loops", "einsum"]\nshape = ["3x5x2"]\nquick = true\nseed = 7\n'
        'dtype = "float64"\n'
    )
    result = fnd("matmul-bench", "--config", cfg, "--impl", "torch", "--out", tmp_path / "r", "--quiet")
    assert result.exit_code == 0, result.output
    frame, meta = run_files(tmp_path / "r", "matmul-bench")
    assert list(frame["impl"]) == ["torch"]  # the flag wins over the file
    assert (frame["dtype"] == "float64").all() and meta["seed"] == 7  # the file beats the defaults
    assert (frame[["m", "k", "n"]].values == [3, 5, 2]).all()
    # --quiet prints only the paths written
    assert sorted(result.stdout.split()) == sorted(
        str(tmp_path / "r" / f)
        for f in meta["files"]
        + [
            frame_path.name
            for frame_path in (tmp_path / "r").glob("*.json")
            if "pyperf" not in frame_path.name
        ]
    )


@pytest.mark.xdist_group("wrong-and-skipped-run")
def test_wrong_implementation_exits_1_and_cost_guard_skips(wrong_and_skipped_run):
    """A wrong kernel is marked and exits 1; a run the cost guard estimates too long is skipped with a
    note."""
    result, out = wrong_and_skipped_run.result, wrong_and_skipped_run.out  # dot flipped: see conftest
    assert result.exit_code == 1, result.output
    frame, meta = run_files(out, "matmul-bench")
    small = frame[frame["m"] == 4].set_index("impl")
    later, exits = wrong_and_skipped_run.impls[
        -2:
    ]  # raise, call sys.exit: tests/test_bad_input.py reads them
    assert small["correct"].to_dict() == {
        "dot": False,
        "torch": True,
        "loops": True,
        later: False,
        exits: False,
    }
    assert "wrong result: dot" in result.stdout and meta["exit_code"] == 1
    # exits.py raised at both shapes: named once under the table
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("no result to check:")]
    assert line.count(exits) == 1 and (frame["impl"] == exits).sum() == 2
    # not timed
    assert "relative error" in small.loc["dot", "error"] and pd.isna(small.loc["dot", "median_s"])
    big = frame[frame["m"] == 1024].set_index("impl")
    for slow in ("loops", "dot"):
        assert (
            big.loc[slow, "skipped"].startswith("estimated")
            and "--max-seconds 30" in big.loc[slow, "skipped"]
        )
        assert pd.isna(big.loc[slow, "median_s"]) and pd.isna(big.loc[slow, "correct"])
    assert pd.isna(big.loc["torch", "skipped"]) and big.loc["torch", "correct"]
    # loops is skipped at 1024^3, so the baseline is torch, the one timed at both shapes, at both shapes
    assert (frame["baseline"] == "torch").all()
    assert_unless_flagged([big.loc["torch", "speedup"]], [1.0], [flagged(big)["torch"]])
    torch_small = small.loc["torch", "median_s"]
    assert_unless_flagged(
        [small.loc["loops", "speedup"]],
        [torch_small / small.loc["loops", "median_s"]],
        [flagged(small)["loops"] or flagged(small)["torch"]],
    )
    # the roofline: 1024^3 float32 moves 3 x 1024^2 x 4 bytes for 2 x 1024^3 FLOPs; bound by the FMA units
    # here
    assert big.loc["torch", "intensity"] == pytest.approx(2 * 1024**3 / (3 * 1024**2 * 4))
    assert big.loc["torch", "roof_gflops"] == pytest.approx(min(SEEDED_GFLOPS, SEEDED_GB_S * 1024 / 6))
    assert big.loc["torch", "bound"] == "compute" and small.loc["torch", "bound"] == "memory"
    assert "skipped: estimated" in result.stdout
    assert not list(out.glob("*-crossovers.csv"))  # shapes given one by one are not a sweep


def test_ctrl_c_keeps_finished_rows(fnd, tmp_path, monkeypatch):
    """Ctrl-C during the second benchmark: exit 130, the first benchmark's row and pyperf data kept."""
    from fndcli.bench import here

    real_timer = here.time_here  # --quick times in fnd's own process

    def interrupted_after_first(specs, *args):
        real_timer(specs[:1], *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(here, "time_here", interrupted_after_first)
    result = fnd(
        "matmul-bench",
        "--quick",
        "--impl",
        "einsum",
        "--impl",
        "torch",
        "--shape",
        "4x4x4",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 130, result.output
    frame, meta = run_files(tmp_path, "matmul-bench")
    assert list(frame["impl"]) == ["einsum", "torch"] and meta["status"] == "interrupted"
    assert frame["correct"].all() and frame["median_s"].notna().tolist() == [True, False]
    assert frame["skipped"].fillna("").tolist() == ["", "interrupted before it was timed"]
    suite = pyperf.BenchmarkSuite.load(str(next(tmp_path.glob("*.pyperf.json"))))
    assert suite.get_benchmark_names() == ["einsum 4x4x4 float32 cpu"]


def test_ctrl_c_before_any_worker_keeps_the_checks(fnd, tmp_path, monkeypatch):
    """The default preset, interleaved: Ctrl-C in the first worker process still keeps every check that
    ran."""

    def interrupted(*args):
        raise KeyboardInterrupt

    from fndcli.bench import processes

    monkeypatch.setattr(processes, "run_worker", interrupted)
    result = fnd("matmul-bench", "--impl", "einsum", "--impl", "torch", "--shape", "4x4x4", "--out", tmp_path)
    assert result.exit_code == 130 and "interrupted" in result.stdout, result.output
    frame, meta = run_files(tmp_path, "matmul-bench")
    assert (
        list(frame["impl"]) == ["einsum", "torch"]
        and frame["correct"].all()
        and frame["rel_err"].notna().all()
    )
    assert (frame["skipped"] == "interrupted before it was timed").all() and meta["status"] == "interrupted"


def test_quick_times_in_fnds_own_process_and_a_kernel_failing_there_keeps_the_rows_before(
    fnd, tmp_path, monkeypatch
):
    """--quick starts no worker process: its values are timed here, at the threads asked, with the worker's
    record (threads, the seeded input's sum) in pyperf's file. A kernel that passes its check and raises on a
    later call stops the timing as a failing worker does: exit 1, one line, the benchmark before it kept."""
    from fndcli.bench import processes

    def no_worker(*args):
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(processes, "run_worker", no_worker)
    kern = tmp_path / "late.py"
    kern.write_text(  # right on the check's inputs (one object throughout), raises on the timing's own
        "SEEN = []\n\ndef mm(a, b):\n    if a.shape == (4, 4):\n"
        "        SEEN.append(a) if not SEEN else None\n"
        "        assert a is SEEN[0], 'new inputs'\n    return a @ b\n"
    )
    before = torch.get_num_threads()
    args = ("matmul-bench", "--quick", "--shape", "4x4x4", "--threads", "1", "--out")
    result = fnd(*args, tmp_path / "a", "--impl", "torch", "--impl", f"{kern}:mm")
    assert torch.get_num_threads() == before
    assert result.exit_code == 1, result.output
    assert f"timing {kern}:mm 4x4x4 float32 cpu failed: AssertionError: new inputs" in result.output
    frame, meta = run_files(tmp_path / "a", "matmul-bench")
    assert frame["median_s"].notna().tolist() == [True, False] and meta["status"] == "failed"
    suite = pyperf.BenchmarkSuite.load(str(next((tmp_path / "a").glob("*.pyperf.json"))))
    (bench,) = suite.get_benchmarks()
    meta = bench.get_metadata()
    assert bench.get_name() == "torch 4x4x4 float32 cpu" and len(bench.get_values()) == 3
    assert meta["fnd_threads"] == 1 and meta["fnd_timed_in"] == "fnd's own process"
    a = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))  # the seed's a, as the chapter draws it
    assert meta["fnd_input_sum"] == pytest.approx(float(a.double().sum()), rel=1e-12)


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--impl", "nope"], ["'--impl'", "'nope'", "loops"]),
        (["--shape", "5x0x3"], ["'--shape'", "zero dimension"]),
        (["--shape", "abc"], ["'--shape'", "MxKxN"]),
        (["--dtype", "int8"], ["'--dtype'", "float32"]),
        (["--threads", "0"], ["'--threads'"]),
        (["--max-seconds", "-1"], ["'--max-seconds'", "positive"]),
        (["--quick", "--fast"], ["--quick and --fast"]),
        (["--config", "/nonexistent/fnd.toml"], ["'--config'", "cannot read", "/nonexistent/fnd.toml"]),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "matmul-bench", args, *fragments)


def test_unwritable_out_exits_2(fnd, tmp_path):
    (tmp_path / "file").write_text("x")
    result = fnd("matmul-bench", "--quick", "--shape", "2x2x2", "--out", tmp_path / "file" / "sub")
    assert_one_line_error(result, "'--out'", "cannot write")


@pytest.mark.parametrize(
    "toml,fragments",
    [
        ('[matmul-bench]\nimpls = ["torch"]\n', ["unknown key 'impls'", "known keys", "impl"]),
        ('[matmul-bench]\nthreads = "4"\n', ['threads must be an integer, got "4"']),
        (
            "[matmul-bench]\nseed = true\n",
            ["seed must be an integer, got true"],
        ),  # TOML's bool is not an int here
        ("[matmul-bench]\nquick = 1\n", ["quick must be true or false", "1"]),
        ('[matmul-bench]\nmax-seconds = "10"\n', ["max-seconds must be a number"]),
        ('[matmul-bench]\nimpl = "torch"\n', ["impl must be a list"]),
        ('[matmul-bench]\nimpl = ["nope"]\n', ["impl", "'nope'"]),
        ('[matmul-bench]\nshape = ["5x0x3"]\n', ["shape", "zero dimension"]),
        ("[matmul-bench\n", ["not valid TOML"]),
    ],
)
def test_bad_config_exits_2_naming_key_and_file(fnd, tmp_path, toml, fragments):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    result = fnd("matmul-bench", "--config", cfg, "--out", tmp_path / "out")
    assert_one_line_error(result, str(cfg), *fragments)
    assert not (tmp_path / "out").exists()


def test_shipped_configs_are_valid(fnd, tmp_path):
    """ci.toml runs; book.toml's table loads (its full run is `make demo`)."""
    result = fnd(
        "matmul-bench", "--config", "configs/ci.toml", "--impl", "torch", "--out", tmp_path, "--quiet"
    )
    assert result.exit_code == 0, result.output
    import typer.main

    from fndcli.cli import app

    group = typer.main.get_command(app)
    for name in ("book", "ci"):
        with group.make_context("fnd", ["matmul-bench", "--help"], resilient_parsing=True) as ctx:
            pass
        cmd = group.get_command(ctx, "matmul-bench")
        with cmd.make_context("matmul-bench", ["--config", f"configs/{name}.toml"], parent=ctx) as sub:
            assert sub.params["impl"], name


def test_python_m_fndcli_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "fndcli", "matmul-bench", "--impl", "nope"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: ")


@pytest.mark.xdist_group("timed")  # one timed test at a time
def test_default_preset_times_what_it_reports(interleaved_run):
    """The path users run: the default preset, real worker processes, options forwarded to them.

    broadcast, tiny, on a thread count other than torch's in this suite: the per-call median must agree
    with this test's own clock, the workers must have used the dtype, threads and seed asked for (their
    own record, in pyperf's metadata), and the preset must deliver the values it promises.
    """
    result, out = interleaved_run.result, interleaved_run.out
    assert result.exit_code == 0, result.output
    asked = timed_threads()
    frame, meta = run_files(out, "matmul-bench")
    row = frame[(frame["impl"] == "broadcast") & (frame["m"] == 8)].iloc[0]
    suite = pyperf.BenchmarkSuite.load(str(out / meta["files"][1]))
    bench = next(b for b in suite.get_benchmarks() if b.get_name().startswith("broadcast 8x64x32"))
    # the default preset: 2 worker processes, each 1 warmup and 3 values
    runs = [run for run in bench.get_runs() if run.values]
    assert len(runs) == 2 and all(len(run.values) == 3 and len(run.warmups) == 1 for run in runs)
    assert row["n_values"] == 6 and row["processes"] == 2 and meta["preset"] == "default"
    # what the workers timed, as they recorded it
    recorded = bench.get_metadata()
    assert (recorded["fnd_dtype"], recorded["fnd_threads"], recorded["fnd_seed"]) == ("float64", asked, 5)
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(8, 64, generator=gen, dtype=torch.float64)
    b = torch.randn(64, 32, generator=gen, dtype=torch.float64)
    assert recorded["fnd_input_sum"] == pytest.approx(a.sum().item(), rel=1e-12)
    assert row["threads"] == asked and recorded["inner_loops"] > 1
    # an independent clock around the same call, on the same threads
    threads = torch.get_num_threads()
    torch.set_num_threads(asked)
    try:
        fn = IMPLS["broadcast"].fn
        fn(a, b)
        batches = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(100):
                fn(a, b)
            batches.append((time.perf_counter() - t0) / 100)
    finally:
        torch.set_num_threads(threads)
    ours = statistics.median(batches)
    # within 3x: a per-call figure off by inner_loops (hundreds) or by one call a value goes red; a host's
    # transient drift between the workers' minute and this test's second (0.46x seen once on a quiet host)
    # does not
    assert 1 / 3 < row["median_s"] / ours < 3, (row["median_s"], ours)


@pytest.mark.xdist_group("timed")  # the run the timed test above reads
def test_worker_processes_interleave(interleaved_run):
    """The default preset's two processes a benchmark go round-robin (A B A B), the sidecar says so, and
    pyperf's file still holds one benchmark per implementation with all its runs, in that order by pyperf's
    own clock. (At 60000^3 the cost guard skips both: tests/test_memory.py reads those rows.)"""
    result, out = interleaved_run.result, interleaved_run.out
    assert result.exit_code == 0, result.output
    _, meta = run_files(out, "matmul-bench")
    assert meta["order"] == "interleaved" and meta["worker_order"] == [
        "broadcast 8x64x32 cpu #1",
        "torch 8x64x32 cpu #1",
        "broadcast 8x64x32 cpu #2",
        "torch 8x64x32 cpu #2",
    ]
    suite = pyperf.BenchmarkSuite.load(str(out / meta["files"][1]))
    assert suite.get_benchmark_names() == ["broadcast 8x64x32 float64 cpu", "torch 8x64x32 float64 cpu"]
    assert [len(b.get_runs()) for b in suite.get_benchmarks()] == [2, 2]
    starts = [run.get_metadata()["date"] for b in suite.get_benchmarks() for run in b.get_runs()]
    assert sorted(starts) == [starts[0], starts[2], starts[1], starts[3]]  # b1 t1 b2 t2


@pytest.mark.xdist_group("kernels-that-fail-run")
def test_a_kernel_that_breaks_is_a_failing_row(kernels_that_fail_run):
    """Wrong shape, inputs written to, not a tensor, NaNs: row NO with the reason, exit 1, the other rows
    intact: torch, checked after dot zeroed its a, is correct and timed."""
    result = kernels_that_fail_run.result  # conftest.BROKEN's four, torch, and a kernel of yours, float64
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    frame, meta = run_files(kernels_that_fail_run.out, "matmul-bench")
    rows = frame.set_index("impl")
    for name, (_, reason) in BROKEN.items():
        assert rows.loc[name, "error"] == reason and not rows.loc[name, "correct"], name
        assert pd.isna(rows.loc[name, "median_s"]) and reason in result.stdout
    assert rows.loc["torch", "correct"] and rows.loc["torch", "median_s"] > 0 and meta["exit_code"] == 1
    # NaNs are a wrong result; a wrong shape, an exception, no tensor, the wrong dtype gave none to check
    assert "wrong result: loops (checked against float64 a @ b)" in result.stdout
    assert f"no result to check: einsum, broadcast, {CHAPTER_MATMUL} (raised" in result.stdout
    assert "changed its inputs: dot (each kernel is checked on its own copy of a and b)" in result.stdout
