"""`fnd init-sweep --model`'s figures against hand-worked values: where the scale jumps (issue 30, item 9),
the fitted trend and its noise, the verdict with a gradient, and the gains a scheme gives (issue 30, item
12)."""

import importlib.util
import math
import statistics
import textwrap

import pandas as pd
import pytest
import torch
from conftest import run_files

from fndcli.init import diagnose, probe
from fndcli.settings import ProbeConfig

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    def blocks(width, last_relu=True):
        layers = []
        for _ in range(10):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*(layers if last_relu else layers[:-1]))


    class KaimingMLP(nn.Module):
        """Ten Linear + ReLU blocks at He's init, one Linear's weights x0.1: m2 x0.02 (He's 2 x 0.01)."""

        def __init__(self):
            super().__init__()
            self.net = blocks(64)
            for m in self.net[::2]:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            with torch.no_grad():
                self.net[8].weight.mul_(0.1)

        def forward(self, x):
            return self.net(x)


    class LastX300(nn.Module):
        """Ten Linear layers at N(0, 1/n) with ReLUs between: m2 halves at each ReLU, then the last x300."""

        def __init__(self):
            super().__init__()
            self.net = blocks(64, last_relu=False)
            for m in self.net[::2]:
                nn.init.normal_(m.weight, std=64 ** -0.5)
            with torch.no_grad():
                self.net[-1].weight.mul_(300)

        def forward(self, x):
            return self.net(x)


    class ScaleGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * 1e-3


    class Quiet(nn.Module):
        """The identity forward; the gradient it passes back 1000x smaller."""

        def forward(self, x):
            return ScaleGrad.apply(x)


    def quiet_gradient():
        """A flat forward pass (identity Linears) whose gradient vanishes."""
        layers = []
        for _ in range(4):
            linear = nn.Linear(16, 16, bias=False)
            nn.init.eye_(linear.weight)
            layers += [linear, Quiet()]
        return nn.Sequential(*layers)


    class Reinit(nn.Module):
        """Conv-BN-ReLU, then one Linear called twice: first before a ReLU, then before nothing."""

        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.relu = nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
            self.fc = nn.Linear(128, 128)

        def forward(self, x):
            h = self.relu(self.bn(self.conv(x))).flatten(1)  # (B, 8 * 4 * 4)
            return self.fc(self.relu(self.fc(h)))
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "jumps.py"
    path.write_text(MODELS)
    spec = importlib.util.spec_from_file_location("diagnose_test_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path


def headline(result, out):
    """The verdict line as printed (rich wraps it), up to the files written."""
    return result.stdout.split("verdict:")[1].split(str(out))[0].replace("\n", " ")


def test_one_linear_x01_in_a_ten_layer_mlp_is_named_where_the_scale_jumps(fnd, tmp_path, models):
    """He's init keeps m2 (x2 at a Linear, /2 at its ReLU); net.8's weights x0.1 make its m2 0.02 of its
    input's, plus its bias's 1 / (3 x 64): -1.6 decades, beyond the 1 decade (+ 3 x 0.077 of noise at 64
    units) a layer may move alone. It is the only layer named."""
    result = fnd("init-sweep", "--model", f"{models}:KaimingMLP", "--input-shape", "32x64", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")), keep_default_na=False, dtype=str).iloc[0]
    layers, _ = run_files(tmp_path, "init-sweep")
    assert summary["first_jump"] == "net.8" and int(summary["layers"]) == 20  # 10 Linear + 10 ReLU calls
    jumps = layers.loc[layers["finding"].fillna("").str.contains("jump"), "layer"]
    assert list(jumps) == ["net.8"]
    row = layers.set_index("layer").loc["net.8"]
    assert row["in_m2"] == pytest.approx(layers.set_index("layer").loc["net.7", "m2"], rel=1e-12)
    said = headline(result, tmp_path)
    assert "scale jumps x0.1" in said and "at net.8 (Linear, after net.7 (ReLU))" in said
    assert math.log10(row["m2"] / row["in_m2"]) == pytest.approx(math.log10(0.02 + 1 / 192), abs=0.2)


def test_a_last_layer_x300_is_named_and_the_headline_does_not_contradict_itself(fnd, tmp_path, models):
    """The ReLUs take the body down 0.3 decades each (a falling trend: vanishing); the last Linear's weights
    x300 put its m2 4.95 decades above its input's: a jump there, not also 'exploding' beside 'vanishing'."""
    result = fnd("init-sweep", "--model", f"{models}:LastX300", "--input-shape", "32x64", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next(tmp_path.glob("*-summary.csv")), keep_default_na=False, dtype=str).iloc[0]
    assert summary["first_jump"] == "net.18"
    said = headline(result, tmp_path)
    assert "net.18" in said and not ("vanishing" in said and "exploding" in said), said
    layers, _ = run_files(tmp_path, "init-sweep")
    row = layers.set_index("layer").loc["net.18"]
    assert math.log10(row["m2"] / row["in_m2"]) == pytest.approx(math.log10(300**2), abs=0.3)


def test_a_jump_must_clear_the_finite_width_noise_of_its_layer():
    """One output unit: m2 is x chi-square(1) from the weights alone, sd of log10 sqrt(2) / ln 10 = 0.61 by
    the delta method, so 2 decades is within 1 + 3 sd = 2.84; 64 units: sd 0.077, 2 decades is a jump."""
    row = dict.fromkeys(diagnose.STATS, 0.0) | {"activation": False, "m2": 1e-2, "in_m2": 1.0}
    assert diagnose.layer_findings(row | {"units": 1}, 1.0, 3.0) == ""
    assert diagnose.layer_findings(row | {"units": 64}, 1.0, 3.0) == "jump"
    assert diagnose.layer_findings(row | {"units": 64, "m2": 0.2}, 1.0, 3.0) == ""  # 0.7 decades: no jump
    assert diagnose.jump_sd(1) == pytest.approx(math.sqrt(2) / math.log(10))


def test_the_fitted_change_and_its_standard_error_by_hand():
    """log10 values 0, 2, 1, 3 at orders 0..3. Pairwise slopes 2, .5, 1, -1, .5, 2: median .75, over a span
    of 3 orders a change of 2.25 (back to the input: -2.25). Residuals y - .75 x = 0, 1.25, -.5, .75, centred
    on their median .375: MAD .625; its normal-consistent scale over sqrt(sum (x - 1.5)^2) = sqrt(5), times
    the span."""
    order, values = [0, 1, 2, 3], [1.0, 100.0, 10.0, 1000.0]
    scale = 0.625 / statistics.NormalDist().inv_cdf(0.75)
    se = scale / math.sqrt(5) * 3
    assert diagnose.fit(order, values) == pytest.approx((2.25, se), rel=1e-4)
    assert diagnose.fit(order, values, towards_input=True) == pytest.approx((-2.25, se), rel=1e-4)


def test_the_spread_of_the_change_across_seeds_is_of_their_mean():
    """Two seeds on exact lines (no residual): changes 2 and 4 decades; the mean's sd is |4 - 2| / 2 = 1."""
    layers = pd.DataFrame(
        {"seed": [0, 0, 0, 1, 1, 1], "order": [0, 1, 2] * 2, "m2": [1, 10, 100, 1, 100, 1e4]}
    )
    assert diagnose.trend(layers, "m2") == pytest.approx((3.0, 1.0))


def test_a_stable_forward_pass_with_a_vanishing_gradient_is_not_stable(models):
    """quiet_gradient: identity Linears keep m2 (no trend forward); each Quiet passes back 1e-3 of the
    gradient, 6 decades of grad m2 a layer."""
    cfg = ProbeConfig(model=f"{models}:quiet_gradient", input_shape=(8, 16), backward=True)
    result = diagnose.run_probe(cfg, probe.plan(cfg))
    summary = result.summary.iloc[0]
    assert summary["grad_verdict"] == "vanishing" and summary["verdict"] == "vanishing (gradient)"
    assert summary["decades"] == pytest.approx(0, abs=0.1)


@pytest.mark.parametrize("mode, fan", [("fan_in", 4 * 9), ("fan_out", 8 * 9)])
def test_a_scheme_gives_each_weight_its_fan_and_its_activations_gain(models, mode, fan):
    """kaiming-normal: std = sqrt(2 / fan), the ReLU's gain. The conv (8, 4, 3, 3): fan_in 4 x 9, fan_out
    8 x 9, its ReLU behind the BatchNorm; fc (128, 128), called first before a ReLU: sqrt(2 / 128)."""
    cfg = ProbeConfig(model=f"{models}:Reinit", input_shape=(4, 4, 4, 4), scheme="kaiming-normal", mode=mode)
    found = probe.plan(cfg)
    model = probe.build(probe.load_builder(cfg.model), cfg.model)
    probe.reinit(model, found.calls, cfg.scheme, mode, cfg.scale, torch.Generator().manual_seed(0))
    assert model.conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan), rel=0.15)
    assert model.fc.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)


def test_a_jump_on_one_seed_of_three_is_not_named_but_cannot_be_told():
    """A finding must hold on most seeds: fc jumps (m2 x0.001, RMS x0.0316) on seed 1 only."""
    layers = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1, 2, 2],
            "order": [0, 1] * 3,
            "layer": ["input", "fc"] * 3,
            "call": [1] * 6,
            "type": ["input", "Linear"] * 3,
            "m2": [1.0, 1.0, 1.0, 1e-3, 1.0, 1.0],
            "in_m2": [math.nan, 1.0] * 3,
            "finding": ["", "", "", "jump", "", ""],
        }
    )
    found = diagnose.jumps(layers)
    assert [(j.name, j.seeds) for j in found] == [("fc", 1)] and found[0].factor == pytest.approx(10**-1.5)
    said = diagnose.headline_findings(layers, {"jump": None}, found, 3, "stable", 1.0)
    assert said == ["cannot tell whether the scale jumps at fc (on 1 of 3 seeds)"]
