"""The core of `fnd compare`: two saved runs of one command (or two implementations of one run), row by row.

matmul-bench's timings are compared as samples, not as single figures: the sample unit is the worker
process, the fastest of each pyperf run's values (its least disturbed), warmups and calibration excluded,
since values inside one process are not independent draws (pooling them makes identical code "significant"
a quarter of the time: docs/compare.md). The statistics are `fndcli.runs.verdicts`'s: across runs, robust
(trimmed) means with a between-run noise term (with an anchor, of each process's ratio to the anchor);
paired in one run (`compare_pair`), the log ratio of B to A
in each process. A verdict per row, first match wins:

    BROKEN        correct (or passing, or stable) in BASE, not in NEW
    insufficient  fewer than `min_samples` samples on either side
    unstable      either run flagged the row's timings as not to be trusted (bench.stats.instability)
    anchor        with --anchor IMPL, that implementation's row: the host's drift, every other row relative
                  to it
    REGRESSION    significantly slower beyond the threshold (one-sided at alpha, Holm-corrected over the rows)
    improved      significantly faster beyond the threshold
    same          equivalent: the 1 - 2 alpha interval lies inside +-threshold (TOST)
    small         the 95 % interval excludes no change, but it is neither beyond nor inside: shown, never
                  gated
    inconclusive  none of those

Rows present on one side only are `missing` (BASE only) or `added` (NEW only). train's step times are
`info`: one run is one sample, so they are shown and never judged. An insufficient, unstable or
inconclusive row was not judged (`NOT_JUDGED`): `fnd compare` exits 3 when nothing failed but such a row
remains, so CI can tell "not judged" from "passed".
"""

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fndcli.kinds import (
    GRADCHECK,
    INIT_SWEEP,
    INIT_SWEEP_MODEL,
    MATMUL_BENCH,
    TRAIN,
    TRAIN_LR_FIND,
    TRAIN_WIDTHS,
)
from fndcli.names import FINDINGS, first_column
from fndcli.runs.compare_matmul import matmul_rows, pair_rows
from fndcli.runs.judging import (
    COLUMNS,
    CompareError,
    is_true,
    judge,
    one_sided,
    paired,
    pass_fail,
    row,
)

GATED = ("REGRESSION", "BROKEN")
NOT_JUDGED = ("insufficient", "unstable", "inconclusive")
MACHINE = ("cpu_model", "cpu_count", "gpu")
SOFTWARE = ("fnd_version", "torch_version", "python_version", "pyperf_version")


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05
    threshold: float = 0.10  # relative change that matters: +-10 % (paired in one run: PAIRED_THRESHOLD)
    min_samples: int = 5  # fewer processes a side: insufficient
    seed: int = 0  # of the paired bootstrap
    resamples: int = 4000
    run_noise: float = 0.02  # floor of a run's between-run sd on the log scale (scripts/gate-calibration)
    anchor: str | None = None  # across runs: each process's samples relative to this implementation's


PAIRED_THRESHOLD = 0.05  # paired in one run the host's minute cancels: 5 % is measurable (docs/measured.md)


@dataclass
class Comparison:
    command: str
    rows: pd.DataFrame  # COLUMNS
    machine: list = field(default_factory=list)  # [(key, base, new)] that differ: a different machine
    software: list = field(default_factory=list)  # [(key, base, new)] versions that differ: allowed, listed
    notes: list = field(default_factory=list)  # settings that differ (pyperf preset, sizes, ...)

    def counts(self):
        return self.rows["verdict"].value_counts().to_dict()

    def judged_timings(self):
        """The timing rows that were judged: not an anchor, not shown only (`info`), not NOT_JUDGED."""
        rows = self.rows
        timing = rows["what"].str.contains("s/") | rows["what"].str.startswith("x ")
        return rows[timing & ~rows["verdict"].isin(["anchor", "info", *NOT_JUDGED])]

    def geomean_ratio(self):
        """Geometric mean of NEW/BASE over the judged timing rows: of ratios, not of absolute times. NaN when
        no timing was judged: a mean of figures no test stood behind would read as a result."""
        ratios = self.judged_timings()["change"].dropna() + 1
        ratios = ratios[ratios > 0]
        return float(np.exp(np.log(ratios).mean())) if len(ratios) else math.nan


def gradcheck_rows(base, new, s):
    out = []
    for (check, tensor), rb, rn in paired(base.rows, new.rows, ["check", "tensor"]):
        label = f"{check}: {tensor}"
        if rb is None or rn is None:
            out.append(one_sided(label, "passed", rb, rn))
            continue
        before, after = is_true(rb["passed"]), is_true(rn["passed"])
        verdict = pass_fail(before, after)
        out.append(
            row(
                label,
                "rel_err",
                rb["rel_err"],
                rn["rel_err"],
                verdict,
                "" if before == after else f"passed {before} -> {after}",
            )
        )
    return out


def model_rows(base, new, s):
    """init-sweep --model: the verdict, and where each finding starts; a finding that appears is BROKEN."""
    rb, rn = base.rows.iloc[0], new.rows.iloc[0]
    label = rn["model"] if rb["model"] == rn["model"] else f"{rb['model']} -> {rn['model']}"
    before, after = rb["verdict"], rn["verdict"]
    verdict = "same" if before == after else ("BROKEN" if before == "stable" else "changed")
    out = [
        row(
            label,
            "verdict",
            before,
            after,
            verdict,
            ""
            if verdict == "same"
            else "decades "
            + " -> ".join(
                f"{d:+.2f}" if math.isfinite(d) else "(no trend)" for d in (rb["decades"], rn["decades"])
            ),
        )
    ]
    for finding in FINDINGS:
        b, n = rb.get(first_column(finding), ""), rn.get(first_column(finding), "")  # an older run: no jump
        if b or n:
            verdict = "same" if b == n else "BROKEN" if not b else "improved" if not n else "changed"
            note = {"BROKEN": f"{finding} appears", "improved": f"{finding} is gone"}.get(verdict, "")
            out.append(row(label, f"{finding} from", b or "-", n or "-", verdict, note))
    return out


def sweep_rows(base, new, s):
    out = []
    for (scheme, act), rb, rn in paired(base.rows, new.rows, ["scheme", "act"]):
        label = f"{scheme} / {act}"
        if rb is None or rn is None:
            out.append(one_sided(label, "verdict", rb, rn))
            continue
        before, after = rb["verdict"], rn["verdict"]
        verdict = "same" if before == after else ("BROKEN" if before == "stable" else "changed")
        note = f"log10 m2 last {rb['log10_m2_last']:+.2f} -> {rn['log10_m2_last']:+.2f}"
        out.append(row(label, "verdict", before, after, verdict, "" if verdict == "same" else note))
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
    out.append(
        row(
            "training",
            "diverged epoch",
            b_div or "",
            n_div or "",
            pass_fail(not b_div, not n_div, both_failing="same"),
        )
    )
    b_twin, n_twin = _twin_mismatch(bm), _twin_mismatch(nm)
    if b_twin is not None and n_twin is not None:
        out.append(
            row(
                "autograd twin",
                "agrees",
                str(not b_twin),
                str(not n_twin),
                pass_fail(not b_twin, not n_twin, both_failing="same"),
            )
        )
    b_last, n_last = base.rows.iloc[-1], new.rows.iloc[-1]
    for column, what, higher in (
        ("valid_loss", "final valid loss", False),
        ("valid_metric", "final valid metric", True),
    ):
        change, verdict = _relative(float(b_last[column]), float(n_last[column]), higher, s)
        out.append(
            row("training", what, float(b_last[column]), float(n_last[column]), verdict, change=change)
        )
    out += _finding_rows(base.extras.get("-findings.csv"), new.extras.get("-findings.csv"))
    for column, what in (("step_s", "hand-written step s/step"), ("ref_step_s", "twin step s/step")):
        b_steps = base.rows[column].dropna() if column in base.rows else []
        n_steps = new.rows[column].dropna() if column in new.rows else []
        if len(b_steps) and len(n_steps):  # one run is one sample: its epochs share one process
            b, n = float(b_steps.median()), float(n_steps.median())
            out.append(
                row(
                    "training",
                    what,
                    b,
                    n,
                    "info",
                    "shown, never judged: one train run is one sample (its epochs share one process); "
                    "time kernels with fnd matmul-bench --gate",
                    change=n / b - 1 if b > 0 else math.nan,
                )
            )
    return out


def _finding_rows(base, new):
    """train --stats' findings on both sides (each run must have looked): a finding that holds on every
    seed is a failing check, one that cannot be told or is absent is not; one starting to hold is BROKEN."""
    if base is None or new is None:
        return []

    def verdicts(findings):
        return {f"{r.finding} at {r.layer}": r.verdict for r in findings.itertuples()}

    b, n = verdicts(base), verdicts(new)
    return [
        row(
            "findings",
            what,
            b.get(what, "none"),
            n.get(what, "none"),
            pass_fail(b.get(what) != "holds", n.get(what) != "holds", both_failing="same"),
        )
        for what in dict.fromkeys([*b, *n])
    ]


def lr_find_rows(base, new, s):
    """train --lr-find: the suggested rate and where the sweep stopped, shown; a sweep is one sample of a
    noisy curve, so a rate that moves is 'changed', not judged."""
    out = []
    for key, what in (("suggestion", "suggested lr (valley)"), ("stop_lr", "lr where it stopped")):
        b, n = base.meta.get(key), new.meta.get(key)
        verdict = "same" if b == n else "changed"
        change = n / b - 1 if b and n else math.nan
        out.append(
            row("lr-find", what, "" if b is None else b, "" if n is None else n, verdict, change=change)
        )
    return out


def widths_rows(base, new, s):
    """train --widths: each layer's verdict (its noise is judged within each run, over its seeds)."""
    return [
        one_sided(f"{k[0]} {k[1]}", "verdict", b, n)
        if b is None or n is None
        else row(
            f"{k[0]} {k[1]}",
            "x per doubling",
            f"{b['per_doubling']:.3g} {b['verdict']} ({b['param']})",
            f"{n['per_doubling']:.3g} {n['verdict']} ({n['param']})",
            "same" if b["verdict"] == n["verdict"] else "changed",
        )
        for k, b, n in paired(base.rows, new.rows, ["layer", "what"])
    ]


# Each kind of run compare reads (fndcli.kinds), and its rows; tests/test_kinds.py ties the two.
ROWS = {
    MATMUL_BENCH: matmul_rows,
    GRADCHECK: gradcheck_rows,
    INIT_SWEEP: sweep_rows,
    INIT_SWEEP_MODEL: model_rows,
    TRAIN: train_rows,
    TRAIN_LR_FIND: lr_find_rows,
    TRAIN_WIDTHS: widths_rows,
}


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
        raise CompareError(
            f"BASE is a {base.command} run and NEW a {new.command} run; compare runs of one command"
        )
    if base.kind != new.kind:
        raise CompareError(
            f"BASE is a {base.kind.name} run and NEW a {new.kind.name} run: compare runs of one kind"
        )
    if base.kind not in ROWS:
        commands = dict.fromkeys(kind.command for kind in ROWS)
        raise CompareError(
            f"fnd compare takes runs of {', '.join(commands)}, not {base.command}: "
            + ("read its report, or fnd show it" if base.command == "reproduce" else "fnd show it")
        )
    if settings.anchor and not (
        base.command == "matmul-bench" and {settings.anchor} <= set(base.rows["impl"]) & set(new.rows["impl"])
    ):
        raise CompareError(
            f"--anchor {settings.anchor} must be an implementation both matmul-bench runs timed", "--anchor"
        )
    rows = pd.DataFrame.from_records(judge(ROWS[base.kind](base, new, settings), settings), columns=COLUMNS)
    if not (~rows["verdict"].isin(["missing", "added"])).any():
        why = "; ".join(settings_notes(base, new))
        raise CompareError(
            f"the two runs share no row: they measured different things{f' ({why})' if why else ''}"
        )
    return Comparison(
        base.command,
        rows,
        differences(base.meta, new.meta, MACHINE),
        differences(base.meta, new.meta, SOFTWARE),
        settings_notes(base, new),
    )


def compare_pair(run, a, b, settings):
    """Implementation b against a inside one matmul-bench run (`pair_rows`); CompareError if they cannot
    be."""
    rows = pd.DataFrame.from_records(judge(pair_rows(run, a, b, settings), settings), columns=COLUMNS)
    return Comparison(run.command, rows)


def gated(comparison, fail_on_improvement=False, strict=False):
    """The verdicts that fail the gate (exit 1) under these options."""
    verdicts = set(GATED) | ({"improved"} if fail_on_improvement else set())
    verdicts |= set(NOT_JUDGED) if strict else set()
    return comparison.rows[comparison.rows["verdict"].isin(verdicts)]


def not_judged(comparison):
    """The rows no test judged (NOT_JUDGED): with none gated, `fnd compare` exits 3 for them."""
    return comparison.rows[comparison.rows["verdict"].isin(NOT_JUDGED)]
