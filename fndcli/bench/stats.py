"""Figures derived from matmul-bench rows: speedup over a named baseline, % of a stated peak, crossovers.

Pure functions over a DataFrame with the CSV's `COLUMNS`; no torch, no measuring. Each
figure says what it is relative to:

- **speedup** is the baseline's median over the row's median at the same shape. The baseline
  is one series (an implementation on a device) for the whole run, so rows of a sweep
  compare: `--baseline`, else the series timed at the most shapes, ties to the slowest of
  the chapter's rungs written from scratch (its speedups are over the three loops), then to
  the first of the user's kernels, then to fnd's registry order: a run of your kernel beside
  torch reads as "torch is 50,000x your kernel", not "your kernel is 0.00002x torch".
- **pct_peak** is the row's GFLOP/s over the machine's own FMA ceiling for the row's device,
  dtype and threads (`fnd peak`, measured or cached: `fndcli.bench.peak`), or `--peak-gflops`.
  Not torch's best: a library is not the hardware's limit, and a ratio to it flips from one
  machine to the next. A row above its ceiling gets none: the ceiling is what is wrong.
- A row whose timings are not to be trusted (`unstable`: `instability`) gets neither figure, and a baseline
  row that is not gives no speedup at its shape: a ratio of a stalled median reads as a result.
- **the roofline** (Williams, Waterman, Patterson 2009): each row's arithmetic intensity, what
  the roofline allows there, and whether memory or the FMA units bound it.
- **crossovers** come only from a sweep (one dimension varies, so a size names one shape):
  a series overtakes another when it was clearly slower at an earlier size and is clearly
  faster at this one, "clearly" meaning that the two series' ranges of values (min to max)
  do not overlap. Noise alone makes no crossover.
"""

import math

import pandas as pd

from fndcli.kinds import MATMUL_BENCH
from fndcli.names import CHAPTER, ITEMSIZE

SCRATCH = CHAPTER[:-1]  # the chapter's rungs written from scratch, slowest first (not @)

COLUMNS = MATMUL_BENCH.written()  # matmul-bench's CSV (fndcli.kinds)
CROSSOVER_COLUMNS = [
    "faster",
    "slower",
    "dim",
    "from_size",
    "size",
    "m",
    "k",
    "n",
    "faster_median_s",
    "slower_median_s",
]


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
            if (frame["impl"] == requested).any():  # IMPL, in a run of several devices: its first
                return labels[frame["impl"] == requested].iloc[0]
            raise ValueError(
                f"baseline {requested!r} is not one of the run's implementations: "
                f"{', '.join(dict.fromkeys(labels))}"
            )
        return requested
    timed = frame.assign(_label=labels)[frame["median_s"].notna()]
    if timed.empty:
        return None
    users = list(dict.fromkeys(i for i in frame["impl"] if i not in ladder))
    devices = {d: i for i, d in enumerate(dict.fromkeys(frame["device"]))}
    coverage = timed.groupby(["_label", "impl", "device"], sort=False).size().reset_index(name="shapes")
    coverage["_order"] = [
        (-s, _rank(i, ladder, users), devices[d])
        for s, i, d in zip(coverage["shapes"], coverage["impl"], coverage["device"])
    ]
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
    shapes = shapes[shapes > 0]  # a series never timed (wrong, skipped) is not one timed at fewer shapes
    widest = "" if (shapes == shapes.max()).all() else "timed at the most shapes; "
    if impl in SCRATCH:
        return widest + "the slowest of the chapter's rungs in this run"
    if impl not in ladder:
        return widest + "the first of your kernels (no rung written from scratch ran)"
    return widest + "the first in fnd's registry order in this run"


def flagged(frame):
    """True for each row whose timings `instability` flagged (none when the frame has no such column)."""
    why = frame.get("unstable", pd.Series("", index=frame.index))
    return why.notna() & (why.astype(str) != "")


def add_speedups(frame, baseline):
    """speedup = baseline's median / row's median at the same shape; `baseline` names the series. None from
    or against a flagged row."""
    frame = frame.copy()
    frame["baseline"] = baseline if baseline is not None else ""
    if baseline is None:
        frame["speedup"] = math.nan
        return frame
    labels = series_labels(frame)
    base = frame[(labels == baseline) & ~flagged(frame)].set_index(["m", "k", "n"])["median_s"]
    base_at = pd.Series(
        [base.get(key, math.nan) for key in zip(frame["m"], frame["k"], frame["n"])],
        index=frame.index,
        dtype=float,
    )
    frame["speedup"] = (base_at / frame["median_s"]).where(~flagged(frame))
    return frame


def ceiling_keys(frame):
    """The (device, dtype, threads) of every timed row: the ceilings its % peak needs."""
    timed = frame[frame["gflops"].notna()]
    return sorted(set(zip(timed["device"], timed["dtype"], timed["threads"].astype(int))))


def given_ceilings(frame, peak_gflops, bandwidth=lambda device, threads: None):
    """--peak-gflops as the FMA ceiling of every row's (device, dtype, threads); the roofline's bandwidth what
    `bandwidth(device, threads)` says (fnd peak's cache; nothing is measured), or None."""
    return [
        {
            "device": d,
            "dtype": t,
            "threads": n,
            "gflops": float(peak_gflops),
            "gb_s": bandwidth(d, n),
            "source": f"{peak_gflops:.4g} GFLOP/s, --peak-gflops",
            "given": True,
        }
        for d, t, n in ceiling_keys(frame)
    ]


def add_pct_peak(frame, ceilings):
    """pct_peak = 100 * gflops / the FMA ceiling of the row's (device, dtype, threads); the roofline's
    columns:

    - intensity: 2mkn FLOPs over the bytes a @ b must move at least, (mk + kn + mn) x the element size;
    - roof_gflops: what the roofline allows at that intensity, min(FMA ceiling, bandwidth x intensity);
    - bound: 'memory' where bandwidth x intensity is below the FMA ceiling, else 'compute'.

    `ceilings`: dicts with device, dtype, threads, gflops, gb_s (None: no bandwidth). A row above its ceiling
    gets no pct_peak (the ceiling, not the kernel, is wrong); `above_ceiling` lists them. A flagged row gets
    none either.
    """
    frame = frame.copy()
    by_key = {(c["device"], c["dtype"], int(c["threads"])): c for c in ceilings}
    found = [
        by_key.get((d, t, int(n)) if n == n else None)
        for d, t, n in zip(frame["device"], frame["dtype"], frame["threads"])
    ]
    peak = pd.Series([c["gflops"] if c else math.nan for c in found], index=frame.index, dtype=float)
    bandwidth = pd.Series(
        [c["gb_s"] if c and c["gb_s"] else math.nan for c in found], index=frame.index, dtype=float
    )
    itemsize = frame["dtype"].map(ITEMSIZE).astype(float)
    m, k, n = (frame[c].astype(float) for c in ("m", "k", "n"))
    frame["intensity"] = 2 * m * k * n / ((m * k + k * n + m * n) * itemsize)
    frame["roof_gflops"] = pd.concat([peak, bandwidth * frame["intensity"]], axis=1).min(axis=1, skipna=False)
    frame["bound"] = (bandwidth * frame["intensity"] < peak).map({True: "memory", False: "compute"})
    frame.loc[bandwidth.isna() | peak.isna(), "bound"] = ""
    pct = 100 * frame["gflops"] / peak
    frame["pct_peak"] = pct.where(~(pct > 100) & ~flagged(frame))
    return frame


def above_ceiling(frame, ceilings):
    """'IMPL at MxKxN: G GFLOP/s' for each timed row faster than its ceiling (add_pct_peak left its pct_peak
    out)."""
    by_key = {(c["device"], c["dtype"], int(c["threads"])): c["gflops"] for c in ceilings}
    rows = frame[frame["gflops"].notna() & frame["pct_peak"].isna()]  # flagged too: slowed, still above
    return [
        f"{r.impl} at {r.m}x{r.k}x{r.n}: {r.gflops:.4g} GFLOP/s"
        for r in rows.itertuples()
        if (r.device, r.dtype, int(r.threads)) in by_key
        and r.gflops > by_key[(r.device, r.dtype, int(r.threads))]
    ]


SPREAD = 0.25  # process means whose IQR exceeds 25 % of their median (torch.utils.benchmark's "(! 25 %)")
MIN_FALL = 0.5  # a value under half the median: a different regime (threads stalled, a core taken away)


def instability(process_means, values):
    """Why a benchmark's timings are not to be trusted, '' if they are (pyperf's `check` asks the same):
    its worker processes' means spread beyond SPREAD (interquartile range over median, from 4 processes on),
    or its fastest value below MIN_FALL x the median value: two regimes, no one figure."""
    import numpy as np

    why = []
    if len(process_means) >= 4:
        q1, median, q3 = np.percentile(process_means, [25, 50, 75])
        if (q3 - q1) / median > SPREAD:
            why.append(f"process means spread {100 * (q3 - q1) / median:.0f} % of their median (IQR)")
    if len(values):
        median = float(np.median(values))
        if min(values) < MIN_FALL * median:
            why.append(f"min {min(values) / median:.2g}x the median")
    return "; ".join(why)


def busy_host(load, cores):
    """A warning when the host's 1-minute load average at the start exceeded its cores ('' if not)."""
    if load is None or load <= cores:
        return ""
    return f"load average {load:.2f} at the start on {cores} cores: other work competed for the cores"


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
                        out.append(
                            {
                                "faster": a,
                                "slower": b,
                                "dim": dim,
                                "from_size": int(last_apart[0]),
                                "size": int(size),
                                "m": int(x["m"]),
                                "k": int(x["k"]),
                                "n": int(x["n"]),
                                "faster_median_s": x["median_s"],
                                "slower_median_s": y["median_s"],
                            }
                        )
                    last_apart = (size, True)
                elif y["max_s"] < x["min_s"]:
                    last_apart = (size, False)
    return pd.DataFrame.from_records(out, columns=CROSSOVER_COLUMNS)
