"""fnd peak's figures without measuring: the repeat a ceiling is taken from, on a clock this test drives, and
what `--refresh` leaves in the cache (issue 30, item 12)."""

from types import SimpleNamespace

import pytest

from fndcli.bench import peak as core
from fndcli.bench import peak_worker


def test_the_ceiling_is_the_fastest_repeat_not_the_slowest(monkeypatch):
    """A ceiling is what the machine can do, so the best repeat is kept. The clock here advances by
    n x 1 ms x a neighbour's slowdown when `call(n)` runs, the slowdowns cycling 1, 3, 2 call after call, so
    any three repeats in a row see each once: the undisturbed one took n x 1 ms, whatever n calibration
    chose (the slowest took 3 n ms, their mean 2 n ms)."""
    clock = SimpleNamespace(now=0.0, calls=0, n=[])

    def call(n):
        clock.now += n * 1e-3 * (1, 3, 2)[clock.calls % 3]
        clock.calls += 1
        clock.n.append(n)

    monkeypatch.setattr(peak_worker, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    best, n = peak_worker.time_best(call, 3)
    assert clock.n[-3:] == [n] * 3  # the repeats ran at the n it returns
    assert best == pytest.approx(n * 1e-3)


def _row(what, dtype, figure):
    """A cache row as fnd writes it: fma rows in GFLOP/s, bandwidth in GB/s, over 1 s."""
    return {
        "what": what,
        "kernel": "fma x64" if what == "fma" else "triad",
        "dtype": dtype,
        "threads": 1,
        "device": "cpu",
        "isa": "test",
        "gflops": figure if what == "fma" else None,
        "gb_s": figure if what == "bandwidth" else None,
        "best_s": 1.0,
        "work": figure * 1e9,
        "repeats": 5,
        "measured_utc": "2026-01-01T00:00:00+00:00",
        "calls": 1,
    }


def test_refresh_replaces_the_rows_it_measures_and_keeps_the_rest_of_the_cache(tmp_path, monkeypatch):
    """A cache of float32 100 GFLOP/s, float64 50 GFLOP/s and 20 GB/s; `--refresh --dtype float32
    --no-bandwidth` measures float32 alone (here 120, from a stand-in for the measuring process): the cache
    then holds float32 120, and float64 50 and 20 GB/s as they were."""
    monkeypatch.setenv("FND_CACHE_DIR", str(tmp_path))
    core.store_cache(
        [_row("fma", "float32", 100.0), _row("fma", "float64", 50.0), _row("bandwidth", "float64", 20.0)]
    )
    asked = []

    def measure(device, fma, bandwidth):
        asked.append((device, fma, bandwidth))
        return [_row("fma", "float32", 120.0)]

    monkeypatch.setattr(core, "_measure", measure)
    rows, measured = core.run_peak(["float32"], [1], refresh=True, bandwidth=False)
    assert asked == [("cpu", [("float32", 1)], [])] and measured == 1
    assert [(r["dtype"], r["gflops"], r["source"]) for r in rows] == [("float32", 120.0, "measured")]
    cached = {(r["what"], r["dtype"]): r["gflops"] or r["gb_s"] for r in core.load_cache()}
    assert cached == {("fma", "float32"): 120.0, ("fma", "float64"): 50.0, ("bandwidth", "float64"): 20.0}
