"""What every command does with a run: the console, progress, the files written and the sidecar.

Layout of a run's files and why they are written the way they are: `fndcli.runs.files`.
"""
import contextlib
from pathlib import Path

import typer


def console():
    """stdout for people: rich decides colour (none when not a terminal or NO_COLOR is set)."""
    from rich.console import Console  # here, not at start-up: a usage error needs no rich

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


def out_dir(out):
    """--out, created and proven writable before any work; exit 2 if it cannot be."""
    from fndcli.runs.files import OutputDirError, check_out_dir

    try:
        return check_out_dir(out)
    except OutputDirError as e:
        raise typer.BadParameter(str(e), param_hint="'--out'")


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


def save_run(ctx, out, started, write_files, resolved, **meta):
    """Write a run's own files with write_files(files), then the JSON sidecar; return every path.

    `resolved`: option values the command filled in (defaults such as 'all'), for the sidecar.
    """
    from fndcli.runs.files import RunFiles, run_metadata

    files = RunFiles(out, ctx.command.name, started)
    write_files(files)
    config_file = ctx.params.get("config")
    files.write_json(".json", run_metadata(ctx.command.name, effective_config(ctx, **resolved), started,
                                           config_file=str(config_file) if config_file else None,
                                           files=[p.name for p in files.written], **meta))
    return files.written


def print_paths(con, paths):
    for path in paths:
        con.print(str(path), markup=False, soft_wrap=True)


def error_line(message):
    """One line on stderr, `Error: ...`, for a failure found after the work started (exit 1)."""
    typer.echo(f"Error: {message}", err=True)
