"""A comparison's rows, built and judged: the part of `fnd compare` every kind of run shares.

A row is a dict of COLUMNS. Timings are judged as samples (`timing_row`, then `judge` once every
row's p is known: Holm's correction over the rows); checks and verdicts by what they were in
BASE and NEW (`pass_fail`). The statistics are `fndcli.runs.verdicts`'s; the verdicts are listed
in `fndcli.runs.compare`'s docstring.
"""

import math

import numpy as np

from fndcli.kinds import COMPARE
from fndcli.runs import verdicts as stats

COLUMNS = COMPARE.written()  # compare's CSV (fndcli.kinds)


class CompareError(Exception):
    """The two runs cannot be compared (exit 2); `option`: the option to blame, if not the runs."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


def timing_row(key, what, base, new, s, rerun, figures=None, unit="process", tau2=(0.0, 0.0), pairs=False):
    """Per-sample timings NEW against BASE: the ratio of robust means, its 95 % interval, the p of a change
    beyond the threshold, the smallest slowdown it could detect; the verdict is `judge`'s, once every row's p
    is known (Holm's correction).

    base, new: one sample per `unit` (a worker process's mean, a run); pairs: base[i] and new[i] come from
    one process (paired in one run), else two runs whose between-run variances are tau2. With too few samples
    to test, nothing is judged ("insufficient"), and the row shows `figures` (BASE's and NEW's own medians, as
    each run printed them) when given, else the samples' medians.
    """
    base, new = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    row = {
        "key": key,
        "what": what,
        "base": float(np.median(base)),
        "new": float(np.median(new)),
        "change": float(np.median(new) / np.median(base)) - 1,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p": math.nan,
        "n_base": len(base),
        "n_new": len(new),
        "detectable": math.nan,
        "note": "",
    }
    if min(len(base), len(new)) < s.min_samples:
        if figures is not None and all(positive_finite(f) for f in figures):
            row.update(
                base=float(figures[0]), new=float(figures[1]), change=float(figures[1] / figures[0]) - 1
            )
        return {
            **row,
            "verdict": "insufficient",
            "note": f"{len(base)} and {len(new)} samples (one per {unit}); the test needs {s.min_samples} a "
            f"side: {rerun}",
        }
    lb, ln = np.log(base), np.log(new)
    est = stats.paired(lb, ln) if pairs else stats.across_runs(lb, ln, *tau2)
    low, high = (
        stats.paired_bootstrap(lb, ln, 0.95, s.seed, s.resamples) if pairs else stats.interval(est, 0.95)
    )
    return {
        **row,
        "change": math.expm1(est.log_ratio),
        "ci_low": math.expm1(low),
        "ci_high": math.expm1(high),
        "p": stats.p_beyond(est, s.threshold),
        "detectable": stats.detectable(est, s.alpha, s.threshold),
        "verdict": "",
        "_tost": (
            stats.paired_bootstrap(lb, ln, 1 - 2 * s.alpha, s.seed, s.resamples)
            if pairs
            else stats.interval(est, 1 - 2 * s.alpha)
        ),
    }


def judge(records, s):
    """Set the verdict of every tested timing row: its p (of a change beyond the threshold) Holm-adjusted over
    them all (family-wise error <= alpha per comparison), then `verdicts.verdict`."""
    tested = [r for r in records if "_tost" in r]
    for r, p in zip(tested, stats.holm([r["p"] for r in tested])):
        low, high = r.pop("_tost")
        r.update(
            p=float(p),
            verdict=stats.verdict(r["change"], p, low, high, r["ci_low"], r["ci_high"], s.alpha, s.threshold),
        )
    return records


def positive_finite(x):
    """Whether x reads as a finite number above zero (a time a ratio can be taken of)."""
    try:
        return math.isfinite(float(x)) and float(x) > 0
    except (TypeError, ValueError):
        return False


def row(key, what, base, new, verdict, note="", change=math.nan):
    return {
        "key": key,
        "what": what,
        "base": base,
        "new": new,
        "change": change,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p": math.nan,
        "n_base": math.nan,
        "n_new": math.nan,
        "verdict": verdict,
        "note": note,
    }


def pass_fail(before, after, both_failing="failing"):
    """The verdict on a check that passes (True) or fails in BASE and NEW."""
    if before == after:
        return "same" if before else both_failing
    return "improved" if after else "BROKEN"


def is_true(value):
    return str(value) == "True"


def paired(base, new, key_columns):
    """(key, base row or None, new row or None) over the union of keys, BASE's order first."""
    b = {tuple(r[c] for c in key_columns): r for _, r in base.iterrows()}
    n = {tuple(r[c] for c in key_columns): r for _, r in new.iterrows()}
    return [(k, b.get(k), n.get(k)) for k in dict.fromkeys([*b, *n])]


def one_sided(label, what, b, n):
    return row(
        label,
        what,
        "" if b is None else "present",
        "" if n is None else "present",
        "missing" if n is None else "added",
        "in BASE only" if n is None else "in NEW only",
    )
