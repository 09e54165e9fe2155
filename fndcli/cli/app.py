"""The Typer app every command registers on: one-line errors, clean help, --version.

Exit codes: 0 success; 1 a check failed (a wrong kernel, a gradient mismatch, diverged
training) or the run ran out of memory part-way; 2 bad usage or input (one line on stderr,
nothing written); 130 Ctrl-C (rows already finished are kept).
"""

import os
import platform
import sys
from typing import Annotated, Optional

import typer
from typer import _click as click  # Typer ships its own click; the real `click` is not its
from typer.core import TyperArgument, TyperCommand, TyperGroup

import fndcli
from fndcli.cli.errors import clean, value_message


class _PlainPlaceholders:
    """--help shows click's placeholders, not Typer's `<bool>`, `<int range>`, `<list[cpu|cuda]>`: none for a
    flag, `a|b|c` for a choice (from its registry, so it stays in step); the rest name theirs (N, X, PATH)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if param.metavar is not None:
                continue
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif getattr(param, "type_descriptor", None) and param.type_descriptor.is_choice:
                param.metavar = "|".join(str(getattr(c, "value", c)) for c in param.type_descriptor.choices)
        return params


class OneLineErrorGroup(_PlainPlaceholders, TyperGroup):
    """Usage errors print one line on stderr, `Error: ...`, and exit 2; no panel, no traceback."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()
            sys.exit(0)
        except click.ClickException as e:
            if isinstance(e, click.exceptions.BadParameter):
                from fndcli.cli.config import blame_config  # here: only a usage error needs it

                e.message = value_message(e)
                e = blame_config(e)
            click.echo(f"Error: {clean(e.format_message())}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


class FndCommand(_PlainPlaceholders, TyperCommand):
    """A command of fnd's; its arguments show as click shows them (`BASE NEW`), not Typer's `{BASE}
    <path>`."""

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
            else:
                pieces += param.get_usage_pieces(ctx)
        return pieces

    def format_options(self, ctx, formatter):
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                args.append((param.metavar, record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


# Plain help (click's formatter): rich's panels and Markdown would double the time --help takes (0.28 s vs
# 0.19 s).
app = typer.Typer(
    cls=OneLineErrorGroup,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


def command(name, short_help, cls=None):
    """Register a command on the app, with fnd's help conventions; short_help is its line in `fnd --help`;
    cls a FndCommand of the command's own."""
    return app.command(name, cls=cls or FndCommand, short_help=short_help)


def _version(value: bool):
    if value:
        typer.echo(f"fnd {fndcli.__version__} (Python {platform.python_version()})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option(
            "--version", is_eager=True, callback=_version, metavar="", help="Print fnd's version and exit."
        ),
    ] = None,
):
    """fnd: a command-line lab for the foundations of neural networks (fastbook ch. 17).

    Every command writes DIR/COMMAND-UTCSTAMP.csv and a .json sidecar (--out DIR),
    takes option defaults from --config FILE.toml, and exits 0 (ok), 1 (a check failed),
    2 (bad input), 3 (compare: rows not judged) or 130 (interrupted).
    """


class _ReaderGone:
    """stdout that goes quiet once its reader has gone (`fnd ... | head -1`): the run still finishes, writes
    its files and exits with its own code. Without it click turns the BrokenPipeError into exit 1, which a CI
    script reads as a failed check, while the run's sidecar says exit 0."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        """Point the descriptor at /dev/null: what is still buffered, and the flush at exit, go nowhere."""
        os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main():
    """Console-script entry point."""
    sys.stdout = _ReaderGone(sys.stdout)
    try:
        app()
    finally:
        sys.stdout.flush()
