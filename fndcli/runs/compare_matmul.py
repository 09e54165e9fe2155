"""`fnd compare`'s rules for matmul-bench runs: rows per implementation and shape, judged on the worker
processes' samples; `--anchor` (each process relative to one implementation) and `--pair` (two
implementations of one run, process by process).

The sample unit is the worker process: the fastest of each pyperf run's values (its least
disturbed), warmups and calibration excluded, since values inside one process are not independent
draws (pooling them makes identical code "significant" about a quarter of the time, measured on
identical code: docs/compare.md).
"""

import math

import numpy as np

from fndcli.bench.spec import Shape, benchmark_name, split_name
from fndcli.bench.stats import instability
from fndcli.runs import verdicts as stats
from fndcli.runs.judging import CompareError, is_true, one_sided, paired, row, timing_row

MATMUL_KEY = ["impl", "m", "k", "n", "dtype", "device", "threads"]


def samples(run, s):
    """{benchmark name: per-process samples} of a run; with an anchor, each divided by the anchor's sample
    from the same process at the same shape, dtype and device (the anchor's own, and those without it, left
    out)."""
    found = run.process_samples()
    if not s.anchor:
        return found
    out = {}
    for name, x in found.items():
        impl, rest = split_name(name)
        ref = found.get(f"{s.anchor} {rest}")
        if impl != s.anchor and ref is not None and len(ref) == len(x):
            out[name] = list(np.divide(x, ref))
    return out


def _unstable(rows):
    """Why the timings of a row are not to be trusted in either run ('' if they are): the row's own flag
    (bench.stats.instability; a busy host is a warning in the header, not a row's verdict)."""
    return "; ".join(f"{side}: {row.get('unstable')}" for side, row in rows if row.get("unstable"))


def _timed_or_not(label, rb, rn, b_means, n_means, name_b, name_n, min_samples=0):
    """The row when the two sides cannot be timed against each other (None when they can): BROKEN, untimed,
    unstable. Too few processes (under min_samples) is insufficient whatever their spread: timing_row says so,
    and re-running with --gate is the remedy either way."""
    if is_true(rb["correct"]) and not is_true(rn["correct"]):
        return row(
            label,
            "correct",
            "yes",
            "no",
            "BROKEN",
            rn.get("error") or rn.get("skipped") or "wrong result against float64 a @ b",
        )
    if not (b_means.get(name_b) and n_means.get(name_n)):
        why = next((r.get(c) for r in (rn, rb) for c in ("skipped", "error") if r.get(c)), "")
        return row(label, "median s/call", rb.get("median_s"), rn.get("median_s"), "untimed", why)
    unstable = _unstable(zip(("BASE", "NEW"), (rb, rn)))
    if unstable and min(len(b_means[name_b]), len(n_means[name_n])) >= min_samples:
        return row(
            label,
            "median s/call",
            rb["median_s"],
            rn["median_s"],
            "unstable",
            unstable + ": re-run on a quiet host",
            change=rn["median_s"] / rb["median_s"] - 1,
        )
    return None


def matmul_rows(base, new, s):
    """Each (impl, shape, dtype, device, threads) of either run; with `s.anchor`, each row relative to the
    anchor in its own processes (the host's speed in each run cancels), the anchor's row the host's drift, not
    judged."""
    b_means, n_means = samples(base, s), samples(new, s)
    noise = (stats.run_tau2(b_means, s.run_noise), stats.run_tau2(n_means, s.run_noise))
    out = []
    for (impl, m, k, n, dtype, device, threads), rb, rn in paired(base.rows, new.rows, MATMUL_KEY):
        name = benchmark_name(impl, Shape(m, k, n), dtype, device)
        label = f"{name} {threads}t"
        if rb is None or rn is None:
            out.append(one_sided(label, "median s/call", rb, rn))
        elif impl == s.anchor:
            out.append(
                row(
                    label,
                    "median s/call",
                    rb["median_s"],
                    rn["median_s"],
                    "anchor",
                    "the host's speed, NEW's run against BASE's: not judged",
                    rn["median_s"] / rb["median_s"] - 1,
                )
            )
        else:
            if s.anchor:  # the processes' spread cancels in the ratios: theirs decides
                rb, rn = (
                    {**r, "unstable": instability(x.get(name, []), ())}
                    for r, x in ((rb, b_means), (rn, n_means))
                )
            what = f"x {s.anchor}" if s.anchor else "median s/call"
            out.append(
                _timed_or_not(label, rb, rn, b_means, n_means, name, name, s.min_samples)
                or timing_row(
                    label,
                    what,
                    b_means[name],
                    n_means[name],
                    s,
                    "re-run both with fnd matmul-bench --gate",
                    None if s.anchor else (rb["median_s"], rn["median_s"]),  # anchored: the ratios' medians
                    tau2=noise,
                )
            )
    if s.anchor:
        _doubt_the_anchor(out, base.rows, new.rows, s.anchor)
    return out


HOST_DRIFT = 0.5  # beyond any whole-run drift measured on these VMs (up to 30 %: docs/measured.md, the gate)


def _doubt_the_anchor(out, base_rows, new_rows, anchor):
    """An anchor is the host's speed only if it did not change itself: where its medians moved, NEW's against
    BASE's, by over HOST_DRIFT, and by that much more than the other implementations' did (the host moves them
    all alike), its rows say so. The anchored verdicts stand; the note says where to look."""
    both = base_rows.merge(new_rows, on=MATMUL_KEY, suffixes=("_b", "_n"))
    drift, mine = (
        np.log(both["median_s_n"].astype(float) / both["median_s_b"].astype(float)),
        both["impl"] == anchor,
    )
    moved, others = drift[mine].median(), drift[~mine].median()
    if abs(moved) > math.log1p(HOST_DRIFT) and abs(moved - others) > math.log1p(HOST_DRIFT):
        for row in (r for r in out if r["verdict"] == "anchor"):
            row["note"] = (
                f"{anchor} moved {math.expm1(moved):+.0%} while the others' medians moved "
                f"{math.expm1(others):+.0%}: if {anchor} itself changed, compare without --anchor"
            )


def pair_rows(run, a, b, s):
    """Implementation b against a in one matmul-bench run, at every (shape, dtype, device, threads) both ran:
    process i's sample of b against process i's of a (neighbours in time). The rows' own flags of process
    spread do not apply (pairing cancels what the processes share): the pairs' ratios are checked instead.
    Two regimes inside the processes do apply (a value under MIN_FALL x the median: a neighbour held the core
    part of the time): each process's fastest value is then the one that missed the neighbour, a lottery
    rather than a sample (on a 4x overloaded host a 1.3x slower b read "improved", p 2e-7)."""
    if run.command != "matmul-bench":
        raise CompareError(
            f"--pair compares two implementations of a matmul-bench run; this is a {run.command} run"
        )
    if run.meta.get("order") == "sequential" and run.meta.get("preset") != "gate":
        raise CompareError(
            "--pair needs a run whose worker processes were interleaved (A B A B); this one ran "
            "--order sequential: re-run with fnd matmul-bench --gate"
        )
    impls = list(dict.fromkeys(run.rows["impl"]))
    for name in (a, b):
        if name not in impls:
            raise CompareError(f"{name!r} is not in run {run.stem}; it ran {', '.join(impls)}")
    rows = {tuple(r[c] for c in MATMUL_KEY): r for _, r in run.rows.iterrows()}
    values = run.process_values()
    means, out = {name: [min(v) for v in runs] for name, runs in values.items()}, []
    for (impl, m, k, n, dtype, device, threads), ra in rows.items():
        rb = rows.get((b, m, k, n, dtype, device, threads))
        if impl != a or rb is None:
            continue
        name_a, name_b = (benchmark_name(i, Shape(m, k, n), dtype, device) for i in (a, b))
        label = f"{name_b} vs {a} {threads}t"
        judged = _timed_or_not(
            label, {**ra, "unstable": ""}, {**rb, "unstable": ""}, means, means, name_a, name_b
        )
        why = None if judged else _not_pairable(values, means, name_a, name_b, s.min_samples)
        if why:
            judged = row(label, "median s/call", ra["median_s"], rb["median_s"], *why)
        out.append(
            judged
            or timing_row(
                label,
                "median s/call",
                means[name_a],
                means[name_b],
                s,
                "re-run with fnd matmul-bench --gate",
                (ra["median_s"], rb["median_s"]),
                unit="process pair",
                pairs=True,
            )
        )
    if not out:
        raise CompareError(f"{a} and {b} share no shape in run {run.stem}: nothing to pair")
    return out


def _not_pairable(values, means, name_a, name_b, min_samples):
    """(verdict, note) when the processes' pairs cannot be tested, first match wins: counts that do not pair
    (insufficient), two regimes inside the processes, B/A ratios that spread (unstable); None if they can."""
    count_a, count_b = len(means[name_a]), len(means[name_b])
    if count_a != count_b:
        return "insufficient", f"{count_a} and {count_b} processes: they do not pair"
    regimes = _regimes(values, name_a, name_b) if count_a >= min_samples else ""
    if regimes:
        return "unstable", f"{regimes}: two regimes in the processes: re-run on a quiet host"
    spread = instability(np.divide(means[name_b], means[name_a]), ())
    if spread:
        return "unstable", f"the B/A ratios of the processes: {spread}: re-run on a quiet host"
    return None


def _regimes(values, name_a, name_b):
    """'A: min 0.31x the median; B: ...' for the sides whose values fall in two regimes ('' if neither)."""
    return "; ".join(
        f"{side}: {why}"
        for side, name in (("A", name_a), ("B", name_b))
        if (why := instability((), [v for runs in values[name] for v in runs]))
    )
