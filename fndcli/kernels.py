"""The chapter's matmul ladder (fastbook ch. 17), one registry by name.

Each kernel takes a (m, k) and b (k, n) and returns c (m, n) in a's dtype, on a's device.
The chapter's versions build `torch.zeros(ar, bc)` in float32 whatever the inputs are;
these build the output in the inputs' dtype, so float64 inputs give float64 results.
"""
from dataclasses import dataclass
from typing import Callable

import torch


def _check(a, b):
    """The inner dimensions must agree; the error names both shapes."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}")


def _output(a, b):
    """Check the shapes and allocate c (m, n) in a's dtype, on a's device."""
    _check(a, b)
    return torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)


def three_loops(a, b, c):
    """c[i,j] += a[i,k] * b[k,j], in the chapter's i, j, k order; numba compiles this same function."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            for p in range(k):
                c[i, j] += a[i, p] * b[p, j]


def loops_matmul(a, b):
    """Three Python loops over torch tensors."""
    c = _output(a, b)
    three_loops(a, b, c)
    return c


def dot_matmul(a, b):
    """Row times column, elementwise, summed: c[i,j] = (a[i] * b[:,j]).sum()."""
    c = _output(a, b)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            c[i, j] = (a[i] * b[:, j]).sum()
    return c


def broadcast_matmul(a, b):
    """A row of a, as a column (k, 1), broadcast against b (k, n) and summed over k."""
    c = _output(a, b)
    for i in range(a.shape[0]):
        c[i] = (a[i].unsqueeze(-1) * b).sum(dim=0)  # (k, 1) * (k, n) -> (k, n) -> (n,)
    return c


def einsum_matmul(a, b):
    """Einstein summation: 'ik,kj->ij'."""
    _check(a, b)
    return torch.einsum("ik,kj->ij", a, b)


def torch_matmul(a, b):
    """torch's own `a @ b` (BLAS on the CPU, cuBLAS on the GPU)."""
    _check(a, b)
    return a @ b


def numba_loops_matmul(a, b):
    """The three loops compiled by numba (CPU; float32, float64)."""
    _check(a, b)
    from fndcli import jit  # numba loads only when a numba kernel runs

    return torch.from_numpy(jit.loops_matmul(a.numpy(), b.numpy()))


def numba_tiled_matmul(a, b):
    """A blocked, register-tiled, parallel kernel compiled by numba (see fndcli/jit.py)."""
    _check(a, b)
    from fndcli import jit

    return torch.from_numpy(jit.tiled_matmul(a.numpy(), b.numpy()))


def triton_matmul(a, b):
    """A tiled Triton kernel with grouped tile ordering (CUDA; see fndcli/triton_kernels.py)."""
    _check(a, b)
    from fndcli import triton_kernels  # needs triton and a GPU

    return triton_kernels.matmul(a, b)


ALL_DTYPES = ("float32", "float64", "bfloat16", "float16")


@dataclass(frozen=True)
class Impl:
    """A matmul implementation, where it runs, and a rough model of its cost per call.

    The cost model decides what to skip before anything runs: seconds per call is about
    `py_s` per Python-level iteration plus 2*m*k*n flops at `flops` per second. The
    constants are conservative figures for a 2-core x86 machine (../shared/REFERENCE.md);
    on a GPU each Python-level step is a kernel launch and the flops are far more.
    `compiled` implementations compile on their first call for a dtype and shape class;
    that time is measured apart and kept out of the timings.
    """

    name: str
    fn: Callable
    summary: str
    py_iters: Callable[[int, int, int], int]
    py_s: float
    flops: float
    devices: tuple = ("cpu", "cuda")
    dtypes: tuple = ALL_DTYPES
    compiled: bool = False

    def estimate_seconds(self, m, k, n, device="cpu"):
        """Rough seconds for one call at shape m x k x n."""
        py_s, flops = (self.py_s * 2, self.flops * 50) if device == "cuda" else (self.py_s, self.flops)
        return self.py_iters(m, k, n) * py_s + 2.0 * m * k * n / flops


def _one(m, k, n):
    return 1


IMPLS = {
    impl.name: impl
    for impl in [
        Impl("loops", loops_matmul, "three Python loops", lambda m, k, n: m * k * n, 15e-6, 1e9),
        Impl("dot", dot_matmul, "row x column, elementwise, summed", lambda m, k, n: m * n, 15e-6, 1e9),
        Impl("broadcast", broadcast_matmul, "row broadcast against b, summed over k",
             lambda m, k, n: m, 20e-6, 1e9),
        Impl("einsum", einsum_matmul, "torch.einsum('ik,kj->ij')", _one, 30e-6, 2e10),
        Impl("torch", torch_matmul, "a @ b", _one, 10e-6, 2e10),
        Impl("numba-loops", numba_loops_matmul, "the three loops compiled by numba", _one, 20e-6, 1e9,
             devices=("cpu",), dtypes=("float32", "float64"), compiled=True),
        Impl("numba-tiled", numba_tiled_matmul, "blocked, register-tiled, parallel numba kernel", _one, 30e-6, 2e10,
             devices=("cpu",), dtypes=("float32", "float64"), compiled=True),
        Impl("triton", triton_matmul, "tiled Triton kernel, grouped tile order", _one, 20e-6, 1e12,
             devices=("cuda",), dtypes=("float32", "float16", "bfloat16"), compiled=True),
    ]
}
CHAPTER = ("loops", "dot", "broadcast", "einsum", "torch")
