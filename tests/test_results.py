"""Run files: naming, never overwriting, atomic placement."""

import datetime as dt
import os

import pandas as pd
import pytest

from fndcli.runs.files import OutputDirError, RunFiles, check_out_dir

STARTED = dt.datetime(2026, 11, 29, 23, 30, 5, tzinfo=dt.timezone.utc)


def test_names_from_command_and_utc_stamp(tmp_path):
    files = RunFiles(tmp_path, "init-sweep", STARTED)
    path = files.write_csv(".csv", pd.DataFrame({"a": [1]}))
    assert path.name == "init-sweep-20261129-233005.csv" and files.written == [path]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_same_second_gets_a_suffix_and_never_overwrites(tmp_path):
    first = RunFiles(tmp_path, "train", STARTED)
    first.write_text(".csv", "first\n")
    first.write_json(".json", {"run": 1})
    second = RunFiles(tmp_path, "train", STARTED)
    assert second.write_text(".csv", "second\n").name == "train-20261129-233005-2.csv"
    assert (tmp_path / "train-20261129-233005.csv").read_text() == "first\n"
    with pytest.raises(FileExistsError):
        first.write_text(".csv", "again\n")  # an existing file is never replaced
    assert (tmp_path / "train-20261129-233005.csv").read_text() == "first\n"


def test_failed_write_leaves_nothing(tmp_path):
    files = RunFiles(tmp_path, "gradcheck", STARTED)

    def explode(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write(".csv", explode)
    assert list(tmp_path.iterdir()) == []


def test_out_dir_is_created_or_refused(tmp_path):
    assert check_out_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("")
    for named in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(OutputDirError, match=f"output directory '{named}': '{tmp_path / 'f'}' is a file"):
            check_out_dir(named)


def test_two_runs_racing_for_one_name_both_land(tmp_path):
    """Both runs start in the same second and pick the same free stem before either writes; the
    one that links first keeps it, the other moves to the next name with all of its files."""
    a, b = RunFiles(tmp_path, "train", STARTED), RunFiles(tmp_path, "train", STARTED)
    assert a.stem == b.stem
    a.write_text(".csv", "a\n")
    b.write_text(".csv", "b\n")
    b.write_json(".json", {"run": "b"})
    a.write_json(".json", {"run": "a"})
    assert (tmp_path / "train-20261129-233005.csv").read_text() == "a\n"
    assert (tmp_path / "train-20261129-233005-2.csv").read_text() == "b\n"
    assert '"b"' in (tmp_path / "train-20261129-233005-2.json").read_text()
    assert '"a"' in (tmp_path / "train-20261129-233005.json").read_text()
    # no temporaries left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "train-20261129-233005.csv",
            "train-20261129-233005.json",
            "train-20261129-233005-2.csv",
            "train-20261129-233005-2.json",
        ]
    )


@pytest.mark.parametrize(
    "command, args",
    [
        ("gradcheck", ["--batch", "4"]),
        (
            "init-sweep",
            ["--depth", "3", "--width", "8", "--batch", "4", "--scheme", "kaiming", "--act", "relu"],
        ),
        ("train", ["--samples", "100", "--epochs", "1"]),
        ("matmul-bench", ["--impl", "torch", "--shape", "4x4x4", "--quick"]),
    ],
)
def test_a_full_disk_is_one_line_exit_2_and_keeps_no_file(fnd, tmp_path, monkeypatch, command, args):
    """The disk fills at the run's second file: one line naming it and the errno, exit 2, and neither the
    first file nor a sidecar left (a CSV without its sidecar is a run show and compare refuse)."""
    import errno

    from conftest import fail_on_call

    fail_on_call(monkeypatch, RunFiles, "write", 2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    result = fnd(command, *args, "--out", tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {tmp_path}/{command}-"), (
        result.stderr
    )
    assert "[Errno 28] No space left on device; none of this run's files were kept" in lines[0]
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []
