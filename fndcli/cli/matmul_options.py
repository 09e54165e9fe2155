"""matmul-bench's options checked into its BenchConfig before any work: exit 2 naming the option."""

import typer

from fndcli import userref
from fndcli.bench.spec import PRESETS, auto_threads, estimate_run_seconds, parse_sweep, sweep_shapes
from fndcli.cli.options import check_devices, check_memory, positive_finite
from fndcli.memory import bench_bytes
from fndcli.names import IMPL_SPECS
from fndcli.settings import BenchConfig
from fndcli.userref import RefError, is_reference, plugins

DEFAULTS = BenchConfig()


def bench_config(
    impl,
    shape,
    dtype,
    device,
    threads,
    seed,
    presets,
    max_seconds,
    peak_gflops,
    sweep,
    sweep_dim,
    baseline,
    order,
):
    """The run's BenchConfig from the options, every one checked: exit 2 with the option's name if not."""
    if len(presets) > 1:
        raise typer.BadParameter(
            f"choose one of --quick, --fast, --rigorous, --gate, not "
            f"{' and '.join(f'--{p}' for p in presets)}",
            param_hint=f"'--{presets[1]}'",
        )
    positive_finite(max_seconds, "--max-seconds")
    if peak_gflops is not None:
        positive_finite(peak_gflops, "--peak-gflops")
    else:
        check_ceiling_cache()
    devices = tuple(dict.fromkeys(d.value for d in device)) if device else DEFAULTS.devices
    check_devices(devices)
    impls = resolve_impls(impl, devices, dtype.value)
    check_baseline(baseline, impls, devices)
    shapes = tuple(dict.fromkeys(shape)) if shape else DEFAULTS.shapes
    if sweep is None and sweep_dim.value != "all":
        raise typer.BadParameter(
            f"--sweep-dim {sweep_dim.value} needs --sweep (the sizes to give it)", param_hint="'--sweep-dim'"
        )
    if sweep is not None and sweep_dim.value != "all" and len(shapes) > 1:
        raise typer.BadParameter(
            f"--sweep-dim {sweep_dim.value} varies one shape's {sweep_dim.value}: give one "
            f"--shape, not {len(shapes)}",
            param_hint="'--sweep-dim'",
        )
    if sweep is not None:
        try:
            shapes = tuple(sweep_shapes(parse_sweep(sweep), sweep_dim.value, shapes[0]))
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="'--sweep'")
    threads, threads_note = (threads, None) if threads else auto_threads(shapes)
    cfg = BenchConfig(
        impls=impls,
        shapes=shapes,
        dtype=dtype.value,
        devices=devices,
        threads=threads,
        threads_note=threads_note,
        seed=seed,
        preset=presets[0] if presets else "default",
        max_seconds=max_seconds,
        peak_gflops=peak_gflops,
        sweep_dim=sweep_dim.value if sweep else None,
        baseline=baseline,
        order=order.value,
    )
    check_work(cfg, "--sweep" if sweep else "--shape")
    return cfg


def check_ceiling_cache():
    """% peak's ceilings are measured into fnd peak's cache: a cache that cannot be written is refused now,
    before anything runs (--peak-gflops needs none)."""
    from fndcli.bench.peak import cache_problem

    problem = cache_problem()
    if problem:
        raise typer.BadParameter(
            f"{problem}; or give the ceiling with --peak-gflops", param_hint="FND_CACHE_DIR"
        )


def known_impls(names):
    """Each --impl is a registry name, 'all', a plugin, or has the form of a reference to the user's code."""
    found = plugins()
    for name in names or ():
        if name not in IMPL_SPECS and name != "all" and name not in found and not is_reference(name):
            raise typer.BadParameter(
                f"{name!r} is not an implementation; known: {', '.join([*IMPL_SPECS, *found])}, "
                "all, or your own FILE.py:NAME"
            )
    return names


def resolve_impls(impl, devices, dtype):
    """The implementations to run: the chapter's five by default, 'all' for every one that fits the
    devices and dtype (and every installed plugin); an explicit one that cannot run is an error naming
    what it can do; a reference to the user's code is loaded here, so a bad one stops the run (exit 2)."""
    names = list(impl) if impl else list(DEFAULTS.impls)
    found = plugins()
    if "all" in names:
        names = (
            [n for n, s in IMPL_SPECS.items() if set(s.devices) & set(devices) and dtype in s.dtypes]
            + [n for n in names if n != "all" and n not in IMPL_SPECS]
            + list(found)
        )
    for name in names:
        if name in found:
            continue
        if name not in IMPL_SPECS:  # a reference (_known checked the rest)
            try:
                userref.check_kernel(userref.load(name, "function of (a, b)"), name)
            except RefError as e:
                raise typer.BadParameter(str(e), param_hint="'--impl'")
            continue
        spec = IMPL_SPECS[name]
        if not set(spec.devices) & set(devices):
            raise typer.BadParameter(
                f"{name} runs only on {' or '.join(spec.devices)}; use --device {spec.devices[0]}"
                + (f" ({spec.elsewhere})" if spec.elsewhere else ""),
                param_hint="'--impl'",
            )
        if dtype not in spec.dtypes:
            raise typer.BadParameter(
                f"{name} does not support {dtype}; it takes {', '.join(spec.dtypes)}", param_hint="'--dtype'"
            )
    return tuple(dict.fromkeys(names))


def check_baseline(baseline, impls, devices):
    """--baseline must name one of the run's implementations: IMPL (FILE.py:NAME@REV too), or IMPL@DEVICE."""
    if baseline is None or baseline in impls:
        return
    impl, at, device = baseline.rpartition("@") if "@" in baseline else (baseline, "", "")
    if impl not in impls or (at and device not in devices):
        runs = ", ".join(impls) + (f" on {', '.join(devices)}" if len(devices) > 1 else "")
        raise typer.BadParameter(
            f"{baseline!r} is not in this run; it runs {runs}", param_hint="'--baseline'"
        )


def check_work(cfg, option):
    """Each shape that will run (the cost guard's skips left out) must fit, with every implementation there;
    a run in which the cost guard would skip everything is refused: it would time nothing."""
    preset = PRESETS[cfg.preset]
    anything = False
    for shape in cfg.shapes:
        for device in cfg.devices:
            runs = [
                i
                for i in cfg.impls
                if i not in IMPL_SPECS
                or (
                    device in IMPL_SPECS[i].devices  # the user's: unknown
                    and estimate_run_seconds(i, shape, preset, device) <= cfg.max_seconds
                )
            ]
            if runs:
                anything = True
                check_memory(bench_bytes(shape, cfg.dtype, runs), device, f"matmul-bench at {shape}", option)
    if not anything:
        raise typer.BadParameter(
            f"every implementation at every shape is estimated to take longer than "
            f"--max-seconds {cfg.max_seconds:g}: nothing would be timed; use smaller shapes "
            "or a larger --max-seconds",
            param_hint=f"'{option}'",
        )
