"""`fnd train --stats`'s findings: what went wrong in which layer, at which step, judged across seeds.

Each finding is looked for in each seed's stats (`dynamics.COLUMNS`), and a finding (what, where) is said
only when every seed shows it; shown by some seeds and not others it is "cannot tell", as init-sweep says
of a jump that holds on some seeds only. The thresholds, and where each comes from:

- update:data (a weight's step over its values, std over std; makemore part 3 plots log10 of it against
  -3, "about 1e-3"): its median over the observed steps above RATE_HIGH (-1.5 decades: 1.5 decades above
  1e-3, the rate too high for that layer) or below RATE_LOW (-4.5: as far below, the layer barely moves).
  Weights only, as makemore plots them (a bias starts at 0: its ratio has no scale).
- dead: an activation's output DEAD_SHARE exact zeros (init-sweep's --model rule, 0.9) on an observed
  step; named with the first such step and whether it stays dead at every later one.
- saturated: a tanh's or sigmoid's output more than SATURATED_FRAC of it past |0.97| (makemore part 3's
  saturation) on an observed step: init-sweep's rule for its last layer (0.5).
- dead units grow: the share of an activation's units zero on a whole batch rises by DEAD_UNITS_GROW
  (a tenth of the layer; fnd's choice: fastai's dead_chart plots the lowest bin's share without a rule).
- collapses / explodes: a layer's mean square moves more than VERDICT_DECADES (init-sweep's: one decade
  of m2, x3.2 in RMS) from the first observed step, down or up; not the output, whose scale its targets
  set (learning moves it).
- diverged: the loss is not finite, or its smoothed value (fastai's lr_find: an exponential moving
  average with beta 0.98, bias-corrected) passes DIVERGE_FACTOR (4, lr_find's stop rule) times its best
  and is still there at the last step; `spiked` when it passed and came back.
"""

import math

import numpy as np
import pandas as pd

from fndcli.init.sweep import SATURATED_FRAC, VERDICT_DECADES

RATE_HIGH, RATE_LOW = -1.5, -4.5  # log10 update:data: 1.5 decades either side of makemore's -3
DEAD_SHARE = 0.9  # as init-sweep --model's (fndcli.init.diagnose.DEAD_SHARE)
DEAD_UNITS_GROW = 0.1
SMOOTH_BETA, DIVERGE_FACTOR = 0.98, 4.0  # fastai's lr_find
ORDER = [
    "diverged",
    "spiked",
    "rate too high",
    "barely moves",
    "dead",
    "saturated",
    "dead units grow",
    "explodes",
    "collapses",
]
COLUMNS = ["finding", "layer", "step", "seeds_with", "seeds", "verdict", "detail"]
HOLDS, CANNOT_TELL = "holds", "cannot tell"
LOSS = "loss"  # the `layer` of the per-step loss rows (dynamics.Observer)


def layer_type(name):
    """'linear' or the activation a hand-written layer's name says ('relu1': 'relu')."""
    return "linear" if name.startswith("lin") or name == "out" else name.rstrip("0123456789")


def smoothed(losses, beta=SMOOTH_BETA):
    """fastai's smoothed loss: avg = beta * avg + (1 - beta) * loss, divided by 1 - beta^(i+1) (the bias
    correction of an average started at 0)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return np.array(out)


def diverged_at(steps, losses):
    """(the first step whose loss is not finite, or whose smoothed loss passes DIVERGE_FACTOR times its best
    so far, or None; whether the run ended there: a non-finite loss, or a smoothed one still that far above
    its best at the last step). A run that came back down spiked, it did not diverge."""
    best, smooth = math.inf, smoothed(losses)
    for i, (step, loss) in enumerate(zip(steps, losses)):
        if not math.isfinite(loss) or smooth[i] > DIVERGE_FACTOR * best:
            stayed = not math.isfinite(losses[-1]) or smooth[-1] > DIVERGE_FACTOR * np.nanmin(smooth[:i])
            return int(step), bool(stayed)
        best = min(best, smooth[i])
    return None, False


def _series(stats, stat):
    """{layer: (steps, values)} of one stat, in step order."""
    rows = stats[stats["stat"] == stat].sort_values("step", kind="stable")
    return {
        layer: (g["step"].to_numpy(), g["value"].to_numpy()) for layer, g in rows.groupby("layer", sort=False)
    }


def seed_findings(stats):
    """[(finding, layer, step, detail)] of one seed's stats."""
    found = []
    for layer, (steps, ratios) in _series(stats, "update_data").items():
        if not layer.endswith(".w"):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log10(ratios)
        median = float(np.median(logs[~np.isnan(logs)])) if (~np.isnan(logs)).any() else math.nan
        if median > RATE_HIGH:
            first = int(steps[np.argmax(logs > RATE_HIGH)])
            found.append(("rate too high", layer, first, f"log10 update:data {median:+.2f} (median)"))
        elif median < RATE_LOW:
            found.append(("barely moves", layer, int(steps[0]), f"log10 update:data {median:+.2f} (median)"))
    for layer, (steps, dead) in _series(stats, "dead").items():
        if layer_type(layer) == "linear" or not (dead >= DEAD_SHARE).any():
            continue
        i = int(np.argmax(dead >= DEAD_SHARE))
        stays = "and after" if (dead[i:] >= DEAD_SHARE).all() else "not at every later step"
        found.append(("dead", layer, int(steps[i]), f"{dead[i]:.0%} zeros from step {steps[i]} {stays}"))
    for layer, (steps, share) in _series(stats, "saturated").items():
        if (share > SATURATED_FRAC).any():
            i = int(np.argmax(share > SATURATED_FRAC))
            found.append(
                ("saturated", layer, int(steps[i]), f"{share[i]:.0%} past |0.97| at step {steps[i]}")
            )
    for layer, (steps, units) in _series(stats, "dead_units").items():
        if len(units) > 1 and units[-1] - units[0] >= DEAD_UNITS_GROW:
            i = int(np.argmax(units - units[0] >= DEAD_UNITS_GROW))
            found.append(
                ("dead units grow", layer, int(steps[i]), f"dead units {units[0]:.0%} -> {units[-1]:.0%}")
            )
    for layer, (steps, m2) in _series(stats, "m2").items():
        if layer == "out" or not (len(m2) > 1 and m2[0] > 0 and math.isfinite(m2[0])):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            moved = np.log10(m2 / m2[0])
        up, down = moved > VERDICT_DECADES, moved < -VERDICT_DECADES
        for what, hit in (("explodes", up | ~np.isfinite(m2)), ("collapses", down)):
            if hit.any():
                i = int(np.argmax(hit))
                found.append(
                    (what, layer, int(steps[i]), f"mean square x{m2[i] / m2[0]:.3g} from step {steps[0]}")
                )
    loss = stats[(stats["layer"] == LOSS) & (stats["stat"] == "loss")].sort_values("step", kind="stable")
    step, stayed = diverged_at(loss["step"].to_numpy(), loss["value"].to_numpy(dtype=float))
    if step is not None:
        what = "diverged" if stayed else "spiked"
        detail = f"past {DIVERGE_FACTOR:g}x its best (smoothed)" + ("" if stayed else ", and came back")
        found.append((what, LOSS, step, detail))
    return found


def findings(stats, seeds):
    """One row per finding (what, where) any seed shows: `holds` when all `seeds` show it (its step and detail
    the first seed's), else `cannot tell`."""
    per_seed = {seed: seed_findings(rows) for seed, rows in stats.groupby("seed", sort=True)}
    seen = {}
    for seed, found in per_seed.items():
        for what, layer, step, detail in found:
            seen.setdefault((what, layer), []).append((seed, step, detail))
    rows = []
    for (what, layer), hits in seen.items():
        steps = sorted(step for _, step, _ in hits)
        detail = hits[0][2] + (f"; steps {steps[0]}-{steps[-1]} across seeds" if len(set(steps)) > 1 else "")
        verdict = HOLDS if len(hits) == seeds else CANNOT_TELL
        rows.append((what, layer, hits[0][1], len(hits), seeds, verdict, detail))
    rows.sort(key=lambda r: ORDER.index(r[0]))  # stable: each kind's layers in forward order
    return pd.DataFrame.from_records(rows, columns=COLUMNS)
