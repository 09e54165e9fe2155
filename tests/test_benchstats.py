"""Speedup, % peak and crossovers on hand-built frames, against figures worked out by hand."""
import math

import pandas as pd
import pytest

from fndcli.bench.stats import (CROSSOVER_COLUMNS, add_pct_peak, add_speedups, baseline_reason, ceilings,
                               choose_baseline, crossovers)
from fndcli.report.tables import sig3

LADDER = ["loops", "dot", "broadcast", "einsum", "torch"]


def _frame(rows):
    """rows: (impl, device, side, median_s, min_s, max_s[, gflops]) at square shapes side^3."""
    out = []
    for impl, device, side, med, lo, hi, *gf in rows:
        out.append({"impl": impl, "device": device, "m": side, "k": side, "n": side, "median_s": med,
                    "min_s": lo, "max_s": hi, "gflops": gf[0] if gf else 2 * side ** 3 / med / 1e9})
    return pd.DataFrame(out)


def test_baseline_is_one_series_for_the_whole_run():
    """loops is missing at the large size, so torch (timed at both) is the baseline at both sizes."""
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("loops", "cpu", 4, 8.0, 8, 8), ("torch", "cpu", 512, 2.0, 2, 2)])
    assert choose_baseline(frame, LADDER) == "torch"
    out = add_speedups(frame, "torch")
    assert out["speedup"].tolist() == [1.0, 0.125, 1.0] and (out["baseline"] == "torch").all()


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


def test_ceiling_is_torch_at_a_large_shape_only():
    small = _frame([("torch", "cpu", 5, 1e-6, 1e-6, 1e-6, 15.0), ("einsum", "cpu", 5, 2e-6, 2e-6, 2e-6, 7.5)])
    assert ceilings(small) == {}
    assert add_pct_peak(small, {})["pct_peak"].isna().all()
    big = pd.concat([small, _frame([("torch", "cpu", 256, 1, 1, 1, 200.0), ("torch", "cpu", 1024, 1, 1, 1, 250.0)])])
    ceiling = ceilings(big)
    assert ceiling["cpu"][0] == 250.0 and "1024x1024x1024" in ceiling["cpu"][1]
    assert add_pct_peak(big, ceiling)["pct_peak"].tolist() == [6.0, 3.0, 80.0, 100.0]
    assert ceilings(small, peak_gflops=30.0) == {"cpu": (30.0, "--peak-gflops")}


def test_crossover_needs_ranges_apart_on_both_sides():
    """b is clearly faster at 1, they overlap at 2, a is clearly faster from 4: one crossover, from 1 to 4."""
    frame = _frame([("a", "cpu", 1, 3.0, 2.9, 3.1), ("b", "cpu", 1, 1.0, 0.9, 1.1),
                    ("a", "cpu", 2, 1.9, 1.0, 2.5), ("b", "cpu", 2, 2.0, 1.5, 2.2),
                    ("a", "cpu", 4, 1.0, 0.9, 1.1), ("b", "cpu", 4, 2.0, 1.9, 2.1),
                    ("a", "cpu", 8, 1.0, 0.9, 1.1), ("b", "cpu", 8, 4.0, 3.9, 4.1)])
    out = crossovers(frame, "all")
    assert out[["faster", "slower", "from_size", "size", "m"]].values.tolist() == [["a", "b", 1, 4, 4]]
    assert out["faster_median_s"].tolist() == [1.0] and out["slower_median_s"].tolist() == [2.0]


def test_noise_alone_makes_no_crossover():
    """The medians swap back and forth, but the ranges always overlap."""
    frame = _frame([(impl, "cpu", s, med, 0.8, 1.2) for s, (ma, mb) in {1: (1.1, 0.9), 2: (0.9, 1.1), 4: (1.1, 0.9)}.items()
                    for impl, med in (("a", ma), ("b", mb))])
    assert crossovers(frame, "all").empty


def test_crossovers_only_from_a_sweep():
    """Two shapes with the same m*k*n are different sizes; without a swept dimension there is no order."""
    frame = pd.DataFrame([{"impl": i, "device": "cpu", "m": m, "k": k, "n": 2, "median_s": t, "min_s": t, "max_s": t}
                          for i, m, k, t in [("a", 2, 8, 3.0), ("b", 2, 8, 1.0), ("a", 8, 2, 1.0), ("b", 8, 2, 3.0)]])
    assert crossovers(frame, None).empty
    out = crossovers(frame, "m")  # along m: 2 then 8
    assert out[["faster", "from_size", "size", "k"]].values.tolist() == [["a", 2, 8, 2]]


def test_cuda_overtakes_cpu():
    frame = _frame([("torch", "cuda", 16, 2e-5, 1.9e-5, 2.1e-5), ("torch", "cpu", 16, 1e-6, 0.9e-6, 1.1e-6),
                    ("torch", "cuda", 4096, 2e-4, 1.9e-4, 2.1e-4), ("torch", "cpu", 4096, 0.5, 0.49, 0.51)])
    out = crossovers(frame, "all")
    assert out[["faster", "slower", "size"]].values.tolist() == [["torch@cuda", "torch@cpu", 4096]]


@pytest.mark.parametrize("x,text", [(1.4523, "1.45"), (1.0, "1.00"), (87753.2, "87,800"), (0.012345, "0.0123"),
                                    (676.4, "676"), (3221.0, "3,220"), (9.996, "10.0"), (0.0, "0"), (math.nan, "")])
def test_speedups_print_three_significant_figures(x, text):
    assert sig3(x) == text


def test_a_256_cube_is_large_enough_for_a_ceiling():
    frame = _frame([("torch", "cpu", 256, 1, 1, 1, 180.0), ("torch", "cpu", 255, 1, 1, 1, 190.0)])
    assert ceilings(frame)["cpu"][0] == 180.0  # 255^3 is not large; 256^3 is


def test_speedups_align_on_shape_whatever_the_row_order():
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("loops", "cpu", 8, 16.0, 16, 16), ("loops", "cpu", 4, 8.0, 8, 8),
                    ("torch", "cpu", 8, 2.0, 2, 2)]).set_index(pd.Index([7, 3, 5, 1]))
    out = add_speedups(frame, "loops")
    assert out.loc[[7, 3, 5, 1], "speedup"].tolist() == [8.0, 1.0, 1.0, 8.0]


def test_crossovers_back_and_forth_along_k():
    """Along k (m and n fixed): a leads at k 1, b at 2, a again at 4; ranges that only touch are not apart."""
    rows = []
    for k, (ta, tb) in {1: (1.0, 2.0), 2: (2.0, 1.0), 4: (1.0, 2.0), 8: (1.5, 1.0)}.items():
        for impl, t in (("a", ta), ("b", tb)):
            lo, hi = (t - 0.25, t + 0.25) if k == 8 else (t - 0.1, t + 0.1)  # at k 8 the ranges touch at 1.25
            rows.append({"impl": impl, "device": "cpu", "m": 3, "k": k, "n": 5, "median_s": t, "min_s": lo, "max_s": hi})
    out = crossovers(pd.DataFrame(rows), "k")
    assert out[["faster", "slower", "dim", "from_size", "size", "m", "k", "n"]].values.tolist() == [
        ["a", "b", "k", 2, 4, 3, 4, 5], ["b", "a", "k", 1, 2, 3, 2, 5]]


def test_touching_ranges_before_are_not_a_lead():
    """b's range only touches a's at k 1, so a clearly ahead at k 2 has overtaken nothing."""
    frame = _frame([("a", "cpu", 1, 1.2, 1.0, 1.4), ("b", "cpu", 1, 0.8, 0.6, 1.0),
                    ("a", "cpu", 2, 1.0, 0.9, 1.1), ("b", "cpu", 2, 2.0, 1.9, 2.1)])
    assert crossovers(frame, "all").empty
    assert list(crossovers(frame, None).columns) == list(crossovers(frame, "all").columns) == CROSSOVER_COLUMNS


def test_nothing_timed_has_no_baseline_and_an_unknown_impl_ranks_last():
    frame = _frame([("torch", "cpu", 4, 1.0, 1, 1)]).assign(median_s=math.nan)
    assert choose_baseline(frame, LADDER) is None
    out = add_speedups(frame, None)
    assert out["speedup"].isna().all() and (out["baseline"] == "").all()
    mine = _frame([("torch", "cpu", 4, 1.0, 1, 1), ("mine.py:mm", "cpu", 4, 3e4, 3e4, 3e4),
                   ("yours.py:mm", "cpu", 4, 3.0, 3, 3)])
    # your kernels before torch (speedups over the first of them, not 0.00003x), but after a from-scratch rung
    assert choose_baseline(mine, LADDER) == "mine.py:mm"
    assert baseline_reason(mine, "mine.py:mm", None, LADDER) == "the first of your kernels (no rung written " \
                                                                  "from scratch ran)"
    with_dot = pd.concat([mine, _frame([("dot", "cpu", 4, 9.0, 9, 9)])], ignore_index=True)
    assert choose_baseline(with_dot, LADDER) == "dot"
    assert baseline_reason(with_dot, "dot", None, LADDER) == "the slowest of the chapter's rungs in this run"
    assert baseline_reason(with_dot, "torch", "torch", LADDER) == "--baseline"


def test_a_shape_with_one_small_side_is_not_large():
    """Every side must be >= LARGE_SIDE: torch's fastest row at 16x1024x1024 is not the ceiling, 512^3's is."""
    frame = pd.DataFrame([{"impl": "torch", "device": "cpu", "m": m, "k": k, "n": n, "gflops": gf}
                          for m, k, n, gf in [(512, 512, 512, 200.0), (16, 1024, 1024, 900.0)]])
    ceiling = ceilings(frame)
    assert ceiling["cpu"][0] == 200.0 and "512x512x512" in ceiling["cpu"][1]
    assert add_pct_peak(frame, ceiling)["pct_peak"].tolist() == [100.0, 450.0]
