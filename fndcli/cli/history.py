"""`fnd history`: each benchmark's (or check's, metric's, claim's) figure over commits from the history store,
where it changed, and a gate (core: `fndcli.history.figures`, over `read` and `changes`)."""

import json
import math
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import _click as click

from fndcli.cli.app import command
from fndcli.cli.options import (
    Format,
    OutOption,
    QuietOption,
    choices,
    fingerprint,
    named_directory,
    utc_since,
)
from fndcli.history.bisect_offer import bisect_offers
from fndcli.kinds import FOLLOWED, HISTORY, HISTORY_FIGURES, MATMUL_BENCH

HistoryOf = choices("HistoryOf", FOLLOWED)
# what the footer and --gate's lines call (a change, a sample, the line of a series that fails, a series)
WORDS = {
    HISTORY: ("change points", "worker processes", "REGRESSION at head", "benchmark(s)"),
    HISTORY_FIGURES: ("changes", "runs", "failing at head", "series"),
}


@command("history", "Each benchmark (check, metric) over commits from the history store; --gate exits 1.")
def history_command(
    ctx: typer.Context,
    pattern: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[BENCHMARK]",
            help="Only the benchmarks (series) whose name ('torch 256x256x256 float32 cpu') holds this "
            "text, or matches it as a glob (* ? [...]).",
            show_default=False,
        ),
    ] = None,
    command: Annotated[
        HistoryOf,
        typer.Option(
            "--command",
            metavar="NAME",
            help="Whose runs: matmul-bench's times per benchmark; init-sweep's decades per scheme and "
            "activation, gradcheck's error per check, train's last epoch per metric, reproduce's claims, "
            "peak's ceilings, with their verdicts (docs/history.md).",
        ),
    ] = HistoryOf[MATMUL_BENCH.command],
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
            parser=fingerprint,
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
    repo: Annotated[
        Optional[Path],
        typer.Option(
            "--repo",
            metavar="DIR",
            help="Only the runs of commits the git repository holding DIR has (any branch, any clone): "
            "one project's runs in a store several share; --repo . in CI.",
            exists=True,
            file_okay=False,
            show_default=False,
        ),
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
            "was proposed that too few worker processes could judge. With --command: 1 when a series' "
            "newest verdict change, at head, is into a failing verdict.",
        ),
    ] = False,
    output_format: Annotated[
        Format, typer.Option("--format", help="table for people; md for a CI job summary; csv; json.")
    ] = Format.table,
    html: Annotated[
        Optional[Path],
        typer.Option(
            "--html",
            metavar="DIR",
            parser=named_directory,
            help="Also write DIR/index.html (replacing it): a chart per benchmark over commits, change "
            "points marked, each point's commit, date, subject and figure on hover; one file, works offline.",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        bool, typer.Option("--plot", help="Write a PNG per benchmark beside the CSV, change points marked.")
    ] = False,
    anchor: Annotated[
        Optional[str],
        typer.Option(
            "--anchor",
            metavar="IMPL",
            help="Each benchmark's times over IMPL's (e.g. torch, unchanged across the commits) from the "
            "same worker processes, as fnd compare --anchor: the host's speed cancels. Best with --gate "
            "runs (every process times both) and a small --threshold (docs/history.md: error rates).",
            show_default=False,
        ),
    ] = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Each matmul-bench benchmark (implementation, shape, dtype, device, threads) over commits, on one
    machine: one row per commit in commit order, its figure (the median of every worker process's fastest
    value over that commit's runs), n (processes), and where a change starts: REGRESSION or improved, its size
    and p. Change points are proposed by ruptures (PELT on log times) and each is confirmed by fnd compare's
    verdict between the segments before and after it, on the per-process values.

    --command NAME: another command's figures, per series (init-sweep's scheme and activation, gradcheck's
    check, train's metric at the last epoch, reproduce's claim, peak's kernel and threads), with their
    verdicts; a change where the verdict changes, or the figure moves beyond 1e-4 relative (peak's rates:
    judged as times are); --gate exits 1 when a series' newest verdict change, at head, is into a failing
    verdict. Reads the store; adds nothing to it. Exit 2 on an empty store or bad input (docs/history.md).

    Examples:

    \b
        fnd history
        fnd history 'kern.py:mm*' --since 2026-01-01 --branch main --gate
        fnd history --machine 6508426f80b6e21e --format md
        fnd history --html public/ --plot   # a page to open in a browser; a PNG per benchmark
        fnd history --command gradcheck --gate   # exit 1: a check that passed fails at head
        fnd history --command train valid_loss --format csv
    """
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise typer.BadParameter(
            f"must be between 0 and 1 (0.1 is 10 %), got {threshold}", param_hint="'--threshold'"
        )
    kind = HISTORY if command.value == MATMUL_BENCH.command else HISTORY_FIGURES
    _timings_only(kind, command.value, html=html, plot=plot, anchor=anchor)
    from fndcli.cli.runs import Run, out_dir
    from fndcli.runs.compare import Settings

    s = Settings(threshold=threshold)
    where, fingerprint, found = _read(
        db, machine, utc_since(since), branch, pattern, command.value, s, anchor, repo
    )
    changes, unjudged = _changes(found.rows)
    code = (1 if found.gated else 3 if found.unjudged else 0) if gate else 0
    footer = _footer(kind, changes, unjudged, found.gated, gate, code)
    footer += bisect_offers(found.rows, repo) if kind is HISTORY else []
    page = html and out_dir(html, "--html") / "index.html"
    run = Run(ctx, out, quiet)
    if page:
        _write_page(page, _by_benchmark(found.rows), _header(where, fingerprint), footer)
    run.finish(
        lambda files: _write_files(files, kind, found.rows, plot),
        code,
        failures=[
            *(f"{WORDS[kind][2]}: {name}" for name in found.gated if gate),
            *_unjudged_line(found.unjudged, code),
        ],
        show=lambda con, _: _render(con, output_format.value, kind, found.rows, where, fingerprint, footer),
        paths_to_stderr=output_format.value != "table",
        elsewhere=[page] if page else [],
        **_fields(kind, where, fingerprint, found, changes, page, anchor),
    )


def _timings_only(kind, command, **given):
    """--html, --plot and --anchor are of matmul-bench's timings: exit 2, one line, for another command's."""
    for option, value in given.items():
        if kind is HISTORY_FIGURES and value:
            raise typer.BadParameter(
                f"is for matmul-bench's timings only, not {command}'s figures", param_hint=f"'--{option}'"
            )


def _read(db, machine, since, branch, pattern, command, s, anchor=None, repo=None):
    """(where the store is, the machine's fingerprint, the History of `command`'s runs there); exit 2 with one
    line when there is nothing to show."""
    from fndcli.history.facts import held_by, this_machine
    from fndcli.history.figures import commands, history
    from fndcli.history.read import commits_of, machines, open_reading
    from fndcli.history.store import StoreError

    try:
        store = open_reading(db)
    except StoreError as e:
        raise click.exceptions.UsageError(str(e))
    try:
        fingerprint = machine or this_machine().fingerprint
        commits = held_by(repo, commits_of(store, fingerprint, command)) if repo else None
        if repo and commits is None:
            raise StoreError(f"--repo {repo} is not in a git repository")
        found = history(store, command, fingerprint, s, pattern, since, branch, anchor, commits)
        known, (held, unknown) = machines(store), commands(store, fingerprint)
    except StoreError as e:
        raise click.exceptions.UsageError(str(e))
    finally:
        store.close()
    if not found.rows:
        asked = "".join(
            f" {what} {value!r}"
            for what, value in (
                ("matching", pattern),
                ("since", since),
                ("on", branch),
                ("of the repository at", repo),
            )
            if value
        )
        others = ", ".join(f"{f} ({cpu})" for f, cpu in known.items() if f != fingerprint) or "none"
        raise click.exceptions.UsageError(
            f"no {command} runs{asked} at a known commit on machine {fingerprint} in the history store "
            f"{store.where} (the commands it holds for that machine: {', '.join(held) or 'none'}; its other "
            f"machines: {others})"
            + (
                f"; {unknown} run(s) there at an unknown commit, made outside a git repository"
                if unknown
                else ""
            )
        )
    return store.where, fingerprint, found


def _fields(kind, where, fingerprint, found, changes, page, anchor):
    """The sidecar's own fields, as fndcli.kinds declares them for HISTORY and HISTORY_FIGURES."""
    mine = {"store": where, "machine": fingerprint, "gated": len(found.gated)}
    if kind is HISTORY:
        return {
            **mine,
            "benchmarks": found.series,
            "change_points": len(changes),
            "html": page and str(page),
            "anchor": anchor,
        }
    return {**mine, "series": found.series, "changes": len(changes)}


def _frame(kind, rows):
    import pandas as pd

    return pd.DataFrame.from_records(rows, columns=kind.written())


def _write_files(files, kind, rows, plot):
    """The rows' CSV; with --plot a PNG per benchmark, named after the run and the benchmark."""
    files.write_csv(".csv", _frame(kind, rows))
    if plot:
        from fndcli.report.plots import history_plot

        names = []  # a benchmark's name as a file name: letters, digits, '.', the rest '-'
        for title, part in _by_benchmark(rows).items():
            names.append(re.sub(r"[^\w.]+", "-", title).strip("-")[:80])
            twin = names.count(names[-1])  # two names alike once their other characters are '-'
            files.write(
                f"-{names[-1]}{f'-{twin}' if twin > 1 else ''}.png", lambda p: history_plot(title, part, p)
            )


def _write_page(page, charts, header, footer):
    """--html's DIR/index.html, replaced atomically; exit 2 with one line when it cannot be written (before
    the run's own files: nothing is written)."""
    from fndcli.cli.runs import error_line
    from fndcli.report.history_page import history_page
    from fndcli.runs.files import replace_file

    try:
        replace_file(page, history_page(charts, header, footer))
    except OSError as e:
        error_line(f"cannot write {page}: [Errno {e.errno}] {e.strerror or e}; this run wrote nothing")
        raise typer.Exit(2)


def _changes(rows):
    """(the rows where a change starts, those where one was proposed but could not be judged)."""
    return [r for r in rows if r["change"] not in ("", "not judged")], [
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


def _footer(kind, changes, unjudged, gated, gate, code):
    changed, samples, at_head, series = WORDS[kind]
    lines = [f"{changed}: {len(changes)}{' confirmed' if kind is HISTORY else ''}"]
    if unjudged:
        lines[0] += f"; {len(unjudged)} proposed but not judged (too few {samples} to tell)"
    if gated:
        lines.append(f"{at_head}: {'; '.join(gated)}")
    if gate:
        lines.append(f"gate: {len(gated)} {series} fail it -> exit {code}")
    return lines


def _by_benchmark(rows):
    out = {}
    for r in rows:
        title = _title(r)
        out.setdefault(title, []).append(r)
    return out


def _header(where, fingerprint):
    return f"fnd history: {where}, machine {fingerprint}"


def _render(con, fmt, kind, rows, where, fingerprint, footer):
    from fndcli.report.figures import FIGURE_HEADERS, TIMING_HEADERS, figure_cells, missing, timing_cells

    header = _header(where, fingerprint)
    headers, cells_of = (TIMING_HEADERS, timing_cells) if kind is HISTORY else (FIGURE_HEADERS, figure_cells)
    if fmt == "table":
        from rich.table import Table

        con.print(header, markup=False)
        for title, part in _by_benchmark(rows).items():
            table = Table(title=title, title_justify="left")
            for h in headers:
                table.add_column(
                    h, justify="right" if h in ("median", "n", "value", "runs", "size", "p") else "left"
                )
            for cells, r in zip(cells_of(part), part):
                table.add_row(*cells, style="bold red" if r["change"] == "REGRESSION" else None)
            con.print(table)
        for line in footer:
            con.print(line, markup=False)
    elif fmt == "md":
        from fndcli.report.figures import markdown_table

        typer.echo(f"### {header}\n")
        for title, part in _by_benchmark(rows).items():
            typer.echo(f"#### {title}\n\n{markdown_table(headers, cells_of(part))}\n")
        typer.echo("\n".join(f"- {line}" for line in footer))
    elif fmt == "csv":
        typer.echo(_frame(kind, rows).to_csv(index=False), nl=False)
    else:
        doc = {
            "store": where,
            "machine": fingerprint,
            "footer": footer,
            # each float to its last bit (to_json keeps 10 decimals: a 6.03e-08 error, 1.2346e-05 s); NaN null
            "rows": [
                {k: None if missing(v) else v for k, v in r.items()}
                for r in _frame(kind, rows).to_dict("records")
            ],
        }
        typer.echo(json.dumps(doc, indent=2))


def _title(row):
    """A benchmark as compare keys it, 'torch 64x64x64 float32 cpu 2t'; another command's series: figure."""
    if "series" in row:
        from fndcli.history.figures import title

        return title(row["series"], row["figure"])
    return row["benchmark"] if row["threads"] is None else f"{row['benchmark']} {row['threads']}t"
