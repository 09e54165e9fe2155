"""Rendering for people: rich tables built from the cores' DataFrames. Nothing here computes results."""
import math

from rich.markup import escape
from rich.table import Table


def _missing(x):
    """None or NaN: an empty cell."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def human_seconds(s):
    """0.000012 -> '12.0 µs'; NaN -> ''."""
    if _missing(s):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(s) >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _num(x, fmt, nan=""):
    return nan if _missing(x) else format(x, fmt)


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


def bench_table(frame, title, caption=""):
    """The matmul ladder at each shape in the run's order (the chapter's: slowest rung first), not sorted by
    the medians, which a loaded host can swap."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    devices = frame["device"].nunique() > 1
    extra = [c for c, show in (("% peak", frame["pct_peak"].notna().any()),
                               ("compile", frame["compile_s"].notna().any())) if show]
    for name in ("impl", "shape", "median", "± stdev", "min", "values", "GFLOP/s", "speedup", *extra, "rel err",
                 "correct"):
        table.add_column(name, justify="left" if name in ("impl", "shape", "correct") else "right")
    for row in frame.sort_values(["m", "k", "n"], kind="stable").itertuples():
        shape = f"{row.m}x{row.k}x{row.n}"
        name = f"{row.impl}@{row.device}" if devices else row.impl
        if row.skipped:
            table.add_row(name, shape, *[""] * (7 + len(extra) + 1), f"[yellow]skipped: {row.skipped}[/]")
            continue
        correct = "yes" if row.correct else f"[bold red]NO[/]: {escape(row.error)}" if row.error else "[bold red]NO[/]"
        cells = {"% peak": _num(row.pct_peak, ".0f" if row.pct_peak >= 10 else ".2g"),  # 0.0026, not 0
                 "compile": human_seconds(row.compile_s)}
        table.add_row(name, shape, human_seconds(row.median_s), human_seconds(row.stdev_s),
                      human_seconds(row.min_s), _num(row.n_values, ".0f"), _num(row.gflops, ".3g"),
                      sig3(row.speedup) + "×" if sig3(row.speedup) else "",
                      *[cells[c] for c in extra], _num(row.rel_err, ".1e"), correct)
    return table


def bench_title(dtype, devices, threads, preset, order):
    """matmul-bench's title: what was timed, and how."""
    return (f"matmul ladder, {dtype}, {'/'.join(devices)}, {threads} thread(s), pyperf {preset}"
            f"{', ' + order if order and preset != 'quick' else ''}")


def peak_table(rows, title, caption):
    """fnd peak: each kernel's best figure at each dtype and thread count; the best of each group in bold and
    starred (bold is lost in a pipe or under NO_COLOR)."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for name in ("ceiling", "kernel", "dtype", "threads", "GFLOP/s", "GB/s", "best call", "measured (UTC)"):
        table.add_column(name, justify="right" if name in ("threads", "GFLOP/s", "GB/s", "best call") else "left")
    column = rows["gflops"].where(rows["what"] == "fma", rows["gb_s"])
    best = column == column.groupby([rows["what"], rows["dtype"], rows["threads"]]).transform("max")
    for row, top in zip(rows.itertuples(), best):
        bold = "[bold]{}[/]" if top else "{}"
        what = ("FMA" if row.what == "fma" else "bandwidth") + (" *" if top else "")
        table.add_row(what, row.kernel, row.dtype, str(row.threads),
                      bold.format(_num(row.gflops, ".4g")), bold.format(_num(row.gb_s, ".3g")),
                      human_seconds(row.best_s), f"{str(row.measured_utc)[:16].replace('T', ' ')}"
                      f"{'' if row.source == 'measured' else ' (cached)'}")
    return table


def peak_caption(rows, measured, cache_file, cache_note=None):
    """What the ceilings are: the best of each group (bold), the ridge point, what came from the cache."""
    notes = ["* and bold: the ceiling (the best kernel); FMA: 2 FLOPs per fused multiply-add; bandwidth: STREAM's bytes "
             "(copy 2, triad 3 arrays; no write-allocate)"]
    fma = rows[rows["what"] == "fma"].groupby(["dtype", "threads"])["gflops"].max()
    bw = rows[rows["what"] == "bandwidth"].groupby("threads")["gb_s"].max()
    ridges = [f"{dtype} {gflops / bw[threads]:.3g} at {threads} thread(s)" for (dtype, threads), gflops in fma.items()
              if threads in bw.index]
    if ridges:
        notes.append(f"ridge points, FMA ceiling ÷ bandwidth, in FLOP/byte (a matmul of lower arithmetic intensity "
                     f"is bound by memory): {', '.join(ridges)}")
    cached = len(rows) - measured
    notes.append(f"{measured} row(s) measured now, {cached} from the cache {cache_file} (fnd peak --refresh "
                 "measures again)" if cached else f"measured now; cached in {cache_file}")
    if cache_note:
        notes.append(f"[yellow]the cache:[/] {escape(cache_note)}")
    return "\n".join(notes)


CROSSOVER_TITLE = "crossovers: where one overtakes another, their ranges of values apart on both sides"


def bench_caption(baseline, ceilings, why="", peak_note=None, above=(), unstable=()):
    """What speedup and % peak are relative to: baseline names the speedups' series (or None) and `why` it was
    chosen; ceilings are the sidecar's `peak` (device, dtype, threads, gflops, source); `above`: rows faster
    than their ceiling, whose % peak is left out; `unstable`: the sidecar's warnings (bench.stats.instability)."""
    why = f" (baseline: {why})" if why else ""
    notes = [f"speedup: the median of {baseline} ÷ the row's median, at the same shape{why}"] if baseline else []
    notes += [f"% peak: of {c['source']}" for c in ceilings]
    if any(c.get("gb_s") for c in ceilings):
        notes.append("roofline (CSV: intensity, roof_gflops, bound): 2mkn FLOPs over the bytes of a, b and c; "
                     "--plot draws it")
    if peak_note:
        notes.append(f"no % peak for {'some rows' if ceilings else 'any row'}: {peak_note}")
    if above:
        why = ("--peak-gflops is below what they reached" if any(c.get("given") for c in ceilings) else
               "the ceiling is too low (measured on a busy host?); run fnd peak --refresh on a quiet one")
        notes.append(f"[yellow]faster than the ceiling, so no % peak:[/] {'; '.join(above)}: {why}")
    notes += [f"[bold yellow]not to be trusted:[/] {escape(text)}" for text in unstable]
    return "\n".join(notes)


def crossover_table(crossovers, title):
    """Each crossover: which series overtakes which, between which sizes of the swept dimension."""
    table = Table(title=title)
    for name in ("faster from here", "than", "slower up to", "faster at", "shape", "medians there"):
        table.add_column(name, justify="right" if name in ("slower up to", "faster at") else "left")
    for row in crossovers.itertuples():
        dim = "side" if row.dim == "all" else row.dim
        table.add_row(row.faster, row.slower, f"{dim} {row.from_size}", f"{dim} {row.size}", f"{row.m}x{row.k}x{row.n}",
                      f"{human_seconds(row.faster_median_s)} vs {human_seconds(row.slower_median_s)}")
    return table


VERDICT_STYLE = {"stable": "green", "vanishing": "yellow", "exploding": "bold red", "saturated": "bold red",
                 "cannot": "yellow"}


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
    networks = f"{counts[0]} network(s)" if len(counts) == 1 else f"each row's {counts[0]}-{counts[-1]} networks"
    table = Table(title=title, caption_justify="left", caption=(
        f"band: where 95 % of the mean log10 m2 at the last layer of {networks} should fall "
        "(theory and its finite-width noise); decades: the fitted change of log10 m2 over the stack"))
    backward = "grad_verdict" in summary
    columns = ["scheme", "act", "m2 last (geomean)", "predicted", "log10 m2 last", "expected band", "decades (fit)",
               *(["grad m2 at input"] if backward else []), "verdict", "why"]
    for name in columns:
        table.add_column(name, justify="left" if name in ("scheme", "act", "verdict", "why") else "right")
    for row in summary.itertuples():
        style = VERDICT_STYLE[row.verdict.split(" ")[0]]
        grad = [_num(row.grad_m2_input_geomean, ".3g", "nan")] if backward else []
        table.add_row(row.scheme, row.act, _num(row.m2_last_geomean, ".3g", "nan"), _num(row.pred_m2_last, ".3g", "-"),
                      _num(row.log10_m2_last, "+.2f", "nan"), _band(row.band_lo, row.band_hi),
                      _num(row.decades, "+.2f"), *grad,
                      f"[{style}]{row.verdict}[/]", escape(row.reason))
    return table


def _share(x):
    """A share as a percentage, blank when zero or missing: the cells worth reading stand out."""
    if _missing(x) or x == 0:
        return ""
    return f"{100 * x:.3g}%"


def probe_table(layers, title, backward):
    """init-sweep --model: one row per leaf call of one seed, in forward order, with its findings."""
    table = Table(title=title, caption_justify="left", caption=(
        "zero/near 0: shares exactly 0 and |x| <= 0.05; fp16 under/over: shares below float16's smallest normal "
        "(6.1e-5, non-zero) and above its max (65504)" + ("; grad:data: std(dW) / std(W) of the layer's weight, "
                                                          "from a unit-variance gradient at the output" if backward else "")))
    columns = ["layer", "type", "shape", "mean", "std", "zero", "near 0", "max |x|", "fp16 under", "fp16 over",
               *(["grad std", "grad:data"] if backward else []), "finding"]
    for name in columns:
        table.add_column(name, justify="left" if name in ("layer", "type", "shape", "finding") else "right")
    for row in layers.itertuples():
        name = row.layer if row.call == 1 else f"{row.layer} ({row.call})"
        grads = [sig3(row.grad_std), sig3(row.grad_data_ratio)] if backward else []
        finding = str(row.finding) if isinstance(row.finding, str) else ""
        table.add_row(escape(name), row.type, row.shape, _num(row.mean, ".3g", "nan"), _num(row.std, ".3g", "nan"),
                      _share(row.frac_zero), _share(row.frac_near_zero), _num(row.max_abs, ".3g", "nan"),
                      _share(row.fp16_underflow), _share(row.fp16_overflow), *grads,
                      f"[bold red]{escape(finding)}[/]" if finding else "")
    return table


def _flag(x):
    return "" if _missing(x) else str(bool(x))


def gradcheck_table(frame, title):
    """One row per check: hand-written against autograd, then against finite differences; empty where n/a."""
    table = Table(title=title)
    for name in ("check", "tensor", "shape", "dtype", "exact", "allclose", "max_abs_diff", "rel_err", "rtol",
                 "atol", "passed"):
        table.add_column(name, justify="right" if name in ("max_abs_diff", "rel_err", "rtol", "atol") else "left")
    for row in frame.itertuples():
        table.add_row(row.check, escape(row.tensor), row.shape, row.dtype, _flag(row.exact), _flag(row.allclose),
                      _num(row.max_abs_diff, ".2e"), _num(row.rel_err, ".2e"), _num(row.rtol, "g"), _num(row.atol, "g"),
                      "[green]pass[/]" if row.passed else "[bold red]FAIL[/]")
    return table


def train_labels(task, baseline, baseline_metric):
    """The metric's column name, and the caption naming the trivial model's figure it is read against."""
    metric = "valid R²" if task == "regression" else "valid accuracy"
    return metric, f"{metric} of a model that predicts {baseline}: {baseline_metric:.4f}"


def train_table(history, title, metric_name, caption=""):
    """One row per epoch; epoch 0 is before training."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for name in ("epoch", "train loss", "valid loss", metric_name, "seconds", "twin train loss", "twin valid loss",
                 "max rel loss diff"):
        table.add_column(name, justify="right")
    for row in history.itertuples():
        table.add_row(str(row.epoch), _num(row.train_loss, ".5g"), _num(row.valid_loss, ".5g"),
                      _num(row.valid_metric, ".4f"), _num(row.seconds, ".3f"), _num(row.ref_train_loss, ".5g"),
                      _num(row.ref_valid_loss, ".5g"), _num(row.loss_rel_diff, ".2e"))
    return table


def markdown_table(headers, rows):
    """A GitHub-flavoured Markdown table of strings (a pipe inside a cell is escaped)."""
    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _value(x, timing):
    if isinstance(x, str):
        return x
    if _missing(x):
        return ""
    return human_seconds(x) if timing else f"{x:.4g}"


def _percent(x):
    return "" if x is None or math.isnan(x) else f"{100 * x:+.1f} %"


COMPARE_HEADERS = ("benchmark", "measure", "base", "new", "change [95 % CI]", "p", "n base/new", "detects", "verdict",
                   "note")


def compare_cells(rows):
    """One list of strings per comparison row, in COMPARE_HEADERS' order."""
    out = []
    for r in rows.itertuples():
        timing = "s/" in r.what
        change = _percent(r.change)
        if change and not math.isnan(r.ci_low):
            change += f" [{_percent(r.ci_low)}, {_percent(r.ci_high)}]"
        n = "" if math.isnan(r.n_base) else f"{int(r.n_base)}/{int(r.n_new)}"
        out.append([r.key, r.what, _value(r.base, timing), _value(r.new, timing), change,
                    "" if math.isnan(r.p) else f"{r.p:.3g}", n, _percent(r.detectable), r.verdict, r.note])
    return out


COMPARE_STYLE = {"REGRESSION": "bold red", "BROKEN": "bold red", "improved": "green", "same": "green",
                 "small": "yellow", "inconclusive": "yellow", "insufficient": "yellow", "changed": "yellow",
                 "failing": "red", "missing": "yellow", "added": "yellow", "untimed": "dim", "unstable": "bold yellow",
                 "anchor": "dim"}


def compare_table(rows, title, caption):
    """The comparison as a rich table: one row per benchmark or check, its verdict coloured."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    verdict = COMPARE_HEADERS.index("verdict")
    for name in COMPARE_HEADERS:
        table.add_column(name, justify="right" if name in ("base", "new", "p", "n base/new", "detects") else "left")
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
        table.add_row(row.section, escape(row.claim), escape(str(row.book)), escape(str(row.fnd)),
                      f"[{CLAIM_STYLE[row.verdict]}]{row.verdict}[/]")
    return table
