"""`--quick`'s timings, made in fnd's own process: no worker process, so no second `import torch` (2-2.5 s
of the 2.5-3 s a quick run's worker cost on a 2-core VM).

What a worker process does for one benchmark (`fndcli.bench.worker`: prepare, then pyperf's warmups and
values of `time_impl`) is done here, in the same order, and kept as pyperf keeps it: one `pyperf.Run` per
benchmark (its values and warmups per call, its metadata collected as a worker's is, with the worker's own
record: fnd_threads, fnd_input_sum, fnd_blas, ...), appended to the run's suite file. So everything after
(`processes.timings`, the sidecar, `fnd compare`) reads a quick run as it read one timed by pyperf.

Only for the quick preset, whose one process times every benchmark in turn already (a quick look, not a
figure to judge: `fnd compare` calls its one process insufficient), and never for an implementation that
runs in processes of its own (numba-tiled: `fndcli.kernels.jitenv`). The user's code ran in this process
for its check already; a kernel that raises while it is timed stops the timing as a failing worker does.
torch's threads, the BLAS pools and numba's threads (a user's prange kernel) are set for the timing and
given back after it.
"""

import sys

import pyperf

from fndcli.bench import blas, worker
from fndcli.bench.check import unprinted
from fndcli.bench.processes import BenchError


def time_here(specs, cfg, runs, suite_path):
    """Time `specs` in this process as one quick worker process would, each benchmark appended to
    suite_path when it finishes (a Ctrl-C keeps those); the pyperf arguments the step stands for."""
    import torch

    before, numba = torch.get_num_threads(), _numba_threads(cfg.threads)
    try:
        with blas.limit(cfg.threads):
            for spec in specs:
                pyperf.add_runs(str(suite_path), pyperf.Benchmark([_run(spec, cfg, runs)]))
    finally:
        worker._prepared.clear()  # the inputs go; the tensors of a large shape are not kept
        torch.set_num_threads(before)
        if numba:
            sys.modules["numba"].set_num_threads(numba)
    return [*runs.pyperf_args, "--loops", "1"]  # as the worker would have been started


def _numba_threads(threads):
    """numba's threads held to --threads here, as NUMBA_NUM_THREADS holds a worker's; the count before, to
    give back (None: numba not loaded, or no --threads)."""
    numba = sys.modules.get("numba")
    if numba is None or not threads:
        return None
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return before


def _run(spec, cfg, runs):
    name = spec.name(cfg.dtype)
    try:
        with unprinted():
            record = worker.prepare(spec, cfg.dtype, cfg.seed, cfg.threads)
            warmups = [(1, _value(spec)) for _ in range(runs.warmups)]
            values = [_value(spec) for _ in range(runs.values)]
    except (Exception, SystemExit) as e:  # the user's kernel, failing on a later call than its check's
        raise BenchError(f"timing {name} failed: {type(e).__name__}: {e}") from None
    metadata = {"name": name, "loops": 1, "inner_loops": spec.inner_loops, "unit": "second", **record}
    metadata["fnd_timed_in"] = "fnd's own process"
    return pyperf.Run(values, warmups=warmups, metadata=metadata, collect_metadata=True)


def _value(spec):
    """One value: seconds per call over the spec's inner loops, as pyperf divides a worker's raw value."""
    return worker.time_impl(1, spec) / spec.inner_loops
