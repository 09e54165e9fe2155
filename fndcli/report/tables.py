"""Rendering for people: rich tables built from the cores' DataFrames (matmul-bench's and peak's:
`report.bench_tables`). Nothing here computes results."""

import math

import numpy as np
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


def train_labels(task, baseline, baseline_metric):
    """The metric's column name, and the caption naming the trivial model's figure it is read against."""
    metric = "valid R²" if task == "regression" else "valid accuracy"
    return metric, f"{metric} of a model that predicts {baseline}: {baseline_metric:.4f}"


def train_table(history, title, metric_name, caption=""):
    """One row per epoch; epoch 0 is before training."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for name in (
        "epoch",
        "train loss",
        "valid loss",
        metric_name,
        "seconds",
        "twin train loss",
        "twin valid loss",
        "max rel loss diff",
    ):
        table.add_column(name, justify="right")
    for row in history.itertuples():
        table.add_row(
            str(row.epoch),
            num(row.train_loss, ".5g"),
            num(row.valid_loss, ".5g"),
            num(row.valid_metric, ".4f"),
            num(row.seconds, ".3f"),
            num(row.ref_train_loss, ".5g"),
            num(row.ref_valid_loss, ".5g"),
            num(row.loss_rel_diff, ".2e"),
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


def _log10(x):
    return math.log10(x) if x > 0 and math.isfinite(x) else (-math.inf if x == 0 else math.nan)


def dynamics_table(stats, title):
    """train --stats, the first seed at the last step observed whose layers' means are finite (a diverged
    run's last is nan): each layer (mean, std, dead, near zero, saturated (a tanh's), gradient std) and each
    parameter (gradient std, grad:data, log10 update:data)."""
    stats = stats[(stats["seed"] == stats["seed"].min()) & (stats["stat"] != "loss")]
    means = stats[stats["stat"] == "mean"]
    finite = means.groupby("step")["value"].apply(lambda v: bool(np.isfinite(v.to_numpy(dtype=float)).all()))
    step = max(finite.index[finite], default=means["step"].max())
    last = stats[stats["step"] == step]
    table = Table(title=f"{title}, step {step}")
    for name in (
        "layer",
        "mean",
        "std",
        "dead",
        "near 0",
        "saturated",
        "grad std",
        "grad:data",
        "log10 update:data",
    ):
        table.add_column(name, justify="left" if name == "layer" else "right")
    values = last.pivot_table(
        index="layer", columns="stat", values="value", aggfunc="first", sort=False, dropna=False
    )
    for layer, row in values.iterrows():
        param = "." in layer  # lin1.w: a parameter
        table.add_row(
            layer,
            *("" if param else num(row.get(s, math.nan), ".3g") for s in ("mean", "std")),
            *("" if param else num(row.get(s, math.nan), ".1%") for s in ("dead", "near_zero", "saturated")),
            num(row.get("grad_std", math.nan), ".3g"),
            num(row.get("grad_data", math.nan), ".3g") if param else "",
            num(_log10(row["update_data"]), "+.2f") if param else "",
        )
    return table


def lr_find_table(rows, title, every=10):
    """train --lr-find: every `every`th step of the sweep, and its last."""
    table = Table(title=title)
    for name in ("step", "lr", "loss", "smoothed"):
        table.add_column(name, justify="right")
    shown = rows[(rows["step"] % every == 0) | (rows.index == len(rows) - 1)]
    for row in shown.itertuples():
        table.add_row(str(row.step), num(row.lr, ".3g"), num(row.loss, ".5g"), num(row.smoothed, ".5g"))
    return table


def widths_table(rows, title):
    """train --widths: per layer, its activation's and first update's growth per doubling of the width."""
    table = Table(title=title)
    for name in ("layer", "size", "step", "x per doubling", "± (1 se)", "verdict"):
        table.add_column(name, justify="left" if name in ("layer", "size", "verdict") else "right")
    for row in rows.itertuples():
        se = 2**row.slope * (2**row.slope_se - 1) if row.slope_se == row.slope_se else math.nan
        style = {"flat": "green", "grows": "bold red", "shrinks": "yellow"}.get(row.verdict, "")
        verdict = f"[{style}]{row.verdict}[/]" if style else row.verdict
        table.add_row(
            row.layer, row.what, str(row.step), num(row.per_doubling, ".3f"), num(se, ".3f"), verdict
        )
    return table
