"""Rendering for people: rich tables built from the cores' DataFrames (matmul-bench's and peak's:
`report.bench_tables`). Nothing here computes results."""

import math

from rich.markup import escape
from rich.table import Table

from fndcli.report.figures import human_seconds, missing, num, sig3

VERDICT_STYLE = {
    "stable": "green",
    "vanishing": "yellow",
    "exploding": "bold red",
    "saturated": "bold red",
    "cannot": "yellow",
}


def _band(lo, hi):
    return "" if math.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"


def sweep_title(depth, width, batch, seeds, dtype, summary, interrupted):
    """init-sweep's title; an interrupted sweep says how many of the networks asked for finished."""
    title = f"init sweep: depth {depth}, width {width}, batch {batch}, {seeds} seed(s), {dtype}"
    if interrupted:
        done = int(summary["seeds"].sum()) if len(summary) else 0
        title += f"; interrupted: {done} network(s) finished"
    return title


def sweep_table(summary, title):
    """One row per scheme x act: last-layer m2 against theory and its finite-width band, verdict and why."""
    counts = sorted(set(summary["seeds"].astype(int))) if len(summary) else [0]
    networks = (
        f"{counts[0]} network(s)" if len(counts) == 1 else f"each row's {counts[0]}-{counts[-1]} networks"
    )
    table = Table(
        title=title,
        caption_justify="left",
        caption=(
            f"band: where 95 % of the mean log10 m2 at the last layer of {networks} should fall "
            "(theory and its finite-width noise); decades: the fitted change of log10 m2 over the stack"
        ),
    )
    backward = "grad_verdict" in summary
    columns = [
        "scheme",
        "act",
        "m2 last (geomean)",
        "predicted",
        "log10 m2 last",
        "expected band",
        "decades (fit)",
        *(["grad m2 at input"] if backward else []),
        "verdict",
        "why",
    ]
    for name in columns:
        table.add_column(name, justify="left" if name in ("scheme", "act", "verdict", "why") else "right")
    for row in summary.itertuples():
        style = VERDICT_STYLE[row.verdict.split(" ")[0]]
        grad = [num(row.grad_m2_input_geomean, ".3g", "nan")] if backward else []
        table.add_row(
            row.scheme,
            row.act,
            num(row.m2_last_geomean, ".3g", "nan"),
            num(row.pred_m2_last, ".3g", "-"),
            num(row.log10_m2_last, "+.2f", "nan"),
            _band(row.band_lo, row.band_hi),
            num(row.decades, "+.2f"),
            *grad,
            f"[{style}]{row.verdict}[/]",
            escape(row.reason),
        )
    return table


def _share(x):
    """A share as a percentage, blank when zero or missing: the cells worth reading stand out."""
    if missing(x) or x == 0:
        return ""
    return f"{100 * x:.3g}%"


def probe_table(layers, title, backward):
    """init-sweep --model: one row per leaf call of one seed, in forward order, with its findings."""
    table = Table(
        title=title,
        caption_justify="left",
        caption=(
            "zero/near 0: shares exactly 0 and |x| <= 0.05; fp16 under/over: shares below float16's smallest "
            "normal (6.1e-5, non-zero) and above its max (65504)"
            + (
                "; grad:data: std(dW) / std(W) of the layer's weight, "
                "from a unit-variance gradient at the output"
                if backward
                else ""
            )
        ),
    )
    columns = [
        "layer",
        "type",
        "shape",
        "mean",
        "std",
        "zero",
        "near 0",
        "max |x|",
        "fp16 under",
        "fp16 over",
        *(["grad std", "grad:data"] if backward else []),
        "finding",
    ]
    for name in columns:
        table.add_column(name, justify="left" if name in ("layer", "type", "shape", "finding") else "right")
    for row in layers.itertuples():
        name = row.layer if row.call == 1 else f"{row.layer} ({row.call})"
        grads = [sig3(row.grad_std), sig3(row.grad_data_ratio)] if backward else []
        finding = str(row.finding) if isinstance(row.finding, str) else ""
        table.add_row(
            escape(name),
            row.type,
            row.shape,
            num(row.mean, ".3g", "nan"),
            num(row.std, ".3g", "nan"),
            _share(row.frac_zero),
            _share(row.frac_near_zero),
            num(row.max_abs, ".3g", "nan"),
            _share(row.fp16_underflow),
            _share(row.fp16_overflow),
            *grads,
            f"[bold red]{escape(finding)}[/]" if finding else "",
        )
    return table


def _flag(x):
    return "" if missing(x) else str(bool(x))


def gradcheck_table(frame, title):
    """One row per check: hand-written against autograd, then against finite differences; empty where n/a."""
    table = Table(title=title)
    for name in (
        "check",
        "tensor",
        "shape",
        "dtype",
        "exact",
        "allclose",
        "max_abs_diff",
        "rel_err",
        "rtol",
        "atol",
        "passed",
    ):
        table.add_column(
            name, justify="right" if name in ("max_abs_diff", "rel_err", "rtol", "atol") else "left"
        )
    for row in frame.itertuples():
        table.add_row(
            row.check,
            escape(row.tensor),
            row.shape,
            row.dtype,
            _flag(row.exact),
            _flag(row.allclose),
            num(row.max_abs_diff, ".2e"),
            num(row.rel_err, ".2e"),
            num(row.rtol, "g"),
            num(row.atol, "g"),
            "[green]pass[/]" if row.passed else "[bold red]FAIL[/]",
        )
    return table


def _value(x, timing):
    if isinstance(x, str):
        return x
    if missing(x):
        return ""
    return human_seconds(x) if timing else f"{x:.4g}"


def _percent(x):
    return "" if x is None or math.isnan(x) else f"{100 * x:+.1f} %"


COMPARE_HEADERS = (
    "benchmark",
    "measure",
    "base",
    "new",
    "change [95 % CI]",
    "p",
    "n base/new",
    "detects",
    "verdict",
    "note",
)


def compare_cells(rows):
    """One list of strings per comparison row, in COMPARE_HEADERS' order."""
    out = []
    for r in rows.itertuples():
        timing = "s/" in r.what
        change = _percent(r.change)
        if change and not math.isnan(r.ci_low):
            change += f" [{_percent(r.ci_low)}, {_percent(r.ci_high)}]"
        n = "" if math.isnan(r.n_base) else f"{int(r.n_base)}/{int(r.n_new)}"
        out.append(
            [
                r.key,
                r.what,
                _value(r.base, timing),
                _value(r.new, timing),
                change,
                "" if math.isnan(r.p) else f"{r.p:.3g}",
                n,
                _percent(r.detectable),
                r.verdict,
                r.note,
            ]
        )
    return out


COMPARE_STYLE = {
    "REGRESSION": "bold red",
    "BROKEN": "bold red",
    "improved": "green",
    "same": "green",
    "small": "yellow",
    "inconclusive": "yellow",
    "insufficient": "yellow",
    "changed": "yellow",
    "failing": "red",
    "missing": "yellow",
    "added": "yellow",
    "untimed": "dim",
    "unstable": "bold yellow",
    "anchor": "dim",
    "info": "dim",
}


def compare_table(rows, title, caption):
    """The comparison as a rich table: one row per benchmark or check, its verdict coloured."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    verdict = COMPARE_HEADERS.index("verdict")
    for name in COMPARE_HEADERS:
        table.add_column(
            name, justify="right" if name in ("base", "new", "p", "n base/new", "detects") else "left"
        )
    for cells in compare_cells(rows):
        style = COMPARE_STYLE.get(cells[verdict], "")
        cells[verdict] = f"[{style}]{cells[verdict]}[/]" if style else cells[verdict]
        table.add_row(*[escape(c) if i != verdict else c for i, c in enumerate(cells)])
    return table


BISECT_STYLE = {"good": "green", "bad": "bold red", "skip": "yellow", "exit 0": "green", "exit 1": "bold red"}


def bisect_table(rows, title):
    """fnd bisect's runs, in order: the commit, its verdict, its change against GOOD (vs parent: against its
    parent) with the 95 % interval, the seconds it took, and why a step was skipped."""
    table = Table(title=title, caption_justify="left")
    for name in ("#", "run", "commit", "subject", "verdict", "change [95 % CI]", "seconds", "note"):
        table.add_column(name, justify="right" if name in ("#", "seconds") else "left")
    for r in rows.itertuples():
        interval = "" if missing(r.ci_low) else f" [{_percent(r.ci_low)}, {_percent(r.ci_high)}]"
        style = BISECT_STYLE.get(r.verdict, "")
        table.add_row(
            str(r.step),
            escape(r.role),
            r.commit[:12],
            escape(r.subject),
            f"[{style}]{escape(r.verdict)}[/]" if style else escape(r.verdict),
            f"{_percent(r.change)}{interval}",
            num(r.seconds, ".1f"),
            escape(r.note),
        )
    return table


CLAIM_STYLE = {"holds": "green", "differs": "yellow", "fails": "bold red"}


def claims_title(count):
    return f"fastbook ch. 17 on this machine: {count} claims"


def claims_table(claims, title):
    """fnd reproduce's claims: the book's figure, this machine's, the verdict."""
    table = Table(title=title)
    for name in ("section", "claim", "book", "fnd here", "verdict"):
        table.add_column(name)
    for row in claims.itertuples():
        table.add_row(
            row.section,
            escape(row.claim),
            escape(str(row.book)),
            escape(str(row.fnd)),
            f"[{CLAIM_STYLE[row.verdict]}]{row.verdict}[/]",
        )
    return table
