"""`--config FILE.toml`: the command's table of a TOML file, validated, as option defaults.

Config layering (nanoGPT's): the option defaults in code (`fndcli.settings`) < the command's
table in `--config FILE.toml` < flags on the command line. `--config` is an eager option
whose callback validates the table and installs it as click's `default_map`, so click itself
lets a flag win over the file, converts values and enforces ranges and choices.
"""
import tomllib
import typing
from pathlib import Path

import typer
from typer import _click as click
from typer.core import TyperOption

from fndcli.cli.app import clean


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
            raise typer.BadParameter(f"{where}: [{command.name}] {key}: {clean(e.message)}")
        default_map[param.name] = value
    return default_map


def config_callback(ctx: typer.Context, value):
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **load_config_table(value, ctx.command, ctx)}
    return value
