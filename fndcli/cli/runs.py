"""What every command does with a run: the console, progress, the files written and the sidecar.

Layout of a run's files and why they are written the way they are: `fndcli.runs.files`.
"""

import contextlib
from pathlib import Path

import typer
from typer import _click as click
from typer._click.core import ParameterSource


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


def out_dir(out, option="--out"):
    """A directory option (--out, history's --html), created and proven writable before any work; exit 2 if
    it cannot be."""
    from fndcli.runs.files import OutputDirError, check_out_dir

    try:
        return check_out_dir(out)
    except OutputDirError as e:
        raise typer.BadParameter(str(e), param_hint=f"'{option}'")


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
    unused = ("quiet", "config", "db", "no_history")  # how fnd ran, not what it measured
    return {name.replace("_", "-"): plain(v) for name, v in values.items() if name not in unused}


def open_history(ctx):
    """The history store, for a command that adds its runs to it and was not told --no-history, else None.
    A store that cannot be reached or written is exit 2, before any work."""
    params = ctx.params
    if "no_history" not in params:  # a command that adds nothing (fnd history reads its --db)
        return None
    if params["no_history"]:
        if params.get("db") and ctx.get_parameter_source("db") is ParameterSource.COMMANDLINE:
            raise typer.BadParameter(
                "--no-history adds nothing to a store: drop one of them", param_hint="'--db'"
            )
        return None
    from fndcli.history.store import Store, StoreError

    try:
        return Store.open(params.get("db"))
    except StoreError as e:
        raise click.exceptions.UsageError(str(e))


def measured_commit(params):
    """The git facts of the code the run measures, taken as it starts; code outside a git repository is said
    once, in the output for people (not on stderr, which holds a failing run's one Error line; not with
    --quiet), and the run is kept with its commit unknown."""
    from fndcli.history.facts import code_directory, commit_of

    directory = code_directory(params)
    commit = commit_of(directory)
    if commit.repo is None and not params.get("quiet"):
        typer.echo(
            f"Note: {directory} is not in a git repository: the history keeps this run, its commit unknown"
        )
    return commit


class Run:
    """A command's way out, written once: the console, the spinner, the files and the sidecar, the view
    printed, the error lines, the paths, the exit code.

    A command body reads its options, starts `Run(ctx, out, quiet)`, calls its core once inside
    `run.working(...)`, and ends with `run.finish(...)`, which never returns.
    """

    def __init__(self, ctx, out, quiet):
        from fndcli.machine import utc_now

        store = open_history(ctx)  # a store that cannot be written: exit 2 before --out is made
        self.ctx, self.out, self.quiet = ctx, out_dir(out), quiet
        self.history = store and (store, measured_commit(ctx.params))
        self.con = console()
        self.started = utc_now()

    def working(self, message):
        """A spinner saying what runs, for a terminal; the core's log can update it."""

        @contextlib.contextmanager
        def spinner():
            with status(self.con, self.quiet) as live:
                live.update(message)
                yield live

        return spinner()

    def finish(
        self,
        write_files,
        code,
        resolved=None,
        error=None,
        failures=(),
        after=(),
        interrupted=False,
        show=None,
        paths_to_stderr=False,
        elsewhere=(),
        **fields,
    ):
        """Write write_files(files), then the sidecar (`fields`: the kind's own, fndcli.kinds), and end
        (`end`); `elsewhere`: files the run wrote outside its directory (history's --html page), printed
        first."""
        from fndcli.runs.files import RunFiles

        files = RunFiles(self.out, self.ctx.command.name, self.started)
        try:
            write_files(files)
            files.write_json(
                ".json",
                self.sidecar([p.name for p in files.written], code, resolved, error, interrupted, **fields),
            )
        except OSError as e:  # a full disk, a quota: the run's files land together or not at all
            files.discard()
            error_line(
                f"cannot write {files.writing}: [Errno {e.errno}] {e.strerror or e}; "
                "none of this run's files were kept"
            )
            raise typer.Exit(2)
        self.end([*elsewhere, *files.written], code, error, failures, after, show, paths_to_stderr)

    def sidecar(self, files, code, resolved=None, error=None, interrupted=False, **fields):
        """The sidecar's JSON object: what ran, how it ended, where; `resolved`: options the command filled
        in."""
        from fndcli.machine import run_metadata
        from fndcli.runs.sidecar import Sidecar

        config_file = self.ctx.params.get("config")
        status = "interrupted" if interrupted else ("failed" if error else "complete")
        return Sidecar(
            self.ctx.command.name,
            effective_config(self.ctx, **(resolved or {})),
            files,
            status,
            code,
            error,
            str(config_file) if config_file else None,
            machine=run_metadata(self.started),
            own=fields,
        ).to_dict()

    def end(
        self, paths, code, error=None, failures=(), after=(), show=None, paths_to_stderr=False, sidecar=None
    ):
        """Print the run as `fnd show` prints it (or with `show(console, sidecar)`; nothing when quiet), then
        `after` (what only this run can show: the user's tracebacks), one `Error:` line for each of `failures`
        (checks that failed) and for `error` (what stopped the work), the paths (on stderr when stdout holds a
        document); exit `code`. `sidecar`: the run's, when it is not the last of `paths`. First the run is
        added to the history (`remember`): if that fails, one more `Error:` line and exit 2 (130: Ctrl-C)."""
        lost, code = self.remember(sidecar or paths[-1], code)
        if not self.quiet:
            (show or _view)(self.con, sidecar or paths[-1])
            for text in after:
                self.con.print(text.rstrip(), markup=False, soft_wrap=True)
        for message in [*failures, *([error] if error else []), *([lost] if lost else [])]:
            error_line(message)
        if paths_to_stderr and not self.quiet:
            for path in paths:
                typer.echo(str(path), err=True)
        else:
            print_paths(self.con, paths)
        raise typer.Exit(code)

    def remember(self, sidecar, code):
        """Add the run whose sidecar is `sidecar` to the history in one transaction; an interrupted run (130)
        is not added: its figures are partial. (None, code), or (the error line, the exit code) when the write
        failed: the run's files stay, and the store is as it was."""
        if self.history is None or code == 130:
            return None, code
        from fndcli.history.entry import entry_of
        from fndcli.history.facts import this_machine
        from fndcli.history.store import StoreError

        store, commit = self.history
        kept = "this run's files are kept"
        try:
            store.record(entry_of(sidecar, commit, this_machine()))
        except KeyboardInterrupt:
            return (
                f"history write interrupted (Ctrl-C): the store is as it was, without this run; {kept}",
                130,
            )
        except (StoreError, OSError, ValueError) as e:
            return f"history write failed: {e}; {kept}", 2
        finally:
            store.close()
        return None, code


def _view(con, sidecar):
    """The command's view of a run, read back from its files as `fnd show` reads it."""
    from fndcli.report.views import render
    from fndcli.runs.saved import load

    for item in render(load(sidecar)):
        con.print(item)


def print_paths(con, paths):
    for path in paths:
        con.print(str(path), markup=False, soft_wrap=True)


def error_line(message):
    """One line on stderr, `Error: ...`, for a failure found after the work started (exit 1)."""
    typer.echo(f"Error: {message}", err=True)
