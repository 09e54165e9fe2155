"""PNG plots with matplotlib (Agg): rendering only, from the cores' DataFrames and arrays."""

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write(fig, path):
    """Every plot's last step: laid out, written as a 110-dpi PNG; the Figure comes back."""
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    return fig


def save(plt, fig, path):
    """`_write` for a pyplot figure, then closed (pyplot keeps open figures)."""
    _write(fig, path)
    plt.close(fig)


ZOOM = (1e-3, 1e3)  # the std plot's second panel, where a series spans more: the stable ones, readable


def _std_series(ax, fwd, bands):
    """Each scheme x act's std per layer (geometric mean over seeds), its prediction dashed, its band shaded;
    True if a band was drawn."""
    from matplotlib import colormaps

    shaded = False
    for i, ((scheme, act), run) in enumerate(fwd.groupby(["scheme", "act"], sort=False)):
        with np.errstate(divide="ignore", invalid="ignore"):
            std = run.groupby("layer")["std"].agg(lambda s: np.exp(np.log(s.astype(float)).mean()))
        color = colormaps["tab20"](i % 20)
        ax.plot(std.index, std.values, color=color, label=f"{scheme} / {act}")
        pred = run.groupby("layer")[["pred_m2", "pred_std"]].first()
        if pred["pred_std"].notna().any():
            ax.plot(pred.index, pred["pred_std"], color=color, linestyle="--", linewidth=1)
        low, high = (bands or {}).get((scheme, act), (np.full(len(pred), np.nan),) * 2)
        if np.isfinite(low).any():
            with np.errstate(divide="ignore", invalid="ignore"):
                # the theory's std per rms: 0.826 after a ReLU, 1 for the N(0, 1) input and a linear layer
                rms = np.sqrt(pred["pred_m2"].to_numpy(dtype=float))
                std_per_rms = pred["pred_std"].to_numpy(dtype=float) / rms
                low_std, high_std = std_per_rms * 10 ** (low / 2), std_per_rms * 10 ** (high / 2)
            ax.fill_between(pred.index, low_std, high_std, color=color, alpha=0.15, linewidth=0)
            shaded = True
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    return shaded


def std_figure(layers, bands=None):
    """Std of each layer's output (geometric mean over seeds), log scale; predictions dashed; beside it, the
    same zoomed to std ZOOM when the series span more.

    bands: {(scheme, act): (low, high) log10 m2 per layer} (`fndcli.init.sweep.layer_bands`, the summary's
    band at every layer), shaded in the series' colour and drawn as std at the predicted std / rms.
    A Figure outside pyplot: nothing to close, nothing drawn until it is written.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fwd = layers[layers["direction"] == "forward"] if "direction" in layers else layers
    std = fwd["std"].to_numpy(dtype=float)
    std = std[np.isfinite(std) & (std > 0)]
    zoom = len(std) > 0 and (std.min() < ZOOM[0] or std.max() > ZOOM[1])
    fig = Figure(figsize=(15, 5.5) if zoom else (9, 5.5))
    ax, *zoomed = fig.subplots(1, 2, width_ratios=(3, 2)) if zoom else [fig.subplots()]
    shaded = _std_series(ax, fwd, bands)
    ax.set_ylabel("std of the layer's output (dashed: predicted)")
    ax.set_title("Activation std through the stack")
    handles, _ = ax.get_legend_handles_labels()
    if shaded:
        note = "shaded: the table's expected band, at every layer\n"
        note += "(95 % of the seeds' mean: theory, finite-width noise)"
        handles.append(Patch(color="0.5", alpha=0.3, label=note))
    ax.legend(handles=handles, fontsize=7, ncol=2)
    for ax in zoomed:
        _std_series(ax, fwd, bands)
        ax.set_ylim(*ZOOM)
        ax.set_title(f"The same, std {ZOOM[0]:g} to {ZOOM[1]:g}")
    return fig


def std_per_layer(layers, path, bands=None):
    """`std_figure`, written to path."""
    return _write(std_figure(layers, bands), path)


def heatmap_figure(heatmaps):
    """fastai's 'colorful dimension' for every scheme x act swept (rows: schemes, columns: acts), first seed:
    a histogram of log10|x| per layer, layers left to right, every panel on one colour scale.

    heatmaps: (scheme, act, seed, counts (layers, bins), (log10 low, log10 high)) each
    (`fndcli.init.sweep.run_sweep`). The colour is a density, the share of a layer's values per decade of
    |x|, so panels binned over different ranges compare.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    schemes = list(dict.fromkeys(h[0] for h in heatmaps))
    acts = list(dict.fromkeys(h[1] for h in heatmaps))
    densities = []
    for _, _, _, counts, (low, high) in heatmaps:
        per_decade = counts.shape[1] / (high - low)
        densities.append(counts / np.maximum(counts.sum(1, keepdims=True), 1) * per_decade)  # (layers, bins)
    positive = np.concatenate([d[d > 0] for d in densities]) if densities else np.ones(1)
    norm = LogNorm(vmin=positive.min(), vmax=positive.max())  # one scale, so panels compare
    fig = Figure(figsize=(1.2 + 4.2 * len(acts), 1 + 1.9 * len(schemes)))
    grid = fig.add_gridspec(len(schemes), len(acts) + 1, width_ratios=[1] * len(acts) + [0.04])
    image = None
    for (scheme, act, seed, counts, (low, high)), density in zip(heatmaps, densities):
        ax = fig.add_subplot(grid[schemes.index(scheme), acts.index(act)])
        image = ax.imshow(
            np.ma.masked_equal(density.T, 0),  # (bins, layers); an empty bin is white
            origin="lower",
            aspect="auto",
            cmap="viridis",
            norm=norm,
            extent=(-0.5, counts.shape[0] - 0.5, low, high),
            interpolation="nearest",
        )
        ax.set_title(f"{scheme} / {act}", fontsize=9)
        ax.set_ylabel("log10 |x|", fontsize=8)
        ax.set_xlabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
    if image is not None:
        bar = fig.colorbar(image, cax=fig.add_subplot(grid[:, -1]))
        bar.set_label("share of the layer's values per decade of |x| (white: none)")
    seed = f", seed {heatmaps[0][2]}" if heatmaps else ""
    fig.suptitle(f"Histogram of log10 |x| per layer{seed}: zeros in the bottom bin, inf and nan in the top")
    return fig


def activation_heatmap(heatmaps, path):
    """`heatmap_figure`, written to path."""
    return _write(heatmap_figure(heatmaps), path)


def _call_names(layers):
    """A probe run's rows of its first seed, and their labels: the layer, and the call when a module runs
    twice."""
    first = layers[layers["seed"] == layers["seed"].iloc[0]]
    return first, [n if c == 1 else f"{n} ({c})" for n, c in zip(first["layer"], first["call"])]


def std_per_call(layers, path):
    """init-sweep --model: the std of each leaf module's output (and its gradient's), per seed, named."""
    plt = pyplot()
    first, names = _call_names(layers)
    fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(names) + 2), 5.5))
    for i, (seed, run) in enumerate(layers.groupby("seed", sort=False)):
        ax.plot(
            run["order"],
            run["std"],
            color="C0",
            alpha=1 if i == 0 else 0.35,
            label="activation" if i == 0 else None,
        )
        if "grad_std" in run:
            ax.plot(
                run["order"],
                run["grad_std"],
                color="C1",
                alpha=1 if i == 0 else 0.35,
                label="gradient" if i == 0 else None,
            )
    found = first[first["finding"].astype(str).str.len() > 0]
    ax.scatter(found["order"], found["std"], color="C3", zorder=3, s=14, label="a finding")
    ax.set_yscale("log")
    ax.set_xticks(first["order"], names, rotation=90, fontsize=7)
    ax.set_ylabel("std of the output")
    ax.set_title("Std per layer, in forward order (faint: further seeds)")
    ax.legend(fontsize=8)
    save(plt, fig, path)


def colorful_dimension(layers, counts, log_range, path):
    """The course's colorful dimension for init-sweep --model: a histogram of log10|x| per leaf call, named,
    cut to the decades that hold values. counts: (calls, bins) over log_range, as fndcli.init.probe bins
    them."""
    plt = pyplot()
    _, names = _call_names(layers)
    used = np.flatnonzero(counts.sum(0))
    lo, hi = (used[0], used[-1] + 1) if len(used) else (0, counts.shape[1])
    step = (log_range[1] - log_range[0]) / counts.shape[1]
    fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(names) + 2), 5))
    ax.imshow(
        np.log1p(counts[:, lo:hi].T),
        origin="lower",
        aspect="auto",
        cmap="viridis",
        extent=(-0.5, counts.shape[0] - 0.5, log_range[0] + lo * step, log_range[0] + hi * step),
    )
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("log10 |activation| (zeros at bottom, inf/nan at top)")
    ax.set_title("Colorful dimension: histogram of log10|x| per layer, first seed")
    save(plt, fig, path)


def loss_curves(history, path):
    """Train and validation loss per epoch, hand-written (solid) and autograd twin (dashed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for column, color in (("train_loss", "C0"), ("valid_loss", "C1")):
        ax.plot(history["epoch"], history[column], color=color, marker="o", label=f"{column} (hand-written)")
        ref = history[f"ref_{column}"]
        if ref.notna().any():
            ax.plot(history["epoch"], ref, color=color, linestyle="--", label=f"{column} (autograd twin)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("fnd train: loss curves")
    ax.legend()
    save(plt, fig, path)


def ladder_times(ours, book, path):
    """The matmul ladder's seconds per call, here and in the book, on a log scale."""
    plt = pyplot()
    names = list(book)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(x - 0.2, [book[n] for n in names], width=0.4, label="the book (fastbook ch. 17)", color="C7")
    ax.bar(x + 0.2, [ours[n] for n in names], width=0.4, label="fnd, this machine", color="C0")
    ax.set_xticks(x, names)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per call, 5x784 @ 784x10")
    ax.set_title("The matmul ladder")
    ax.legend()
    save(plt, fig, path)


def roofline_title(ceilings, cpu=None):
    """The roofline's title: the CPU its CPU ceilings are of (`cpu`: a name, or None to leave it out), and
    where its ceilings came from (fnd peak, or --peak-gflops beside fnd peak's bandwidth)."""
    source = "fnd peak"
    if any(c.get("given") for c in ceilings):
        source = "--peak-gflops" + (
            " and fnd peak's bandwidth" if any(c.get("gb_s") for c in ceilings) else ""
        )
    where = f": {cpu}" if cpu and any(c["device"] == "cpu" for c in ceilings) else ""
    return f"matmul-bench on the roofline{where} (ceilings from {source})"


def host_cpu():
    """This machine's CPU as a roofline names it, as fnd peak names the machine its ceilings are of: model,
    cores and vector unit."""
    from fndcli.bench.peak import machine_key
    from fndcli.machine import cpu_words

    key = machine_key()
    return cpu_words(key["cpu_model"], key["cpu_count"], key["isa"])


def roofline(rows, ceilings, path, cpu=None):
    """The roofline (Williams, Waterman, Patterson 2009): each ceiling's FMA roof and bandwidth slope,
    log-log, and every timed row as a point at its arithmetic intensity; one colour per implementation,
    named in the legend with its % of the ceiling at its largest shape."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    timed = rows[rows["gflops"].notna()]
    lo = min([0.1, *timed["intensity"].dropna()]) / 2
    hi = max([100.0, *timed["intensity"].dropna()]) * 2
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    for i, c in enumerate(ceilings):
        label = f"{c['device']} {c['dtype']}, {c['threads']} thread(s)"
        roof = np.full_like(x, c["gflops"]) if not c.get("gb_s") else np.minimum(c["gflops"], c["gb_s"] * x)
        ax.plot(
            x,
            roof,
            color="k",
            linestyle=["-", "--", ":", "-."][i % 4],
            linewidth=1.2,
            label=f"roof: {label} ({c['gflops']:.3g} GFLOP/s"
            + (f", {c['gb_s']:.3g} GB/s)" if c.get("gb_s") else ")"),
        )
    for i, (impl, run) in enumerate(timed.groupby("impl", sort=False)):
        label = impl
        top = run.loc[run["intensity"].idxmax()] if run["intensity"].notna().any() else None
        if top is not None and np.isfinite(top.get("pct_peak", np.nan)):
            shape = f"{top['m']}x{top['k']}x{top['n']}"
            label = f"{impl}: {top['pct_peak']:.2g} % of the ceiling at {shape}"
        ax.scatter(run["intensity"], run["gflops"], color=plt.cm.tab10(i % 10), label=label, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity: 2mkn FLOPs / bytes of a, b and c (FLOP/byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(roofline_title(ceilings, cpu), fontsize=9)
    ax.legend(fontsize=7)
    save(plt, fig, path)
    return fig


def history_figure(title, rows):
    """One benchmark over commits (fnd history --plot): the median per commit, seconds on a log axis, each
    change point marked as on --html's page (`history_page.MARKS`), a dashed line where it starts.
    rows: the benchmark's (fndcli.kinds.HISTORY) in commit order. A Figure outside pyplot."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from fndcli.report.figures import human_seconds
    from fndcli.report.history_page import MARKS

    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.plot(x, [r["median_s"] for r in rows], color=MARKS[""].colour, marker="o", markersize=4)
    for change, mark in MARKS.items():
        at = [i for i, r in enumerate(rows) if change and r["change"] == change]  # "": no change
        for i in at:
            ax.axvline(i - 0.5, color=mark.colour, linestyle="--", linewidth=1)
        if at:
            face = "white" if mark.hollow else mark.colour
            y = [rows[i]["median_s"] for i in at]
            ax.scatter(
                at, y, marker=mark.marker, s=80, color=face, edgecolors=mark.colour, zorder=3, label=change
            )
    every = max(1, len(rows) // 15)
    ax.set_xticks(x[::every], [r["commit"][:7] for r in rows[::every]], rotation=45, fontsize=7)
    ax.set_yscale("log")
    anchor = rows[0].get("anchor")  # times over an anchor's: ratios, not seconds
    seconds = FuncFormatter(lambda v, _: f"{v:.3g}x" if anchor else human_seconds(v))
    ax.yaxis.set_major_formatter(seconds)
    values = [r["median_s"] for r in rows if r["median_s"] > 0] or [1]
    decades = float(np.log10(max(values) / min(values)))
    if 1 <= decades <= 4:  # the decades alone are too few labels: 2 and 5 of each too, as the page has
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    # within a decade the minor ticks are the labels there are; over 4 decades, the decades are enough
    ax.yaxis.set_minor_formatter(seconds if decades <= 4 else NullFormatter())
    ax.set_xlabel("commit, in commit order")
    ax.set_ylabel(f"median time over {anchor}'s (log scale)" if anchor else "median seconds (log scale)")
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return fig


def history_plot(title, rows, path):
    """`history_figure`, written to path."""
    return _write(history_figure(title, rows), path)
