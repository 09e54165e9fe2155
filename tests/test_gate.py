"""The gate: --gate's shared worker processes (real ones), compare --pair, unstable rows, keys across
checkouts."""

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, run_files
from test_compare import fake_matmul_run

from fndcli.bench.stats import busy_host, instability

KERNEL = "import torch\n\n\ndef mm(a, b):\n    return torch.mm(a, b)\n"


def test_gate_times_every_benchmark_in_each_worker_process_and_pair_compares_them(fnd, tmp_path, monkeypatch):
    """Real worker processes (--gate cut to 2 for time): each process times both kernels, in the order A B
    then B A; a kernel's row key is its reference as typed (not a path made absolute), and --pair pairs the
    processes (with 2 a side: insufficient, not judged: exit 3)."""
    from fndcli.bench import spec

    gate = spec.PRESETS["gate"]
    monkeypatch.setitem(
        spec.PRESETS,
        "gate",
        dataclasses.replace(gate, runs=dataclasses.replace(gate.runs, processes=2, values=2)),
    )
    for checkout in ("base", "head"):
        (tmp_path / checkout).mkdir()
        (tmp_path / checkout / "kern.py").write_text(KERNEL)
    monkeypatch.chdir(tmp_path)
    result = fnd(
        "matmul-bench",
        "--impl",
        "base/kern.py:mm",
        "--impl",
        "head/kern.py:mm",
        "--shape",
        "8x8x8",
        "--gate",
        "--threads",
        "1",
        "--out",
        tmp_path / "ab",
    )
    assert result.exit_code == 0, result.output
    frame, meta = run_files(tmp_path / "ab", "matmul-bench")
    assert list(frame["impl"]) == ["base/kern.py:mm", "head/kern.py:mm"] and list(frame["processes"]) == [
        2,
        2,
    ]
    assert [label.split(":")[0] for label in meta["worker_order"]] == ["in-process #1", "in-process #2"]
    suite = json.loads(next((tmp_path / "ab").glob("*.pyperf.json")).read_text())
    dates = {
        b["metadata"]["name"].split()[0]: [r["metadata"]["date"] for r in b["runs"]]
        for b in suite["benchmarks"]
    }
    first, second = dates["base/kern.py:mm"], dates["head/kern.py:mm"]
    assert first[0] < second[0] and second[1] < first[1]  # A B, then B A
    result = fnd(
        "compare", tmp_path / "ab", "--pair", "base/kern.py:mm", "head/kern.py:mm", "--out", tmp_path / "c"
    )
    assert result.exit_code == 3, result.output
    row = run_files(tmp_path / "c", "compare")[0].iloc[0]
    assert (
        row["key"] == "head/kern.py:mm 8x8x8 float32 cpu vs base/kern.py:mm 1t"
        and row["verdict"] == "insufficient"
    )


def _pair_run(directory, ratio, seed=0, n=16):
    """A --gate run of kernels a and b: each process's host speed shared by both (drift up to 30 %), b `ratio`
    times a, 1 % of process noise each."""
    rng = np.random.default_rng(seed)
    drift = 1e-5 * np.exp(rng.uniform(0, 0.3, n))
    return fake_matmul_run(
        directory,
        {
            "a": [[d * (1 + 0.01 * rng.standard_normal())] * 3 for d in drift],
            "b": [[d * ratio * (1 + 0.01 * rng.standard_normal())] * 3 for d in drift],
        },
    )


@pytest.mark.parametrize(
    "ratio,code,verdict", [(1.0, 0, "same"), (1.1, 1, "REGRESSION"), (0.9, 0, "improved")]
)
def test_pair_judges_b_against_a_in_one_run(fnd, tmp_path, ratio, code, verdict):
    """Drift between processes of up to 30 % cancels in the pairs: a copy is same, 10 % slower a REGRESSION at
    the default threshold of 5 %, exit 1, with the two-run compare's words, files and exit codes."""
    _pair_run(tmp_path / "run", ratio)
    result = fnd("compare", tmp_path / "run", "--pair", "a", "b", "--out", tmp_path / "out")
    assert result.exit_code == code, result.output
    frame, meta = run_files(tmp_path / "out", "compare")
    assert list(frame["verdict"]) == [verdict] and meta["pair"] == ["a", "b"] and meta["gated"] == code
    assert frame["detectable"].iloc[0] < 0.1 and "b against a in matmul-bench-" in result.stdout


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["run", "run", "--pair", "a", "b"], ["give two runs, BASE NEW, or one run and --pair A B"]),
        (["run"], ["give two runs"]),
        (["run", "--pair", "a", "c"], ["'c' is not in run matmul-bench-", "it ran a, b"]),
        (["run", "--pair", "a", "a"], ["'--pair'", "a against itself: give two different implementations"]),
    ],
)
def test_pair_bad_input_exits_2(fnd, tmp_path, args, fragments):
    _pair_run(tmp_path / "run", 1.0)
    result = fnd("compare", *[tmp_path / a if a == "run" else a for a in args], "--out", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists()


def test_unstable_rows_are_not_judged(fnd, tmp_path):
    """A row either run flagged is `unstable` (not gated, even 1.3x slower), with the reason; a busy host is a
    line of the header."""
    slow = {"torch": [[1.3e-5 * (1 + 0.001 * i)] * 3 for i in range(8)]}
    fake_matmul_run(tmp_path / "base", {"torch": [[1e-5 * (1 + 0.001 * i)] * 3 for i in range(8)]})
    csv = fake_matmul_run(
        tmp_path / "new",
        slow,
        stamp="20261130-130000",
        unstable=["torch at 4x4x4: min 0.01x the median", busy_host(3.9, 2)],
    )
    frame = pd.read_csv(csv)
    frame["unstable"] = "min 0.01x the median"
    frame.to_csv(csv, index=False)
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "out")
    assert result.exit_code == 3, result.output  # nothing judged is not a pass
    frame, meta = run_files(tmp_path / "out", "compare")
    row = frame.iloc[0]
    assert row["verdict"] == "unstable" and row["note"].startswith("NEW: min 0.01x the median")
    assert "NEW: load average 3.90 at the start on 2 cores" in result.stdout
    assert "NOT JUDGED: 1 of 1 row(s) (1 unstable)" in result.stdout.splitlines()[0]
    assert "geometric mean" not in result.stdout and meta["geomean_ratio"] is None


def test_a_pair_whose_process_ratios_spread_is_unstable_not_judged(fnd, tmp_path):
    """Paired in one run, the B/A ratio of each process is checked: in every other process b ran 1.6x its a (a
    neighbour on and off between the two), an IQR of the ratios 46 % of their median, over the 25 % allowed:
    unstable, not judged, exit 3."""
    rng = np.random.default_rng(0)
    drift = 1e-5 * np.exp(rng.uniform(0, 0.3, 16))
    b_over_a = [1.6 if i % 2 else 1.0 for i in range(16)]
    run = fake_matmul_run(
        tmp_path / "run",
        {"a": [[d] * 3 for d in drift], "b": [[d * r] * 3 for d, r in zip(drift, b_over_a)]},
    )
    result = fnd("compare", run, "--pair", "a", "b", "--out", tmp_path / "out")
    assert result.exit_code == 3, result.output
    row = run_files(tmp_path / "out", "compare")[0].iloc[0]
    assert row["verdict"] == "unstable" and row["note"].startswith("the B/A ratios of the processes: ")


def test_instability_flags():
    """Process means spread beyond 25 % of their median (IQR), a value under half the median, load above
    cores."""
    assert instability([1.0, 1.01, 0.99, 1.02], [1.0, 1.01, 0.99]) == ""
    assert instability([1.0, 1.5, 0.8, 2.0], [1.0]).startswith("process means spread")
    assert instability([1.0, 1.0], [1.0, 1.0, 0.3]) == "min 0.3x the median"
    assert busy_host(1.5, 2) == "" and busy_host(None, 2) == "" and "load average 2.50" in busy_host(2.5, 2)


def test_a_kernel_keyed_as_typed_compares_across_checkouts(fnd, tmp_path):
    """Runs made in two checkouts name the kernel kern.py:mm alike: the rows pair up (1.3x slower:
    REGRESSION)."""
    fake_matmul_run(tmp_path / "a", {"kern.py:mm": [[1e-5 * (1 + 0.002 * i)] * 3 for i in range(8)]})
    fake_matmul_run(
        tmp_path / "b",
        {"kern.py:mm": [[1.3e-5 * (1 + 0.002 * i)] * 3 for i in range(8)]},
        stamp="20261130-130000",
    )
    result = fnd("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "REGRESSION: kern.py:mm 4x4x4 float32 cpu 2t" in result.stderr


def _anchored_runs(directory, host, kern_ratio):
    """BASE and NEW runs of torch and kern.py:mm in shared processes; NEW's host `host` times slower in every
    process, kern `kern_ratio` times slower on top of it."""
    rng = np.random.default_rng(4)
    for side, slow, ratio, stamp in (
        ("base", 1.0, 1.0, "20261130-120000"),
        ("new", host, kern_ratio, "20261130-130000"),
    ):
        drift = slow * np.exp(rng.normal(0, 0.03, 16))  # each process's host speed, shared by both kernels
        fake_matmul_run(
            directory / side,
            {
                "torch": [[1e-5 * d * (1 + 0.005 * rng.standard_normal())] * 3 for d in drift],
                "kern.py:mm": [[8e-5 * d * ratio * (1 + 0.005 * rng.standard_normal())] * 3 for d in drift],
            },
            stamp=stamp,
        )


@pytest.mark.parametrize("kern_ratio,code,verdict", [(1.0, 0, "same"), (1.3, 1, "REGRESSION")])
def test_anchor_cancels_the_hosts_speed_between_runs(fnd, tmp_path, kern_ratio, code, verdict):
    """NEW's whole run 25 % slower (the host): absolute times see it in every row; --anchor torch judges the
    kernel relative to torch in its own processes, the anchor's row shows the host's drift, not judged."""
    _anchored_runs(tmp_path, 1.25, kern_ratio)
    absolute = fnd("compare", tmp_path / "base", tmp_path / "new", "--out", tmp_path / "abs")
    assert absolute.exit_code == 1 and "REGRESSION: torch 4x4x4" in absolute.stderr
    assert "tip: both runs timed torch in the same worker processes: --anchor torch" in absolute.stdout
    result = fnd(
        "compare", tmp_path / "base", tmp_path / "new", "--anchor", "torch", "--out", tmp_path / "out"
    )
    assert result.exit_code == code, result.output
    assert "tip:" not in result.stdout
    for side, stamp in (
        ("base", "20261130-120000"),
        ("new", "20261130-130000"),
    ):  # torch alone: nothing to anchor
        fake_matmul_run(tmp_path / "alone" / side, {"torch": [[1e-5]] * 16}, stamp=stamp)
    alone = fnd("compare", tmp_path / "alone" / "base", tmp_path / "alone" / "new", "--out", tmp_path / "o3")
    assert alone.exit_code == 0 and "tip:" not in alone.stdout, alone.output
    rows = run_files(tmp_path / "out", "compare")[0].set_index("key")
    assert rows.loc["torch 4x4x4 float32 cpu 2t", "verdict"] == "anchor"
    assert rows.loc["torch 4x4x4 float32 cpu 2t", "change"] == pytest.approx(0.25, abs=0.05)
    assert "moved" not in rows.loc["torch 4x4x4 float32 cpu 2t", "note"]  # the host moved both alike
    assert rows.loc["kern.py:mm 4x4x4 float32 cpu 2t", "verdict"] == verdict
    assert rows.loc["kern.py:mm 4x4x4 float32 cpu 2t", "what"] == "x torch"


def test_an_anchor_that_changed_itself_is_doubted(fnd, tmp_path):
    """NEW's torch twice as slow, the kernel and the host unchanged: anchored, the kernel looks 2x faster; the
    anchor's row says torch moved where the others did not."""
    rng = np.random.default_rng(5)
    for side, torch_s, stamp in (("base", 1e-5, "20261130-120000"), ("new", 2e-5, "20261130-130000")):
        fake_matmul_run(
            tmp_path / side,
            {
                "torch": [[torch_s * (1 + 0.01 * rng.standard_normal())] * 3 for _ in range(16)],
                "kern.py:mm": [[8e-5 * (1 + 0.01 * rng.standard_normal())] * 3 for _ in range(16)],
            },
            stamp=stamp,
        )
    result = fnd(
        "compare", tmp_path / "base", tmp_path / "new", "--anchor", "torch", "--out", tmp_path / "out"
    )
    rows = run_files(tmp_path / "out", "compare")[0].set_index("key")
    assert rows.loc["kern.py:mm 4x4x4 float32 cpu 2t", "verdict"] == "improved", result.output
    note = rows.loc["torch 4x4x4 float32 cpu 2t", "note"]
    # the host 80 % slower for both: the anchor moved with the others
    _anchored_runs(tmp_path / "host", 1.8, 1.0)
    assert (
        fnd(
            "compare",
            tmp_path / "host" / "base",
            tmp_path / "host" / "new",
            "--anchor",
            "torch",
            "--out",
            tmp_path / "out2",
        ).exit_code
        == 0
    )
    assert (
        "moved"
        not in run_files(tmp_path / "out2", "compare")[0]
        .set_index("key")
        .loc["torch 4x4x4 float32 cpu 2t", "note"]
    )
    assert re.fullmatch(
        r"torch moved \+(99|100|101)% while the others' medians moved [+-][01]%: if torch itself "
        r"changed, compare without --anchor",
        note,
    ), note


def test_a_reader_that_goes_early_leaves_the_exit_code_alone(tmp_path):
    """`fnd compare ... | head -1`: the reader is gone before fnd's first line. fnd still finishes, writes its
    files and exits with its own code (0: --anchor sees through the host's 25 %), where click would exit 1 for
    the broken pipe."""
    _anchored_runs(tmp_path, 1.25, 1.0)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fndcli", "compare", tmp_path / "base", tmp_path / "new", "--anchor", "torch"]
        + ["--out", out],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    _, err = proc.communicate()
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err
    assert len(run_files(out, "compare")[0]) == 2


def test_anchor_bad_input_exits_2(fnd, tmp_path):
    _anchored_runs(tmp_path, 1.0, 1.0)
    result = fnd(
        "compare", tmp_path / "base", tmp_path / "new", "--anchor", "einsum", "--out", tmp_path / "out"
    )
    assert_one_line_error(
        result, "Invalid value for '--anchor'", "--anchor einsum must be an implementation both"
    )
    result = fnd(
        "compare",
        tmp_path / "base",
        "--pair",
        "torch",
        "kern.py:mm",
        "--anchor",
        "torch",
        "--out",
        tmp_path / "out",
    )
    assert_one_line_error(result, "--pair already judges B relative to A")
    assert not (tmp_path / "out").exists()


def test_instability_on_timings_in_seconds():
    """The flags are ratios, whatever the unit: 10 us timings within 1 % are stable; a fall to 0.3x is
    flagged."""
    assert instability([1e-5, 1.01e-5, 0.99e-5, 1.02e-5], [1e-5, 1.01e-5, 0.99e-5]) == ""
    assert instability([2e-5] * 4, [2e-5, 2e-5, 0.6e-5]) == "min 0.3x the median"


def test_instability_names_the_spread_of_the_process_means():
    """5 process means, sorted 0.8 1.0 1.2 1.9 2.5: quartiles are the 2nd and 4th values (1.0, 1.9; numpy's
    linear interpolation lands on them exactly), the median the 3rd (1.2): IQR / median = 0.9 / 1.2 = 75 %."""
    from scipy import stats

    means = [1.2e-5, 2.5e-5, 0.8e-5, 1.9e-5, 1.0e-5]  # in the order the processes ran
    assert stats.iqr(means) / np.median(means) == pytest.approx(0.75)
    assert instability(means, [1e-5]) == "process means spread 75 % of their median (IQR)"
    both = instability(means, [1e-5, 1e-5, 0.2e-5])
    assert both == "process means spread 75 % of their median (IQR); min 0.2x the median"


def test_instability_thresholds_are_strict():
    """Exactly 25 % IQR (0.875 to 1.125 around 1.0) and a fastest value exactly half the median are not
    flagged: the flags are for *beyond* those; nor is a load average equal to the cores."""
    assert instability([0.5, 0.875, 1.0, 1.125, 2.0], [1.0, 1.0, 0.5]) == ""
    assert instability([0.5, 0.875, 1.0, 1.126, 2.0], [1.0, 1.0, 0.499]) != ""
    assert busy_host(2.0, 2) == "" and busy_host(2.01, 2) != ""


def test_a_pair_whose_processes_fall_in_two_regimes_is_unstable_not_a_verdict(fnd, tmp_path):
    """A 4x overloaded host: in each process most values ran on a quarter of a core and the odd one got the
    core to itself; the fastest value of each is then a lottery. b is 1.3x a, yet its lucky values (one in
    each process) land at a's: the pair must not read "improved" or "same" (it did, p 2e-7, on this VM), but
    unstable, exit 3, naming the two regimes."""
    a = [[4e-5, 4.1e-5, 1e-5, 4.2e-5] for _ in range(16)]
    b = [[5.2e-5, 5.3e-5, 0.9e-5, 5.4e-5] for _ in range(16)]
    run = fake_matmul_run(tmp_path / "run", {"a": a, "b": b})
    result = fnd("compare", run, "--pair", "a", "b", "--out", tmp_path / "out")
    assert result.exit_code == 3, result.output
    row = run_files(tmp_path / "out", "compare")[0].iloc[0]
    assert row["verdict"] == "unstable" and row["note"].startswith("A: min 0.25x the median; B: min 0.17x")
    # too few processes comes first, whatever their values: re-running with --gate is the remedy either way
    few = fake_matmul_run(tmp_path / "few", {"a": a[:2], "b": b[:2]})
    result = fnd("compare", few, "--pair", "a", "b", "--out", tmp_path / "out2")
    assert run_files(tmp_path / "out2", "compare")[0].iloc[0]["verdict"] == "insufficient"


def test_an_anchored_row_too_few_processes_can_judge_shows_ratios_not_seconds(fnd, tmp_path):
    """Two --quick-like runs (2 processes each): insufficient, not judged. Anchored, the row is 'x torch': its
    base and new are the kernel's times over torch's (8x here), not its seconds (8e-5 read as a ratio)."""
    for side, stamp in (("base", "20261130-120000"), ("new", "20261130-130000")):
        fake_matmul_run(
            tmp_path / side,
            {"torch": [[1e-5] * 3, [1.1e-5] * 3], "kern.py:mm": [[8e-5] * 3, [8.8e-5] * 3]},
            stamp=stamp,
        )
    result = fnd("compare", tmp_path / "base", tmp_path / "new", "--anchor", "torch", "--out", tmp_path / "o")
    assert result.exit_code == 3, result.output
    row = run_files(tmp_path / "o", "compare")[0].set_index("key").loc["kern.py:mm 4x4x4 float32 cpu 2t"]
    assert row["verdict"] == "insufficient" and row["what"] == "x torch"
    assert row["base"] == pytest.approx(8.0) and row["new"] == pytest.approx(8.0)
