"""`fnd history --html`'s page: one chart per benchmark over commits, inline SVG in one self-contained HTML
file. No script library and no fetch of any kind: the page's Content-Security-Policy allows its own style and
script (by hash) and nothing else, so it works offline and a stray URL cannot load.

Every string from the user (commit subjects, benchmark names, the store's URL) goes through
`html.escape` once, in `_text`: it is text on the page, never markup. A pure function of the rows: the CLI
writes what it returns."""

import base64
import hashlib
import math
from dataclasses import dataclass
from html import escape

from fndcli.report.figures import num, timing_text

WIDTH, HEIGHT = 880, 260  # the SVG's own units; it scales to the page's width
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 12, 40  # margins: the seconds' labels left, the commits' below
LABEL_PX = 64  # room for one commit's label under the axis (7 hex digits)


@dataclass(frozen=True)
class Mark:
    """How a point is drawn, on the page and in --plot's PNG, by its row's `change`."""

    cls: str  # its CSS class on the page
    colour: str
    polygon: str | None  # its shape on the page, around the point (None: a dot)
    marker: str  # its matplotlib marker
    hollow: bool
    text: str  # the legend's


MARKS = {
    "": Mark("plain", "#1565c0", None, "o", False, "a commit: the median of its processes' fastest values"),
    "REGRESSION": Mark("regression", "#c62828", "0,-9 8,6 -8,6", "^", False, "REGRESSION: slower from here"),
    "improved": Mark("improved", "#2e7d32", "0,9 8,-6 -8,-6", "v", False, "improved: faster from here"),
    "not judged": Mark(
        "unjudged", "#ef6c00", "0,-7 7,0 0,7 -7,0", "D", True, "not judged: too few processes"
    ),
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.3rem}h2{font-size:1rem;margin:2rem 0 .3rem;font-family:ui-monospace,monospace}"
    "svg.chart{display:block;width:100%;height:auto}svg text{font-size:11px;fill:#444}"
    "svg text.commit{font-family:ui-monospace,monospace}.axis{fill:none;stroke:#888}.grid{stroke:#e6e6e6}"
    ".line{fill:none;stroke:#1565c0;stroke-width:1.5}.at{stroke-width:1.5;stroke-dasharray:5 3}"
    ".legend span{white-space:nowrap;margin-right:1.2rem}.legend svg{vertical-align:middle;margin-right:.3em}"
    "table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    + "".join(
        f".{m.cls}{{fill:{'#fff' if m.hollow else m.colour};stroke:{m.colour};stroke-width:{1 + m.hollow}}}"
        f"tr.{m.cls}{{color:{m.colour}}}"
        for m in MARKS.values()
    )
    + ".point:hover{stroke:#000;stroke-width:2}"
)
# What a browser drew, and any error or blocked fetch, as data- attributes on <html>: the series whose
# shapes have an area, the points, the errors (tests/test_history_page.py reads them from headless chromium).
SCRIPT = """(() => {
  const root = document.documentElement;
  const count = (name) => { root.dataset[name] = String(Number(root.dataset[name] || 0) + 1); };
  addEventListener("error", () => count("errors"), true);
  addEventListener("securitypolicyviolation", () => count("errors"));
  addEventListener("DOMContentLoaded", () => {
    const drawn = [...document.querySelectorAll("svg.chart g.series")].filter((g) => {
      const box = g.getBBox();
      return box.width > 0 && box.height > 0;
    });
    root.dataset.series = String(drawn.length);
    root.dataset.points = String(document.querySelectorAll("svg.chart g.series .point").length);
  });
})();"""


def _text(value):
    """The user's text (or anything else) as HTML text: < > & " ' escaped, never markup."""
    return escape(str(value), quote=True)


def _hash(source):
    """The Content-Security-Policy source that allows this inline style or script, and no other."""
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def _span(values):
    """The log axis's (low, high): the values' range, padded 8 % of it (at least 5 %) on each side."""
    finite = [v for v in values if _drawable(v)] or [1.0]
    low, high = math.log(min(finite)), math.log(max(finite))
    pad = max((high - low) * 0.08, math.log(1.05))
    return math.exp(low - pad), math.exp(high + pad)


def _drawable(v):
    """A figure the log axis can place."""
    return v is not None and math.isfinite(v) and v > 0


def _ticks(low, high):
    """Round values for the log axis: 1-2-5 a decade where three fit (1 a decade past ten marks), else the
    coarsest round step (1, 5 or 2 units) with three marks or more: a series that moves 50 % gets 10, 12,
    14 µs, not one decade's mark."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    ticks = [m * 10.0**d for d in decades for m in (1, 2, 5) if low <= m * 10.0**d <= high]
    if len(ticks) > 10:
        return [10.0**d for d in decades if low <= 10.0**d <= high]
    if len(ticks) >= 3:
        return ticks
    unit = 10.0 ** math.ceil(math.log10(high - low))
    while True:
        for step in (unit, unit / 2, unit / 5):
            ticks = [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
            if len(ticks) >= 3:
                return ticks
        unit /= 10


def _tooltip(row):
    """What hovering a point shows (its SVG <title>): the commit, date, subject, the figure, the change."""
    lines = [
        f"commit {row['commit']}, {row['date']}",
        row["subject"],
        f"median {timing_text(row['median_s'], row.get('anchor'))} over {row['n']} worker processes",
    ]
    if row["change"]:
        lines.append(f"{row['change']} here: {num(row['size'], '+.1%')}, p {num(row['p'], '.2g')}")
    return _text("\n".join(str(line) for line in lines))


def _mark(row, x, y):
    """A point: a dot, or a change point's own shape and colour, with its tooltip."""
    return _shape(MARKS[row["change"]], x, y, "point ", f"<title>{_tooltip(row)}</title>")


def _shape(mark, x, y, cls="", inside=""):
    """A mark's dot or polygon at (x, y), with more classes (cls) and content (inside)."""
    if mark.polygon is None:
        return f'<circle class="{cls}{mark.cls}" cx="{x:.1f}" cy="{y:.1f}" r="4.5">{inside}</circle>'
    where = f"translate({x:.1f} {y:.1f})"
    return f'<polygon class="{cls}{mark.cls}" transform="{where}" points="{mark.polygon}">{inside}</polygon>'


def chart(title, rows):
    """One benchmark's inline SVG: its median per commit (x: commits in commit order; y: seconds, log),
    a dashed line where each change starts, each point with a tooltip."""
    low, high = _span([r["median_s"] for r in rows])
    anchored = bool(rows[0].get("anchor"))  # times over an anchor's: the ticks are ratios, '1.05x'
    step = (WIDTH - LEFT - RIGHT) / len(rows)
    bottom = HEIGHT - BOTTOM

    def x(i):
        return LEFT + (i + 0.5) * step

    def y(v):
        return TOP + (bottom - TOP) * math.log(high / v) / math.log(high / low)

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_text(title)}">']
    for t in _ticks(low, high):
        label = f"{t:.3g}x" if anchored else timing_text(t)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{_text(label)}</text>'
        )
    out.append(f'<path class="axis" d="M{LEFT} {TOP}V{bottom}H{WIDTH - RIGHT}"/>')
    every = math.ceil(LABEL_PX / step)
    for i, r in enumerate(rows):
        if i % every == 0:
            out.append(
                f'<text class="commit" x="{x(i):.1f}" y="{bottom + 16}" text-anchor="middle">'
                f"{_text(r['commit'][:7])}</text>"
            )
        if r["change"]:
            at = x(i) - step / 2  # between the last commit before the change and its first
            cls = MARKS[r["change"]].cls
            out.append(f'<line class="at {cls}" x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{bottom}"/>')
    middle = LEFT + (WIDTH - LEFT - RIGHT) / 2
    out.append(
        f'<text x="{middle:.0f}" y="{HEIGHT - 4}" text-anchor="middle">commits, in commit order</text>'
    )
    points = [(x(i), y(r["median_s"]), r) for i, r in enumerate(rows) if _drawable(r["median_s"])]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
    out.append(f'<g class="series" data-benchmark="{_text(title)}"><polyline class="line" points="{line}"/>')
    out += [_mark(r, px, py) for px, py, r in points]
    out.append("</g></svg>")
    return "".join(out)


def _changes_table(rows):
    """The benchmark's change points as a table, as the command's table shows them."""
    changed = [r for r in rows if r["change"]]
    if not changed:
        return "<p>No change point.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("commit", "date", "subject", "change", "size", "p"))
    body = "".join(
        f'<tr class="{MARKS[r["change"]].cls}"><td><code>{_text(r["commit"])}</code></td>'
        f"<td>{_text(r['date'])}</td><td>{_text(r['subject'])}</td><td>{_text(r['change'])}</td>"
        f"<td>{num(r['size'], '+.1%')}</td><td>{num(r['p'], '.2g')}</td></tr>"
        for r in changed
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _legend():
    """Each mark and what it means."""
    icon = '<svg width="20" height="20" aria-hidden="true">{}</svg>'
    items = [f"<span>{icon.format(_shape(m, 10, 10))}{_text(m.text)}</span>" for m in MARKS.values()]
    return f'<p class="legend">{"".join(items)}</p>'


def history_page(charts, header, footer):
    """The page's HTML text: the header (the store, the machine, what was asked), the footer's lines (change
    points, gate), the legend, then each benchmark's chart and its change points.

    charts: {benchmark title: its rows (fndcli.kinds.HISTORY) in commit order}."""
    policy = f"default-src 'none'; style-src '{_hash(STYLE)}'; script-src '{_hash(SCRIPT)}'"
    sections = "".join(
        f"<section><h2>{_text(title)}</h2>{chart(title, rows)}{_changes_table(rows)}</section>"
        for title, rows in charts.items()
    )
    summary = "".join(f"<li>{_text(line)}</li>" for line in footer)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(header)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>\n"
        f"<body><h1>{_text(header)}</h1><ul>{summary}</ul>{_legend()}\n{sections}\n</body></html>\n"
    )
