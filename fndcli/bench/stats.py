"""Figures derived from matmul-bench rows: speedup over a named baseline, % of a stated peak, crossovers.

Pure functions over a DataFrame with the CSV's `COLUMNS`; no torch, no measuring. Each
figure says what it is relative to:

- **speedup** is the baseline's median over the row's median at the same shape. The baseline
  is one series (an implementation on a device) for the whole run, so rows of a sweep
  compare: `--baseline`, else the series timed at the most shapes, ties to the slowest of
  the chapter's rungs written from scratch (its speedups are over the three loops), then to
  the first of the user's kernels, then to fnd's registry order: a run of your kernel beside
  torch reads as "torch is 50,000x your kernel", not "your kernel is 0.00002x torch".
- **pct_peak** is the row's GFLOP/s over a ceiling that is named: `--peak-gflops`, or torch's
  best GFLOP/s at a large shape (every side >= LARGE_SIDE) measured on that device in this
  run. Without either there is no ceiling and no pct_peak: torch at the book's 5x784x10 is
  launch-bound, and 100 % of that would mean nothing.
- **crossovers** come only from a sweep (one dimension varies, so a size names one shape):
  a series overtakes another when it was clearly slower at an earlier size and is clearly
  faster at this one, "clearly" meaning that the two series' ranges of values (min to max)
  do not overlap. Noise alone makes no crossover.
"""
import math

import pandas as pd

from fndcli.names import CHAPTER

SCRATCH = CHAPTER[:-1]  # the chapter's rungs written from scratch, slowest first (not @)

COLUMNS = ["impl", "m", "k", "n", "dtype", "device", "threads", "median_s", "mean_s", "stdev_s",
           "min_s", "max_s", "n_values", "processes", "gflops", "speedup", "baseline", "pct_peak",
           "max_abs_err", "rel_err", "correct", "error", "skipped", "compile_s"]  # matmul-bench's CSV
LARGE_SIDE = 256  # a shape whose sides are all this or more is large enough for torch to approach its peak
CROSSOVER_COLUMNS = ["faster", "slower", "dim", "from_size", "size", "m", "k", "n", "faster_median_s",
                     "slower_median_s"]


def series_labels(frame):
    """Each row's series: the implementation, with '@device' when the run used more than one device."""
    if frame["device"].nunique() > 1:
        return frame["impl"] + "@" + frame["device"]
    return frame["impl"].copy()


def choose_baseline(frame, ladder, requested=None):
    """The series every speedup is relative to (a label as series_labels gives), or None if nothing was timed.

    `requested` (an implementation, or IMPL@DEVICE) wins; it must be a series of the run.
    Otherwise: the series timed at the most shapes; ties go to `_rank`'s order, then to the
    first device. `ladder`: the registry's names, slowest rung first.
    """
    labels = series_labels(frame)
    if requested is not None:
        if requested not in set(labels):
            if "@" not in requested and (frame["impl"] == requested).any():
                return labels[frame["impl"] == requested].iloc[0]
            raise ValueError(f"baseline {requested!r} is not one of the run's implementations: "
                             f"{', '.join(dict.fromkeys(labels))}")
        return requested
    timed = frame.assign(_label=labels)[frame["median_s"].notna()]
    if timed.empty:
        return None
    users = list(dict.fromkeys(i for i in frame["impl"] if i not in ladder))
    devices = {d: i for i, d in enumerate(dict.fromkeys(frame["device"]))}
    coverage = timed.groupby(["_label", "impl", "device"], sort=False).size().reset_index(name="shapes")
    coverage["_order"] = [(-s, _rank(i, ladder, users), devices[d]) for s, i, d in
                          zip(coverage["shapes"], coverage["impl"], coverage["device"])]
    return coverage.sort_values("_order").iloc[0]["_label"]


def _rank(impl, ladder, users):
    """The chapter's from-scratch rungs (slowest first), then the user's kernels (in the run's order), then
    the rest of the registry (its order)."""
    if impl in SCRATCH:
        return (0, SCRATCH.index(impl))
    if impl not in ladder:
        return (1, users.index(impl))
    return (2, ladder.index(impl))


def baseline_reason(frame, baseline, requested, ladder):
    """Why `baseline` is the baseline, in a few words for the caption."""
    if requested:
        return "--baseline"
    impl = baseline.split("@")[0]
    shapes = frame.groupby(series_labels(frame).values)["median_s"].count()
    widest = "" if (shapes == shapes.max()).all() else "timed at the most shapes; "
    if impl in SCRATCH:
        return widest + "the slowest of the chapter's rungs in this run"
    if impl not in ladder:
        return widest + "the first of your kernels (no rung written from scratch ran)"
    return widest + "the first in fnd's registry order in this run"


def add_speedups(frame, baseline):
    """speedup = baseline's median / row's median at the same shape; `baseline` names the series."""
    frame = frame.copy()
    frame["baseline"] = baseline if baseline is not None else ""
    if baseline is None:
        frame["speedup"] = math.nan
        return frame
    labels = series_labels(frame)
    base = frame[labels == baseline].set_index(["m", "k", "n"])["median_s"]
    base_at = pd.Series([base.get(key, math.nan) for key in zip(frame["m"], frame["k"], frame["n"])],
                        index=frame.index, dtype=float)
    frame["speedup"] = base_at / frame["median_s"]
    return frame


def ceilings(frame, peak_gflops=None):
    """{device: (GFLOP/s, where it comes from)}: the figure pct_peak is a fraction of.

    --peak-gflops applies to every device. Otherwise a device's ceiling is torch's best
    GFLOP/s at a large shape in this run; a device with no such row has no ceiling.
    """
    devices = list(dict.fromkeys(frame["device"]))
    if peak_gflops:
        return {d: (float(peak_gflops), "--peak-gflops") for d in devices}
    out = {}
    large = frame[["m", "k", "n"]].min(axis=1) >= LARGE_SIDE
    for device in devices:
        rows = frame[(frame["impl"] == "torch") & (frame["device"] == device) & large & frame["gflops"].notna()]
        if len(rows):
            best = rows.loc[rows["gflops"].idxmax()]
            out[device] = (float(best["gflops"]),
                           f"torch's best at a large shape in this run ({best['m']}x{best['k']}x{best['n']})")
    return out


def add_pct_peak(frame, ceiling):
    """pct_peak = 100 * gflops / the row's device ceiling; NaN where the device has none."""
    frame = frame.copy()
    frame["pct_peak"] = 100 * frame["gflops"] / frame["device"].map({d: c[0] for d, c in ceiling.items()}).astype(float)
    return frame


def crossovers(frame, dim):
    """Where each series overtakes another along a sweep of `dim` (m, k, n, or 'all' for square shapes).

    Returns CROSSOVER_COLUMNS: `faster` was clearly slower than `slower` at `from_size` (the
    last size before where the two were apart) and is clearly faster from `size` on.
    Empty unless `dim` is set: without a sweep, sizes are not ordered along one dimension.
    """
    timed = frame[frame["median_s"].notna()].copy()
    if dim is None or timed.empty:
        return pd.DataFrame(columns=CROSSOVER_COLUMNS)
    timed["series"] = series_labels(timed)
    timed["size"] = timed["m" if dim == "all" else dim]
    by = {s: run.set_index("size").sort_index() for s, run in timed.groupby("series", sort=False)}
    out = []
    for a, ra in by.items():
        for b, rb in by.items():
            if a == b:
                continue
            sizes = ra.index.intersection(rb.index)
            last_apart = None  # (size, a was faster) at the latest size where the two were apart
            for size in sizes:
                x, y = ra.loc[size], rb.loc[size]
                if x["max_s"] < y["min_s"]:
                    if last_apart is not None and not last_apart[1]:
                        out.append({"faster": a, "slower": b, "dim": dim, "from_size": int(last_apart[0]),
                                    "size": int(size), "m": int(x["m"]), "k": int(x["k"]), "n": int(x["n"]),
                                    "faster_median_s": x["median_s"], "slower_median_s": y["median_s"]})
                    last_apart = (size, True)
                elif y["max_s"] < x["min_s"]:
                    last_apart = (size, False)
    return pd.DataFrame.from_records(out, columns=CROSSOVER_COLUMNS)
