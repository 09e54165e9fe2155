"""`fnd peak --device cuda`'s kernels: the GPU's ceilings are measured with them by
`fndcli.bench.peak_worker`.

FMA: a Triton kernel in which every program keeps BLOCK values in registers and runs ITERS
steps of c = c * y + x on each (BLOCK / (32 x num_warps) independent chains per thread, enough to
hide the FMA latency), launched over many programs per SM: 2 x BLOCK x ITERS FLOPs a program.
Bandwidth: torch's own copy (a.copy_(b)) and a triad (torch.add(b, c, alpha=s, out=a)) over
arrays far beyond L2; bytes counted as STREAM counts them. Every call is bracketed by
torch.cuda.synchronize(). Triton's interpreter runs the FMA kernel on the CPU for the tests.
"""

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
