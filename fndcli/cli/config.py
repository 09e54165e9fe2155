"""`--config FILE.toml`: the command's table of a TOML file, validated, as option defaults.

Config layering (nanoGPT's): the option defaults in code (`fndcli.settings`) < the command's
table in `--config FILE.toml` < flags on the command line. `--config` is an eager option
whose callback validates the table and installs it as click's `default_map`, so click itself
lets a flag win over the file, converts values and enforces ranges and choices.

One file may hold a table for each command that takes --config (configs/book.toml does); a
table of any other name is a misspelling, an error. A value the command itself rejects later
(`[train] lr = -1`) is blamed on the file and key it came from.
"""

import difflib
import json
import tomllib
import typing
from pathlib import Path

import typer
from typer import _click as click
from typer._click.core import ParameterSource
from typer.core import TyperOption

from fndcli.cli.errors import clean, value_message


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


def _where(path):
    return f"config {str(path)!r}"


def _did_you_mean(name, known, spell):
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {spell(close[0])}?)" if close else ""


def command_tables(ctx):
    """The tables a config file may hold: one for each of the app's commands that takes --config."""
    group = ctx.parent.command if ctx.parent else None
    commands = list(group.commands.values()) if hasattr(group, "commands") else [ctx.command]
    return sorted(c.name for c in commands if any(p.name == "config" for p in c.params))


def load_config_table(path, command, ctx):
    """The `[command]` table of a TOML file as a click default_map, validated against the command's options;
    a table named after no command is an error too."""
    where = _where(path)
    if Path(path).is_dir():
        raise typer.BadParameter(f"{where} is a directory, not a TOML file")
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise typer.BadParameter(f"cannot read {where}: {e.strerror or e}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise typer.BadParameter(f"{where} is not valid TOML: {e}")
    tables = command_tables(ctx)
    listed = ", ".join(f"[{t}]" for t in tables)
    for name, value in data.items():
        if name in tables and not isinstance(value, dict):
            raise typer.BadParameter(f"{where}: [{name}] must be a table")
        if not isinstance(value, dict):
            raise typer.BadParameter(
                f"{where}: {name!r} is outside any table; option defaults go in a command's table: {listed}"
            )
        if name not in tables:
            raise typer.BadParameter(
                f"{where}: unknown table [{name}]"
                f"{_did_you_mean(name, tables, lambda t: f'[{t}]')}; known tables: {listed}"
            )
    group = ctx.parent.command if ctx.parent else None
    for (
        name
    ) in data:  # every table of the file, so a shared file's mistakes surface whichever command reads it
        other = group.commands[name] if hasattr(group, "commands") and name in group.commands else command
        if other is not command:
            _table_map(where, other, data[name], ctx, coerce=False)
    return _table_map(where, command, data.get(command.name, {}), ctx, coerce=True)


def _table_map(where, command, table, ctx, coerce):
    """The default_map of `command`'s table: unknown keys, a key spelt twice, wrong TOML types and empty lists
    refused; with `coerce`, Typer's own checks too (choices, ranges, parsers: only for the command that runs,
    whose callbacks may load the user's code)."""
    params = {_option_key(p): p for p in command.params if isinstance(p, TyperOption) and p.name != "config"}
    default_map, given = {}, {}
    for key, value in table.items():
        param = params.get(key.replace("_", "-"))
        if param is None:
            raise typer.BadParameter(
                f"{where}: unknown key {key!r} in [{command.name}]{_did_you_mean(key, list(params), repr)}; "
                f"known keys: {', '.join(sorted(params))}"
            )
        if param.name in default_map:  # max-seconds and max_seconds both
            raise typer.BadParameter(
                f"{where}: [{command.name}] sets {_option_key(param)} twice ({key!r} and "
                f"{given[param.name]!r}); keep one"
            )
        given[param.name] = key
        values = value if param.multiple else [value]
        if param.multiple and not isinstance(value, list):
            raise typer.BadParameter(f"{where}: [{command.name}] {key} must be a list")
        if param.multiple and not value:
            raise typer.BadParameter(
                f"{where}: [{command.name}] {key} is an empty list; leave the key out for the default"
            )
        for item in values:
            wanted = _check_type(param, item)
            if wanted:
                raise typer.BadParameter(
                    f"{where}: [{command.name}] {key} must be {wanted}, got {_toml(item)}"
                )
        if coerce:
            try:
                param.process_value(ctx, value)  # typer's own coercion: choices, ranges, parsers
            except click.exceptions.BadParameter as e:
                raise typer.BadParameter(f"{where}: [{command.name}] {key}: {clean(value_message(e))}")
        default_map[param.name] = value
    return default_map


def blame_config(error):
    """A BadParameter the command raised about a value that came from --config's table, reworded to name the
    file and the key (`[train] lr = -1`); any other error as it is."""
    ctx, hint = error.ctx, error.param_hint
    if ctx is None or not ctx.params.get("config"):
        return error
    param = error.param or next(
        (
            p
            for p in ctx.command.params
            if isinstance(hint, str) and hint.strip("'") in getattr(p, "opts", ())
        ),
        None,
    )
    if param is None or ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT_MAP:
        return error
    return typer.BadParameter(
        f"{_where(ctx.params['config'])}: [{ctx.command.name}] {_option_key(param)}: {error.message}",
        ctx=ctx,
        param_hint="'--config'",
    )


def config_callback(ctx: typer.Context, value):
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **load_config_table(value, ctx.command, ctx)}
    return value


def _toml(value):
    """A value as the file spells it (true, "x", [1, 2]), not as Python prints it (True, 'x')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value) if isinstance(value, str) else str(value)
