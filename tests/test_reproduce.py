"""`fnd reproduce`: the chapter's claims in one report; a planted fault fails it, a machine's figures only differ."""
import json
import re

import pandas as pd
import pytest

from fndcli import model as fnd_model
from fndcli import reproduce
from fndcli.reproduce import CLAIM_COLUMNS


def _report_dir(out):
    dirs = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("reproduce-")]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_quick_report_of_every_section(fnd, tmp_path, monkeypatch):
    """The real command, every section: the claims hold, figures the machine decides only differ, the
    report's images exist where its links point, report.html inlines them."""
    monkeypatch.setitem(reproduce.BOOK_TIMES, "dot", 1.7e-6)  # a book 1000x off: the dot speedup can only differ
    result = fnd("reproduce", "--quick", "--html", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    run = _report_dir(tmp_path)
    claims = pd.read_csv(run / "claims.csv")
    assert list(claims.columns) == CLAIM_COLUMNS and set(claims["section"]) == set(reproduce.SECTIONS)
    verdicts = claims.set_index("claim")["verdict"]
    assert verdicts["dot is about 676,471x faster than the loops"] == "differs"
    assert (verdicts.drop("dot is about 676,471x faster than the loops") == "holds").all(), claims
    assert claims.loc[claims["verdict"] == "differs", "machine_dependent"].all()
    report = (run / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", report)
    assert set(links) == {"ladder.png", "init-std.png", "train-loss.png"}
    assert all((run / link).read_bytes()[:4] == b"\x89PNG" for link in links)
    assert "| ladder | Each rung of the ladder is faster than the one before |" in report
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<table>" in html
    meta = json.loads((run / "reproduce.json").read_text())
    assert meta["exit_code"] == 0 and "report.md" in meta["files"] and meta["counts"]["differs"] == 1
    for name in ("ladder.csv", "init-layers.csv", "init-summary.csv", "backprop.csv", "bridge.csv", "train.csv"):
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


@pytest.mark.parametrize("ok,machine,verdict", [(True, False, "holds"), (False, True, "differs"),
                                                (False, False, "fails"), (True, True, "holds")])
def test_verdicts(ok, machine, verdict):
    assert reproduce._claim("s", "c", "src", "b", "f", ok, "r", machine)["verdict"] == verdict
