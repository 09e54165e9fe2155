"""Whether a step's run is like GOOD's or like BAD's.

A timing step is one interleaved --gate run of the candidate's kernel beside GOOD's and BAD's: in each worker
process the candidate against GOOD and against BAD, judged as `fnd compare --pair` judges (per process pair,
Holm over the shapes, a change beyond PAIRED_THRESHOLD). GOOD and BAD were first judged against each other:
the rows that moved (REGRESSION or improved) are the ones a step reads. A moved row is like BAD when the
candidate moved as BAD did against GOOD and is not told apart from BAD; like GOOD when it moved against BAD
as GOOD did and is not told apart from GOOD; else it cannot tell (between the two, or too noisy). A step is
bad when any moved row is like BAD, good when every one is like GOOD. A check step is the command's own exit:
GOOD's (0 or 1) or BAD's.
"""

import math
from dataclasses import dataclass

from fndcli.bench.spec import split_name
from fndcli.runs.compare import PAIRED_THRESHOLD, Settings, compare_pair

SETTINGS = Settings(threshold=PAIRED_THRESHOLD)
MOVED = ("REGRESSION", "improved")
OPPOSITE = {"REGRESSION": "improved", "improved": "REGRESSION"}
NO_WORSE_FOR_MORE = ("BROKEN", "untimed", "missing", "added")  # more processes cannot judge these


@dataclass(frozen=True)
class Pair:
    """B against A at one row (shape, dtype, device, threads): the paired verdict and its figures."""

    verdict: str
    change: float
    low: float
    high: float
    note: str


@dataclass(frozen=True)
class Judged:
    """A step's verdict ('good', 'bad', 'skip' or, for GOOD against BAD, the paired verdict) and its figures:
    the candidate against GOOD at the row that moved most between GOOD and BAD."""

    verdict: str
    change: float = math.nan
    low: float = math.nan
    high: float = math.nan
    note: str = ""
    more_would_help: bool = False  # a noisy step: more worker processes may judge it


def pairs(run, a, b):
    """{row: Pair} of implementation b against a in one (pooled) matmul-bench run."""
    rows = compare_pair(run, a, b, SETTINGS).rows
    out = {}
    for r in rows.itertuples():
        name, _, threads = r.key.rpartition(" vs ")
        out[f"{split_name(name)[1]} {threads.rsplit(' ', 1)[-1]}"] = Pair(
            r.verdict, r.change, r.ci_low, r.ci_high, r.note
        )
    return out


def moved(ends):
    """{row: 'REGRESSION' or 'improved'} of the rows where BAD moved against GOOD, the largest move first."""
    found = [(row, p) for row, p in ends.items() if p.verdict in MOVED]
    found.sort(key=lambda rp: -abs(math.log1p(rp[1].change)))
    return {row: p.verdict for row, p in found}


def ends_verdict(ends):
    """GOOD against BAD, as a Judged: the row that moved most, else the rows' one verdict (same, ...)."""
    if not ends:
        return Judged("untimed", note="no row was timed at both GOOD and BAD")
    directions = moved(ends)
    row = next(iter(directions), None) or next(iter(ends))
    p = ends[row]
    if directions:
        return Judged(p.verdict, p.change, p.low, p.high, row)
    verdicts = {q.verdict for q in ends.values()}
    verdict = "same" if verdicts == {"same"} else p.verdict if len(verdicts) == 1 else "inconclusive"
    return Judged(
        verdict,
        p.change,
        p.low,
        p.high,
        "; ".join(f"{r}: {q.verdict}{f' ({q.note})' if q.note else ''}" for r, q in ends.items()),
        # more processes may judge a row that was too noisy; a row judged `same`, BROKEN, untimed ... stays so
        more_would_help=any(q.verdict not in ("same", *NO_WORSE_FOR_MORE) for q in ends.values()),
    )


def step_verdict(against_good, against_bad, directions):
    """The candidate's step from its pairs against GOOD and BAD at the moved rows."""
    calls = {}
    for row, toward in directions.items():
        g, b = against_good.get(row), against_bad.get(row)
        if g is None or b is None:
            calls[row] = "cannot tell", "not timed at the candidate"
        elif g.verdict == toward and b.verdict not in MOVED:
            calls[row] = "bad", ""
        elif b.verdict == OPPOSITE[toward] and g.verdict not in MOVED:
            calls[row] = "good", ""
        else:
            calls[row] = "cannot tell", f"against GOOD {g.verdict}, against BAD {b.verdict}"
    first = next(iter(directions))
    g = against_good.get(first) or Pair("", math.nan, math.nan, math.nan, "")
    figures = (g.change, g.low, g.high)
    if any(c == "bad" for c, _ in calls.values()):
        return Judged("bad", *figures)
    if all(c == "good" for c, _ in calls.values()):
        return Judged("good", *figures)
    notes = "; ".join(f"{row}: {why}" for row, (c, why) in calls.items() if c != "good")
    helps = not any(
        p.verdict in NO_WORSE_FOR_MORE for side in (against_good, against_bad) for p in side.values()
    )
    return Judged("skip", *figures, note=f"cannot tell: {notes}", more_would_help=helps)


def check_verdict(code, good_code):
    """A check step: its exit like GOOD's is good, the other of 0 and 1 bad; anything else a skip."""
    if code == good_code:
        return Judged("good")
    if code in (0, 1):
        return Judged("bad")
    return Judged("skip")
