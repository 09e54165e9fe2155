"""The numba settings numba-tiled's kernel needs, for the processes that run it, and only those.

Three process-wide settings, read when numba is imported, make LLVM keep the micro-kernel's
256 scalar accumulators in 16 zmm registers (fndcli/kernels/gemm_source.py):

- NUMBA_SLP_VECTORIZE=1: numba's default (0) leaves the kernel scalar;
- NUMBA_LOOP_VECTORIZE=0: otherwise the k loop is vectorised instead, into heavy spills;
- NUMBA_CPU_FEATURES: the host's features plus -prefer-256-bit, or vectors stop at ymm.

Measured at 1024^3 float32, 2 threads, interleaved with torch in one process: none of them
0.06x torch, SLP alone 0.19x, all three 0.81x (docs/matmul-bench.md). They change every numba
kernel of a process, so fnd sets them only in the processes it starts for numba-tiled: its
correctness check (`fndcli.bench.isolated`) and its pyperf workers. fnd's own process never runs it.
"""
import functools

NAMES = ("NUMBA_SLP_VECTORIZE", "NUMBA_LOOP_VECTORIZE", "NUMBA_CPU_FEATURES")


@functools.cache
def settings():
    """{variable: value} for numba-tiled's processes (llvmlite reads the host's features; numba is not imported)."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    features = llvm.get_host_cpu_features().flatten()
    return {"NUMBA_SLP_VECTORIZE": "1", "NUMBA_LOOP_VECTORIZE": "0",
            "NUMBA_CPU_FEATURES": f"{features},-prefer-256-bit" if features else ""}
