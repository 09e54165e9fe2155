"""fnd's Triton kernel compiled for a Hopper GPU (sm_90) on a machine without one.

Triton's interpreter (tests/test_triton_interp.py) runs the kernel as Python: it would pass code that
Triton's compiler rejects, and it multiplies float32 in numpy whatever `input_precision` says. Compiling
to PTX needs no GPU (the wheel brings ptxas), so this checks both: the kernel compiles, and float32 is
multiplied in IEEE fp32 (`fma.rn.f32`), not TF32 tensor-core instructions.
"""

import pytest

triton = pytest.importorskip(
    "triton", reason="triton is not installed (pip install -e '.[test]' installs it)"
)
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from fndcli.kernels import triton_kernel


def compile_for_hopper(dtype, config):
    """The kernel's PTX for sm_90 at `dtype` ('fp16', 'fp32') with one autotune config."""
    kernel = triton_kernel._matmul_kernel.fn  # the JIT function under the autotuner
    constants = {"IEEE": dtype == "fp32", **config.kwargs}
    signature = {
        name: "constexpr" if name in constants else f"*{dtype}" if name.endswith("_ptr") else "i32"
        for name in kernel.arg_names
    }
    source = ASTSource(
        fn=kernel,
        signature=signature,
        constexprs={(kernel.arg_names.index(name),): value for name, value in constants.items()},
    )
    return triton.compile(
        source,
        target=GPUTarget("cuda", 90, 32),
        options={"num_warps": config.num_warps, "num_stages": config.num_stages},
    ).asm["ptx"]


@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION is unset")  # 3.9's default, as on a GPU
@pytest.mark.parametrize("dtype,instruction", [("fp32", "fma.rn.f32"), ("fp16", "mma.sync.aligned")])
def test_the_kernel_compiles_for_hopper(monkeypatch, request, tmp_path, dtype, instruction):
    """float32 in IEEE fused multiply-adds and no TF32 anywhere; float16 on the tensor cores.

    Compiled into pytest's own cache (.pytest_cache/d/triton), not ~/.triton: Triton keys what it keeps by
    the kernel's source, its constants, the target and its own version, so a warm suite reads back the PTX
    of this very kernel and a change to any of them compiles afresh (4 s here)."""
    cache = request.config.cache.mkdir("triton") if request.config.cache else tmp_path
    monkeypatch.setenv("TRITON_CACHE_DIR", str(cache))
    smallest = min(triton_kernel._CONFIGS, key=lambda c: c.num_warps)
    ptx = compile_for_hopper(dtype, smallest)
    assert instruction in ptx and "tf32" not in ptx
