"""`fnd peak --device cuda`: the GPU's ceilings, measured as on the CPU (`fndcli.bench.peak`).

FMA: a Triton kernel in which every program keeps BLOCK values in registers and runs ITERS
steps of c = c * y + x on each (BLOCK / (32 x num_warps) independent chains per thread, enough to
hide the FMA latency), launched over many programs per SM: 2 x BLOCK x ITERS FLOPs a program.
Bandwidth: torch's own copy (a.copy_(b)) and a triad (torch.add(b, c, alpha=s, out=a)) over
arrays far beyond L2; bytes counted as STREAM counts them. Every call is bracketed by
torch.cuda.synchronize(). Triton's interpreter runs the FMA kernel on the CPU for the tests.
"""
import datetime as dt

import torch
import triton
import triton.language as tl

STREAM_BYTES = 256 << 20  # each array; L2 is 50-60 MB on current data-centre GPUs
BLOCK = 1024


@triton.jit
def _fma_kernel(acc_ptr, y, x, ITERS: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(axis=0) * BLOCK + tl.arange(0, BLOCK)
    c = tl.load(acc_ptr + offsets)
    for _ in range(ITERS):
        c = c * y + x
    tl.store(acc_ptr + offsets, c)


def fma(acc, y, x, iters):
    """Run the chains of acc (programs x BLOCK values) `iters` steps; 2 * acc.numel() * iters FLOPs."""
    _fma_kernel[(acc.numel() // BLOCK,)](acc, y, x, ITERS=iters, BLOCK=BLOCK)


def cuda_rows(fma_wanted, bandwidth, repeats):
    """The GPU's rows for fndcli.bench.peak: float32/float16 FMA (threads: always 1, the whole device)."""
    from fndcli.bench.peak import _time

    def synced(fn):
        def call(n):
            for _ in range(n):
                fn()
            torch.cuda.synchronize()
        return call

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    name = torch.cuda.get_device_name()
    programs = torch.cuda.get_device_properties(0).multi_processor_count * 16
    iters = 4096
    for dtype, threads in fma_wanted:
        acc = torch.zeros(programs * BLOCK, device="cuda", dtype=getattr(torch, dtype))
        seconds, calls = _time(synced(lambda: fma(acc, 0.9990234375, 0.0009765625, iters)), repeats)
        work = 2.0 * acc.numel() * iters * calls
        yield {"what": "fma", "kernel": "triton fma", "dtype": dtype, "threads": threads, "device": "cuda",
               "isa": name, "gflops": work / seconds / 1e9, "gb_s": None, "best_s": seconds, "calls": calls * iters,
               "work": work, "repeats": repeats, "measured_utc": now}
    if bandwidth:
        n = STREAM_BYTES // 4
        a, b, c = (torch.full((n,), v, device="cuda") for v in (0.0, 1.0, 2.0))
        for kernel, arrays, fn in (("copy", 2, lambda: a.copy_(b)), ("triad", 3, lambda: torch.add(b, c, alpha=3.0, out=a))):
            seconds, calls = _time(synced(fn), repeats)
            work = 4.0 * arrays * n * calls
            yield {"what": "bandwidth", "kernel": kernel, "dtype": "float32", "threads": 1, "device": "cuda",
                   "isa": name, "gflops": None, "gb_s": work / seconds / 1e9, "best_s": seconds,
                   "calls": calls, "work": work, "repeats": repeats, "measured_utc": now}
