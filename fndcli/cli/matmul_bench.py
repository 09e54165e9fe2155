"""`fnd matmul-bench`: the chapter's matmul ladder, checked and timed (core: `fndcli.bench.run`)."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli import userref
from fndcli.bench.spec import Shape
from fndcli.cli.app import command
from fndcli.cli.matmul_options import DEFAULTS, bench_config, known_impls
from fndcli.cli.options import (
    IMPL_HELP,
    BenchDtype,
    DbOption,
    DeviceName,
    NoHistoryOption,
    OutOption,
    QuietOption,
    SeedOption,
    SweepDim,
    choices,
    config_option,
    refuse_given,
)
from fndcli.cli.runs import Run, error_line
from fndcli.names import IMPL_SPECS
from fndcli.userref import plugins

OrderName = choices("OrderName", ["interleaved", "sequential"])


def _plugin_help():
    found = plugins()
    return f"; installed plugins (fnd.matmul): {', '.join(found)}" if found else ""


@command("matmul-bench", "Time the matmul ladder, each kernel checked against a @ b.")
def matmul_bench(
    ctx: typer.Context,
    impl: Annotated[
        Optional[list[str]],
        typer.Option(
            "--impl",
            metavar="NAME|FILE.py:NAME",
            callback=lambda value: known_impls(value),
            help=(
                "Implementation to run; repeatable. Default: the chapter's five; 'all': every one that runs "
                f"on the device(s) and dtype. {IMPL_HELP}{_plugin_help()}. Or your own: FILE.py:NAME or "
                "package.module:NAME, a function of a (m, k) and b (k, n) returning c (m, n); loading a "
                "file runs its code. FILE.py:NAME@REV: the file (and the modules beside it) as it was at git "
                "revision REV (HEAD~5, origin/main, a tag), the work tree untouched."
            ),
        ),
    ] = None,
    shape: Annotated[
        Optional[list[Shape]],
        typer.Option(
            "--shape",
            metavar="MxKxN",
            parser=Shape.parse,
            help="a is MxK, b is KxN; repeatable. Default: the book's 5x784x10.",
        ),
    ] = None,
    dtype: Annotated[BenchDtype, typer.Option("--dtype", help="Element type of a and b.")] = BenchDtype(
        DEFAULTS.dtype
    ),
    device: Annotated[
        Optional[list[DeviceName]],
        typer.Option("--device", help="cpu or cuda; repeat both to compare them. Default: cpu."),
    ] = None,
    threads: Annotated[
        Optional[int],
        typer.Option(
            "--threads",
            min=1,
            max=os.cpu_count() or 1,
            metavar="N",
            help="Threads of torch, numba and numpy's BLAS (parent and workers), at most the cores. "
            "Default: 1 where every shape is "
            "under 4 MFLOP (a second thread cannot pay there), else torch's own (every core).",
        ),
    ] = None,
    seed: SeedOption = DEFAULTS.seed,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A few seconds: timed in fnd's own process, no worker process; 3 values."
        ),
    ] = False,
    fast: Annotated[bool, typer.Option("--fast", help="pyperf's --fast.")] = False,
    rigorous: Annotated[bool, typer.Option("--rigorous", help="pyperf's --rigorous.")] = False,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate", help="Sized for fnd compare: 16 worker processes, each timing every benchmark in turn."
        ),
    ] = False,
    max_seconds: Annotated[
        float,
        typer.Option(
            "--max-seconds",
            metavar="S",
            help="Skip an implementation whose estimated run at a shape exceeds this.",
        ),
    ] = DEFAULTS.max_seconds,
    sweep: Annotated[
        Optional[str],
        typer.Option(
            "--sweep",
            metavar="LO:HI|S,S,...",
            help="Sizes to sweep: LO:HI for powers of two, or a list. Replaces "
            "--shape (which gives the other dimensions with --sweep-dim).",
        ),
    ] = None,
    sweep_dim: Annotated[
        SweepDim,
        typer.Option(
            "--sweep-dim",
            help="all: square shapes SxSxS; m, k or n: vary that dimension of the (one) --shape. "
            "Needs --sweep.",
        ),
    ] = SweepDim.all,
    peak_gflops: Annotated[
        Optional[float],
        typer.Option(
            "--peak-gflops",
            metavar="G",
            help="The ceiling for % peak. Default: this machine's FMA peak for the run's "
            "dtype and threads, as fnd peak measures it (cached; measured once "
            "if not).",
        ),
    ] = None,
    plot: Annotated[
        bool,
        typer.Option("--plot", help="Write a roofline PNG: the machine's ceilings, every row as a point."),
    ] = False,
    order: Annotated[
        OrderName,
        typer.Option(
            "--order",
            help="interleaved: worker processes round-robin over the implementations (A B A B), so a host "
            "whose speed drifts hits all alike; sequential: each one's processes in a row, as pyperf "
            "does.",
        ),
    ] = OrderName(DEFAULTS.order),
    baseline: Annotated[
        Optional[str],
        typer.Option(
            "--baseline",
            metavar="IMPL[@DEVICE]",
            help="What speedups are relative to. Default: the implementation "
            "timed at the most shapes; on a tie the slowest rung written "
            "from scratch, else the first of your kernels.",
        ),
    ] = None,
    config: config_option("matmul-bench") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Time the chapter's matmul ladder, each implementation checked against float64 a @ b.

    Loops -> row x column -> broadcast -> einsum -> a @ b, and beyond: numba and Triton
    kernels, the GPU, size sweeps with crossovers. Timed by pyperf in worker processes.
    Exit 1 if any implementation gives a wrong result.

    Examples:

    \b
        fnd matmul-bench                    # the book's 5x784x10, the chapter's five
        fnd matmul-bench --impl einsum --impl torch --shape 256x256x256 --quick
        fnd matmul-bench --impl torch --impl numba-tiled --sweep 64:1024 --quick --plot   # a roofline PNG
        fnd matmul-bench --impl torch --device cpu --device cuda --sweep 16:4096
        fnd matmul-bench --config configs/book.toml --out results/
        fnd matmul-bench --gate --out base/        # then fnd compare base/ new/
        fnd matmul-bench --impl kern.py:mm@HEAD~5 --impl kern.py:mm --gate   # your kernel at two commits
    """
    if sweep is not None and sweep_dim.value == "all":  # a config file's --shape is left unused
        refuse_given(
            ctx,
            ["shape"],
            "--sweep with --sweep-dim all times square shapes SxSxS and replaces "
            "--shape: drop --shape, or give --sweep-dim m, k or n to vary one dimension of it",
        )
    cfg = bench_config(
        impl,
        shape,
        dtype,
        device,
        threads,
        seed,
        [p for p, on in (("quick", quick), ("fast", fast), ("rigorous", rigorous), ("gate", gate)) if on],
        max_seconds,
        peak_gflops,
        sweep,
        sweep_dim,
        baseline,
        order,
    )
    run, load = Run(ctx, out, quiet), os.getloadavg()[0]  # before fnd's own work adds to it

    from fndcli.bench.run import BenchError, run_bench
    from fndcli.bench.stats import above_ceiling, baseline_reason

    try:
        with run.working("matmul-bench") as live:
            result = run_bench(cfg, log=live.update)
    except BenchError as e:
        error_line(str(e))
        raise typer.Exit(1)
    frame = result.rows

    def write_files(files):
        files.write_csv(".csv", frame)
        if result.suite is not None:
            files.write(".pyperf.json", lambda p: result.suite.dump(str(p), replace=True))
        if sweep is not None:
            files.write_csv("-crossovers.csv", result.crossovers)
        if plot and frame["gflops"].notna().any():
            from fndcli.report.plots import host_cpu, roofline

            files.write("-roofline.png", lambda p: roofline(frame, result.ceilings, p, host_cpu()))

    wrong = frame["correct"].eq(False).any()
    base = frame["baseline"].iloc[0] if len(frame) and frame["baseline"].iloc[0] else None
    run.finish(
        write_files,
        130 if result.interrupted else (1 if wrong or result.error else 0),
        {
            "impl": list(cfg.impls),
            "shape": [str(s) for s in cfg.shapes],
            "device": list(cfg.devices),
            "threads": cfg.threads,
        },
        error=result.error,
        interrupted=result.interrupted,
        after=[f"\n{name} raised:\n{text}" for name, text in result.tracebacks.items()],
        device=",".join(cfg.devices),
        dtype=cfg.dtype,
        seed=cfg.seed,
        preset=cfg.preset,
        order=cfg.order,
        worker_order=result.order,
        pyperf_args=result.pyperf_args,
        baseline=base,
        baseline_reason=baseline_reason(frame, base, baseline, list(IMPL_SPECS)) if base else None,
        peak=result.ceilings,
        peak_note=result.peak_note,
        above_ceiling=above_ceiling(frame, result.ceilings),
        user_code_changed=userref.changes(),
        user_code_revisions=userref.revisions(cfg.impls),
        threads_note=cfg.threads_note,
        load_avg_start=load,
        unstable=_unstable(frame, load),
        blas=result.blas,
        **_matmul_settings(),
    )


def _unstable(frame, load):
    """The sidecar's warnings: each row whose timings are not to be trusted, and a busy host."""
    from fndcli.bench.stats import busy_host

    rows = frame[frame["unstable"].notna() & (frame["unstable"].astype(str) != "")]
    busy = busy_host(load, os.cpu_count() or 1)
    return [f"{r.impl} at {r.m}x{r.k}x{r.n}: {r.unstable}" for r in rows.itertuples()] + (
        [busy] if busy else []
    )


def _matmul_settings():
    """torch's matmul precision settings, for the sidecar (TF32 changes float32 results on the GPU)."""
    import torch

    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
