"""Which commit to try next, and what the steps so far prove: git bisect's walk over a graph of commits.

The first bad commit is an ancestor (or itself) of every commit judged bad and of none judged good: those that
remain are `live`. The next commit tried is the live one that splits them most evenly (git bisect's
rule, so a merge's two sides are bisected as well as a line); a commit that cannot be judged is skipped
and never tried again. On a line of N commits it takes at most ceil(log2 N) steps without skips. Pure:
no git, no fnd run.
"""

from dataclasses import dataclass, field


@dataclass
class Search:
    """The commits between GOOD and BAD (oldest first, each with its parents among them), BAD last and
    bad."""

    order: list  # commit hashes, every parent before its children
    parents: dict  # commit -> its parents among `order`
    good: set = field(default_factory=set)
    bad: set = field(default_factory=set)
    skipped: set = field(default_factory=set)

    def __post_init__(self):
        self.ancestors = {}  # commit -> itself and its ancestors among `order`
        for c in self.order:
            self.ancestors[c] = {c}.union(*(self.ancestors[p] for p in self.parents.get(c, ())))
        self.bad.add(self.order[-1])

    def live(self):
        """The commits that may still be the first bad one, in order."""
        return [
            c
            for c in self.order
            if all(c in self.ancestors[b] for b in self.bad)
            and not any(c in self.ancestors[g] for g in self.good)
        ]

    def next(self):
        """The commit to try next, or None when the steps have said all they can."""
        live = self.live()
        alive = set(live)
        best, score = None, -1
        for c in live:
            if c in self.bad or c in self.skipped:
                continue
            below = len(self.ancestors[c] & alive)
            if min(below, len(live) - below) > score:
                best, score = c, min(below, len(live) - below)
        return best

    def mark(self, commit, verdict):
        """Record a step: 'good', 'bad' or 'skip'."""
        {"good": self.good, "bad": self.bad, "skip": self.skipped}[verdict].add(commit)

    def first_bad(self):
        """The commits the first bad one is among, once `next` is None: one (found), or the skipped ones
        that could not be judged and the oldest bad one after them."""
        return self.live()
