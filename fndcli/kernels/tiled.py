"""numba-tiled at run time: the micro-tile for the host's vector width, KC and MC for its caches and threads.

The kernels are generated (`fndcli.kernels.gemm_source` -> `gemm`); what suits a machine is
chosen here, per call, from what the machine says about itself, not tuned to one part:

- the tile (MR x NR) for the widest vector unit (`jitenv.isa`) and the dtype (gemm_source.TILES);
- KC so that one packed KC x NR panel of B fills at most L1 (it is reused across every MR-row
  panel of A while those stream from L2), between 64 and 1024: the longer the k loop, the fewer
  the passes over C and the calls of the micro-kernel (half of L1 measured 6-9 % slower on the
  AMD EPYC Zen 3 at 1024^3: 75 against 81-83 GFLOP/s on 1 thread);
- the rows split over the threads in whole MR-row panels, as evenly as panels allow (1024 rows
  on 2 threads: 103 and 102 panels of 5), and each thread's rows in blocks of MC: one packed
  MC x KC block of A in at most half of L2, a multiple of MR (blocks must not share rows), the
  blocks of a thread as even as that allows.
"""

import functools
from pathlib import Path

import numpy as np

from fndcli.kernels import gemm_source, jitenv

FALLBACK_CACHES = {1: 32 << 10, 2: 512 << 10, 3: 8 << 20}  # bytes, where the OS does not say


@functools.cache
def cache_sizes():
    """{level: bytes} of this CPU's data caches (cpu0's, from sysfs); FALLBACK_CACHES for what it lacks."""
    sizes = dict(FALLBACK_CACHES)
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            size = (index / "size").read_text().strip()
            unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
            sizes[int((index / "level").read_text())] = int(size.rstrip("KMG")) * unit
        except (OSError, ValueError):
            continue
    return sizes


def blocking(dtype, m, threads, vector_bytes=None, caches=None):
    """(MR, NR, KC, MC) for a product with m rows of `dtype` ('float32', 'float64') on `threads` threads."""
    vector_bytes = vector_bytes or jitenv.isa()[1]
    caches = caches or cache_sizes()
    item = np.dtype(dtype).itemsize
    mr, nr = gemm_source.TILES[vector_bytes][dtype]
    kc = int(min(1024, max(64, caches[1] // (nr * item))))
    mc = max(mr, caches[2] // 2 // (kc * item) // mr * mr)
    per_thread = -(-m // (mc * threads))  # blocks each thread gets, at most
    rows = -(-m // (per_thread * threads))  # rows per block once the blocks are spread evenly
    return mr, nr, kc, min(mc, -(-rows // mr) * mr)


def matmul(a, b):
    """a (m, k) @ b (k, n) as a new array in a's dtype (float32 or float64), on numba's threads."""
    import numba

    from fndcli.kernels import gemm

    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    c = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    if a.shape[1] == 0:
        c[:] = 0
        return c
    threads = numba.get_num_threads()
    mr, nr, kc, mc = blocking(a.dtype.name, a.shape[0], threads)
    getattr(gemm, f"gemm_{mr}x{nr}")(a, b, c, kc, mc, min(threads, -(-a.shape[0] // mr)))
    return c
