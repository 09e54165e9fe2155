"""`fnd bisect GOOD BAD -- COMMAND ...`: the first commit at which COMMAND's result turns from GOOD's to BAD's
(core: `fndcli.bisect`)."""

import functools
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Annotated

import typer
from typer import _click as click

from fndcli.cli.app import FndCommand, command
from fndcli.cli.options import DbOption, NoHistoryOption, OutOption, QuietOption
from fndcli.cli.runs import Run, error_line


class BisectCommand(FndCommand):
    """An option bisect does not know was most likely meant for the command it runs: say where that goes."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoSuchOption as e:
            e.message += "; the command to bisect goes after --: fnd bisect GOOD BAD -- COMMAND ..."
            e.possibilities = None  # bisect's own options (--help and a few): not what was meant
            raise


@command(
    "bisect", "The first commit at which a command's result turns from GOOD's to BAD's.", cls=BisectCommand
)
def bisect_command(
    ctx: typer.Context,
    good: Annotated[str, typer.Argument(metavar="GOOD", help="A commit whose result is the good one.")],
    bad: Annotated[
        str, typer.Argument(metavar="BAD", help="A later commit (GOOD its ancestor): the bad one.")
    ],
    bisected: Annotated[
        list[str],
        typer.Argument(
            metavar="-- COMMAND ...",
            help="After --, the fnd command run at each step: matmul-bench (a timing: the kernel at the "
            "step's commit paired with GOOD's and BAD's in one --gate run) or gradcheck, init-sweep, train "
            "(a check: the command's exit), naming your file with --impl, --model or --layer FILE.py:NAME.",
            show_default=False,
        ),
    ],
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Find the first commit between GOOD and BAD at which a command's result turns from GOOD's to BAD's.

    git walks the commits that change your file's directory; each step runs the command with your file as
    it was at one commit (FILE.py:NAME@REV), a real run written beside this one and kept in the history. A
    step that cannot tell, or whose code does not load, is skipped and said. Exit 0 found, 1 GOOD and BAD do
    not differ, 3 not narrowed to one commit, 2 bad input.

    Examples:

    \b
        fnd bisect v1.2 HEAD -- matmul-bench --impl kern.py:mm --shape 256x256x256 --threads 1
        fnd bisect HEAD~8 HEAD -- gradcheck --model model.py:Net
    """
    from fndcli.bisect.command import parse
    from fndcli.bisect.commits import BisectError, commit_range
    from fndcli.bisect.run import Bisect

    try:
        bisected_command = parse(bisected)
        span = commit_range(bisected_command.file, good, bad)
    except BisectError as e:
        raise click.exceptions.UsageError(str(e))
    run = Run(ctx, out, quiet)
    try:
        with run.working("bisect") as live:
            result = Bisect(
                bisected_command, span, _fnd_in_process(run.out, db, no_history), live.update
            ).run()
    except BisectError as e:
        error_line(str(e))
        raise typer.Exit(2)
    first = result.first_bad
    run.finish(
        lambda files: files.write_csv(".csv", result.steps),
        result.code,
        interrupted=result.outcome == "interrupted",
        outcome=result.outcome,
        mode="timing" if bisected_command.timing else "check",
        repo=str(span.repo),
        good=span.good,
        bad=span.bad,
        bisected=list(bisected),
        among=result.among,
        first_bad=first and first.commit,
        first_bad_subject=first and first.subject,
        first_bad_date=first and first.date,
        parent=result.parent,
        candidates=result.candidates,
        runs=int(result.steps["runs"].sum()),
    )


@functools.cache
def _click_command():
    from fndcli.cli.app import app

    return typer.main.get_command(app)


def _fnd_in_process(out, db, no_history):
    """run_fnd(argv) -> Outcome: `fnd ARGV` run in this process (torch and the user's code are loaded once),
    writing into `out`, added to the same history; what it prints kept from the terminal."""
    from fndcli.bisect.run import Outcome

    own = [
        "--out",
        str(out),
        "--quiet",
        *(["--db", db] if db else []),
        *(["--no-history"] if no_history else []),
    ]

    def run_fnd(argv):
        said, errors = io.StringIO(), io.StringIO()
        with redirect_stdout(said), redirect_stderr(errors):
            try:
                _click_command().main(args=[*argv, *own], prog_name="fnd")
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        sidecars = [
            line for line in said.getvalue().splitlines() if line.endswith(".json") and ".pyperf." not in line
        ]
        lines = errors.getvalue().splitlines()
        return Outcome(
            code,
            Path(sidecars[-1]) if sidecars else None,
            tuple(line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")),
        )

    return run_fnd
