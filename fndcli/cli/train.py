"""`fnd train`: the hand-written model trained from scratch beside an autograd twin (core:
`fndcli.backprop.train`)."""

import math
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import (
    INIT_HELP,
    DbOption,
    DeviceName,
    InitName,
    LabelSource,
    ModelDtype,
    NoHistoryOption,
    OutOption,
    QuietOption,
    SeedOption,
    TaskName,
    check_devices,
    check_memory,
    choices,
    config_option,
    load_user_class,
    positive_finite,
    refuse_given,
    tolerance,
)
from fndcli.cli.runs import Run, progress
from fndcli.memory import train_bytes
from fndcli.names import LABELS, TASKS, listing, resolve_scheme_name
from fndcli.settings import TRAIN_TOLERANCES, TrainConfig, n_valid

DEFAULTS = TrainConfig()
WIDTHS_SEEDS = 3  # --widths without --seeds: a growth per doubling is judged against its seeds' spread
ParamName = choices("ParamName", ["sp", "mup"])  # --widths' parametrisations (fndcli.backprop.widths)
HiddenAct = choices("HiddenAct", ["relu", "tanh"])  # fndcli.backprop.model.ACTIVATIONS


@command("train", "Train the hand-written model beside an autograd twin.")
def train_command(
    ctx: typer.Context,
    task: Annotated[TaskName, typer.Option("--task", metavar="NAME", help=f"{listing(TASKS)}.")] = TaskName(
        DEFAULTS.task
    ),
    samples: Annotated[
        int, typer.Option("--samples", min=2, metavar="N", help="Synthetic examples, before the split.")
    ] = DEFAULTS.samples,
    valid_frac: Annotated[
        float, typer.Option("--valid-frac", metavar="X", help="Fraction held out for validation.")
    ] = DEFAULTS.valid_frac,
    n_in: Annotated[int, typer.Option("--n-in", min=1, metavar="N", help="Input features.")] = DEFAULTS.n_in,
    hidden: Annotated[
        Optional[list[int]],
        typer.Option(
            "--hidden",
            min=0,
            metavar="N",
            help="Hidden layer width; repeat for depth; 0 alone: none (a linear model). Default: the "
            "chapter's 50.",
        ),
    ] = None,
    n_out: Annotated[
        int, typer.Option("--n-out", min=1, metavar="N", help="Regression outputs.")
    ] = DEFAULTS.n_out,
    classes: Annotated[
        int, typer.Option("--classes", min=2, metavar="N", help="Classification classes.")
    ] = DEFAULTS.classes,
    labels: Annotated[
        LabelSource,
        typer.Option("--labels", metavar="NAME", help=f"Classification labels. {listing(LABELS)}."),
    ] = LabelSource(DEFAULTS.labels),
    noise: Annotated[
        float, typer.Option("--noise", metavar="X", help="Std of the noise added to the regression teacher.")
    ] = DEFAULTS.noise,
    act: Annotated[
        HiddenAct,
        typer.Option("--act", help="The hidden layers' activation (tanh: --stats measures its saturation)."),
    ] = HiddenAct(DEFAULTS.act),
    init: Annotated[InitName, typer.Option("--init", metavar="NAME", help=INIT_HELP)] = InitName(
        DEFAULTS.init
    ),
    lr: Annotated[float, typer.Option("--lr", metavar="X", help="Learning rate.")] = DEFAULTS.lr,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, metavar="N", help="Passes over the training set.")
    ] = DEFAULTS.epochs,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, metavar="N", help="Examples per SGD step.")
    ] = DEFAULTS.batch_size,
    momentum: Annotated[
        float, typer.Option("--momentum", metavar="X", help="SGD momentum, as torch.optim.SGD's (0: none).")
    ] = DEFAULTS.momentum,
    dtype: Annotated[
        ModelDtype, typer.Option("--dtype", help="Element type of the model and data.")
    ] = ModelDtype(DEFAULTS.dtype),
    seed: SeedOption = DEFAULTS.seed,
    check_autograd: Annotated[
        bool,
        typer.Option(
            "--check-autograd/--no-check-autograd", help="Train an autograd twin in lockstep and compare."
        ),
    ] = DEFAULTS.check_autograd,
    rtol: Annotated[
        Optional[float],
        typer.Option(
            "--rtol",
            metavar="X",
            help=f"Relative tolerance against the twin. Default: {TRAIN_TOLERANCES['float32']:g} (float32), "
            f"{TRAIN_TOLERANCES['float64']:g} (float64).",
        ),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot",
            help="Write a PNG of the loss curves, hand-written and autograd; with --stats, one of the "
            "layers' dynamics too.",
        ),
    ] = False,
    stats: Annotated[
        Optional[int],
        typer.Option(
            "--stats",
            min=1,
            metavar="N",
            help="Every N steps, each layer's activation and gradient statistics and each parameter's "
            "grad:data and update:data, into -stats.csv, and the findings they show (docs/train.md).",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds",
            min=1,
            metavar="N",
            help="With --stats (default 1) or --widths (default 3): N seeds, consecutive from --seed (the "
            "twin runs with the first). A finding is said only when every seed shows it, and a growth with "
            "the width only beyond its seeds' spread; else 'cannot tell'.",
        ),
    ] = None,
    lr_find: Annotated[
        bool,
        typer.Option(
            "--lr-find",
            help="Instead of training: fastai's learning-rate finder, 1e-7 to 10 over 100 steps, stopped "
            "when the smoothed loss passes 4x its best; the suggested rate (valley). --hidden 0: a linear "
            "model.",
        ),
    ] = False,
    widths: Annotated[
        Optional[str],
        typer.Option(
            "--widths",
            metavar="N,N,...",
            help="Instead of training: mup's coordinate check, a model per width (each --hidden layer that "
            "wide), a few steps each; whether activations and updates grow with the width, per doubling.",
        ),
    ] = None,
    param: Annotated[
        ParamName,
        typer.Option(
            "--param", help="With --widths: sp (one rate) or mup (the rates and output init muP scales)."
        ),
    ] = ParamName.sp,
    device: Annotated[
        DeviceName, typer.Option("--device", help="cpu or cuda, for both models.")
    ] = DeviceName.cpu,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            metavar="FILE.py:NAME",
            help="Train your own model class instead of fnd's: NAME(w1, b1, w2, b2, "
            "...), loss = model(x, targ), model.backward() stores .g; its twin "
            "runs your forward under autograd. Loading a file runs its code; @REV: as it "
            "was at git revision REV.",
        ),
    ] = None,
    config: config_option("train") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Train the hand-written model on synthetic data with SGD from scratch, in lockstep with an autograd
    twin.

    Exit 1 if the twin's losses or final parameters differ beyond --rtol, or if training
    diverges (a non-finite loss).

    Examples:

    \b
        fnd train
        fnd train --task classification --classes 5 --hidden 64 --hidden 32 --epochs 30
        fnd train --lr 0.01 --momentum 0.9 --no-check-autograd --plot
        fnd train --model examples/chapter_model.py:Model
        fnd train --hidden 64 --hidden 64 --hidden 64 --lr 0.1 --stats 1 --seeds 3 --plot
        fnd train --hidden 0 --lr-find --plot
        fnd train --widths 64,128,256 --param mup --plot
    """
    check_devices([device.value])
    _check(lr, rtol, noise, momentum, valid_frac, samples, batch_size)
    other = "classification" if task.value == "regression" else "regression"
    refuse_given(
        ctx, ("classes", "labels") if other == "classification" else ("n_out",), f"is for --task {other}"
    )
    refuse_given(ctx, () if stats or widths else ("seeds",), "is for --stats or --widths")
    refuse_given(ctx, ("act",) if model else (), "is for fnd's model: --model's class has its own")
    refuse_given(ctx, ("lr", "epochs", "stats", "check_autograd") if lr_find else (), "is not for --lr-find")
    width_list = _widths(ctx, widths, hidden)
    cfg = TrainConfig(
        task=task.value,
        samples=samples,
        valid_frac=valid_frac,
        n_in=n_in,
        hidden=_hidden(hidden),
        n_out=n_out,
        classes=classes,
        labels=labels.value,
        noise=noise,
        init=resolve_scheme_name(init.value),
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        momentum=momentum,
        dtype=dtype.value,
        seed=seed,
        check_autograd=check_autograd,
        rtol=rtol,
        device=device.value,
        model=model,
        act=act.value,
    )
    load_user_class(model, "--model", cfg.sizes, cfg.dtype)
    widest = (
        replace(cfg, hidden=(width_list[-1],) * len(cfg.hidden)) if width_list else cfg
    )  # --widths' largest
    check_memory(
        train_bytes(widest),
        cfg.device,
        f"train on {samples} x {' -> '.join(map(str, widest.sizes))}",
        "--samples, --n-in, --hidden or --widths",
    )
    run = Run(ctx, out, quiet)
    if width_list:
        from fndcli.cli.train_modes import widths_run

        widths_run(run, cfg, width_list, param.value, seeds or WIDTHS_SEEDS, plot, quiet)
    if lr_find:
        from fndcli.cli.train_modes import lr_find_run

        lr_find_run(run, cfg, plot, quiet)

    from fndcli import userref

    with progress(run.con, quiet, epochs + 1, "training") as advance:
        result, dynamics = _train(cfg, stats, seeds or 1, advance)
    failures = _failures(cfg, result, check_autograd)
    loss, param = result.loss_diff, result.param_diff  # None without a twin
    run.finish(
        lambda files: _write(files, result.history, dynamics, plot),
        130 if result.interrupted else (1 if failures or result.error else 0),
        {"hidden": list(cfg.hidden), "rtol": cfg.tolerance, "init": cfg.init},
        result.error,
        failures,
        after=[result.user_traceback] if result.user_traceback else [],
        interrupted=result.interrupted,
        device=cfg.device,
        dtype=cfg.dtype,
        seed=seed,
        manual_step_s=result.manual_step_s,
        autograd_step_s=result.autograd_step_s,
        steps=result.steps,
        baseline_metric=result.baseline_metric,
        baseline="the majority class" if cfg.task == "classification" else "the training mean",
        diverged_epoch=result.diverged_epoch,
        max_rel_loss_diff=loss and loss.rel_diff,
        max_rel_loss_diff_at=loss and loss.where,
        max_rel_param_diff=param and param.rel_diff,
        max_rel_param_diff_at=param and param.where,
        user_code_changed=userref.changes(),
        user_code_revisions=userref.revisions([cfg.model]),
        seeds_trained=dynamics and int(dynamics.stats["seed"].nunique()),
    )


def _train(cfg, stats, seeds, advance):
    """(the run's TrainResult, and with --stats its Dynamics: every seed's statistics and the findings)."""
    if not stats:
        from fndcli.backprop.train import train

        return train(cfg, on_epoch=advance), None
    from fndcli.backprop.dynamics import train_observed

    dynamics = train_observed(cfg, stats, seeds, on_epoch=advance)
    return dynamics.result, dynamics


def _write(files, history, dynamics, plot):
    """The epochs' CSV, with --stats the statistics and the findings, with --plot their pictures."""
    from fndcli.report.plots import loss_curves

    files.write_csv(".csv", history)
    if dynamics:
        files.write_csv("-stats.csv", dynamics.stats)
        files.write_csv("-findings.csv", dynamics.findings)
    if plot:
        files.write("-loss.png", lambda p: loss_curves(history, p))
    if plot and dynamics:
        from fndcli.report.train_plots import dynamics as dynamics_plot

        files.write("-stats.png", lambda p: dynamics_plot(dynamics.stats, p))


def _widths(ctx, widths, hidden):
    """--widths as a list of two or more distinct positive widths, increasing; None without it. Refuses the
    options a coordinate check has no use for."""
    if widths is None:
        refuse_given(ctx, ("param",), "is for --widths")
        return None
    refuse_given(
        ctx, ("lr_find", "stats", "epochs", "momentum", "check_autograd", "model"), "is not for --widths"
    )
    try:
        values = [int(w) for w in widths.split(",")]
    except ValueError:
        values = []
    if hidden == [0]:
        raise typer.BadParameter("a linear model (--hidden 0) has no width to vary", param_hint="'--widths'")
    if len(values) < 2 or min(values) < 1 or values != sorted(set(values)):
        raise typer.BadParameter(
            f"{widths!r} is not two or more increasing positive widths, as 64,128,256",
            param_hint="'--widths'",
        )
    return values


def _hidden(hidden):
    """--hidden's widths; `--hidden 0` alone: no hidden layer, a linear model."""
    if not hidden:
        return DEFAULTS.hidden
    if 0 in hidden and hidden != [0]:
        raise typer.BadParameter("0 (a linear model) must be the only --hidden", param_hint="'--hidden'")
    return () if hidden == [0] else tuple(hidden)


def _check(lr, rtol, noise, momentum, valid_frac, samples, batch_size):
    """The checks Typer's ranges cannot make: finite positives, fractions, a batch the training set can
    fill."""
    positive_finite(lr, "--lr")
    tolerance(rtol, "--rtol")
    tolerance(noise, "--noise")
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        raise typer.BadParameter(f"must be in [0, 1), got {momentum}", param_hint="'--momentum'")
    if not 0 < valid_frac < 1:
        raise typer.BadParameter(f"must be between 0 and 1, got {valid_frac}", param_hint="'--valid-frac'")
    n_train = samples - n_valid(samples, valid_frac)
    if n_train < 1:
        raise typer.BadParameter(f"leaves no training examples of {samples}", param_hint="'--valid-frac'")
    if batch_size > n_train:
        raise typer.BadParameter(
            f"{batch_size} is larger than the {n_train} training examples "
            f"(--samples {samples}, --valid-frac {valid_frac})",
            param_hint="'--batch-size'",
        )


def _failures(cfg, result, check_autograd):
    """What failed in a run that finished: its twin disagreed, it diverged."""
    errors = []
    mismatch = (
        result.mismatch(cfg.tolerance)
        if check_autograd and not (result.diverged_epoch or result.error)
        else None
    )
    if mismatch:
        errors.append(
            f"the hand-written model and its autograd twin disagree: {mismatch.where} differs by "
            f"{mismatch.rel_diff:.2e} relative, beyond --rtol {cfg.tolerance:g}"
        )
    if result.diverged_epoch:
        errors.append(
            f"training diverged in epoch {result.diverged_epoch} (non-finite loss); "
            f"try a smaller --lr than {cfg.lr:g}"
        )
    return errors
