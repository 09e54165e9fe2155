"""Beyond the chapter's ladder on the CPU: compiled kernels, devices, dtypes, sweeps, crossovers, peak."""

import dataclasses
import re
import time

import numpy as np
import pandas as pd
import pyperf
import pytest
import torch
from conftest import (
    SEEDED_GB_S,
    SEEDED_GFLOPS,
    assert_one_line_error,
    assert_rejected,
    assert_unless_flagged,
    flagged,
    run_files,
)
from numba import njit

from fndcli.bench.spec import Shape, parse_sweep, sweep_shapes
from fndcli.bench.stats import CROSSOVER_COLUMNS
from fndcli.kernels.loops import three_loops
from fndcli.kernels.registry import IMPLS


def test_sweep_along_one_dimension_with_crossovers_and_peak(fnd, tmp_path):
    result = fnd(
        "matmul-bench",
        "--impl",
        "torch",
        "--impl",
        "loops",
        "--shape",
        "4x8x3",
        "--sweep",
        "1,2,6",
        "--sweep-dim",
        "n",
        "--peak-gflops",
        "1000",
        "--quick",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    frame, meta = run_files(tmp_path, "matmul-bench")
    assert sorted(set(zip(frame["m"], frame["k"], frame["n"]))) == [(4, 8, 1), (4, 8, 2), (4, 8, 6)]
    assert frame["correct"].all() and len(frame) == 6
    assert_unless_flagged(frame["pct_peak"], frame["gflops"] / 10, flagged(frame))  # 100 * gflops / 1000
    threads = int(frame["threads"].iloc[0])
    assert meta["peak"] == [
        {
            "device": "cpu",
            "dtype": "float32",
            "threads": threads,
            "gflops": 1000.0,
            "gb_s": SEEDED_GB_S,
            "source": "1000 GFLOP/s, --peak-gflops",
            "given": True,
        }
    ]
    # the roofline's bandwidth is the cache's (the session's seeded one): nothing measured, nothing dropped
    intensity = (
        2
        * frame["m"]
        * frame["k"]
        * frame["n"]
        / (4 * (frame["m"] * frame["k"] + frame["k"] * frame["n"] + frame["m"] * frame["n"]))
    )
    assert np.allclose(frame["roof_gflops"], np.minimum(1000.0, SEEDED_GB_S * intensity))
    assert "% peak: of 1000 GFLOP/s, --peak-gflops" in result.stdout
    cross = pd.read_csv(next(tmp_path.glob("*-crossovers.csv")))
    assert list(cross.columns) == CROSSOVER_COLUMNS
    assert len(cross) == 0  # the loops never overtake torch: no crossover, whatever the noise
    assert meta["config"]["device"] == ["cpu"] and "tf32_matmul" in meta


@pytest.mark.xdist_group("kernels-that-pass-run")
def test_threads_reach_numpys_blas_in_the_worker(kernels_that_pass_run):
    """One thread (auto_threads, at 4x6x3) reaches numpy's BLAS in the process that times it, where the
    environment would give it every core (conftest: OMP_NUM_THREADS unset; a 1-core host cannot tell). The
    worker names that BLAS for numpy's row and the user's code, not torch's (torch's BLAS is linked into it),
    and the sidecar and the caption say it."""
    result, out = kernels_that_pass_run.result, kernels_that_pass_run.out
    assert result.exit_code == 0, result.output
    _, meta = run_files(out, "matmul-bench")
    suite = pyperf.BenchmarkSuite.load(str(out / meta["files"][1]))
    named = {b.get_name(): b.get_metadata().get("fnd_blas") for b in suite.get_benchmarks()}
    blas = named["numpy 4x6x3 float32 cpu"]
    threads = re.findall(r"(\d+) threads?\)", blas)  # one per BLAS loaded: 'openblas 0.3.31 (Haswell, ...)'
    assert threads and set(threads) == {"1"}, blas
    assert named["torch 4x6x3 float32 cpu"] is None
    assert named[f"{kernels_that_pass_run.impls[0]} 4x6x3 float32 cpu"] == blas  # the user's code may call it
    assert f"numpy 4x6x3 float32 cpu: {blas}" in meta["blas"]
    caption = " ".join(result.stdout.split())  # rich's wrapping undone
    assert f"numpy's BLAS: {blas}" in caption


@pytest.mark.slow  # numba-tiled's own processes: ~7 s (make test covers --impl all in float16, without numba)
@pytest.mark.xdist_group("numba-tiled-float32")  # on the worker that compiles numba-tiled in float32
def test_impl_all_is_everything_that_runs_here(fnd, tmp_path, monkeypatch):
    """--impl all on the CPU; numba-loops here is a fresh, uncached dispatcher, so its first call compiles."""
    fresh = njit(three_loops)

    def numba_loops(a, b):
        c = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
        fresh(a.numpy(), b.numpy(), c.numpy())
        return c

    monkeypatch.setitem(IMPLS, "numba-loops", dataclasses.replace(IMPLS["numba-loops"], fn=numba_loops))
    t0 = time.perf_counter()
    result = fnd("matmul-bench", "--impl", "all", "--shape", "3x4x5", "--quick", "--out", tmp_path)
    elapsed = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path, "matmul-bench")
    # numba takes a good fraction of a second to compile a function; compile_s is that, apart from the timing
    assert 0.05 < frame.set_index("impl").loc["numba-loops", "compile_s"] < elapsed
    assert "compile" in result.stdout
    # numba-tiled ran with its own numba settings, in the processes fnd started for it
    _, meta = run_files(tmp_path, "matmul-bench")
    suite = pyperf.BenchmarkSuite.load(str(tmp_path / meta["files"][1]))
    tiled = next(b for b in suite.get_benchmarks() if b.get_name().startswith("numba-tiled"))
    assert tiled.get_metadata()["fnd_numba_slp"] is True
    assert list(frame["impl"]) == [
        "loops",
        "dot",
        "broadcast",
        "einsum",
        "torch",
        "numpy",
        "numba-loops",
        "numba-tiled",
    ]
    by_impl = frame.set_index("impl")
    # % peak of the machine's ceiling, here the suite's seeded cache (tests/conftest.py)
    assert_unless_flagged(by_impl["pct_peak"], 100 * by_impl["gflops"] / SEEDED_GFLOPS, flagged(by_impl))
    # each compiled kernel's first call compiled it, or loaded it from numba's cache in a fresh process
    # (numba-tiled):
    # far longer than a steady call, and part of this run
    for impl in ("numba-loops", "numba-tiled"):
        assert by_impl.loc[impl, "min_s"] < by_impl.loc[impl, "compile_s"] < elapsed, impl
    assert by_impl.loc[["loops", "torch"], "compile_s"].isna().all()


@pytest.mark.parametrize(
    "args,fragments",
    [
        (
            ["--impl", "triton"],
            ["triton runs only on cuda", "use --device cuda", "interpreter", "correctness only"],
        ),
        (
            ["--impl", "numba-tiled", "--dtype", "bfloat16"],
            ["numba-tiled does not support bfloat16", "float32, float64"],
        ),
        (["--impl", "numpy", "--dtype", "float16"], ["numpy does not support float16", "float32, float64"]),
        (["--sweep", "64:16"], ["'--sweep'", "LO:HI"]),
        (["--sweep", "a,b"], ["'--sweep'"]),
        (["--sweep-dim", "m"], ["'--sweep-dim'", "needs --sweep"]),
        (
            ["--sweep", "2,4", "--sweep-dim", "k", "--shape", "4x4x4", "--shape", "8x8x8"],
            ["'--sweep-dim'", "one --shape"],
        ),
        (["--sweep", "2,4", "--shape", "4x8x3"], ["'--shape'", "square shapes SxSxS and replaces --shape"]),
        (["--peak-gflops", "0"], ["'--peak-gflops'"]),
        (["--device", "tpu"], ["'--device'", "cuda"]),
        (["--baseline", "numba-tiled"], ["'--baseline'", "'numba-tiled' is not in this run", "loops"]),
        (["--impl", "torch", "--baseline", "torch@cuda"], ["'--baseline'", "'torch@cuda'"]),
    ],
)
def test_bad_input_exits_2(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "matmul-bench", args, *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["matmul-bench"], ["train"], ["gradcheck"]])
def test_cuda_without_cuda_exits_2(fnd, tmp_path, command):
    result = fnd(*command, "--device", "cuda", "--out", tmp_path / "out")
    assert_one_line_error(result, "CUDA is not available", "use --device cpu")


def test_parse_sweep():
    assert parse_sweep("16:2048") == [16, 32, 64, 128, 256, 512, 1024, 2048]
    assert parse_sweep("10:40") == [16, 32] and parse_sweep("5,3,5") == [3, 5]
    assert sweep_shapes([2, 4], "k", Shape(5, 9, 7)) == [Shape(5, 2, 7), Shape(5, 4, 7)]
    assert sweep_shapes([2], "all", Shape(5, 9, 7)) == [Shape(2, 2, 2)]
    with pytest.raises(ValueError, match="'1024:64' runs backwards: LO:HI with LO <= HI, e.g. 64:1024"):
        parse_sweep("1024:64")
    for text in ("0:16", "a:b", "", "4,-1"):
        with pytest.raises(ValueError, match="is not LO:HI"):
            parse_sweep(text)
