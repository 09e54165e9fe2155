"""init-sweep --model --backward's gradient verdict against BatchNorm's mean-field theory (Yang et al. 2019):
a plain BatchNorm + ReLU chain measured against pi / (pi - 1) a layer, the verdict's bands and their edges."""

import math

import pandas as pd
import pytest

from fndcli.init.bntheory import AS_PREDICTED, CANNOT_TELL, GROWTH_M2, gradient_verdict

CHAIN = """
from torch import nn


def bn_chain(depth=8, width=128):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
    return nn.Sequential(*layers)
"""


def test_a_batchnorm_relu_chain_grows_the_gradient_as_the_theory_says(fnd, tmp_path):
    """The measured growth of the gradient's mean square over 8 BatchNorm + ReLU layers, from hooks on the
    model, against 8 log10(pi / (pi - 1)) = 1.33 decades: the theory's number, not fnd's."""
    (tmp_path / "chain.py").write_text(CHAIN)
    result = fnd(
        "init-sweep", "--model", f"{tmp_path / 'chain.py'}:bn_chain", "--input-shape", "256x128",
        "--backward", "--out", tmp_path / "out",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(next((tmp_path / "out").glob("*-summary.csv"))).iloc[0]
    assert summary["grad_decades"] == pytest.approx(8 * math.log10(math.pi / (math.pi - 1)), abs=0.2)
    assert summary["grad_verdict"] == AS_PREDICTED and summary["verdict"] == "stable"
    assert "as BatchNorm at init predicts (x~1.2 a layer)" in result.stdout


BOUND_15 = 15 * math.log10(GROWTH_M2)  # the bound over 15 BatchNorm calls: 2.50 decades


@pytest.mark.parametrize(
    "d, sd, expected",
    [
        (0.66, 0.22, AS_PREDICTED),  # examples/resnet.py:resnet6, one seed: inside the band
        (1.55, 0.20, AS_PREDICTED),  # where the plain band's edge (1 + 3 sd = 1.6) made seeds flip
        (BOUND_15 + 1 + 3 * 0.2 + 0.1, 0.2, CANNOT_TELL),  # within one sd of the upper edge
        (BOUND_15 + 1 + 3 * 0.2 + 0.5, 0.2, "exploding"),
        (-(1 + 3 * 0.2) - 0.1, 0.2, CANNOT_TELL),  # within one sd of the lower edge
        (-(1 + 3 * 0.2) - 0.5, 0.2, "vanishing"),
    ],
)
def test_the_verdict_bands_of_a_model_with_batchnorm(d, sd, expected):
    allowed = 1 + 3 * sd
    assert gradient_verdict(d, sd, 15, ("stable", "plain"), allowed)[0] == expected


def test_without_batchnorm_a_growth_at_the_bands_edge_cannot_be_told():
    sd = 0.2
    allowed = 1 + 3 * sd
    assert gradient_verdict(allowed + 0.1, sd, 0, ("exploding", "grew"), allowed)[0] == CANNOT_TELL
    assert gradient_verdict(allowed - 0.1, sd, 0, ("stable", "moved"), allowed)[0] == CANNOT_TELL
    assert gradient_verdict(allowed + 0.5, sd, 0, ("exploding", "grew"), allowed) == ("exploding", "grew")
    assert gradient_verdict(-allowed - 0.1, sd, 0, ("vanishing", "shrank"), allowed)[0] == CANNOT_TELL


def test_the_theorys_figures_in_the_reason_worked_by_hand():
    """pi / (pi - 1) = 1.4669 a layer in mean square, sqrt of it = 1.2112 in RMS; over 8 layers
    8 log10(1.4669) = +1.33 decades. Measured exactly that: x1.21 a layer in RMS."""
    d = 8 * math.log10(math.pi / (math.pi - 1))
    verdict, reason = gradient_verdict(d, 0.1, 8, ("stable", "plain"), 1.3)
    assert verdict == AS_PREDICTED
    assert "up to x1.21 a BatchNorm + ReLU layer, +1.33 decades over its 8 BatchNorm layers" in reason
    assert "+1.33 decades back to the input (±0.1), x1.21 a BatchNorm layer in RMS" in reason


def test_batchnorm_calls_are_counted_on_one_seed():
    from fndcli.init.bntheory import batchnorm_calls

    types = ["Linear", "BatchNorm1d", "ReLU", "BatchNorm2d"]
    layers = pd.DataFrame({"seed": [3] * 4 + [4] * 4, "type": types * 2})
    assert batchnorm_calls(layers) == 2
