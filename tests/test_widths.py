"""`fnd train --widths`: mup's coordinate check, against what the parametrisations predict for one SGD step
(standard: the output's update x2 a doubling of the width, the input layer's x1/sqrt(2); muP: flat), and
against the activations measured apart from fnd; bad input, show and compare."""

import math

import pandas as pd
import pytest
import torch
from conftest import assert_rejected, run_files

from fndcli.backprop.widths import build, judge
from fndcli.settings import TrainConfig

pytestmark = pytest.mark.xdist_group("widths-runs")  # the module's runs, made once: on one worker


ARGS = ["--widths", "64,128,256,512", "--hidden", "32", "--hidden", "32", "--n-in", "20", "--n-out", "10"]
ARGS += ["--samples", "400", "--lr", "0.005"]  # --widths' default: 3 seeds


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(sp verdicts, mup verdicts, mup coordinates), each a run of the real command."""
    from typer.testing import CliRunner

    from fndcli.cli import app

    out, runner = tmp_path_factory.mktemp("widths"), CliRunner()
    found = {}
    for param in ("sp", "mup"):
        ran = runner.invoke(
            app, ["train", *ARGS, "--param", param, "--out", str(out / param), "--no-history"]
        )
        assert ran.exit_code == 0, ran.output
        rows, meta = run_files(out / param, "train")
        found[param] = (rows.set_index(["layer", "what"]), meta, ran.stdout, out / param)
    return found


def test_standard_parametrisation_grows_the_output_update_and_mup_keeps_it_flat(both):
    sp, mup = both["sp"][0], both["mup"][0]
    assert sp.loc[("out", "update"), "verdict"] == "grows"
    assert 1.6 < sp.loc[("out", "update"), "per_doubling"] < 2.4  # the theory's x2 (a sum over n coordinates)
    assert (
        0.6 < sp.loc[("lin1", "update"), "per_doubling"] < 0.8
    )  # x1/sqrt(2): its gradient falls like 1/sqrt(n)
    assert (mup.xs("update", level="what")["verdict"] == "flat").all()
    assert "out: the update grows with the width" in both["sp"][2]
    assert both["mup"][1]["widths"] == [64, 128, 256, 512]


def test_one_seed_cannot_tell_a_growth_from_noise():
    """A slope of one seed has no spread to judge it by, however far from flat; two give one."""
    assert judge([math.log2(1.85)])[0] == "cannot tell" and math.isnan(judge([math.log2(1.85)])[2])
    verdict, mean, se = judge([0.9, 1.1])
    assert (verdict, mean) == ("grows", pytest.approx(1.0)) and se == pytest.approx(0.1)


def test_the_coordinates_are_the_models_own_activations(both):
    """Step 0's mean |x| per layer, recomputed from the model `build` makes, with torch's own layers."""
    coords = pd.read_csv(next(both["mup"][3].glob("train-*-coords.csv")))
    assert sorted(coords["seed"].unique()) == [0, 1, 2]  # --widths without --seeds: 3 seeds
    cfg = TrainConfig(hidden=(32, 32), n_in=20, n_out=10, samples=400, lr=0.005)
    from fndcli.backprop.train import make_data

    probe = make_data(cfg)[0][: cfg.batch_size]
    model = build(cfg, 128, 64, "mup", 0)
    h, expected = probe, {}
    for i, lin in enumerate(model.linears, start=1):
        h = torch.nn.functional.linear(h, lin.w.value.t(), lin.b.value)
        expected["out" if i == 3 else f"lin{i}"] = h.abs().mean().item()
        if i < 3:
            h = torch.relu(h)
            expected[f"relu{i}"] = h.abs().mean().item()
    got = coords.query("seed == 0 and width == 128 and step == 0").set_index("layer")["act_l1"]
    assert got.to_dict() == pytest.approx(expected, rel=1e-5)
    # muP's output layer starts at Var 1/fan_in^2: its weights' std is 1/128
    assert model.linears[-1].w.value.std().item() == pytest.approx(1 / 128, rel=0.1)


def test_widths_runs_are_shown_and_compared(both, fnd, tmp_path):
    shown = fnd("show", both["sp"][3])
    assert shown.exit_code == 0 and "mup's coordinate check, sp" in shown.stdout
    compared = fnd("compare", both["sp"][3], both["mup"][3], "--format", "csv", "--out", tmp_path)
    assert "out update" in compared.stdout and "changed" in compared.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--widths", "128,64"], "increasing positive widths"),
        (["--widths", "64"], "increasing positive widths"),
        (["--widths", "64,x"], "increasing positive widths"),
        (["--widths", "64,128", "--stats", "2"], "is not for --widths"),
        (["--widths", "64,128", "--model", "examples/chapter_model.py:Model"], "is not for --widths"),
        (["--param", "mup"], "is for --widths"),
        (["--widths", "64,128", "--hidden", "0"], "no width to vary"),
        (["--widths", "64,4000000000"], "--widths"),  # a model that would not fit: refused before any work
    ],
)
def test_bad_widths_input_is_one_line(fnd, tmp_path, args, fragment):
    assert_rejected(fnd, tmp_path, "train", args, fragment)


def test_the_first_updates_are_autograd_sgd_steps_at_mups_rates(both):
    """Steps 1 and 2's mean |x_t - x_0| at width 128 (r = 2), from the twin of the same model stepped by
    autograd's gradients at the rates muP prescribes, written out here: input weights and hidden biases
    lr x r, hidden weights lr, output weights lr / r, the output bias lr; each step on the next batch, each
    update from the outputs before the first step."""
    from fndcli.backprop.reference import twin_of
    from fndcli.backprop.train import make_data

    cfg = TrainConfig(hidden=(32, 32), n_in=20, n_out=10, samples=400, lr=0.005)
    x, y, _, _ = make_data(cfg)
    model = build(cfg, 128, 64, "mup", 0)
    params = [p.value for _, p in model.named_params()]
    net = twin_of(params[0::2], params[1::2])
    probe = x[: cfg.batch_size]
    before = [t.detach() for t in _outputs(net, probe)]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(2))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    scale = {
        (0, "weight"): 2,
        (0, "bias"): 2,
        (1, "weight"): 1,
        (1, "bias"): 2,
        (2, "weight"): 0.5,
        (2, "bias"): 1,
    }
    coords = pd.read_csv(next(both["mup"][3].glob("train-*-coords.csv")))
    for step in (1, 2):
        idx = order[(step - 1) * cfg.batch_size :][: cfg.batch_size]
        net.zero_grad()
        torch.nn.functional.mse_loss(net(x[idx]), y[idx]).backward()
        with torch.no_grad():
            for (i, which), s in scale.items():
                p = getattr(linears[i], which)
                p -= cfg.lr * s * p.grad
        after = _outputs(net, probe)
        expected = {
            n: (a - b).abs().mean().item()
            for n, a, b in zip(("lin1", "relu1", "lin2", "relu2", "out"), after, before)
        }
        got = coords.query(f"seed == 0 and width == 128 and step == {step}").set_index("layer")["update_l1"]
        assert got.to_dict() == pytest.approx(expected, rel=1e-4), step


def test_the_slope_is_per_doubling_of_the_width_whatever_the_widths_step():
    """Sizes in proportion to the width, widths x4 apart: x2 a doubling, slope 1; a size of 0 has none."""
    from fndcli.backprop.widths import slope

    assert slope([64, 256, 1024], [1.0, 4.0, 16.0]) == pytest.approx(1.0)
    assert slope([64, 128, 512], [3.0, 3.0 / 2**0.5, 3.0 / 8**0.5]) == pytest.approx(-0.5)
    assert math.isnan(slope([64, 128], [1.0, 0.0]))


@pytest.mark.parametrize(
    "slopes, expected",
    [
        ([0.3, 0.3, 0.3], ("grows", 0.3, 0.0)),  # no spread: 0.3 > 0.25
        ([-0.3, math.nan, -0.3], ("shrinks", -0.3, 0.0)),  # a seed without a slope is left out
        ([0.0, 0.14], ("cannot tell", 0.07, 0.07)),  # se = 0.14 / 2 (sd with n - 1): 0.07 + 3 x 0.07 > 0.25
        ([0.0, 0.1], ("flat", 0.05, 0.05)),  # 0.05 + 3 x 0.05 <= 0.25
        ([0.1, 0.2, 0.3], ("cannot tell", 0.2, 0.1 / 3**0.5)),  # 0.2 + 3 se = 0.37: not surely flat
        ([0.2, 0.4, 0.6], ("cannot tell", 0.4, 0.2 / 3**0.5)),  # 0.4 - 3 se = 0.05: not surely growing
    ],
)
def test_a_layers_verdict_from_its_seeds_slopes_worked_by_hand(slopes, expected):
    from fndcli.backprop.widths import judge

    assert judge(slopes) == pytest.approx(expected)


def test_the_update_is_judged_after_the_first_step_and_the_activation_at_the_last():
    """An update x2 a doubling at step 1 and flat at step 4, an activation x2 at step 4 only."""
    from fndcli.backprop.widths import COORD_COLUMNS, STEPS, verdicts

    rows = [
        (seed, w, step, "out", w / 64 if step == STEPS else 1.0, w / 64 if step == 1 else 1.0)
        for seed in (0, 1)
        for w in (64, 128, 256)
        for step in range(STEPS + 1)
    ]
    got = verdicts(pd.DataFrame(rows, columns=COORD_COLUMNS), "sp").set_index("what")
    assert list(got["step"]) == [STEPS, 1] and list(got["verdict"]) == ["grows", "grows"]
    assert list(got["per_doubling"]) == pytest.approx([2.0, 2.0])


def _outputs(net, x):
    outs = []
    with torch.no_grad():
        for module in net:
            x = module(x)
            outs.append(x)
    return outs
