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
        # each commit's ancestors (itself included) among `order`, as a bit set: bit i is order[i]
        self.ancestors = {}
        for i, c in enumerate(self.order):
            self.ancestors[c] = 1 << i
            for p in self.parents.get(c, ()):
                self.ancestors[c] |= self.ancestors[p]
        self.bad.add(self.order[-1])

    def _alive(self):
        """The bit set of the commits that may still be the first bad one."""
        alive = (1 << len(self.order)) - 1
        for b in self.bad:
            alive &= self.ancestors[b]
        for g in self.good:
            alive &= ~self.ancestors[g]
        return alive

    def live(self):
        """The commits that may still be the first bad one, in order."""
        alive = self._alive()
        return [c for i, c in enumerate(self.order) if alive >> i & 1]

    def next(self):
        """The commit to try next, or None when the steps have said all they can."""
        alive = self._alive()
        count = alive.bit_count()
        best, score = None, -1
        for c in self.live():
            if c in self.bad or c in self.skipped:
                continue
            below = (self.ancestors[c] & alive).bit_count()
            if min(below, count - below) > score:
                best, score = c, min(below, count - below)
        return best

    def mark(self, commit, verdict):
        """Record a step: 'good', 'bad' or 'skip'."""
        {"good": self.good, "bad": self.bad, "skip": self.skipped}[verdict].add(commit)

    def first_bad(self):
        """The commits the first bad one is among, once `next` is None: one (found), or the skipped ones
        that could not be judged and the oldest bad one after them."""
        return self.live()
