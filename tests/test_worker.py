"""The worker's command line and timing function, and the calls the cost guard counts, without starting a
worker."""

import argparse

import pytest

from fndcli.bench import worker as bench_worker
from fndcli.bench.spec import PRESETS, BenchSpec, Shape, WorkerArgs, benchmark_name, estimate_run_seconds


def test_time_impl_makes_exactly_loops_times_inner_loops_calls(monkeypatch):
    """pyperf divides the time by loops * inner_loops, so that is how many calls are timed, none more or
    fewer."""
    calls = []
    spec = BenchSpec("torch", "cpu", Shape(2, 3, 4), inner_loops=7)
    monkeypatch.setitem(bench_worker._prepared, spec, (lambda a, b: calls.append((a, b)), "a", "b"))
    for loops in (1, 3):
        calls.clear()
        assert bench_worker.time_impl(loops, spec) >= 0
        assert calls == [("a", "b")] * (loops * 7)


def test_cost_guard_counts_warmups_and_values_of_every_process():
    """default: 2 processes x (1 warmup + 3 values); the Python loops: 1 x (1 + 4), each call a value of its
    own."""
    default = PRESETS["default"]
    assert default.runs.calls == 2 * (1 + 3) and default.slow.calls == 1 * (1 + 4)
    assert PRESETS["gate"].runs.calls == 16 * (1 + 10) and PRESETS["rigorous"].runs.calls == 40 * (1 + 3)
    book = Shape(5, 784, 10)
    torch_call = 10e-6 + 2 * 5 * 784 * 10 / 2e10  # one launch + the flops at 20 GFLOP/s (names.IMPL_SPECS)
    # the untimed first call, then 2 x (1 + 3) = 8 values of 40 ms each
    assert estimate_run_seconds("torch", book, default) == pytest.approx(torch_call + 8 * 0.04)
    loops_call = 5 * 784 * 10 * 15e-6 + 2 * 5 * 784 * 10 / 1e9  # 39,200 Python iterations
    # first call + 5
    assert estimate_run_seconds("loops", book, default) == pytest.approx(loops_call * (1 + 5))


@pytest.mark.parametrize(
    "args",
    [
        WorkerArgs(),
        WorkerArgs(
            (
                BenchSpec("einsum", "cpu", Shape(5, 784, 10), 200),
                BenchSpec("mine.py:fast", "cuda", Shape(1, 2, 3)),
            ),
            "bfloat16",
            7,
            threads=2,
            pins=(("k.py:mm@HEAD~5", "0123abcd" * 5),),
        ),
    ],
)
def test_worker_args_round_trip(args):
    """The parent's command line parses back to what it encoded: the worker's and the isolated check's, one
    type."""
    assert WorkerArgs.from_argv(args.to_argv()) == args
    forwarded = []  # what pyperf's manager adds to each worker process's command line
    bench_worker.add_worker_args(forwarded, argparse.Namespace(**vars(args), worker=False))
    assert forwarded == args.to_argv()


def test_benchmark_name_is_the_spec_name():
    """compare finds a row's pyperf benchmark by this name, as the worker registered it."""
    spec = BenchSpec("torch", "cpu", Shape(5, 784, 10), 200)
    assert (
        spec.name("float32")
        == benchmark_name("torch", Shape(5, 784, 10), "float32", "cpu")
        == "torch 5x784x10 float32 cpu"
    )
