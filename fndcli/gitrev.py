"""A user's file, and the directory it imports from, as they were at a git revision (`FILE.py:NAME@REV`),
read out of the repository without touching its work tree.

`resolve` finds the repository that holds the file (`git rev-parse --show-toplevel`), the commit REV
names (`git rev-parse --verify REV^{commit}`: HEAD~5, origin/main, a tag, a hash) and checks the file is
in it. `export` writes the file's directory at that commit (the blobs `git ls-tree -r` lists, read with
`git cat-file --batch`) into a temporary directory of this process, once per (repository, commit,
directory), removed when the process ends; `fndcli.userref` imports the file from there as it imports
any file. Failures are RevError: one line, for exit 2. torch-free.
"""

import atexit
import os
import posixpath
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_exports = {}  # (repository, commit, directory) -> the directory written, in this process
_root = []  # this process's temporary directory for them, made at the first export


class RevError(Exception):
    """A revision that cannot be read: not a git repository, an unknown REV, a file not in it."""


@dataclass(frozen=True)
class AtRev:
    """A file at a commit: the repository's top level, the commit's full hash, the file's path in it."""

    repo: Path
    commit: str
    path: str  # relative to repo, with '/'


def _git(cwd, *args, stdin=None):
    """git's CompletedProcess (bytes), never raising on git's exit status; RevError if git is missing."""
    try:
        return subprocess.run(["git", "-C", str(cwd), *args], input=stdin, capture_output=True)
    except FileNotFoundError:
        raise RevError("git is not installed; @REV reads the file out of its git repository") from None


def _first_line(proc):
    lines = os.fsdecode(proc.stderr).strip().splitlines()
    return lines[0] if lines else f"exit {proc.returncode}"


def resolve(path, rev):
    """The AtRev of the file `path` (absolute) at `rev`; RevError if it cannot be read there."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
        raise RevError(f"{rev!r} is not a revision; REV is a commit, branch, tag or HEAD~N")
    start = next(p for p in (path.parent, *path.parents) if p.is_dir())
    top = _git(start, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        why = _first_line(top)
        if "not a git repository" in why:
            raise RevError(
                f"{start} is not in a git repository; @REV reads the file at a commit of its repository"
            )
        raise RevError(f"git cannot read {start}: {why}")
    repo = Path(os.fsdecode(top.stdout).strip()).resolve()
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if commit.returncode != 0:
        raise RevError(f"{rev!r} is no commit of {repo}; REV is a commit, branch, tag or HEAD~N git knows")
    at = AtRev(repo, os.fsdecode(commit.stdout).strip(), path.relative_to(repo).as_posix())
    if _git(repo, "cat-file", "-e", f"{at.commit}:{at.path}").returncode != 0:
        raise RevError(f"{at.path} is not in {rev} ({at.commit[:12]}) of {repo}{_python_files(at)}")
    return at


def _python_files(at):
    """'; its directory there has a.py, b.py' (or says it has none), for the message of a file absent."""
    directory = posixpath.dirname(at.path)
    listing = _git(at.repo, "ls-tree", "--name-only", "-z", f"{at.commit}:{directory}")
    names = sorted(n for n in os.fsdecode(listing.stdout).split("\0") if n.endswith(".py"))
    where = f"{directory}/" if directory else "its top level"
    if listing.returncode != 0:
        return f"; {where} is not there either"
    more = ", ..." if len(names) > 10 else ""
    return f"; {where} there has {', '.join(names[:10]) or 'no .py file'}{more}"


def export(at):
    """The path of the file in a copy of its directory at the commit (subdirectories included), written once
    per process."""
    directory = posixpath.dirname(at.path)
    key = (at.repo, at.commit, directory)
    if key not in _exports:
        if not _root:
            _root.append(tempfile.mkdtemp(prefix="fnd-rev-"))
            atexit.register(shutil.rmtree, _root[0], True)
        dest = Path(tempfile.mkdtemp(prefix=f"{at.commit[:12]}-", dir=_root[0])).resolve()
        _write_tree(at.repo, f"{at.commit}:{directory}", dest)
        _exports[key] = dest
    return _exports[key] / posixpath.basename(at.path)


def _write_tree(repo, tree, dest):
    """Every blob of a git tree, under dest: files as they are in the commit, symlinks as symlinks (a
    submodule, a commit in the tree, is left out)."""
    listing = _git(repo, "ls-tree", "-r", "-z", tree)
    if listing.returncode != 0:
        raise RevError(f"git cannot list {tree} in {repo}: {_first_line(listing)}")
    blobs = []
    for entry in filter(None, listing.stdout.split(b"\0")):
        meta, name = entry.split(b"\t", 1)
        mode, kind, oid = meta.split()
        if kind == b"blob":
            blobs.append((mode, oid, os.fsdecode(name)))
    data = _git(repo, "cat-file", "--batch", stdin=b"".join(oid + b"\n" for _, oid, _ in blobs)).stdout
    offset = 0
    for mode, _, name in blobs:  # each: '<oid> blob <size>\n<content>\n', in the order asked
        header_end = data.index(b"\n", offset)
        size = int(data[offset:header_end].split()[2])
        body, offset = data[header_end + 1 : header_end + 1 + size], header_end + size + 2
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == b"120000":
            target.symlink_to(os.fsdecode(body))
        else:
            target.write_bytes(body)
