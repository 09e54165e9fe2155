"""`fnd train --lr-find`: fastai's sweep, checked against the theory of gradient descent on a linear model
(torch.linalg.eigvalsh), its valley rule, bad input, show and compare."""

import pandas as pd
import pytest
import torch
from conftest import assert_rejected, run_files

from fndcli.backprop.lrfind import END_LR, NUM_IT, START_LR, valley
from fndcli.backprop.train import make_data
from fndcli.settings import TrainConfig

LINEAR = ["--lr-find", "--hidden", "0", "--n-in", "20", "--samples", "3200"]


def _bound(cfg):
    """1 / lambda_max(X^T X / N), X the training inputs with a column of ones (the bias), in float64: above it
    full-batch gradient descent on mean((Xw - y)^2) diverges (its Hessian is 2 X^T X / N: lr > 2 / lambda)."""
    x, _, _, _ = make_data(cfg)
    X = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)  # (N, n_in + 1)
    return 1 / torch.linalg.eigvalsh(X.T @ X / len(X)).max().item()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_linear_models_sweep_diverges_within_2x_of_the_bound_and_suggests_below_it(fnd, tmp_path, seed):
    result = fnd("train", *LINEAR, "--seed", seed, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    rows, meta = run_files(tmp_path, "train")
    bound = _bound(TrainConfig(hidden=(), n_in=20, samples=3200, seed=seed))
    assert bound / 2 <= meta["diverged_lr"] <= 2 * bound, (meta["diverged_lr"], bound)
    assert meta["suggestion"] < bound and meta["stop_lr"] >= meta["diverged_lr"]
    # fastai's schedule: 1e-7 * (10 / 1e-7) ** (i / 100), stopped by the smoothed loss before step 100
    i = rows["step"].to_numpy()
    assert torch.allclose(
        torch.tensor(rows["lr"].to_numpy()), START_LR * (END_LR / START_LR) ** torch.tensor(i / NUM_IT)
    )
    assert len(rows) < NUM_IT and rows["smoothed"].iloc[-1] > 4 * rows["smoothed"].iloc[:-1].min()
    assert f"suggested rate (valley): {meta['suggestion']:.3g}" in result.stdout


def test_valley_takes_two_thirds_of_the_longest_decreasing_stretch():
    losses = [5, 6, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.9, 0.8, 0.7, 3, 9]  # decreasing from index 1 (6) to 11 (0.7)
    start, end = 0, 11  # fastai's valley measures from one before the stretch's first point
    sections = (end - start) / 3
    assert valley(losses) == start + int(sections) + int(sections / 2) == 4


def test_valley_on_a_stretch_of_twelve():
    """Decreasing from index 1 (6) to 12 (0.5), 12 points: from one before it (0), 12 / 3 + 12 / 6 = 6."""
    assert valley([5, 6, 5.5, 5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.5, 9]) == 6


def test_valley_counts_only_strictly_decreasing_losses():
    """fastai's `<`: 3, 2, 1 is the stretch (2, 2, 2 is flat): one before it, index 1, + int(3 / 3)."""
    assert valley([3, 2, 2, 2, 1, 5]) == 2


def test_valley_of_a_two_point_stretch_at_the_start_is_its_first_point():
    """2, 1 then rising: one before the stretch (-1) + int(2 / 3) + int(2 / 6) is -1, which as an index would
    be the last, highest rate (fastai's valley returns lrs[-1]); the suggestion is the stretch's start."""
    assert valley([2, 1, 3, 4]) == 0


def test_the_sweeps_figures_read_from_its_rows_worked_by_hand():
    """20 steps at fastai's rates (10^(-7 + 8 i / 100)): the batch loss passes 4x the lowest before it at
    step 1 (5 > 4 x 1); the raw loss is lowest at step 3, the smoothed at 19; valley reads steps 10-14 only
    (the first 10 and last 5 left out): all decreasing, from one before it (-1) + int(5 / 3): step 10."""
    from fndcli.backprop.lrfind import COLUMNS, _read

    smooth = [9.0] * 10 + [5, 4, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1]
    loss = [1.0, 5.0, 0.5, 0.01] + [0.9] * 16
    lr = [10 ** (-7 + 8 * i / 100) for i in range(20)]
    frame = pd.DataFrame({"step": range(20), "lr": lr, "loss": loss, "smoothed": smooth})[COLUMNS]
    suggestion, stop_lr, stop_step, min_lr, diverged_lr = _read(frame)
    assert (stop_lr, stop_step) == (None, None)
    assert suggestion == pytest.approx(10**-6.2) and min_lr == pytest.approx(10 ** (-7 + 8 * 19 / 100))
    assert diverged_lr == pytest.approx(10**-6.92)
    stopped = frame.iloc[:4].assign(smoothed=[3.0, 2.0, 1.0, 5.0])  # 5 > 4 x 1 at the last step
    assert _read(stopped)[:3] == (None, pytest.approx(10**-6.76), 3)


def test_lr_find_runs_are_shown_and_compared(fnd, tmp_path):
    for side in ("a", "b"):
        ran = fnd(
            "train", "--lr-find", "--hidden", "8", "--n-in", "5", "--samples", "400", "--out", tmp_path / side
        )
        assert ran.exit_code == 0, ran.output
    shown = fnd("show", tmp_path / "a")
    assert shown.exit_code == 0 and "suggested rate (valley)" in shown.stdout
    compared = fnd("compare", tmp_path / "a", tmp_path / "b", "--format", "csv", "--out", tmp_path / "c")
    assert compared.exit_code == 0, compared.output  # one seed, one sweep: the same rates, row for row
    assert "lr-find,suggested lr (valley)" in compared.stdout and ",same," in compared.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--lr-find", "--lr", "0.1"], "is not for --lr-find"),
        (["--lr-find", "--stats", "3"], "is not for --lr-find"),
        (["--lr-find", "--no-check-autograd"], "'--no-check-autograd': is not for --lr-find"),  # as typed
        (["--lr-find", "--check-autograd"], "'--check-autograd': is not for --lr-find"),
        (["--hidden", "0", "--hidden", "8"], "must be the only --hidden"),
    ],
)
def test_bad_lr_find_input_is_one_line(fnd, tmp_path, args, fragment):
    assert_rejected(fnd, tmp_path, "train", args, fragment)
