"""`fnd compare BASE NEW`: the regression gate for CI (core: `fndcli.runs.compare`)."""
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from fndcli.cli.app import command
from fndcli.cli.options import SEED_MAX, OutOption, QuietOption, choices, config_option
from fndcli.cli.runs import Run

Format = choices("Format", ["table", "md", "csv", "json"])


@command("compare", "Compare two saved runs row by row; exit 1 on a regression.")
def compare_command(
    ctx: typer.Context,
    base: Annotated[Path, typer.Argument(
        metavar="BASE", help="The run to compare against: its CSV, sidecar, .pyperf.json, or a directory "
                             "(its newest run of NEW's command).", show_default=False)],
    new: Annotated[Path, typer.Argument(
        metavar="NEW", help="The run under test, named the same ways.", show_default=False)],
    threshold: Annotated[float, typer.Option(
        "--threshold", metavar="T", help="The relative change that matters: REGRESSION or improved only "
                                         "beyond +-T.")] = 0.10,
    alpha: Annotated[float, typer.Option(
        "--alpha", metavar="A", help="Significance level of the Mann-Whitney U test.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, metavar="N",
                                                help="Seed of the bootstrap intervals.")] = 0,
    output_format: Annotated[Format, typer.Option(
        "--format", help="table for people; md for a CI job summary or a pull-request comment; csv; json.")] = Format.table,
    fail_on_improvement: Annotated[bool, typer.Option(
        "--fail-on-improvement", help="Exit 1 on an improvement too (a baseline that should be updated).")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 on insufficient and inconclusive rows too.")] = False,
    allow_mismatch: Annotated[bool, typer.Option(
        "--allow-mismatch", help="Compare runs from different machines (CPU, cores, GPU) anyway, with a banner.")] = False,
    config: config_option("compare") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Compare two saved runs of one command, row by row; exit 1 on a REGRESSION or a BROKEN row.

    Timings are compared per worker process: the ratio of medians NEW/BASE with a 95 %
    bootstrap interval and a two-sided Mann-Whitney U test (scipy). A row is a REGRESSION
    only when it is both significant at --alpha and slower beyond --threshold; BROKEN when a
    check that passed now fails. Runs from different machines are refused (exit 2).

    Examples:

    \b
        fnd matmul-bench --gate --out base/ && fnd matmul-bench --gate --out new/
        fnd compare base/ new/
        fnd compare results/gradcheck-20261130-120000.csv results/ --format md
    """
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise typer.BadParameter(f"must be between 0 and 1 (0.1 is 10 %), got {threshold}", param_hint="'--threshold'")
    if not (math.isfinite(alpha) and 0 < alpha < 1):
        raise typer.BadParameter(f"must be between 0 and 1, got {alpha}", param_hint="'--alpha'")

    from fndcli.runs.compare import CompareError, Settings, compare, gated
    from fndcli.numerics import first_line
    from fndcli.runs.saved import RunError, load

    try:
        if new.is_dir() and not base.is_dir():  # a directory means the newest run of the other side's command
            base_run = load(base)
            new_run = load(new, base_run.command)
        else:
            new_run = load(new)
            base_run = load(base, new_run.command if base.is_dir() else None)
        result = compare(base_run, new_run, Settings(alpha=alpha, threshold=threshold, seed=seed))
    except (RunError, CompareError) as e:
        raise typer.BadParameter(str(e), param_hint="'BASE' / 'NEW'")
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # columns as named, values not as fnd writes them
        raise typer.BadParameter(f"a run holds values fnd does not write ({type(e).__name__}: {first_line(e)}); "
                                 "fnd show RUN --format csv shows it as it is", param_hint="'BASE' / 'NEW'")
    if result.machine and not allow_mismatch:
        what = "; ".join(f"{k} {b!r} vs {n!r}" for k, b, n in result.machine)
        raise typer.BadParameter(f"BASE and NEW ran on different machines ({what}); timings do not compare "
                                 "across machines: run both on one, or pass --allow-mismatch",
                                 param_hint="'BASE' / 'NEW'")
    run = Run(ctx, out, quiet)
    if base_run.sidecar_path.resolve() == new_run.sidecar_path.resolve():
        typer.echo(f"Warning: BASE and NEW are the same run ({base_run.stem}): every timing reads the same "
                   "samples twice", err=True)
    failing = gated(result, fail_on_improvement, strict)
    code = 1 if len(failing) else 0
    header, footer = _header(result, base_run, new_run), _footer(result, failing, code)
    run.finish(lambda files: files.write_csv(".csv", result.rows), code,
               {"base": str(base_run.sidecar_path), "new": str(new_run.sidecar_path)},
               failures=[f"{r.verdict}: {r.key} ({r.what}){f': {r.note}' if r.note else ''}" for r in failing.itertuples()],
               show=lambda con, _: _render(con, output_format.value, result, base_run, new_run, header, footer),
               paths_to_stderr=output_format.value != "table", compared=result.command,
               base_run=str(base_run.sidecar_path), new_run=str(new_run.sidecar_path), counts=result.counts(),
               geomean_ratio=_finite(result.geomean_ratio()), machine_differs=result.machine,
               software_differs=result.software, settings_differ=result.notes, gated=len(failing))


def _finite(x):
    return x if math.isfinite(x) else None


def _header(result, base, new):
    lines = []
    if result.machine:
        lines.append("DIFFERENT MACHINES (--allow-mismatch): " +
                     "; ".join(f"{k} {b} vs {n}" for k, b, n in result.machine))
    lines.append(f"BASE {base.stem} ({base.meta.get('started_utc', '?')[:19]}), NEW {new.stem} "
                 f"({new.meta.get('started_utc', '?')[:19]}), on {new.meta.get('cpu_model')} "
                 f"({new.meta.get('cpu_count')} cores)")
    if result.software:
        lines.append("versions differ: " + "; ".join(f"{k} {b} -> {n}" for k, b, n in result.software))
    if result.notes:
        lines.append("settings differ: " + "; ".join(result.notes))
    return lines


def _footer(result, failing, code):
    counts = ", ".join(f"{n} {v}" for v, n in sorted(result.counts().items()))
    lines = [f"verdicts: {counts}"]
    geomean = result.geomean_ratio()
    if not math.isnan(geomean):
        lines.append(f"geometric mean of the NEW/BASE time ratios: {geomean:.3f}x")
    lines.append(f"gate: {len(failing)} row(s) fail it -> exit {code}")
    return lines


def _render(con, fmt, result, base, new, header, footer):
    from fndcli.report.tables import COMPARE_HEADERS, compare_cells, compare_table, markdown_table

    title = f"fnd compare: {result.command}, NEW against BASE"
    if fmt == "table":
        for line in header:
            con.print(line, markup=False, style="bold red" if line.startswith("DIFFERENT") else None)
        con.print(compare_table(result.rows, title, "\n".join(footer)))
    elif fmt == "md":
        typer.echo(f"### {title}\n")
        typer.echo("\n".join(f"- {line}" for line in header) + "\n")
        typer.echo(markdown_table(COMPARE_HEADERS, compare_cells(result.rows)) + "\n")
        typer.echo("\n".join(f"- {line}" for line in footer))
    elif fmt == "csv":
        typer.echo(result.rows.to_csv(index=False), nl=False)
    else:
        doc = {"command": result.command, "base": str(base.sidecar_path), "new": str(new.sidecar_path),
               "header": header, "footer": footer, "counts": result.counts(),
               "geomean_ratio": _finite(result.geomean_ratio()),
               "rows": json.loads(result.rows.to_json(orient="records"))}
        typer.echo(json.dumps(doc, indent=2, default=str))
