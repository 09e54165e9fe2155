"""`fnd reproduce`: the chapter's claims in one report; a planted fault fails it, a machine's figures only
differ."""

import json
import re

import pandas as pd
import pytest
from conftest import assert_one_line_error

from fndcli.backprop import model as fnd_model
from fndcli.reproduce import claims as reproduce
from fndcli.reproduce.claims import CLAIM_COLUMNS


def _report_dir(out):
    dirs = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("reproduce-")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_quick_report_of_two_sections(fnd, tmp_path):
    """The real command, the cheap sections (make slow runs every one): the claims hold, the report's image
    exists where its link points, report.html inlines it, the sidecar counts the verdicts."""
    result = fnd(
        "reproduce", "--quick", "--section", "backprop", "--section", "train", "--html", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output
    run = _report_dir(tmp_path)
    claims = pd.read_csv(run / "claims.csv")
    assert list(claims.columns) == CLAIM_COLUMNS and set(claims["section"]) == {"backprop", "train"}
    assert (claims["verdict"] == "holds").all(), claims
    report = (run / "report.md").read_text()
    assert re.findall(r"!\[[^]]*\]\(([^)]+)\)", report) == ["train-loss.png"]
    assert (run / "train-loss.png").read_bytes()[:4] == b"\x89PNG"
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 and "<table>" in html
    meta = json.loads((run / "reproduce.json").read_text())
    assert meta["exit_code"] == 0 and meta["counts"] == {"holds": len(claims)}
    assert all(len(pd.read_csv(run / name)) for name in ("backprop.csv", "train.csv"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


@pytest.mark.slow
def test_quick_report_of_every_section(fnd, tmp_path, monkeypatch):
    """The real command, every section: the claims hold, figures the machine decides only differ, the
    report's images exist where its links point, report.html inlines them."""
    # a book 1000x off: the dot speedup can only differ
    monkeypatch.setitem(reproduce.BOOK_TIMES, "dot", 1.7e-6)
    result = fnd("reproduce", "--quick", "--html", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run = _report_dir(tmp_path)
    claims = pd.read_csv(run / "claims.csv")
    assert list(claims.columns) == CLAIM_COLUMNS and set(claims["section"]) == set(reproduce.SECTIONS)
    verdicts = claims.set_index("claim")["verdict"]
    assert verdicts["dot is about 676,471x faster than the loops"] == "differs"
    # every claim that should hold anywhere holds; a timing may differ on a loaded host (never fail)
    assert (claims.loc[~claims["machine_dependent"], "verdict"] == "holds").all(), claims
    assert claims.loc[claims["verdict"] != "holds", "machine_dependent"].all()
    report = (run / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert set(links) == {"ladder.png", "init-std.png", "train-loss.png"}
    assert all((run / link).read_bytes()[:4] == b"\x89PNG" for link in links)
    assert "| ladder | Each rung of the ladder is faster than the one before |" in report
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<table>" in html
    meta = json.loads((run / "reproduce.json").read_text())
    assert meta["exit_code"] == 0 and "report.md" in meta["files"]
    assert meta["counts"] == claims["verdict"].value_counts().to_dict()
    for name in (
        "ladder.csv",
        "init-layers.csv",
        "init-summary.csv",
        "backprop.csv",
        "bridge.csv",
        "train.csv",
    ):
        assert len(pd.read_csv(run / name)), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_a_planted_backward_bug_fails_the_run(fnd, tmp_path, monkeypatch):
    real = fnd_model.Linear.backward

    def half_weight_gradient(self, grad_out, input_grad=True):
        before = self.w.grad.clone()
        out = real(self, grad_out, input_grad)
        self.w.grad.copy_(before + 0.5 * (self.w.grad - before))
        return out

    monkeypatch.setattr(fnd_model.Linear, "backward", half_weight_gradient)
    result = fnd("reproduce", "--quick", "--section", "backprop", "--out", tmp_path)
    assert result.exit_code == 1, result.output
    claims = pd.read_csv(_report_dir(tmp_path) / "claims.csv").set_index("claim")
    assert claims.loc["The hand-written gradients match autograd's", "verdict"] == "fails"
    assert "fails: The hand-written gradients match autograd's" in result.stdout


@pytest.mark.parametrize(
    "ok,machine,verdict",
    [(True, False, "holds"), (False, True, "differs"), (False, False, "fails"), (True, True, "holds")],
)
def test_verdicts(ok, machine, verdict):
    assert reproduce.claim("s", "c", "src", "b", "f", ok, "r", machine)["verdict"] == verdict


def test_the_ladders_order_is_a_timing_claim_it_can_only_differ(fnd, tmp_path, monkeypatch):
    """A host under load can time dot below broadcast: the order differs, the run does not fail."""
    from fndcli.bench import run as bench

    medians = {"loops": 1.0, "dot": 1e-4, "broadcast": 2e-4, "einsum": 5e-5, "torch": 1e-5}  # dot < broadcast
    rows = pd.DataFrame(
        [{"impl": i, "median_s": t, "correct": True, "threads": 1} for i, t in medians.items()]
    )
    monkeypatch.setattr(bench, "run_bench", lambda cfg: bench.BenchResult(rows, None))
    result = fnd("reproduce", "--quick", "--section", "ladder", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    claims = pd.read_csv(_report_dir(tmp_path) / "claims.csv").set_index("claim")
    assert claims.loc["Each rung of the ladder is faster than the one before", "verdict"] == "differs"


def test_ctrl_c_keeps_the_sections_that_finished(fnd, tmp_path, monkeypatch):
    """Ctrl-C in the ladder's timing (the cores catch it and return what they have) or in training: exit 130,
    the report of the sections that finished, nothing judged on a section cut short."""
    from fndcli.backprop import train as fnd_train
    from fndcli.bench import here

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(here, "time_here", interrupt)  # --quick times in fnd's own process
    monkeypatch.setattr(fnd_train, "step_rel_diff", interrupt)
    for sections, kept in ((["ladder", "bridge"], set()), (["bridge", "train"], {"bridge"})):
        out = tmp_path / "-".join(sections)
        result = fnd("reproduce", "--quick", *[a for s in sections for a in ("--section", s)], "--out", out)
        assert result.exit_code == 130, result.output
        assert (
            "Traceback" not in result.output
            and "interrupted: kept the sections that finished" in result.stdout
        )
        run = _report_dir(out)
        claims = pd.read_csv(run / "claims.csv")
        assert set(claims["section"]) == kept and (claims["verdict"] == "holds").all()
        meta = json.loads((run / "reproduce.json").read_text())
        assert meta["status"] == "interrupted" and meta["exit_code"] == 130
        assert "interrupted (Ctrl-C)" in (run / "report.md").read_text()


def test_show_reads_a_reproduce_run_every_way_it_is_named(fnd, tmp_path):
    """The run's directory, its report, its claims CSV, and the directory of runs (newest of any command)."""
    printed = fnd("reproduce", "--quick", "--section", "bridge", "--out", tmp_path)
    assert printed.exit_code == 0, printed.output
    run = _report_dir(tmp_path)
    table = printed.stdout[: printed.stdout.index(str(run))]  # the claims table, before the paths
    for named in (run, run / "report.md", run / "claims.csv", tmp_path):
        shown = fnd("show", named)
        assert shown.exit_code == 0, shown.output
        assert table in shown.stdout and f"run: {run.name} (complete, exit 0)" in shown.stdout
    md = fnd("show", run, "--format", "md").stdout
    assert (
        md.startswith(f"### fnd reproduce: {run.name}") and "| section | claim | book | fnd | verdict |" in md
    )
    assert_one_line_error(fnd("compare", run, run, "--out", tmp_path / "o"), "takes runs of", "not reproduce")


def test_a_full_disk_is_one_line_exit_2_and_no_report_directory(fnd, tmp_path, monkeypatch):
    import errno
    import os

    import pandas as pd

    real = pd.DataFrame.to_csv

    def full(self, path=None, *args, **kwargs):
        if str(path).endswith("claims.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    result = fnd("reproduce", "--quick", "--section", "bridge", "--out", tmp_path)
    assert_one_line_error(result, "claims.csv: [Errno 28] No space left on device; nothing kept")
    assert list(tmp_path.iterdir()) == []  # no report directory, and no temporary one
