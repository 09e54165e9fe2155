"""What each command prints, rebuilt from its saved run: the one renderer per command.

A command writes its files, reads its run back (`fndcli.runs.saved.load`) and prints
`render(run)`; `fnd show RUN` prints the same `render(run)`, so a run shown later reads as it
did when it ran. A view takes only what the files hold (the rows and the sidecar) and
yields rich renderables or markup strings. Nothing here computes a result.
"""

import math

from rich.markup import escape

from fndcli import kinds
from fndcli.machine import cpu_words
from fndcli.report import bench_tables, tables, train_tables
from fndcli.report.figures import human_seconds
from fndcli.settings import task_loss

INTERRUPTED = "[yellow]interrupted: {what}[/]"


def _is(column, value):
    """Rows whose `column` reads as `value` (True/False), whether the CSV gave bools or strings."""
    return column.astype(str) == str(value)


def _sizes(cfg):
    """n_in -> hidden... -> outputs, as the run's config gives them (train's classification: its classes)."""
    outputs = cfg.get("classes") if cfg.get("task") == "classification" else cfg.get("n-out")
    return " -> ".join(map(str, [cfg.get("n-in"), *(cfg.get("hidden") or []), outputs]))


def matmul_bench(run):
    m, rows = run.meta, run.rows
    threads = int(rows["threads"].iloc[0]) if len(rows) else m.get("threads")
    title = bench_tables.bench_title(
        m.get("dtype"), str(m.get("device")).split(","), threads, m.get("preset"), m.get("order")
    )
    peak = m.get("peak") or []
    yield bench_tables.bench_table(
        rows,
        title,
        bench_tables.bench_caption(
            m.get("baseline"),
            peak if isinstance(peak, list) else [],
            m.get("baseline_reason") or "",
            m.get("peak_note"),
            m.get("above_ceiling") or [],
            m.get("unstable") or [],
            m.get("threads_note"),
            m.get("blas") or [],
        ),
    )
    crossovers = run.extras.get("-crossovers.csv")
    if crossovers is not None and len(crossovers):
        yield bench_tables.crossover_table(crossovers, bench_tables.CROSSOVER_TITLE)
    failed = rows[_is(rows["correct"], False)]
    error = failed["error"].astype(str)
    wrong, wrote = error.str.startswith("wrong result"), error.str.startswith("wrote to its input")
    if wrong.any():
        names = ", ".join(dict.fromkeys(failed.loc[wrong, "impl"]))
        yield f"[bold red]wrong result:[/] {names} (checked against float64 a @ b)"
    if wrote.any():
        names = ", ".join(dict.fromkeys(failed.loc[wrote, "impl"]))
        yield f"[bold red]changed its inputs:[/] {names} (each kernel is checked on its own copy of a and b)"
    if (~wrong & ~wrote).any():  # a raising kernel gave no result
        names = ", ".join(dict.fromkeys(failed.loc[~wrong & ~wrote, "impl"]))
        yield (
            f"[bold red]no result to check:[/] {names} (raised, or returned something other than a tensor of "
            "the right shape and dtype: the error column says which)"
        )
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept every check that ran and every timing that finished")


def init_sweep(run):
    m, cfg = run.meta, run.meta.get("config", {})
    yield tables.sweep_table(
        run.rows,
        tables.sweep_title(
            cfg.get("depth"),
            cfg.get("width"),
            cfg.get("batch"),
            cfg.get("seeds"),
            m.get("dtype"),
            run.rows,
            m.get("status") == "interrupted",
        ),
    )
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the networks that finished")


def init_sweep_model(run):
    m, cfg, summary = run.meta, run.meta.get("config", {}), run.rows
    layers, backward = run.extras.get(".csv"), bool(cfg.get("backward"))
    if layers is not None and len(layers):
        seeds = sorted(set(layers["seed"]))
        first = layers[layers["seed"] == seeds[0]]
        more = f" (the CSV has all {len(seeds)} seeds)" if len(seeds) > 1 else ""
        yield tables.probe_table(
            first,
            f"init-sweep --model {cfg.get('model')}: input {cfg.get('input-shape')}, "
            f"scheme {(cfg.get('scheme') or ['keep'])[0]}, {m.get('dtype')}, "
            f"seed {seeds[0]}{more}",
            backward,
        )
    for row in summary.itertuples():
        style = tables.VERDICT_STYLE.get(row.verdict.split(" ")[0], "bold red")
        yield (
            f"verdict: [{style}]{row.verdict}[/] over {row.seeds} seed(s) and {row.layers} layers: "
            f"{escape(row.reason)}"
        )
        if backward and math.isfinite(row.grad_decades):
            yield (
                f"gradient: {row.grad_verdict}, {row.grad_decades:+.2f} decades "
                "from the output back to the input"
            )
        elif backward:
            yield (
                f"gradient: {row.grad_verdict}; "
                "the trend in decades cannot be measured (the verdict says why)"
            )
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the seeds that finished")


def gradcheck(run):
    m, cfg, rows = run.meta, run.meta.get("config", {}), run.rows
    whose = next((f"{cfg[k]}, " for k in ("model", "layer") if cfg.get(k)), "")
    yield tables.gradcheck_table(
        rows,
        f"gradcheck: {whose}{cfg.get('batch')} x {_sizes(cfg)}, {cfg.get('loss')}, "
        f"{m.get('dtype')}, init {cfg.get('init')}",
    )
    yield (
        f"autograd rows pass when max|diff| <= {m.get('atol'):g} + {m.get('rtol'):g} * max|ref|; "
        f"finite-difference rows when torch.autograd.gradcheck (float64, eps {m.get('fd_eps'):g}) finds "
        f"|analytic - numeric| <= {m.get('fd_atol'):g} + {m.get('fd_rtol'):g} * |numeric| at every element"
    )
    failed = rows[~_is(rows["passed"], True)]
    if m.get("exit_code") == 0:
        yield "[green]all checks pass[/]"
    elif len(failed):
        yield f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed['tensor'])}"
    if m.get("status") == "interrupted":  # the checks that did not run neither passed nor failed
        yield INTERRUPTED.format(what=f"kept the {len(rows)} check(s) that finished")


def train(run):
    m, cfg = run.meta, run.meta.get("config", {})
    metric, caption = train_tables.train_labels(
        cfg.get("task"), m.get("baseline"), m.get("baseline_metric", math.nan)
    )
    # the user's: its own loss
    model = f", {cfg['model']}" if cfg.get("model") else f", {task_loss(cfg.get('task'))}"
    momentum = f" momentum {cfg['momentum']:g}" if cfg.get("momentum") else ""
    yield train_tables.train_table(
        run.rows,
        f"train: {cfg.get('task')}, {_sizes(cfg)}{model}, SGD lr "
        f"{cfg.get('lr'):g}{momentum}, {m.get('dtype')}",
        metric,
        caption,
    )
    mine, twin = m.get("manual_step_s"), m.get("autograd_step_s")
    if not m.get("steps") or not mine:
        yield "no training step finished: no step time"
    elif twin:
        yield (
            f"hand-written step {human_seconds(mine)}, autograd twin {human_seconds(twin)}: "
            f"the hand-written step takes {mine / twin:.2f}x the twin's time"
        )
    else:
        yield f"hand-written step {human_seconds(mine)}"
    diffs = [
        f"{what} {m[key]:.2e} at {m.get(key + '_at')}"
        for what, key in (("loss", "max_rel_loss_diff"), ("parameters", "max_rel_param_diff"))
        if m.get(key) is not None
    ]
    if diffs:
        yield f"largest relative difference from the twin: {', '.join(diffs)}; tolerance {cfg.get('rtol'):g}"
    if m.get("diverged_epoch"):  # the run's own Error line went to stderr: its saved run says it here too
        yield f"[bold red]training diverged in epoch {m['diverged_epoch']}[/] (non-finite loss)"
    stats, findings = run.extras.get("-stats.csv"), run.extras.get("-findings.csv")
    if stats is not None and len(stats):
        yield train_tables.dynamics_table(stats, f"inside, every {cfg.get('stats')} step(s): the first seed")
    if findings is not None:
        yield from _findings(findings, m.get("seeds_trained") or 1)
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the epochs that finished")


def _findings(findings, seeds):
    """train --stats' findings, one line each: those every seed shows, then those some seeds show."""
    if not len(findings):
        yield f"[green]no finding[/] in the layers' statistics ({seeds} seed(s))"
    for row in findings.itertuples():
        where = "the loss" if row.layer == "loss" else row.layer
        if row.verdict == "holds":
            yield (
                f"[bold]{escape(row.finding)}[/] at {escape(where)}, step {row.step}: "
                f"{escape(str(row.detail))} ({row.seeds_with} of {row.seeds} seeds)"
            )
    for row in findings[findings["verdict"] != "holds"].itertuples():
        yield (
            f"[yellow]cannot tell[/] whether {escape(row.finding)} at {escape(row.layer)}: "
            f"on {row.seeds_with} of {row.seeds} seeds"
        )


def train_lr_find(run):
    m, cfg = run.meta, run.meta.get("config", {})
    yield train_tables.lr_find_table(
        run.rows,
        f"train --lr-find: {cfg.get('task')}, {_sizes(cfg)}, batch {cfg.get('batch-size')}, {m.get('dtype')}",
    )
    if m.get("suggestion") is not None:
        yield f"[bold]suggested rate (valley): {m['suggestion']:.3g}[/]"
    if m.get("stop_lr") is not None:
        yield f"the smoothed loss passed 4x its best at lr {m['stop_lr']:.3g} (step {m.get('stop_step')})"
    else:
        yield "the smoothed loss never passed 4x its best: the sweep ran its 100 steps"
    if m.get("diverged_lr") is not None:
        yield f"the batch loss passed 4x its lowest at lr {m['diverged_lr']:.3g}"
    if m.get("min_lr") is not None:
        yield f"lowest smoothed loss at lr {m['min_lr']:.3g}"
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the steps that finished")


def train_widths(run):
    m, cfg = run.meta, run.meta.get("config", {})
    rows = run.rows
    param = rows["param"].iloc[0] if len(rows) else cfg.get("param")
    depth = len(cfg.get("hidden") or [])
    widths = ",".join(map(str, m.get("widths") or []))
    lr = cfg.get("lr")
    title = f"train --widths {widths}: mup's coordinate check, {param}, {depth} hidden layer(s), lr {lr:g}"
    yield train_tables.widths_table(rows, title)
    for row in rows[rows["verdict"].isin(["grows", "shrinks"])].itertuples():
        yield (
            f"[bold]{row.layer}[/]: the {row.what} {row.verdict} with the width, x{row.per_doubling:.2f} a "
            "doubling"
        )
    if len(rows) and (rows["verdict"] == "flat").all():
        yield f"[green]every layer's activation and update is flat in the width[/] ({param})"
    if m.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the widths that finished")


def reproduce(run):
    yield tables.claims_table(run.rows, tables.claims_title(len(run.rows)))
    for row in run.rows[run.rows["verdict"] == "fails"].itertuples():
        yield f"[bold red]fails:[/] {row.claim}: {row.fnd} ({row.rule})"
    if run.meta.get("status") == "interrupted":
        yield INTERRUPTED.format(what="kept the sections that finished")


def peak(run):
    m, rows = run.meta, run.rows
    yield bench_tables.peak_table(
        rows,
        "this machine's ceilings: "
        + cpu_words(m.get("cpu_model"), m.get("cpu_count"), rows["isa"].iloc[0] if len(rows) else ""),
        bench_tables.peak_caption(
            rows,
            m.get("measured_rows") or 0,
            m.get("cache_file"),
            m.get("cache_note"),
            m.get("cache_refused"),
        ),
    )


def bisect(run):
    m, rows = run.meta, run.rows
    runs = int(rows["runs"].sum()) if len(rows) else 0
    yield tables.bisect_table(
        rows,
        f"bisect {m.get('good', '')[:12]}..{m.get('bad', '')[:12]}: {m.get('candidates')} commit(s) that "
        f"change the code, {runs} run(s), {float(rows['seconds'].sum()) if len(rows) else 0:.0f} s",
    )
    yield from _bisect_outcome(m, rows)


def _bisect_outcome(m, rows):
    outcome, ends = m.get("outcome"), rows[rows["role"].isin(["GOOD vs BAD", "BAD"])]
    if outcome == "found":
        yield (
            f"[bold]first bad commit:[/] {m['first_bad']} {escape(m.get('first_bad_subject') or '')} "
            f"(author date {m.get('first_bad_date')})"
        )
        parent = rows[rows["role"] == "vs parent"]
        for r in parent.itertuples():
            interval = "" if math.isnan(r.ci_low) else f" [{r.ci_low:+.1%}, {r.ci_high:+.1%}]"
            yield (
                f"against its parent {str(m.get('parent'))[:12]}: {r.verdict} {r.change:+.1%}{interval} "
                f"at {escape(r.note)}"
            )
        if not len(parent) and m.get("parent"):
            yield f"its parent {m['parent'][:12]} runs like GOOD (by the steps)"
    elif outcome == "no difference":
        yield "[bold]no difference[/] between GOOD and BAD: nothing to bisect, no commit named"
        if m.get("mode") == "check" and "exit 1" in set(rows.loc[rows["role"] == "GOOD", "verdict"]):
            yield "GOOD fails the check too (exit 1): name a GOOD where it passes"
    elif outcome == "cannot tell":
        why = ends["note"].iloc[0] if len(ends) else ""
        yield f"[yellow]cannot tell whether GOOD and BAD differ[/]: {escape(why)}"
    elif outcome == "among":
        yield (
            "[yellow]the first bad commit is one of[/] "
            + ", ".join(c[:12] for c in m.get("among") or [])
            + ": the others could not be judged"
        )
    elif outcome == "interrupted":
        yield INTERRUPTED.format(what="the steps that finished are kept")


# Each kind of run show reads (fndcli.kinds), and its view; tests/test_kinds.py ties the two.
VIEWS = {
    kinds.MATMUL_BENCH: matmul_bench,
    kinds.INIT_SWEEP: init_sweep,
    kinds.INIT_SWEEP_MODEL: init_sweep_model,
    kinds.GRADCHECK: gradcheck,
    kinds.TRAIN: train,
    kinds.TRAIN_LR_FIND: train_lr_find,
    kinds.TRAIN_WIDTHS: train_widths,
    kinds.REPRODUCE: reproduce,
    kinds.PEAK: peak,
    kinds.BISECT: bisect,
}


def render(run):
    """What `run`'s command printed: its tables and the lines under them."""
    return list(VIEWS[run.kind](run))
