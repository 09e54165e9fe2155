"""Memory a run needs, estimated from its settings before anything is allocated, against what is free.

A run that would not fit is refused before it starts (exit 2, one line naming the need, the
limit and the option to change), rather than ending in an allocator's traceback or, where
Linux overcommits, in the OOM killer's silent kill. The estimates count the tensors each
command holds at its largest step, with the temporaries it makes there; they are meant to
be generous, not exact. Torch-free: the CPU's figure comes from /proc/meminfo.
"""

import contextlib
import math
import os

from fndcli.names import IMPL_SPECS, ITEMSIZE
from fndcli.numerics import first_line

ROW_BYTES = 1500  # a result row held as a Python dict until the run's DataFrame is built


class NotEnoughMemory(Exception):
    """The estimate exceeds what the device has free."""


def available_bytes(device="cpu"):
    """Free memory now: MemAvailable on the CPU (Linux), torch.cuda.mem_get_info on CUDA."""
    if device == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def human_bytes(n):
    """1.5e9 -> '1.5 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def check(need, device, what, option):
    """Raise NotEnoughMemory if `need` bytes do not fit in what `device` has free; the message says
    what needs it, how much is free, and which option makes it smaller."""
    have = available_bytes(device)
    if need > have:
        raise NotEnoughMemory(
            f"{what} needs about {human_bytes(need)} of memory, and {human_bytes(have)} is "
            f"available on {device}; use a smaller {option}"
        )


def bench_bytes(shape, dtype, impls):
    """matmul-bench at one shape: the parent holds a, b, their float64 copies, the kernel's own copies of a
    and b, the reference, an output and the error's temporaries; the pyperf worker holds a, b and an output;
    either adds the kernel's scratch."""
    m, k, n = shape.m, shape.k, shape.n
    it = ITEMSIZE[dtype]
    scratch = max((IMPL_SPECS[i].scratch(m, k, n) for i in impls if i in IMPL_SPECS), default=0) * it
    parent = (m * k + k * n) * (2 * it + 8) + m * n * (8 + it + 3 * 8) + scratch
    worker = (m * k + k * n + m * n) * it + scratch
    return parent + worker


def sweep_bytes(cfg):
    """init-sweep, one stack: the weights, every layer's output and pre-activation, the stacked copy,
    its float64 statistics and their temporaries (and the gradients with --backward), plus the rows."""
    it = ITEMSIZE[cfg.dtype]
    layers = (cfg.depth + 1) * cfg.batch * cfg.width
    need = cfg.depth * cfg.width**2 * it + layers * (3 * it + 3 * 8 + 3)
    if cfg.backward:
        need += layers * 2 * it
    rows = len(cfg.schemes) * len(cfg.acts) * cfg.seeds * (cfg.depth + 1) * (2 if cfg.backward else 1)
    return need + rows * ROW_BYTES


def probe_bytes(cfg, plan, hist_bins=120):
    """init-sweep --model: the model (and a scheme's float64 draw), the input, the largest leaf output with
    the float64 temporaries of its statistics, with --backward every output autograd keeps and its gradient,
    the histograms and the rows. `plan`: fndcli.init.probe.Plan, the sizes per input row."""
    batch, it = cfg.input_shape[0], plan.itemsize
    inputs = math.prod(cfg.input_shape)
    need = plan.param_bytes * (4 if cfg.backward else 3) + inputs * (2 * it + 8)
    need += plan.largest_per_row * batch * (it + 6 * 8)
    if cfg.backward:
        need += plan.total_per_row * batch * it * 3
    calls = len(plan.calls) + 1
    return int(need + calls * hist_bins * 8 * (2 if cfg.histograms else 0) + cfg.seeds * calls * ROW_BYTES)


def _params(sizes):
    return sum(fi * fo + fo for fi, fo in zip(sizes, sizes[1:]))


def train_bytes(cfg):
    """train: the data (and the teacher's pass over it), the model with its gradients, the twin with its
    gradients and momentum, the evaluation pass over the whole training set (every layer's output kept)."""
    it = ITEMSIZE[cfg.dtype]
    hidden = sum(cfg.hidden)
    data = cfg.samples * (cfg.n_in + 2 * (32 + cfg.outputs)) * it * 2
    params = 6 * _params(cfg.sizes) * it
    evaluation = cfg.n_train * ((2 * hidden + cfg.outputs) * it * 3 + hidden)
    return data + params + evaluation


def gradcheck_bytes(cfg):
    """gradcheck: the batch, the model and autograd's copy with their gradients, every activation and its
    gradient on both sides."""
    it = ITEMSIZE[cfg.dtype]
    acts = cfg.batch * (2 * sum(cfg.hidden) + cfg.n_out) * it
    return 3 * cfg.batch * cfg.n_in * it + 4 * _params(cfg.sizes) * it + 4 * acts


def is_out_of_memory(error):
    """An allocation failure from Python or torch (CPU: RuntimeError 'can't allocate memory'; CUDA:
    OutOfMemoryError)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


class Stopped:
    """What ended a core's loop early, the rows before it kept: Ctrl-C, or memory running out."""

    interrupted = False
    error = None  # "out of memory <where>: <the allocator's message>"


@contextlib.contextmanager
def stops(where):
    """Run a core's loop so that Ctrl-C and an out-of-memory error end it with what finished kept, not a
    traceback: the one place fnd handles both. `where()` says, in a few words, where memory ran out
    (it is called then, so it sees the loop's variables). Any other error propagates."""
    stopped = Stopped()
    try:
        yield stopped
    except KeyboardInterrupt:
        stopped.interrupted = True
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        stopped.error = f"out of memory {where()}: {first_line(e)}"
