"""Activation statistics, defined once for both init-sweep modes (fastbook ch. 17; fastai's ActivationStats).

fnd's stacks (`sweep.py`) reduce a whole (layers, batch, width) stack at once; `--model` (`probe.py`)
folds each leaf's output into running sums (`Sums`). Both take from here what "near zero" means, the
std from the moments and the log10|x| histogram, so the two modes' figures mean the same thing.
"""

import math

import numpy as np
import torch

NEAR_ZERO = 0.05  # fastai's "near zero": |x| at or below it
TANH_SATURATION = 0.97  # Karpathy, makemore part 3: |tanh| above this passes (almost) no gradient
FP16, BF16 = torch.finfo(torch.float16), torch.finfo(torch.bfloat16)


def near_zero(x):
    """Where |x| <= NEAR_ZERO (a bool tensor shaped as x)."""
    return x.abs() <= NEAR_ZERO


def sample_std(n, mean, m2):
    """The std with Bessel's n - 1 (torch.std's) from the count n, the mean and the mean square E[x^2].

    mean and m2 are floats or float64 tensors (one value a row); a float64 tensor comes back. A variance that
    rounding makes negative is 0; n = 1 divides by 1.
    """
    var = torch.as_tensor(m2 - mean * mean, dtype=torch.float64).clamp(min=0)
    return (var * (n / max(n - 1, 1))).sqrt()


def log10_abs(x):
    """log10|x| in float64: -inf for a zero, inf for an infinity, nan for a nan."""
    return torch.log10(x.double().abs())


def log10_histogram(logs, low, high, bins):
    """Counts of log10|x| values (`log10_abs`) in `bins` equal bins over [low, high], per row.

    Zeros (-inf) and anything below `low` fall in the first bin, inf, nan and anything above `high` in the
    last, so underflow and overflow show. logs (values,) gives (bins,); (rows, values) gives (rows, bins).
    """
    logs = logs.nan_to_num(nan=high, posinf=high, neginf=low).clamp(low, high)
    rows = logs.unsqueeze(0) if logs.dim() == 1 else logs
    counts = np.stack([torch.histc(row, bins=bins, min=low, max=high).numpy() for row in rows])
    return counts[0] if logs.dim() == 1 else counts


def real(t):
    """t detached, in float64; a complex tensor as its real and imaginary parts, two numbers an element."""
    t = t.detach()
    return (torch.view_as_real(t.resolve_conj()) if t.is_complex() else t).double()


class Sums:
    """Running sums of one call's output (and its gradient), in float64: all a row needs."""

    FIELDS = (
        "n",
        "sum",
        "sumsq",
        "zeros",
        "near_zero",
        "non_finite",
        "fp16_overflow",
        "fp16_underflow",
        "bf16_overflow",
        "bf16_underflow",
        "saturated",
        "grad_n",
        "grad_sum",
        "grad_sumsq",
        "grad_non_finite",
    )

    def __init__(self, saturating):
        self.values = dict.fromkeys(self.FIELDS, 0.0)
        self.max_abs = 0.0
        self.saturating = saturating  # (low, high) bounds of a saturating activation, or None
        self.shapes = []

    def add(self, t):
        """Fold a tensor of the output in, and forget it."""
        x = real(t).flatten()
        a = x.abs()
        tiny = a > 0
        v = self.values
        v["n"] += x.numel()
        v["sum"] += x.sum().item()
        v["sumsq"] += (x * x).sum().item()
        v["zeros"] += (x == 0).sum().item()
        v["near_zero"] += near_zero(x).sum().item()
        v["non_finite"] += (~torch.isfinite(x)).sum().item()
        v["fp16_overflow"] += (a > FP16.max).sum().item()
        v["fp16_underflow"] += (tiny & (a < FP16.tiny)).sum().item()
        v["bf16_overflow"] += (a > BF16.max).sum().item()
        v["bf16_underflow"] += (tiny & (a < BF16.tiny)).sum().item()
        if self.saturating:
            low, high = self.saturating
            v["saturated"] += ((x - (low + high) / 2).abs() > TANH_SATURATION * (high - low) / 2).sum().item()
        if x.numel():
            top = a.max().item()  # NaN if any element is
            self.max_abs = math.nan if math.isnan(top) or math.isnan(self.max_abs) else max(self.max_abs, top)
        self.shapes.append("x".join(map(str, t.shape)))

    def add_grad(self, g):
        g = real(g)
        self.values["grad_n"] += g.numel()
        self.values["grad_sum"] += g.sum().item()
        self.values["grad_sumsq"] += (g * g).sum().item()
        self.values["grad_non_finite"] += (~torch.isfinite(g)).sum().item()

    def stats(self):
        """The row's statistics: mean, std (torch.std's, n - 1), second moment, shares, max |x|, gradient
        std."""
        v, n = self.values, self.values["n"]
        mean, m2 = (v["sum"] / n, v["sumsq"] / n) if n else (math.nan, math.nan)
        out = {
            "shape": ", ".join(self.shapes),
            "mean": mean,
            "std": _std(n, mean, m2),
            "m2": m2,
            "frac_zero": v["zeros"] / n if n else math.nan,
            "frac_near_zero": v["near_zero"] / n if n else math.nan,
            "max_abs": self.max_abs if n else math.nan,
            "non_finite": int(v["non_finite"]),
        }
        for key in ("fp16_overflow", "fp16_underflow", "bf16_overflow", "bf16_underflow"):
            out[key] = v[key] / n if n else math.nan
        out["frac_saturated"] = v["saturated"] / n if self.saturating and n else math.nan
        gn = v["grad_n"]
        g_mean, g_m2 = (v["grad_sum"] / gn, v["grad_sumsq"] / gn) if gn else (math.nan, math.nan)
        out.update(grad_std=_std(gn, g_mean, g_m2), grad_m2=g_m2, grad_non_finite=int(v["grad_non_finite"]))
        return out


def _std(n, mean, m2):
    """stats.sample_std, but an overflowed output's std is its m2: inf, where torch.std says nan."""
    return sample_std(n, mean, m2).item() if math.isfinite(m2) else m2
