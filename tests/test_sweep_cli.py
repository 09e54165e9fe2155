"""`fnd init-sweep` through the real Typer app."""

import pandas as pd
import pytest
from conftest import assert_rejected, fail_on_call, run_files

from fndcli.init.schemes import SCHEMES
from fndcli.init.sweep import LAYER_COLUMNS
from fndcli.kinds import INIT_SWEEP


def test_sweep_writes_layers_summary_and_sidecar(fnd, tmp_path):
    result = fnd(
        "init-sweep",
        "--scheme",
        "kaiming",
        "--scheme",
        "normal",
        "--act",
        "relu",
        "--depth",
        "6",
        "--width",
        "16",
        "--batch",
        "8",
        "--seeds",
        "3",
        "--seed",
        "5",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    layers, meta = run_files(tmp_path, "init-sweep")
    assert list(layers.columns) == LAYER_COLUMNS
    assert len(layers) == 2 * 3 * 7  # scheme x seed x layers 0..6
    assert sorted(layers["seed"].unique()) == [5, 6, 7]
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")))
    assert list(summary.columns) == INIT_SWEEP.written()
    assert list(summary["scheme"]) == ["kaiming-normal", "normal"] and (summary["depth"] == 6).all()
    assert meta["config"]["scheme"] == ["kaiming-normal", "normal"] and meta["config"]["seeds"] == 3
    assert "kaiming-normal" in result.stdout and "exploding" in result.stdout


def test_ctrl_c_keeps_whole_networks_and_says_how_many(fnd, tmp_path, monkeypatch):
    """Interrupted in the 5th of 2 x 3 networks: exit 130, 4 networks kept, the title and caption agree."""
    from fndcli.init import sweep

    fail_on_call(monkeypatch, sweep, "run_stack", 5, KeyboardInterrupt)
    result = fnd(
        "init-sweep",
        "--scheme",
        "kaiming",
        "--scheme",
        "normal",
        "--act",
        "relu",
        "--depth",
        "4",
        "--width",
        "8",
        "--batch",
        "4",
        "--seeds",
        "3",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 130, result.output
    layers, meta = run_files(tmp_path, "init-sweep")
    assert layers.groupby("scheme")["seed"].nunique().to_dict() == {"kaiming-normal": 3, "normal": 1}
    assert meta["status"] == "interrupted" and "interrupted: kept the networks that finished" in result.stdout
    assert "3 seed(s), float32; interrupted: 4 network(s) finished" in result.stdout
    assert "each row's 1-3 networks" in result.stdout
    shown = fnd("show", tmp_path)
    assert "interrupted: 4 network(s) finished" in shown.stdout


def test_backward_and_plot(fnd, tmp_path):
    result = fnd(
        "init-sweep",
        "--scheme",
        "orthogonal",
        "--act",
        "linear",
        "--act",
        "tanh",
        "--depth",
        "4",
        "--width",
        "8",
        "--batch",
        "4",
        "--backward",
        "--plot",
        "--out",
        tmp_path,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    layers, meta = run_files(tmp_path, "init-sweep")
    assert list(layers.columns) == LAYER_COLUMNS + ["direction"]
    assert layers.groupby("direction").size().to_dict() == {"backward": 10, "forward": 10}
    back = layers[(layers["direction"] == "backward") & (layers["act"] == "linear")]
    m2 = back["m2"]
    assert m2.max() / m2.min() - 1 < 1e-5  # orthogonal keeps gradient norms, to float32 rounding
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name.rsplit("-", 1)[1] for p in pngs] == ["heatmap.png", "std.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert len(result.stdout.split()) == 5  # --quiet: the paths only


def test_all_schemes_by_default(fnd, tmp_path):
    result = fnd("init-sweep", "--depth", "3", "--width", "8", "--batch", "4", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")))
    assert list(summary["scheme"].unique()) == list(SCHEMES) and set(summary["act"]) == {"linear", "relu"}


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--scheme", "he"], ["'--scheme'", "'he'", "kaiming"]),
        (["--act", "gelu"], ["'--act'", "'gelu'", "relu"]),
        (["--depth", "0"], ["'--depth'"]),
        (["--width", "-3"], ["'--width'"]),
        (["--batch", "0"], ["'--batch'"]),
        (["--scale", "0"], ["'--scale'", "positive finite"]),
        (["--scale", "inf"], ["'--scale'", "positive finite"]),
        (["--scale", "nan"], ["'--scale'"]),
        (["--seeds", "0"], ["'--seeds'"]),
        (["--leak", "1.5"], ["'--leak'", "[0, 1)"]),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "init-sweep", args, *fragments)


def test_book_config_is_the_chapter(fnd, tmp_path):
    result = fnd("init-sweep", "--config", "configs/book.toml", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    _, meta = run_files(tmp_path, "init-sweep")
    cfg = meta["config"]
    assert (cfg["depth"], cfg["width"], cfg["batch"], cfg["dtype"]) == (50, 100, 200, "float32")


def test_readme_command_kaiming_is_stable_and_shows_its_band(fnd, tmp_path):
    """`fnd init-sweep --scheme kaiming --depth 50` at the default seed: both acts stable, inside their
    bands."""
    result = fnd("init-sweep", "--scheme", "kaiming", "--depth", "50", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv"))).set_index("act")
    assert (summary["verdict"] == "stable").all()
    assert (
        (summary["band_lo"] < summary["log10_m2_last"]) & (summary["log10_m2_last"] < summary["band_hi"])
    ).all()
    assert summary.loc["relu", "band_lo"] == pytest.approx(-1.92, abs=0.01)
    assert "vanishing" not in result.stdout and "[-1.92, +0.83]" in result.stdout and "band:" in result.stdout


def test_one_number_a_layer_cannot_tell_and_claims_no_verdict(fnd, tmp_path):
    """depth 1, width 1, batch 1: each layer's m2 is one squared number (a ReLU zeroes it half the time), far
    outside the theory's large-width, large-batch regime: no scheme gets a verdict, and the figures say
    why."""
    result = fnd("init-sweep", "--depth", "1", "--width", "1", "--batch", "1", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")), keep_default_na=False)
    assert (summary["verdict"] == "cannot tell").all(), summary[["scheme", "act", "verdict", "reason"]]
    assert summary["reason"].str.contains("1 value a layer (batch 1 x width 1)", regex=False).all()
    assert "typical net" not in result.stdout and "nan" not in summary["reason"].str.cat()
    # x 0.01 a layer for 30 layers: beyond any noise
    far = fnd(
        "init-sweep",
        "--scheme",
        "scaled",
        "--act",
        "linear",
        "--depth",
        "30",
        "--width",
        "1",
        "--batch",
        "1",
        "--seeds",
        "3",
        "--out",
        tmp_path / "far",
    )
    summary = pd.read_csv(next((tmp_path / "far").glob("*-summary.csv"))).iloc[0]
    assert far.exit_code == 0 and summary["verdict"] == "vanishing", summary["reason"]


def test_one_number_a_layer_with_backward_says_the_batch_once_and_the_gradients_figures(fnd, tmp_path):
    """Forward and gradient both 'cannot tell' for the same few values: the gradient adds its own figures
    only."""
    result = fnd(
        "init-sweep", "--depth", "1", "--width", "1", "--batch", "1", "--backward", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")), keep_default_na=False)
    assert (summary["verdict"] == "cannot tell").all() and (summary["grad_verdict"] == "cannot tell").all()
    for reason in summary["reason"]:
        assert reason.count("(batch 1 x width 1)") == 1 and reason.count("too few") == 1, reason
        gradient = reason.split("; gradient: ")[1]
        assert gradient.startswith(("moved ", "layer ", "no trend")), reason
