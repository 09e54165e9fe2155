"""The commits `fnd bisect` walks, asked of git: GOOD and BAD resolved in the repository that holds the user's
file, GOOD an ancestor of BAD (`git merge-base --is-ancestor`), the commits between them that change the
file's directory (`git rev-list --ancestry-path GOOD..BAD -- DIR`, with their parents rewritten to those
commits, as git bisect walks a path), and a commit's subject and author date. The directory is what `@REV`
loads (fndcli.gitrev): a commit that leaves it alone runs the very code of its parent, so it is never a
step. torch-free.
"""

import os
import posixpath
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fndcli import gitrev


class BisectError(Exception):
    """Bad input for a bisect: one line, for exit 2."""


@dataclass(frozen=True)
class Range:
    """GOOD..BAD in one repository: the commits to search, oldest first, and each one's parents among them."""

    repo: Path
    directory: str  # the user's file's directory in the repository ('' at its top)
    good: str
    bad: str
    order: list  # the commits that change `directory`, every parent before its children; BAD last
    parents: dict


def _git(repo, *args):
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout


def commit_range(path, good, bad):
    """The Range between GOOD and BAD of the repository holding the file `path` (absolute); BisectError if
    either is no commit there, or GOOD is not an ancestor of BAD."""
    ends = []
    for name, rev in (("GOOD", good), ("BAD", bad)):
        try:
            ends.append(gitrev.resolve(path, rev))
        except gitrev.RevError as e:
            raise BisectError(f"{name}: {e}") from None
    (g, b), repo = ends, ends[0].repo
    if g.commit == b.commit:
        raise BisectError(f"GOOD and BAD are one commit ({g.commit[:12]}): give two, GOOD older than BAD")
    if _git(repo, "merge-base", "--is-ancestor", g.commit, b.commit)[0] != 0:
        raise BisectError(
            f"GOOD {good} ({g.commit[:12]}) is not an ancestor of BAD {bad} ({b.commit[:12]}); give the "
            "older commit first"
        )
    directory = posixpath.dirname(g.path)
    code, out = _git(
        repo, "rev-list", "--ancestry-path", "--topo-order", "--reverse", "--parents",
        f"{g.commit}..{b.commit}", "--", directory or ".",
    )  # fmt: skip
    if code != 0:
        raise BisectError(f"git rev-list cannot walk {good}..{bad} in {repo}")
    order, parents = [], {}
    for line in out.splitlines():
        commit, *theirs = line.split()
        parents[commit] = [p for p in theirs if p in parents]
        order.append(commit)
    if (
        not order or order[-1] != b.commit
    ):  # BAD leaves the directory alone: it runs the newest changer's code
        heads = set(order) - {p for ps in parents.values() for p in ps}
        parents[b.commit] = [c for c in order if c in heads]
        order.append(b.commit)
    return Range(repo, directory, g.commit, b.commit, order, parents)


@dataclass(frozen=True)
class Described:
    commit: str
    subject: str
    date: str  # the author date, ISO 8601


def describe(repo, commit):
    """A commit's subject and author date."""
    env = {**os.environ, "TZ": "UTC"}
    proc = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--date=iso-strict-local", "--format=%ad%x00%s", commit],
        capture_output=True,
        text=True,
        env=env,
    )
    date, _, subject = proc.stdout.rstrip("\n").partition("\0")
    return Described(commit, subject, date)
