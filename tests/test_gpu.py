"""GPU checks: skipped without CUDA (CI is CPU-only); run by scripts/gpu-check on a GPU machine."""

import pandas as pd
import pytest
import torch
from conftest import run_files

from fndcli.bench.check import check_impl
from fndcli.bench.spec import Shape, make_inputs
from fndcli.kernels.registry import IMPLS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

GPU_IMPLS = [name for name, impl in IMPLS.items() if "cuda" in impl.devices]


@pytest.mark.parametrize("impl", GPU_IMPLS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("shape", ["1x1x1", "7x13x5", "33x65x17", "130x257x129"])
def test_gpu_impl_matches_float64(impl, dtype, shape):
    if dtype not in IMPLS[impl].dtypes:
        pytest.skip(f"{impl} does not take {dtype}")
    if impl in ("loops", "dot") and shape == "130x257x129":
        pytest.skip("one kernel launch per element: too slow")
    assert check_impl(impl, Shape.parse(shape), dtype, seed=0, device="cuda").correct


def test_triton_large_and_odd_shapes():
    for shape in ["1000x1000x1000", "4096x512x2048"]:
        for dtype in ["bfloat16", "float16", "float32"]:
            assert check_impl("triton", Shape.parse(shape), dtype, seed=1, device="cuda").correct, (
                shape,
                dtype,
            )


def _cuda_event_seconds(fn, a, b, calls=50):
    for _ in range(5):
        fn(a, b)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        fn(a, b)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


@pytest.mark.parametrize("impl,dtype", [("torch", "bfloat16"), ("triton", "float16")])
def test_fnd_timing_agrees_with_cuda_events(fnd, tmp_path, impl, dtype):
    """Synchronised wall-clock timing in the pyperf workers within 5% of CUDA events at 8192^3."""
    result = fnd(
        "matmul-bench",
        "--device",
        "cuda",
        "--impl",
        impl,
        "--dtype",
        dtype,
        "--shape",
        "8192x8192x8192",
        "--quick",
        "--out",
        tmp_path,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path, "matmul-bench")
    a, b = make_inputs(Shape(8192, 8192, 8192), dtype, 0, "cuda")
    events = _cuda_event_seconds(IMPLS[impl].fn, a, b)
    assert abs(frame["median_s"].iloc[0] - events) / events < 0.05, (frame["median_s"].iloc[0], events)


def test_train_and_gradcheck_on_cuda(fnd, tmp_path):
    result = fnd("train", "--device", "cuda", "--epochs", "3", "--out", tmp_path / "t", "--quiet")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path / "t", "train")
    assert history["valid_loss"].iloc[-1] < history["valid_loss"].iloc[0] and meta["device"] == "cuda"
    for args in (
        [],
        ["--loss", "cross-entropy", "--n-out", "10", "--hidden", "64", "--hidden", "32"],
        ["--dtype", "float64", "--batch", "1"],
    ):
        result = fnd("gradcheck", "--device", "cuda", *args, "--out", tmp_path / "g", "--quiet")
        assert result.exit_code == 0, (args, result.output)


def test_gpu_overtakes_cpu_in_a_sweep(fnd, tmp_path):
    result = fnd(
        "matmul-bench",
        "--device",
        "cpu",
        "--device",
        "cuda",
        "--impl",
        "torch",
        "--sweep",
        "16:2048",
        "--quick",
        "--out",
        tmp_path,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    cross = pd.read_csv(next(tmp_path.glob("*-crossovers.csv")))
    assert ((cross["faster"] == "torch@cuda") & (cross["slower"] == "torch@cpu")).any()
