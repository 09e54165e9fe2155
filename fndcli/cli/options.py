"""Options and checks that several commands share, and the registries' choices, all torch-free.

Choices come from `fndcli.names`, so Typer validates them and `--help` lists them with their
one-line summaries, without importing the code behind them.
"""

import math
import re
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import _click as click

from fndcli import memory
from fndcli.cli.config import config_callback
from fndcli.names import ACTS, ALIASES, DEVICES, DTYPES, IMPL_SPECS, LABELS, LOSSES, SCHEMES, TASKS, listing

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes 0 ... 2^64 - 1


def choices(name, keys):
    """An Enum of a registry's names, so Typer validates them and --help lists them."""
    return Enum(name, {k: k for k in keys}, type=str)


BenchDtype = choices("BenchDtype", DTYPES)
ModelDtype = choices("ModelDtype", ["float32", "float64"])
DeviceName = choices("DeviceName", DEVICES)
SweepDim = choices("SweepDim", ["all", "m", "k", "n"])
SchemeName = choices("SchemeName", [*SCHEMES, *ALIASES, "all", "keep"])
InitName = choices("InitName", [*SCHEMES, *ALIASES])
ActName = choices("ActName", ACTS)
FanMode = choices("FanMode", ["fan_in", "fan_out"])
LossName = choices("LossName", LOSSES)
TaskName = choices("TaskName", TASKS)
LabelSource = choices("LabelSource", LABELS)

IMPL_HELP = listing({name: spec.summary for name, spec in IMPL_SPECS.items()})
SCHEME_HELP = listing(SCHEMES)
INIT_HELP = (
    f"Init scheme from init-sweep's registry: {', '.join(SCHEMES)}; "
    f"{', '.join(f'{alias} = {name}' for alias, name in ALIASES.items())}."
)


def config_option(command):
    """--config, whose help names the command's own table."""
    return Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            is_eager=True,
            callback=config_callback,
            metavar="FILE.toml",
            help=f"TOML file whose [{command}] table sets option defaults; flags on the command line win.",
        ),
    ]


def named_directory(value):
    """--out '' (history's --html '') would write into the current directory unasked (Path('') is '.'): a
    directory must be named."""
    if value is not None and not str(value).strip():
        raise typer.BadParameter("is empty: name a directory ('.' for this one)")
    return value


OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        metavar="DIR",
        parser=named_directory,
        help="Directory for the CSV, its JSON sidecar and other outputs.",
    ),
]


def refuse_given(ctx, names, why):
    """Exit 2 for an option given on the command line that this kind of run has no use for (a config file's
    value is left unused)."""
    from typer._click.core import ParameterSource

    for name in names:
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            param = next(p for p in ctx.command.params if p.name == name)
            # a flag's off switch as typed: --no-check-autograd, not the option's name
            off = param.secondary_opts and ctx.params[name] is False
            typed = param.secondary_opts[0] if off else param.opts[0]
            raise typer.BadParameter(why, param_hint=f"'{typed}'")


# --format of the commands that print a document (compare, history): a table for people, or md, csv, json
Format = choices("Format", ["table", "md", "csv", "json"])

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the paths written.")]

DbOption = Annotated[
    Optional[str],
    typer.Option(
        "--db",
        metavar="URL",
        envvar="FND_DB",
        help="The history store this run is added to, as SQLAlchemy spells it: sqlite:///PATH/TO/FILE or "
        "postgresql://USER@HOST/DB (?host=/SOCKET/DIR). Default: $FND_DB, else "
        "$XDG_DATA_HOME/fnd/history.db (~/.local/share/fnd/history.db).",
    ),
]
NoHistoryOption = Annotated[
    bool, typer.Option("--no-history", help="Add nothing to the history store (docs/history.md).")
]


def _seed_in_range(value):
    if not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(f"{value} is outside 0 to 2^64 - 1, the seeds torch takes")
    return value


SeedOption = Annotated[
    int,
    typer.Option(
        "--seed",
        callback=_seed_in_range,
        metavar="N",
        help="Random seed, 0 to 2^64 - 1; runs are reproducible.",
    ),
]


def positive_finite(value, option):
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive finite number, got {value}", param_hint=f"'{option}'")


def tolerance(value, option):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"must be a finite number >= 0, got {value}", param_hint=f"'{option}'")


def check_devices(devices):
    """--device cuda needs CUDA; the message names the alternative. torch loads only when cuda is asked
    for."""
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter(
                "CUDA is not available on this machine; use --device cpu", param_hint="'--device'"
            )


def check_memory(need, device, what, option):
    """Refuse (exit 2) a run whose estimated memory exceeds what the device has free, before any work."""
    try:
        memory.check(need, device, what, option)
    except memory.NotEnoughMemory as e:
        raise click.exceptions.UsageError(f"not enough memory: {e}")


def load_user_class(reference, option, sizes, dtype):
    """Load the class a --model or --layer names (fndcli.backprop.usermodel's protocol) and build it once,
    from zero tensors of the run's `sizes` and `dtype`, as the run will; a bad one is exit 2, before any work.
    torch loads only when one is given."""
    if reference is None:
        return
    from fndcli import userref
    from fndcli.backprop import usermodel

    try:
        cls = usermodel.load_class(reference)
        if option == "--layer":
            usermodel.check_layer(cls, sizes[0], sizes[1], dtype)
        else:
            usermodel.check_model(cls, sizes, dtype)
    except (userref.RefError, userref.UserCodeError) as e:
        raise typer.BadParameter(str(e), param_hint=f"'{option}'")


def fingerprint(text):
    """--machine: 16 hex digits, as the store's machines.fingerprint holds them (any case)."""
    if not re.fullmatch(r"[0-9a-fA-F]{16}", text):
        raise typer.BadParameter(
            f"{text!r} is not a machine fingerprint: 16 hex digits, as `fnd history` prints"
        )
    return text.lower()


def utc_since(text):
    """--since as UTC ISO text, which the store's commit times sort against."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date: give 2026-01-31 or 2026-01-31T12:00", param_hint="'--since'"
        )
    return (when.astimezone(timezone.utc) if when.tzinfo else when).replace(tzinfo=None).isoformat()
