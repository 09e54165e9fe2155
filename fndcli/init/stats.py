"""Activation statistics, defined once for both init-sweep modes (fastbook ch. 17; fastai's ActivationStats).

fnd's stacks (`sweep.py`) reduce a whole (layers, batch, width) stack at once; `--model` (`probe.py`) folds
each leaf's output into running sums. Both take from here what "near zero" means, the std from the moments
and the log10|x| histogram, so the two modes' figures mean the same thing.
"""
import numpy as np
import torch

NEAR_ZERO = 0.05  # fastai's "near zero": |x| at or below it


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
