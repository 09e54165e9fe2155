"""`fnd init-sweep`: activation statistics through deep stacks, against theory (core: `fndcli.init.sweep`)."""

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import (
    SCHEME_HELP,
    SEED_MAX,
    ActName,
    DbOption,
    FanMode,
    ModelDtype,
    NoHistoryOption,
    OutOption,
    QuietOption,
    SchemeName,
    SeedOption,
    check_memory,
    config_option,
    positive_finite,
    refuse_given,
)
from fndcli.cli.runs import Run
from fndcli.memory import probe_bytes, sweep_bytes
from fndcli.names import ACTS, SCHEMES, listing, resolve_scheme_name
from fndcli.settings import ProbeConfig, SweepConfig

DEFAULTS = SweepConfig()
STACK_ONLY = (
    "act",
    "depth",
    "width",
    "batch",
    "leak",
    "lsuv_tol",
)  # fnd's stacks' options: a --model sets these
MODEL_ONLY = ("input_shape",)


def parse_shape(value):
    """--input-shape 64x3x32x32 -> (64, 3, 32, 32): positive integers joined by x, batch first."""
    if value is None:
        return None
    parts = str(value).lower().replace("×", "x").split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise typer.BadParameter(f"{value!r} is not BxCxHxW: positive integers joined by x, batch first")
    return "x".join(str(int(p)) for p in parts)


@command("init-sweep", "Activation statistics through deep stacks, against theory.")
def init_sweep(
    ctx: typer.Context,
    scheme: Annotated[
        Optional[list[SchemeName]],
        typer.Option(
            "--scheme",
            metavar="NAME",
            help=f"Init scheme; repeatable, or 'all' (the default). kaiming = kaiming-normal, "
            f"xavier = xavier-normal. {SCHEME_HELP}. With --model: keep (the default: "
            f"the model's own init) or one scheme for every Linear/Conv weight.",
        ),
    ] = None,
    act: Annotated[
        Optional[list[ActName]],
        typer.Option(
            "--act",
            metavar="NAME",
            help=f"Activation after each layer; repeatable. Default: linear and relu. {listing(ACTS)}.",
        ),
    ] = None,
    depth: Annotated[
        int, typer.Option("--depth", min=1, metavar="N", help="Layers in the stack.")
    ] = DEFAULTS.depth,
    width: Annotated[
        int, typer.Option("--width", min=1, metavar="N", help="Units per layer (weights are width x width).")
    ] = DEFAULTS.width,
    batch: Annotated[
        int, typer.Option("--batch", min=1, metavar="N", help="Rows of the input batch x ~ N(0, 1).")
    ] = DEFAULTS.batch,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds", min=1, metavar="N", help="Runs per scheme x act, seeds consecutive from --seed."
        ),
    ] = DEFAULTS.seeds,
    seed: SeedOption = DEFAULTS.seed,
    dtype: Annotated[
        ModelDtype, typer.Option("--dtype", help="float32 (the chapter's, so overflow shows) or float64.")
    ] = ModelDtype(DEFAULTS.dtype),
    scale: Annotated[
        float, typer.Option("--scale", metavar="X", help="Std of the 'scaled' scheme.")
    ] = DEFAULTS.scale,
    leak: Annotated[
        float,
        typer.Option("--leak", metavar="X", help="Negative slope of leaky-relu (and its kaiming gain)."),
    ] = DEFAULTS.leak,
    mode: Annotated[
        FanMode,
        typer.Option("--mode", help="Kaiming's fan: fan_in keeps the forward pass, fan_out the backward."),
    ] = FanMode(DEFAULTS.mode),
    lsuv_tol: Annotated[
        float, typer.Option("--lsuv-tol", metavar="X", help="LSUV: stop when |Var - 1| is below this.")
    ] = DEFAULTS.lsuv_tol,
    backward: Annotated[
        bool,
        typer.Option(
            "--backward", help="Also push a unit-variance gradient back through the stack, and judge it."
        ),
    ] = False,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="Write PNGs: std per layer (fnd's stacks: with each series' expected band) and a histogram "
            "heat map of log10|x| per layer (a panel per scheme x act).",
        ),
    ] = False,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            metavar="FILE.py:NAME",
            help="Diagnose your own nn.Module instead of fnd's stacks: a class built "
            "without arguments, or a function returning a module (or "
            "package.module:NAME). Loading a file runs its code; @REV: as it was at git revision REV.",
        ),
    ] = None,
    input_shape: Annotated[
        Optional[str],
        typer.Option(
            "--input-shape",
            metavar="BxCxHxW",
            callback=parse_shape,
            help="With --model: the input's shape, batch first, any rank (x ~ N(0, 1)).",
        ),
    ] = None,
    config: config_option("init-sweep") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Activation statistics through deep stacks of x = act(x @ w), under each init scheme, against theory;
    or, with --model, inside your own nn.Module.

    The chapter's experiment: a 200x100 batch through 50 layers of 100x100 weights. N(0, 1)
    explodes, x 0.01 vanishes, 1/sqrt(n) halves the second moment at each ReLU, Kaiming keeps
    it. Each verdict weighs the observation against the theory and its finite-width noise.
    Overflow and underflow are reported, never crashed on; the exit code is 0.

    With --model, every leaf module of your network gets a row: its output's statistics,
    fp16/bf16 overflow and underflow, with --backward its gradient; each layer's findings
    (dead, saturated, fp16 underflow, ...) name the first layer where they start, a layer
    that moves its input's mean square 10x or more beyond its noise is named where the
    scale jumps, and the verdict judges the trend of log m2 along the depth against its
    spread.

    Examples:

    \b
        fnd init-sweep --scheme kaiming --depth 50
        fnd init-sweep --scheme all --act linear --act relu --seeds 5 --plot
        fnd init-sweep --config configs/book.toml --backward
        fnd init-sweep --model examples/resnet.py:ResNet --input-shape 64x3x32x32 --backward --plot
    """
    if model is not None:
        probe(
            ctx,
            model,
            input_shape,
            scheme,
            seeds,
            seed,
            dtype.value,
            scale,
            mode.value,
            backward,
            plot,
            out,
            quiet,
        )
    refuse_given(ctx, MODEL_ONLY, "is for --model")
    if scheme and "keep" in [s.value for s in scheme]:
        raise typer.BadParameter("keep (the model's own init) is for --model", param_hint="'--scheme'")
    positive_finite(scale, "--scale")
    positive_finite(lsuv_tol, "--lsuv-tol")
    if not (math.isfinite(leak) and 0 <= leak < 1):
        raise typer.BadParameter(f"must be in [0, 1), got {leak}", param_hint="'--leak'")
    if seed + seeds - 1 > SEED_MAX:
        raise typer.BadParameter(
            f"seeds {seed} to {seed + seeds - 1} run past 2^64 - 1", param_hint="'--seed'"
        )
    names = [s.value for s in scheme] if scheme else ["all"]
    schemes = tuple(
        dict.fromkeys(s for n in names for s in (SCHEMES if n == "all" else [resolve_scheme_name(n)]))
    )
    acts = tuple(dict.fromkeys(a.value for a in act)) if act else DEFAULTS.acts
    cfg = SweepConfig(
        schemes=schemes,
        acts=acts,
        depth=depth,
        width=width,
        batch=batch,
        seeds=seeds,
        seed=seed,
        dtype=dtype.value,
        scale=scale,
        leak=leak,
        mode=mode.value,
        lsuv_tol=lsuv_tol,
        backward=backward,
        heatmap=plot,
    )
    check_memory(
        sweep_bytes(cfg),
        "cpu",
        f"init-sweep at width {width}, depth {depth}, batch {batch}",
        "--width, --depth, --batch or --seeds",
    )
    run = Run(ctx, out, quiet)

    from fndcli.init.sweep import layer_bands, run_sweep
    from fndcli.report.plots import activation_heatmap, std_per_layer

    with run.working(f"init-sweep: {len(schemes)} scheme(s) x {len(acts)} act(s) x {seeds} seed(s)"):
        result = run_sweep(cfg)

    def write_files(files):
        files.write_csv(".csv", result.layers)
        files.write_csv("-summary.csv", result.summary)
        if plot and len(result.layers):
            files.write(
                "-std.png", lambda p: std_per_layer(result.layers, p, layer_bands(result.layers, cfg))
            )
            files.write("-heatmap.png", lambda p: activation_heatmap(result.heatmaps, p))

    run.finish(
        write_files,
        130 if result.interrupted else (1 if result.error else 0),
        {"scheme": list(schemes), "act": list(acts)},
        error=result.error,
        interrupted=result.interrupted,
        device="cpu",
        dtype=cfg.dtype,
        seed=seed,
    )


def probe(ctx, model, shape, scheme, seeds, seed, dtype, scale, mode, backward, plot, out, quiet):
    """init-sweep --model: check the options and the model (exit 2), diagnose it, write the run; never
    returns."""
    refuse_given(ctx, STACK_ONLY, "is for fnd's own stacks; with --model your model sets it")
    if shape is None:
        raise typer.BadParameter(
            "--model needs the input's shape, e.g. --input-shape 64x3x32x32", param_hint="'--input-shape'"
        )
    names = [s.value for s in scheme] if scheme else ["keep"]
    if len(names) > 1 or names[0] == "all":
        raise typer.BadParameter(
            "give one with --model: keep (the model's own init) or one scheme", param_hint="'--scheme'"
        )
    name = names[0] if names[0] == "keep" else resolve_scheme_name(names[0])
    if name == "lsuv":
        raise typer.BadParameter(
            "lsuv rescales fnd's own stacks; with --model use keep or another scheme", param_hint="'--scheme'"
        )
    if seed + seeds - 1 > SEED_MAX:
        raise typer.BadParameter(
            f"seeds {seed} to {seed + seeds - 1} run past 2^64 - 1", param_hint="'--seed'"
        )
    positive_finite(scale, "--scale")
    cfg = ProbeConfig(
        model=model,
        input_shape=tuple(map(int, shape.split("x"))),
        scheme=name,
        seeds=seeds,
        seed=seed,
        dtype=dtype,
        scale=scale,
        mode=mode,
        backward=backward,
        histograms=plot,
    )
    plan = _plan(cfg, shape)
    check_memory(
        probe_bytes(cfg, plan),
        "cpu",
        f"init-sweep of {model} at {shape}",
        "--input-shape (its batch) or --seeds",
    )
    run = Run(ctx, out, quiet)

    from fndcli import userref
    from fndcli.init.diagnose import run_probe
    from fndcli.init.probe import HIST_RANGE
    from fndcli.report.plots import colorful_dimension, std_per_call

    with run.working(f"init-sweep: {model} at {shape}, {seeds} seed(s)"):
        result = run_probe(cfg, plan)

    def write_files(files):
        files.write_csv(".csv", result.layers)
        files.write_csv("-summary.csv", result.summary)
        if backward:
            files.write_csv("-params.csv", result.params)
        if plot and len(result.layers):
            files.write("-std.png", lambda p: std_per_call(result.layers, p))
            files.write(
                "-heatmap.png", lambda p: colorful_dimension(result.layers, result.heatmap, HIST_RANGE, p)
            )

    stack = {key.replace("_", "-"): None for key in STACK_ONLY}
    run.finish(
        write_files,
        130 if result.interrupted else (1 if result.error else 0),
        {**stack, "scheme": [name]},
        error=result.error,
        interrupted=result.interrupted,
        after=[f"\n{result.traceback}"] if result.traceback else [],
        device="cpu",
        dtype=dtype,
        seed=seed,
        user_code_changed=userref.changes(),
        user_code_revisions=userref.revisions([model]),
    )


def _plan(cfg, shape):
    """The check pass (fndcli.init.probe.plan); a reference that does not load, a model that cannot be built
    or rejects the input shape is exit 2, one line."""
    from fndcli import userref
    from fndcli.init.probe import PROBE_BATCH, plan
    from fndcli.userref import UserCodeError

    try:
        return plan(cfg)
    except userref.RefError as e:
        raise typer.BadParameter(str(e), param_hint="'--model'")
    except UserCodeError as e:
        if getattr(e, "stage", "") != "input":
            raise typer.BadParameter(str(e), param_hint="'--model'")
        rows = min(cfg.input_shape[0], PROBE_BATCH)
        raise typer.BadParameter(
            f"the model rejects input {shape} (tried on {rows} row(s)): {e}", param_hint="'--input-shape'"
        )
