"""The activation statistics both init-sweep modes share (fndcli.init.stats), against hand-worked figures."""

import math

import numpy as np
import pytest
import torch

from fndcli.init import probe, stats, sweep

X = [-2.0, -0.05, 0.0, 2.05, 5.0]
# By hand: n 5, sum 5, so mean 1; sum of squares 4 + 0.0025 + 0 + 4.2025 + 25 = 33.205, m2 6.641;
# squared deviations 9 + 1.1025 + 1 + 1.1025 + 16 = 28.205 over n - 1 = 4: std sqrt(7.05125).
# Zero: one of five; near zero (|x| <= 0.05, the bound included): -0.05 and 0, two of five.
MOMENTS = {"mean": 1.0, "m2": 6.641, "std": math.sqrt(7.05125)}
SHARES = {"frac_zero": 0.2, "frac_near_zero": 0.4}


def _sweep_stats(x):
    return {k: v.item() for k, v in sweep.layer_stats(x.reshape(1, 1, -1)).items()}  # (layers, batch, width)


def _probe_stats(x):
    sums = stats.Sums(None)
    sums.add(x)
    return sums.stats()


@pytest.mark.parametrize("mode", [_sweep_stats, _probe_stats], ids=["stacks", "--model"])
def test_both_modes_give_the_hand_worked_mean_std_and_shares(mode):
    got = mode(torch.tensor(X, dtype=torch.float64))
    assert {k: got[k] for k in MOMENTS} == pytest.approx(MOMENTS, rel=1e-12)
    assert {k: got[k] for k in SHARES} == pytest.approx(SHARES, rel=1e-7)  # the stacks' shares are float32
    assert got["std"] == pytest.approx(torch.tensor(X, dtype=torch.float64).std().item(), rel=1e-12)


def test_sample_std_takes_floats_and_rows_and_divides_by_one_for_one_value():
    assert stats.sample_std(5, 1.0, 6.641).item() == pytest.approx(math.sqrt(7.05125), rel=1e-12)
    mean, m2 = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([6.641, 4.0], dtype=torch.float64)
    rows = stats.sample_std(5, mean, m2)
    assert rows.tolist() == pytest.approx([math.sqrt(7.05125), math.sqrt(5.0)], rel=1e-12)
    assert stats.sample_std(1, 3.0, 9.0).item() == 0.0  # var 0 over max(n - 1, 1) = 1, not 0 / 0
    assert stats.sample_std(2, 0.1, 0.01).item() == 0.0  # 0.01 - 0.1 * 0.1 rounds to -1.7e-18: clamped


def test_an_overflowed_output_s_std_is_inf_with_model():
    """--model reports an overflow's std as inf (its m2), where torch.std would say nan."""
    assert _probe_stats(torch.tensor([1.0, math.inf]))["std"] == math.inf


def test_both_modes_histogram_log10_abs_x_where_worked_by_hand():
    """log10|x|: 0.301 (2), -1.301 (0.05), -inf (0), 0.312 (2.05), 0.699 (5)."""
    x = torch.tensor(X, dtype=torch.float64)
    # stacks: the finite range widened to whole decades, one spare each side: [-3, 2], 60 bins of 1/12 decade
    counts, log_range = sweep.heatmap_counts(x.reshape(1, 1, -1))
    assert log_range == (-3.0, 2.0) and counts.shape == (1, sweep.HIST_BINS)
    assert {int(i): int(c) for i, c in enumerate(counts[0]) if c} == {0: 1, 20: 1, 39: 2, 44: 1}
    # --model: [-30, 30] in 120 bins of half a decade
    assert probe.HIST_RANGE == (-30.0, 30.0) and probe.HIST_BINS == 120
    assert {int(i): int(c) for i, c in enumerate(probe.histogram(x)) if c} == {0: 1, 57: 1, 60: 2, 61: 1}


def test_zeros_and_what_underflows_go_first_inf_nan_and_what_overflows_last():
    logs = stats.log10_abs(torch.tensor([0.0, 1e-40, math.inf, -math.inf, math.nan, 1e40, 1.0]))
    counts = stats.log10_histogram(logs, -30.0, 30.0, 120)
    assert {int(i): int(c) for i, c in enumerate(counts) if c} == {0: 2, 60: 1, 119: 4}
    rows = stats.log10_histogram(torch.stack([logs, logs]), -30.0, 30.0, 120)
    assert rows.shape == (2, 120) and np.array_equal(rows[1], counts)
