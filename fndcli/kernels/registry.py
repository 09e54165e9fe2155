"""The chapter's matmul ladder (fastbook ch. 17), one registry by name.

Each kernel takes a (m, k) and b (k, n) and returns c (m, n) in a's dtype, on a's device.
The chapter's versions build `torch.zeros(ar, bc)` in float32 whatever the inputs are;
these build the output in the inputs' dtype, so float64 inputs give float64 results.
"""

from dataclasses import dataclass, fields
from typing import Callable

import torch

from fndcli.kernels.loops import three_loops
from fndcli.names import IMPL_SPECS, ImplSpec


def _check(a, b):
    """The inner dimensions must agree; the error names both shapes."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply {tuple(a.shape)} by {tuple(b.shape)}")


def _output(a, b):
    """Check the shapes and allocate c (m, n) in a's dtype, on a's device."""
    _check(a, b)
    return torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)


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


def numpy_matmul(a, b):
    """numpy's own `a @ b`, on the BLAS numpy loaded (OpenBLAS in numpy's wheels; CPU; float32, float64).

    `.numpy()` and `torch.from_numpy` share the tensors' memory and copy nothing, so a call times numpy's
    matmul and the allocation of its output, as torch's `a @ b` allocates its own, plus the three
    conversions: ~6 us a call whatever the shape (4x4x4 here: 9.8 us against numpy's own 2.2 us)."""
    _check(a, b)
    return torch.from_numpy(a.numpy() @ b.numpy())


def numba_loops_matmul(a, b):
    """The three loops compiled by numba (CPU; float32, float64)."""
    _check(a, b)
    from fndcli.kernels import numba_loops  # numba loads only when a numba kernel runs

    return torch.from_numpy(numba_loops.loops_matmul(a.numpy(), b.numpy()))


def numba_tiled_matmul(a, b):
    """Packed panels and an outer-product micro-kernel in registers, sized for the host, parallel
    (fndcli/kernels/tiled.py). Fast only in a process started with fndcli.kernels.jitenv's numba settings."""
    _check(a, b)
    from fndcli.kernels import tiled

    return torch.from_numpy(tiled.matmul(a.numpy(), b.numpy()))


def triton_matmul(a, b):
    """A tiled Triton kernel with grouped tile ordering (CUDA; see fndcli/kernels/triton_kernel.py)."""
    _check(a, b)
    from fndcli.kernels import triton_kernel  # needs triton and a GPU

    return triton_kernel.matmul(a, b)


@dataclass(frozen=True)
class Impl(ImplSpec):
    """A registered implementation: its facts (`fndcli.names.ImplSpec`) and the function, a (m, k), b (k, n)
    -> c."""

    fn: Callable = None


FUNCTIONS = {
    "loops": loops_matmul,
    "dot": dot_matmul,
    "broadcast": broadcast_matmul,
    "einsum": einsum_matmul,
    "torch": torch_matmul,
    "numpy": numpy_matmul,
    "numba-loops": numba_loops_matmul,
    "numba-tiled": numba_tiled_matmul,
    "triton": triton_matmul,
}
IMPLS = {
    name: Impl(**{f.name: getattr(spec, f.name) for f in fields(spec)}, fn=FUNCTIONS[name])
    for name, spec in IMPL_SPECS.items()
}


def user_impl(name, fn, spec=None):
    """An implementation from the user's code: `name` is the reference as given (the row's name).
    Its facts are unknown, so it may run anywhere and may call numpy's BLAS; its cost comes from a probe
    (`bench.probe_spec`)."""
    spec = spec or ImplSpec(name, "your code", lambda m, k, n: m * k * n, 15e-6, 1e9, blas=True)
    return Impl(**{f.name: getattr(spec, f.name) for f in fields(spec)}, fn=fn)


def resolve(name):
    """The implementation called `name`: a registry name, a plugin (`fnd.matmul` entry point), or
    FILE.py:NAME / package.module:NAME. userref.RefError if a reference cannot be loaded."""
    if name in IMPLS:
        return IMPLS[name]
    from fndcli import userref

    plugin = userref.plugins().get(name)
    return user_impl(name, userref.load(plugin or name))
