"""Checks of an implementation that runs in processes of its own (numba-tiled: `fndcli.kernels.jitenv`).

`fndcli.bench.run` starts this module with the implementation's settings in the environment,

    python -m fndcli.bench.isolated --impl numba-tiled --dtype float32 --seed 0 --device cpu --shape 1024x1024x1024 ...

and reads one JSON line per shape: the fields of `fndcli.bench.run.Check`. The first call at a
shape is the compile (or the load from numba's cache), reported as compile_s.
"""
import argparse
import dataclasses
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fndcli.bench.isolated")
    parser.add_argument("--impl", required=True)
    parser.add_argument("--dtype", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--shape", action="append", default=[])
    args = parser.parse_args(argv)

    import torch

    from fndcli.bench.run import check_impl
    from fndcli.bench.spec import Shape

    if args.threads:
        torch.set_num_threads(args.threads)
    for text in args.shape:
        check = check_impl(args.impl, Shape.parse(text), args.dtype, args.seed, args.device)
        print(json.dumps({"shape": text, **dataclasses.asdict(check)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
