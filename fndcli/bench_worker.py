"""The pyperf worker script behind `fnd matmul-bench`.

pyperf's Runner parses sys.argv and re-executes its own program for every worker
process, so it cannot run inside the Typer command. `fndcli.bench` runs this module as a
subprocess:

    python -m fndcli.bench_worker --bench einsum:cpu:5x784x10:200 --dtype float32 --seed 0 \
        --processes 2 --values 5 --loops 1 --append out.json

Each `--bench IMPL:DEVICE:MxKxN:INNER` registers one `bench_time_func`; INNER is the number of
calls per value, chosen by the parent so a value lasts about pyperf's min time. pyperf's
own `--loops 1` then skips its calibration process (one more torch import per benchmark).
`add_worker_args` forwards every option that decides what is measured to the workers.
The manager process never imports torch (2 s); each worker imports it, builds the inputs
and makes one untimed call (a compiled kernel compiles or loads from its cache there) before
its first timed value. On CUDA the timer is bracketed by torch.cuda.synchronize().
"""
import time

import pyperf

from fndcli.benchspec import BenchSpec, make_inputs, synchronize

_inputs = {}


def add_worker_args(cmd, args):
    """Forward fnd's own options to pyperf's worker processes."""
    for text in args.bench:
        cmd.extend(["--bench", text])
    cmd.extend(["--dtype", args.dtype, "--seed", str(args.seed)])
    if args.threads:
        cmd.extend(["--threads", str(args.threads)])


def time_impl(loops, spec, dtype, seed, threads):
    """Seconds for loops * inner_loops calls; torch and the inputs are set up once, outside the timer."""
    import torch

    from fndcli.kernels import IMPLS

    fn = IMPLS[spec.impl].fn
    key = (spec.impl, spec.device, spec.shape, dtype, seed)
    if key not in _inputs:
        if threads:
            torch.set_num_threads(threads)
        _inputs[key] = make_inputs(spec.shape, dtype, seed, spec.device)
        fn(*_inputs[key])  # compile / first-touch, untimed
    a, b = _inputs[key]
    calls = range(loops * spec.inner_loops)
    synchronize(spec.device)
    t0 = time.perf_counter()
    for _ in calls:
        fn(a, b)
    synchronize(spec.device)
    return time.perf_counter() - t0


def main():
    runner = pyperf.Runner(program_args=("-m", "fndcli.bench_worker"), add_cmdline_args=add_worker_args)
    runner.argparser.add_argument("--bench", action="append", default=[], help="IMPL:MxKxN:INNER_LOOPS")
    runner.argparser.add_argument("--dtype", default="float32")
    runner.argparser.add_argument("--seed", type=int, default=0)
    runner.argparser.add_argument("--threads", type=int, default=None)
    args = runner.parse_args()
    for text in args.bench:
        spec = BenchSpec.decode(text)
        runner.bench_time_func(spec.name(args.dtype), time_impl, spec, args.dtype, args.seed, args.threads,
                               inner_loops=spec.inner_loops)


if __name__ == "__main__":
    main()
