"""What one matmul benchmark is: shape, dtype, inputs, and its encoding on a worker's command line.

Shared by the parent (`fndcli.bench`) and the pyperf worker (`fndcli.bench_worker`), so both
build bit-identical inputs from the same seed. torch is imported only where tensors are
made: the worker's manager process only registers benchmarks, and `import torch` costs
about 2 s per process on a 2-core machine.
"""
import re
from dataclasses import dataclass

DTYPES = ("float32", "float64")

# Largest relative error ||out - ref|| / ||ref|| that counts as correct, per dtype. A
# sum of k products in float32 drifts by about eps * sqrt(k) (~1e-6 at k = 784); a wrong
# kernel (transposed, dropped term) is off by order 1.
TOLERANCES = {"float32": 1e-4, "float64": 1e-10}

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


@dataclass(frozen=True)
class BenchSpec:
    """One timed benchmark: an implementation at a shape, called `inner_loops` times per value."""

    impl: str
    shape: Shape
    inner_loops: int

    def encode(self):
        return f"{self.impl}:{self.shape}:{self.inner_loops}"

    @classmethod
    def decode(cls, text):
        impl, shape, inner = text.split(":")
        return cls(impl, Shape.parse(shape), int(inner))

    def name(self, dtype):
        """The benchmark's name in the pyperf file, stable across runs for compare_to."""
        return f"{self.impl} {self.shape} {dtype}"


def make_inputs(shape, dtype, seed, device="cpu"):
    """Seeded standard-normal a (m, k) and b (k, n), as the chapter's torch.randn."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(shape.m, shape.k, generator=gen, dtype=getattr(torch, dtype))  # (m, k)
    b = torch.randn(shape.k, shape.n, generator=gen, dtype=getattr(torch, dtype))  # (k, n)
    return a.to(device), b.to(device)
