"""What every fnd command shares: one-line errors, `--config` layering, `--out`, the console.

Config layering (nanoGPT's): the option defaults in code < the command's table in
`--config FILE.toml` < flags on the command line. `--config` is an eager option whose
callback validates the table and installs it as click's `default_map`, so click itself
lets a flag win over the file, converts values and enforces ranges and choices.
"""
import contextlib
import sys
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import _click as click  # Typer ships its own click; the real `click` is not its
from rich.console import Console
from typer.core import TyperGroup, TyperOption


class OneLineErrorGroup(TyperGroup):
    """Usage errors print one line on stderr, `Error: ...`, and exit 2; no panel, no traceback."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()
            sys.exit(0)
        except click.ClickException as e:
            message = _clean(e.format_message())
            click.echo(f"Error: {message}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _clean(message):
    """One line, without the 'Value error, ' that Typer's coercion puts before a parser's message."""
    return " ".join(message.replace("Value error, ", "").split())


def _check_type(param, value):
    """Does a TOML value have the type the option takes? None if it does, else the type wanted."""
    kind = param.type_descriptor.annotation
    if param.multiple:
        kind = typing.get_args(kind)[0]
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if kind is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    return None if isinstance(value, str) else "a string"


def _option_key(param):
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return (longs[0] if longs else param.opts[0]).lstrip("-")


def load_config_table(path, command, ctx):
    """The `[command]` table of a TOML file as a click default_map, validated against the command's options."""
    where = f"config {str(path)!r}"
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise typer.BadParameter(f"cannot read {where}: {e.strerror or e}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise typer.BadParameter(f"{where} is not valid TOML: {e}")
    table = data.get(command.name, {})
    if not isinstance(table, dict):
        raise typer.BadParameter(f"{where}: [{command.name}] must be a table")
    params = {_option_key(p): p for p in command.params if isinstance(p, TyperOption) and p.name != "config"}
    default_map = {}
    for key, value in table.items():
        param = params.get(key.replace("_", "-"))
        if param is None:
            raise typer.BadParameter(
                f"{where}: unknown key {key!r} in [{command.name}]; known keys: {', '.join(sorted(params))}")
        values = value if param.multiple else [value]
        if param.multiple and not isinstance(value, list):
            raise typer.BadParameter(f"{where}: [{command.name}] {key} must be a list")
        for item in values:
            wanted = _check_type(param, item)
            if wanted:
                raise typer.BadParameter(f"{where}: [{command.name}] {key} must be {wanted}, got {item!r}")
        try:
            param.process_value(ctx, value)  # typer's own coercion: choices, ranges, parsers
        except click.exceptions.BadParameter as e:
            raise typer.BadParameter(f"{where}: [{command.name}] {key}: {_clean(e.message)}")
        default_map[param.name] = value
    return default_map


def _config_callback(ctx: typer.Context, value: Optional[Path]):
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **load_config_table(value, ctx.command, ctx)}
    return value


ConfigOption = Annotated[Optional[Path], typer.Option(
    "--config", is_eager=True, callback=_config_callback, metavar="FILE.toml",
    help="TOML file whose [<command>] table sets option defaults; flags on the command line win.")]
OutOption = Annotated[Path, typer.Option(
    "--out", metavar="DIR", help="Directory for the CSV, its JSON sidecar and other outputs.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the paths written.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed; runs are reproducible.")]


def console():
    """stdout for people: rich decides colour (none when not a terminal or NO_COLOR is set)."""
    con = Console(highlight=False)
    if not con.is_terminal:
        con = Console(highlight=False, width=200)
    return con


class _NoStatus:
    def update(self, message):
        pass


@contextlib.contextmanager
def status(con, quiet):
    """A spinner with a message for a terminal; nothing when quiet or not a terminal."""
    if quiet or not con.is_terminal:
        yield _NoStatus()
    else:
        with con.status("") as live:
            yield live


@contextlib.contextmanager
def progress(con, quiet, total, description):
    """A rich progress bar for a terminal; advance() is a no-op when quiet or not a terminal."""
    if quiet or not con.is_terminal:
        yield lambda *args: None
        return
    from rich.progress import Progress

    with Progress(console=con, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda *args: bar.advance(task)


def effective_config(ctx, **resolved):
    """The options a run actually used, keyed as in a config file, for the sidecar.

    `resolved` replaces option values the command filled in itself (e.g. impl=all).
    """
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return getattr(v, "value", v)  # Enum -> its value
    values = {**ctx.params, **resolved}
    return {name.replace("_", "-"): plain(v) for name, v in values.items() if name not in ("quiet", "config")}


def fail(message, code=2):
    """One line on stderr and the exit code; for errors found inside a command body."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)
