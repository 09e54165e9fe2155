"""Compiled CPU matmul kernels written from scratch with numba (imported only when used).

`loops` is the chapter's three loops, compiled: the very function the `loops` kernel runs
in Python (`fndcli.loops.three_loops`). `tiled` is a blocked, register-tiled,
parallel kernel: C = A @ B computed as C[i, j] = sum_k A[i, k] * Bt[j, k] with B
transposed once, so both operands stream along k contiguously. Each 4x4 block of C is
held in 16 scalar accumulators; with fastmath LLVM vectorises the k loop into 16 SIMD
reductions, 8 vector loads feeding 16 FMAs. Columns of C are walked in panels of
PANEL rows of Bt (256 x K floats: 1 MB at K = 1024) that stay in L2 while every row
block of A passes over them; row blocks are split across threads with prange.
Kernels are cached on disk (cache=True), so pyperf's worker processes load them
instead of compiling again.
"""
import numpy as np
from numba import njit, prange

from fndcli.loops import three_loops

PANEL = 256
loops = njit(cache=True)(three_loops)


@njit(parallel=True, fastmath=True, cache=True)
def tiled(a, bt, c):
    """c = a @ bt.T for m and n multiples of 4 (the caller pads); a (m, k), bt (n, k), c (m, n)."""
    m, k = a.shape
    n = bt.shape[0]
    zero = np.float32(0)  # numba unifies the accumulators with the inputs: float64 in, float64 sums
    for jj in range(0, n, PANEL):
        j_end = min(jj + PANEL, n)
        for block in prange(m // 4):
            i = block * 4
            for j in range(jj, j_end, 4):
                c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = zero
                c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = zero
                for p in range(k):
                    a0, a1, a2, a3 = a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p]
                    b0, b1, b2, b3 = bt[j, p], bt[j + 1, p], bt[j + 2, p], bt[j + 3, p]
                    c00 += a0 * b0
                    c01 += a0 * b1
                    c02 += a0 * b2
                    c03 += a0 * b3
                    c10 += a1 * b0
                    c11 += a1 * b1
                    c12 += a1 * b2
                    c13 += a1 * b3
                    c20 += a2 * b0
                    c21 += a2 * b1
                    c22 += a2 * b2
                    c23 += a2 * b3
                    c30 += a3 * b0
                    c31 += a3 * b1
                    c32 += a3 * b2
                    c33 += a3 * b3
                c[i, j], c[i, j + 1], c[i, j + 2], c[i, j + 3] = c00, c01, c02, c03
                c[i + 1, j], c[i + 1, j + 1], c[i + 1, j + 2], c[i + 1, j + 3] = c10, c11, c12, c13
                c[i + 2, j], c[i + 2, j + 1], c[i + 2, j + 2], c[i + 2, j + 3] = c20, c21, c22, c23
                c[i + 3, j], c[i + 3, j + 1], c[i + 3, j + 2], c[i + 3, j + 3] = c30, c31, c32, c33


@njit(parallel=True, cache=True)
def transpose_into(b, bt):
    """bt[j, p] = b[p, j] in 32 x 32 blocks, in parallel (numpy's b.T copy walks memory badly)."""
    k, n = b.shape
    for jb in prange((n + 31) // 32):
        for pb in range(0, k, 32):
            for j in range(jb * 32, min(jb * 32 + 32, n)):
                for p in range(pb, min(pb + 32, k)):
                    bt[j, p] = b[p, j]


def _padded(x, rows):
    """x with zero rows appended up to `rows`, C-contiguous."""
    if x.shape[0] == rows and x.flags.c_contiguous:
        return x
    out = np.zeros((rows, x.shape[1]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return out


def tiled_matmul(a, b):
    """a (m, k) @ b (k, n) with `tiled`: pads m and n up to multiples of 4, transposes b once."""
    m, n = a.shape[0], b.shape[1]
    m4, n4 = -(-m // 4) * 4, -(-n // 4) * 4
    b = np.ascontiguousarray(b)  # one compiled signature (C layout) for every input layout
    bt = np.zeros((n4, b.shape[0]), dtype=b.dtype) if n4 != n else np.empty((n, b.shape[0]), dtype=b.dtype)
    transpose_into(b, bt)
    c = np.empty((m4, n4), dtype=a.dtype)
    tiled(_padded(a, m4), bt, c)
    return c[:m, :n]


def loops_matmul(a, b):
    c = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    loops(np.ascontiguousarray(a), np.ascontiguousarray(b), c)
    return c
