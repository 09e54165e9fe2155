"""Checks of an implementation that runs in processes of its own (numba-tiled: `fndcli.kernels.jitenv`).

`fndcli.bench.run` starts this module with the implementation's settings in the environment and the
benchmarks to check as `fndcli.bench.spec.WorkerArgs` (their inner loops are not used here),

    python -m fndcli.bench.isolated --bench numba-tiled:cpu:1024x1024x1024:1 ... --dtype float32 --seed 0

and reads one JSON line per benchmark: `bench` (as given) and the fields of `fndcli.bench.check.Check`.
The first call at a shape is the compile (or the load from numba's cache), reported as compile_s.
"""

import dataclasses
import json
import sys

from fndcli.bench.spec import WorkerArgs


def main(argv=None):
    args = WorkerArgs.from_argv(argv, prog="python -m fndcli.bench.isolated")

    import torch

    from fndcli import userref
    from fndcli.bench.check import check_impl

    userref.pin(dict(args.pins))  # each FILE.py:NAME@REV at the commit the parent checked

    if args.threads:
        torch.set_num_threads(args.threads)
    for spec in args.benches:
        check = check_impl(spec.impl, spec.shape, args.dtype, args.seed, spec.device)
        print(json.dumps({"bench": spec.encode(), **dataclasses.asdict(check)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
