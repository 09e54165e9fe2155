"""`fnd history`: each benchmark's figure over commits from the history store, where it changed, and a gate
(core: `fndcli.history.read`, `fndcli.history.changes`)."""

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import _click as click

from fndcli.cli.app import command
from fndcli.cli.options import Format, OutOption, QuietOption

HEADERS = ("commit", "date", "subject", "median", "95% interval", "n", "change", "size", "p")


@command("history", "Each benchmark over commits from the history store: where it changed; --gate exits 1.")
def history_command(
    ctx: typer.Context,
    pattern: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[BENCHMARK]",
            help="Only the benchmarks whose name ('torch 256x256x256 float32 cpu') holds this text, or "
            "matches it as a glob (* ? [...]).",
            show_default=False,
        ),
    ] = None,
    db: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            metavar="URL",
            envvar="FND_DB",
            help="The history store to read, as SQLAlchemy spells it: sqlite:///PATH/TO/FILE or "
            "postgresql://USER@HOST/DB. Default: $FND_DB, else $XDG_DATA_HOME/fnd/history.db.",
        ),
    ] = None,
    machine: Annotated[
        Optional[str],
        typer.Option(
            "--machine",
            metavar="FINGERPRINT",
            help="The machine whose runs to read (16 hex digits: the store's machines.fingerprint). "
            "Default: this machine's.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        Optional[str],
        typer.Option("--since", metavar="DATE", help="Only commits made on or after DATE (2026-01-31)."),
    ] = None,
    branch: Annotated[
        Optional[str], typer.Option("--branch", metavar="NAME", help="Only runs made on branch NAME.")
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            metavar="T",
            help="The relative change that matters: a change point is reported only when fnd compare's "
            "verdict between the segments around it is REGRESSION or improved beyond +-T.",
        ),
    ] = 0.10,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="Exit 1 when a benchmark's newest change point is a REGRESSION (at head); 3 when a change "
            "was proposed that too few worker processes could judge.",
        ),
    ] = False,
    output_format: Annotated[
        Format, typer.Option("--format", help="table for people; md for a CI job summary; csv; json.")
    ] = Format.table,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Each matmul-bench benchmark (implementation, shape, dtype, device, threads) over commits, on one
    machine: one row per commit in commit order, its figure (the median of every worker process's fastest
    value over that commit's runs), n (processes), and where a change starts: REGRESSION or improved, its size
    and p. Change points are proposed by ruptures (PELT on log times) and each is confirmed by fnd compare's
    verdict between the segments before and after it, on the per-process values. Reads the store; adds
    nothing to it. Exit 2 on an empty store or bad input. Other commands' runs: not yet (docs/history.md).

    Examples:

    \b
        fnd history
        fnd history 'kern.py:mm*' --since 2026-01-01 --branch main --gate
        fnd history --machine 6508426f80b6e21e --format md
    """
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise typer.BadParameter(
            f"must be between 0 and 1 (0.1 is 10 %), got {threshold}", param_hint="'--threshold'"
        )
    from fndcli.cli.runs import Run
    from fndcli.history.changes import history_rows
    from fndcli.runs.compare import Settings

    where, fingerprint, series = _read(db, machine, _since(since), branch, pattern)
    rows, gated = history_rows(series, Settings(threshold=threshold))
    changes, unjudged = _changes(rows)
    code = (1 if gated else 3 if unjudged else 0) if gate else 0
    footer = _footer(changes, unjudged, gated, gate, code)
    run = Run(ctx, out, quiet)
    run.finish(
        lambda files: files.write_csv(".csv", _frame(rows)),
        code,
        failures=[
            *(f"REGRESSION at head: {name}" for name in gated if gate),
            *_unjudged_line(unjudged, code),
        ],
        show=lambda con, _: _render(con, output_format.value, rows, where, fingerprint, footer),
        paths_to_stderr=output_format.value != "table",
        store=where,
        machine=fingerprint,
        benchmarks=len(series),
        change_points=len(changes),
        gated=len(gated),
    )


def _since(text):
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


def _read(db, machine, since, branch, pattern):
    """(where the store is, the machine's fingerprint, its series); exit 2 with one line when there is
    nothing to show."""
    from fndcli.history.facts import this_machine
    from fndcli.history.read import machines, matmul_series, open_reading
    from fndcli.history.store import StoreError

    try:
        store = open_reading(db)
    except StoreError as e:
        raise click.exceptions.UsageError(str(e))
    try:
        fingerprint = machine or this_machine().fingerprint
        series, known = matmul_series(store, fingerprint, pattern, since, branch), machines(store)
    except StoreError as e:
        raise click.exceptions.UsageError(str(e))
    finally:
        store.close()
    if not series:
        asked = "".join(
            f" {what} {value!r}"
            for what, value in (("matching", pattern), ("since", since), ("on", branch))
            if value
        )
        others = ", ".join(f"{f} ({cpu})" for f, cpu in known.items() if f != fingerprint) or "none"
        raise click.exceptions.UsageError(
            f"no matmul-bench runs{asked} at a known commit on machine {fingerprint} in the history store "
            f"{store.where} (its other machines: {others})"
        )
    return store.where, fingerprint, series


def _frame(rows):
    import pandas as pd

    from fndcli.kinds import HISTORY

    return pd.DataFrame.from_records(rows, columns=HISTORY.written())


def _changes(rows):
    """(the rows where a confirmed change starts, those where one was proposed but could not be judged)."""
    return [r for r in rows if r["change"] in ("REGRESSION", "improved")], [
        r for r in rows if r["change"] == "not judged"
    ]


def _unjudged_line(unjudged, code):
    """--gate's one stderr line of exit 3."""
    if code != 3:
        return []
    where = "; ".join(f"{_title(r)} at {r['commit']}" for r in unjudged)
    return [
        f"not judged: a change proposed at {where}, with too few worker processes to tell; time more "
        "(--gate) at each commit, or more commits"
    ]


def _footer(changes, unjudged, gated, gate, code):
    lines = [f"change points: {len(changes)} confirmed"]
    if unjudged:
        lines[0] += f"; {len(unjudged)} proposed but not judged (too few worker processes to tell)"
    if gated:
        lines.append(f"the newest change is a REGRESSION at head: {'; '.join(gated)}")
    if gate:
        lines.append(f"gate: {len(gated)} benchmark(s) fail it -> exit {code}")
    return lines


def _cells(rows):
    from fndcli.report.figures import human_seconds

    return [
        (
            r["commit"],
            r["date"],
            r["subject"],
            human_seconds(r["median_s"]),
            "" if math.isnan(r["low_s"]) else f"{human_seconds(r['low_s'])} – {human_seconds(r['high_s'])}",
            str(r["n"]),
            r["change"],
            f"{r['size']:+.1%}" if r["change"] else "",
            f"{r['p']:.2g}" if r["change"] else "",
        )
        for r in rows
    ]


def _by_benchmark(rows):
    out = {}
    for r in rows:
        title = _title(r)
        out.setdefault(title, []).append(r)
    return out


def _render(con, fmt, rows, where, fingerprint, footer):
    header = f"fnd history: {where}, machine {fingerprint}"
    if fmt == "table":
        from rich.table import Table

        con.print(header, markup=False)
        for title, part in _by_benchmark(rows).items():
            table = Table(title=title, title_justify="left")
            for h in HEADERS:
                table.add_column(h, justify="right" if h in ("median", "n", "size", "p") else "left")
            for cells, r in zip(_cells(part), part):
                table.add_row(*cells, style="bold red" if r["change"] == "REGRESSION" else None)
            con.print(table)
        for line in footer:
            con.print(line, markup=False)
    elif fmt == "md":
        from fndcli.report.figures import markdown_table

        typer.echo(f"### {header}\n")
        for title, part in _by_benchmark(rows).items():
            typer.echo(f"#### {title}\n\n{markdown_table(HEADERS, _cells(part))}\n")
        typer.echo("\n".join(f"- {line}" for line in footer))
    elif fmt == "csv":
        typer.echo(_frame(rows).to_csv(index=False), nl=False)
    else:
        doc = {
            "store": where,
            "machine": fingerprint,
            "footer": footer,
            "rows": json.loads(_frame(rows).to_json(orient="records")),
        }
        typer.echo(json.dumps(doc, indent=2))


def _title(row):
    """A benchmark as compare keys it: 'torch 64x64x64 float32 cpu 2t'."""
    return row["benchmark"] if row["threads"] is None else f"{row['benchmark']} {row['threads']}t"
