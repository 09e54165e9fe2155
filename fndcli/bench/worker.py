"""The pyperf worker script behind `fnd matmul-bench`.

pyperf's Runner parses sys.argv and re-executes its own program for every worker
process, so it cannot run inside the Typer command. `fndcli.bench.run` runs this module as a
subprocess:

    python -m fndcli.bench.worker --bench einsum:cpu:5x784x10:200 --dtype float32 --seed 0 \\
        --processes 2 --values 5 --loops 1 --append out.json

Each `--bench IMPL:DEVICE:MxKxN:INNER` registers one `bench_time_func`; INNER is the number of
calls per value, chosen by the parent so a value lasts about pyperf's min time. pyperf's
own `--loops 1` then skips its calibration process (one more torch import per benchmark).
fnd's options are `fndcli.bench.spec.WorkerArgs`, added to pyperf's argparser; `add_worker_args`
forwards them to the workers.

The manager process never imports torch (2 s). A worker process prepares only the benchmark
it runs (pyperf's `--worker-task` is its index in registration order): it sets the threads,
builds the inputs and makes one untimed call (a compiled kernel compiles or loads from its
cache there). `--threads` reaches torch's pool, and numpy's BLAS and any OpenMP pool through threadpoolctl
(`fndcli.bench.blas`). It then records what it will time in the run's metadata, from the objects
themselves: `fnd_dtype` and `fnd_device` of the input tensors, `fnd_threads` from torch,
`fnd_seed`, `fnd_input_sum` (a's sum, which the seed decides), and for numpy's `a @ b` and the user's code
`fnd_blas`, the BLAS loaded here and its threads ('openblas 0.3.31 (Haswell, pthreads, 1 thread)').
fnd's tests read them back.
On CUDA the timer is bracketed by torch.cuda.synchronize(). A FILE.py:NAME@REV is loaded at the commit the
parent resolved REV to (`--pin`), not at what REV names by the time the worker starts.
"""

import sys
import time

import pyperf

from fndcli import userref
from fndcli.bench import blas
from fndcli.bench.spec import WorkerArgs, make_inputs, synchronize
from fndcli.names import dtype_name

_prepared = {}  # BenchSpec -> (fn, a, b), in the process that times it


def add_worker_args(cmd, args):
    """Forward fnd's own options to pyperf's worker processes."""
    cmd.extend(WorkerArgs.from_namespace(args).to_argv())


def prepare(spec, dtype, seed, threads):
    """Set up one benchmark in this process; return the worker's own record of what it times."""
    import torch

    from fndcli.kernels.registry import resolve

    # the user's file, if it is one, is imported here: once, before the threads are set
    impl = resolve(spec.impl)
    if threads:
        torch.set_num_threads(threads)
    a, b = make_inputs(spec.shape, dtype, seed, spec.device)
    impl.fn(a, b)  # compile / first touch, untimed
    blas.limit(threads)  # numpy's BLAS and any OpenMP pool, those the first call loaded too, from here on
    _prepared[spec] = (impl.fn, a, b)
    record = {
        "fnd_impl": spec.impl,
        "fnd_dtype": dtype_name(a.dtype),
        "fnd_device": a.device.type,
        "fnd_threads": torch.get_num_threads(),
        "fnd_seed": seed,
        "fnd_input_sum": float(a.double().sum()),
    }
    named = blas.describe() if impl.blas else ""  # numpy's, or the user's code's
    if named:
        record["fnd_blas"] = named
    numba = sys.modules.get("numba")
    if numba is not None:  # a numba kernel ran: its threads, and whether fnd's numba settings were on
        record["fnd_numba_threads"] = numba.get_num_threads()
        record["fnd_numba_slp"] = bool(numba.config.SLP_VECTORIZE)
    return record


def time_impl(loops, spec):
    """Seconds for loops * inner_loops calls; pyperf divides by both to get seconds per call."""
    fn, a, b = _prepared[spec]
    calls = range(loops * spec.inner_loops)
    synchronize(spec.device)
    t0 = time.perf_counter()
    for _ in calls:
        fn(a, b)
    synchronize(spec.device)
    return time.perf_counter() - t0


def main():
    runner = pyperf.Runner(program_args=("-m", "fndcli.bench.worker"), add_cmdline_args=add_worker_args)
    WorkerArgs.add_arguments(runner.argparser)
    pyperf_args = runner.parse_args()
    args = WorkerArgs.from_namespace(pyperf_args)
    userref.pin(dict(args.pins))  # each FILE.py:NAME@REV at the commit the parent checked
    for index, spec in enumerate(args.benches):
        times_here = pyperf_args.in_process or (pyperf_args.worker and pyperf_args.worker_task == index)
        metadata = prepare(spec, args.dtype, args.seed, args.threads) if times_here else None
        runner.bench_time_func(
            spec.name(args.dtype), time_impl, spec, inner_loops=spec.inner_loops, metadata=metadata
        )


if __name__ == "__main__":
    main()
