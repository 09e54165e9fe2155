"""matmul-bench's and fnd peak's tables: the ladder, its caption (what the speedups and % peak are of),
the crossovers, and the machine's ceilings."""

from rich.markup import escape
from rich.table import Table

from fndcli.report.figures import human_seconds, num, sig3


def bench_table(frame, title, caption=""):
    """The matmul ladder at each shape in the run's order (the chapter's: slowest rung first), not sorted by
    the medians, which a loaded host can swap."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    devices = frame["device"].nunique() > 1
    extra = [
        c
        for c, show in (
            ("% peak", frame["pct_peak"].notna().any()),
            ("compile", frame["compile_s"].notna().any()),
        )
        if show
    ]
    for name in (
        "impl",
        "shape",
        "median",
        "± stdev",
        "min",
        "values",
        "GFLOP/s",
        "speedup",
        *extra,
        "rel err",
        "correct",
    ):
        table.add_column(name, justify="left" if name in ("impl", "shape", "correct") else "right")
    for row in frame.sort_values(["m", "k", "n"], kind="stable").itertuples():
        shape = f"{row.m}x{row.k}x{row.n}"
        name = f"{row.impl}@{row.device}" if devices else row.impl
        if row.skipped:
            table.add_row(name, shape, *[""] * (7 + len(extra) + 1), f"[yellow]skipped: {row.skipped}[/]")
            continue
        correct = (
            "yes"
            if row.correct
            else f"[bold red]NO[/]: {escape(row.error)}"
            if row.error
            else "[bold red]NO[/]"
        )
        cells = {
            "% peak": num(row.pct_peak, ".0f" if row.pct_peak >= 10 else ".2g"),  # 0.0026, not 0
            "compile": human_seconds(row.compile_s),
        }
        table.add_row(
            name,
            shape,
            human_seconds(row.median_s),
            human_seconds(row.stdev_s),
            human_seconds(row.min_s),
            num(row.n_values, ".0f"),
            num(row.gflops, ".3g"),
            sig3(row.speedup) + "×" if sig3(row.speedup) else "",
            *[cells[c] for c in extra],
            num(row.rel_err, ".1e"),
            correct,
        )
    return table


def bench_title(dtype, devices, threads, preset, order):
    """matmul-bench's title: what was timed, and how."""
    return (
        f"matmul ladder, {dtype}, {'/'.join(devices)}, {threads} thread(s), pyperf {preset}"
        f"{', ' + order if order and preset != 'quick' else ''}"
    )


def peak_table(rows, title, caption):
    """fnd peak: each kernel's best figure at each dtype and thread count; the best of each group in bold and
    starred (bold is lost in a pipe or under NO_COLOR)."""
    table = Table(title=title, caption=caption or None, caption_justify="left")
    for name in ("ceiling", "kernel", "dtype", "threads", "GFLOP/s", "GB/s", "best call", "measured (UTC)"):
        table.add_column(
            name, justify="right" if name in ("threads", "GFLOP/s", "GB/s", "best call") else "left"
        )
    column = rows["gflops"].where(rows["what"] == "fma", rows["gb_s"])
    best = column == column.groupby([rows["what"], rows["dtype"], rows["threads"]]).transform("max")
    for row, top in zip(rows.itertuples(), best):
        bold = "[bold]{}[/]" if top else "{}"
        what = ("FMA" if row.what == "fma" else "bandwidth") + (" *" if top else "")
        table.add_row(
            what,
            row.kernel,
            row.dtype,
            str(row.threads),
            bold.format(num(row.gflops, ".4g")),
            bold.format(num(row.gb_s, ".3g")),
            human_seconds(row.best_s),
            f"{str(row.measured_utc)[:16].replace('T', ' ')}{' (cached)' if row.source == 'cached' else ''}",
        )
    return table


def peak_caption(rows, measured, cache_file, cache_note=None, refused=None):
    """What the ceilings are: the best of each group (bold), the ridge point, what came from the cache;
    `refused`: why what was measured now was not cached (bench.peak.disagreements)."""
    notes = [
        "* and bold: the ceiling (the best kernel); FMA: 2 FLOPs per fused multiply-add; bandwidth: STREAM's "
        "bytes (copy 2, triad 3 arrays; no write-allocate)"
    ]
    fma = rows[rows["what"] == "fma"].groupby(["dtype", "threads"])["gflops"].max()
    bw = rows[rows["what"] == "bandwidth"].groupby("threads")["gb_s"].max()
    ridges = [
        f"{dtype} {gflops / bw[threads]:.3g} at {threads} thread(s)"
        for (dtype, threads), gflops in fma.items()
        if threads in bw.index
    ]
    if ridges:
        notes.append(
            f"ridge points, FMA ceiling ÷ bandwidth, in FLOP/byte (a matmul of lower arithmetic intensity "
            f"is bound by memory): {', '.join(ridges)}"
        )
    cached = len(rows) - measured
    if refused:
        notes.append(f"[bold yellow]{measured} row(s) measured now, {escape(refused)}[/]")
    kept = "not written to" if refused else "added to"
    if cached:
        now = (
            f"{measured} row(s) measured now ({kept} the cache), " if measured else "0 row(s) measured now, "
        )
        notes.append(f"{now}{cached} from the cache {cache_file} (fnd peak --refresh measures again)")
    else:
        notes.append(f"measured now; {'not written to' if refused else 'cached in'} {cache_file}")
    if cache_note:
        notes.append(f"[yellow]the cache:[/] {escape(cache_note)}")
    return "\n".join(notes)


CROSSOVER_TITLE = "crossovers: where one overtakes another, their ranges of values apart on both sides"


def bench_caption(
    baseline, ceilings, why="", peak_note=None, above=(), unstable=(), threads_note=None, blas=()
):
    """What speedup and % peak are relative to: baseline names the speedups' series (or None) and `why` it was
    chosen; ceilings are the sidecar's `peak` (device, dtype, threads, gflops, source); `above`: rows faster
    than their ceiling, whose % peak is left out; `unstable`: the sidecar's warnings
    (bench.stats.instability); `threads_note`: why the run chose its threads (bench.spec.auto_threads);
    `blas`: the sidecar's 'BENCHMARK: BLAS' (bench.processes.blas_named), said once an implementation."""
    why = f" (baseline: {why})" if why else ""
    notes = (
        [f"speedup: the median of {baseline} ÷ the row's median, at the same shape{why}"] if baseline else []
    )
    notes += [f"% peak: of {c['source']}" for c in ceilings]
    if threads_note:
        notes.append(threads_note)
    named = (text.split(": ", 1) for text in blas)
    notes += [
        f"{escape(impl)}'s BLAS: {escape(lib)}"
        for impl, lib in dict.fromkeys((name.rsplit(" ", 3)[0], lib) for name, lib in named)
    ]
    if any(c.get("gb_s") for c in ceilings):
        notes.append(
            "roofline (CSV: intensity, roof_gflops, bound): 2mkn FLOPs over the bytes of a, b and c; "
            "--plot draws it"
        )
    if peak_note:
        notes.append(f"no % peak for {'some rows' if ceilings else 'any row'}: {peak_note}")
    if above:
        why = (
            "--peak-gflops is below what they reached"
            if any(c.get("given") for c in ceilings)
            else "the ceiling is too low (measured on a busy host?); run fnd peak --refresh on a quiet one"
        )
        notes.append(f"[yellow]faster than the ceiling, so no % peak:[/] {'; '.join(above)}: {why}")
    notes += [f"[bold yellow]not to be trusted:[/] {escape(text)}" for text in unstable]
    if any(" at " in text and not text.startswith("load average") for text in unstable):
        notes.append(
            "[yellow]a row not to be trusted gets no speedup and no % peak, nor do rows against it[/]"
        )
    return "\n".join(notes)


def crossover_table(crossovers, title):
    """Each crossover: which series overtakes which, between which sizes of the swept dimension."""
    table = Table(title=title)
    for name in ("faster from here", "than", "slower up to", "faster at", "shape", "medians there"):
        table.add_column(name, justify="right" if name in ("slower up to", "faster at") else "left")
    for row in crossovers.itertuples():
        dim = "side" if row.dim == "all" else row.dim
        table.add_row(
            row.faster,
            row.slower,
            f"{dim} {row.from_size}",
            f"{dim} {row.size}",
            f"{row.m}x{row.k}x{row.n}",
            f"{human_seconds(row.faster_median_s)} vs {human_seconds(row.slower_median_s)}",
        )
    return table
