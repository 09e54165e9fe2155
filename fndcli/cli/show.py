"""`fnd show RUN`: a saved run as the table its command printed, with where and how it ran."""

import json
from pathlib import Path
from typing import Annotated

import typer

from fndcli.cli.app import command
from fndcli.cli.options import choices
from fndcli.cli.runs import console

Format = choices("ShowFormat", ["table", "md", "csv", "json"])


@command("show", "Show a saved run as the table its command printed.")
def show(
    run: Annotated[
        Path,
        typer.Argument(
            metavar="RUN",
            help="A run: its CSV, sidecar, .pyperf.json, a reproduce run's directory or report, or a "
            "directory of runs (its newest run of any command).",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        Format,
        typer.Option("--format", help="table (as the command printed it), md, csv (the run's CSV) or json."),
    ] = Format.table,
):
    """Show a saved run: the table its command printed, and when, where and how it ran.

    Reads the files only: no torch, nothing measured or written.

    Examples:

    \b
        fnd show results/                   # the newest run there
        fnd show results/matmul-bench-20261130-161822.csv --format md
        fnd show results/reproduce-20261130-170000/
    """
    from fndcli.runs.saved import RunError, load

    try:
        saved = load(run)
    except RunError as e:
        raise typer.BadParameter(str(e), param_hint="'RUN'")
    fmt = output_format.value
    facts = _facts(saved)
    if fmt == "csv":
        typer.echo(saved.rows.to_csv(index=False), nl=False)
    elif fmt == "json":
        rows = json.loads(saved.rows.to_json(orient="records"))
        typer.echo(json.dumps({"run": saved.meta, "rows": rows}, indent=2, default=str))
    elif fmt == "md":
        from fndcli.report.figures import markdown_table

        columns = [
            c for c in saved.kind.names(md=True) if c in saved.rows
        ]  # enough to read; the CSV has the rest
        cells = [
            [_cell(c, v) for c, v in zip(columns, row)] for row in saved.rows[columns].itertuples(index=False)
        ]
        typer.echo(f"### fnd {saved.command}: {saved.stem}\n")
        typer.echo("\n".join(f"- {k}: {v}" for k, v in facts) + "\n")
        typer.echo(markdown_table(columns, cells))
    else:
        con = console()
        for key, value in facts:
            con.print(f"{key}: {value}", markup=False, soft_wrap=True)
        from fndcli.report.views import render

        try:
            items = render(saved)
        except (KeyError, AttributeError, TypeError, ValueError) as e:
            from fndcli.numerics import first_line

            raise typer.BadParameter(
                f"{saved.stem} does not read as fnd writes it ({type(e).__name__}: "
                f"{first_line(e)}): another fnd version? --format csv shows it as it is",
                param_hint="'RUN'",
            )
        for item in items:
            con.print(item)


def _cell(column, value):
    """A Markdown cell as the table shows figures: times with their unit, three significant figures."""
    from fndcli.report.figures import human_seconds, sig3

    if not isinstance(value, float):
        return str(value)
    if value != value:
        return ""
    if column.endswith("_s"):
        return human_seconds(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return sig3(value)


def _facts(saved):
    m = saved.meta
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    return [
        ("run", f"{saved.stem} ({m.get('status', '?')}, exit {m.get('exit_code', '?')})"),
        ("when", f"{m.get('started_utc', '?')} to {m.get('finished_utc', '?')}"),
        ("where", f"{m.get('cpu_model')} ({m.get('cpu_count')} cores{gpu}), {m.get('platform')}"),
        (
            "versions",
            f"fnd {m.get('fnd_version')}, torch {m.get('torch_version')}, "
            f"Python {m.get('python_version')}, pyperf {m.get('pyperf_version', '?')}",
        ),
        ("command", m.get("command_line", "?")),
    ]
