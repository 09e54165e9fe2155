"""init-sweep --model --backward's gradient verdict against its theory: BatchNorm at init grows the gradient.

Yang, Pennington, Rao, Sohl-Dickstein and Schoenholz (ICLR 2019, "A Mean Field Theory of Batch
Normalization"): in a deep chain of BatchNorm + ReLU at init, the gradient's squared norm grows by
pi / (pi - 1) = 1.467 per layer going back (its RMS by sqrt(pi / (pi - 1)) = 1.21), however the weights are
drawn: BatchNorm itself explodes the gradient. A residual network grows it less (the shortcuts carry it past
the layers), so over a model's n BatchNorm calls the theory bounds the growth of the gradient's mean square
from the output back to the input at n log10(pi / (pi - 1)) decades (every call counted, shortcut ones too:
a bound, not the path's exact depth).

The verdict for a model with BatchNorm, from the fitted growth D (decades of m2, output back to input) and
its noise sd (the fits' standard errors and the seeds' spread, `diagnose.trend`), init-sweep's band widened
by the theory: from -allowed to the bound + allowed (`diagnose.allowance`: 1 decade plus NOISE_SDS sd):
- `as BatchNorm predicts` inside it: a growth the theory explains, named with the measured factor a layer;
- `exploding` above it (beyond what BatchNorm explains), `vanishing` below it (as init-sweep's `judge`);
- `cannot tell` where D sits within one sd (the seeds' spread) of either edge, where a verdict would flip
  from seed to seed.
The same `cannot tell` guards the edge of the plain verdict's band (1 decade plus NOISE_SDS sd) in models
without BatchNorm.
"""

import math

GROWTH_M2 = math.pi / (math.pi - 1)  # per BatchNorm + ReLU layer, the squared gradient's growth
PER_LAYER = math.sqrt(GROWTH_M2)  # 1.21: the RMS's
CANNOT_TELL = "cannot tell"
AS_PREDICTED = "as BatchNorm predicts"


def batchnorm_calls(layers):
    """How many BatchNorm calls the first seed's forward pass made."""
    first = layers[layers["seed"] == layers["seed"].iloc[0]]
    return int(first["type"].astype(str).str.startswith("BatchNorm").sum())


def near(d, edge, sd):
    return abs(d - edge) <= sd


def gradient_verdict(d, sd, n_bn, plain, allowed):
    """(verdict, reason) of the gradient's growth d (decades of m2) with noise sd, for a model with n_bn
    BatchNorm calls; `plain`: init-sweep's own (verdict, reason), `allowed`: its band's half-width."""
    per_layer = 10 ** (d / (2 * n_bn)) if n_bn else math.nan
    if not n_bn:
        if plain[0] != CANNOT_TELL and near(abs(d), allowed, sd):
            return CANNOT_TELL, (
                f"{d:+.2f} decades from the output back to the input, within its spread ({sd:.2g}) of the "
                f"±{allowed:.2g} band's edge: seeds would differ"
            )
        return plain
    bound = n_bn * math.log10(GROWTH_M2)
    upper, lower = bound + allowed, -allowed
    theory = (
        f"Yang et al. 2019: up to x{PER_LAYER:.2f} a BatchNorm + ReLU layer, {bound:+.2f} decades over its "
        f"{n_bn} BatchNorm layers"
    )
    measured = f"{d:+.2f} decades back to the input (±{sd:.2g}), x{per_layer:.2f} a BatchNorm layer in RMS"
    if near(d, upper, sd) or near(d, lower, sd):
        edge = upper if near(d, upper, sd) else lower
        return CANNOT_TELL, f"{measured}, within its spread of the edge at {edge:+.2f}; {theory}"
    if lower < d < upper:
        return AS_PREDICTED, f"as BatchNorm at init predicts (x~1.2 a layer): {measured} ({theory})"
    if d >= upper:
        return "exploding", f"{measured}: beyond the bound ({upper:+.2f} allowed); {theory}"
    return "vanishing", f"{measured}: below {lower:+.2f}; {theory}"
