"""The processes matmul-bench starts: the pyperf worker (`fndcli.bench.worker`), an isolated
implementation's checks (`fndcli.bench.isolated`), their environment, and what they hand back.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyperf

from fndcli import userref
from fndcli.bench import stats as benchstats
from fndcli.bench.check import Check
from fndcli.bench.spec import BenchSpec, WorkerArgs
from fndcli.kernels import jitenv
from fndcli.kernels.registry import resolve

# Environment variables the pyperf workers keep (pyperf drops most of the environment).
INHERIT_ENVIRON = "OMP_NUM_THREADS,MKL_NUM_THREADS,CUDA_VISIBLE_DEVICES,NUMBA_NUM_THREADS,NUMBA_CACHE_DIR"


class BenchError(Exception):
    """A pyperf worker failed."""


def subprocess_env(cfg, isolated):
    """The environment of a process fnd starts: fnd importable, --threads for numba too, and the numba
    settings of an implementation that runs only in processes of its own."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root(), os.environ.get("PYTHONPATH")]))
    )
    if cfg.threads:
        env["NUMBA_NUM_THREADS"] = str(cfg.threads)
    if isolated:
        env.update(jitenv.settings())
    return env


def isolated_checks(cfg, benches):
    """check_impl for the benchmarks of an isolated implementation, in one process of its own:
    {(shape, device): Check}."""
    cmd = [sys.executable, "-m", "fndcli.bench.isolated", *worker_args(cfg, benches).to_argv()]
    proc = run_process(cmd, subprocess_env(cfg, True), f"{benches[0].impl}'s check in its own process")
    checks = {}
    for line in proc.stdout.splitlines():
        data = json.loads(line)
        spec = BenchSpec.decode(data.pop("bench"))
        checks[(spec.shape, spec.device)] = Check(**data)
    return checks


def run_worker(specs, cfg, runs, suite_path):
    """Run the pyperf worker subprocess; it appends finished benchmarks to suite_path."""
    isolated = any(resolve(spec.impl).isolated for spec in specs)
    inherit = ",".join([INHERIT_ENVIRON, *(jitenv.NAMES if isolated else ())])
    pyperf_args = [*runs.pyperf_args, "--loops", "1", "--inherit-environ", inherit]
    cmd = [
        sys.executable,
        "-m",
        "fndcli.bench.worker",
        *worker_args(cfg, specs).to_argv(),
        *pyperf_args,
        "--quiet",
        "--append",
        str(suite_path),
    ]
    run_process(cmd, subprocess_env(cfg, isolated), "pyperf worker")
    return pyperf_args


def worker_args(cfg, benches):
    """What the processes fnd starts take from cfg: both the pyperf worker and an isolated check; each
    FILE.py:NAME@REV pinned to the commit it resolved to here."""
    pins = tuple(userref.revisions(dict.fromkeys(spec.impl for spec in benches)).items())
    return WorkerArgs(tuple(benches), cfg.dtype, cfg.seed, cfg.threads, pins)


def run_process(cmd, env, what):
    """Run a process fnd starts; BenchError with its last line of output if it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise BenchError(f"{what} failed (exit {proc.returncode}): {lines[-1]}")
    return proc


def package_root():
    return str(Path(__file__).resolve().parents[2])


def load_suite(path):
    try:
        return pyperf.BenchmarkSuite.load(str(path))
    except (OSError, ValueError):  # nothing finished, or cut off mid-write by Ctrl-C
        return None


def timings(suite):
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
            "median_s": bench.median(),
            "mean_s": bench.mean(),
            "stdev_s": bench.stdev() if len(values) > 1 else 0.0,
            "min_s": min(values),
            "max_s": max(values),
            "n_values": len(values),
            "processes": len(means),
            "unstable": benchstats.instability(means, values),
            **({"threads": meta["fnd_threads"]} if "fnd_threads" in meta else {}),
        }
    return out


def blas_named(suite):
    """'BENCHMARK: BLAS' for each benchmark whose worker processes named the BLAS it called (`fnd_blas`:
    numpy's a @ b, the user's code), e.g. 'numpy 1024x1024x1024 float32 cpu: openblas 0.3.31 (Haswell,
    pthreads, 1 thread)'."""
    benches = suite.get_benchmarks() if suite is not None else []
    return [
        f"{b.get_name()}: {b.get_metadata()['fnd_blas']}" for b in benches if "fnd_blas" in b.get_metadata()
    ]
