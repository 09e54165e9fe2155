"""Speedup, % peak and crossovers on hand-built frames, against figures worked out by hand."""

import math

import pandas as pd
import pytest

from fndcli.bench.stats import (
    CROSSOVER_COLUMNS,
    above_ceiling,
    add_pct_peak,
    add_speedups,
    baseline_reason,
    ceiling_keys,
    choose_baseline,
    crossovers,
    given_ceilings,
)
from fndcli.report.figures import sig3

LADDER = ["loops", "dot", "broadcast", "einsum", "torch"]


def _frame(rows):
    """rows: (impl, device, side, median_s, min_s, max_s[, gflops]) at square shapes side^3."""
    out = []
    for impl, device, side, med, lo, hi, *gf in rows:
        out.append(
            {
                "impl": impl,
                "device": device,
                "m": side,
                "k": side,
                "n": side,
                "median_s": med,
                "min_s": lo,
                "max_s": hi,
                "gflops": gf[0] if gf else 2 * side**3 / med / 1e9,
                "dtype": "float32",
                "threads": 2,
            }
        )
    return pd.DataFrame(out)


def test_baseline_is_one_series_for_the_whole_run():
    """loops is missing at the large size, so torch (timed at both) is the baseline at both sizes."""
    frame = _frame(
        [("torch", "cpu", 4, 1.0, 1, 1), ("loops", "cpu", 4, 8.0, 8, 8), ("torch", "cpu", 512, 2.0, 2, 2)]
    )
    assert choose_baseline(frame, LADDER) == "torch"
    out = add_speedups(frame, "torch")
    assert out["speedup"].tolist() == [1.0, 0.125, 1.0] and (out["baseline"] == "torch").all()


def test_a_row_not_to_be_trusted_gets_no_speedup_and_no_pct_peak_nor_do_rows_against_it():
    """At 4^3 the baseline loops is flagged: no speedup there for anyone; at 8^3 torch is flagged: no speedup
    and no % peak for it. By hand, of a 1e-6 GFLOP/s ceiling: loops at 8^3 does 2 * 8^3 FLOPs in 16 s, 6.4e-8
    GFLOP/s, 6.4 %; torch at 4^3 2 * 4^3 in 1 s, 12.8 %."""
    frame = _frame(
        [
            ("loops", "cpu", 4, 8.0, 8, 8),
            ("torch", "cpu", 4, 1.0, 1, 1),
            ("loops", "cpu", 8, 16.0, 16, 16),
            ("torch", "cpu", 8, 2.0, 2, 2),
        ]
    ).assign(unstable=["process means spread 40 %", "", "", "min 0.1x the median"])
    speedups = add_speedups(frame, "loops")["speedup"]
    assert speedups.isna().tolist() == [True, True, False, True] and speedups[2] == 1.0
    ceiling = {"device": "cpu", "dtype": "float32", "threads": 2, "gflops": 1e-6, "gb_s": None}
    pct = add_pct_peak(frame, [ceiling])["pct_peak"]
    assert pct.isna().tolist() == [True, False, False, True] and pct[2] == pytest.approx(6.4)
    assert pct[1] == pytest.approx(12.8)
    assert above_ceiling(add_pct_peak(frame, [ceiling]), [ceiling]) == []  # none faster than 1e-6 GFLOP/s
    # of 1e-7 GFLOP/s, torch at 4^3 (1.28e-7) and at 8^3 (flagged, 2 * 8^3 in 2 s: 5.12e-7) are above it: a
    # flagged row was slowed, so it is above all the more, and names the ceiling as wrong too
    low = {**ceiling, "gflops": 1e-7}
    assert above_ceiling(add_pct_peak(frame, [low]), [low]) == [
        "torch at 4x4x4: 1.28e-07 GFLOP/s",
        "torch at 8x8x8: 5.12e-07 GFLOP/s",
    ]


def test_one_thread_by_default_only_where_every_shape_is_under_4_mflop():
    """2mkn by hand: 124x128x125 is 3,968,000 FLOPs (one thread), 125x128x125 4,000,000 and 128^3 4,194,304
    (torch's own: None); a run with one shape above takes every core."""
    from fndcli.bench.spec import Shape, auto_threads

    assert auto_threads([Shape(5, 784, 10), Shape(124, 128, 125)])[0] == 1
    assert auto_threads([Shape(125, 128, 125)])[0] is None
    every_core = auto_threads([Shape(5, 784, 10), Shape(128, 128, 128)])
    assert every_core[0] is None and every_core[1].startswith("timed on torch's own threads (every core)")


def test_baseline_ties_go_to_the_slowest_rung_then_requested_wins():
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("loops", "cpu", 4, 8.0, 8, 8)])
    assert choose_baseline(frame, LADDER) == "loops"
    assert add_speedups(frame, "loops")["speedup"].tolist() == [8.0, 1.0]
    assert choose_baseline(frame, LADDER, "torch") == "torch"
    with pytest.raises(ValueError, match="'dot' is not one of"):
        choose_baseline(frame, LADDER, "dot")


def test_baseline_on_two_devices_names_the_device():
    frame = _frame([("torch", "cuda", 4, 3.0, 3, 3), ("torch", "cpu", 4, 1.0, 1, 1)])
    assert choose_baseline(frame, LADDER) == "torch@cuda"  # the first device of the run
    assert choose_baseline(frame, LADDER, "torch") == "torch@cuda"
    assert add_speedups(frame, "torch@cpu")["speedup"].tolist() == [1 / 3, 1.0]


def _ceiling(gflops, gb_s=None, dtype="float32", threads=2, device="cpu"):
    return {
        "device": device,
        "dtype": dtype,
        "threads": threads,
        "gflops": gflops,
        "gb_s": gb_s,
        "source": "test",
    }


def test_pct_peak_is_of_the_ceiling_of_the_rows_dtype_and_threads():
    frame = _frame(
        [
            ("torch", "cpu", 5, 1e-6, 1e-6, 1e-6, 15.0),
            ("einsum", "cpu", 5, 2e-6, 2e-6, 2e-6, 7.5),
            ("torch", "cpu", 256, 1, 1, 1, 200.0),
        ]
    )
    frame.loc[1, "threads"] = 1
    frame.loc[2, "dtype"] = "float64"
    assert ceiling_keys(frame) == [("cpu", "float32", 1), ("cpu", "float32", 2), ("cpu", "float64", 2)]
    ceilings = [_ceiling(250.0), _ceiling(30.0, threads=1), _ceiling(400.0, dtype="float64")]
    assert add_pct_peak(frame, ceilings)["pct_peak"].tolist() == [6.0, 25.0, 50.0]
    assert (
        add_pct_peak(frame, ceilings[:1])["pct_peak"].tolist()[1:]
        == [pytest.approx(math.nan, nan_ok=True)] * 2
    )
    assert add_pct_peak(frame, [])["pct_peak"].isna().all()
    assert given_ceilings(frame, 1000.0)[0] == {
        "device": "cpu",
        "dtype": "float32",
        "threads": 1,
        "gflops": 1000.0,
        "gb_s": None,
        "source": "1000 GFLOP/s, --peak-gflops",
        "given": True,
    }
    assert [c["gb_s"] for c in given_ceilings(frame, 1000.0, lambda device, threads: 10.0 * threads)] == [
        10.0,
        20.0,
        20.0,
    ]


def test_a_row_above_its_ceiling_has_no_pct_peak_and_is_named():
    frame = _frame([("numba-tiled", "cpu", 1024, 1, 1, 1, 159.0), ("torch", "cpu", 1024, 1, 1, 1, 112.0)])
    out = add_pct_peak(frame, [_ceiling(112.0)])
    assert math.isnan(out["pct_peak"].iloc[0]) and out["pct_peak"].iloc[1] == 100.0  # at the ceiling is fine
    assert above_ceiling(out, [_ceiling(112.0)]) == ["numba-tiled at 1024x1024x1024: 159 GFLOP/s"]
    assert above_ceiling(add_pct_peak(frame, []), []) == []  # no ceiling: nothing above it
    from fndcli.report.bench_tables import bench_caption

    above = ["numba-tiled at 1024x1024x1024: 159 GFLOP/s"]
    measured = bench_caption(None, [_ceiling(112.0)], above=above)
    assert "faster than the ceiling, so no % peak:[/] numba-tiled at 1024x1024x1024: 159 GFLOP/s" in measured
    assert "run fnd peak --refresh" in measured  # a measured ceiling that low: a busy host
    given = bench_caption(None, given_ceilings(frame, 112.0), above=above)
    assert "--peak-gflops is below what they reached" in given and "fnd peak --refresh" not in given


def test_the_roofline_names_where_its_ceilings_came_from():
    from fndcli.report.plots import roofline_title

    frame = _frame([("torch", "cpu", 64, 1, 1, 1, 10.0)])
    assert roofline_title([_ceiling(112.0)]).endswith("(ceilings from fnd peak)")
    assert roofline_title(given_ceilings(frame, 50.0)).endswith("(ceilings from --peak-gflops)")
    assert roofline_title(given_ceilings(frame, 50.0, lambda device, threads: 20.0)).endswith(
        "(ceilings from --peak-gflops and fnd peak's bandwidth)"
    )
    named = roofline_title([_ceiling(112.0)], "Intel(R) Xeon(R) Processor, 2 cores, AVX-512")
    assert named == (
        "matmul-bench on the roofline: Intel(R) Xeon(R) Processor, 2 cores, AVX-512 (ceilings from fnd peak)"
    )
    assert "Xeon" not in roofline_title([_ceiling(112.0, device="cuda")], "Intel(R) Xeon(R) Processor")


def test_the_roofline_names_each_implementation_with_its_pct_of_the_ceiling_at_its_largest_shape(tmp_path):
    """Each implementation's legend entry gives its % peak at its point of highest intensity (none where that
    row has no % peak), and the title names the CPU."""
    from fndcli.report.plots import roofline

    frame = _frame([(i, "cpu", s, 1.0, 1, 1) for i in ("numba-tiled", "numpy", "torch") for s in (64, 1024)])
    frame["intensity"] = frame["m"] / 6  # 2 m^3 FLOPs / (3 m^2 x 4 bytes), float32
    frame["pct_peak"] = [10.0, 86.6, 12.0, 91.4, 11.0, float("nan")]
    fig = roofline(frame, [_ceiling(200.0, 40.0)], tmp_path / "r.png", "Intel(R) Xeon(R) Processor, 2 cores")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][1:] == [
        "numba-tiled: 87 % of the ceiling at 1024x1024x1024",
        "numpy: 91 % of the ceiling at 1024x1024x1024",
        "torch",
    ]
    assert "Intel(R) Xeon(R) Processor, 2 cores" in ax.get_title()
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_the_roofline_title_on_a_cpu_and_cuda_run_with_bandwidth_for_one_device_only():
    """A run on both devices still names the CPU; --peak-gflops with fnd peak's bandwidth for the CPU
    alone (none cached for CUDA) still says that bandwidth came from fnd peak."""
    from fndcli.report.plots import roofline_title

    frame = _frame([("torch", "cpu", 64, 1, 1, 1, 10.0), ("torch", "cuda", 64, 1, 1, 1, 90.0)])
    both = [_ceiling(112.0), _ceiling(900.0, device="cuda")]
    assert roofline_title(both, "Intel(R) Xeon(R) Processor").startswith(
        "matmul-bench on the roofline: Intel(R) Xeon(R) Processor ("
    )
    cpu_bandwidth = given_ceilings(frame, 50.0, lambda device, threads: 20.0 if device == "cpu" else None)
    assert roofline_title(cpu_bandwidth).endswith("(ceilings from --peak-gflops and fnd peak's bandwidth)")


def test_the_roofline_legend_takes_the_highest_intensity_row_in_any_order_and_leaves_out_untimed_ones(
    tmp_path,
):
    """The largest shape listed first, and not square: the legend gives its % peak and its m x k x n in that
    order; an implementation with no timed row has no entry (nothing of it is drawn)."""
    from fndcli.report.plots import roofline

    frame = _frame([("numpy", "cpu", 1, 1.0, 1, 1), ("numpy", "cpu", 1, 1.0, 1, 1)])
    frame[["m", "k", "n"]] = [[512, 1024, 256], [8, 8, 8]]
    frame["intensity"], frame["pct_peak"] = [40.0, 1.0], [77.0, 5.0]
    untimed = _frame([("loops", "cpu", 512, 1.0, 1, 1, float("nan"))])
    untimed["intensity"], untimed["pct_peak"] = 40.0, float("nan")
    fig = roofline(pd.concat([frame, untimed]), [_ceiling(200.0)], tmp_path / "r.png")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][1:] == [
        "numpy: 77 % of the ceiling at 512x1024x256"
    ]


def test_host_cpu_names_the_cores_and_the_vector_unit():
    import os

    from fndcli.kernels import jitenv
    from fndcli.report.plots import host_cpu

    assert host_cpu().endswith(f", {os.cpu_count()} cores, {jitenv.isa()[0]}")


def test_a_dtype_fnd_peak_does_not_measure_has_no_pct_peak_and_the_caption_says_what_to_do():
    from fndcli.bench.peak import for_bench
    from fndcli.report.bench_tables import bench_caption

    ceilings, note = for_bench([("cpu", "bfloat16", 1)])  # nothing measurable: nothing measured
    assert ceilings == [] and note.endswith("--peak-gflops sets a ceiling for the others")
    assert f"no % peak for any row: {note}" in bench_caption(None, ceilings, peak_note=note)
    assert f"no % peak for some rows: {note}" in bench_caption(None, [_ceiling(112.0)], peak_note=note)


@pytest.mark.parametrize(
    "m,k,n,dtype,intensity",
    [
        (1024, 1024, 1024, "float32", 2 * 1024**3 / (3 * 1024**2 * 4)),
        (5, 784, 10, "float32", 78400 / ((3920 + 7840 + 50) * 4)),
        (64, 64, 64, "float64", 2 * 64**3 / (3 * 64 * 64 * 8)),
    ],
)
def test_the_roofline_columns(m, k, n, dtype, intensity):
    """Intensity: 2mkn FLOPs over (mk + kn + mn) elements' bytes; the roof: min(FMA ceiling, bandwidth x
    intensity)."""
    frame = pd.DataFrame(
        [
            {
                "impl": "torch",
                "device": "cpu",
                "m": m,
                "k": k,
                "n": n,
                "dtype": dtype,
                "threads": 1,
                "gflops": 1.0,
            }
        ]
    )
    out = add_pct_peak(frame, [_ceiling(100.0, gb_s=10.0, dtype=dtype, threads=1)]).iloc[0]
    assert out["intensity"] == pytest.approx(intensity, rel=1e-12)
    assert out["roof_gflops"] == pytest.approx(min(100.0, 10.0 * intensity), rel=1e-12)
    assert out["bound"] == ("memory" if 10.0 * intensity < 100.0 else "compute")
    no_bandwidth = add_pct_peak(frame, [_ceiling(100.0, dtype=dtype, threads=1)]).iloc[0]
    assert no_bandwidth["bound"] == "" and math.isnan(no_bandwidth["roof_gflops"])


def test_crossover_needs_ranges_apart_on_both_sides():
    """b is clearly faster at 1, they overlap at 2, a is clearly faster from 4: one crossover, from 1 to 4."""
    frame = _frame(
        [
            ("a", "cpu", 1, 3.0, 2.9, 3.1),
            ("b", "cpu", 1, 1.0, 0.9, 1.1),
            ("a", "cpu", 2, 1.9, 1.0, 2.5),
            ("b", "cpu", 2, 2.0, 1.5, 2.2),
            ("a", "cpu", 4, 1.0, 0.9, 1.1),
            ("b", "cpu", 4, 2.0, 1.9, 2.1),
            ("a", "cpu", 8, 1.0, 0.9, 1.1),
            ("b", "cpu", 8, 4.0, 3.9, 4.1),
        ]
    )
    out = crossovers(frame, "all")
    assert out[["faster", "slower", "from_size", "size", "m"]].values.tolist() == [["a", "b", 1, 4, 4]]
    assert out["faster_median_s"].tolist() == [1.0] and out["slower_median_s"].tolist() == [2.0]


def test_noise_alone_makes_no_crossover():
    """The medians swap back and forth, but the ranges always overlap."""
    frame = _frame(
        [
            (impl, "cpu", s, med, 0.8, 1.2)
            for s, (ma, mb) in {1: (1.1, 0.9), 2: (0.9, 1.1), 4: (1.1, 0.9)}.items()
            for impl, med in (("a", ma), ("b", mb))
        ]
    )
    assert crossovers(frame, "all").empty


def test_crossovers_only_from_a_sweep():
    """Two shapes with the same m*k*n are different sizes; without a swept dimension there is no order."""
    frame = pd.DataFrame(
        [
            {"impl": i, "device": "cpu", "m": m, "k": k, "n": 2, "median_s": t, "min_s": t, "max_s": t}
            for i, m, k, t in [("a", 2, 8, 3.0), ("b", 2, 8, 1.0), ("a", 8, 2, 1.0), ("b", 8, 2, 3.0)]
        ]
    )
    assert crossovers(frame, None).empty
    out = crossovers(frame, "m")  # along m: 2 then 8
    assert out[["faster", "from_size", "size", "k"]].values.tolist() == [["a", 2, 8, 2]]


def test_cuda_overtakes_cpu():
    frame = _frame(
        [
            ("torch", "cuda", 16, 2e-5, 1.9e-5, 2.1e-5),
            ("torch", "cpu", 16, 1e-6, 0.9e-6, 1.1e-6),
            ("torch", "cuda", 4096, 2e-4, 1.9e-4, 2.1e-4),
            ("torch", "cpu", 4096, 0.5, 0.49, 0.51),
        ]
    )
    out = crossovers(frame, "all")
    assert out[["faster", "slower", "size"]].values.tolist() == [["torch@cuda", "torch@cpu", 4096]]


@pytest.mark.parametrize(
    "x,text",
    [
        (1.4523, "1.45"),
        (1.0, "1.00"),
        (87753.2, "87,800"),
        (0.012345, "0.0123"),
        (676.4, "676"),
        (3221.0, "3,220"),
        (9.996, "10.0"),
        (0.0, "0"),
        (math.nan, ""),
        (999_499.0, "999,000"),
        (3.95e19, "3.95e+19"),
        (-4.2e-5, "-4.20e-05"),
    ],
)
def test_speedups_print_three_significant_figures(x, text):
    assert sig3(x) == text


def test_speedups_align_on_shape_whatever_the_row_order():
    frame = _frame(
        [
            ("torch", "cpu", 4, 1.0, 1, 1),
            ("loops", "cpu", 8, 16.0, 16, 16),
            ("loops", "cpu", 4, 8.0, 8, 8),
            ("torch", "cpu", 8, 2.0, 2, 2),
        ]
    ).set_index(pd.Index([7, 3, 5, 1]))
    out = add_speedups(frame, "loops")
    assert out.loc[[7, 3, 5, 1], "speedup"].tolist() == [8.0, 1.0, 1.0, 8.0]


def test_crossovers_back_and_forth_along_k():
    """Along k (m and n fixed): a leads at k 1, b at 2, a again at 4; ranges that only touch are not apart."""
    rows = []
    for k, (ta, tb) in {1: (1.0, 2.0), 2: (2.0, 1.0), 4: (1.0, 2.0), 8: (1.5, 1.0)}.items():
        for impl, t in (("a", ta), ("b", tb)):
            lo, hi = (t - 0.25, t + 0.25) if k == 8 else (t - 0.1, t + 0.1)  # at k 8 the ranges touch at 1.25
            rows.append(
                {
                    "impl": impl,
                    "device": "cpu",
                    "m": 3,
                    "k": k,
                    "n": 5,
                    "median_s": t,
                    "min_s": lo,
                    "max_s": hi,
                }
            )
    out = crossovers(pd.DataFrame(rows), "k")
    assert out[["faster", "slower", "dim", "from_size", "size", "m", "k", "n"]].values.tolist() == [
        ["a", "b", "k", 2, 4, 3, 4, 5],
        ["b", "a", "k", 1, 2, 3, 2, 5],
    ]


def test_touching_ranges_before_are_not_a_lead():
    """b's range only touches a's at k 1, so a clearly ahead at k 2 has overtaken nothing."""
    frame = _frame(
        [
            ("a", "cpu", 1, 1.2, 1.0, 1.4),
            ("b", "cpu", 1, 0.8, 0.6, 1.0),
            ("a", "cpu", 2, 1.0, 0.9, 1.1),
            ("b", "cpu", 2, 2.0, 1.9, 2.1),
        ]
    )
    assert crossovers(frame, "all").empty
    assert (
        list(crossovers(frame, None).columns) == list(crossovers(frame, "all").columns) == CROSSOVER_COLUMNS
    )


def test_nothing_timed_has_no_baseline_and_an_unknown_impl_ranks_last():
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1)]).assign(median_s=math.nan)
    assert choose_baseline(frame, LADDER) is None
    out = add_speedups(frame, None)
    assert out["speedup"].isna().all() and (out["baseline"] == "").all()
    mine = _frame(
        [
            ("torch", "cpu", 4, 1.0, 1, 1),
            ("mine.py:mm", "cpu", 4, 3e4, 3e4, 3e4),
            ("yours.py:mm", "cpu", 4, 3.0, 3, 3),
        ]
    )
    # your kernels before torch (speedups over the first of them, not 0.00003x), but after a from-scratch rung
    assert choose_baseline(mine, LADDER) == "mine.py:mm"
    assert (
        baseline_reason(mine, "mine.py:mm", None, LADDER) == "the first of your kernels (no rung written "
        "from scratch ran)"
    )
    with_dot = pd.concat([mine, _frame([("dot", "cpu", 4, 9.0, 9, 9)])], ignore_index=True)
    assert choose_baseline(with_dot, LADDER) == "dot"
    assert baseline_reason(with_dot, "dot", None, LADDER) == "the slowest of the chapter's rungs in this run"
    assert baseline_reason(with_dot, "torch", "torch", LADDER) == "--baseline"


def test_an_unknown_baseline_error_lists_the_runs_series():
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("loops", "cpu", 4, 8.0, 8, 8)])
    with pytest.raises(ValueError, match=r"'dot' is not one of the run's implementations: torch, loops$"):
        choose_baseline(frame, LADDER, "dot")


def test_your_first_timed_kernel_beats_the_registry_even_after_kernels_that_failed():
    """Five of your kernels failed (no median); the sixth, timed, is still the baseline ahead of torch."""
    failed = [(f"k{i}.py:mm", "cpu", 4, math.nan, math.nan, math.nan) for i in range(5)]
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), *failed, ("k5.py:mm", "cpu", 4, 3.0, 3, 3)])
    assert choose_baseline(frame, LADDER) == "k5.py:mm"
    # one shape, every timed series at it: kernels that were never timed do not make it "the most shapes"
    assert baseline_reason(frame, "k5.py:mm", None, LADDER).startswith("the first of your kernels")


def test_baseline_reason_names_a_series_on_one_of_two_devices_by_its_implementation():
    frame = _frame(
        [
            ("loops", "cuda", 4, 8.0, 8, 8),
            ("loops", "cpu", 4, 9.0, 9, 9),
            ("torch", "cpu", 4, 1.0, 1, 1),
            ("torch", "cuda", 4, 1.0, 1, 1),
        ]
    )
    assert choose_baseline(frame, LADDER) == "loops@cuda"
    assert (
        baseline_reason(frame, "loops@cuda", None, LADDER) == "the slowest of the chapter's rungs in this run"
    )
    assert (
        baseline_reason(frame, "torch@cpu", None, LADDER) == "the first in fnd's registry order in this run"
    )


def test_baseline_reason_says_when_the_baseline_was_timed_at_more_shapes():
    """loops failed at 512, so torch (timed at both sizes) is the baseline, and the caption says why."""
    frame = _frame(
        [
            ("loops", "cpu", 4, 8.0, 8, 8),
            ("loops", "cpu", 512, math.nan, math.nan, math.nan),
            ("torch", "cpu", 4, 1.0, 1, 1),
            ("torch", "cpu", 512, 2.0, 2, 2),
        ]
    )
    assert choose_baseline(frame, LADDER) == "torch"
    assert baseline_reason(frame, "torch", None, LADDER) == (
        "timed at the most shapes; the first in fnd's registry order in this run"
    )


def test_ceiling_keys_are_whole_thread_counts_when_the_csv_column_is_float():
    """A failed row leaves threads blank, so the column reads as floats; a key's threads is still an integer
    (fnd peak sets NUMBA_NUM_THREADS=str(threads): '2', not '2.0')."""
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("mine.py:mm", "cpu", 4, math.nan, math.nan, math.nan)])
    frame["threads"] = [2.0, math.nan]
    frame.loc[1, "gflops"] = math.nan
    keys = ceiling_keys(frame)
    assert keys == [("cpu", "float32", 2)] and str(keys[0][2]) == "2"


def test_a_row_without_threads_gets_no_pct_peak_and_breaks_nothing():
    frame = _frame(
        [("torch", "cpu", 4, 1.0, 1, 1, 50.0), ("mine.py:mm", "cpu", 4, math.nan, math.nan, math.nan)]
    )
    frame["threads"] = [2.0, math.nan]
    frame.loc[1, "gflops"] = math.nan
    out = add_pct_peak(frame, [_ceiling(100.0, gb_s=10.0)])
    assert out["pct_peak"].iloc[0] == 50.0 and math.isnan(out["pct_peak"].iloc[1])


def test_pct_peak_and_roof_align_with_the_rows_whatever_the_index():
    """Three rows under a shuffled index, each with its own ceiling: % peak and the roof are each row's
    own."""
    frame = _frame(
        [
            ("torch", "cpu", 6, 1, 1, 1, 50.0),
            ("dot", "cpu", 6, 1, 1, 1, 20.0),
            ("torch", "cpu", 6, 1, 1, 1, 10.0),
        ]
    ).set_index(pd.Index([7, 3, 5]))
    frame.loc[3, "threads"] = 1
    frame.loc[5, "dtype"] = "float64"
    ceilings = [
        _ceiling(100.0, gb_s=1000.0),
        _ceiling(40.0, gb_s=20.0, threads=1),
        _ceiling(80.0, gb_s=1000.0, dtype="float64"),
    ]
    out = add_pct_peak(frame, ceilings)
    # 6x6x6: 432 FLOPs over 108 elements; float32 (4 bytes): intensity 1.0, float64 (8 bytes): 0.5
    assert out.loc[[7, 3, 5], "intensity"].tolist() == [1.0, 1.0, 0.5]
    assert out.loc[[7, 3, 5], "pct_peak"].tolist() == [50.0, 50.0, 12.5]
    assert out.loc[[7, 3, 5], "roof_gflops"].tolist() == [
        100.0,
        20.0,
        80.0,
    ]  # min(peak, bandwidth x intensity)
    assert out.loc[[7, 3, 5], "bound"].tolist() == ["compute", "memory", "compute"]


def test_the_roof_of_each_row_is_its_own():
    """Two shapes, one ceiling with bandwidth: the small shape is memory-bound, the large one
    compute-bound."""
    frame = pd.DataFrame(
        [
            {
                "impl": "torch",
                "device": "cpu",
                "m": s,
                "k": s,
                "n": s,
                "dtype": "float32",
                "threads": 1,
                "gflops": 1.0,
            }
            for s in (6, 1200)
        ]
    )
    out = add_pct_peak(frame, [_ceiling(100.0, gb_s=10.0, threads=1)])
    # intensity 2s^3 / (3 s^2 x 4 bytes) = s / 6: 1.0 and 200.0; the roof min(100, 10 x intensity)
    assert out["roof_gflops"].tolist() == [10.0, 100.0] and out["bound"].tolist() == ["memory", "compute"]


def test_a_row_whose_bandwidth_roof_meets_the_ceiling_exactly_is_compute_bound():
    """6x6x6 float32: intensity exactly 1 FLOP/byte; 100 GB/s x 1 = the 100 GFLOP/s ceiling: not below it."""
    frame = pd.DataFrame(
        [
            {
                "impl": "torch",
                "device": "cpu",
                "m": 6,
                "k": 6,
                "n": 6,
                "dtype": "float32",
                "threads": 1,
                "gflops": 1.0,
            }
        ]
    )
    out = add_pct_peak(frame, [_ceiling(100.0, gb_s=100.0, threads=1)]).iloc[0]
    assert out["intensity"] == 1.0 and out["roof_gflops"] == 100.0 and out["bound"] == "compute"


def test_a_row_half_a_percent_above_its_ceiling_has_no_pct_peak():
    frame = _frame([("torch", "cpu", 64, 1, 1, 1, 100.5), ("dot", "cpu", 64, 1, 1, 1, 99.5)])
    out = add_pct_peak(frame, [_ceiling(100.0)])
    assert math.isnan(out["pct_peak"].iloc[0]) and out["pct_peak"].iloc[1] == pytest.approx(99.5)
    assert above_ceiling(out, [_ceiling(100.0)]) == ["torch at 64x64x64: 100.5 GFLOP/s"]


def test_crossovers_are_listed_in_the_runs_series_order():
    """torch ran before einsum: the crossover where torch overtakes comes first (run order, not
    alphabetical)."""
    rows = []
    for k, (tt, te) in {1: (2.0, 1.0), 2: (1.0, 2.0), 4: (2.0, 1.0)}.items():
        for impl, t in (("torch", tt), ("einsum", te)):
            rows.append(
                {
                    "impl": impl,
                    "device": "cpu",
                    "m": 3,
                    "k": k,
                    "n": 5,
                    "median_s": t,
                    "min_s": t - 0.1,
                    "max_s": t + 0.1,
                }
            )
    out = crossovers(pd.DataFrame(rows), "k")
    assert out[["faster", "slower", "from_size", "size"]].values.tolist() == [
        ["torch", "einsum", 1, 2],
        ["einsum", "torch", 2, 4],
    ]
