"""`fnd init-sweep --model`: the rows of every seed, each layer's findings, the first layer of each, the
verdict.

The verdict is init-sweep's (`fndcli.init.sweep.judge`): the fitted change of log10 m2 from the input to the
last layer, in decades, against one decade plus NOISE_SDS standard deviations of its noise. A user's model has
no mean-field theory, so the noise is measured: the standard error of the fitted change from the layers'
(robust) scatter around the line, and the spread of the change across seeds (over the number of seeds). The
line is Theil-Sen's, so that a step (an average pool divides the gradient per element by its window) does not
read as a trend. A layer is `exploding` or `vanishing` when its own m2 has left the input's by more than that
same allowance, and a `jump` when one call moves the m2 of its own input by more than JUMP_DECADES plus
NOISE_SDS standard deviations of the noise its random weights give that move (`jump_sd`); the summary names a
jump that holds on most seeds. The headline says exploding or vanishing only in the verdict's direction."""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fndcli.init.bntheory import AS_PREDICTED, batchnorm_calls, gradient_verdict
from fndcli.init.probe import load_builder, run_seed
from fndcli.init.sweep import NOISE_SDS, SATURATED_FRAC, VERDICT_DECADES, judge
from fndcli.kinds import INIT_SWEEP_MODEL
from fndcli.memory import stops
from fndcli.names import FINDINGS, first_column
from fndcli.userref import UserCodeError

DEAD_SHARE = 0.9  # an activation's output this share exact zeros is dead
UNDERFLOW_SHARE = 0.01  # this share of an output below a type's smallest normal is an underflow worth naming
JUMP_DECADES = VERDICT_DECADES  # one call moving m2 as far as a whole network may: x10 in m2, x3.2 in RMS
LISTED_JUMPS = 3  # the headline names this many jumps; the layer CSV has every one
OPPOSITE = {"exploding": "vanishing", "vanishing": "exploding"}
STATS = [
    "mean",
    "std",
    "m2",
    "frac_zero",
    "frac_near_zero",
    "max_abs",
    "non_finite",
    "fp16_overflow",
    "fp16_underflow",
    "bf16_overflow",
    "bf16_underflow",
    "frac_saturated",
]
LAYER_COLUMNS = ["seed", "order", "layer", "call", "type", "activation", "shape", *STATS, "in_m2", "units"]
BACKWARD_COLUMNS = ["grad_std", "grad_m2", "grad_non_finite", "weight_grad_std", "grad_data_ratio"]
PARAM_COLUMNS = ["seed", "parameter", "shape", "std", "grad_std", "grad_data_ratio"]


@dataclass
class ProbeResult:
    layers: pd.DataFrame  # one row per seed x leaf call (and the input), in forward order
    params: pd.DataFrame  # with --backward: one row per seed x parameter
    summary: pd.DataFrame  # one row: the verdict, and the first layer of each finding
    heatmap: np.ndarray | None  # (rows, HIST_BINS) counts of log10|x| for the first seed
    interrupted: bool = False
    error: str | None = (
        None  # the user's code raised, or memory ran out, part-way; whole seeds before it kept
    )
    traceback: str = ""  # the user's frames, when their code raised


@dataclass(frozen=True)
class Spread:
    """The measured noise of the fitted change, in the place of init-sweep's theory (`judge` reads these)."""

    sd: float
    decades = None  # no prediction
    typical = None

    def decades_sd(self, seeds):
        return self.sd


def fit(order, values, towards_input=False):
    """(change of log10 values over the depth, its standard error) of a Theil-Sen line (the median of the
    pairwise slopes) against the layer's order; non-finite and non-positive values left out. Robust, not least
    squares: a pooling layer or a norm is a step, not a trend, and should not tilt the line. The standard
    error is the residuals' robust scale (1.4826 MAD) as a least-squares slope would carry it. towards_input:
    the change from the last layer back to the input (a gradient's growth)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log10(np.asarray(values, dtype=float))
    x = np.asarray(order, dtype=float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, 0.0
    i, j = np.triu_indices(len(x), 1)
    apart = x[j] != x[i]
    slope = float(np.median((y[j] - y[i])[apart] / (x[j] - x[i])[apart]))
    residual = y - slope * x
    residual -= np.median(residual)
    scale = 1.4826 * float(np.median(np.abs(residual)))
    span = float(np.max(order))
    se = scale / math.sqrt(float(((x - x.mean()) ** 2).sum())) * span
    return slope * span * (-1 if towards_input else 1), se


def trend(layers, column, towards_input=False):
    """(decades, sd) over the seeds: the mean fitted change, and sd = sqrt(the mean squared standard error of
    the fits + the variance of the changes across seeds / seeds)."""
    fits = [fit(run["order"], run[column], towards_input) for _, run in layers.groupby("seed", sort=False)]
    changes = np.array([c for c, _ in fits if math.isfinite(c)])
    if not len(changes):
        return math.nan, 0.0
    seed_var = float(changes.var(ddof=1)) / len(changes) if len(changes) > 1 else 0.0
    return float(changes.mean()), math.sqrt(float(np.mean([se * se for _, se in fits])) + seed_var)


def allowance(sd):
    return VERDICT_DECADES + NOISE_SDS * sd


def jump_sd(units):
    """The sd of log10 of a call's m2 gain that its own random weights give (0 without weights). Each of its
    `units` iid weight rows w gives an output m2 of w^T C w (C: the input's second moments), of relative
    variance 2 tr(C^2) / tr(C)^2 <= 2 for Gaussian rows (uniform rows less); their mean's is <= 2 / units, and
    by the delta method sd(log10) = sqrt(2 / units) / ln 10."""
    return math.sqrt(2 / units) / math.log(10) if units > 0 else 0.0


def moved(row):
    """log10(m2 / in_m2): the decades a call moves the mean square of its own input (nan where either is 0,
    missing or not finite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        step = float(np.log10(row["m2"]) - np.log10(row["in_m2"]))
    return step if math.isfinite(step) else math.nan


def layer_findings(row, input_m2, allowed):
    """The findings of one row, in FINDINGS' order."""
    found = []
    if row["activation"] and row["frac_zero"] >= DEAD_SHARE:
        found.append("dead")
    if row["frac_saturated"] > SATURATED_FRAC:
        found.append("saturated")
    for kind in ("fp16", "bf16"):
        if row[f"{kind}_overflow"] > 0:
            found.append(f"{kind} overflow")
        if row[f"{kind}_underflow"] >= UNDERFLOW_SHARE:
            found.append(f"{kind} underflow")
    if row["non_finite"] > 0:
        found.append("non-finite")
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.log10(row["m2"]) - np.log10(input_m2)
    if change > allowed:
        found.append("exploding")
    elif change < -allowed:
        found.append("vanishing")
    if abs(moved(row)) > JUMP_DECADES + NOISE_SDS * jump_sd(row["units"]):
        found.append("jump")
    return ", ".join(found)


@dataclass(frozen=True)
class Jump:
    """A call that jumps on some seeds."""

    name: str  # as `where` names it
    order: int
    seeds: int  # how many seeds it jumps on
    factor: float  # its output's RMS over its input's: the geometric mean over those seeds


def jumps(layers):
    """Every call that jumps on some seed, in forward order."""
    hit = layers[layers["finding"].str.split(", ").apply(lambda fs: "jump" in fs)]
    found = []
    for (layer, call), rows in hit.groupby(["layer", "call"], sort=False):
        step = float(np.mean([moved(r) for _, r in rows.iterrows()]))
        name = layer if call == 1 else f"{layer} (call {call})"
        found.append(Jump(name, int(rows["order"].min()), len(rows), 10 ** (step / 2)))
    return sorted(found, key=lambda j: j.order)


def has(layers, finding):
    return layers["finding"].str.split(", ").apply(lambda fs: finding in fs)


def headline_findings(layers, firsts, found, seeds, verdict, allowed):
    """The headline's findings: where each starts; the jumps on most seeds with their RMS factor (one on
    fewer cannot be told); exploding or vanishing by name only in the forward verdict's own direction, the
    other as a plain move, or not at all where a jump its way, at or before it, says it."""
    held = [j for j in found if 2 * j.seeds > seeds]
    said = []
    for f, name in firsts.items():
        if not name or f == "jump":
            continue
        if f not in OPPOSITE or verdict.split(" ")[0] == f:
            said.append(f"{f} from {name}{fed_by(layers, name)}")
            continue
        up, start = f == "exploding", int(layers.loc[has(layers, f), "order"].min())
        if not any((j.factor > 1) == up and j.order <= start for j in held):
            side = "above" if up else "below"
            said.append(f"m2 over {allowed:.2g} decades {side} the input's from {name}{fed_by(layers, name)}")
    said += [
        f"scale jumps x{j.factor:.3g} (RMS against its input) at {j.name}{fed_by(layers, j.name)}"
        for j in held[:LISTED_JUMPS]
    ]
    if len(held) > LISTED_JUMPS:
        said.append(f"{len(held) - LISTED_JUMPS} more jump(s) in the layer table")
    unsure = [j for j in found if j not in held]
    if unsure:
        said.append(
            f"cannot tell whether the scale jumps at {unsure[0].name} (on {unsure[0].seeds} of {seeds} seeds)"
        )
    return said


def where(layers, mask, back=False):
    """The first row (by order, over every seed) where mask holds, named for a person; None if none.
    back: first going back from the output (the gradient's way), the deepest row."""
    hits = layers[mask]
    if not len(hits):
        return None
    row = hits.sort_values(["order", "seed"], ascending=[not back, True], kind="stable").iloc[0]
    return row["layer"] if row["call"] == 1 else f"{row['layer']} (call {row['call']})"


def fed_by(layers, name, back=False):
    """' (Type, after previous (Type))': where a finding starts, and the layer before it, the usual culprit.
    back: a gradient's finding, and the call after it, whose backward passed that gradient back."""
    first = layers[layers["seed"] == layers["seed"].iloc[0]].reset_index(drop=True)
    named = first.index[first["layer"] == name.split(" (call")[0]]
    if not len(named):
        return ""
    i = int(named[0])
    j, word = (i + 1, "passed back by") if back else (i - 1, "after")
    near = f", {word} {first.at[j, 'layer']} ({first.at[j, 'type']})" if 0 < j < len(first) else ""
    return f" ({first.at[i, 'type']}{near})"


def summarize(layers, cfg):
    """The summary row (verdict, reason, first layer of each finding), and the layers with their findings."""
    decades, sd = trend(layers, "m2")
    allowed = allowance(sd)
    input_m2 = layers[layers["layer"] == "input"].set_index("seed")["m2"]
    layers = layers.assign(
        finding=[layer_findings(r, input_m2[r["seed"]], allowed) for _, r in layers.iterrows()]
    )
    seeds = layers["seed"].nunique()
    firsts = {
        f: where(layers, layers["finding"].str.split(", ").apply(lambda fs, f=f: f in fs)) for f in FINDINGS
    }
    overflow = where(layers, layers["non_finite"] > 0)
    zeros = where(layers, (layers["frac_zero"] == 1.0) & (layers["layer"] != "input"))
    verdict, reason = judge(decades, seeds, overflow, zeros, Spread(sd), None, None)
    found = jumps(layers)
    firsts["jump"] = next((j.name for j in found if 2 * j.seeds > seeds), None)
    said = headline_findings(layers, firsts, found, seeds, verdict, allowed)
    row = {
        "model": cfg.model,
        "input_shape": "x".join(map(str, cfg.input_shape)),
        "scheme": cfg.scheme,
        "seeds": seeds,
        "layers": int((layers["seed"] == layers["seed"].iloc[0]).sum() - 1),
        "decades": decades,
        "decades_sd": sd,
        "allowed": allowed,
        **{first_column(f): firsts[f] or "" for f in FINDINGS},
    }
    reasons = [reason]
    if cfg.backward:
        g_bad = where(layers, layers["grad_non_finite"] > 0, back=True)
        if g_bad is not None:  # inf or nan: the finite layers' fit would be a figure of nothing
            g_decades, g_sd = math.nan, math.nan
            g_verdict, g_reason = (
                "exploding",
                (
                    f"non-finite from {g_bad}{fed_by(layers, g_bad, back=True)}, "
                    "so its trend cannot be measured"
                ),
            )
        else:
            g_decades, g_sd = trend(layers, "grad_m2", towards_input=True)
            plain = judge(g_decades, seeds, None, None, Spread(g_sd), None, None)
            n_bn = batchnorm_calls(layers)
            g_verdict, g_reason = gradient_verdict(g_decades, g_sd, n_bn, plain, allowance(g_sd))
        row.update(grad_decades=g_decades, grad_decades_sd=g_sd, grad_verdict=g_verdict)
        if g_verdict != "stable":
            reasons.append(f"gradient: {g_reason}")
            if verdict == "stable" and g_verdict != AS_PREDICTED:  # the theory's growth is no fault
                verdict = f"{g_verdict} (gradient)"
    reasons += said
    row.update(verdict=verdict, reason="; ".join(r for r in reasons if r))
    columns = INIT_SWEEP_MODEL.written(cfg.backward)
    return pd.DataFrame.from_records([row], columns=columns), layers


def run_probe(cfg, plan):
    """Every seed of cfg through the user's model; the rows, findings and verdict (never raises for the user's
    code: its error and traceback come back in the result, with the seeds before it)."""
    builder = load_builder(cfg.model)
    rows, params, heatmap, error, trace = [], [], None, None, ""
    seed = cfg.seed
    with stops(lambda: f"at seed {seed}") as stopped:
        try:
            for seed in range(cfg.seed, cfg.seed + cfg.seeds):
                seed_rows, seed_params, hist = run_seed(builder, cfg, plan.calls, seed)
                rows += [{"seed": seed, "order": i, **r} for i, r in enumerate(seed_rows)]
                params += [{"seed": seed, **p} for p in seed_params]
                heatmap = hist if heatmap is None else heatmap
        except UserCodeError as e:
            error, trace = f"seed {seed}: {e}", e.traceback
    columns = (
        LAYER_COLUMNS
        + (["gain_from"] if cfg.scheme != "keep" else [])
        + (BACKWARD_COLUMNS if cfg.backward else [])
    )
    layers = pd.DataFrame.from_records(rows, columns=columns)
    if len(layers):
        summary, layers = summarize(layers, cfg)
    else:
        summary, layers = pd.DataFrame(columns=INIT_SWEEP_MODEL.written()), layers.assign(finding="")
    return ProbeResult(
        layers,
        pd.DataFrame.from_records(params, columns=PARAM_COLUMNS),
        summary,
        heatmap,
        stopped.interrupted,
        stopped.error or error,
        trace,
    )
