"""`fnd init-sweep`: activation statistics through deep stacks, against theory (core: `fndcli.init.sweep`)."""
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import (SCHEME_HELP, SEED_MAX, ActName, FanMode, ModelDtype, OutOption, QuietOption,
                                SchemeName, SeedOption, check_memory, config_option, positive_finite)
from fndcli.cli.runs import Run
from fndcli.memory import sweep_bytes
from fndcli.names import ACTS, SCHEMES, listing, resolve_scheme_name
from fndcli.settings import SweepConfig

DEFAULTS = SweepConfig()


@command("init-sweep", "Activation statistics through deep stacks, against theory.")
def init_sweep(
    ctx: typer.Context,
    scheme: Annotated[Optional[list[SchemeName]], typer.Option(
        "--scheme", metavar="NAME", help=f"Init scheme; repeatable, or 'all' (the default). kaiming = kaiming-normal, "
                                         f"xavier = xavier-normal. {SCHEME_HELP}.")] = None,
    act: Annotated[Optional[list[ActName]], typer.Option(
        "--act", metavar="NAME",
        help=f"Activation after each layer; repeatable. Default: linear and relu. {listing(ACTS)}.")] = None,
    depth: Annotated[int, typer.Option("--depth", min=1, metavar="N", help="Layers in the stack.")] = DEFAULTS.depth,
    width: Annotated[int, typer.Option(
        "--width", min=1, metavar="N", help="Units per layer (weights are width x width).")] = DEFAULTS.width,
    batch: Annotated[int, typer.Option(
        "--batch", min=1, metavar="N", help="Rows of the input batch x ~ N(0, 1).")] = DEFAULTS.batch,
    seeds: Annotated[int, typer.Option(
        "--seeds", min=1, metavar="N", help="Runs per scheme x act, seeds consecutive from --seed.")] = DEFAULTS.seeds,
    seed: SeedOption = DEFAULTS.seed,
    dtype: Annotated[ModelDtype, typer.Option(
        "--dtype", help="float32 (the chapter's, so overflow shows) or float64.")] = ModelDtype(DEFAULTS.dtype),
    scale: Annotated[float, typer.Option("--scale", metavar="X", help="Std of the 'scaled' scheme.")] = DEFAULTS.scale,
    leak: Annotated[float, typer.Option(
        "--leak", metavar="X", help="Negative slope of leaky-relu (and its kaiming gain).")] = DEFAULTS.leak,
    mode: Annotated[FanMode, typer.Option(
        "--mode", help="Kaiming's fan: fan_in keeps the forward pass, fan_out the backward.")] = FanMode(DEFAULTS.mode),
    lsuv_tol: Annotated[float, typer.Option(
        "--lsuv-tol", metavar="X", help="LSUV: stop when |Var - 1| is below this.")] = DEFAULTS.lsuv_tol,
    backward: Annotated[bool, typer.Option(
        "--backward", help="Also push a unit-variance gradient back through the stack, and judge it.")] = False,
    plot: Annotated[bool, typer.Option(
        "--plot", help="Write PNGs: std per layer, and a histogram heat map of the first run.")] = False,
    config: config_option("init-sweep") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Activation statistics through deep stacks of x = act(x @ w), under each init scheme, against theory.

    The chapter's experiment: a 200x100 batch through 50 layers of 100x100 weights. N(0, 1)
    explodes, x 0.01 vanishes, 1/sqrt(n) halves the second moment at each ReLU, Kaiming keeps
    it. Each verdict weighs the observation against the theory and its finite-width noise.
    Overflow and underflow are reported, never crashed on; the exit code is 0.

    Examples:

    \b
        fnd init-sweep --scheme kaiming --depth 50
        fnd init-sweep --scheme all --act linear --act relu --seeds 5 --plot
        fnd init-sweep --config configs/book.toml --backward
    """
    positive_finite(scale, "--scale")
    positive_finite(lsuv_tol, "--lsuv-tol")
    if not (math.isfinite(leak) and 0 <= leak < 1):
        raise typer.BadParameter(f"must be in [0, 1), got {leak}", param_hint="'--leak'")
    if seed + seeds - 1 > SEED_MAX:
        raise typer.BadParameter(f"seeds {seed} to {seed + seeds - 1} run past 2^64 - 1", param_hint="'--seed'")
    names = [s.value for s in scheme] if scheme else ["all"]
    schemes = tuple(dict.fromkeys(s for n in names for s in (SCHEMES if n == "all" else [resolve_scheme_name(n)])))
    acts = tuple(dict.fromkeys(a.value for a in act)) if act else DEFAULTS.acts
    cfg = SweepConfig(schemes=schemes, acts=acts, depth=depth, width=width, batch=batch, seeds=seeds, seed=seed,
                      dtype=dtype.value, scale=scale, leak=leak, mode=mode.value, lsuv_tol=lsuv_tol,
                      backward=backward, heatmap=plot)
    check_memory(sweep_bytes(cfg), "cpu", f"init-sweep at width {width}, depth {depth}, batch {batch}",
                 "--width, --depth, --batch or --seeds")
    run = Run(ctx, out, quiet)

    from fndcli.init.sweep import run_sweep
    from fndcli.report.plots import activation_heatmap, std_per_layer

    with run.working(f"init-sweep: {len(schemes)} scheme(s) x {len(acts)} act(s) x {seeds} seed(s)"):
        result = run_sweep(cfg)

    def write_files(files):
        files.write_csv(".csv", result.layers)
        files.write_csv("-summary.csv", result.summary)
        if plot and len(result.layers):
            files.write("-std.png", lambda p: std_per_layer(result.layers, p))
            files.write("-heatmap.png", lambda p: activation_heatmap(result.heatmap, result.heatmap_run, p))

    run.finish(write_files, 130 if result.interrupted else (1 if result.error else 0),
               {"scheme": list(schemes), "act": list(acts)}, error=result.error,
               interrupted=result.interrupted, device="cpu", dtype=cfg.dtype, seed=seed)
