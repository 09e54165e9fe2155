"""`fnd train`'s pictures of what happened inside: --stats' dynamics (matplotlib, Agg; rendering only)."""

import numpy as np

from fndcli.report.plots import pyplot, save

UPDATE_LINE = -3  # makemore part 3: log10 update:data about -3 is healthy


def _first_seed(stats):
    return stats[stats["seed"] == stats["seed"].min()]


def _pivot(stats, stat):
    rows = stats[stats["stat"] == stat]
    return rows.pivot_table(index="step", columns="layer", values="value", aggfunc="first", sort=False)


def dynamics(stats, path):
    """The first seed's run: the loss every step; log10 update:data per weight against -3; the dead share per
    activation; and per layer the colorful dimension (log1p of the |x| histogram: steps across, bins up)."""
    plt = pyplot()
    stats = _first_seed(stats)
    hist_stats = sorted(s for s in stats["stat"].unique() if s.startswith("hist"))
    layers = list(dict.fromkeys(stats.loc[stats["stat"] == "mean", "layer"]))
    cols = max(2, min(4, len(layers)))
    rows = 2 + -(-len(layers) // cols)
    fig = plt.figure(figsize=(4 * cols, 3 * rows))
    grid = fig.add_gridspec(rows, cols)
    ax = fig.add_subplot(grid[0, : cols // 2])
    loss = stats[stats["stat"] == "loss"]
    ax.plot(loss["step"], loss["value"], lw=0.8)
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="batch loss", title="loss")
    ax = fig.add_subplot(grid[0, cols // 2 :])
    ratios = _pivot(stats, "update_data")
    with np.errstate(divide="ignore", invalid="ignore"):
        for layer in [c for c in ratios.columns if c.endswith(".w")]:
            ax.plot(ratios.index, np.log10(ratios[layer].to_numpy(dtype=float)), label=layer)
    ax.axhline(UPDATE_LINE, color="k", ls="--", lw=1)
    ax.set(xlabel="step", ylabel="log10 update:data", title="update:data per weight (-3: makemore)")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, :])
    dead = _pivot(stats, "dead")
    for layer in [c for c in dead.columns if not (c.startswith("lin") or c == "out")]:
        ax.plot(dead.index, dead[layer], label=layer)
    ax.set(xlabel="step", ylabel="share exactly 0", ylim=(-0.02, 1.02), title="dead share per activation")
    ax.legend(fontsize=7)
    for i, layer in enumerate(layers):
        ax = fig.add_subplot(grid[2 + i // cols, i % cols])
        counts = _pivot(stats[stats["layer"] == layer], "mean")  # the steps observed, in order
        h = stats[(stats["layer"] == layer) & stats["stat"].isin(hist_stats)]
        table = h.pivot_table(index="stat", columns="step", values="value", aggfunc="first")
        table = table.reindex(index=hist_stats, columns=counts.index)
        ax.imshow(np.log1p(table.to_numpy(dtype=float)), origin="lower", aspect="auto", cmap="viridis")
        ax.set(title=f"{layer}: color_dim", xlabel="observation", ylabel="|x| bin (0..10)")
    save(plt, fig, path)


def lr_find(found, path):
    """fastai's lr_find picture: the loss, raw and smoothed, against the rate on a log axis, the suggestion
    and where the sweep stopped marked."""
    plt = pyplot()
    rows, suggestion, stop_lr = found.rows, found.suggestion, found.stop_lr
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(rows["lr"], rows["loss"], color="C7", lw=0.8, label="batch loss")
    ax.plot(rows["lr"], rows["smoothed"], color="C0", label="smoothed (beta 0.98)")
    if suggestion:
        ax.axvline(suggestion, color="C2", ls="--", label=f"suggestion (valley) {suggestion:.3g}")
    if stop_lr:
        ax.axvline(stop_lr, color="C3", ls=":", label=f"stopped: smoothed > 4x best, lr {stop_lr:.3g}")
    if found.diverged_lr:
        label = f"batch loss > 4x its lowest: {found.diverged_lr:.3g}"
        ax.axvline(found.diverged_lr, color="C1", ls="-.", label=label)
    values = rows[["loss", "smoothed"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if len(finite):  # from the lowest to 5x it: the blow-up leaves the picture, the valley stays readable
        ax.set_ylim(0.9 * finite.min(), 5.5 * finite.min())
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="loss", title="fnd train --lr-find")
    ax.legend()
    save(plt, fig, path)


def coord_check(coords, param, path):
    """mup's coordinate check picture: per step, each layer's mean |x| (top) and the update's size, mean
    |x_t - x_0| (bottom), against the width, log-log, averaged over the seeds."""
    plt = pyplot()
    steps = sorted(coords["step"].unique())
    fig, axes = plt.subplots(2, len(steps), figsize=(3.2 * len(steps), 6.4), sharex=True, squeeze=False)
    mean = (
        coords.groupby(["step", "layer", "width"], sort=False)[["act_l1", "update_l1"]].mean().reset_index()
    )
    layers = list(dict.fromkeys(coords["layer"]))
    for j, step in enumerate(steps):
        for i, (column, what) in enumerate((("act_l1", "mean |x|"), ("update_l1", "mean |x_t - x_0|"))):
            ax = axes[i, j]
            for k, layer in enumerate(layers):
                rows = mean[(mean["step"] == step) & (mean["layer"] == layer)]
                if (rows[column] > 0).any():
                    ax.plot(rows["width"], rows[column], marker="o", color=f"C{k}", label=layer)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{param}: {what}, step {step}", fontsize=9)
            ax.set_xlabel("width")
    axes[0, 0].legend(fontsize=7)
    if steps[0] == 0:  # nothing has moved before the first step
        axes[1, 0].axis("off")
    save(plt, fig, path)
