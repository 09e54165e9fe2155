"""`fnd gradcheck`: hand-written gradients against autograd and finite differences (core:
`fndcli.backprop.gradcheck`)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import (
    INIT_HELP,
    DbOption,
    DeviceName,
    InitName,
    LossName,
    ModelDtype,
    NoHistoryOption,
    OutOption,
    QuietOption,
    SeedOption,
    check_devices,
    check_memory,
    config_option,
    load_user_class,
    tolerance,
)
from fndcli.cli.runs import Run
from fndcli.memory import gradcheck_bytes
from fndcli.names import LOSSES, listing, resolve_scheme_name
from fndcli.settings import MODEL_TOLERANCES, GradcheckConfig

DEFAULTS = GradcheckConfig()


@command("gradcheck", "Hand-written gradients against autograd and finite differences.")
def gradcheck(
    ctx: typer.Context,
    batch: Annotated[
        int, typer.Option("--batch", min=1, metavar="N", help="Rows of the input batch.")
    ] = DEFAULTS.batch,
    n_in: Annotated[int, typer.Option("--n-in", min=1, metavar="N", help="Input features.")] = DEFAULTS.n_in,
    hidden: Annotated[
        Optional[list[int]],
        typer.Option(
            "--hidden",
            min=1,
            metavar="N",
            help="Hidden layer width; repeat for depth. Default: the chapter's 50.",
        ),
    ] = None,
    n_out: Annotated[
        int, typer.Option("--n-out", min=1, metavar="N", help="Outputs (classes for cross-entropy).")
    ] = DEFAULTS.n_out,
    loss: Annotated[LossName, typer.Option("--loss", metavar="NAME", help=f"{listing(LOSSES)}.")] = LossName(
        DEFAULTS.loss
    ),
    dtype: Annotated[
        ModelDtype, typer.Option("--dtype", help="Element type of the model and data.")
    ] = ModelDtype(DEFAULTS.dtype),
    init: Annotated[InitName, typer.Option("--init", metavar="NAME", help=INIT_HELP)] = InitName(
        DEFAULTS.init
    ),
    seed: SeedOption = DEFAULTS.seed,
    rtol: Annotated[
        Optional[float],
        typer.Option(
            "--rtol",
            metavar="X",
            help=f"Relative tolerance, max|diff| / max|ref|. Default: {MODEL_TOLERANCES['float32']:g} "
            f"(float32), {MODEL_TOLERANCES['float64']:g} (float64).",
        ),
    ] = None,
    atol: Annotated[
        float, typer.Option("--atol", metavar="X", help="Absolute tolerance added to rtol * max|ref|.")
    ] = DEFAULTS.atol,
    device: Annotated[
        DeviceName,
        typer.Option(
            "--device", help="Where the autograd comparison runs; finite differences stay on the CPU."
        ),
    ] = DeviceName.cpu,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            metavar="FILE.py:NAME",
            help="Check your own model class instead of fnd's: built as NAME(w1, b1, "
            "w2, b2, ...), loss = model(x, targ), model.backward() stores .g on x "
            "and every tensor. Loading a file runs its code; @REV: as it was at git revision REV.",
        ),
    ] = None,
    layer: Annotated[
        Optional[str],
        typer.Option(
            "--layer",
            metavar="FILE.py:NAME",
            help="Check one of your layer classes: Lin-like NAME(w, b) or "
            "parameter-free NAME(), called on (inp) or, a loss, (inp, targ); "
            "backward() reads out.g and stores .g.",
        ),
    ] = None,
    config: config_option("gradcheck") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Check the hand-written gradients against torch autograd and finite differences; exit 1 on a mismatch.

    The model is the chapter's: Linear -> ReLU -> Linear, 200x100 -> 50 -> 1 with MSE by
    default. Every gradient (input, each weight and bias, each intermediate activation) is
    compared with autograd on the same values; each hand-written layer, a small float64 copy
    of the model and the chapter's MyRelu go through torch.autograd.gradcheck.

    Examples:

    \b
        fnd gradcheck
        fnd gradcheck --hidden 128 --hidden 64 --n-out 10 --loss cross-entropy --batch 1
        fnd gradcheck --dtype float64 --config configs/ci.toml
        fnd gradcheck --model examples/chapter_model.py:Model
        fnd gradcheck --layer examples/chapter_model.py:Lin
    """
    tolerance(rtol, "--rtol")
    tolerance(atol, "--atol")
    check_devices([device.value])
    if loss.value == "cross-entropy" and n_out < 2:
        raise typer.BadParameter(
            f"cross-entropy needs 2 or more classes, got {n_out}", param_hint="'--n-out'"
        )
    if model and layer:
        raise typer.BadParameter("give --model or --layer, not both", param_hint="'--layer'")
    cfg = GradcheckConfig(
        batch=batch,
        n_in=n_in,
        hidden=tuple(hidden) if hidden else DEFAULTS.hidden,
        n_out=n_out,
        loss=loss.value,
        dtype=dtype.value,
        seed=seed,
        init=resolve_scheme_name(init.value),
        rtol=rtol,
        atol=atol,
        device=device.value,
        model=model,
        layer=layer,
    )
    load_user_class(model, "--model", cfg.sizes, cfg.dtype)
    load_user_class(layer, "--layer", cfg.sizes, cfg.dtype)
    check_memory(
        gradcheck_bytes(cfg),
        cfg.device,
        f"gradcheck of {batch} x {' -> '.join(map(str, cfg.sizes))}",
        "--batch, --n-in or --hidden",
    )
    run = Run(ctx, out, quiet)

    from fndcli import userref
    from fndcli.backprop.gradcheck import run_gradcheck
    from fndcli.backprop.harness import FD_ATOL, FD_EPS, FD_RTOL

    with run.working("gradcheck"):
        result = run_gradcheck(cfg)
    failed = not result.rows["passed"].astype(bool).all()
    run.finish(
        lambda files: files.write_csv(".csv", result.rows),
        130 if result.interrupted else (1 if failed or result.error else 0),
        {"hidden": list(cfg.hidden), "rtol": cfg.tolerance, "init": cfg.init},
        error=result.error,
        interrupted=result.interrupted,
        after=[f"\n{what}\n{text}" for what, text in result.tracebacks.items() if text],
        device=cfg.device,
        dtype=cfg.dtype,
        seed=seed,
        rtol=cfg.tolerance,
        atol=cfg.atol,
        fd_rtol=FD_RTOL,
        fd_atol=FD_ATOL,
        fd_eps=FD_EPS,
        user_code_changed=userref.changes(),
        user_code_revisions=userref.revisions([cfg.model, cfg.layer]),
    )
