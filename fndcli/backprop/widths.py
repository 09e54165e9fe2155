"""`fnd train --widths 64,128,256,512`: microsoft/mup's coordinate check on fnd's hand-written MLP.

One model per width (every hidden layer of `--hidden`'s depth takes that width), trained STEPS steps of SGD
on the training batches; before each step, a fixed probe batch (the first training examples) goes through
it, and per layer (each Linear's and ReLU's output) two coordinate sizes are kept, as mup's
`get_coord_data` keeps the first: the mean |x|, and the update's size, the mean |x_t - x_0| (how far the
steps so far moved that output, on the same inputs). Per layer and seed, log2 of a size is fitted against
log2 of the width: its slope is the growth per doubling of the width (x2^slope); the verdicts read the
activations at the last step and the update after the first step.

The parametrisations (`--param`):
- `sp`, standard: fnd's init (Var 1/fan_in, x2 for ReLU's) and one SGD rate for every parameter;
- `mup`, muP for SGD (Yang and Hu, Tensor Programs IV; Yang et al., Tensor Programs V, table 3), the rates
  relative to the base width n0 (the first of --widths; r = n / n0, so that lr is the rate at n0): the
  output layer's weights drawn with Var 1/fan_in^2 (fnd's, x sqrt(1 / n)) and stepped at lr / r; the input
  layer's weights and every hidden bias at lr x r; hidden weights and the output bias at lr. With the output
  init relative to n0 instead (Var n0 / fan_in^2: the same model as sp at n0), the init's share of the first
  residual falls with the width and the first update with it, x0.85 a doubling (measured, 5 seeds): the
  absolute 1/fan_in^2 starts the output near 0 at every width.

Under SP with a fixed rate the output layer's update grows like the width (x~2 a doubling: its weight's
step is lr x h^T g, a sum over n coordinates of size 1); under muP every size stays flat.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from fndcli.backprop.model import init_mlp
from fndcli.backprop.train import make_data
from fndcli.kinds import TRAIN_WIDTHS
from fndcli.memory import stops

STEPS = 4  # updates; sizes are kept before each and after the last (mup's coord check: a few steps)
FLAT = 0.25  # |slope| under this (x1.19 a doubling) is flat; fnd's choice: mup's plots are judged by eye
NOISE_SDS = 3.0  # a slope must be this many of its seeds' standard errors from FLAT to be called either way
COORD_COLUMNS = ["seed", "width", "step", "layer", "act_l1", "update_l1"]
COLUMNS = TRAIN_WIDTHS.written()


@dataclass
class WidthSweep:
    coords: pd.DataFrame  # COORD_COLUMNS: per seed, width, step, layer
    verdicts: pd.DataFrame  # COLUMNS: per layer and size, the growth per doubling at the last step
    interrupted: bool = False
    error: str | None = None


def rates(model, lr, param, ratio):
    """Each parameter's SGD rate: lr for all (sp), or muP's per-layer scaling (ratio = width / base width)."""
    names = [name for name, _ in model.named_params()]
    last = names[-1].split(".")[0]
    out = []
    for name in names:
        layer, which = name.split(".")
        if param == "sp" or (layer == last and which == "b"):
            out.append(lr)
        elif layer == last:  # output weights
            out.append(lr / ratio)
        elif layer == "lin1" or which == "b":  # input weights, hidden biases
            out.append(lr * ratio)
        else:  # hidden weights
            out.append(lr)
    return out


def build(cfg, width, base, param, seed):
    """The MLP of cfg's depth at this width, from init-sweep's registry; muP's output weights rescaled."""
    sizes = [cfg.n_in, *([width] * len(cfg.hidden)), cfg.outputs]
    gen = torch.Generator().manual_seed(seed + 1)
    model = init_mlp(sizes, cfg.init, cfg.loss, gen, getattr(torch, cfg.dtype), act=cfg.act)
    if param == "mup":
        with torch.no_grad():
            model.linears[-1].w.value.mul_(math.sqrt(1 / width))  # Var 1/fan_in -> 1 / fan_in^2
    return model


def sizes(model, probe, first):
    """{layer: (mean |x|, mean |x - first[layer]|)} of the probe batch's pass through the model."""
    with torch.no_grad():
        model.forward(probe, keep=False)
    outs = {k: v.detach().clone() for k, v in model.outputs.items() if k != "x"}
    return {
        k: (v.abs().mean().item(), (v - first[k]).abs().mean().item() if first else 0.0)
        for k, v in outs.items()
    }, outs


def run_width(cfg, width, base, param, seed, x_tr, y_tr):
    """[(seed, width, step, layer, act_l1, update_l1)] for one model."""
    model = build(cfg, width, base, param, seed)
    lrs = rates(model, cfg.lr, param, width / base)
    probe = x_tr[: cfg.batch_size]
    order = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(seed + 2))
    rows, first = [], None
    for step in range(STEPS + 1):
        now, outs = sizes(model, probe, first)
        first = first or outs
        rows += [(seed, width, step, layer, a, u) for layer, (a, u) in now.items()]
        if step == STEPS:
            break
        idx = order[(step * cfg.batch_size) % len(order) :][: cfg.batch_size]
        model.zero_grad()
        model.loss(x_tr[idx], y_tr[idx])
        model.backward(input_grad=False)
        for (_, p), lr in zip(model.named_params(), lrs):
            p.value.add_(p.grad, alpha=-lr)
    return rows


def sweep(cfg, widths, param, seeds, on_model=lambda: None):
    """Every width x seed; the coordinates and the verdicts."""
    rows = []
    with stops(lambda: f"at width {len(rows)}") as stopped:
        for seed in range(cfg.seed, cfg.seed + seeds):
            x_tr, y_tr, _, _ = make_data(replace(cfg, seed=seed))
            for width in widths:
                rows += run_width(cfg, width, widths[0], param, seed, x_tr, y_tr)
                on_model()
    coords = pd.DataFrame.from_records(rows, columns=COORD_COLUMNS)
    return WidthSweep(coords, verdicts(coords, param), stopped.interrupted, stopped.error)


def slope(widths, values):
    """log2 growth of values per doubling of the width (least squares); nan where a value is not positive."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or not (v > 0).all() or not np.isfinite(v).all():
        return math.nan
    return float(np.polyfit(np.log2(widths), np.log2(v), 1)[0])


def judge(slopes):
    """(verdict, mean slope, its standard error) of one layer's per-seed slopes."""
    s = np.asarray([x for x in slopes if math.isfinite(x)])
    if not len(s):
        return "cannot tell", math.nan, math.nan
    mean = float(s.mean())
    if len(s) < 2:  # one seed's slope: its spread unknown, so no growth can be told from noise
        return "cannot tell", mean, math.nan
    se = float(s.std(ddof=1) / math.sqrt(len(s)))
    if mean - NOISE_SDS * se > FLAT:
        return "grows", mean, se
    if mean + NOISE_SDS * se < -FLAT:
        return "shrinks", mean, se
    if abs(mean) + NOISE_SDS * se <= FLAT:
        return "flat", mean, se
    return "cannot tell", mean, se


def verdicts(coords, param):
    """Per layer: the activation's size at the last step, and the first step's update (what one step of the
    parametrisation's rates does, before later steps' feedback and, in SP at large widths, instability), each
    as its growth per doubling of the width, and the verdict."""
    rows = []
    for what, column, step in (("activation", "act_l1", STEPS), ("update", "update_l1", 1)):
        at = coords[coords["step"] == step]
        for layer in dict.fromkeys(at["layer"]):
            mine = at[at["layer"] == layer]
            per_seed = [slope(g["width"], g[column]) for _, g in mine.groupby("seed")]
            verdict, mean, se = judge(per_seed)
            factor = 2**mean if math.isfinite(mean) else math.nan
            rows.append((param, layer, what, step, factor, mean, se, verdict))
    return pd.DataFrame.from_records(rows, columns=COLUMNS)
