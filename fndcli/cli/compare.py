"""`fnd compare BASE NEW`: the regression gate for CI (core: `fndcli.runs.compare`)."""

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import SEED_MAX, Format, OutOption, QuietOption, config_option
from fndcli.cli.runs import Run


@command("compare", "Compare two saved runs (or two kernels of one) row by row; exit 1 on a regression.")
def compare_command(
    ctx: typer.Context,
    base: Annotated[
        Path,
        typer.Argument(
            metavar="BASE",
            help="The run to compare against: its CSV, sidecar, .pyperf.json, or a directory "
            "(its newest run of NEW's command). With --pair: the one run.",
            show_default=False,
        ),
    ],
    new: Annotated[
        Optional[Path],
        typer.Argument(
            metavar="NEW",
            help="The run under test, named the same ways; none with --pair.",
            show_default=False,
        ),
    ] = None,
    pair: Annotated[
        Optional[tuple[str, str]],
        typer.Option(
            "--pair",
            metavar="A B",
            help="Judge implementation B against A inside the one matmul-bench run BASE, "
            "each worker process's B against its A (a paired test): how to see 5 %.",
        ),
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            "--threshold",
            metavar="T",
            help="The relative change that matters: REGRESSION or improved only beyond "
            "+-T, same only inside it. Default: 0.1 across runs, 0.05 with --pair.",
            show_default=False,
        ),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            metavar="A",
            help="Significance level of each row's test (Holm-corrected over the rows), and "
            "of the equivalence test behind same.",
        ),
    ] = 0.05,
    anchor: Annotated[
        Optional[str],
        typer.Option(
            "--anchor",
            metavar="IMPL",
            help="Across runs: judge each row relative to IMPL (e.g. torch, unchanged between "
            "the runs) timed in the same worker processes: the host's speed cancels.",
        ),
    ] = None,
    run_noise: Annotated[
        float,
        typer.Option(
            "--run-noise",
            metavar="SD",
            min=0.0,
            max=1.0,
            help="Across runs: the least between-run noise (sd of a run's "
            "level, log scale) assumed, whatever a run's own structure says; measured: docs/measured.md.",
        ),
    ] = 0.02,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, max=SEED_MAX, metavar="N", help="Seed of the paired bootstrap intervals."
        ),
    ] = 0,
    output_format: Annotated[
        Format,
        typer.Option(
            "--format", help="table for people; md for a CI job summary or a pull-request comment; csv; json."
        ),
    ] = Format.table,
    fail_on_improvement: Annotated[
        bool,
        typer.Option(
            "--fail-on-improvement", help="Exit 1 on an improvement too (a baseline that should be updated)."
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on insufficient, inconclusive and unstable rows too.")
    ] = False,
    allow_unjudged: Annotated[
        bool,
        typer.Option(
            "--allow-unjudged",
            help="Exit 0, not 3, when nothing failed but some rows were not judged "
            "(insufficient, unstable, inconclusive).",
        ),
    ] = False,
    allow_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-mismatch",
            help="Compare runs from different machines (CPU, cores, GPU) anyway, with a banner.",
        ),
    ] = False,
    config: config_option("compare") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
):
    """Compare two saved runs of one command, row by row; exit 1 on a REGRESSION or a BROKEN row, 3 when
    nothing failed but rows were not judged (--allow-unjudged: 0).

    Timings are compared per worker process, on log times. Across two runs: robust (20 %
    trimmed) means and a between-run noise term each run's own structure sets. With --pair A B
    (one matmul-bench run, processes interleaved): each process's B against its A, a paired
    t-test and a paired bootstrap interval. A row is a REGRESSION when it is significant at
    --alpha (Holm-corrected over the rows) and slower beyond --threshold; same when its
    interval lies inside +-threshold (equivalence); unstable when a run flagged its timings;
    BROKEN when a check that passed now fails. Runs from different machines are refused (exit 2).

    Examples:

    \b
        fnd matmul-bench --gate --out base/ && fnd matmul-bench --gate --out new/
        fnd compare base/ new/
        fnd matmul-bench --impl kern.py:mm@origin/main --impl kern.py:mm --gate --out ab/
        fnd compare ab/ --pair kern.py:mm@origin/main kern.py:mm
        fnd compare results/gradcheck-20261130-120000.csv results/ --format md
    """
    if threshold is not None and not (math.isfinite(threshold) and 0 < threshold < 1):
        raise typer.BadParameter(
            f"must be between 0 and 1 (0.1 is 10 %), got {threshold}", param_hint="'--threshold'"
        )
    if not (math.isfinite(alpha) and 0 < alpha < 0.5):
        raise typer.BadParameter(f"must be between 0 and 0.5, got {alpha}", param_hint="'--alpha'")
    if (new is None) == (pair is None):
        raise typer.BadParameter(
            "give two runs, BASE NEW, or one run and --pair A B", param_hint="'BASE' / 'NEW'"
        )

    if pair and pair[0] == pair[1]:
        raise typer.BadParameter(
            f"{pair[0]} against itself: give two different implementations of the run", param_hint="'--pair'"
        )
    if strict and allow_unjudged:
        raise typer.BadParameter(
            "--strict fails the rows not judged and --allow-unjudged passes them: give one",
            param_hint="'--strict'",
        )
    if pair and anchor:
        raise typer.BadParameter(
            "--pair already judges B relative to A; --anchor is for two runs", param_hint="'--anchor'"
        )
    result, base_run, new_run = _compare(base, new, pair, threshold, alpha, seed, run_noise, anchor)
    if result.machine and not allow_mismatch:
        what = "; ".join(f"{k} {b!r} vs {n!r}" for k, b, n in result.machine)
        raise typer.BadParameter(
            f"BASE and NEW ran on different machines ({what}); timings do not compare "
            "across machines: run both on one, or pass --allow-mismatch",
            param_hint="'BASE' / 'NEW'",
        )
    from fndcli.runs.compare import gated, not_judged

    run = Run(ctx, out, quiet)
    if pair is None and base_run.sidecar_path.resolve() == new_run.sidecar_path.resolve():
        typer.echo(
            f"Warning: BASE and NEW are the same run ({base_run.stem}): every row is compared with itself",
            err=True,
        )
    failing, unjudged = gated(result, fail_on_improvement, strict), not_judged(result)
    code = 1 if len(failing) else 3 if len(unjudged) and not allow_unjudged else 0
    header = _not_judged(result, unjudged, code) + _header(result, base_run, new_run, pair)
    footer = _footer(result, failing, unjudged, code)
    footer += _anchor_hint(result, base_run, new_run, pair or anchor)
    run.finish(
        lambda files: files.write_csv(".csv", result.rows),
        code,
        {"base": str(base_run.sidecar_path), "new": str(new_run.sidecar_path)},
        failures=[
            *(
                f"{r.verdict}: {r.key} ({r.what}){f': {r.note}' if r.note else ''}"
                for r in failing.itertuples()
            ),
            *(_unjudged_line(unjudged) if code == 3 else []),
        ],
        show=lambda con, _: _render(
            con, output_format.value, result, base_run, new_run, header, footer, pair
        ),
        paths_to_stderr=output_format.value != "table",
        compared=result.command,
        base_run=str(base_run.sidecar_path),
        new_run=str(new_run.sidecar_path),
        counts=result.counts(),
        geomean_ratio=_finite(result.geomean_ratio()),
        machine_differs=result.machine,
        software_differs=result.software,
        settings_differ=result.notes,
        gated=len(failing),
        not_judged=len(unjudged),
        pair=pair,
    )


def _compare(base, new, pair, threshold, alpha, seed, run_noise, anchor):
    """(Comparison, BASE's SavedRun, NEW's) of two runs, or of --pair's two implementations of one (NEW is
    BASE); exit 2 with one line if the runs cannot be read or compared."""
    from fndcli.numerics import first_line
    from fndcli.runs.compare import PAIRED_THRESHOLD, CompareError, Settings, compare, compare_pair
    from fndcli.runs.saved import RunError, load

    default = PAIRED_THRESHOLD if pair else Settings.threshold
    settings = Settings(
        alpha=alpha,
        threshold=default if threshold is None else threshold,
        seed=seed,
        run_noise=run_noise,
        anchor=anchor,
    )
    try:
        if pair:
            base_run = new_run = load(base, "matmul-bench")
            return compare_pair(base_run, *pair, settings), base_run, new_run
        if new.is_dir() and not base.is_dir():  # a directory means the newest run of the other side's command
            base_run = load(base)
            new_run = load(new, base_run.command)
        else:
            new_run = load(new)
            base_run = load(base, new_run.command if base.is_dir() else None)
        return compare(base_run, new_run, settings), base_run, new_run
    except RunError as e:  # a run that cannot be read: with --pair, BASE is the one run
        raise typer.BadParameter(str(e), param_hint="'BASE'" if pair else "'BASE' / 'NEW'")
    except CompareError as e:
        hint = e.option or ("--pair" if pair else None)
        raise typer.BadParameter(str(e), param_hint=f"'{hint}'" if hint else "'BASE' / 'NEW'")
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as e:  # columns as named, values not as fnd writes them
        raise typer.BadParameter(
            f"a run holds values fnd does not write ({type(e).__name__}: {first_line(e)}); "
            "fnd show RUN --format csv shows it as it is",
            param_hint="'BASE' / 'NEW'",
        )


def _finite(x):
    return x if math.isfinite(x) else None


def _header(result, base, new, pair=None):
    lines = []
    if pair:
        return [
            f"{pair[1]} against {pair[0]} in {base.stem} ({base.meta.get('started_utc', '?')[:19]}), each "
            f"worker process's against its own, on {base.meta.get('cpu_model')} "
            f"({base.meta.get('cpu_count')} "
            "cores)",
            *_warnings(base),
        ]
    if result.machine:
        lines.append(
            "DIFFERENT MACHINES (--allow-mismatch): "
            + "; ".join(f"{k} {b} vs {n}" for k, b, n in result.machine)
        )
    lines.append(
        f"BASE {base.stem} ({base.meta.get('started_utc', '?')[:19]}), NEW {new.stem} "
        f"({new.meta.get('started_utc', '?')[:19]}), on {new.meta.get('cpu_model')} "
        f"({new.meta.get('cpu_count')} cores)"
    )
    if result.software:
        lines.append("versions differ: " + "; ".join(f"{k} {b} -> {n}" for k, b, n in result.software))
    if result.notes:
        lines.append("settings differ: " + "; ".join(result.notes))
    return lines + _warnings(base, "BASE") + _warnings(new, "NEW")


def _warnings(run, side=""):
    """A run's warnings: cut short (Ctrl-C, or a failure part-way), a busy host (bench.stats.busy_host; its
    rows' own warnings show as unstable rows)."""
    cut = {"interrupted": "interrupted (Ctrl-C)", "failed": "failed part-way"}.get(run.meta.get("status"))
    return [
        f"{side + ': ' if side else ''}{text}"
        for text in [
            *(
                [f"{cut}: its rows are those that finished; rows it did not reach read as missing or added"]
                if cut
                else []
            ),
            *(t for t in run.meta.get("unstable") or [] if t.startswith("load average")),
        ]
    ]


def _not_judged(result, unjudged, code):
    """The headline of a comparison with rows no test judged: how many, and that this is not a pass."""
    if not len(unjudged):
        return []
    counts = ", ".join(f"{n} {v}" for v, n in sorted(unjudged["verdict"].value_counts().items()))
    outcome = "exit 3: not a pass" if code == 3 else f"exit {code}"
    return [f"NOT JUDGED: {len(unjudged)} of {len(result.rows)} row(s) ({counts}); {outcome}"]


def _unjudged_line(unjudged):
    """The one stderr line of exit 3."""
    return [
        f"not judged: {len(unjudged)} row(s), none failed and none passed; re-run (with --gate, on a quiet "
        "host) or pass --allow-unjudged to exit 0"
    ]


def _footer(result, failing, unjudged, code):
    counts = ", ".join(f"{n} {v}" for v, n in sorted(result.counts().items()))
    lines = [f"verdicts: {counts}"]
    geomean = result.geomean_ratio()
    if not math.isnan(geomean):
        judged = len(result.judged_timings())
        lines.append(
            f"geometric mean of the NEW/BASE time ratios over {judged} judged row(s): {geomean:.3f}x"
        )
    unjudged_part = f"; {len(unjudged)} not judged" if len(unjudged) else ""
    lines.append(f"gate: {len(failing)} row(s) fail it{unjudged_part} -> exit {code}")
    return lines


def _anchor_hint(result, base, new, anchored):
    """A line suggesting --anchor torch where both matmul-bench runs timed torch beside something else and no
    anchor was given: each row relative to torch from its own processes cancels the host's speed (on the Intel
    Xeon VM it turned 10 of 40 rows of identical code same into 20 of 20)."""
    if anchored or result.command != "matmul-bench":
        return []
    impls = [set(run.rows["impl"]) for run in (base, new)]
    if not all("torch" in found and len(found) > 1 for found in impls):
        return []
    return [
        "tip: both runs timed torch in the same worker processes: --anchor torch judges every other row "
        "relative to it, so the host's speed in each run cancels"
    ]


def _render(con, fmt, result, base, new, header, footer, pair=None):
    from fndcli.report.figures import markdown_table
    from fndcli.report.tables import COMPARE_HEADERS, compare_cells, compare_table

    title = (
        f"fnd compare: {pair[1]} against {pair[0]}, process by process"
        if pair
        else f"fnd compare: {result.command}, NEW against BASE"
    )
    if fmt == "table":
        for line in header:
            style = (
                "bold red"
                if line.startswith("DIFFERENT")
                else "bold yellow"
                if line.startswith("NOT")
                else None
            )
            con.print(line, markup=False, style=style)
        con.print(compare_table(result.rows, title, "\n".join(footer)))
    elif fmt == "md":
        typer.echo(f"### {title}\n")
        typer.echo("\n".join(f"- {line}" for line in header) + "\n")
        typer.echo(markdown_table(COMPARE_HEADERS, compare_cells(result.rows)) + "\n")
        typer.echo("\n".join(f"- {line}" for line in footer))
    elif fmt == "csv":
        typer.echo(result.rows.to_csv(index=False), nl=False)
    else:
        doc = {
            "command": result.command,
            "base": str(base.sidecar_path),
            "new": str(new.sidecar_path),
            "header": header,
            "footer": footer,
            "counts": result.counts(),
            "geomean_ratio": _finite(result.geomean_ratio()),
            "rows": json.loads(result.rows.to_json(orient="records")),
        }
        typer.echo(json.dumps(doc, indent=2, default=str))
