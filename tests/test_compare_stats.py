"""`fnd compare`'s statistics pinned against computations made here: scipy's tests, a bootstrap written out,
the TOST decision, Holm's step-down procedure (and judge's use of it), the error rates on simulated runs, the
machine keys, and which way train's loss and metric point."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, run_files
from test_compare import fake_matmul_run

from fndcli.runs import verdicts
from fndcli.runs.compare import Settings, train_rows
from fndcli.runs.judging import judge, timing_row


class _Stats:
    """scipy.stats, imported when a test first uses it (at collection: 1.1 s in every xdist worker)."""

    def __getattr__(self, name):
        if name.startswith("__"):  # pytest's collection asks each module-level object for its dunders
            raise AttributeError(name)
        from scipy import stats as module

        return getattr(module, name)


stats = _Stats()

KEY = "torch 4x4x4 float32 cpu 2t"


def test_across_runs_without_run_noise_is_yuens_test_through_the_real_command(fnd, tmp_path):
    """--run-noise 0 and 5 processes a side (too few blocks to learn a run's drift): p is scipy's one-sided
    Yuen-Welch test (20 % trimmed log samples) of 'NEW is at most 10 % slower'. Here the change is significant
    (two-sided p < 0.05) but its 90 % interval lies inside +-10 %: same, exit 0."""
    base, new = [1.0, 1.02, 0.99, 1.01, 1.03], [1.06, 1.09, 1.05, 1.08, 1.30]  # process samples, x 1e-5 s
    yuen = dict(equal_var=False, trim=0.2)
    assert stats.ttest_ind(np.log(new), np.log(base), **yuen).pvalue < 0.05
    p = stats.ttest_ind(np.log(new) - math.log(1.1), np.log(base), alternative="greater", **yuen).pvalue
    fake_matmul_run(tmp_path / "base", {"torch": [[v * 1e-5] * 3 for v in base]})
    fake_matmul_run(tmp_path / "new", {"torch": [[v * 1e-5] * 3 for v in new]}, stamp="20261130-130000")
    result = fnd(
        "compare", tmp_path / "base", tmp_path / "new", "--run-noise", "0", "--out", tmp_path / "out"
    )
    assert result.exit_code == 0, result.output
    row = run_files(tmp_path / "out", "compare")[0].set_index("key").loc[KEY]
    trimmed = lambda x: stats.trim_mean(np.log(x), 0.2)  # noqa: E731
    assert row["p"] == pytest.approx(p) and row["verdict"] == "same"
    assert row["change"] == pytest.approx(math.exp(trimmed(new) - trimmed(base)) - 1)


def test_the_run_noise_adds_to_yuens_variance():
    """With between-run variances tau^2 the statistic is Yuen's difference over sqrt(Yuen's variance + both
    tau^2): scipy's t statistic gives Yuen's variance back."""
    rng = np.random.default_rng(3)
    base, new = rng.normal(0, 0.05, 16), rng.normal(0.04, 0.05, 12)
    t = stats.ttest_ind(new, base, equal_var=False, trim=0.2)
    diff = stats.trim_mean(new, 0.2) - stats.trim_mean(base, 0.2)
    est = verdicts.across_runs(base, new)
    assert est.log_ratio == pytest.approx(diff) and est.se == pytest.approx(diff / t.statistic)
    assert est.df == pytest.approx(t.df) and verdicts.p_value(est) == pytest.approx(t.pvalue)
    wider = verdicts.across_runs(base, new, 0.02**2, 0.03**2)
    assert wider.se**2 == pytest.approx((diff / t.statistic) ** 2 + 0.02**2 + 0.03**2)


def test_run_noise_is_the_drift_between_blocks_beyond_their_scatter():
    """A run whose second half is 10 % slower (log 0.095) has tau^2 of about the variance of block means
    (0, 0, .095, .095); steady runs have about 0."""
    rng = np.random.default_rng(0)
    steady = [rng.normal(0, 0.02, 16) for _ in range(4)]
    assert verdicts.run_noise(steady) < 0.0005
    step = [np.r_[np.zeros(8), np.full(8, 0.095)] + rng.normal(0, 0.001, 16) for _ in range(4)]
    assert verdicts.run_noise(step) == pytest.approx(np.var([0, 0, 0.095, 0.095], ddof=1), rel=0.05)
    assert math.isnan(verdicts.run_noise([np.zeros(7)]))  # fewer than 2 processes a block


def _bootstrap_here(a, b, level, resamples, seed):
    """The paired percentile bootstrap of the 20 % trimmed mean of log b - log a, written out: resample
    process indices, sort, drop 3 of 16 at each end."""
    d = np.asarray(b) - np.asarray(a)
    rng = np.random.default_rng(seed)
    means = np.sort(d[rng.integers(0, len(d), (resamples, len(d)))], axis=1)[:, 3:-3].mean(axis=1)
    return np.quantile(means, [(1 - level) / 2, (1 + level) / 2])


def _yuen_one_sample(d, mu):
    """Yuen's trimmed one-sample t-test of mean(d) > mu, from scipy.stats.mstats' trimming and winsorizing."""
    n = len(d)
    h = n - 2 * int(0.2 * n)
    tm = stats.mstats.trimmed_mean(d, limits=(0.2, 0.2))
    sw2 = np.var(np.asarray(stats.mstats.winsorize(d, limits=(0.2, 0.2))), ddof=1)
    t = (tm - mu) / math.sqrt((n - 1) * sw2 / (h * (h - 1)))
    return tm, stats.t.sf(t, h - 1), 2 * stats.t.sf(abs(t), h - 1)


def test_paired_is_yuens_test_on_log_ratios_and_a_paired_bootstrap():
    """p is Yuen's one-sample trimmed t-test on the log ratios, computed here from scipy.stats.mstats; the
    interval agrees with a paired bootstrap of the trimmed mean written here; one disturbed pair barely moves
    it."""
    rng = np.random.default_rng(5)
    drift = rng.normal(0, 0.1, 16)  # the host's minute, shared by the two samples of a process
    a, b = drift + rng.normal(0, 0.02, 16), drift + 0.08 + rng.normal(0, 0.02, 16)
    b[3] += 0.5  # a neighbour took the core while B ran in process 3
    row = timing_row("k", "median s/call", np.exp(a), np.exp(b), Settings(), "", pairs=True)
    tm, p_beyond, p_two = _yuen_one_sample(b - a, math.log(1.1))
    assert row["p"] == pytest.approx(p_beyond) and row["change"] == pytest.approx(math.expm1(tm))
    assert verdicts.p_value(verdicts.paired(a, b)) == pytest.approx(_yuen_one_sample(b - a, 0)[2])
    assert abs(tm - 0.08) < 0.02  # the plain mean is 0.08 + 0.5 / 16
    low, high = _bootstrap_here(a, b, 0.95, 20000, 1)
    assert math.log1p(row["ci_low"]) == pytest.approx(low, abs=0.004)
    assert math.log1p(row["ci_high"]) == pytest.approx(high, abs=0.004)
    unpaired = verdicts.across_runs(a, b)  # the same samples unpaired: the drift swamps the change
    assert verdicts.p_value(unpaired) > 0.05 > verdicts.p_value(verdicts.paired(a, b))


def test_same_is_tost():
    """equivalent(1 - 2 alpha interval) is TOST's decision: both one-sided t-tests against -+threshold
    reject."""
    rng = np.random.default_rng(11)
    threshold, alpha, agree = 0.10, 0.05, 0
    for _ in range(300):
        d = rng.normal(rng.uniform(-0.15, 0.15), rng.uniform(0.01, 0.1), int(rng.integers(5, 20)))
        est = verdicts.Estimate(d.mean(), d.std(ddof=1) / math.sqrt(len(d)), len(d) - 1)  # the plain t's
        ours = verdicts.equivalent(*verdicts.interval(est, 1 - 2 * alpha), threshold)
        tost = (
            stats.ttest_1samp(d, math.log(1 + threshold), alternative="less").pvalue < alpha
            and stats.ttest_1samp(d, math.log(1 - threshold), alternative="greater").pvalue < alpha
        )
        agree += ours == tost
    assert agree == 300


def test_holm_is_the_step_down_procedure():
    """An adjusted p <= alpha exactly where Holm's procedure, run here, rejects: sort, compare p_(j) with
    alpha / (m - j), stop at the first that fails."""
    rng = np.random.default_rng(2)
    for _ in range(200):
        p = rng.uniform(0, 0.1, int(rng.integers(1, 8))) ** rng.uniform(0.5, 2)
        adjusted = verdicts.holm(p)
        for alpha in (0.01, 0.05, 0.1):
            rejected = set()
            for j, i in enumerate(np.argsort(p, kind="stable")):
                if p[i] > alpha / (len(p) - j):
                    break
                rejected.add(i)
            assert {i for i in range(len(p)) if adjusted[i] <= alpha} == rejected
    assert np.isnan(verdicts.holm([0.01, math.nan])[1])


def _simulated_pair(rng, shift, rows=4, processes=16, within=0.04, between=0.03):
    """Two simulated runs, `rows` benchmarks each, 16 processes: each run's level drawn with sd `between`,
    each process with sd `within` (log scale); NEW slower by `shift` on every row. The rows' records."""
    s = Settings()
    records = []
    for _ in range(rows):
        base = rng.normal(rng.normal(0, between), within, processes)
        new = rng.normal(shift + rng.normal(0, between), within, processes)
        records.append(
            timing_row(
                "k", "median s/call", np.exp(base), np.exp(new), s, "", tau2=(s.run_noise**2, s.run_noise**2)
            )
        )
    return judge(records, s)


@pytest.mark.slow
def test_error_rates_on_simulated_runs():
    """Runs of identical code whose levels move by the floor's 3 %: the gate fires on at most 1 % of 300 pairs
    (Holm over 4 rows) and calls a third or more of the rows same; a 1.3x slowdown is caught on at least 95 %
    of rows; a change of `detectable` is called REGRESSION about 4 times in 5 (one row: no correction)."""
    rng = np.random.default_rng(21)
    same = [_simulated_pair(rng, 0.0) for _ in range(300)]
    assert sum(any(r["verdict"] == "REGRESSION" for r in rows) for rows in same) <= 3
    assert [r["verdict"] for rows in same for r in rows].count("same") > 400
    slow = [r["verdict"] for _ in range(100) for r in _simulated_pair(rng, math.log(1.3))]
    assert slow.count("REGRESSION") >= 380
    change = np.median([r["detectable"] for rows in same for r in rows])
    caught = [r["verdict"] for _ in range(100) for r in _simulated_pair(rng, math.log1p(change), rows=1)]
    assert 0.65 < caught.count("REGRESSION") / 100 < 0.95


def test_runs_differing_only_in_core_count_are_different_machines(fnd, tmp_path):
    """cpu_count is a machine key: 2 cores against 4 exits 2, naming it."""
    times = {"torch": [[v * 1e-5] * 3 for v in (1.0, 1.01, 0.99, 1.02, 0.98)]}
    fake_matmul_run(tmp_path / "base", times)
    fake_matmul_run(tmp_path / "new", times, stamp="20261130-130000", cpu_count=4)
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "out")
    assert_one_line_error(result, "different machines", "cpu_count 2 vs 4", "--allow-mismatch")
    assert not (tmp_path / "out").exists()


def test_run_noise_with_two_processes_a_block_worked_out_by_hand():
    """8 processes, 4 blocks of 2 (the fewest it learns from): block means .01 .02 .11 .12, each block's
    variance .0002: tau^2 = var(block means) - .0002 / 2. A benchmark too short to cut into blocks is skipped,
    not the end."""
    import statistics

    x = [0.00, 0.02, 0.01, 0.03, 0.10, 0.12, 0.11, 0.13]
    blocks = [x[i : i + 2] for i in range(0, 8, 2)]
    by_hand = (
        statistics.variance([statistics.mean(b) for b in blocks])
        - statistics.mean([statistics.variance(b) for b in blocks]) / 2
    )
    assert by_hand == pytest.approx(0.0101 / 3 - 0.0001)
    assert verdicts.run_noise([x]) == pytest.approx(by_hand, rel=1e-9)
    assert verdicts.run_noise([np.zeros(7), x]) == pytest.approx(by_hand, rel=1e-9)


def test_run_tau2_is_the_learned_drift_never_below_the_floor():
    """Process samples (seconds) whose logs drift as above: tau^2 is that drift, above a 0.02 floor (0.0004);
    too few processes to learn from: the floor's square."""
    x = [0.00, 0.02, 0.01, 0.03, 0.10, 0.12, 0.11, 0.13]
    drift = np.var([0.01, 0.02, 0.11, 0.12], ddof=1) - 0.0002 / 2
    assert verdicts.run_tau2({"a": 1e-5 * np.exp(x), "b": [1e-5]}, 0.02) == pytest.approx(drift, rel=1e-9)
    assert verdicts.run_tau2({"a": [1e-5, 1.1e-5, 0.9e-5]}, 0.02) == pytest.approx(0.02**2)
    assert verdicts.run_tau2({"a": 1e-5 * np.exp(x)}, 0.1) == pytest.approx(0.1**2)


@pytest.mark.parametrize("factor,alternative,bound", [(0.7, "less", 0.9), (1.4, "greater", 1.1)])
def test_p_beyond_is_the_one_sided_yuen_test_against_the_threshold_on_the_changes_side(
    factor, alternative, bound
):
    """A 30 % speed-up is tested against 0.9x, a 1.4x slowdown against 1.1x: scipy's one-sided Yuen-Welch
    test."""
    rng = np.random.default_rng(7)
    base = rng.normal(0, 0.05, 12)
    new = rng.normal(math.log(factor), 0.05, 10)
    est = verdicts.across_runs(base, new)
    p = stats.ttest_ind(
        new - math.log(bound), base, equal_var=False, trim=0.2, alternative=alternative
    ).pvalue
    assert verdicts.p_beyond(est, 0.1) == pytest.approx(p, rel=1e-9) and p < 1e-4


def test_p_beyond_of_no_change_is_on_the_slowdown_side():
    """A change of exactly 0 is tested against +10 %: p = P(T > (0 - log 1.1) / se)."""
    est = verdicts.Estimate(0.0, 0.05, 10)
    assert verdicts.p_beyond(est, 0.1) == pytest.approx(stats.t.cdf(math.log(1.1) / 0.05, 10), rel=1e-12)


def test_zero_spread_through_the_real_command(fnd, tmp_path):
    """Every process of each run timed the same (--run-noise 0): no standard error, so the interval is the
    point, the p of a 30 % slowdown beyond 10 % is 0 and the smallest detectable slowdown is the threshold
    itself."""
    fake_matmul_run(tmp_path / "base", {"torch": [[1e-5] * 3] * 6})
    fake_matmul_run(tmp_path / "new", {"torch": [[1.3e-5] * 3] * 6}, stamp="20261130-130000")
    result = fnd(
        "compare", tmp_path / "base", tmp_path / "new", "--run-noise", "0", "--out", tmp_path / "out"
    )
    assert result.exit_code == 1, result.output
    row = run_files(tmp_path / "out", "compare")[0].set_index("key").loc[KEY]
    assert row["verdict"] == "REGRESSION" and row["p"] == 0.0
    assert row["change"] == pytest.approx(0.3) and row["ci_low"] == pytest.approx(0.3)
    assert row["ci_high"] == pytest.approx(0.3) and row["detectable"] == pytest.approx(0.1)


def test_zero_spread_in_the_functions():
    slow, fine, fast = (verdicts.Estimate(math.log(r), 0.0, 5) for r in (1.2, 1.05, 0.8))
    assert [verdicts.p_beyond(e, 0.1) for e in (slow, fine, fast)] == [0.0, 1.0, 0.0]
    # at the threshold: not beyond
    assert verdicts.p_beyond(verdicts.Estimate(math.log1p(0.1), 0.0, 5), 0.1) == 1.0
    assert verdicts.p_value(slow) == 0.0 and verdicts.p_value(verdicts.Estimate(0.0, 0.0, 5)) == 1.0
    assert verdicts.interval(slow, 0.95) == (math.log(1.2), math.log(1.2))
    assert verdicts.detectable(verdicts.Estimate(0.0, 0.0, 5), 0.05, 0.1) == pytest.approx(0.1)


def test_holm_adjusted_p_values_worked_out_by_hand():
    """p .3 .6 .9: 3 x .3 = .9; 2 x .6 = 1.2, capped at 1; then max(1, .9) = 1."""
    assert verdicts.holm([0.6, 0.3, 0.9]).tolist() == pytest.approx([1.0, 0.9, 1.0])


def test_paired_bootstrap_is_the_percentile_bootstrap_written_out_seeded():
    """Same seed and resamples as the helper written here: the same 90 % interval (scipy draws the resampled
    process indices as rng.integers(0, n, (resamples, n))); the same seed twice: the same interval."""
    rng = np.random.default_rng(9)
    a = rng.normal(0, 0.05, 16)
    b = a + 0.05 + rng.normal(0, 0.03, 16) + np.r_[np.zeros(15), 0.4]  # one pair disturbed: skews the sample
    ours = verdicts.paired_bootstrap(a, b, 0.90, 4, 500)
    assert ours == pytest.approx(tuple(_bootstrap_here(a, b, 0.90, 500, 4)), abs=1e-12)
    assert verdicts.paired_bootstrap(a, b, 0.90, 4, 500) == ours


def test_a_regression_needs_the_holm_adjusted_p_and_the_interval():
    """Interval beyond +10 % but the Holm-adjusted p not below alpha: not REGRESSION (the 95 % interval
    excludes 0: small). Paired, Yuen's p significant but the bootstrap's interval reaching into +-10 %: not
    improved."""
    lo, hi = math.log(1.12), math.log(1.3)
    assert verdicts.verdict(0.2, 0.08, lo, hi, 0.1, 0.35, 0.05, 0.1) == "small"
    assert verdicts.verdict(0.2, 0.01, lo, hi, 0.1, 0.35, 0.05, 0.1) == "REGRESSION"
    assert verdicts.verdict(-0.15, 0.01, math.log(0.8), math.log(0.95), -0.22, -0.03, 0.05, 0.1) == "small"
    assert verdicts.verdict(-0.15, 0.01, math.log(0.8), math.log(0.88), -0.22, -0.1, 0.05, 0.1) == "improved"


def test_judge_holm_adjusts_each_rows_p_over_the_tested_rows_only():
    """Three tested rows, each 30 % slower with an interval beyond +10 %, one-sided p .03 .04 .5, and one row
    too small to test. Holm by hand over m = 3 (the untested row is not one of them): sorted, 3 x .03 = .09;
    2 x .04 = .08, raised to the running .09; 1 x .5 = .5. Neither .09 is below alpha .05: no REGRESSION,
    though .03 and .04 alone are (the 95 % interval excludes 0: small)."""
    beyond = {"change": 0.3, "ci_low": 0.15, "ci_high": 0.45, "_tost": (math.log(1.2), math.log(1.4))}
    records = [{**beyond, "p": p} for p in (0.03, 0.04, 0.5)]
    records.insert(1, {"change": 0.3, "p": math.nan, "verdict": "insufficient"})
    judged = judge(records, Settings())
    assert [r["p"] for r in judged if r["verdict"] != "insufficient"] == pytest.approx([0.09, 0.09, 0.5])
    assert [r["verdict"] for r in judged] == ["small", "insufficient", "small", "small"]


@pytest.mark.parametrize(
    "column,before,after,verdict",
    [
        ("valid_loss", 0.50, 0.60, "REGRESSION"),  # loss +20 %: worse
        ("valid_loss", 0.50, 0.40, "improved"),  # loss -20 %: better
        ("valid_loss", 0.50, 0.53, "same"),  # +6 %: inside +-10 %
        ("valid_metric", 0.80, 0.60, "REGRESSION"),  # R^2 -25 %: worse
        ("valid_metric", 0.60, 0.80, "improved"),  # R^2 +33 %: better
        ("valid_metric", 0.80, 0.76, "same"),  # -5 %: inside +-10 %
    ],
)
def test_train_compare_reads_a_lower_loss_and_a_higher_metric_as_better(column, before, after, verdict):
    """train's final valid loss is lower-is-better and its valid metric (R^2, accuracy) higher-is-better;
    change = (NEW - BASE) / |BASE|, judged against the default +-10 %."""
    other = "valid_metric" if column == "valid_loss" else "valid_loss"
    base, new = (
        SimpleNamespace(meta={}, extras={}, rows=pd.DataFrame({column: [9.0, value], other: [1.0, 1.0]}))
        for value in (before, after)
    )
    found = {r["what"]: r for r in train_rows(base, new, Settings())}
    row = found[f"final valid {column.removeprefix('valid_')}"]
    assert row["change"] == pytest.approx((after - before) / before) and row["verdict"] == verdict
