"""The core of `fnd compare`: two saved runs of one command (or two implementations of one run), row by row.

Timings (matmul-bench, and train's step times) are compared as samples, not as single
figures. For matmul-bench the sample unit is the worker process: the fastest of each pyperf run's values (its
least disturbed), warmups and calibration excluded, since values inside one process are not independent draws
(pooling them makes identical code "significant" a quarter of the time: ../shared/REFERENCE.md). The statistics are
`fndcli.runs.verdicts`'s: across runs, robust (trimmed) means with a between-run noise term (with an
anchor, of each process's ratio to the anchor); paired in one run (`compare_pair`), the log ratio of B to A
in each process. A verdict per row, first match wins:

    BROKEN        correct (or passing, or stable) in BASE, not in NEW
    insufficient  fewer than `min_samples` samples on either side
    unstable      either run flagged the row's timings as not to be trusted (bench.stats.instability)
    anchor        with --anchor IMPL, that implementation's row: the host's drift, every other row relative to it
    REGRESSION    significantly slower beyond the threshold (one-sided at alpha, Holm-corrected over the rows)
    improved      significantly faster beyond the threshold
    same          equivalent: the 1 - 2 alpha interval lies inside +-threshold (TOST)
    small         the 95 % interval excludes no change, but it is neither beyond nor inside: shown, never gated
    inconclusive  none of those

Rows present on one side only are `missing` (BASE only) or `added` (NEW only).
"""
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fndcli.bench.spec import Shape, benchmark_name
from fndcli.bench.stats import instability
from fndcli.names import FINDINGS, first_column
from fndcli.runs import verdicts as stats
from fndcli.runs.saved import MODEL

COLUMNS = ["key", "what", "base", "new", "change", "ci_low", "ci_high", "p", "n_base", "n_new", "detectable",
           "verdict", "note"]
GATED = ("REGRESSION", "BROKEN")
MACHINE = ("cpu_model", "cpu_count", "gpu")
SOFTWARE = ("fnd_version", "torch_version", "python_version", "pyperf_version")


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    threshold: float = 0.10      # relative change that matters: +-10 % (paired in one run: PAIRED_THRESHOLD)
    min_samples: int = 5         # fewer processes a side: insufficient
    seed: int = 0                # of the paired bootstrap
    resamples: int = 4000
    run_noise: float = 0.02      # floor of a run's between-run sd on the log scale (scripts/gate-calibration)
    anchor: str | None = None    # across runs: each process's samples relative to this implementation's


PAIRED_THRESHOLD = 0.05          # paired in one run the host's minute cancels: 5 % is measurable (README)


@dataclass
class Comparison:
    command: str
    rows: pd.DataFrame                                  # COLUMNS
    machine: list = field(default_factory=list)         # [(key, base, new)] that differ: a different machine
    software: list = field(default_factory=list)        # [(key, base, new)] versions that differ: allowed, listed
    notes: list = field(default_factory=list)           # settings that differ (pyperf preset, sizes, ...)

    def counts(self):
        return self.rows["verdict"].value_counts().to_dict()

    def geomean_ratio(self):
        """Geometric mean of NEW/BASE over the timing rows: of ratios, not of absolute times."""
        timing = (self.rows["what"].str.contains("s/") | self.rows["what"].str.startswith("x ")) & (
            self.rows["verdict"] != "anchor")
        ratios = self.rows.loc[timing, "change"].dropna() + 1
        ratios = ratios[ratios > 0]
        return float(np.exp(np.log(ratios).mean())) if len(ratios) else math.nan


class CompareError(Exception):
    """The two runs cannot be compared (exit 2); `option`: the option to blame, if not the runs."""

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


def timing_row(key, what, base, new, s, rerun, figures=None, unit="process", tau2=(0.0, 0.0), pairs=False):
    """Per-sample timings NEW against BASE: the ratio of robust means, its 95 % interval, the p of a change beyond
    the threshold, the smallest slowdown it could detect; the verdict is `judge`'s, once every row's p is known
    (Holm's correction).

    base, new: one sample per `unit` (a worker process's mean, a run); pairs: base[i] and new[i] come from
    one process (paired in one run), else two runs whose between-run variances are tau2. With too few samples
    to test, nothing is judged ("insufficient"), and the row shows `figures` (BASE's and NEW's own medians, as
    each run printed them) when given, else the samples' medians.
    """
    base, new = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    row = {"key": key, "what": what, "base": float(np.median(base)), "new": float(np.median(new)),
           "change": float(np.median(new) / np.median(base)) - 1, "ci_low": math.nan, "ci_high": math.nan,
           "p": math.nan, "n_base": len(base), "n_new": len(new), "detectable": math.nan, "note": ""}
    if min(len(base), len(new)) < s.min_samples:
        if figures is not None and all(_finite(f) for f in figures):
            row.update(base=float(figures[0]), new=float(figures[1]), change=float(figures[1] / figures[0]) - 1)
        return {**row, "verdict": "insufficient",
                "note": f"{len(base)} and {len(new)} samples (one per {unit}); the test needs {s.min_samples} a "
                        f"side: {rerun}"}
    lb, ln = np.log(base), np.log(new)
    est = stats.paired(lb, ln) if pairs else stats.across_runs(lb, ln, *tau2)
    low, high = (stats.paired_bootstrap(lb, ln, 0.95, s.seed, s.resamples) if pairs else stats.interval(est, 0.95))
    return {**row, "change": math.expm1(est.log_ratio), "ci_low": math.expm1(low), "ci_high": math.expm1(high),
            "p": stats.p_beyond(est, s.threshold), "detectable": stats.detectable(est, s.alpha, s.threshold),
            "verdict": "",
            "_tost": (stats.paired_bootstrap(lb, ln, 1 - 2 * s.alpha, s.seed, s.resamples) if pairs else
                      stats.interval(est, 1 - 2 * s.alpha))}


def judge(records, s):
    """Set the verdict of every tested timing row: its p (of a change beyond the threshold) Holm-adjusted over
    them all (family-wise error <= alpha per comparison), then `verdicts.verdict`."""
    tested = [r for r in records if "_tost" in r]
    for r, p in zip(tested, stats.holm([r["p"] for r in tested])):
        low, high = r.pop("_tost")
        r.update(p=float(p), verdict=stats.verdict(r["change"], p, low, high, r["ci_low"], r["ci_high"], s.alpha,
                                                       s.threshold))
    return records


def _finite(x):
    try:
        return math.isfinite(float(x)) and float(x) > 0
    except (TypeError, ValueError):
        return False


def _row(key, what, base, new, verdict, note="", change=math.nan):
    return {"key": key, "what": what, "base": base, "new": new, "change": change, "ci_low": math.nan,
            "ci_high": math.nan, "p": math.nan, "n_base": math.nan, "n_new": math.nan, "verdict": verdict,
            "note": note}


def _pass_fail(before, after, both_failing="failing"):
    """The verdict on a check that passes (True) or fails in BASE and NEW."""
    if before == after:
        return "same" if before else both_failing
    return "improved" if after else "BROKEN"


def _is_true(value):
    return str(value) == "True"


def _paired(base, new, key_columns):
    """(key, base row or None, new row or None) over the union of keys, BASE's order first."""
    b = {tuple(r[c] for c in key_columns): r for _, r in base.iterrows()}
    n = {tuple(r[c] for c in key_columns): r for _, r in new.iterrows()}
    return [(k, b.get(k), n.get(k)) for k in dict.fromkeys([*b, *n])]


def _one_sided(label, what, b, n):
    return _row(label, what, "" if b is None else "present", "" if n is None else "present",
                "missing" if n is None else "added", "in BASE only" if n is None else "in NEW only")


MATMUL_KEY = ["impl", "m", "k", "n", "dtype", "device", "threads"]


def samples(run, s):
    """{benchmark name: per-process samples} of a run; with an anchor, each divided by the anchor's sample from
    the same process at the same shape, dtype and device (the anchor's own, and those without it, left out)."""
    found = run.process_samples()
    if not s.anchor:
        return found
    out = {}
    for name, x in found.items():
        impl, rest = name.rsplit(" ", 3)[0], name.rsplit(" ", 3)[1:]
        ref = found.get(" ".join([s.anchor, *rest]))
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
    if _is_true(rb["correct"]) and not _is_true(rn["correct"]):
        return _row(label, "correct", "yes", "no", "BROKEN", rn.get("error") or rn.get("skipped") or
                    "wrong result against float64 a @ b")
    if not (b_means.get(name_b) and n_means.get(name_n)):
        why = next((r.get(c) for r in (rn, rb) for c in ("skipped", "error") if r.get(c)), "")
        return _row(label, "median s/call", rb.get("median_s"), rn.get("median_s"), "untimed", why)
    unstable = _unstable(zip(("BASE", "NEW"), (rb, rn)))
    if unstable and min(len(b_means[name_b]), len(n_means[name_n])) >= min_samples:
        return _row(label, "median s/call", rb["median_s"], rn["median_s"], "unstable", unstable + ": re-run on a "
                    "quiet host", change=rn["median_s"] / rb["median_s"] - 1)
    return None


def matmul_rows(base, new, s):
    """Each (impl, shape, dtype, device, threads) of either run; with `s.anchor`, each row relative to the anchor
    in its own processes (the host's speed in each run cancels), the anchor's row the host's drift, not judged."""
    b_means, n_means = samples(base, s), samples(new, s)
    noise = (stats.run_tau2(b_means, s.run_noise), stats.run_tau2(n_means, s.run_noise))
    out = []
    for (impl, m, k, n, dtype, device, threads), rb, rn in _paired(base.rows, new.rows, MATMUL_KEY):
        name = benchmark_name(impl, Shape(m, k, n), dtype, device)
        label = f"{name} {threads}t"
        if rb is None or rn is None:
            out.append(_one_sided(label, "median s/call", rb, rn))
        elif impl == s.anchor:
            out.append(_row(label, "median s/call", rb["median_s"], rn["median_s"], "anchor", "the host's speed, NEW's "
                            "run against BASE's: not judged", rn["median_s"] / rb["median_s"] - 1))
        else:
            if s.anchor:  # the processes' spread cancels in the ratios: theirs decides
                rb, rn = ({**r, "unstable": instability(x.get(name, []), ())} for r, x in ((rb, b_means), (rn, n_means)))
            what = f"x {s.anchor}" if s.anchor else "median s/call"
            out.append(_timed_or_not(label, rb, rn, b_means, n_means, name, name, s.min_samples) or
                       timing_row(label, what, b_means[name], n_means[name], s,
                                  "re-run both with fnd matmul-bench --gate", (rb["median_s"], rn["median_s"]),
                                  tau2=noise))
    if s.anchor:
        _doubt_the_anchor(out, base.rows, new.rows, s.anchor)
    return out


HOST_DRIFT = 0.5  # beyond any whole-run drift measured on these VMs (up to 30 %, README's gate figures)


def _doubt_the_anchor(out, base_rows, new_rows, anchor):
    """An anchor is the host's speed only if it did not change itself: where its medians moved, NEW's against
    BASE's, by over HOST_DRIFT, and by that much more than the other implementations' did (the host moves them
    all alike), its rows say so. The anchored verdicts stand; the note says where to look."""
    both = base_rows.merge(new_rows, on=MATMUL_KEY, suffixes=("_b", "_n"))
    drift, mine = np.log(both["median_s_n"].astype(float) / both["median_s_b"].astype(float)), both["impl"] == anchor
    moved, others = drift[mine].median(), drift[~mine].median()
    if abs(moved) > math.log1p(HOST_DRIFT) and abs(moved - others) > math.log1p(HOST_DRIFT):
        for row in (r for r in out if r["verdict"] == "anchor"):
            row["note"] = (f"{anchor} moved {math.expm1(moved):+.0%} while the others' medians moved "
                           f"{math.expm1(others):+.0%}: if {anchor} itself changed, compare without --anchor")


def pair_rows(run, a, b, s):
    """Implementation b against a in one matmul-bench run, at every (shape, dtype, device, threads) both ran:
    process i's sample of b against process i's of a (neighbours in time). The rows' own flags of process
    spread do not apply (pairing cancels what the processes share): the pairs' ratios are checked instead."""
    if run.command != "matmul-bench":
        raise CompareError(f"--pair compares two implementations of a matmul-bench run; this is a {run.command} run")
    if run.meta.get("order") == "sequential" and run.meta.get("preset") != "gate":
        raise CompareError("--pair needs a run whose worker processes were interleaved (A B A B); this one ran "
                           "--order sequential: re-run with fnd matmul-bench --gate")
    impls = list(dict.fromkeys(run.rows["impl"]))
    for name in (a, b):
        if name not in impls:
            raise CompareError(f"{name!r} is not in run {run.stem}; it ran {', '.join(impls)}")
    rows = {tuple(r[c] for c in MATMUL_KEY): r for _, r in run.rows.iterrows()}
    means, out = run.process_samples(), []
    for (impl, m, k, n, dtype, device, threads), ra in rows.items():
        rb = rows.get((b, m, k, n, dtype, device, threads))
        if impl != a or rb is None:
            continue
        name_a, name_b = (benchmark_name(i, Shape(m, k, n), dtype, device) for i in (a, b))
        label = f"{name_b} vs {a} {threads}t"
        row = _timed_or_not(label, {**ra, "unstable": ""}, {**rb, "unstable": ""}, means, means, name_a, name_b)
        if row is None and len(means[name_a]) != len(means[name_b]):
            row = _row(label, "median s/call", ra["median_s"], rb["median_s"], "insufficient",
                       f"{len(means[name_a])} and {len(means[name_b])} processes: they do not pair")
        elif row is None and instability(np.divide(means[name_b], means[name_a]), ()):
            row = _row(label, "median s/call", ra["median_s"], rb["median_s"], "unstable", "the B/A ratios of the "
                       f"processes: {instability(np.divide(means[name_b], means[name_a]), ())}: re-run on a quiet host")
        out.append(row or timing_row(label, "median s/call", means[name_a], means[name_b], s,
                                     "re-run with fnd matmul-bench --gate", (ra["median_s"], rb["median_s"]),
                                     unit="process pair", pairs=True))
    if not out:
        raise CompareError(f"{a} and {b} share no shape in run {run.stem}: nothing to pair")
    return out


def gradcheck_rows(base, new, s):
    out = []
    for (check, tensor), rb, rn in _paired(base.rows, new.rows, ["check", "tensor"]):
        label = f"{check}: {tensor}"
        if rb is None or rn is None:
            out.append(_one_sided(label, "passed", rb, rn))
            continue
        before, after = _is_true(rb["passed"]), _is_true(rn["passed"])
        verdict = _pass_fail(before, after)
        out.append(_row(label, "rel_err", rb["rel_err"], rn["rel_err"], verdict,
                        "" if before == after else f"passed {before} -> {after}"))
    return out


def model_rows(base, new, s):
    """init-sweep --model: the verdict, and where each finding starts; a finding that appears is BROKEN."""
    rb, rn = base.rows.iloc[0], new.rows.iloc[0]
    label = rn["model"] if rb["model"] == rn["model"] else f"{rb['model']} -> {rn['model']}"
    before, after = rb["verdict"], rn["verdict"]
    verdict = "same" if before == after else ("BROKEN" if before == "stable" else "changed")
    out = [_row(label, "verdict", before, after, verdict, "" if verdict == "same" else "decades " + " -> ".join(
        f"{d:+.2f}" if math.isfinite(d) else "(no trend)" for d in (rb["decades"], rn["decades"])))]
    for finding in FINDINGS:
        b, n = rb[first_column(finding)], rn[first_column(finding)]
        if b or n:
            verdict = "same" if b == n else "BROKEN" if not b else "improved" if not n else "changed"
            note = {"BROKEN": f"{finding} appears", "improved": f"{finding} is gone"}.get(verdict, "")
            out.append(_row(label, f"{finding} from", b or "-", n or "-", verdict, note))
    return out


def sweep_rows(base, new, s):
    if base.kind == MODEL or new.kind == MODEL:
        if base.kind != new.kind:
            raise CompareError("one run is of fnd's stacks and the other of a --model: compare runs of one kind")
        return model_rows(base, new, s)
    out = []
    for (scheme, act), rb, rn in _paired(base.rows, new.rows, ["scheme", "act"]):
        label = f"{scheme} / {act}"
        if rb is None or rn is None:
            out.append(_one_sided(label, "verdict", rb, rn))
            continue
        before, after = rb["verdict"], rn["verdict"]
        verdict = "same" if before == after else ("BROKEN" if before == "stable" else "changed")
        note = f"log10 m2 last {rb['log10_m2_last']:+.2f} -> {rn['log10_m2_last']:+.2f}"
        out.append(_row(label, "verdict", before, after, verdict, "" if verdict == "same" else note))
    return out


def _twin_mismatch(meta):
    """True if the run's hand-written model left its twin beyond its tolerance; None if it had no twin."""
    diffs = [meta.get("max_rel_loss_diff"), meta.get("max_rel_param_diff")]
    if all(d is None for d in diffs):
        return None
    rtol = meta.get("config", {}).get("rtol")
    return any(d is not None and not d <= rtol for d in diffs)


def _relative(before, after, higher_is_better, s):
    change = (after - before) / abs(before) if before else (math.inf if after != before else 0.0)
    worse = -change if higher_is_better else change
    verdict = "REGRESSION" if worse > s.threshold else "improved" if worse < -s.threshold else "same"
    return change, verdict


def train_rows(base, new, s):
    out, bm, nm = [], base.meta, new.meta
    b_div, n_div = bm.get("diverged_epoch"), nm.get("diverged_epoch")
    out.append(_row("training", "diverged epoch", b_div or "", n_div or "",
                    _pass_fail(not b_div, not n_div, both_failing="same")))
    b_twin, n_twin = _twin_mismatch(bm), _twin_mismatch(nm)
    if b_twin is not None and n_twin is not None:
        out.append(_row("autograd twin", "agrees", str(not b_twin), str(not n_twin),
                        _pass_fail(not b_twin, not n_twin, both_failing="same")))
    b_last, n_last = base.rows.iloc[-1], new.rows.iloc[-1]
    for column, what, higher in (("valid_loss", "final valid loss", False), ("valid_metric", "final valid metric", True)):
        change, verdict = _relative(float(b_last[column]), float(n_last[column]), higher, s)
        out.append(_row("training", what, float(b_last[column]), float(n_last[column]), verdict, change=change))
    for column, what in (("step_s", "hand-written step s/step"), ("ref_step_s", "twin step s/step")):
        b_steps = base.rows[column].dropna() if column in base.rows else []
        n_steps = new.rows[column].dropna() if column in new.rows else []
        if len(b_steps) and len(n_steps):  # one run is one sample: its epochs share one process
            out.append(timing_row("training", what, [b_steps.median()], [n_steps.median()], s,
                                  "one train run is one sample (its epochs share one process, so they are not "
                                  "independent); time kernels with fnd matmul-bench --gate", unit="run"))
    return out


ROWS = {"matmul-bench": matmul_rows, "gradcheck": gradcheck_rows, "init-sweep": sweep_rows, "train": train_rows}


def differences(base_meta, new_meta, keys):
    return [(k, base_meta.get(k), new_meta.get(k)) for k in keys if base_meta.get(k) != new_meta.get(k)]


def settings_notes(base, new):
    """Settings that differ between the runs, worth knowing before reading the figures."""
    notes = []
    if base.meta.get("preset") != new.meta.get("preset"):
        notes.append(f"pyperf preset {base.meta.get('preset')} -> {new.meta.get('preset')}")
    elif base.meta.get("pyperf_args") != new.meta.get("pyperf_args"):
        notes.append("pyperf arguments differ")
    skip = {"out", "config", "preset", "quick", "fast", "rigorous", "gate"}
    bc, nc = base.meta.get("config", {}), new.meta.get("config", {})
    for key in dict.fromkeys([*bc, *nc]):
        if key not in skip and bc.get(key) != nc.get(key):
            notes.append(f"--{key} {bc.get(key)} -> {nc.get(key)}")
    return notes


def compare(base, new, settings=Settings()):
    """Compare two SavedRuns of one command; CompareError if they cannot be."""
    if base.command != new.command:
        raise CompareError(f"BASE is a {base.command} run and NEW a {new.command} run; compare runs of one command")
    if base.command not in ROWS:
        raise CompareError(f"fnd compare takes runs of {', '.join(ROWS)}, not {base.command}: "
                           + ("read its report, or fnd show it" if base.command == "reproduce" else "fnd show it"))
    if settings.anchor and not (base.command == "matmul-bench" and {settings.anchor} <= set(base.rows["impl"]) &
                                set(new.rows["impl"])):
        raise CompareError(f"--anchor {settings.anchor} must be an implementation both matmul-bench runs timed",
                           "--anchor")
    rows = pd.DataFrame.from_records(judge(ROWS[base.command](base, new, settings), settings), columns=COLUMNS)
    if not (~rows["verdict"].isin(["missing", "added"])).any():
        why = "; ".join(settings_notes(base, new))
        raise CompareError(f"the two runs share no row: they measured different things{f' ({why})' if why else ''}")
    return Comparison(base.command, rows, differences(base.meta, new.meta, MACHINE),
                      differences(base.meta, new.meta, SOFTWARE), settings_notes(base, new))


def compare_pair(run, a, b, settings):
    """Implementation b against a inside one matmul-bench run (`pair_rows`); CompareError if they cannot be."""
    rows = pd.DataFrame.from_records(judge(pair_rows(run, a, b, settings), settings), columns=COLUMNS)
    return Comparison(run.command, rows)


def gated(comparison, fail_on_improvement=False, strict=False):
    """The verdicts that fail the gate (exit 1) under these options."""
    verdicts = set(GATED) | ({"improved"} if fail_on_improvement else set())
    verdicts |= {"insufficient", "inconclusive", "unstable"} if strict else set()
    return comparison.rows[comparison.rows["verdict"].isin(verdicts)]
