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
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyperf
import torch

from fndcli import userref

from fndcli.bench import peak
from fndcli.bench import stats as benchstats

from fndcli.kernels import jitenv
from fndcli.bench.spec import (PRESETS, TOLERANCES, BenchSpec, Shape, WorkerArgs, benchmark_name,
                               estimate_run_seconds, make_inputs, synchronize)
from fndcli.kernels.registry import IMPLS, resolve
from fndcli.memory import is_out_of_memory, stops
from fndcli.names import ImplSpec, dtype_name
from fndcli.numerics import first_line, relative

COLUMNS = benchstats.COLUMNS

# Environment variables the pyperf workers keep (pyperf drops most of the environment).
INHERIT_ENVIRON = "OMP_NUM_THREADS,MKL_NUM_THREADS,CUDA_VISIBLE_DEVICES,NUMBA_NUM_THREADS,NUMBA_CACHE_DIR"


@dataclass(frozen=True)
class Check:
    """One implementation's output against float64 `a @ b` on the same inputs."""

    max_abs_err: float
    rel_err: float
    correct: bool
    call_s: float  # measured seconds per call, to size the pyperf values; NaN if not correct
    compile_s: float  # first call minus a steady call, for compiled implementations; else NaN
    error: str = ""   # why it is not correct: it raised, returned the wrong shape, or a wrong result
    traceback: str = ""  # the user's frames, when the user's own code raised


@dataclass
class BenchResult:
    rows: pd.DataFrame
    suite: pyperf.BenchmarkSuite | None  # the benchmarks that finished
    crossovers: pd.DataFrame = None     # benchstats.CROSSOVER_COLUMNS; empty unless a sweep ran
    pyperf_args: list = field(default_factory=list)  # one list per worker run
    interrupted: bool = False
    ceilings: list = field(default_factory=list)  # behind pct_peak: fndcli.bench.peak.for_bench's dicts
    error: str | None = None  # out of memory, or a pyperf worker that failed; the rows before it are kept
    tracebacks: dict = field(default_factory=dict)  # {implementation: the user's traceback}, once each
    order: list = field(default_factory=list)  # the worker runs, in the order they ran (schedule's labels)
    peak_note: str | None = None  # why some rows have no ceiling (no pct_peak)


class BenchError(Exception):
    """A pyperf worker failed."""


def reference_case(shape, dtype, seed, device="cpu"):
    """The seeded inputs a, b and the float64 reference a @ b (m, n): one per shape and device."""
    a, b = make_inputs(shape, dtype, seed, device)
    return a, b, a.double() @ b.double()


def check_impl(impl, shape, dtype, seed, device="cpu", case=None):
    """Compare one implementation with float64 a @ b, and measure its seconds per call (and compile time).

    `case` is reference_case(...) for this shape, shared by every implementation run at it.
    An implementation that raises or returns the wrong shape is not correct, and says why.
    """
    a, b, ref = case or reference_case(shape, dtype, seed, device)
    implementation = resolve(impl)
    fn, compiled = implementation.fn, implementation.compiled
    try:
        synchronize(device)
        t0 = time.perf_counter()
        out = fn(a, b)
        synchronize(device)
        first_s = time.perf_counter() - t0
    except (Exception, SystemExit) as e:  # a kernel's bug (sys.exit() too) is a failing row; running out of memory isn't
        if is_out_of_memory(e):
            raise
        return _failed(f"raised {type(e).__name__}: {first_line(e)}",
                       "" if impl in IMPLS else userref.user_traceback(e))
    if not isinstance(out, torch.Tensor):
        return _failed(f"returned {type(out).__name__}, not a tensor")
    if tuple(out.shape) != tuple(ref.shape):
        return _failed(f"returned shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype != a.dtype:  # the chapter's torch.zeros(ar, bc) is float32 whatever the inputs
        return _failed(f"returned {dtype_name(out.dtype)} from {dtype_name(a.dtype)} inputs (an output made with "
                       f"torch.zeros(m, n) is float32 whatever the inputs; pass dtype=a.dtype)")
    err = out.double() - ref
    max_abs = err.abs().max().item()
    rel = relative(err.norm().item(), ref.norm().item())
    bad = (~torch.isfinite(out)).sum().item() if torch.isfinite(ref).all() else 0  # not "relative error inf"
    if bad or not (math.isfinite(rel) and rel <= TOLERANCES[dtype]):
        why = (f"{bad} of {out.numel()} values not finite (NaN or inf) where a @ b has none" if bad else
               f"relative error {rel:.2e} > {TOLERANCES[dtype]:g} ({dtype} tolerance)")
        return Check(max_abs, rel, False, math.nan, math.nan, f"wrong result: {why}")
    call_s = _seconds_per_call(fn, a, b, math.inf if compiled else first_s, device)
    compile_s = max(first_s - call_s, 0.0) if compiled else math.nan
    return Check(max_abs, rel, True, call_s, compile_s)


def _failed(reason, user_traceback=""):
    return Check(math.nan, math.nan, False, math.nan, math.nan, reason, user_traceback)


def probe_spec(impl, device, dtype):
    """Facts for an implementation the registry does not know (the user's): its cost model comes from one
    call at 8x8x8. Under 1 us per multiply-add it is costed as compiled code at 1 GFLOP/s plus that call's
    overhead; above, as Python-level loops at the measured cost per multiply-add (so the three loops at
    1024^3 are skipped by --max-seconds, as the built-in ones are)."""
    shape = Shape(8, 8, 8)
    a, b = make_inputs(shape, dtype, 0, device)
    fn = resolve(impl).fn
    try:
        fn(a, b)  # first call: imports, compiles
        synchronize(device)
        t0 = time.perf_counter()
        fn(a, b)
        synchronize(device)
        call = time.perf_counter() - t0
    except (Exception, SystemExit):  # the check reports it
        call = 0.0
    per_mac = call / (shape.m * shape.k * shape.n)
    if per_mac > 1e-6:
        return ImplSpec(impl, "your code", lambda m, k, n: m * k * n, per_mac, math.inf)
    return ImplSpec(impl, "your code", lambda m, k, n: 1, call, 1e9)


def _seconds_per_call(fn, a, b, first_s, device, min_s=0.02):
    """Time batches of 1, 10, 100, ... calls until one lasts min_s; the first call counts only if
    it was not a compile (first_s is inf for compiled implementations)."""
    calls, elapsed = 1, first_s
    if math.isinf(first_s):
        calls, elapsed = 0, 0.0
    while elapsed < min_s:
        calls = max(1, calls * 10 if elapsed * 10 < min_s else max(calls + 1, math.ceil(calls * min_s / elapsed)))
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(a, b)
        synchronize(device)
        elapsed = time.perf_counter() - t0
    return elapsed / calls


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

    Ctrl-C keeps every check that ran and every timing that finished. Running out of memory, or a pyperf worker
    that fails, stops the run there with `error` set, keeping every row made before it.
    """
    run, before = _Run(), torch.get_num_threads()
    try:
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        _check_all(cfg, run, log)
    except KeyboardInterrupt:
        run.interrupted, run.specs = True, []
    finally:
        torch.set_num_threads(before)  # a library call leaves torch as it found it; the timing is in workers
    if run.specs:
        _time_all(cfg, run, log)
    frame = _frame(run.rows, _timings(run.suite), run.interrupted)
    frame = benchstats.add_speedups(frame, benchstats.choose_baseline(frame, list(IMPLS), cfg.baseline))
    ceilings, peak_note = ((benchstats.given_ceilings(frame, cfg.peak_gflops, peak.cached_bandwidth()), None)
                           if cfg.peak_gflops else peak.for_bench(benchstats.ceiling_keys(frame), log))
    frame = benchstats.add_pct_peak(frame, ceilings)[COLUMNS]
    return BenchResult(frame, run.suite, benchstats.crossovers(frame, cfg.sweep_dim), run.pyperf_args,
                       run.interrupted, ceilings, run.error, run.tracebacks, run.order, peak_note)


def _check_all(cfg, run, log):
    """Check every (impl, device, shape) the cost guard lets through, into run.rows and run.specs; stop at the
    first out of memory, with its row and run.error saying so."""
    checker, threads = _Checker(cfg), torch.get_num_threads()
    for impl, device, shape in _grid(cfg):
        est = checker.estimate(impl, device, shape)  # the user's implementation: probed first, before its row
        row = run.rows[(impl, device, shape)] = {"impl": impl, "m": shape.m, "k": shape.k, "n": shape.n,
                                                 "dtype": cfg.dtype, "device": device, "threads": threads,
                                                 "error": "", "skipped": ""}
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
        row.update(max_abs_err=check.max_abs_err, rel_err=check.rel_err, correct=check.correct,
                   compile_s=check.compile_s, error=check.error)
        if check.traceback:
            run.tracebacks.setdefault(impl, check.traceback)
        if check.correct:  # a wrong kernel's speed means nothing
            inner = max(1, round(checker.preset.target_s / check.call_s))
            run.specs.append((BenchSpec(impl, device, shape, inner), checker.preset.runs_for(check.call_s)))


def _grid(cfg):
    """(impl, device, shape) for every implementation on every device it runs on, shape by shape."""
    return [(impl, device, shape) for shape in cfg.shapes for device in cfg.devices for impl in cfg.impls
            if device in resolve(impl).devices]


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
                guarded = [key for key in _grid(cfg) if key[0] == impl and self.estimate(*key) <= cfg.max_seconds]
                self.isolated[impl] = _isolated_checks(cfg, [BenchSpec(*key) for key in guarded])
            return self.isolated[impl][(shape, device)]
        if (shape, device) not in self.cases:
            self.cases = {(shape, device): reference_case(shape, cfg.dtype, cfg.seed, device)}
        return check_impl(impl, shape, cfg.dtype, cfg.seed, device, self.cases[(shape, device)])


def _time_all(cfg, run, log):
    """Time run.specs with pyperf, one worker run at a time; Ctrl-C or a failing worker keeps what finished."""
    log(f"timing {len(run.specs)} benchmark(s) with pyperf ({cfg.preset}, {cfg.order})")
    with tempfile.TemporaryDirectory(prefix="fnd-bench-") as tmp:
        suite_path = Path(tmp) / "pyperf.json"
        try:
            preset = PRESETS[cfg.preset]
            mode = "once" if cfg.preset == "quick" else "shared" if preset.shared else None
            for group, runs, label in schedule(run.specs, cfg.order, mode, lambda impl: resolve(impl).isolated):
                log(f"timing {label}")
                run.pyperf_args.append(_run_worker(group, cfg, runs, suite_path))
                run.order.append(label)
        except KeyboardInterrupt:
            run.interrupted = True
        except BenchError as e:
            run.error = str(e)
        run.suite = _load_suite(suite_path)


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
            return [(group, runs, "in-process: " + ", ".join(s.name_short for s in group))
                    for (runs, _), group in groups.items()]
        steps = []
        for process in range(max(runs.processes for runs, _ in groups)):
            steps += [(group[::-1] if process % 2 else group, runs.one_process(in_process=True),
                       f"in-process #{process + 1}: " + ", ".join(s.name_short for s in group))
                      for (runs, _), group in groups.items() if process < runs.processes]
        return steps
    if order == "sequential":
        return [([spec], runs, f"{spec.name_short} x{runs.processes}") for spec, runs in specs]
    steps = []
    for process in range(max(runs.processes for _, runs in specs)):
        steps += [([spec], runs.one_process(), f"{spec.name_short} #{process + 1}")
                  for spec, runs in specs if process < runs.processes]
    return steps


def _subprocess_env(cfg, isolated):
    """The environment of a process fnd starts: fnd importable, --threads for numba too, and the numba
    settings of an implementation that runs only in processes of its own."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")])))
    if cfg.threads:
        env["NUMBA_NUM_THREADS"] = str(cfg.threads)
    if isolated:
        env.update(jitenv.settings())
    return env


def _isolated_checks(cfg, benches):
    """check_impl for the benchmarks of an isolated implementation, in one process of its own:
    {(shape, device): Check}."""
    cmd = [sys.executable, "-m", "fndcli.bench.isolated", *_worker_args(cfg, benches).to_argv()]
    proc = _run_process(cmd, _subprocess_env(cfg, True), f"{benches[0].impl}'s check in its own process")
    checks = {}
    for line in proc.stdout.splitlines():
        data = json.loads(line)
        spec = BenchSpec.decode(data.pop("bench"))
        checks[(spec.shape, spec.device)] = Check(**data)
    return checks


def _run_worker(specs, cfg, runs, suite_path):
    """Run the pyperf worker subprocess; it appends finished benchmarks to suite_path."""
    isolated = any(resolve(spec.impl).isolated for spec in specs)
    inherit = ",".join([INHERIT_ENVIRON, *(jitenv.NAMES if isolated else ())])
    pyperf_args = [*runs.pyperf_args, "--loops", "1", "--inherit-environ", inherit]
    cmd = [sys.executable, "-m", "fndcli.bench.worker", *_worker_args(cfg, specs).to_argv(), *pyperf_args,
           "--quiet", "--append", str(suite_path)]
    _run_process(cmd, _subprocess_env(cfg, isolated), "pyperf worker")
    return pyperf_args


def _worker_args(cfg, benches):
    """What the processes fnd starts take from cfg: both the pyperf worker and an isolated check."""
    return WorkerArgs(tuple(benches), cfg.dtype, cfg.seed, cfg.threads)


def _run_process(cmd, env, what):
    """Run a process fnd starts; BenchError with its last line of output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise BenchError(f"{what} failed (exit {proc.returncode}): {lines[-1]}")
    return proc


def _package_root():
    return str(Path(__file__).resolve().parents[2])


def _load_suite(path):
    try:
        return pyperf.BenchmarkSuite.load(str(path))
    except (OSError, ValueError):  # nothing finished, or cut off mid-write by Ctrl-C
        return None


def _timings(suite):
    """{benchmark name: timing columns} from a pyperf suite. `threads` is what the worker
    processes recorded (fndcli.bench.worker), not what the parent asked for."""
    if suite is None:
        return {}
    out = {}
    for bench in suite.get_benchmarks():
        values = bench.get_values()
        meta = bench.get_metadata()
        means = [math.fsum(run.values) / len(run.values) for run in bench.get_runs() if run.values]
        out[bench.get_name()] = {
            "median_s": bench.median(), "mean_s": bench.mean(), "stdev_s": bench.stdev() if len(values) > 1 else 0.0,
            "min_s": min(values), "max_s": max(values), "n_values": len(values),
            "processes": len(means), "unstable": benchstats.instability(means, values),
            **({"threads": meta["fnd_threads"]} if "fnd_threads" in meta else {})}
    return out


def _frame(rows, timed, interrupted):
    """One row per (impl, device, shape): the check joined with its timing, and GFLOP/s. After a
    Ctrl-C, a row the run did not reach says so in `skipped`; its check, if it ran, is kept."""
    records = []
    for (impl, device, shape), row in rows.items():
        timing = timed.get(benchmark_name(impl, shape, row["dtype"], device))
        if timing:
            row = {**row, **timing, "gflops": shape.flops / timing["median_s"] / 1e9}
        elif interrupted and not row["skipped"] and row.get("correct", True):
            row = {**row, "skipped": "interrupted before it was timed" if "correct" in row else
                   "interrupted before its check"}
        records.append(row)
    return pd.DataFrame.from_records(records).reindex(columns=COLUMNS)
