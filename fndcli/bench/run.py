"""The core of `fnd matmul-bench`: check each kernel against float64 `a @ b`, then time it with pyperf.

Flow for one run:
1. For every (impl, device, shape), estimate the cost from the shape (`Impl.estimate_seconds`)
   and skip what would take longer than `max_seconds`.
2. Run each remaining implementation once on seeded inputs and compare with float64
   `a @ b` on the same inputs; time a few calls to choose how many calls make one value
   (a compiled kernel's first call is its compile, reported as compile_s).
3. Run the pyperf worker (`fndcli.bench.worker`) as a subprocess, once per group of
   benchmarks that share pyperf settings (see `Preset`); it appends each finished
   benchmark to one JSON file, so a Ctrl-C keeps what finished.
4. Join correctness and timings into one row per (impl, device, shape); add GFLOP/s, and
   the figures of `fndcli.bench.stats`: speedup over a named baseline, pct_peak of a named
   ceiling, and, for a sweep, the crossovers between series.

An implementation that raises, returns the wrong shape or a wrong result is a row with
correct False and the reason in `error`; it is not timed.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyperf
import torch

from fndcli.bench import blas, here, peak, processes
from fndcli.bench import stats as benchstats
from fndcli.bench.check import check_impl, probe_spec, reference_case
from fndcli.bench.processes import BenchError
from fndcli.bench.spec import PRESETS, BenchSpec, benchmark_name, estimate_run_seconds
from fndcli.kernels.registry import IMPLS, resolve
from fndcli.memory import stops

COLUMNS = benchstats.COLUMNS


@dataclass
class BenchResult:
    rows: pd.DataFrame
    suite: pyperf.BenchmarkSuite | None  # the benchmarks that finished
    crossovers: pd.DataFrame = None  # benchstats.CROSSOVER_COLUMNS; empty unless a sweep ran
    pyperf_args: list = field(default_factory=list)  # one list per worker run
    interrupted: bool = False
    ceilings: list = field(default_factory=list)  # behind pct_peak: fndcli.bench.peak.for_bench's dicts
    error: str | None = None  # out of memory, or a pyperf worker that failed; the rows before it are kept
    tracebacks: dict = field(default_factory=dict)  # {implementation: the user's traceback}, once each
    order: list = field(default_factory=list)  # the worker runs, in the order they ran (schedule's labels)
    peak_note: str | None = None  # why some rows have no ceiling (no pct_peak)
    blas: list = field(default_factory=list)  # 'BENCHMARK: BLAS' the workers named (processes.blas_named)


@dataclass
class _Run:
    """What a run has made so far; Ctrl-C, out of memory or a failing worker keeps all of it."""

    rows: dict = field(default_factory=dict)  # (impl, device, shape) -> row, in registry order
    specs: list = field(default_factory=list)  # (BenchSpec, Runs) of every correct check, to time
    tracebacks: dict = field(default_factory=dict)
    interrupted: bool = False
    error: str | None = None
    suite: pyperf.BenchmarkSuite | None = None
    pyperf_args: list = field(default_factory=list)
    order: list = field(default_factory=list)


def run_bench(cfg, log=lambda msg: None):
    """Check and time every (impl, shape) of cfg; returns rows in registry order.

    Ctrl-C keeps every check that ran and every timing that finished. Running out of memory, or a pyperf
    worker that fails, stops the run there with `error` set, keeping every row made before it."""
    run, before = _Run(), torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        with blas.limit(cfg.threads):  # numpy's BLAS and OpenMP's pools too, as the workers; restored after
            _check_all(cfg, run, log)
    except KeyboardInterrupt:
        run.interrupted, run.specs = True, []
    finally:
        torch.set_num_threads(before)  # a library call leaves torch as it found it; the timing is in workers
    if run.specs:
        _time_all(cfg, run, log)
    frame = _frame(run.rows, processes.timings(run.suite), run.interrupted)
    frame = benchstats.add_speedups(frame, benchstats.choose_baseline(frame, list(IMPLS), cfg.baseline))
    ceilings, peak_note = (
        (benchstats.given_ceilings(frame, cfg.peak_gflops, peak.cached_bandwidth()), None)
        if cfg.peak_gflops
        else peak.for_bench(benchstats.ceiling_keys(frame), log)
    )
    frame = benchstats.add_pct_peak(frame, ceilings)[COLUMNS]
    return BenchResult(
        frame,
        run.suite,
        benchstats.crossovers(frame, cfg.sweep_dim),
        run.pyperf_args,
        run.interrupted,
        ceilings,
        run.error,
        run.tracebacks,
        run.order,
        peak_note,
        processes.blas_named(run.suite),
    )


def _check_all(cfg, run, log):
    """Check every (impl, device, shape) the cost guard lets through, into run.rows and run.specs; stop at the
    first out of memory, with its row and run.error saying so."""
    checker, threads = _Checker(cfg), torch.get_num_threads()
    for impl, device, shape in _grid(cfg):
        est = checker.estimate(impl, device, shape)  # the user's implementation: probed first, before its row
        row = run.rows[(impl, device, shape)] = {
            "impl": impl,
            "m": shape.m,
            "k": shape.k,
            "n": shape.n,
            "dtype": cfg.dtype,
            "device": device,
            "threads": threads,
            "error": "",
            "skipped": "",
        }
        if est > cfg.max_seconds:
            row["skipped"] = f"estimated {est:.3g} s > --max-seconds {cfg.max_seconds:g}"
            continue
        log(f"checking {impl} on {device} at {shape}")
        with stops(lambda: f"checking {impl} on {device} at {shape}") as stopped:
            check = checker.check(impl, device, shape)
        if stopped.interrupted:
            raise KeyboardInterrupt
        if stopped.error:
            row.update(correct=False, error=stopped.error)
            run.error = f"out of memory checking {impl} on {device} at {shape}; the rows before it are kept"
            return  # the checker and its inputs go with it
        row.update(
            max_abs_err=check.max_abs_err,
            rel_err=check.rel_err,
            correct=check.correct,
            compile_s=check.compile_s,
            error=check.error,
        )
        if check.traceback:
            run.tracebacks.setdefault(impl, check.traceback)
        if check.correct:  # a wrong kernel's speed means nothing
            inner = max(1, round(checker.preset.target_s / check.call_s))
            run.specs.append((BenchSpec(impl, device, shape, inner), checker.preset.runs_for(check.call_s)))


def _grid(cfg):
    """(impl, device, shape) for every implementation on every device it runs on, shape by shape."""
    return [
        (impl, device, shape)
        for shape in cfg.shapes
        for device in cfg.devices
        for impl in cfg.impls
        if device in resolve(impl).devices
    ]


class _Checker:
    """The cost guard's estimate and check_impl for a run. It keeps the reference case of the current (shape,
    device) only (inputs can be large), and makes an isolated implementation's checks all at once, in a
    process of its own, when it first reaches it."""

    def __init__(self, cfg):
        self.cfg, self.preset = cfg, PRESETS[cfg.preset]
        self.probed, self.cases, self.isolated = {}, {}, {}  # probed: the user's implementations' costs

    def estimate(self, impl, device, shape):
        """Seconds the run of one benchmark would take, what --max-seconds is compared with."""
        if impl not in IMPLS and (impl, device) not in self.probed:
            self.probed[(impl, device)] = probe_spec(impl, device, self.cfg.dtype)
        return estimate_run_seconds(impl, shape, self.preset, device, self.probed.get((impl, device)))

    def check(self, impl, device, shape):
        """check_impl's Check of one benchmark the cost guard let through."""
        cfg = self.cfg
        if resolve(impl).isolated:
            if impl not in self.isolated:
                guarded = [
                    key for key in _grid(cfg) if key[0] == impl and self.estimate(*key) <= cfg.max_seconds
                ]
                self.isolated[impl] = processes.isolated_checks(cfg, [BenchSpec(*key) for key in guarded])
            return self.isolated[impl][(shape, device)]
        if (shape, device) not in self.cases:
            self.cases = {(shape, device): reference_case(shape, cfg.dtype, cfg.seed, device)}
        return check_impl(impl, shape, cfg.dtype, cfg.seed, device, self.cases[(shape, device)])


def _time_all(cfg, run, log):
    """Time run.specs with pyperf, one worker run at a time; Ctrl-C or a failing worker keeps what
    finished."""
    log(f"timing {len(run.specs)} benchmark(s) with pyperf ({cfg.preset}, {cfg.order})")
    with tempfile.TemporaryDirectory(prefix="fnd-bench-") as tmp:
        suite_path = Path(tmp) / "pyperf.json"
        try:
            preset = PRESETS[cfg.preset]
            mode = "once" if cfg.preset == "quick" else "shared" if preset.shared else None
            for group, runs, label in schedule(
                run.specs, cfg.order, mode, lambda impl: resolve(impl).isolated
            ):
                log(f"timing {label}")
                in_parent = (
                    mode == "once" and not resolve(group[0].impl).isolated
                )  # --quick: no worker process
                timer = here.time_here if in_parent else processes.run_worker
                run.pyperf_args.append(timer(group, cfg, runs, suite_path))
                run.order.append(label)
        except KeyboardInterrupt:
            run.interrupted = True
        except BenchError as e:
            run.error = str(e)
        run.suite = processes.load_suite(suite_path)


def schedule(specs, order, mode=None, isolated=lambda impl: False):
    """The pyperf runs to make, as (benchmarks, Runs, label) in order.

    interleaved (the default): one worker process at a time, round-robin over the benchmarks
    (A B C A B C ...), so a host whose speed drifts from minute to minute slows every
    implementation alike and their ratios hold. sequential: all of A's processes, then B's
    (pyperf's own order). pyperf appends every process's run to its benchmark either way.
    mode "once" (--quick) times every benchmark in one process, once; mode "shared" (--gate) makes
    Runs.processes such processes, the benchmarks' order reversed every other one (A B, B A, ...).
    Either way an implementation that runs in processes of its own (`isolated`) gets its own, and
    benchmarks with other pyperf settings (the slow loops) a group of their own.
    """
    if mode:
        groups = {}
        for spec, runs in specs:
            groups.setdefault((runs, isolated(spec.impl)), []).append(spec)
        if mode == "once":
            return [
                (group, runs, "in-process: " + ", ".join(s.name_short for s in group))
                for (runs, _), group in groups.items()
            ]
        steps = []
        for process in range(max(runs.processes for runs, _ in groups)):
            steps += [
                (
                    group[::-1] if process % 2 else group,
                    runs.one_process(in_process=True),
                    f"in-process #{process + 1}: " + ", ".join(s.name_short for s in group),
                )
                for (runs, _), group in groups.items()
                if process < runs.processes
            ]
        return steps
    if order == "sequential":
        return [([spec], runs, f"{spec.name_short} x{runs.processes}") for spec, runs in specs]
    steps = []
    for process in range(max(runs.processes for _, runs in specs)):
        steps += [
            ([spec], runs.one_process(), f"{spec.name_short} #{process + 1}")
            for spec, runs in specs
            if process < runs.processes
        ]
    return steps


def _frame(rows, timed, interrupted):
    """One row per (impl, device, shape): the check joined with its timing, and GFLOP/s. After a
    Ctrl-C, a row the run did not reach says so in `skipped`; its check, if it ran, is kept."""
    records = []
    for (impl, device, shape), row in rows.items():
        timing = timed.get(benchmark_name(impl, shape, row["dtype"], device))
        if timing:
            row = {**row, **timing, "gflops": shape.flops / timing["median_s"] / 1e9}
        elif interrupted and not row["skipped"] and row.get("correct", True):
            row = {
                **row,
                "skipped": "interrupted before it was timed"
                if "correct" in row
                else "interrupted before its check",
            }
        records.append(row)
    return pd.DataFrame.from_records(records).reindex(columns=COLUMNS)
