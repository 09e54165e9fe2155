"""The chapter's three loops compiled by numba (imported only when used): numba-loops.

`loops` is the very function the `loops` kernel runs in Python (`fndcli.kernels.loops.three_loops`),
cached on disk (cache=True), so pyperf's worker processes load it instead of compiling again.
numba-tiled's kernel is `fndcli.kernels.gemm`.
"""

import numpy as np
from numba import njit

from fndcli.kernels.loops import three_loops

loops = njit(cache=True)(three_loops)


def loops_matmul(a, b):
    c = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    loops(np.ascontiguousarray(a), np.ascontiguousarray(b), c)
    return c
