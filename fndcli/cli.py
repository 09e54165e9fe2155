"""The `fnd` command line: each command reads options, calls its core once, renders, maps errors to exit codes.

Exit codes: 0 success; 1 a check failed (a wrong kernel, a gradient mismatch, diverged
training); 2 bad usage or input (one line on stderr, nothing written); 130 Ctrl-C (rows
already finished are kept).
"""
import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cliutil import (ConfigOption, OneLineErrorGroup, OutOption, QuietOption, SeedOption,
                            console, effective_config, progress, status)

app = typer.Typer(cls=OneLineErrorGroup, no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
                  pretty_exceptions_show_locals=False)


@app.callback()
def _root():
    """fnd: a command-line lab for the foundations of neural networks (fastbook ch. 17).

    Every command writes DIR/COMMAND-UTCSTAMP.csv and a .json sidecar (--out DIR),
    takes option defaults from --config FILE.toml, and exits 0 (ok), 1 (a check failed),
    2 (bad input) or 130 (interrupted).
    """


def _registry_enum(name, keys):
    """An Enum of a registry's names, so Typer validates them and --help lists them."""
    return Enum(name, {k: k for k in keys}, type=str)


def _save_run(ctx, out_dir, started, write_files, resolved, **meta):
    """Write a run's own files with write_files(files), then the JSON sidecar; return every path.

    `resolved`: option values the command filled in (defaults such as 'all'), for the sidecar.
    """
    from fndcli.results import RunFiles, run_metadata

    files = RunFiles(out_dir, ctx.command.name, started)
    write_files(files)
    config_file = ctx.params.get("config")
    files.write_json(".json", run_metadata(ctx.command.name, effective_config(ctx, **resolved), started,
                                           config_file=str(config_file) if config_file else None,
                                           files=[p.name for p in files.written], **meta))
    return files.written


def _out_dir(out):
    from fndcli.results import OutputDirError, check_out_dir

    try:
        return check_out_dir(out)
    except OutputDirError as e:
        raise typer.BadParameter(str(e), param_hint="'--out'")


def _print_paths(con, paths):
    for path in paths:
        con.print(str(path), markup=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------
# fnd matmul-bench

from fndcli.benchspec import DTYPES, Shape, parse_sweep, sweep_shapes  # noqa: E402
from fndcli.kernels import CHAPTER, IMPLS  # noqa: E402

ImplName = _registry_enum("ImplName", [*IMPLS, "all"])
BenchDtype = _registry_enum("BenchDtype", DTYPES)
ModelDtype = _registry_enum("ModelDtype", ["float32", "float64"])
DeviceName = _registry_enum("DeviceName", ["cpu", "cuda"])
SweepDim = _registry_enum("SweepDim", ["all", "m", "k", "n"])


def _check_devices(devices):
    """--device cuda needs CUDA; the message names the alternative."""
    import torch

    if "cuda" in devices and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA is not available on this machine; use --device cpu", param_hint="'--device'")


def _bench_impls(impl, devices, dtype):
    """The implementations to run: the chapter's five by default, 'all' for every one that fits
    the devices and dtype; an explicit one that cannot run is an error naming what it can do."""
    names = [i.value for i in impl] if impl else list(CHAPTER)
    if "all" in names:
        return tuple(n for n in IMPLS if set(IMPLS[n].devices) & set(devices) and dtype in IMPLS[n].dtypes)
    for name in names:
        spec = IMPLS[name]
        if not set(spec.devices) & set(devices):
            raise typer.BadParameter(f"{name} runs only on {' or '.join(spec.devices)}; "
                                     f"use --device {spec.devices[0]}", param_hint="'--impl'")
        if dtype not in spec.dtypes:
            raise typer.BadParameter(f"{name} does not support {dtype}; it takes {', '.join(spec.dtypes)}",
                                     param_hint="'--dtype'")
    return tuple(dict.fromkeys(names))


@app.command("matmul-bench")
def matmul_bench(
    ctx: typer.Context,
    impl: Annotated[Optional[list[ImplName]], typer.Option(
        "--impl", help="Implementation to run; repeatable. Default: the chapter's five; 'all': every one that "
                       "runs on the device(s) and dtype (numba kernels: CPU, float32/float64; triton: CUDA).")] = None,
    shape: Annotated[Optional[list[Shape]], typer.Option(
        "--shape", metavar="MxKxN", parser=Shape.parse,
        help="a is MxK, b is KxN; repeatable. Default: the book's 5x784x10.")] = None,
    dtype: Annotated[BenchDtype, typer.Option("--dtype", help="Element type of a and b.")] = BenchDtype.float32,
    device: Annotated[Optional[list[DeviceName]], typer.Option(
        "--device", help="cpu or cuda; repeat both to compare them. Default: cpu.")] = None,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, help="torch threads (parent and workers). Default: torch's own.")] = None,
    seed: SeedOption = 0,
    quick: Annotated[bool, typer.Option("--quick", help="A few seconds: pyperf in-process, 3 values.")] = False,
    fast: Annotated[bool, typer.Option("--fast", help="pyperf's --fast.")] = False,
    rigorous: Annotated[bool, typer.Option("--rigorous", help="pyperf's --rigorous.")] = False,
    max_seconds: Annotated[float, typer.Option(
        "--max-seconds", help="Skip an implementation whose estimated run at a shape exceeds this.")] = 60.0,
    sweep: Annotated[Optional[str], typer.Option(
        "--sweep", metavar="LO:HI|S,S,...", help="Sizes to sweep: LO:HI for powers of two, or a list. Replaces "
                                                 "--shape (which gives the other dimensions with --sweep-dim).")] = None,
    sweep_dim: Annotated[SweepDim, typer.Option(
        "--sweep-dim", help="all: square shapes SxSxS; m, k or n: vary that dimension of the first --shape.")] = SweepDim.all,
    peak_gflops: Annotated[Optional[float], typer.Option(
        "--peak-gflops", help="The ceiling for % peak. Default: torch's best GFLOP/s at a shape of 256 or more "
                              "per side in this run; none (no % peak) if the run has no such row.")] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", metavar="IMPL[@DEVICE]", help="What speedups are relative to. Default: the implementation "
                                                    "timed at the most shapes, the slowest rung on a tie.")] = None,
    config: ConfigOption = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Time the chapter's matmul ladder, each implementation checked against float64 a @ b.

    Loops -> row x column -> broadcast -> einsum -> a @ b, and beyond: numba and Triton
    kernels, the GPU, size sweeps with crossovers. Timed by pyperf in worker processes.
    Exit 1 if any implementation gives a wrong result.

    Examples:

        fnd matmul-bench                    # the book's 5x784x10, the chapter's five
        fnd matmul-bench --impl einsum --impl torch --shape 256x256x256 --quick
        fnd matmul-bench --impl torch --impl numba-tiled --sweep 64:1024 --quick
        fnd matmul-bench --impl torch --device cpu --device cuda --sweep 16:4096
        fnd matmul-bench --config configs/book.toml --out results/
    """
    from fndcli.bench import BenchConfig, BenchError, run_bench
    from fndcli.render import bench_table, crossover_table
    from fndcli.results import utc_now

    presets = [name for name, on in (("quick", quick), ("fast", fast), ("rigorous", rigorous)) if on]
    if len(presets) > 1:
        given = " and ".join(f"--{p}" for p in presets)
        raise typer.BadParameter(f"choose one of --quick, --fast, --rigorous, not {given}")
    if not max_seconds > 0:
        raise typer.BadParameter(f"must be a positive number of seconds, got {max_seconds}",
                                 param_hint="'--max-seconds'")
    if peak_gflops is not None:
        _positive_finite(peak_gflops, "--peak-gflops")
    devices = tuple(dict.fromkeys(d.value for d in device)) if device else ("cpu",)
    _check_devices(devices)
    impls = _bench_impls(impl, devices, dtype.value)
    _check_baseline(baseline, impls, devices)
    shapes = tuple(dict.fromkeys(shape)) if shape else (Shape(5, 784, 10),)
    if sweep is not None:
        try:
            shapes = tuple(sweep_shapes(parse_sweep(sweep), sweep_dim.value, shapes[0]))
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="'--sweep'")
    cfg = BenchConfig(impls=impls, shapes=shapes, dtype=dtype.value, devices=devices, threads=threads, seed=seed,
                      preset=presets[0] if presets else "default", max_seconds=max_seconds,
                      peak_gflops=peak_gflops, sweep_dim=sweep_dim.value if sweep else None, baseline=baseline)
    out_dir = _out_dir(out)
    con = console()
    started = utc_now()
    try:
        with status(con, quiet) as live:
            result = run_bench(cfg, log=live.update)
    except BenchError as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(1)
    frame = result.rows

    def write_files(files):
        files.write_csv(".csv", frame)
        if result.suite is not None:
            files.write(".pyperf.json", lambda p: result.suite.dump(str(p), replace=True))
        if sweep is not None:
            files.write_csv("-crossovers.csv", result.crossovers)

    wrong = frame[frame["correct"].eq(False)]
    code = 130 if result.interrupted else (1 if len(wrong) else 0)
    resolved = {"impl": list(cfg.impls), "shape": [str(s) for s in cfg.shapes], "device": list(devices)}
    base = frame["baseline"].iloc[0] if len(frame) and frame["baseline"].iloc[0] else None
    peak = {d: {"gflops": g, "source": src} for d, (g, src) in result.ceilings.items()}
    paths = _save_run(ctx, out_dir, started, write_files, resolved, device=",".join(devices), dtype=cfg.dtype,
                      seed=cfg.seed, preset=cfg.preset, pyperf_args=result.pyperf_args, baseline=base, peak=peak,
                      **_matmul_settings(), status="interrupted" if result.interrupted else "complete",
                      exit_code=code)
    if not quiet:
        threads_used = int(frame["threads"].iloc[0]) if len(frame) else _torch_threads()
        title = f"matmul ladder, {cfg.dtype}, {'/'.join(devices)}, {threads_used} thread(s), pyperf {cfg.preset}"
        notes = [f"speedup: {base}'s median ÷ the row's median, at the same shape" if base else ""]
        notes += [f"% peak on {d}: of {g:.3g} GFLOP/s, {src}" for d, (g, src) in result.ceilings.items()]
        con.print(bench_table(frame, title, "\n".join(n for n in notes if n)))
        if len(result.crossovers):
            con.print(crossover_table(result.crossovers, "crossovers: where one overtakes another, "
                                                         "their ranges of values apart on both sides"))
        if len(wrong):
            con.print(f"[bold red]wrong result:[/] {', '.join(wrong['impl'])} (checked against float64 a @ b)")
        if result.interrupted:
            con.print("[yellow]interrupted: kept the rows that finished[/]")
    _print_paths(con, paths)
    raise typer.Exit(code)


def _check_baseline(baseline, impls, devices):
    """--baseline must name one of the run's implementations (IMPL, or IMPL@DEVICE)."""
    if baseline is None:
        return
    impl, _, device = baseline.partition("@")
    if impl not in impls or (device and device not in devices):
        runs = ", ".join(impls) + (f" on {', '.join(devices)}" if len(devices) > 1 else "")
        raise typer.BadParameter(f"{baseline!r} is not in this run; it runs {runs}", param_hint="'--baseline'")


def _torch_threads():
    import torch

    return torch.get_num_threads()


def _matmul_settings():
    """torch's matmul precision settings, for the sidecar (TF32 changes float32 results on the GPU)."""
    import torch

    return {"tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


# ---------------------------------------------------------------------------------------
# fnd init-sweep

from fndcli.inits import ACTS, ALIASES, SCHEMES  # noqa: E402

SchemeName = _registry_enum("SchemeName", [*SCHEMES, *ALIASES, "all"])
ActName = _registry_enum("ActName", ACTS)
FanMode = _registry_enum("FanMode", ["fan_in", "fan_out"])


def _positive_finite(value, option):
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive finite number, got {value}", param_hint=f"'{option}'")


@app.command("init-sweep")
def init_sweep(
    ctx: typer.Context,
    scheme: Annotated[Optional[list[SchemeName]], typer.Option(
        "--scheme", help="Init scheme; repeatable, or 'all' (the default). kaiming = kaiming-normal, "
                         "xavier = xavier-normal.")] = None,
    act: Annotated[Optional[list[ActName]], typer.Option(
        "--act", help="Activation after each layer; repeatable. Default: linear and relu.")] = None,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Layers in the stack.")] = 50,
    width: Annotated[int, typer.Option("--width", min=1, help="Units per layer (weights are width x width).")] = 100,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows of the input batch x ~ N(0, 1).")] = 200,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Runs per scheme x act, seeds consecutive from --seed.")] = 1,
    seed: SeedOption = 0,
    dtype: Annotated[ModelDtype, typer.Option("--dtype", help="float32 (the chapter's, so overflow shows) or float64.")] = ModelDtype.float32,
    scale: Annotated[float, typer.Option("--scale", help="Std of the 'scaled' scheme.")] = 0.1,
    leak: Annotated[float, typer.Option("--leak", help="Negative slope of leaky-relu (and its kaiming gain).")] = 0.01,
    mode: Annotated[FanMode, typer.Option("--mode", help="Kaiming's fan: fan_in keeps the forward pass, fan_out the backward.")] = FanMode.fan_in,
    lsuv_tol: Annotated[float, typer.Option("--lsuv-tol", help="LSUV: stop when |Var - 1| is below this.")] = 0.1,
    backward: Annotated[bool, typer.Option("--backward", help="Also push a unit-variance gradient back through the stack.")] = False,
    plot: Annotated[bool, typer.Option("--plot", help="Write PNGs: std per layer, and a histogram heat map of the first run.")] = False,
    config: ConfigOption = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Activation statistics through deep stacks of x = act(x @ w), under each init scheme, against theory.

    The chapter's experiment: a 200x100 batch through 50 layers of 100x100 weights. N(0, 1)
    explodes, x 0.01 vanishes, 1/sqrt(n) halves the second moment at each ReLU, Kaiming keeps
    it. Overflow and underflow are reported, never crashed on; the exit code is 0.

    Examples:

        fnd init-sweep --scheme kaiming --depth 50
        fnd init-sweep --scheme all --act linear --act relu --seeds 5 --plot
        fnd init-sweep --config configs/book.toml --backward
    """
    from fndcli.plots import activation_heatmap, std_per_layer
    from fndcli.render import sweep_table
    from fndcli.results import utc_now
    from fndcli.sweep import SweepConfig, run_sweep

    _positive_finite(scale, "--scale")
    _positive_finite(lsuv_tol, "--lsuv-tol")
    if not (math.isfinite(leak) and 0 <= leak < 1):
        raise typer.BadParameter(f"must be in [0, 1), got {leak}", param_hint="'--leak'")
    names = [s.value for s in scheme] if scheme else ["all"]
    schemes = tuple(dict.fromkeys(s for n in names for s in (SCHEMES if n == "all" else [ALIASES.get(n, n)])))
    acts = tuple(dict.fromkeys(a.value for a in act)) if act else ("linear", "relu")
    cfg = SweepConfig(schemes=schemes, acts=acts, depth=depth, width=width, batch=batch, seeds=seeds, seed=seed,
                      dtype=dtype.value, scale=scale, leak=leak, mode=mode.value, lsuv_tol=lsuv_tol,
                      backward=backward, heatmap=plot)
    out_dir = _out_dir(out)
    con = console()
    started = utc_now()
    with status(con, quiet) as live:
        live.update(f"init-sweep: {len(schemes)} scheme(s) x {len(acts)} act(s) x {seeds} seed(s)")
        result = run_sweep(cfg)

    def write_files(files):
        files.write_csv(".csv", result.layers)
        files.write_csv("-summary.csv", result.summary)
        if plot and len(result.layers):
            files.write("-std.png", lambda p: std_per_layer(result.layers, p))
            files.write("-heatmap.png", lambda p: activation_heatmap(result.heatmap, result.heatmap_run, p))

    code = 130 if result.interrupted else 0
    paths = _save_run(ctx, out_dir, started, write_files, {"scheme": list(schemes), "act": list(acts)},
                      device="cpu", dtype=cfg.dtype, seed=seed, status="interrupted" if code else "complete",
                      exit_code=code)
    if not quiet:
        con.print(sweep_table(result.summary, f"init sweep: depth {depth}, width {width}, batch {batch}, "
                                              f"{seeds} seed(s), {cfg.dtype}"))
    _print_paths(con, paths)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------
# fnd gradcheck

from fndcli.model import LOSSES  # noqa: E402

LossName = _registry_enum("LossName", LOSSES)
InitName = _registry_enum("InitName", [*SCHEMES, *ALIASES])


def _tolerance(value, option):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"must be a finite number >= 0, got {value}", param_hint=f"'{option}'")


@app.command("gradcheck")
def gradcheck(
    ctx: typer.Context,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows of the input batch.")] = 200,
    n_in: Annotated[int, typer.Option("--n-in", min=1, help="Input features.")] = 100,
    hidden: Annotated[Optional[list[int]], typer.Option(
        "--hidden", min=1, help="Hidden layer width; repeat for depth. Default: the chapter's 50.")] = None,
    n_out: Annotated[int, typer.Option("--n-out", min=1, help="Outputs (classes for cross-entropy).")] = 1,
    loss: Annotated[LossName, typer.Option("--loss", help="mse, or softmax cross-entropy (log-sum-exp).")] = LossName.mse,
    dtype: Annotated[ModelDtype, typer.Option("--dtype", help="Element type of the model and data.")] = ModelDtype.float32,
    init: Annotated[InitName, typer.Option("--init", help="Init scheme from init-sweep's registry.")] = InitName.kaiming,
    seed: SeedOption = 0,
    rtol: Annotated[Optional[float], typer.Option(
        "--rtol", help="Relative tolerance, max|diff| / max|ref|. Default: 1e-5 (float32), 1e-12 (float64).")] = None,
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance added to rtol * max|ref|.")] = 0.0,
    device: Annotated[DeviceName, typer.Option(
        "--device", help="Where the autograd comparison runs; finite differences stay on the CPU.")] = DeviceName.cpu,
    config: ConfigOption = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Check the hand-written gradients against torch autograd and finite differences; exit 1 on a mismatch.

    The model is the chapter's: Linear -> ReLU -> Linear, 200x100 -> 50 -> 1 with MSE by
    default. Every gradient (input, each weight and bias, each intermediate activation) is
    compared with autograd on the same values; each hand-written layer, a small float64 copy
    of the model and the chapter's MyRelu go through torch.autograd.gradcheck.

    Examples:

        fnd gradcheck
        fnd gradcheck --hidden 128 --hidden 64 --n-out 10 --loss cross-entropy --batch 1
        fnd gradcheck --dtype float64 --config configs/ci.toml
    """
    from fndcli.gradcheck import FD_ATOL, FD_EPS, FD_RTOL, GradcheckConfig, run_gradcheck
    from fndcli.render import gradcheck_table
    from fndcli.results import utc_now

    _tolerance(rtol, "--rtol")
    _tolerance(atol, "--atol")
    _check_devices([device.value])
    if loss.value == "cross-entropy" and n_out < 2:
        raise typer.BadParameter(f"cross-entropy needs 2 or more classes, got {n_out}", param_hint="'--n-out'")
    cfg = GradcheckConfig(batch=batch, n_in=n_in, hidden=tuple(hidden) if hidden else (50,), n_out=n_out,
                          loss=loss.value, dtype=dtype.value, seed=seed, init=ALIASES.get(init.value, init.value),
                          rtol=rtol, atol=atol, device=device.value)
    out_dir = _out_dir(out)
    con = console()
    started = utc_now()
    with status(con, quiet) as live:
        live.update("gradcheck")
        frame = run_gradcheck(cfg)
    failed = frame[~frame["passed"].astype(bool)]
    code = 1 if len(failed) else 0
    paths = _save_run(ctx, out_dir, started, lambda files: files.write_csv(".csv", frame),
                      {"hidden": list(cfg.hidden), "rtol": cfg.tolerance}, device=cfg.device, dtype=cfg.dtype,
                      seed=seed, rtol=cfg.tolerance, atol=cfg.atol, status="complete", exit_code=code)
    if not quiet:
        sizes = " -> ".join(map(str, cfg.sizes))
        con.print(gradcheck_table(frame, f"gradcheck: {batch} x {sizes}, {cfg.loss}, {cfg.dtype}, init {cfg.init}"))
        con.print(f"autograd rows pass when max|diff| <= {cfg.atol:g} + {cfg.tolerance:g} * max|ref|; "
                  f"finite-difference rows when torch.autograd.gradcheck (float64, eps {FD_EPS:g}) finds "
                  f"|analytic - numeric| <= {FD_ATOL:g} + {FD_RTOL:g} * |numeric| at every element")
        con.print("[green]all checks pass[/]" if code == 0 else
                  f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed['tensor'])}")
    _print_paths(con, paths)
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------
# fnd train

from fndcli.train import LABELS, TASKS  # noqa: E402

TaskName = _registry_enum("TaskName", TASKS)
LabelSource = _registry_enum("LabelSource", LABELS)


@app.command("train")
def train_command(
    ctx: typer.Context,
    task: Annotated[TaskName, typer.Option("--task", help="regression (MSE, R^2) or classification (cross-entropy, accuracy).")] = TaskName.regression,
    samples: Annotated[int, typer.Option("--samples", min=2, help="Synthetic examples, before the split.")] = 4000,
    valid_frac: Annotated[float, typer.Option("--valid-frac", help="Fraction held out for validation.")] = 0.2,
    n_in: Annotated[int, typer.Option("--n-in", min=1, help="Input features.")] = 100,
    hidden: Annotated[Optional[list[int]], typer.Option(
        "--hidden", min=1, help="Hidden layer width; repeat for depth. Default: the chapter's 50.")] = None,
    n_out: Annotated[int, typer.Option("--n-out", min=1, help="Regression outputs.")] = 1,
    classes: Annotated[int, typer.Option("--classes", min=2, help="Classification classes.")] = 4,
    labels: Annotated[LabelSource, typer.Option("--labels", help="Classification labels: a teacher's argmax or Gaussian clusters.")] = LabelSource.teacher,
    noise: Annotated[float, typer.Option("--noise", help="Std of the noise added to the regression teacher.")] = 0.1,
    init: Annotated[InitName, typer.Option("--init", help="Init scheme from init-sweep's registry.")] = InitName.kaiming,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 0.05,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the training set.")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per SGD step.")] = 64,
    momentum: Annotated[float, typer.Option("--momentum", help="SGD momentum, as torch.optim.SGD's (0: none).")] = 0.0,
    dtype: Annotated[ModelDtype, typer.Option("--dtype", help="Element type of the model and data.")] = ModelDtype.float32,
    seed: SeedOption = 0,
    check_autograd: Annotated[bool, typer.Option(
        "--check-autograd/--no-check-autograd", help="Train an autograd twin in lockstep and compare.")] = True,
    rtol: Annotated[Optional[float], typer.Option(
        "--rtol", help="Relative tolerance against the twin. Default: 1e-5 (float32), 1e-10 (float64).")] = None,
    plot: Annotated[bool, typer.Option("--plot", help="Write a PNG of the loss curves, hand-written and autograd.")] = False,
    device: Annotated[DeviceName, typer.Option("--device", help="cpu or cuda, for both models.")] = DeviceName.cpu,
    config: ConfigOption = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Train the hand-written model on synthetic data with SGD from scratch, in lockstep with an autograd twin.

    Exit 1 if the twin's losses or final parameters differ beyond --rtol, or if training
    diverges (a non-finite loss).

    Examples:

        fnd train
        fnd train --task classification --classes 5 --hidden 64 --hidden 32 --epochs 30
        fnd train --lr 0.01 --momentum 0.9 --no-check-autograd --plot
    """
    from fndcli.plots import loss_curves
    from fndcli.render import human_seconds, train_table
    from fndcli.results import utc_now
    from fndcli.train import TrainConfig, n_valid, train

    _check_devices([device.value])
    _positive_finite(lr, "--lr")
    _tolerance(rtol, "--rtol")
    for value, option in ((noise, "--noise"), (momentum, "--momentum")):
        _tolerance(value, option)
    if not 0 < valid_frac < 1:
        raise typer.BadParameter(f"must be between 0 and 1, got {valid_frac}", param_hint="'--valid-frac'")
    n_train = samples - n_valid(samples, valid_frac)
    if n_train < 1:
        raise typer.BadParameter(f"leaves no training examples of {samples}", param_hint="'--valid-frac'")
    if batch_size > n_train:
        raise typer.BadParameter(f"{batch_size} is larger than the {n_train} training examples "
                                 f"(--samples {samples}, --valid-frac {valid_frac})", param_hint="'--batch-size'")
    cfg = TrainConfig(task=task.value, samples=samples, valid_frac=valid_frac, n_in=n_in,
                      hidden=tuple(hidden) if hidden else (50,), n_out=n_out, classes=classes, labels=labels.value,
                      noise=noise, init=ALIASES.get(init.value, init.value), lr=lr, epochs=epochs,
                      batch_size=batch_size, momentum=momentum, dtype=dtype.value, seed=seed,
                      check_autograd=check_autograd, rtol=rtol, device=device.value)
    out_dir = _out_dir(out)
    con = console()
    started = utc_now()
    with progress(con, quiet, epochs + 1, "training") as advance:
        result = train(cfg, on_epoch=advance)
    history = result.history
    mismatch = result.mismatch(cfg.tolerance) if check_autograd and not result.diverged_epoch else None
    code = 130 if result.interrupted else (1 if result.diverged_epoch or mismatch else 0)

    def write_files(files):
        files.write_csv(".csv", history)
        if plot:
            files.write("-loss.png", lambda p: loss_curves(history, p))

    baseline_name = "majority class" if cfg.task == "classification" else "the training mean"
    paths = _save_run(ctx, out_dir, started, write_files, {"hidden": list(cfg.hidden), "rtol": cfg.tolerance},
                      device=cfg.device, dtype=cfg.dtype, seed=seed, manual_step_s=result.manual_step_s,
                      autograd_step_s=result.autograd_step_s, steps=result.steps,
                      max_rel_loss_diff=result.loss_diff.rel_diff if result.loss_diff else None,
                      max_rel_loss_diff_at=result.loss_diff.where if result.loss_diff else None,
                      max_rel_param_diff=result.param_diff.rel_diff if result.param_diff else None,
                      max_rel_param_diff_at=result.param_diff.where if result.param_diff else None,
                      baseline_metric=result.baseline_metric, baseline=baseline_name,
                      diverged_epoch=result.diverged_epoch, status="interrupted" if result.interrupted else "complete",
                      exit_code=code)
    if not quiet:
        metric_name = "valid R²" if cfg.task == "regression" else "valid accuracy"
        sizes = " -> ".join(map(str, [cfg.n_in, *cfg.hidden, cfg.outputs]))
        caption = f"{metric_name} of a model that predicts {baseline_name}: {result.baseline_metric:.4f}"
        con.print(train_table(history, f"train: {cfg.task}, {sizes}, {cfg.loss}, SGD lr {lr:g}"
                                       f"{f' momentum {momentum:g}' if momentum else ''}, {cfg.dtype}",
                              metric_name, caption))
        step = f"hand-written step {human_seconds(result.manual_step_s)}"
        if check_autograd:
            step += (f", autograd twin {human_seconds(result.autograd_step_s)}: the hand-written step takes "
                     f"{result.manual_step_s / result.autograd_step_s:.2f}x the twin's time")
            con.print(f"{step}\nlargest relative difference from the twin: loss {result.loss_diff.rel_diff:.2e} "
                      f"({result.loss_diff.where}), parameters {result.param_diff.rel_diff:.2e} "
                      f"({result.param_diff.where}); tolerance {cfg.tolerance:g}")
        else:
            con.print(step)
    if mismatch:
        typer.echo(f"Error: the hand-written model and its autograd twin disagree: {mismatch.where} differs by "
                   f"{mismatch.rel_diff:.2e} relative, beyond --rtol {cfg.tolerance:g}", err=True)
    if result.diverged_epoch:
        typer.echo(f"Error: training diverged in epoch {result.diverged_epoch} (non-finite loss); "
                   f"try a smaller --lr than {lr:g}", err=True)
    _print_paths(con, paths)
    raise typer.Exit(code)


def main():
    """Console-script entry point."""
    app()
