"""Rendering for people: `fnd train`'s tables, its epochs and its training lab (--stats, --lr-find,
--widths). Nothing here computes results."""

import math

import numpy as np
from rich.table import Table

from fndcli.report.figures import num


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
