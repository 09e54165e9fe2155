"""init-sweep's figures as matplotlib objects, not pixels (issue 30, item 11): the std plot shades each
series' band, the heat map has a panel per scheme x act on one colour scale, with a colour bar."""

import math

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from fndcli.init.sweep import layer_bands, run_sweep
from fndcli.report.plots import heatmap_figure, std_figure
from fndcli.settings import SweepConfig

TINY = SweepConfig(
    schemes=("xavier-normal", "kaiming-normal"),
    acts=("linear", "relu"),
    depth=4,
    width=16,
    batch=8,
    heatmap=True,
)


@pytest.fixture(scope="module")
def tiny():
    return run_sweep(TINY)


def _band_of(ax, label):
    """The shaded band drawn in the colour of the series labelled `label`."""
    (line,) = [line for line in ax.get_lines() if line.get_label() == label]
    colour = np.array(line.get_color())[:3]
    (band,) = [
        c
        for c in ax.collections
        if isinstance(c, PolyCollection) and np.allclose(c.get_facecolor()[0][:3], colour)
    ]
    return band


@pytest.mark.parametrize("scheme,log10_a", [("kaiming-normal", 0.0), ("xavier-normal", -math.log10(2))])
def test_std_plot_shades_the_tables_band_at_every_layer(tiny, scheme, log10_a):
    """docs/init-sweep.md: log10 m2_l of one network lies in l log10 a - var/(2 ln 10) +- 2 sqrt(var) / ln 10
    (95 %), var = kappa l / n + 2 / (nB), kappa 5 for ReLU; Kaiming + ReLU keeps m2 (a = 1), Xavier halves it.
    Drawn as std: the post-ReLU std is sqrt(1 - 1/pi) of the rms (the input's is its rms)."""
    fig = std_figure(tiny.layers, layer_bands(tiny.layers, TINY))
    ax = fig.axes[0]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 4  # one band a series
    verts = _band_of(ax, f"{scheme} / relu").get_paths()[0].vertices
    n, batch = TINY.width, TINY.batch
    for layer in range(TINY.depth + 1):
        var = 5 * layer / n + 2 / (n * batch)
        centre = layer * log10_a - var / (2 * math.log(10))
        half = 2 * math.sqrt(var) / math.log(10)
        ratio = 1.0 if layer == 0 else math.sqrt(1 - 1 / math.pi)
        ys = verts[verts[:, 0] == layer, 1]
        assert ys.min() == pytest.approx(ratio * 10 ** ((centre - half) / 2), rel=1e-9)
        assert ys.max() == pytest.approx(ratio * 10 ** ((centre + half) / 2), rel=1e-9)
    assert "band" in " ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_std_plot_without_theory_draws_no_band():
    """tanh has no closed form: its series is drawn, with no band (and no error)."""
    cfg = SweepConfig(schemes=("kaiming-normal",), acts=("tanh",), depth=3, width=8, batch=4)
    layers = run_sweep(cfg).layers
    ax = std_figure(layers, layer_bands(layers, cfg)).axes[0]
    assert len(ax.get_lines()) == 1 and not any(isinstance(c, PolyCollection) for c in ax.collections)


def test_heatmap_has_a_panel_per_scheme_and_act_on_one_colour_scale(tiny):
    fig = heatmap_figure(tiny.heatmaps)
    images = [im for ax in fig.axes for im in ax.images]
    assert sorted(im.axes.get_title() for im in images) == sorted(
        f"{s} / {a}" for s in TINY.schemes for a in TINY.acts
    )
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1  # one scale, so panels compare
    (bar,) = [im.colorbar for im in images if im.colorbar is not None]  # one, for every panel
    assert "per decade" in bar.ax.get_ylabel()
    assert (bar.norm.vmin, bar.norm.vmax) == (images[0].norm.vmin, images[0].norm.vmax)
    assert bar.norm.vmax == pytest.approx(max(np.nanmax(im.get_array()) for im in images))
    for im in images:  # the colour is a density: each layer's column integrates to 1 over its decades
        density = np.ma.filled(im.get_array(), 0.0)  # (bins, layers)
        _, _, low, high = im.get_extent()
        assert (density.sum(0) * (high - low) / density.shape[0]) == pytest.approx(1.0)
