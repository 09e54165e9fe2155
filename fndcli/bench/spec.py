"""What one matmul benchmark is: shape, dtype, inputs, pyperf presets, the cost guard, its name in the
pyperf file, and the command line of the processes that check and time it (`WorkerArgs`).

Shared by the CLI (which checks options and memory before any work), the parent
(`fndcli.bench.run`) and the pyperf worker (`fndcli.bench.worker`), so both build bit-identical
inputs from the same seed. torch is imported only where tensors are made: the CLI's checks
and the worker's manager process never need it, and `import torch` costs about 1.5 s per
process on a 2-core machine.
"""

import argparse
import re
from dataclasses import dataclass, fields

from fndcli.names import IMPL_SPECS

# Largest relative error ||out - ref|| / ||ref|| that counts as correct, per dtype. A
# sum of k products drifts by about eps * sqrt(k) (float32: ~1e-6 at k = 784; bfloat16,
# eps 2^-8, summed in bfloat16 by the Python loops: ~1e-2); a wrong kernel (transposed,
# a dropped term) is off by order 1.
TOLERANCES = {"float32": 1e-4, "float64": 1e-10, "float16": 1e-2, "bfloat16": 5e-2}

# Below this many FLOPs at every shape of a run, matmul-bench times on one thread unless --threads says
# otherwise (torch.utils.benchmark times on one thread always). A parallel region costs ~10 us to wake the
# threads and meet at the barrier on a quiet host, and a whole scheduler slice when a neighbour holds a core
# (the book's 5x784x10 on 2 threads with one busy neighbour: torch 8 ms a call instead of 8 us). 4 MFLOP is
# ~100 us of one core's work: measured on the 2-core AMD EPYC VM (docs/measured.md), a second thread gained
# 0.5x at 32^3, 0.9x at 64^3, 1.4x at 96^3, 1.7x at 128^3 (4.2 MFLOP).
ONE_THREAD_FLOPS = 4e6


def auto_threads(shapes):
    """(threads, why) for a run that gave no --threads: 1 when every shape is under ONE_THREAD_FLOPS, else
    None (torch's own choice: every core)."""
    if max(shape.flops for shape in shapes) < ONE_THREAD_FLOPS:
        return 1, (
            f"timed on 1 thread: every shape is under {ONE_THREAD_FLOPS / 1e6:g} MFLOP, where a second "
            "thread cannot pay and stalls when another job holds a core (--threads N to choose)"
        )
    return None, (
        f"timed on torch's own threads (every core): a shape is {ONE_THREAD_FLOPS / 1e6:g} MFLOP or more "
        "(--threads N to choose)"
    )


_SHAPE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shape:
    """a is (m, k), b is (k, n), c is (m, n)."""

    m: int
    k: int
    n: int

    @classmethod
    def parse(cls, text):
        """'5x784x10' -> Shape(5, 784, 10); ValueError says what is accepted."""
        match = _SHAPE.match(text)
        if not match:
            raise ValueError(f"shape {text!r} is not MxKxN (three positive integers, e.g. 5x784x10)")
        m, k, n = (int(g) for g in match.groups())
        if min(m, k, n) <= 0:
            raise ValueError(f"shape {text!r} has a zero dimension; M, K and N must be at least 1")
        return cls(m, k, n)

    @property
    def flops(self):
        """Multiply-adds counted as two flops: 2*m*k*n."""
        return 2 * self.m * self.k * self.n

    def __str__(self):
        return f"{self.m}x{self.k}x{self.n}"


def benchmark_name(impl, shape, dtype, device):
    """A benchmark's name in the pyperf file, stable across runs for compare_to: 'torch 5x784x10 float32
    cpu'."""
    return f"{impl} {shape} {dtype} {device}"


def split_name(name):
    """(implementation, the rest) of a benchmark's name: 'torch 5x784x10 float32 cpu' -> ('torch',
    '5x784x10 float32 cpu'); the implementation may hold spaces of its own (a path), the rest never does."""
    impl, *rest = name.rsplit(" ", 3)
    return impl, " ".join(rest)


@dataclass(frozen=True)
class BenchSpec:
    """One benchmark: an implementation on a device at a shape, called `inner_loops` times per value when
    timed."""

    impl: str
    device: str
    shape: Shape
    inner_loops: int = 1  # a check (fndcli.bench.isolated) ignores it

    def encode(self):
        return f"{self.impl}:{self.device}:{self.shape}:{self.inner_loops}"

    @classmethod
    def decode(cls, text):
        impl, device, shape, inner = text.rsplit(":", 3)  # impl may be a reference, FILE.py:NAME
        return cls(impl, device, Shape.parse(shape), int(inner))

    def name(self, dtype):
        """The benchmark's name in the pyperf file (`benchmark_name`)."""
        return benchmark_name(self.impl, self.shape, dtype, self.device)

    @property
    def name_short(self):
        return f"{self.impl} {self.shape} {self.device}"


@dataclass(frozen=True)
class WorkerArgs:
    """What decides what a process fnd starts measures: the pyperf worker (`fndcli.bench.worker`) and the
    check of an isolated implementation (`fndcli.bench.isolated`) both take it, as this command line:

        --bench IMPL:DEVICE:MxKxN:INNER ... --dtype float32 --seed 0 [--threads N] [--pin REF=COMMIT ...]
    """

    benches: tuple = ()  # BenchSpec, in order: a pyperf worker's --worker-task is an index into it
    dtype: str = "float32"
    seed: int = 0
    threads: int | None = None  # None: torch's own choice
    # (FILE.py:NAME@REV, commit): the commit the parent resolved each REV to, which the process loads
    # (fndcli.userref.pin), so a moving REV (HEAD, a branch) cannot give it other code
    pins: tuple = ()

    def to_argv(self):
        argv = [arg for spec in self.benches for arg in ("--bench", spec.encode())]
        argv += ["--dtype", self.dtype, "--seed", str(self.seed)]
        argv += [arg for ref, commit in self.pins for arg in ("--pin", f"{ref}={commit}")]
        return argv + (["--threads", str(self.threads)] if self.threads else [])

    @classmethod
    def add_arguments(cls, parser):
        """Add the options to an argparse parser (pyperf's Runner.argparser, in the worker)."""
        parser.add_argument(
            "--bench",
            dest="benches",
            type=BenchSpec.decode,
            action="append",
            default=[],
            help="IMPL:DEVICE:MxKxN:INNER_LOOPS",
        )
        parser.add_argument("--dtype", default=cls.dtype)
        parser.add_argument("--seed", type=int, default=cls.seed)
        parser.add_argument("--threads", type=int, default=cls.threads)
        parser.add_argument(
            "--pin", dest="pins", type=lambda t: tuple(t.rsplit("=", 1)), action="append", default=[]
        )

    @classmethod
    def from_namespace(cls, namespace):
        """The options out of a namespace that add_arguments' parser made (pyperf's options in it are
        left)."""
        values = {f.name: getattr(namespace, f.name) for f in fields(cls)}
        return cls(**{**values, "benches": tuple(values["benches"]), "pins": tuple(values["pins"])})

    @classmethod
    def from_argv(cls, argv, prog=None):
        """Parse to_argv's command line; argparse's usage error for anything else."""
        parser = argparse.ArgumentParser(prog=prog)
        cls.add_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv))


@dataclass(frozen=True)
class Runs:
    """pyperf's arguments for a group of benchmarks, and the values they make."""

    pyperf_args: tuple
    processes: int
    warmups: int
    values: int

    @property
    def calls(self):
        """Values measured, warmups included: what the cost guard multiplies."""
        return self.processes * (self.warmups + self.values)

    def one_process(self, in_process=False):
        """The same values and warmups in one worker process: a step of the interleaved order. in_process:
        that process times every benchmark of its step in turn (pyperf's --in-process), one import of torch
        for all."""
        where = ("--in-process", "--processes", "1") if in_process else ("--processes", "1")
        return Runs(
            (*where, "--values", str(self.values), "--warmups", str(self.warmups)),
            1,
            self.warmups,
            self.values,
        )


@dataclass(frozen=True)
class Preset:
    """How much pyperf measures. `target_s` is the length of one value, which sets the calls per value.

    `slow` applies to benchmarks whose single call already outlasts a value (the Python
    loops): their values are long and steady, and each extra worker process would cost
    another `import torch` (about 2 s on 2 cores) for little information.

    `shared`: each worker process times every benchmark of the run in turn, in an order reversed from one
    process to the next (A B, B A, ...), so a process, its one `import torch` (2-2.5 s of the 2.5-3 s a
    process costs here) shared, gives one sample of each benchmark, and the samples of A and B from one
    process are neighbours in time: what `fnd compare RUN --pair A B` pairs."""

    runs: Runs
    target_s: float
    slow: Runs | None = None
    shared: bool = False

    def runs_for(self, call_s):
        return self.slow if self.slow and call_s >= self.target_s else self.runs


GATE_PROCESSES = 16

PRESETS = {
    # All five kernels at 5x784x10 in under 30 s on 2 cores, torch imports included:
    # 2 worker processes x (1 warmup + 3 values of >= 40 ms) each; the loops 1 x (1 + 4).
    "default": Preset(
        Runs(("--processes", "2", "--values", "3", "--warmups", "1"), 2, 1, 3),
        0.04,
        slow=Runs(("--processes", "1", "--values", "4", "--warmups", "1"), 1, 1, 4),
    ),
    # For fnd compare: GATE_PROCESSES worker processes, each timing every benchmark in turn (`shared`), 10
    # values of
    # 10 ms each (compare takes a process's fastest): sized by measurement (scripts/gate-calibration,
    # docs/measured.md). A
    # process costs 2.5-3 s here, nearly all `import torch`; its values ~0.1 s a benchmark. The slow loops: 5
    # processes of their own.
    "gate": Preset(
        Runs(("--processes", str(GATE_PROCESSES), "--values", "10", "--warmups", "1"), GATE_PROCESSES, 1, 10),
        0.01,
        slow=Runs(("--processes", "5", "--values", "2", "--warmups", "1"), 5, 1, 2),
        shared=True,
    ),
    "quick": Preset(
        Runs(("--in-process", "--processes", "1", "--values", "3", "--warmups", "1"), 1, 1, 3), 0.01
    ),
    "fast": Preset(Runs(("--fast",), 10, 1, 2), 0.1),  # pyperf's --fast: 10 processes x 2 values
    "rigorous": Preset(Runs(("--rigorous",), 40, 1, 3), 0.1),  # pyperf's --rigorous: 40 processes x 3 values
}


def estimate_run_seconds(impl, shape, preset, device="cpu", spec=None):
    """Seconds of compute the run of one benchmark would take (worker start-up not included).
    `spec`: the implementation's facts, for one not in the registry (the user's)."""
    call = (spec or IMPL_SPECS[impl]).estimate_seconds(shape.m, shape.k, shape.n, device)
    return call + preset.runs_for(call).calls * max(call, preset.target_s)


def make_inputs(shape, dtype, seed, device="cpu"):
    """Seeded standard-normal a (m, k) and b (k, n), as the chapter's torch.randn."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    draw = torch.float64 if dtype == "float64" else torch.float32  # half types: drawn in float32, rounded
    a = torch.randn(shape.m, shape.k, generator=gen, dtype=draw)  # (m, k)
    b = torch.randn(shape.k, shape.n, generator=gen, dtype=draw)  # (k, n)
    return a.to(device, getattr(torch, dtype)), b.to(device, getattr(torch, dtype))


def synchronize(device):
    """Wait for the GPU: without it a timer around CUDA calls measures only their launches."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def parse_sweep(text):
    """'16:2048' -> powers of two from 16 to 2048; '64,100,512' -> that list. ValueError says what is
    accepted."""
    text = text.strip()
    problem = "is not LO:HI (powers of two, e.g. 16:2048) or a list (e.g. 64,128,500) of positive integers"
    try:
        if ":" in text:
            lo, hi = (int(x) for x in text.split(":"))
            if 1 <= hi < lo:
                problem = f"runs backwards: LO:HI with LO <= HI, e.g. {hi}:{lo}"
            if lo < 1 or hi < lo:
                raise ValueError
            sizes, size = [], 1 << (lo - 1).bit_length()  # first power of two >= lo
            while size <= hi:
                sizes.append(size)
                size *= 2
        else:
            sizes = [int(x) for x in text.split(",")]
        if not sizes or min(sizes) < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"sweep {text!r} {problem}") from None
    return sorted(set(sizes))


def sweep_shapes(sizes, dim, base):
    """Square shapes s x s x s (dim 'all'), or base with one dimension set to each size."""
    if dim == "all":
        return [Shape(s, s, s) for s in sizes]
    return [Shape(**{**base.__dict__, dim: s}) for s in sizes]
