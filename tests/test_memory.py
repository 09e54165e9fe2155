"""Runs that would not fit are refused before they start; one that runs out part-way keeps what finished."""

import dataclasses
import os

import pandas as pd
import pytest
from conftest import assert_rejected, fail_on_call, run_files

from fndcli import memory
from fndcli.backprop import train as fnd_train
from fndcli.bench.spec import Shape
from fndcli.init import sweep
from fndcli.kernels.registry import IMPLS

OOM = RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 1000000000000 bytes."
)


@pytest.mark.parametrize(
    "command,args,fragments",
    [
        (
            "matmul-bench",
            ["--shape", "60000x60000x60000", "--max-seconds", "1e9"],
            [
                "not enough memory: matmul-bench at 60000x60000x60000 needs about",
                "is available on cpu",
                "use a smaller --shape",
            ],
        ),
        (
            "matmul-bench",
            ["--impl", "torch", "--sweep", "1024,70000", "--max-seconds", "1e9"],
            ["at 70000x70000x70000", "use a smaller --sweep"],
        ),
        (
            "init-sweep",
            ["--width", "60000"],
            ["init-sweep at width 60000", "use a smaller --width, --depth, --batch or --seeds"],
        ),
        (
            "train",
            ["--n-in", "50000", "--hidden", "50000"],
            ["train on 4000 x 50000 -> 50000 -> 1", "use a smaller --samples, --n-in, --hidden or --widths"],
        ),
        (
            "gradcheck",
            ["--hidden", "100000", "--n-in", "100000"],
            ["use a smaller --batch, --n-in or --hidden"],
        ),
    ],
)
def test_a_run_that_would_not_fit_is_refused_before_it_starts(fnd, tmp_path, command, args, fragments):
    """Exit 2 with the need, the limit and the option; nothing allocated (these sizes would need 100+ GB)."""
    assert_rejected(fnd, tmp_path, command, args, *fragments)


@pytest.mark.xdist_group("timed")  # the run tests/test_matmul_cli.py times, in the same worker
def test_the_cost_guard_skips_are_not_counted(interleaved_run):
    """At 60000^3 every implementation is skipped by the cost guard first, so nothing needs memory there
    (8x64x32 runs: a run the cost guard skips whole is refused, tests/test_bad_input.py). The run: broadcast
    and torch, the default preset (conftest.py)."""
    result = interleaved_run.result
    assert result.exit_code == 0, result.output
    frame, _ = run_files(interleaved_run.out, "matmul-bench")
    torch_rows = frame[frame["impl"] == "torch"]
    assert torch_rows["skipped"].fillna("").tolist()[0] == "" and torch_rows["skipped"].iloc[1].startswith(
        "estimated"
    )
    assert frame.loc[frame["m"] == 60000, "skipped"].str.startswith("estimated").all()  # broadcast's too


def test_estimates_grow_with_size_and_count_the_essentials():
    """At least a, b and the float64 reference; the stack of activations; the weights."""
    small, big = Shape(64, 64, 64), Shape(4096, 4096, 4096)
    assert memory.bench_bytes(big, "float32", ["torch"]) >= 4096**2 * (4 + 4 + 8)
    assert memory.bench_bytes(big, "float32", ["broadcast"]) > memory.bench_bytes(big, "float32", ["torch"])
    assert memory.bench_bytes(small, "float32", ["torch"]) < memory.bench_bytes(big, "float32", ["torch"])
    from fndcli.settings import GradcheckConfig, SweepConfig, TrainConfig

    cfg = SweepConfig(width=1000, depth=10, batch=500)
    assert memory.sweep_bytes(cfg) >= 10 * 1000**2 * 4 + 11 * 500 * 1000 * 4
    assert memory.train_bytes(TrainConfig(n_in=1000, hidden=(1000,))) >= 2 * (1000 * 1000) * 4
    assert (
        memory.gradcheck_bytes(GradcheckConfig(batch=1000, n_in=1000, hidden=(1000,))) >= 1000 * 1000 * 4 * 2
    )


def test_available_memory_is_read():
    assert 0 < memory.available_bytes() < 1 << 50
    assert memory.human_bytes(1.5e9) == "1.5 GB" and memory.human_bytes(999) == "999 B"


def test_out_of_memory_mid_run_matmul_keeps_the_rows_before(fnd, tmp_path, monkeypatch):
    def allocates_too_much(a, b):
        raise OOM

    monkeypatch.setitem(IMPLS, "einsum", dataclasses.replace(IMPLS["einsum"], fn=allocates_too_much))
    result = fnd(
        "matmul-bench",
        "--quick",
        "--impl",
        "torch",
        "--impl",
        "einsum",
        "--impl",
        "broadcast",
        "--shape",
        "3x4x5",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 1, result.output
    assert (
        result.stderr == "Error: out of memory checking einsum on cpu at 3x4x5; the rows before it are kept\n"
    )
    frame, meta = run_files(tmp_path, "matmul-bench")
    rows = frame.set_index("impl")
    assert list(rows.index) == ["torch", "einsum"] and rows.loc["torch", "median_s"] > 0  # timed, kept
    assert rows.loc["einsum", "error"].startswith("out of memory") and meta["exit_code"] == 1


def test_out_of_memory_mid_run_init_sweep_keeps_whole_runs(fnd, tmp_path, monkeypatch):
    fail_on_call(monkeypatch, sweep, "run_stack", 2, OOM)
    result = fnd(
        "init-sweep",
        "--scheme",
        "kaiming",
        "--act",
        "relu",
        "--seeds",
        "3",
        "--depth",
        "5",
        "--width",
        "8",
        "--batch",
        "4",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 1 and "Error: out of memory at kaiming-normal / relu, seed 1" in result.stderr
    layers, meta = run_files(tmp_path, "init-sweep")
    assert sorted(layers["seed"].unique()) == [0] and len(layers) == 6 and meta["exit_code"] == 1


def test_out_of_memory_mid_run_train_keeps_the_epochs_before(fnd, tmp_path, monkeypatch):
    real, steps = fnd_train.twin_loss, []

    def fails_in_epoch_2(*args):
        steps.append(1)
        if len(steps) > 20:  # epoch 1 has 400 * 0.8 / 32 = 10 steps, and 2 evaluations after it
            raise OOM
        return real(*args)

    monkeypatch.setattr(fnd_train, "twin_loss", fails_in_epoch_2)
    result = fnd(
        "train", "--samples", "400", "--batch-size", "32", "--epochs", "3", "--out", tmp_path, "--quiet"
    )
    assert result.exit_code == 1 and result.stderr.startswith("Error: out of memory in epoch 2"), (
        result.stderr
    )
    history, _ = run_files(tmp_path, "train")
    assert list(history["epoch"]) == [0, 1]


def test_out_of_memory_mid_run_gradcheck_keeps_the_rows_before(fnd, tmp_path, monkeypatch):
    from fndcli.backprop import gradcheck

    def fails(cfg):
        raise OOM

    monkeypatch.setattr(gradcheck, "finite_difference_rows", fails)
    result = fnd("gradcheck", "--batch", "8", "--out", tmp_path)
    assert result.exit_code == 1 and "Error: out of memory after 9 check(s)" in result.stderr
    frame, _ = run_files(tmp_path, "gradcheck")
    assert (frame["check"] == "autograd").all() and len(frame) == 9 and frame["passed"].all()
    assert "Traceback" not in result.output and pd.notna(frame["rel_err"]).all()


def test_a_bare_memory_error_mid_run_is_one_line_too(fnd, tmp_path, monkeypatch):
    """Python's MemoryError often has no message: the error line must not depend on one."""
    from fndcli.backprop import gradcheck

    def fails(cfg):
        raise MemoryError()

    monkeypatch.setattr(gradcheck, "finite_difference_rows", fails)
    result = fnd("gradcheck", "--batch", "8", "--out", tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.stderr == "Error: out of memory after 9 check(s): (no message)\n"
    frame, _ = run_files(tmp_path, "gradcheck")
    assert len(frame) == 9


def test_a_sweep_that_fits_is_not_refused(fnd, tmp_path, monkeypatch):
    """The per-row figure is an upper bound, not a wild one: 84 rows of a width-8 stack fit in 64 MB."""
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 64 * 10**6)
    result = fnd(
        "init-sweep",
        "--scheme",
        "kaiming",
        "--act",
        "relu",
        "--seeds",
        "4",
        "--depth",
        "20",
        "--width",
        "8",
        "--batch",
        "4",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    layers, _ = run_files(tmp_path, "init-sweep")
    assert len(layers) == 4 * 21


def test_available_memory_is_at_most_the_physical_ram():
    """MemAvailable is in kB: read as bytes it cannot exceed the machine's RAM."""
    assert 0 < memory.available_bytes() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
