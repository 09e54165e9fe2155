"""Each command's settings and their defaults, in one place, without torch.

The cores take these frozen dataclasses; the CLI reads its option defaults from them
(`SweepConfig.depth`), so a default is written once. The config layering is nanoGPT's:
these defaults < the command's table in `--config FILE.toml` < flags.
"""

from dataclasses import dataclass

from fndcli.bench.spec import Shape
from fndcli.names import CHAPTER, SCHEMES

MODEL_TOLERANCES = {"float32": 1e-5, "float64": 1e-12}  # gradcheck: relative, max|diff| / max|ref|
TRAIN_TOLERANCES = {"float32": 1e-5, "float64": 1e-10}  # train: relative, losses per step and parameters


@dataclass(frozen=True)
class BenchConfig:
    impls: tuple = CHAPTER
    shapes: tuple = (Shape(5, 784, 10),)  # the book's m1 = randn(5, 784), m2 = randn(784, 10)
    dtype: str = "float32"
    devices: tuple = ("cpu",)
    threads: int | None = None  # None: torch's own choice (every core); bench_config chooses 1 for small work
    threads_note: str | None = None  # why bench_config chose the threads, when --threads did not
    seed: int = 0
    preset: str = "default"
    max_seconds: float = 60.0
    peak_gflops: float | None = None  # the ceiling of pct_peak; None: torch's best at a large shape, if run
    sweep_dim: str | None = None  # set by --sweep: which dimension the crossover sizes are of
    baseline: str | None = None  # the series speedups are over; None: see benchstats.choose_baseline
    order: str = "interleaved"  # the worker processes: round-robin over benchmarks, or each one's in a row


@dataclass(frozen=True)
class PeakConfig:
    dtypes: tuple = ("float32", "float64")
    threads: tuple = ()  # () in the defaults: every count from 1 to the cores
    device: str = "cpu"
    bandwidth: bool = True
    refresh: bool = False


@dataclass(frozen=True)
class SweepConfig:
    schemes: tuple = tuple(SCHEMES)
    acts: tuple = ("linear", "relu")
    depth: int = 50
    width: int = 100
    batch: int = 200
    seeds: int = 1
    seed: int = 0
    dtype: str = "float32"
    scale: float = 0.1
    leak: float = 0.01
    mode: str = "fan_in"
    lsuv_tol: float = 0.1
    backward: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class ProbeConfig:
    """init-sweep --model: the user's nn.Module, diagnosed layer by layer (fndcli.init.probe)."""

    model: str = ""  # FILE.py:NAME or package.module:NAME: a class or a function returning a module
    input_shape: tuple = ()  # (B, ...): batch first, x ~ N(0, 1)
    scheme: str = "keep"  # keep (the model's own init) or a scheme of the registry
    seeds: int = 1
    seed: int = 0
    dtype: str = "float32"
    scale: float = 0.1  # the 'scaled' scheme's std
    mode: str = "fan_in"
    backward: bool = False
    histograms: bool = False  # --plot: the colorful dimension of the first seed


@dataclass(frozen=True)
class GradcheckConfig:
    batch: int = 200
    n_in: int = 100
    hidden: tuple = (50,)
    n_out: int = 1
    loss: str = "mse"
    dtype: str = "float32"
    seed: int = 0
    init: str = "kaiming-normal"
    rtol: float | None = None  # None: MODEL_TOLERANCES[dtype]
    atol: float = 0.0
    device: str = "cpu"  # of the autograd comparison; finite differences run on the CPU in float64
    model: str | None = None  # FILE.py:NAME of the user's model class (fndcli.backprop.usermodel's protocol)
    layer: str | None = None  # FILE.py:NAME of one of the user's layer classes

    @property
    def sizes(self):
        return [self.n_in, *self.hidden, self.n_out]

    @property
    def tolerance(self):
        return self.rtol if self.rtol is not None else MODEL_TOLERANCES[self.dtype]


def n_valid(samples, valid_frac):
    """Validation examples: the last rows, at least one."""
    return max(1, round(samples * valid_frac))


def task_loss(task):
    """The loss fnd's model trains `task` with."""
    return "mse" if task == "regression" else "cross-entropy"


@dataclass(frozen=True)
class TrainConfig:
    task: str = "regression"
    samples: int = 4000
    valid_frac: float = 0.2
    n_in: int = 100
    hidden: tuple = (50,)
    n_out: int = 1  # regression outputs
    classes: int = 4  # classification classes
    labels: str = "teacher"
    noise: float = 0.1
    init: str = "kaiming-normal"
    lr: float = 0.05
    epochs: int = 20
    batch_size: int = 64
    momentum: float = 0.0
    dtype: str = "float32"
    seed: int = 0
    check_autograd: bool = True
    rtol: float | None = None  # None: TRAIN_TOLERANCES[dtype]
    device: str = "cpu"
    model: str | None = None  # FILE.py:NAME of the user's model class, trained in place of fnd's
    act: str = "relu"  # the hidden layers' activation: relu or tanh

    @property
    def loss(self):
        return task_loss(self.task)

    @property
    def outputs(self):
        return self.n_out if self.task == "regression" else self.classes

    @property
    def sizes(self):
        return [self.n_in, *self.hidden, self.outputs]

    @property
    def n_train(self):
        return self.samples - n_valid(self.samples, self.valid_frac)

    @property
    def tolerance(self):
        return self.rtol if self.rtol is not None else TRAIN_TOLERANCES[self.dtype]
