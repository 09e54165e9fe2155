"""The core of `fnd init-sweep`: activation statistics through deep stacks (fastbook ch. 17).

The chapter pushes a 200x100 batch through 50 layers of `x = act(x @ w)` with 100x100
weights. Here every (scheme, act, seed) run does the same: the input x_0 ~ N(0, 1) and the
weights come from one generator seeded with the run's seed (the same input for every
scheme at a seed). Statistics are of each layer's output after its activation, computed
in float64 from the run's dtype (float32 by default, so overflow shows as in the chapter).
"""
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fndcli.inits import InitParams, lsuv, make_act, predict_m2, resolve_scheme

NEAR_ZERO = 0.05
LAYER_COLUMNS = ["scheme", "act", "seed", "layer", "mean", "std", "m2", "frac_zero", "frac_near_zero",
                 "min", "max", "finite", "pred_m2", "pred_std"]
SUMMARY_COLUMNS = ["scheme", "act", "depth", "m2_last_mean", "m2_last_geomean", "pred_m2_last",
                   "growth_log10_per_layer", "overflow_layer", "underflow_layer", "verdict"]
# A stack is exploding or vanishing when the fitted m2 changes by more than this many
# decades from input to output, or when it overflows or underflows.
VERDICT_DECADES = 1.0
HIST_BINS = 60  # log10|x| bins of the heat map


@dataclass(frozen=True)
class SweepConfig:
    schemes: tuple = ("normal", "scaled", "xavier-normal", "kaiming-normal")
    acts: tuple = ("linear", "relu")
    depth: int = 50
    width: int = 100
    batch: int = 200
    seeds: int = 1
    seed: int = 0
    dtype: str = "float32"
    scale: float = 0.1
    leak: float = 0.01
    mode: str = "fan_in"
    lsuv_tol: float = 0.1
    backward: bool = False
    heatmap: bool = False


@dataclass
class SweepResult:
    layers: pd.DataFrame    # one row per scheme x act x seed x layer (x direction with backward)
    summary: pd.DataFrame   # one row per scheme x act
    heatmap: np.ndarray | None  # (depth + 1, HIST_BINS) counts of log10|x| for the first run
    heatmap_run: tuple | None   # (scheme, act, seed, (log10 low, log10 high)) of that run
    interrupted: bool = False


def layer_stats(stack):
    """Per-layer statistics of a (layers, batch, width) stack, computed in float64."""
    flat = stack.flatten(1).double()  # (layers, batch * width)
    n = flat.shape[1]
    return {
        "mean": flat.mean(1), "std": flat.std(1), "m2": (flat * flat).mean(1),
        "frac_zero": (flat == 0).sum(1) / n, "frac_near_zero": (flat.abs() <= NEAR_ZERO).sum(1) / n,
        "min": flat.min(1).values, "max": flat.max(1).values, "finite": torch.isfinite(flat).all(1),
    }


def run_stack(scheme, params, cfg, seed):
    """One run: forward (and backward) through the stack; returns (activations, gradients or None)."""
    dtype = getattr(torch, cfg.dtype)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.batch, cfg.width, generator=gen, dtype=dtype)  # (B, n), the chapter's x
    weights = [scheme.init(cfg.width, cfg.width, params, gen, dtype) for _ in range(cfg.depth)]  # (n, n) each
    if scheme.data_driven:
        lsuv(weights, x, [params.act] * cfg.depth, tol=cfg.lsuv_tol)
    acts, pre = [x], []
    for w in weights:
        z = acts[-1] @ w  # (B, n)
        pre.append(z)
        acts.append(params.act.fn(z))
    grads = None
    if cfg.backward:
        g = torch.randn(cfg.batch, cfg.width, generator=gen, dtype=dtype)  # unit-variance dL/dx_depth
        grads = [g]
        for w, z in zip(reversed(weights), reversed(pre)):
            g = (g * params.act.grad(z)) @ w.t()  # dL/dx_{l-1} = (dL/dx_l * act'(z_l)) @ w_l^T
            grads.append(g)
        grads = grads[::-1]
    return torch.stack(acts), (torch.stack(grads) if grads else None)  # (depth + 1, B, n)


def _rows(stack, scheme_name, act_name, seed, pred, direction):
    stats = {k: v.tolist() for k, v in layer_stats(stack).items()}
    pred_m2, pred_std = pred if pred else ([math.nan] * len(stats["m2"]),) * 2
    rows = []
    for layer in range(len(stats["m2"])):
        row = {"scheme": scheme_name, "act": act_name, "seed": seed, "layer": layer}
        row.update({k: stats[k][layer] for k in stats})
        row.update(pred_m2=pred_m2[layer], pred_std=pred_std[layer])
        if direction:
            row["direction"] = direction
        rows.append(row)
    return rows


def log10_histogram(stack):
    """Counts of log10|x| per layer over the finite, non-zero range of the whole run.

    Zeros fall in the first bin and inf/nan in the last, so underflow and overflow show.
    Returns (counts (layers, HIST_BINS), (low, high)).
    """
    logs = torch.log10(stack.flatten(1).double().abs())  # (layers, B * n)
    finite = logs[torch.isfinite(logs)]
    low, high = (math.floor(finite.min().item()) - 1, math.ceil(finite.max().item()) + 1) if finite.numel() else (-1, 1)
    logs = logs.nan_to_num(nan=high, posinf=high, neginf=low).clamp(low, high)
    counts = np.stack([torch.histc(row, bins=HIST_BINS, min=low, max=high).numpy() for row in logs])
    return counts, (float(low), float(high))


def run_sweep(cfg):
    """Every scheme x act x seed of cfg; returns per-layer rows, the summary, and the heat map."""
    rows, heatmap, heatmap_run, interrupted = [], None, None, False
    direction = "forward" if cfg.backward else None
    try:
        for scheme_name in cfg.schemes:
            scheme = resolve_scheme(scheme_name)
            for act_name in cfg.acts:
                params = InitParams(make_act(act_name, cfg.leak), cfg.scale, cfg.mode)
                fwd_pred = predict_m2(scheme, params, cfg.width, cfg.depth, "forward")
                bwd_pred = predict_m2(scheme, params, cfg.width, cfg.depth, "backward") if cfg.backward else None
                for seed in range(cfg.seed, cfg.seed + cfg.seeds):
                    acts, grads = run_stack(scheme, params, cfg, seed)
                    run_rows = _rows(acts, scheme.name, act_name, seed, fwd_pred, direction)
                    if grads is not None:
                        run_rows += _rows(grads, scheme.name, act_name, seed, bwd_pred, "backward")
                    rows += run_rows  # a run's rows land together, so Ctrl-C keeps whole runs
                    if cfg.heatmap and heatmap is None:
                        heatmap, log_range = log10_histogram(acts)
                        heatmap_run = (scheme.name, act_name, seed, log_range)
    except KeyboardInterrupt:
        interrupted = True
    columns = LAYER_COLUMNS + (["direction"] if cfg.backward else [])
    layers = pd.DataFrame.from_records(rows, columns=columns)
    return SweepResult(layers, summarize(layers, cfg.depth), heatmap, heatmap_run, interrupted)


def _geomean(values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


def summarize(layers, depth):
    """One row per scheme x act, from the forward rows: last-layer m2 across seeds, growth, events, verdict.

    growth_log10_per_layer is the least-squares slope of log10(geometric-mean m2) against
    the layer, over the layers where it is finite and positive. The verdict is `exploding`
    if any seed overflowed or the fitted m2 grows by more than VERDICT_DECADES decades over
    the stack, `vanishing` if any seed underflowed (a layer of exact zeros) or it shrinks by
    more than that, else `stable`.
    """
    if "direction" in layers:
        layers = layers[layers["direction"] == "forward"]
    out = []
    for (scheme, act), run in layers.groupby(["scheme", "act"], sort=False):
        last = run[run["layer"] == depth]
        per_layer = run.groupby("layer")["m2"].agg(_geomean)
        ok = per_layer[np.isfinite(per_layer) & (per_layer > 0)]
        growth = float(np.polyfit(ok.index, np.log10(ok.values), 1)[0]) if len(ok) >= 2 else math.nan
        overflow = run.loc[~run["finite"].astype(bool), "layer"]
        underflow = run.loc[run["frac_zero"] == 1.0, "layer"]
        overflow_layer = int(overflow.min()) if len(overflow) else None
        underflow_layer = int(underflow.min()) if len(underflow) else None
        decades = growth * depth
        if overflow_layer is not None or decades > VERDICT_DECADES:
            verdict = "exploding"
        elif underflow_layer is not None or decades < -VERDICT_DECADES:
            verdict = "vanishing"
        else:
            verdict = "stable"
        out.append({"scheme": scheme, "act": act, "depth": depth, "m2_last_mean": float(last["m2"].mean()),
                     "m2_last_geomean": _geomean(last["m2"]), "pred_m2_last": float(last["pred_m2"].iloc[0]),
                     "growth_log10_per_layer": growth, "overflow_layer": overflow_layer,
                     "underflow_layer": underflow_layer, "verdict": verdict})
    summary = pd.DataFrame.from_records(out, columns=SUMMARY_COLUMNS)
    return summary.astype({"overflow_layer": "Int64", "underflow_layer": "Int64"})
