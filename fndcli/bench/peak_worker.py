"""The process `fnd peak` measures in (`python -m fndcli.bench.peak_worker SPEC`), as `bench/worker.py` is
matmul-bench's: FMA chains and STREAM on the CPU (numba, `fndcli.kernels.peak`), or on a GPU
(Triton and torch, `fndcli.kernels.cuda_peak`); one JSON row a line on stdout.

The parent (`fndcli.bench.peak`) starts it with jitenv's numba settings and reads the rows back;
a process of its own keeps numba's thread pool, and the GPU's context, out of fnd's.
"""

import datetime as dt
import json
import math
import sys
import time

from fndcli.bench.peak import CALL_S, REPEATS, stream_elements
from fndcli.kernels import jitenv


def time_best(call, repeats):
    """(best seconds, n): `call(n)` timed `repeats` times, n doubled until a call lasts CALL_S and twice the
    work takes clearly longer, so the work, not a fixed cost (a stalled thread on a busy host), fills the
    call."""

    def timed(n):
        start = time.perf_counter()
        call(n)
        return time.perf_counter() - start

    call(1)  # compiles, or loads from numba's cache; first touch
    n, took, before = 1, timed(1), math.inf
    while (took < CALL_S or took < 1.6 * before) and took < 25 * CALL_S:
        n, before = 2 * n, took
        took = timed(n)
    return min(timed(n) for _ in range(repeats)), n


def _now():
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def cpu_rows(fma, bandwidth, repeats=REPEATS):
    """The CPU's rows: each (dtype, threads) of `fma` at every chain count, then copy and triad at each thread
    count of `bandwidth`."""
    import numba
    import numpy as np

    from fndcli.kernels import peak

    isa, now = jitenv.isa()[0], _now()

    def row(what, kernel, dtype, threads, seconds, work, per):
        return {
            "what": what,
            "kernel": kernel,
            "dtype": dtype,
            "threads": threads,
            "device": "cpu",
            "isa": isa,
            "gflops": work / seconds / 1e9 if what == "fma" else None,
            "gb_s": work / seconds / 1e9 if what == "bandwidth" else None,
            "best_s": seconds,
            "work": work,
            "repeats": repeats,
            "measured_utc": now,
            "calls": per,
        }

    for dtype, threads in fma:
        numba.set_num_threads(threads)
        for n in peak.CHAINS:
            kernel = getattr(peak, f"fma_{n}")
            acc = np.zeros((threads, n), dtype=dtype)  # (threads, chains): one row of chains per thread
            y = np.dtype(dtype).type(0.9990234375)  # exact in float16 and up: 1 - 2^-10
            x = np.dtype(dtype).type(1) - y
            seconds, iters = time_best(lambda i: kernel(acc, y, x, i), repeats)
            if not np.all((acc >= x) & (acc <= 1)):  # c rises from 0 towards x / (1 - y) = 1: every chain ran
                raise RuntimeError(
                    f"fma x{n} {dtype}: the chains ended at {acc.min()}..{acc.max()}, not in [x, 1]"
                )
            yield row("fma", f"fma x{n}", dtype, threads, seconds, 2.0 * n * iters * threads, iters)
    if bandwidth:
        size = stream_elements()
        a, b, c = np.zeros(size), np.ones(size), np.full(size, 2.0)
        for threads in bandwidth:
            numba.set_num_threads(threads)
            for kernel, arrays, call in (
                ("copy", 2, lambda k: [peak.copy(a, b) for _ in range(k)]),
                ("triad", 3, lambda k: [peak.triad(a, b, c, 3.0) for _ in range(k)]),
            ):
                seconds, calls = time_best(call, repeats)
                yield row(
                    "bandwidth", kernel, "float64", threads, seconds, 8.0 * arrays * size * calls, calls
                )
        if not (np.all(a == 7.0)):
            raise RuntimeError("triad: a != b + 3 c")


def cuda_rows(fma_wanted, bandwidth, repeats=REPEATS):
    """The GPU's rows: float32/float16 FMA chains (threads: always 1, the whole device), copy and triad."""
    import torch

    from fndcli.kernels.cuda_peak import BLOCK, STREAM_BYTES, fma

    def synced(fn):
        def call(n):
            for _ in range(n):
                fn()
            torch.cuda.synchronize()

        return call

    now, name = _now(), torch.cuda.get_device_name()
    programs = torch.cuda.get_device_properties(0).multi_processor_count * 16
    iters = 4096
    for dtype, threads in fma_wanted:
        acc = torch.zeros(programs * BLOCK, device="cuda", dtype=getattr(torch, dtype))
        seconds, calls = time_best(synced(lambda: fma(acc, 0.9990234375, 0.0009765625, iters)), repeats)
        work = 2.0 * acc.numel() * iters * calls
        yield {
            "what": "fma",
            "kernel": "triton fma",
            "dtype": dtype,
            "threads": threads,
            "device": "cuda",
            "isa": name,
            "gflops": work / seconds / 1e9,
            "gb_s": None,
            "best_s": seconds,
            "calls": calls * iters,
            "work": work,
            "repeats": repeats,
            "measured_utc": now,
        }
    if bandwidth:
        n = STREAM_BYTES // 4
        a, b, c = (torch.full((n,), v, device="cuda") for v in (0.0, 1.0, 2.0))
        for kernel, arrays, fn in (
            ("copy", 2, lambda: a.copy_(b)),
            ("triad", 3, lambda: torch.add(b, c, alpha=3.0, out=a)),
        ):
            seconds, calls = time_best(synced(fn), repeats)
            work = 4.0 * arrays * n * calls
            yield {
                "what": "bandwidth",
                "kernel": kernel,
                "dtype": "float32",
                "threads": 1,
                "device": "cuda",
                "isa": name,
                "gflops": None,
                "gb_s": work / seconds / 1e9,
                "best_s": seconds,
                "calls": calls,
                "work": work,
                "repeats": repeats,
                "measured_utc": now,
            }


def main(argv=None):
    spec = json.loads((argv or sys.argv[1:])[0])
    if spec["device"] != "cpu":
        rows = cuda_rows(spec["fma"], bool(spec["bandwidth"]))
    else:
        rows = cpu_rows([tuple(x) for x in spec["fma"]], spec["bandwidth"])
    for r in rows:
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
