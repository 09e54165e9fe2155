"""Every registry's names and facts, without torch: what `--help`, option checking and the guards need.

The CLI imports this module to build its choices, so `fnd --help` and a usage error answer
without loading torch, pandas or numba. The heavy modules attach the code to these names:
`fndcli.kernels.registry` the matmul functions, `fndcli.init.schemes` the init schemes and activations,
`fndcli.backprop.model` the losses. A test checks that each registry and its code agree.
"""

from dataclasses import dataclass
from typing import Callable

DTYPES = ("float32", "float64", "bfloat16", "float16")
ITEMSIZE = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ImplSpec:
    """A matmul implementation's facts: where it runs, and a rough model of its cost per call.

    The cost model decides what to skip before anything runs: seconds per call is about
    `py_s` per Python-level iteration plus 2*m*k*n flops at `flops` per second. The
    constants are conservative figures for a 2-core x86 machine (docs/measured.md, "Commands");
    on a GPU each Python-level step is a kernel launch and the flops are far more.
    `compiled` implementations compile on their first call for a dtype and shape class;
    that time is measured apart and kept out of the timings. `scratch` is the memory the
    kernel allocates beside its output, in elements of (m, k, n).
    """

    name: str
    summary: str
    py_iters: Callable[[int, int, int], int]
    py_s: float
    flops: float
    devices: tuple = DEVICES
    dtypes: tuple = DTYPES
    compiled: bool = False
    scratch: Callable[[int, int, int], int] = lambda m, k, n: 0
    isolated: bool = (
        False  # runs only in processes fnd starts with its own numba settings (fndcli.kernels.jitenv)
    )
    elsewhere: str = (
        ""  # what becomes of it on the devices it is not timed on, said when it is asked for there
    )
    blas: bool = False  # calls numpy's BLAS: the worker names that BLAS (threadpoolctl) in the row's metadata

    def estimate_seconds(self, m, k, n, device="cpu"):
        """Rough seconds for one call at shape m x k x n."""
        py_s, flops = (self.py_s * 2, self.flops * 50) if device == "cuda" else (self.py_s, self.flops)
        return self.py_iters(m, k, n) * py_s + 2.0 * m * k * n / flops


def _one(m, k, n):
    return 1


def _packed(m, k, n):
    """numba-tiled's buffers, in elements, a bound: all of b packed (k in blocks of at least 128, n rounded
    up to NR <= 48), a packed block of a a thread (at most all of a's rows and a panel a thread, by k: the
    1024 is what covers one row's product, 7 rows packed), and the output."""
    return (k + k // 128 + 1) * (n + 48) + (m + 1024) * k + m * n


IMPL_SPECS = {
    spec.name: spec
    for spec in [
        ImplSpec("loops", "three Python loops", lambda m, k, n: m * k * n, 15e-6, 1e9),
        ImplSpec(
            "dot",
            "row x column, elementwise, summed",
            lambda m, k, n: m * n,
            15e-6,
            1e9,
            scratch=lambda m, k, n: 2 * k,
        ),
        ImplSpec(
            "broadcast",
            "a row broadcast against b, summed over k",
            lambda m, k, n: m,
            20e-6,
            1e9,
            scratch=lambda m, k, n: 2 * k * n,
        ),
        ImplSpec("einsum", "torch.einsum('ik,kj->ij')", _one, 30e-6, 2e10),
        ImplSpec("torch", "a @ b (BLAS, cuBLAS)", _one, 10e-6, 2e10),
        ImplSpec(  # numpy's float16 matmul is a plain C loop (~0.3 GFLOP/s), no BLAS; it has no bfloat16
            "numpy",
            "numpy's a @ b (the BLAS it loaded: OpenBLAS, MKL)",
            _one,
            10e-6,
            2e10,
            devices=("cpu",),
            dtypes=("float32", "float64"),
            blas=True,
        ),
        ImplSpec(
            "numba-loops",
            "the three loops compiled by numba",
            _one,
            20e-6,
            1e9,
            devices=("cpu",),
            dtypes=("float32", "float64"),
            compiled=True,
        ),
        ImplSpec(
            "numba-tiled",
            "packed panels and a register micro-kernel sized for the CPU, parallel (numba)",
            _one,
            30e-6,
            2e10,
            devices=("cpu",),
            dtypes=("float32", "float64"),
            compiled=True,
            scratch=_packed,
            isolated=True,
        ),
        ImplSpec(
            "triton",
            "tiled Triton kernel, grouped tile order",
            _one,
            20e-6,
            1e12,
            devices=("cuda",),
            dtypes=("float32", "float16", "bfloat16"),
            compiled=True,
            elsewhere="on the CPU, Triton's interpreter runs it in fnd's tests for correctness only, "
            "never for timing",
        ),
    ]
}
CHAPTER = ("loops", "dot", "broadcast", "einsum", "torch")  # the chapter's ladder, slowest rung first

SCHEMES = {
    "normal": "N(0, 1), the chapter's first try",
    "scaled": "N(0, scale^2), --scale (the chapter's x 0.01 and x 0.1)",
    "xavier-normal": "Glorot: N(0, 2 / (fan_in + fan_out))",
    "xavier-uniform": "Glorot: U(+-sqrt(6 / (fan_in + fan_out)))",
    "kaiming-normal": "He: N(0, gain^2 / fan), gain from the activation",
    "kaiming-uniform": "He: U(+-gain * sqrt(3 / fan))",
    "torch-default": "what nn.Linear does: U(+-1/sqrt(fan_in))",
    "orthogonal": "orthonormal rows or columns times the activation's gain",
    "lsuv": "Mishkin & Matas 2015: orthogonal, then each layer rescaled on the batch to unit variance",
}
ALIASES = {"xavier": "xavier-normal", "kaiming": "kaiming-normal"}
ACTS = {
    "linear": "identity",
    "relu": "max(x, 0)",
    "leaky-relu": "x, or --leak * x below 0",
    "tanh": "tanh(x)",
}
# init-sweep --model's findings per layer, in the order a row lists them; the summary names the first layer of
# each (of a jump: the first that jumps on most seeds)
FINDINGS = (
    "dead",
    "saturated",
    "fp16 overflow",
    "fp16 underflow",
    "bf16 overflow",
    "bf16 underflow",
    "non-finite",
    "exploding",
    "vanishing",
    "jump",
)


def first_column(finding):
    """The summary's column naming the first layer of a finding: 'fp16 overflow' -> first_fp16_overflow."""
    return "first_" + finding.replace(" ", "_").replace("-", "_")


LOSSES = {
    "mse": "mean squared error over all N*k elements",
    "cross-entropy": "softmax cross-entropy, log-sum-exp (class indices)",
}
TASKS = {
    "regression": "MSE against a teacher network plus noise; metric R^2",
    "classification": "cross-entropy; metric accuracy",
}
LABELS = {
    "teacher": "the argmax of a random teacher network",
    "clusters": "Gaussian clusters around random centres",
}


def resolve_scheme_name(name):
    """'kaiming' -> 'kaiming-normal'; ValueError names the known ones."""
    name = ALIASES.get(name, name)
    if name not in SCHEMES:
        raise ValueError(f"unknown init scheme {name!r}; known: {', '.join([*SCHEMES, *ALIASES])}")
    return name


def listing(registry):
    """'name: summary; name: summary' for --help."""
    return "; ".join(f"{name}: {summary}" for name, summary in registry.items())


def dtype_name(dtype):
    """torch.float32 -> 'float32': a dtype as fnd's options, rows and sidecars spell it."""
    return str(dtype).removeprefix("torch.")
