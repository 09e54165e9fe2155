"""numba-tiled at run time: the micro-tile for the host's vector width, KC and MC for its L2 and threads.

The kernels are generated (`fndcli.kernels.gemm_source` -> `gemm`); what suits a machine is
chosen here, per call, from what the machine says about itself, not tuned to one part:

- the tile (MR x NR) for the widest vector unit (`jitenv.isa`) and the dtype (gemm_source.TILES);
- MC x KC, the packed block of A a thread keeps in L2 while every panel of B streams past it,
  in a quarter of L2. KC is as long as that allows with at least MIN_PANELS MR-row panels in
  the block (each KC x NR panel of B, fetched from L3 once, is used by every one of them), and
  k is cut into blocks of equal length: the fewer the blocks, the fewer the passes over C
  (2048^3 on AVX-512: one block of 2048, where KC from L1 made six passes). B's panel no longer
  has to fit L1: the micro-kernel runs at the FMA ceiling with its panels in L2 and prefetches
  the next panel there (`fndcli.kernels.prefetch`). Measured on the Intel Xeon (AVX-512, 2 MiB
  L2), 1 thread, interleaved: a quarter of L2 3-4 % faster than half, and 4 panels rather than
  16 (so fewer K blocks) 4-10 % faster in float64, the same in float32 (docs/matmul-bench.md);
- the rows split over the threads in whole MR-row panels, as evenly as panels allow (1024 rows
  on 2 threads: 103 and 102 panels of 5), and each thread's rows in blocks of at most MC, a
  multiple of MR (blocks must not share rows), the blocks of a thread as even as that allows.

The packing buffers (all of B, packed, and a block of A per thread) are kept between calls for
the last shape, as BLAS libraries keep theirs: allocating them afresh cost a page fault per 4 KiB.
"""

import functools
import threading
from pathlib import Path

import numpy as np

from fndcli.kernels import gemm_source, jitenv

FALLBACK_CACHES = {1: 32 << 10, 2: 512 << 10, 3: 8 << 20}  # bytes, where the OS does not say
L2_SHARE = 4  # A's packed block takes 1 / L2_SHARE of L2; B's current and next panels and C's lines the rest
MIN_PANELS = 4  # MR-row panels of A that use each panel of B, at least, before KC is cut


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


def blocking(dtype, m, k, threads, vector_bytes=None, caches=None):
    """(MR, NR, KC, MC) for a product of m rows and depth k of `dtype` ('float32', 'float64') on `threads`
    threads."""
    vector_bytes = vector_bytes or jitenv.isa()[1]
    caches = caches or cache_sizes()
    item = np.dtype(dtype).itemsize
    mr, nr = gemm_source.TILES[vector_bytes][dtype]
    block = caches[2] // L2_SHARE  # bytes of A's packed block
    longest = max(1, block // (MIN_PANELS * mr * item))
    kc = -(-k // -(-k // longest))  # k in equal blocks of at most `longest`
    mc = max(mr, block // (kc * item) // mr * mr)
    per_thread = -(-m // (mc * threads))  # blocks each thread gets, at most
    rows = -(-m // (per_thread * threads))  # rows per block once the blocks are spread evenly
    return mr, nr, kc, min(mc, -(-rows // mr) * mr)


_buffers = threading.local()  # the last call's packing buffers, per thread: (key, bp, ap)


def buffers(dtype, shape_b, shape_a):
    """64-byte aligned buffers of those shapes (4-d), kept for the next call of the same shapes."""
    from fndcli.kernels import gemm

    key = (dtype, shape_b, shape_a)
    if getattr(_buffers, "key", None) != key:
        _buffers.key = _buffers.bp = _buffers.ap = None  # the old pair freed before the new is made
        like = np.empty(0, dtype)
        bp = gemm.aligned(int(np.prod(shape_b[:2])), shape_b[2], shape_b[3], like).reshape(shape_b)
        ap = gemm.aligned(int(np.prod(shape_a[:2])), shape_a[2], shape_a[3], like).reshape(shape_a)
        _buffers.key, _buffers.bp, _buffers.ap = key, bp, ap
    return _buffers.bp, _buffers.ap


def matmul(a, b):
    """a (m, k) @ b (k, n) as a new array in a's dtype (float32 or float64), on numba's threads."""
    import numba

    from fndcli.kernels import gemm

    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    (m, k), n = a.shape, b.shape[1]
    c = np.empty((m, n), dtype=a.dtype)
    if k == 0:
        c[:] = 0
        return c
    threads = numba.get_num_threads()
    mr, nr, kc, mc = blocking(a.dtype.name, m, k, threads)
    parts = min(threads, -(-m // mr))
    bp, ap = buffers(a.dtype.name, (-(-k // kc), -(-n // nr), kc, nr), (parts, -(-mc // mr), kc, mr))
    getattr(gemm, f"gemm_{mr}x{nr}")(a, b, c, kc, mc, parts, bp, ap)
    return c
