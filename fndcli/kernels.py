"""The chapter's matmul ladder (fastbook ch. 17), one registry by name.

Each kernel takes a (m, k) and b (k, n) and returns c (m, n) in a's dtype, on a's device.
The chapter's versions build `torch.zeros(ar, bc)` in float32 whatever the inputs are;
these build the output in the inputs' dtype, so float64 inputs give float64 results.
"""
from dataclasses import dataclass
from typing import Callable

import torch


def _output(a, b):
    """Check the inner dimensions and allocate c; the error names both shapes."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}")
    return torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)


def loops_matmul(a, b):
    """Three Python loops: c[i,j] += a[i,k] * b[k,j]."""
    c = _output(a, b)
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            for p in range(k):
                c[i, j] += a[i, p] * b[p, j]
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
    _output(a, b)
    return torch.einsum("ik,kj->ij", a, b)


def torch_matmul(a, b):
    """torch's own `a @ b` (BLAS on the CPU)."""
    _output(a, b)
    return a @ b


@dataclass(frozen=True)
class Impl:
    """A matmul implementation and a rough model of its cost per call.

    The cost model decides what to skip before anything runs: seconds per call is about
    `py_s` per Python-level iteration plus 2*m*k*n flops at `flops` per second. The
    constants are conservative figures for a 2-core x86 machine (../shared/REFERENCE.md).
    """

    name: str
    fn: Callable
    summary: str
    py_iters: Callable[[int, int, int], int]
    py_s: float
    flops: float

    def estimate_seconds(self, m, k, n):
        """Rough seconds for one call at shape m x k x n."""
        return self.py_iters(m, k, n) * self.py_s + 2.0 * m * k * n / self.flops


IMPLS = {
    impl.name: impl
    for impl in [
        Impl("loops", loops_matmul, "three Python loops", lambda m, k, n: m * k * n, 15e-6, 1e9),
        Impl("dot", dot_matmul, "row x column, elementwise, summed", lambda m, k, n: m * n, 15e-6, 1e9),
        Impl("broadcast", broadcast_matmul, "row broadcast against b, summed over k",
             lambda m, k, n: m, 20e-6, 1e9),
        Impl("einsum", einsum_matmul, "torch.einsum('ik,kj->ij')", lambda m, k, n: 1, 30e-6, 2e10),
        Impl("torch", torch_matmul, "a @ b", lambda m, k, n: 1, 10e-6, 2e10),
    ]
}
