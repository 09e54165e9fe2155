"""The core of `fnd init-sweep`: activation statistics through deep stacks (fastbook ch. 17).

The chapter pushes a 200x100 batch through 50 layers of `x = act(x @ w)` with 100x100
weights. Here every (scheme, act, seed) run does the same: the input x_0 ~ N(0, 1) and the
weights come from one generator seeded with the run's seed (the same input for every
scheme at a seed). Statistics are of each layer's output after its activation, computed
in float64 from the run's dtype (float32 by default, so overflow shows as in the chapter).

The verdict (see `judge`) weighs the observation against the prediction and its
finite-width noise, so one seed of a good init is not called bad, and a bad one is caught
on every seed.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from fndcli.init.schemes import InitParams, log_m2_variance, lsuv, make_act, predict_m2, resolve_scheme
from fndcli.init.stats import log10_abs, log10_histogram, near_zero, sample_std
from fndcli.kinds import INIT_SWEEP
from fndcli.memory import stops

LAYER_COLUMNS = [
    "scheme",
    "act",
    "seed",
    "layer",
    "mean",
    "std",
    "m2",
    "frac_zero",
    "frac_near_zero",
    "frac_saturated",
    "min",
    "max",
    "finite",
    "pred_m2",
    "pred_std",
]
VERDICT_DECADES = 1.0  # a change of m2 over the stack beyond this (plus the noise) is exploding or vanishing
NOISE_SDS = 3.0  # how many standard deviations of finite-width noise an observation may stray
SATURATED_FRAC = 0.5  # more than this share of the last layer's units pinned is saturated
HIST_BINS = 60  # log10|x| bins of the heat map
MIN_VALUES = (
    20  # a layer's m2 over fewer values (batch x width) is a handful of numbers: the verdict cannot tell
)


@dataclass
class SweepResult:
    layers: pd.DataFrame  # one row per scheme x act x seed x layer (x direction with backward)
    summary: pd.DataFrame  # one row per scheme x act
    # with cfg.heatmap, the first seed of each scheme x act:
    # (scheme, act, seed, (depth + 1, HIST_BINS) counts of log10|x|, (log10 low, log10 high))
    heatmaps: list
    interrupted: bool = False
    error: str | None = None  # an allocation that failed mid-run; the whole runs before it are kept


def layer_stats(stack, saturation=None):
    """Per-layer statistics of a (layers, batch, width) stack, computed in float64.

    frac_saturated: the share of units with |x| > saturation (NaN for an activation that does not saturate).
    """
    flat = stack.flatten(1).double()  # (layers, batch * width)
    n = flat.shape[1]
    saturated = (flat.abs() > saturation).sum(1) / n if saturation else torch.full((flat.shape[0],), math.nan)
    low, high = flat.min(1).values, flat.max(1).values  # both NaN if any element is
    mean, m2 = flat.mean(1), (flat * flat).mean(1)
    return {
        "mean": mean,
        "std": sample_std(n, mean, m2),
        "m2": m2,  # torch.std's, in a third of the time
        "frac_zero": (flat == 0).sum(1) / n,
        "frac_near_zero": near_zero(flat).sum(1) / n,
        "frac_saturated": saturated,
        "min": low,
        "max": high,
        "finite": torch.isfinite(low) & torch.isfinite(high),
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


def _rows(stack, scheme_name, act_name, seed, pred, direction, saturation=None):
    stats = {k: v.tolist() for k, v in layer_stats(stack, saturation).items()}
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


def heatmap_counts(stack):
    """Counts of log10|x| per layer over the run's finite, non-zero range, a decade spare each side.

    Zeros fall in the first bin and inf/nan in the last (`stats.log10_histogram`).
    Returns (counts (layers, HIST_BINS), (low, high)).
    """
    logs = log10_abs(stack.flatten(1))  # (layers, B * n)
    finite = logs[torch.isfinite(logs)]
    low, high = (-1, 1)
    if finite.numel():
        low, high = math.floor(finite.min().item()) - 1, math.ceil(finite.max().item()) + 1
    return log10_histogram(logs, low, high, HIST_BINS), (float(low), float(high))


def run_sweep(cfg):
    """Every scheme x act x seed of cfg; returns per-layer rows, the summary, and the heat maps."""
    rows, heatmaps = [], []
    scheme_name = act_name = seed = None
    direction = "forward" if cfg.backward else None
    with stops(lambda: f"at {scheme_name} / {act_name}, seed {seed}") as stopped:
        for scheme_name in cfg.schemes:
            scheme = resolve_scheme(scheme_name)
            for act_name in cfg.acts:
                params = InitParams(make_act(act_name, cfg.leak), cfg.scale, cfg.mode)
                fwd_pred = predict_m2(scheme, params, cfg.width, cfg.depth, "forward")
                bwd_pred = (
                    predict_m2(scheme, params, cfg.width, cfg.depth, "backward") if cfg.backward else None
                )
                for seed in range(cfg.seed, cfg.seed + cfg.seeds):
                    acts, grads = run_stack(scheme, params, cfg, seed)
                    run_rows = _rows(
                        acts, scheme.name, act_name, seed, fwd_pred, direction, params.act.saturation
                    )
                    if grads is not None:
                        run_rows += _rows(grads, scheme.name, act_name, seed, bwd_pred, "backward")
                    rows += run_rows  # a run's rows land together, so Ctrl-C keeps whole runs
                    if cfg.heatmap and seed == cfg.seed:
                        heatmaps.append((scheme.name, act_name, seed, *heatmap_counts(acts)))
    columns = LAYER_COLUMNS + (["direction"] if cfg.backward else [])
    layers = pd.DataFrame.from_records(rows, columns=columns)
    return SweepResult(layers, summarize(layers, cfg), heatmaps, stopped.interrupted, stopped.error)


def _geomean(values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


@dataclass(frozen=True)
class Theory:
    """What the mean-field theory and its finite-width noise expect at the far end of the stack.

    decades: predicted change of log10 m2 over the stack (None: no closed form); var: the
    variance of ln m2 there for one network (None: no theory of the noise).
    """

    decades: float | None
    var: float | None
    log10_pred: float | None  # log10 of the predicted m2 at the far end

    def decades_sd(self, seeds):
        """sd of the fitted decades D averaged over `seeds` networks (the fit has ~1.2x the endpoint's
        variance)."""
        return math.sqrt(1.2 * self.var / seeds) / math.log(10) if self.var is not None else 0.0

    @property
    def typical(self):
        """Decades the typical (median) network moves: below the mean one by var / 2 in ln."""
        if self.decades is None or self.var is None:
            return None
        return self.decades - self.var / (2 * math.log(10))

    def band(self, seeds):
        """The 95 % band of the mean log10 m2 over `seeds` networks at the far end."""
        if self.log10_pred is None or self.var is None:
            return (math.nan, math.nan)
        centre = self.log10_pred - self.var / (2 * math.log(10))
        half = 2 * math.sqrt(self.var / seeds) / math.log(10)
        return (centre - half, centre + half)


def theory(scheme_name, act_name, cfg, direction="forward"):
    """Theory for one scheme x act of cfg; the backward pass uses the forward's noise (conservative)."""
    scheme = resolve_scheme(scheme_name)
    params = InitParams(make_act(act_name, cfg.leak), cfg.scale, cfg.mode)
    pred = predict_m2(scheme, params, cfg.width, cfg.depth, direction)
    var = log_m2_variance(scheme, params.act, cfg.width, cfg.depth, cfg.batch)
    if pred is None:
        return Theory(None, var, None)
    m2 = pred[0]
    far, near = (m2[-1], m2[0]) if direction == "forward" else (m2[0], m2[-1])
    log10_far = math.log10(far) if far > 0 else -math.inf
    return Theory(log10_far - math.log10(near), var, log10_far)


def layer_bands(layers, cfg):
    """The summary's band (`Theory.band`, over each series' seeds) after every layer 0..depth, as the plot
    shades it: {(scheme, act): (low, high) arrays of log10 m2}, NaN where there is no theory."""
    fwd = layers[layers["direction"] == "forward"] if "direction" in layers else layers
    return {
        (scheme, act): np.array(
            [
                theory(scheme, act, replace(cfg, depth=d)).band(run["seed"].nunique())
                for d in range(cfg.depth + 1)
            ]
        ).T
        for (scheme, act), run in fwd.groupby(["scheme", "act"], sort=False)
    }


def judge(decades, seeds, overflow_layer, underflow_layer, th, depth, width, batch=None):
    """(verdict, reason) for one direction, from the observation and the theory together.

    exploding: an overflow, or m2 grew more than 1 decade plus NOISE_SDS sd of its noise.
    vanishing: a layer of exact zeros, or it fell that much. Otherwise, from the theory:
    vanishing (or exploding) when the typical network moves more than 1 decade although
    the observation happens to be inside. `vanishing (width)` when the scale is right
    (the mean moves 1 decade or less) but the typical network falls more than 1 decade:
    depth is large against width, and that is the cause. `cannot tell` when there is no
    trend to fit, or, given the batch, when a layer holds under MIN_VALUES values: then only
    an overflow or a change beyond the noise is a verdict (a ReLU zeroes one value half the
    time, and the theory's noise is leading order in 1 / (batch x width)).
    """
    limit = VERDICT_DECADES + NOISE_SDS * th.decades_sd(seeds)
    allowed = f"(±{limit:.2g} allowed)"
    typical = th.typical
    values = batch * width if batch is not None else None
    few = values is not None and values < MIN_VALUES
    if overflow_layer is not None:
        verdict, reason = "exploding", f"overflow at layer {overflow_layer}"
    elif decades > limit:
        verdict, reason = "exploding", f"grew {decades:.1f} decades {allowed}"
    elif underflow_layer is not None and not few:
        verdict, reason = "vanishing", f"layer {underflow_layer} all zeros"
    elif decades < -limit:
        verdict, reason = "vanishing", f"fell {-decades:.1f} decades {allowed}"
    elif few:
        moved = (
            f"moved {decades:+.2f} decades {allowed}"
            if math.isfinite(decades)
            else f"layer {underflow_layer} all zeros"
            if underflow_layer is not None
            else "no trend to fit"
        )
        return "cannot tell", (
            f"{values} value{'s' if values > 1 else ''} a layer (batch {batch} x width {width}): "
            f"too few to tell a trend from noise; {moved}"
        )
    elif not math.isfinite(decades):
        return "cannot tell", "no trend: fewer than two layers with a finite, non-zero m2"
    elif typical is not None and typical < -VERDICT_DECADES:
        verdict, reason = (
            "vanishing",
            f"moved {decades:+.2f} decades, but the typical net falls {-typical:.1f}",
        )
    elif typical is not None and typical > VERDICT_DECADES:
        verdict, reason = (
            "exploding",
            f"moved {decades:+.2f} decades, but the typical net grows {typical:.1f}",
        )
    else:
        return "stable", f"moved {decades:+.2f} decades {allowed}"
    scale_right = th.decades is not None and abs(th.decades) <= VERDICT_DECADES
    if verdict == "vanishing" and scale_right and typical < -VERDICT_DECADES:
        verdict = "vanishing (width)"
        reason += (
            f"; the scale is right, but at depth {depth} and width {width} "
            f"the typical net falls {-typical:.1f} decades"
        )
    return verdict, reason


def _decades(run, depth, forward):
    """Fitted change of log10 m2 over the stack (slope x depth) of the geometric mean over seeds,
    from the input end to the far end; layers that are not finite and positive are left out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(run["m2"].to_numpy(dtype=float))
    per_layer = pd.Series(logs).groupby(run["layer"].to_numpy()).mean()  # log10 of the geometric mean
    ok = per_layer[np.isfinite(per_layer)]
    if len(ok) < 2:
        return math.nan
    slope = float(np.polyfit(ok.index, ok.values, 1)[0])
    return (slope if forward else -slope) * depth


def _first_layer(run, mask):
    layers = run.loc[mask, "layer"]
    return int(layers.min()) if len(layers) else None


def _log10_geomean(values):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.log10(np.asarray(values, dtype=float))))


def summarize(layers, cfg):
    """One row per scheme x act: last-layer m2 across seeds against the theory's band, events, verdict,
    reason.

    decades is the least-squares slope of log10(geometric-mean m2) against the layer, times
    the depth. With the backward pass, the gradient at the input is judged the same way;
    the verdict is the forward one if not stable, else `saturated`, else the gradient's.
    """
    backward = "direction" in layers
    fwd = layers[layers["direction"] == "forward"] if backward else layers
    out = []
    for (scheme, act), run in fwd.groupby(["scheme", "act"], sort=False):
        depth, seeds = cfg.depth, run["seed"].nunique()
        last = run[run["layer"] == depth]
        th = theory(scheme, act, cfg)
        decades = _decades(run, depth, forward=True)
        overflow = _first_layer(run, ~run["finite"].astype(bool))
        underflow = _first_layer(run, run["frac_zero"] == 1.0)
        verdict, reason = judge(decades, seeds, overflow, underflow, th, depth, cfg.width, cfg.batch)
        saturated = float(last["frac_saturated"].mean())
        findings = [reason]
        if verdict == "stable" and saturated > SATURATED_FRAC:
            verdict, reason = "saturated", f"{saturated:.0%} of units pinned at ±1"
            findings = [reason]
        band = th.band(seeds)
        row = {
            "scheme": scheme,
            "act": act,
            "depth": depth,
            "width": cfg.width,
            "seeds": seeds,
            "m2_last_mean": float(last["m2"].mean()),
            "m2_last_geomean": _geomean(last["m2"]),
            "pred_m2_last": float(last["pred_m2"].iloc[0]),
            "log10_m2_last": _log10_geomean(last["m2"]),
            "band_lo": band[0],
            "band_hi": band[1],
            "decades": decades,
            "decades_pred": th.decades if th.decades is not None else math.nan,
            "decades_sd": th.decades_sd(seeds) if th.var is not None else math.nan,
            "growth_log10_per_layer": decades / depth,
            "overflow_layer": overflow,
            "underflow_layer": underflow,
            "frac_saturated_last": saturated,
        }
        if backward:
            grads = layers[
                (layers["direction"] == "backward") & (layers["scheme"] == scheme) & (layers["act"] == act)
            ]
            g_decades = _decades(grads, depth, forward=False)
            at_input = grads[grads["layer"] == 0]
            row.update(
                grad_m2_input_geomean=_geomean(at_input["m2"]),
                grad_pred_m2_input=float(at_input["pred_m2"].iloc[0]),
                grad_decades=g_decades,
                grad_verdict="",
            )
            if overflow is not None and act != "linear":
                findings.append("gradient not judged: the forward pass overflowed")  # act'(inf) means nothing
            else:
                g_verdict, g_reason = judge(
                    g_decades,
                    seeds,
                    _first_layer(grads, ~grads["finite"].astype(bool)),
                    _first_layer(grads, grads["frac_zero"] == 1.0),
                    theory(scheme, act, cfg, "backward"),
                    depth,
                    cfg.width,
                    cfg.batch,
                )
                row["grad_verdict"] = g_verdict
                if g_verdict == verdict == "cannot tell":  # the same few values: their figures only
                    findings.append(f"gradient: {g_reason.split('; ', 1)[1]}")
                elif g_verdict != "stable":
                    findings.append(f"gradient: {g_reason}")
                    if verdict == "stable":
                        verdict = f"{g_verdict.removesuffix(' (width)')} (gradient)"
        out.append({**row, "verdict": verdict, "reason": "; ".join(findings)})
    columns = INIT_SWEEP.written(backward)
    summary = pd.DataFrame.from_records(out, columns=columns)
    return summary.astype({"overflow_layer": "Int64", "underflow_layer": "Int64"})
