"""fnd peak's figures without measuring: the repeat a ceiling is taken from, on a clock this test drives, and
what `--refresh` leaves in the cache (issue 30, item 12)."""

from types import SimpleNamespace

import pytest
from conftest import run_files

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


def test_refresh_replaces_the_rows_it_measures_and_keeps_the_rest_of_the_cache(fnd, tmp_path, monkeypatch):
    """A cache of float32 100 GFLOP/s, float64 50 GFLOP/s and 20 GB/s; `fnd peak --refresh --dtype float32
    --no-bandwidth` measures float32 alone (here 120, from a stand-in for the measuring process), though the
    cache holds it: the cache then holds float32 120, and float64 50 and 20 GB/s as they were."""
    monkeypatch.setenv("FND_CACHE_DIR", str(tmp_path))
    core.store_cache(
        [_row("fma", "float32", 100.0), _row("fma", "float64", 50.0), _row("bandwidth", "float64", 20.0)]
    )
    asked = []

    def measure(device, fma, bandwidth):
        asked.append((device, fma, bandwidth))
        return [_row("fma", "float32", 120.0)]

    monkeypatch.setattr(core, "_measure", measure)
    args = ("peak", "--dtype", "float32", "--threads", "1", "--no-bandwidth", "--no-history")
    result = fnd(*args, "--refresh", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert asked == [("cpu", [("float32", 1)], [])]
    rows, meta = run_files(tmp_path / "out", "peak")
    assert meta["measured_rows"] == 1 and meta["config"]["refresh"] is True
    assert rows[["dtype", "gflops", "source"]].values.tolist() == [["float32", 120.0, "measured"]]
    cached = {(r["what"], r["dtype"]): r["gflops"] or r["gb_s"] for r in core.load_cache()}
    assert cached == {("fma", "float32"): 120.0, ("fma", "float64"): 50.0, ("bandwidth", "float64"): 20.0}


def _at(row, threads):
    return {**row, "threads": threads}


def test_ceilings_that_disagree_are_named_by_hand(monkeypatch):
    """Two physical cores: 2 threads must run 0.8 x 2 = 1.6x to 2 / 0.8 = 2.5x one thread's FMA rate, and
    float64 0.4x to 0.625x float32's. Only a disagreement that a row measured now takes part in is named."""
    from fndcli import machine

    monkeypatch.setattr(machine, "physical_cores", lambda: 2)
    one = _row("fma", "float32", 100.0)

    def named(*rows, fresh_rows=None):
        keys = {core._row_key(r) for r in (fresh_rows if fresh_rows is not None else rows)}
        return core.disagreements(rows, keys)

    assert named(one, _at(_row("fma", "float32", 190.0), 2)) == []  # 1.9x
    (busy,) = named(one, _at(_row("fma", "float32", 125.0), 2))  # issue 30's busy host: 1.25x
    assert busy == (
        "float32 at 2 threads 125 GFLOP/s is 1.25x 1 thread's 100 (on 2 physical cores: 1.6x to 2.5x)"
    )
    (low_one,) = named(one, _at(_row("fma", "float32", 260.0), 2))  # 2.6x: the one-thread row is the low one
    assert "2.60x 1 thread's 100" in low_one
    assert named(one, _row("fma", "float64", 50.0)) == []  # 0.5x
    (lanes,) = named(one, _row("fma", "float64", 70.0))
    assert (
        lanes
        == "float64 at 1 thread(s) 70 GFLOP/s is 0.70x float32's 100 (half the SIMD lanes: 0.4x to 0.625x)"
    )
    cached_only = [one, _at(_row("fma", "float32", 125.0), 2)]
    assert named(*cached_only, fresh_rows=[_row("bandwidth", "float64", 20.0)]) == []
    monkeypatch.setattr(machine, "physical_cores", lambda: 1)  # SMT siblings on one core: 2 threads ~1x
    assert named(one, _at(_row("fma", "float32", 105.0), 2)) == []


def test_a_ceiling_measured_on_a_busy_host_is_not_cached_and_fnd_peak_says_why(fnd, tmp_path, monkeypatch):
    """The cache holds float32 at 1 thread, 100 GFLOP/s; fnd peak --threads 2 measures 2 threads at 125 (a
    neighbour held a core): the real command shows it, says it was not cached and why, exit 0; the cache is
    as it was, and matmul-bench's % peak takes no ceiling from such a measurement."""
    from fndcli import machine

    monkeypatch.setattr(machine, "physical_cores", lambda: 2)
    monkeypatch.setenv("FND_CACHE_DIR", str(tmp_path / "cache"))
    core.store_cache([_row("fma", "float32", 100.0)])
    monkeypatch.setattr(core, "_measure", lambda device, fma, bw: [_at(_row("fma", "float32", 125.0), 2)])
    result = fnd("peak", "--dtype", "float32", "--threads", "2", "--no-bandwidth", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "1 row(s) measured now, not cached: float32 at 2 threads 125 GFLOP/s is 1.25x" in said
    assert "fnd peak --refresh on a quiet host measures again" in said and "(cached)" not in said
    frame, meta = run_files(tmp_path / "out", "peak")
    assert meta["cache_refused"].startswith("not cached: float32 at 2 threads")
    assert frame.set_index("threads").loc[2, "source"] == "measured, not cached"
    assert frame["load_avg"].notna().sum() == 1  # the row measured now records its load; the cached one none
    assert [(r["threads"], r["gflops"]) for r in core.load_cache()] == [(1, 100.0)]
    ceilings, note = core.for_bench([("cpu", "float32", 2)])
    assert ceilings == [] and note.startswith("the ceilings measured now disagree, so no % peak: not cached")


def test_a_full_disk_loses_the_cache_not_the_run(fnd, tmp_path, monkeypatch):
    """The disk fills as the cache is written: fnd peak still shows and writes what it measured, exit 0, says
    the cache was not written and why (path and errno), and leaves the old cache and no temporary."""
    import errno

    from conftest import fail_on_call

    monkeypatch.setenv("FND_CACHE_DIR", str(tmp_path / "cache"))
    core.store_cache([_row("fma", "float64", 50.0)])
    monkeypatch.setattr(core, "_measure", lambda device, fma, bw: [_row("fma", "float32", 100.0)])
    fail_on_call(monkeypatch, core.json, "dump", 1, OSError(errno.ENOSPC, "No space left on device"))
    result = fnd("peak", "--dtype", "float32", "--threads", "1", "--no-bandwidth", "--out", tmp_path / "out")
    assert result.exit_code == 0 and not result.stderr, result.output
    said = "".join(result.stdout.split())  # the table's width wraps a long path anywhere, even inside a word
    expected = f"not cached: cannot write {tmp_path / 'cache' / 'peak.json'}: [Errno 28] No space left"
    assert "".join(expected.split()) in said
    assert [(r["dtype"], r["gflops"]) for r in core.load_cache()] == [("float64", 50.0)]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["peak.json"]
    assert run_files(tmp_path / "out", "peak")[0]["gflops"].tolist() == [100.0]


def test_the_caption_says_whether_the_rows_measured_now_went_into_the_cache():
    import pandas as pd

    from fndcli.report.bench_tables import peak_caption

    rows = pd.DataFrame([_row("fma", "float32", 100.0), _row("fma", "float64", 50.0)])
    assert "1 row(s) measured now (added to the cache), 1 from the cache /c" in peak_caption(rows, 1, "/c")
    refused = peak_caption(rows, 1, "/c", refused="not cached: x")
    assert "1 row(s) measured now (not written to the cache), 1 from the cache /c" in refused
    assert "0 row(s) measured now, 2 from the cache /c" in peak_caption(rows, 0, "/c")
    assert "measured now; cached in /c" in peak_caption(rows, 2, "/c")
