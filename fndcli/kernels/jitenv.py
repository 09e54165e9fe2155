"""The numba settings fnd's compiled kernels need, for the processes that run them, and only those.

Three process-wide settings, read when numba is imported, make LLVM keep a micro-kernel's
scalar accumulators in vector registers (fndcli/kernels/gemm_source.py):

- NUMBA_SLP_VECTORIZE=1: numba's default (0) leaves the kernel scalar;
- NUMBA_LOOP_VECTORIZE=0: otherwise the k loop is vectorised instead, into heavy spills;
- NUMBA_CPU_FEATURES: the host's features plus -prefer-256-bit, or vectors stop at ymm on AVX-512.

Measured at 1024^3 float32, 2 threads, interleaved with torch in one process: none of them
0.06x torch, SLP alone 0.19x, all three 0.81x (docs/matmul-bench.md). They change every numba
kernel of a process, so fnd sets them only in the processes it starts for numba-tiled and
`fnd peak`: their correctness check (`fndcli.bench.isolated`) and their workers. fnd's own
process never runs them.
"""

import functools

NAMES = ("NUMBA_SLP_VECTORIZE", "NUMBA_LOOP_VECTORIZE", "NUMBA_CPU_FEATURES")


@functools.cache
def host_features():
    """LLVM's feature string for this CPU ('+avx2,+fma,-avx512f,...'); numba is not imported."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    return llvm.get_host_cpu_features().flatten()


def settings():
    """{variable: value} for the processes that run fnd's numba kernels."""
    features = host_features()
    return {
        "NUMBA_SLP_VECTORIZE": "1",
        "NUMBA_LOOP_VECTORIZE": "0",
        "NUMBA_CPU_FEATURES": f"{features},-prefer-256-bit" if features else "",
    }


def isa():
    """(name, vector width in bytes) of the widest floating-point vector unit LLVM will target here."""
    have = set(host_features().split(","))
    if "+avx512f" in have:
        return "AVX-512", 64
    if "+avx2" in have and "+fma" in have:
        return "AVX2", 32
    return "SSE", 16
