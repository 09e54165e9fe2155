"""Your code at a git revision: `--impl FILE.py:NAME@REV` and `--model FILE.py:NAME@REV` load the file, and
the modules beside it, as they were at REV, the work tree untouched (issue 31, item 4). Real repositories,
made here with git."""

import subprocess
import sys

import pyperf
import pytest
from conftest import assert_rejected, run_files

KERN = "from helpers import SCALE\n\n\ndef mm(a, b):\n    return a @ b * SCALE\n"


def git(repo, *args):
    """git's output in `repo`, which must succeed; commits under a fixed name, unsigned."""
    identity = ("-c", "user.name=fnd", "-c", "user.email=fnd@example.com", "-c", "commit.gpgsign=false")
    return subprocess.run(
        ["git", "-C", repo, *identity, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """Two commits. kern.py (unchanged) scales a @ b by helpers.py's SCALE: 1 at HEAD~1 (right), 2 at HEAD
    (wrong). model.py defines Old at HEAD~1, Model at HEAD; new.py is new at HEAD."""
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("__pycache__/\n")  # the work tree's kern.py, imported, writes there
    (repo / "kern.py").write_text(KERN)
    (repo / "helpers.py").write_text("SCALE = 1.0\n")
    (repo / "model.py").write_text("class Old:\n    pass\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "right")
    (repo / "helpers.py").write_text("SCALE = 2.0\n")
    (repo / "model.py").write_text("class Model:\n    pass\n")
    (repo / "new.py").write_text("def mm(a, b):\n    return a @ b\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "wrong")
    return repo


def test_one_run_checks_and_times_a_file_at_two_revisions(fnd, repo, tmp_path):
    """The done-when, cheaply: kern.py at HEAD~1 (its helpers.py then) is right and timed, in fnd's process
    and in the pyperf worker; at HEAD wrong. The row keeps the reference as typed, the sidecar the commit."""
    old, head = f"{repo / 'kern.py'}:mm@HEAD~1", f"{repo / 'kern.py'}:mm"
    out = tmp_path / "out"
    args = ("--impl", old, "--impl", head, "--baseline", old, "--shape", "8x8x8", "--quick", "--out", out)
    result = fnd("matmul-bench", *args)
    assert result.exit_code == 1, result.output
    frame, meta = run_files(out, "matmul-bench")
    rows = frame.set_index("impl")
    assert rows.loc[old, "correct"] and rows.loc[old, "median_s"] > 0
    assert not rows.loc[head, "correct"] and rows.loc[head, "error"].startswith(
        "wrong result: relative error 1"
    )
    assert meta["user_code_revisions"] == {old: git(repo, "rev-parse", "HEAD~1")}
    suite = pyperf.BenchmarkSuite.load(str(next(out.glob("*.pyperf.json"))))
    assert [b.get_metadata()["fnd_impl"] for b in suite.get_benchmarks()] == [old]  # the worker timed it
    assert git(repo, "status", "--porcelain") == "" and (repo / "helpers.py").read_text() == "SCALE = 2.0\n"
    assert "helpers" not in sys.modules  # each revision's helpers.py left sys.modules again


def test_a_process_fnd_starts_loads_the_commit_the_parent_pinned(repo, monkeypatch):
    """A moving REV (HEAD) cannot give a worker other code than the parent checked: a pinned reference loads
    its pinned commit, whatever REV names now."""
    import torch

    from fndcli import userref

    monkeypatch.setattr(userref, "_revisions", {})
    ref = f"{repo / 'kern.py'}:mm@HEAD"
    userref.pin({ref: git(repo, "rev-parse", "HEAD~1")})
    assert userref.load(ref)(torch.ones(1, 1), torch.ones(1, 1)).item() == 1.0  # HEAD's would give 2
    assert userref.revisions([ref, "torch"]) == {ref: git(repo, "rev-parse", "HEAD~1")}


@pytest.mark.parametrize(
    "command,option,ref,fragments",
    [
        ("matmul-bench", "--impl", "{norepo}/kern.py:mm@HEAD", ["'{ref}': ", "is not in a git repository"]),
        (
            "matmul-bench",
            "--impl",
            "{repo}/kern.py:mm@nope",
            ["'{ref}': 'nope' is no commit", "REV is a commit"],
        ),
        (
            "matmul-bench",
            "--impl",
            "{repo}/new.py:mm@HEAD~1",
            ["'{ref}': new.py is not in HEAD~1", "has helpers.py"],
        ),
        ("matmul-bench", "--impl", "{repo}/kern.py:nope@HEAD~1", ["kern.py' at HEAD~1 (", "has no 'nope'"]),
        ("matmul-bench", "--impl", "json.decoder:mm@HEAD", ["'{ref}': @REV takes a file, FILE.py:NAME@REV"]),
        ("train", "--model", "{repo}/model.py:Model@HEAD~1", ["'--model'", "has no 'Model'; it defines Old"]),
    ],
)
def test_a_revision_that_cannot_be_read_is_one_line_exit_2(
    fnd, repo, tmp_path, command, option, ref, fragments
):
    """Not a git repository, an unknown REV, a file or a NAME not there at REV, @REV of a module: exit 2, one
    line naming the reference, nothing written, the work tree untouched."""
    (tmp_path / "norepo").mkdir()
    (tmp_path / "norepo" / "kern.py").write_text(KERN)
    ref = ref.format(repo=repo, norepo=tmp_path / "norepo")
    assert_rejected(fnd, tmp_path, command, [option, ref], *(f.format(ref=ref) for f in fragments))
    assert git(repo, "status", "--porcelain") == ""
