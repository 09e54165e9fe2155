"""The statistics behind `fnd compare`'s timing verdicts: two runs, or two implementations paired in one run.

All on log times, so a change is a ratio NEW/BASE and noise is relative. The sample unit is the
worker process (one sample of each benchmark per process: `fndcli.runs.saved.SavedRun.process_samples`).

- **Across runs** (`across_runs`): the 20 % trimmed means of BASE's and NEW's log samples, Yuen's
  standard error of each (robust: a few processes slowed by a neighbour do not move it), and a
  **between-run term** tau^2 per run: processes of one run share that run's minute on the host, so two
  runs differ by more than their processes' scatter says. tau^2 is learned from each run's own
  structure (`run_noise`: how far the means of consecutive blocks of processes drift apart beyond what
  their scatter explains, pooled over the run's benchmarks), never below `Settings.run_noise`, the floor
  measured on this kind of host (scripts/gate-calibration). Variance of the difference:
  Yuen_BASE + Yuen_NEW + tau_BASE^2 + tau_NEW^2; Welch-Satterthwaite degrees of freedom.
  With tau 0 this is Yuen's test, `scipy.stats.ttest_ind(trim=0.2, equal_var=False)`.
- **Paired in one run** (`paired`): B's log sample minus A's from the same process (neighbours in
  time: the host's minute cancels), Yuen's one-sample trimmed t-test on those log ratios, the interval
  a paired percentile bootstrap of their trimmed mean (`scipy.stats.bootstrap(paired=True)`), seeded.
- **Verdicts**, first match wins, each a place of the interval against 0 and +-threshold:
  REGRESSION / improved: the change is significantly *beyond* the threshold (a one-sided t-test of
  "change <= +threshold", or ">= -threshold", Holm-corrected over the comparison's timing rows: family-wise
  error <= alpha); same: significantly *inside* +-threshold (TOST: the 1 - 2 alpha interval lies inside);
  small: the 95 % interval excludes 0 but neither of those; else inconclusive. Testing "beyond the threshold"
  rather than "not zero" is what keeps a gate quiet when runs drift by a few per cent: identical code must
  look 10 % slower *and* be significantly so. `detectable` is the smallest slowdown called REGRESSION 4
  times in 5.
"""

import math
from dataclasses import dataclass

import numpy as np

TRIM = 0.2  # Yuen's trimmed means: 20 % off each end (Wilcox, Introduction to Robust Estimation, ch. 5)
POWER = 0.8  # of `detectable`


@dataclass(frozen=True)
class Estimate:
    """A change on the log scale: log(NEW/BASE), its standard error and degrees of freedom."""

    log_ratio: float
    se: float
    df: float


def trimmed(x, trim=TRIM):
    """(20 % trimmed mean, Yuen's squared standard error of it, h: the values left) of a 1-D sample."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    g = int(math.floor(trim * n))
    h = n - 2 * g
    winsorized = np.clip(x, x[g], x[n - g - 1])
    return float(x[g : n - g].mean()), float((n - 1) * winsorized.var(ddof=1) / (h * (h - 1))), h


def run_noise(series, blocks=4):
    """A run's between-run variance tau^2 on the log scale, from its own structure.

    series: one array of log samples per benchmark, in the order the processes ran. Each is cut into
    `blocks` consecutive blocks; the variance of the block means beyond what the within-block scatter
    explains (var(block means) - s^2_within / block size) is drift the run's processes share. Pooled
    (averaged) over the benchmarks, floored at 0. NaN when no benchmark has two processes a block.
    """
    found = []
    for x in series:
        x = np.asarray(x, dtype=float)
        size = len(x) // blocks
        if size < 2:
            continue
        parts = x[: size * blocks].reshape(blocks, size)  # (blocks, size), in time order
        within = parts.var(axis=1, ddof=1).mean()
        found.append(parts.mean(axis=1).var(ddof=1) - within / size)
    return max(0.0, float(np.mean(found))) if found else math.nan


def run_tau2(found, floor):
    """A run's between-run variance (log scale): `run_noise` of its benchmarks' samples ({name: samples}, in
    time order), never below floor^2 (Settings.run_noise)."""
    noise = run_noise([np.log(m) for m in found.values() if len(m) > 1])
    return max(floor**2, 0.0 if math.isnan(noise) else noise)


def across_runs(base, new, tau2_base=0.0, tau2_new=0.0):
    """Estimate of log(NEW/BASE) from two runs' log samples, with each run's between-run variance added."""
    mb, vb, hb = trimmed(base)
    mn, vn, hn = trimmed(new)
    var = vb + vn + tau2_base + tau2_new
    df = var**2 / (vb**2 / (hb - 1) + vn**2 / (hn - 1)) if vb + vn > 0 else math.inf
    return Estimate(mn - mb, math.sqrt(var), df)


def paired(a, b):
    """Estimate of log(B/A) from log samples a, b of the same processes (a[i] and b[i]: process i): the 20 %
    trimmed mean of the log ratios, Yuen's one-sample standard error, h - 1 degrees of freedom (a few pairs
    that a neighbour disturbed do not move it: measured, it caught a 1.1x kernel in 11 of 13 runs where the
    plain mean caught 7)."""
    mean, var, h = trimmed(np.asarray(b, dtype=float) - np.asarray(a, dtype=float))
    return Estimate(mean, math.sqrt(var), h - 1)


def p_value(est):
    """Two-sided p of 'no change' (a t-test)."""
    if est.se == 0:
        return 0.0 if est.log_ratio else 1.0
    return float(2 * _t_sf(abs(est.log_ratio) / est.se, est.df))


# Student's t from scipy.special (0.3 s to import) rather than scipy.stats (1.1 s): `fnd compare` and
# `fnd history` start faster. stdtr(df, -x) is stats.t.sf(x, df), stdtrit(df, p) stats.t.ppf(p, df).
def _t_sf(x, df):
    from scipy import special

    return special.stdtr(df, -x)


def _t_ppf(p, df):
    from scipy import special

    return special.stdtrit(df, p)


def p_beyond(est, threshold):
    """One-sided p of 'the change is within the threshold on the estimate's side': small when NEW/BASE is
    significantly above 1 + threshold (or below 1 - threshold)."""
    bound = math.log1p(threshold) if est.log_ratio >= 0 else math.log1p(-threshold)
    if est.se == 0:
        return 0.0 if abs(est.log_ratio) > abs(bound) else 1.0
    return float(
        _t_sf(abs(est.log_ratio - bound) / est.se * (1 if abs(est.log_ratio) > abs(bound) else -1), est.df)
    )


def interval(est, confidence):
    """The t interval of log(NEW/BASE) at `confidence`."""
    half = float(_t_ppf(0.5 + confidence / 2, est.df)) * est.se if est.se else 0.0
    return est.log_ratio - half, est.log_ratio + half


def paired_bootstrap(a, b, confidence, seed, resamples):
    """Percentile bootstrap interval of the trimmed mean of log b - log a, processes resampled as pairs."""
    from scipy import stats

    ci = stats.bootstrap(
        (np.asarray(a, float), np.asarray(b, float)),
        _mean_log_ratio,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    ).confidence_interval
    return float(ci.low), float(ci.high)


def _mean_log_ratio(a, b, axis=-1):
    from scipy import stats

    return stats.trim_mean(b - a, TRIM, axis=axis)


def equivalent(low, high, threshold):
    """TOST's decision: the 1 - 2 alpha interval of log(NEW/BASE), (low, high), inside +-threshold."""
    return math.log(1 - threshold) <= low and high <= math.log(1 + threshold)


def detectable(est, alpha, threshold):
    """The smallest slowdown (NEW/BASE - 1) called REGRESSION with probability POWER (before Holm's
    correction): the estimate must clear the threshold by the one-sided test's critical value."""
    margin = float(_t_ppf(1 - alpha, est.df) + _t_ppf(POWER, est.df)) * est.se if est.se else 0.0
    return math.expm1(math.log1p(threshold) + margin)


def holm(p_values):
    """Holm's step-down adjusted p-values (family-wise error <= alpha over all of them); NaN stays NaN."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out


def verdict(change, p_adjusted, low, high, ci_low, ci_high, alpha, threshold):
    """The words, from the estimate (NEW/BASE - 1: its sign is p_beyond's side), the Holm-adjusted p_beyond,
    TOST's 1 - 2 alpha interval (low, high) of log(NEW/BASE) and the 95 % interval of NEW/BASE - 1."""
    beyond = low > math.log1p(threshold) if change > 0 else high < math.log1p(-threshold)
    if p_adjusted < alpha and beyond:  # the interval agrees (paired: the bootstrap's, beside Yuen's test)
        return "REGRESSION" if change > 0 else "improved"
    if equivalent(low, high, threshold):
        return "same"
    return "small" if ci_low > 0 or ci_high < 0 else "inconclusive"
