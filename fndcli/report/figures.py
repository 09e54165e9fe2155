"""Figures as people read them: times with their unit, three significant figures, Markdown cells.

Shared by the rich tables (`report.tables`, `report.bench_tables`), `fnd show --format md` and
reproduce's report. Pure functions of their arguments.
"""

import math


def missing(x):
    """None or NaN: an empty cell."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def human_seconds(s):
    """0.000012 -> '12.0 µs'; NaN -> ''."""
    if missing(s):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def timing_text(s, anchor=""):
    """A history row's figure: seconds (human_seconds), or with an anchor the time over the anchor's,
    '1.05x torch'; NaN -> ''."""
    if not anchor or missing(s):
        return human_seconds(s)
    return f"{s:.3g}x {anchor}"


def num(x, fmt, nan=""):
    """x formatted, or `nan` where it is missing (NaN, None)."""
    return nan if missing(x) else format(x, fmt)


def sig3(x):
    """Three significant figures, with thousands separators: 1.45, 0.0123, 87,800; from a million up and below
    a thousandth in exponent form (a gradient's std of 3.95e+19, not 39,500,000,000,000,000,000)."""
    if x is None or not math.isfinite(x):
        return ""
    if x == 0:
        return "0"
    if not 1e-3 <= abs(x) < 1e6:
        return f"{x:.2e}"
    rounded = round(x, 2 - math.floor(math.log10(abs(x))))
    digits = max(0, 2 - math.floor(math.log10(abs(rounded))))  # 9.996 rounds to 10.0, not 10.00
    return f"{rounded:,.{digits}f}"


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table of strings (a pipe inside a cell is escaped)."""

    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


FIGURE_HEADERS = ("commit", "date", "subject", "value", "verdict", "runs", "change", "size", "p")


def percent(x):
    """0.331 -> '+33.1%', 3e6 -> '+3e+08%': a relative change to 3 significant figures; NaN -> ''."""
    return "" if missing(x) else f"{x * 100:+.3g}%"


def figure_cells(rows):
    """The cells of `fnd history --command`'s rows (fndcli.kinds.HISTORY_FIGURES): a number to 6 significant
    figures (a change is one beyond 1e-4 relative), a text figure as it is."""
    return [
        (
            *(r["commit"], r["date"], r["subject"]),
            r["value"] if isinstance(r["value"], str) else num(r["value"], ".6g"),
            *(r["verdict"] or "", str(r["runs"]), r["change"], percent(r["size"]), num(r["p"], ".2g")),
        )
        for r in rows
    ]


TIMING_HEADERS = ("commit", "date", "subject", "median", "95% interval", "n", "change", "size", "p")


def timing_cells(rows):
    """`fnd history`'s table cells of matmul-bench rows (fndcli.kinds.HISTORY), headed by TIMING_HEADERS."""
    return [
        (
            r["commit"],
            r["date"],
            r["subject"],
            timing_text(r["median_s"], r["anchor"]),
            _interval(r),
            str(r["n"]),
            r["change"],
            num(r["size"], "+.1%"),
            num(r["p"], ".2g"),
        )
        for r in rows
    ]


def _interval(row):
    """A row's 95 % interval of its median: '9.8 µs – 10.2 µs', or with an anchor '0.99 – 1.02x torch'."""
    if missing(row["low_s"]):
        return ""
    low = f"{row['low_s']:.3g}" if row["anchor"] else timing_text(row["low_s"])
    return f"{low} – {timing_text(row['high_s'], row['anchor'])}"
