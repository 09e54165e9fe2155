"""The bisect itself: GOOD and BAD first, then one step per commit `search` picks, each a real fnd run
(`run_fnd`, given by the command line: the run written and added to the history as any other), judged by
`judge`; last, for a timing, the first bad commit against its parent. Returns the steps; never prints.
"""

import math
import time
from dataclasses import dataclass, field

import pandas as pd

from fndcli.bisect import judge
from fndcli.bisect.commits import BisectError, describe
from fndcli.bisect.search import Search
from fndcli.kinds import BISECT
from fndcli.runs.saved import load


@dataclass(frozen=True)
class Outcome:
    """What one fnd run gave: its exit code, its sidecar (None if it wrote none), its `Error:` lines."""

    code: int
    sidecar: object
    errors: tuple = ()


@dataclass
class Result:
    outcome: str  # found, no difference, cannot tell, among, interrupted
    code: int  # the exit code: 0 found, 1 no difference, 3 not judged to one commit, 130 Ctrl-C
    steps: pd.DataFrame  # BISECT's columns
    candidates: int = 0
    first_bad: object = None  # commits.Described
    among: list = field(default_factory=list)  # the commits the first bad one is among, when not one
    parent: str | None = None


class Pooled:
    """A step's --gate runs, their worker processes pooled: each process's pair stays a pair, there are more
    of them. Reads as one saved run to `fnd compare --pair`'s rules."""

    def __init__(self, runs):
        self.runs = runs
        first = runs[0]
        self.command, self.meta, self.rows, self.stem = first.command, first.meta, first.rows, first.stem

    def process_values(self):
        merged = {}
        for run in self.runs:
            for name, values in run.process_values().items():
                merged.setdefault(name, []).extend(values)
        return merged


class Bisect:
    """One bisect: `command` (bisect.command.Command) over `span` (commits.Range), each step run by
    `run_fnd(argv) -> Outcome`; `log(message)` says what runs."""

    def __init__(self, command, span, run_fnd, log=lambda message: None):
        self.command, self.span, self.run_fnd, self.log = command, span, run_fnd, log
        self.rows, self.pooled = [], {}  # pooled: the commits of a timing run -> Pooled

    def run(self):
        span = self.span
        try:
            ends = self._ends()
            if ends is not None:
                return ends
            search = Search(list(span.order), dict(span.parents))
            while (commit := search.next()) is not None:
                self.log(f"bisect: step {sum(r['role'] == 'step' for r in self.rows) + 1} at {commit[:12]}")
                judged = self._step(commit, search)
                if judged.verdict == "interrupted":
                    return self._result("interrupted", 130)
                search.mark(commit, judged.verdict)
            live = search.first_bad()
            if len(live) > 1:
                return self._result("among", 3, among=live)
            parent = (span.parents.get(live[0]) or [span.good])[0]  # the code before it
            if self.command.timing:
                self._against_parent(parent, live[0])
            return self._result("found", 0, first_bad=describe(span.repo, live[0]), parent=parent)
        except KeyboardInterrupt:
            return self._result("interrupted", 130)

    # -- GOOD and BAD ------------------------------------------------------------------------------

    def _ends(self):
        """Judge GOOD against BAD; a Result when there is nothing to bisect (or it stopped), else None."""
        span = self.span
        if self.command.timing:
            judged = self._timed("GOOD vs BAD", span.bad, (span.good, span.bad), self._ends_judged)
            if judged.verdict == "interrupted":
                return self._result("interrupted", 130)
            self.directions = self._directions
            if judged.verdict in judge.MOVED:
                return None
            return (
                self._result("no difference", 1)
                if judged.verdict == "same"
                else self._result("cannot tell", 3)
            )
        self.codes = {}
        for name, commit in (("GOOD", span.good), ("BAD", span.bad)):
            outcome, seconds = self._fnd(self.command.at(commit))
            if outcome.code == 130:
                return self._result("interrupted", 130)
            if outcome.code not in (0, 1):
                raise BisectError(f"{self.command.name} at {name} ({commit[:12]}): {_first(outcome, 'exit')}")
            self.codes[name] = outcome.code
            self._row(name, commit, f"exit {outcome.code}", seconds, [outcome], note=_first(outcome, ""))
        if self.codes["GOOD"] == self.codes["BAD"]:
            return self._result("no difference", 1)
        return None

    def _ends_judged(self, run):
        ends = self._pairs(run, self.span.good, self.span.bad)
        self._directions = judge.moved(ends)
        return judge.ends_verdict(ends)

    # -- a step ------------------------------------------------------------------------------------

    def _step(self, commit, search):
        span = self.span
        if not self.command.timing:
            outcome, seconds = self._fnd(self.command.at(commit))
            if outcome.code == 130:
                return judge.Judged("interrupted")
            judged = judge.check_verdict(outcome.code, self.codes["GOOD"])
            note = (
                _first(outcome, "")
                if judged.verdict != "skip"
                else f"does not run: {_first(outcome, 'exit')}"
            )
            self._row("step", commit, judged.verdict, seconds, [outcome], note=note)
            return judged

        def judged(run):
            return judge.step_verdict(
                self._pairs(run, span.good, commit), self._pairs(run, span.bad, commit), self.directions
            )

        # its parent judged good, its child judged bad: timed too, so a last step also times the first bad
        # commit beside its parent, and no run more is needed for that
        before = [p for p in span.parents.get(commit, ())[:1] if p in search.good]
        after = [k for k in search.bad - {span.bad} if span.parents.get(k, [None])[0] == commit]
        return self._timed("step", commit, (span.good, *before, commit, *after, span.bad), judged)

    def _against_parent(self, parent, commit):
        """The first bad commit against its parent, paired: from a run that timed both, else one run more."""
        for commits, run in self.pooled.items():
            if {parent, commit} <= set(commits):
                judged = judge.Judged(*_parent_figures(self._pairs(run, parent, commit), self.directions))
                self._row("vs parent", commit, judged.verdict, 0.0, [], judged, reused=run)
                return
        self._timed(
            "vs parent",
            commit,
            (parent, commit),
            lambda run: judge.Judged(*_parent_figures(self._pairs(run, parent, commit), self.directions)),
        )

    # -- runs --------------------------------------------------------------------------------------

    def _timed(self, role, commit, commits, judged_of):
        """One --gate run of the command at `commits` (and one more, pooled, when it cannot tell and more
        processes may: judged pooled, else the second alone), judged by judged_of(pooled run); its row."""
        outcomes, seconds, judged = [], 0.0, None
        for _ in range(2):
            outcome, spent = self._fnd(self.command.at(*commits))
            outcomes.append(outcome)
            seconds += spent
            if outcome.code == 130:
                return judge.Judged("interrupted")
            if outcome.sidecar is None:  # the code did not load (exit 2): nothing was run
                if role == "GOOD vs BAD":
                    raise BisectError(f"{self.command.name} at GOOD and BAD: {_first(outcome, 'exit')}")
                judged = judge.Judged("skip", note=f"does not load: {_first(outcome, 'exit')}")
                break
            runs = [load(o.sidecar) for o in outcomes if o.sidecar is not None]
            self.pooled[commits] = Pooled(runs)
            judged = judged_of(self.pooled[commits])
            if judged.more_would_help and len(runs) > 1:  # the first run's processes may be what spoils it
                alone = judged_of(Pooled(runs[-1:]))
                if not alone.more_would_help:
                    self.pooled[commits], judged = Pooled(runs[-1:]), alone
            if not judged.more_would_help:
                break
            self.log(f"bisect: {commit[:12]} cannot tell yet: more worker processes")
        self._row(role, commit, judged.verdict, seconds, outcomes, judged)
        return judged

    def _pairs(self, run, a, b):
        """{reference and row: Pair} of every user reference at commit b against itself at commit a."""
        out = {}
        for _, ref in self.command.references:
            for row, pair in judge.pairs(run, f"{ref}@{a}", f"{ref}@{b}").items():
                out[f"{ref} {row}"] = pair
        return out

    def _fnd(self, argv):
        started = time.monotonic()
        outcome = self.run_fnd(argv)
        return outcome, time.monotonic() - started

    def _row(self, role, commit, verdict, seconds, outcomes, judged=None, note="", reused=None):
        described = describe(self.span.repo, commit)
        judged = judged or judge.Judged(verdict)
        stems = [o.sidecar.name[: -len(".json")] for o in outcomes if o.sidecar is not None]
        self.rows.append(
            {
                "step": len(self.rows),
                "role": role,
                "commit": commit,
                "subject": described.subject,
                "date": described.date,
                "verdict": verdict,
                "change": judged.change,
                "ci_low": judged.low,
                "ci_high": judged.high,
                "runs": len(outcomes),
                "seconds": seconds,
                "run": " ".join(stems) or (f"in {' '.join(r.stem for r in reused.runs)}" if reused else ""),
                "note": judged.note or note,
            }
        )

    def _result(self, outcome, code, **found):
        steps = pd.DataFrame.from_records(self.rows, columns=BISECT.written())
        return Result(outcome, code, steps, len(self.span.order), **found)


def _first(outcome, default):
    return outcome.errors[0] if outcome.errors else (f"exit {outcome.code}" if default == "exit" else default)


def _parent_figures(pairs, directions):
    """(verdict, change, low, high, note) of a commit against its parent at the row that moved most between
    GOOD and BAD."""
    row = next((r for r in directions if r in pairs), None)
    if row is None:
        return "untimed", math.nan, math.nan, math.nan, "not timed at both"
    p = pairs[row]
    return p.verdict, p.change, p.low, p.high, row
