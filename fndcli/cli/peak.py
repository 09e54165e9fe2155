"""`fnd peak`: this machine's ceilings, FMA GFLOP/s and memory GB/s, measured once and cached (core:
`fndcli.bench.peak`)."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer import _click as click

from fndcli.cli.app import command
from fndcli.cli.options import (
    DbOption,
    DeviceName,
    ModelDtype,
    NoHistoryOption,
    OutOption,
    QuietOption,
    check_devices,
    config_option,
)
from fndcli.cli.runs import Run, error_line
from fndcli.settings import PeakConfig

DEFAULTS = PeakConfig()
CORES = os.cpu_count() or 1


@command("peak", "This machine's ceilings: FMA GFLOP/s and memory GB/s (cached).")
def peak(
    ctx: typer.Context,
    dtype: Annotated[
        Optional[list[ModelDtype]],
        typer.Option(
            "--dtype", help="Element type of the FMA chains; repeatable. Default: float32 and float64."
        ),
    ] = None,
    threads: Annotated[
        Optional[list[int]],
        typer.Option(
            "--threads",
            min=1,
            max=CORES,
            metavar="N",
            help=f"Thread count; repeatable. Default: every count from 1 to the cores ({CORES}).",
        ),
    ] = None,
    device: Annotated[
        DeviceName, typer.Option("--device", help="cpu, or cuda: the GPU's ceilings.")
    ] = DeviceName.cpu,
    bandwidth: Annotated[
        bool,
        typer.Option(
            "--bandwidth/--no-bandwidth", help="Measure memory bandwidth too (STREAM copy and triad)."
        ),
    ] = DEFAULTS.bandwidth,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Measure again, replacing what is cached.")
    ] = False,
    config: config_option("peak") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Measure this machine's ceilings: fused multiply-add throughput and memory bandwidth.

    FMA: independent chains of c = c * y + x in vector registers (numba, vectorised to the widest
    unit the CPU has: AVX2, AVX-512), at each thread count, the best of 5 calls of the best of
    several chain counts. Bandwidth: STREAM's copy and triad over arrays 4x the last-level cache.
    A few seconds (the first run also compiles the kernels, ~15 s). The figures are cached per
    machine (CPU model, cores, vector unit, fnd version: ~/.cache/fnd/peak.json, or
    $FND_CACHE_DIR): the next run, and matmul-bench's % peak and roofline, reuse them.

    Examples:

    \b
        fnd peak
        fnd peak --dtype float32 --threads 2 --refresh
        fnd peak --device cuda
    """
    check_devices([device.value])
    cfg = PeakConfig(
        dtypes=tuple(d.value for d in dtype) if dtype else DEFAULTS.dtypes,
        threads=tuple(sorted(set(threads))) if threads else tuple(range(1, CORES + 1)),
        device=device.value,
        bandwidth=bandwidth,
        refresh=refresh,
    )
    from fndcli.bench import peak as core
    from fndcli.memory import available_bytes, human_bytes

    problem = core.cache_problem()
    if problem:
        raise click.exceptions.UsageError(problem)
    need, have = core.stream_bytes(cfg.device), available_bytes(cfg.device)
    if cfg.bandwidth and need > have:
        raise click.exceptions.UsageError(
            f"not enough memory: the bandwidth arrays need {human_bytes(need)} and "
            f"{human_bytes(have)} is available on {cfg.device}; use --no-bandwidth"
        )
    run, note = Run(ctx, out, quiet), None if cfg.refresh else core.cache_note()
    try:
        with run.working("measuring this machine's ceilings"):
            rows, measured, refused = core.run_peak(
                cfg.dtypes, cfg.threads, cfg.device, cfg.refresh, cfg.bandwidth
            )
    except KeyboardInterrupt:
        error_line("interrupted: nothing measured is kept")
        raise typer.Exit(130)
    except core.PeakError as e:
        error_line(str(e))
        raise typer.Exit(1)
    import pandas as pd

    frame = pd.DataFrame(rows, columns=core.COLUMNS)
    run.finish(
        lambda files: files.write_csv(".csv", frame),
        0,
        {"dtype": list(cfg.dtypes), "threads": list(cfg.threads)},
        device=cfg.device,
        measured_rows=measured,
        cache_file=str(core.cache_file()),
        cache_note=note,
        cache_refused=refused,
    )
