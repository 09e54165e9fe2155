"""`fnd compare`'s statistics pinned against scipy computed here: the default alpha, the bootstrap's level, the machine keys."""
import numpy as np
import pytest
from scipy import stats

from conftest import assert_one_line_error, run_files
from fndcli.runs.compare import Settings, timing_row
from test_compare import fake_matmul_run

KEY = "torch 4x4x4 float32 cpu 2t"


def _ratio_of_medians(base, new, axis=-1):
    return np.median(new, axis=axis) / np.median(base, axis=axis)


def test_default_alpha_is_0_05_through_the_real_command(fnd, tmp_path):
    """p = 0.22 with a 12.5 % slowdown: not significant at the default --alpha 0.05, so inconclusive, exit 0."""
    base, new = [1.0, 1.1, 1.2, 1.3, 1.4], [1.15, 1.25, 1.35, 1.45, 1.55]  # process means, x 1e-5 s
    p = stats.mannwhitneyu(new, base, alternative="two-sided").pvalue
    assert 0.05 < p < 0.5 and np.median(new) / np.median(base) - 1 > 0.10  # the case is what the test needs
    fake_matmul_run(tmp_path / "base", {"torch": [[v * 1e-5] * 3 for v in base]})
    fake_matmul_run(tmp_path / "new", {"torch": [[v * 1e-5] * 3 for v in new]}, stamp="20261130-130000")
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    row = run_files(tmp_path / "out", "compare")[0].set_index("key").loc[KEY]
    assert row["verdict"] == "inconclusive" and row["p"] == pytest.approx(p)
    assert row["change"] == pytest.approx(0.125)


def test_bootstrap_interval_is_scipys_95_percent():
    """The interval is scipy.stats.bootstrap's 95 % percentile interval of the ratio of medians; it crosses
    +-10 % here (inconclusive) where the 50 % one would lie inside (same)."""
    base, new = [0.85, 0.97, 1.0, 1.03, 1.15], [0.86, 0.98, 1.0, 1.02, 1.14]
    s = Settings()

    def interval(level):
        ci = stats.bootstrap((np.array(base), np.array(new)), _ratio_of_medians, vectorized=True, paired=False,
                             confidence_level=level, n_resamples=s.resamples, method="percentile",
                             random_state=np.random.default_rng(s.seed)).confidence_interval
        return ci.low - 1, ci.high - 1
    low, high = interval(0.95)
    assert low < -0.10 and high > 0.10 and -0.10 < interval(0.5)[0] and interval(0.5)[1] < 0.10
    row = timing_row("k", "median s/call", base, new, s, "")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert row["verdict"] == "inconclusive"


def test_runs_differing_only_in_core_count_are_different_machines(fnd, tmp_path):
    """cpu_count is a machine key: 2 cores against 4 exits 2, naming it."""
    times = {"torch": [[v * 1e-5] * 3 for v in (1.0, 1.01, 0.99, 1.02, 0.98)]}
    fake_matmul_run(tmp_path / "base", times)
    fake_matmul_run(tmp_path / "new", times, stamp="20261130-130000", cpu_count=4)
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "out")
    assert_one_line_error(result, "different machines", "cpu_count 2 vs 4", "--allow-mismatch")
    assert not (tmp_path / "out").exists()
