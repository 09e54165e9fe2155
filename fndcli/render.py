"""Rendering for people: rich tables built from the cores' DataFrames. Nothing here computes results."""
import math

from rich.table import Table


def human_seconds(s):
    """0.000012 -> '12.0 µs'; NaN -> ''."""
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _num(x, fmt):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def bench_table(frame, title):
    """The matmul ladder, slowest first at each shape; skipped rows lead (they would be slowest)."""
    table = Table(title=title)
    for name in ("impl", "shape", "median", "± stdev", "min", "values", "GFLOP/s", "speedup", "rel err", "correct"):
        table.add_column(name, justify="left" if name in ("impl", "shape", "correct") else "right")
    order = frame.assign(_skip=frame["skipped"].astype(bool)).sort_values(
        ["m", "k", "n", "_skip", "median_s"], ascending=[True, True, True, False, False])
    for row in order.itertuples():
        shape = f"{row.m}x{row.k}x{row.n}"
        if row.skipped:
            table.add_row(row.impl, shape, "", "", "", "", "", "", "", f"[yellow]skipped: {row.skipped}[/]")
            continue
        correct = "yes" if row.correct else "[bold red]NO[/]"
        table.add_row(row.impl, shape, human_seconds(row.median_s), human_seconds(row.stdev_s),
                      human_seconds(row.min_s), _num(row.n_values, ".0f"), _num(row.gflops, ".3g"),
                      _num(row.speedup, ",.0f") + "x" if not math.isnan(row.speedup) else "",
                      _num(row.rel_err, ".1e"), correct)
    return table
