"""Each kind of run fnd writes, declared once, as a Django model declares its fields once.

A kind is what one command's run holds: its main CSV's columns (in the order written, each with
its type, whether it keys a row, whether `fnd show --format md` shows it, whether show and
compare read it), its other files, and the sidecar fields it writes beside every run's own
(`fndcli.runs.sidecar`). init-sweep writes two kinds: fnd's stacks, and `--model`'s diagnosis
of the user's network. The readers derive from these declarations: `runs.saved` (which columns
must be there and what they must hold), `runs.sidecar` (which fields a run writes, of what
type), `fnd show --format md` (its columns), `report.views` and `runs.compare` (one entry per
kind, tied to KINDS by tests/test_kinds.py, which also ties each kind's columns to what its
command writes). Adding a command: docs/design.md. Torch-free: `fnd --help` may read it.
"""

from fndcli.kind import BOOL, LABEL, TEXT, Column, Follow, Kind, col, fields
from fndcli.names import FINDINGS, first_column

MEASURED = fields("device dtype", str) + fields("seed", int)  # what a run measured under
USER_CODE = (
    *fields("user_code_changed", list),  # torch settings the user's code changed on import (restored)
    *fields("user_code_revisions", dict),  # {FILE.py:NAME@REV as typed: the commit REV resolved to}
)

MATMUL_BENCH = Kind(
    "matmul-bench",
    "matmul-bench",
    columns=(
        *col("impl", LABEL, key=True, md=True, read=True),
        *col("m k n", key=True, md=True, read=True),
        *col("dtype", LABEL, key=True, read=True),
        *col("device", LABEL, key=True, md=True, read=True),
        *col("threads", read=True),
        *col("median_s", md=True, read=True),
        *col("mean_s"),
        *col("stdev_s min_s", read=True),
        *col("max_s"),
        *col("n_values", read=True),
        *col("processes"),
        *col("gflops speedup", md=True, read=True),
        *col("baseline", TEXT, md=True, read=True),
        *col("pct_peak", md=True, read=True),
        *col("intensity roof_gflops"),
        *col("bound", LABEL),
        *col("max_abs_err"),
        *col("rel_err", read=True),
        *col("correct", BOOL, md=True, read=True),
        *col("error skipped", TEXT, md=True, read=True),
        *col("compile_s", read=True),
        *col("unstable", TEXT),
    ),
    fields=(
        *MEASURED,
        *fields("preset order", str),
        *fields("worker_order pyperf_args", list),
        *fields("baseline baseline_reason", str),
        *fields("peak", list),
        *fields("peak_note", str),
        *fields("above_ceiling", list),
        *fields("tf32_matmul tf32_cudnn", bool),
        *fields("float32_matmul_precision cuda_device", str),
        *USER_CODE,
        *fields("threads_note", str),
        *fields("load_avg_start", float),
        *fields("unstable", list),
        *fields("blas", list),  # the BLAS numpy's a @ b (or the user's code) called, a row each
    ),
    files=(".pyperf.json", "-crossovers.csv", "-roofline.png"),
)

INIT_SWEEP = Kind(
    "init-sweep",
    "init-sweep",
    columns=(
        *col("scheme act", LABEL, key=True, md=True, read=True),
        *col("depth width"),
        *col("seeds", read=True),
        *col("m2_last_mean"),
        *col("m2_last_geomean pred_m2_last log10_m2_last band_lo band_hi decades", md=True, read=True),
        *col(
            "decades_pred decades_sd growth_log10_per_layer overflow_layer underflow_layer "
            "frac_saturated_last"
        ),
        *col("grad_m2_input_geomean grad_pred_m2_input grad_decades", sometimes=True),  # --backward
        *col("grad_verdict", TEXT, sometimes=True),
        *col("verdict", LABEL, key=True, md=True, read=True),
        *col("reason", TEXT, md=True, read=True),
    ),
    fields=MEASURED,
    main="-summary.csv",
    files=(".csv", "-std.png", "-heatmap.png"),
    history=Follow(
        figures=(
            ("decades", "verdict"),
            ("grad_decades", "grad_verdict"),
        ),  # verdict: both ways' (--backward)
        # every verdict fndcli.init.sweep.judge and init-sweep's summary give but stable and cannot tell
        failing=(
            *("vanishing", "vanishing (width)", "vanishing (gradient)"),
            *("exploding", "exploding (gradient)", "saturated"),
        ),
    ),
)

INIT_SWEEP_MODEL = Kind(
    "init-sweep --model",
    "init-sweep",
    columns=(
        *col("model", LABEL, key=True, md=True, read=True),
        *col("input_shape", LABEL, md=True, read=True),
        *col("scheme", LABEL, key=True, md=True, read=True),
        *col("seeds layers", read=True),
        *col("decades", md=True, read=True),
        *col("decades_sd allowed", read=True),
        # read: a run must hold them, all but first_jump, which runs written before the jump finding lack
        *(Column(first_column(f), TEXT, read=f != "jump") for f in FINDINGS),
        *col("grad_decades grad_decades_sd", sometimes=True),
        *col("grad_verdict", TEXT, sometimes=True),
        *col("verdict", LABEL, key=True, md=True, read=True),
        *col("reason", TEXT, md=True, read=True),
    ),
    fields=(*MEASURED, *USER_CODE),
    main="-summary.csv",
    files=(".csv", "-params.csv", "-std.png", "-heatmap.png"),
    history=INIT_SWEEP.history,
)

GRADCHECK = Kind(
    "gradcheck",
    "gradcheck",
    columns=(
        *col("check tensor shape dtype", LABEL, key=True, md=True, read=True),
        *col("exact allclose", BOOL, read=True),
        *col("max_abs_diff rel_err rtol atol", md=True, read=True),
        *col("rule", TEXT),
        *col("passed", BOOL, key=True, md=True, read=True),
    ),
    fields=(*MEASURED, *USER_CODE, *fields("rtol atol fd_rtol fd_atol fd_eps", float)),
    history=Follow(figures=(("rel_err", "passed"),), failing=("False",)),
)

TRAIN = Kind(
    "train",
    "train",
    columns=(
        *col("epoch", key=True, md=True, read=True),
        *col("train_loss valid_loss valid_metric", md=True, read=True),
        *col("seconds", read=True),
        *col("step_s ref_step_s", md=True),
        *col("ref_train_loss ref_valid_loss", read=True),
        *col("loss_rel_diff", md=True, read=True),
    ),
    fields=(
        *MEASURED,
        *fields("baseline", str),
        *USER_CODE,
        *fields("manual_step_s autograd_step_s", float),
        *fields("steps", int),
        *fields("max_rel_loss_diff", float),
        *fields("max_rel_loss_diff_at", str),
        *fields("max_rel_param_diff", float),
        *fields("max_rel_param_diff_at", str),
        *fields("baseline_metric", float),
        *fields("diverged_epoch", int),
        *fields("seeds_trained", int),  # --stats: the seeds observed
    ),
    files=("-loss.png", "-stats.csv", "-findings.csv", "-stats.png"),
    history=Follow(
        figures=(("train_loss", None), ("valid_loss", None), ("valid_metric", None)), last="epoch"
    ),
)

TRAIN_LR_FIND = Kind(  # `fnd train --lr-find`: fastai's learning-rate sweep, one row a step
    "train --lr-find",
    "train",
    columns=(*col("step", key=True, md=True, read=True), *col("lr loss smoothed", md=True, read=True)),
    # valley's rate; fastai's stop (smoothed), its step; the lowest smoothed loss; where batch loss diverged
    fields=(*MEASURED, *USER_CODE, *fields("suggestion stop_lr stop_step min_lr diverged_lr", float)),
    files=("-lr-find.png",),
)

TRAIN_WIDTHS = Kind(  # `fnd train --widths`: mup's coordinate check, one row a layer and size
    "train --widths",
    "train",
    columns=(
        *col("param", LABEL, md=True, read=True),  # a setting (--param): runs of both compare row by row
        *col("layer what", LABEL, key=True, md=True, read=True),
        *col("step", key=True, md=True, read=True),  # the step whose sizes are judged
        *col("per_doubling", md=True, read=True),  # x2^slope: the size's growth per doubling of the width
        *col("slope slope_se", read=True),  # log2 size against log2 width, the mean over seeds, its error
        *col("verdict", LABEL, md=True, read=True),
    ),
    fields=(*MEASURED, *fields("widths", list), *fields("steps", int)),
    files=("-coords.csv", "-widths.png"),
)

REPRODUCE = Kind(
    "reproduce",
    "reproduce",
    columns=(
        *col("section claim", LABEL, key=True, md=True, read=True),
        *col("source", LABEL),
        *col("book fnd", LABEL, md=True, read=True),
        *col("verdict", LABEL, key=True, md=True, read=True),
        *col("rule", LABEL, md=True),
        *col("machine_dependent", BOOL),
    ),
    fields=fields("counts", dict),
    main="claims.csv",
    own_directory="reproduce.json",
    files=("report.md", "report.html", "*.csv", "*.png"),
    history=Follow(figures=(("fnd", "verdict"),), failing=("fails",)),  # a text figure: shown, not compared
)

PEAK = Kind(
    "peak",
    "peak",
    columns=(
        *col("what kernel dtype", LABEL, key=True, md=True, read=True),
        *col("threads", key=True, md=True, read=True),
        *col("device", LABEL, key=True, md=True, read=True),
        *col("isa", LABEL, md=True, read=True),
        *col("gflops gb_s", md=True, read=True),
        *col("best_s", read=True),
        *col("calls work repeats"),
        *col("load_avg"),  # the 1-minute load average when it was measured (rows cached before: none)
        *col("measured_utc source", LABEL, md=True, read=True),
    ),
    fields=(
        *fields("device", str),
        *fields("measured_rows", int),
        *fields("cache_file cache_note cache_refused", str),
    ),
    history=Follow(
        figures=(("gflops", None), ("gb_s", None)), once="measured_utc", measured=True, settings=False
    ),
)

COMPARE = Kind(
    "compare",
    "compare",
    columns=(
        *col("key what", LABEL, key=True),
        *col("base new", LABEL),
        *col("change ci_low ci_high p n_base n_new"),
        *col("detectable", LABEL),
        *col("verdict", LABEL, key=True),
        *col("note", TEXT),
    ),
    fields=(
        *fields("compared base_run new_run", str),
        *fields("counts", dict),
        *fields("geomean_ratio", float),
        *fields("machine_differs software_differs settings_differ", list),
        *fields("gated not_judged", int),
        *fields("pair", list),
    ),
    read=False,
)

HISTORY = Kind(  # `fnd history`: a reader of the history store, one row per benchmark and commit
    "history",
    "history",
    columns=(
        *col("benchmark", LABEL, key=True),
        *col("threads"),
        *col(
            "anchor", LABEL
        ),  # --anchor IMPL: median_s, low_s and high_s are then times over IMPL's, no unit
        *col("commit", LABEL, key=True),
        *col("date", LABEL),
        *col("subject", TEXT),
        *col("median_s low_s high_s n"),
        *col("change", LABEL),
        *col("size p"),
    ),
    fields=(
        *fields("store machine", str),
        *fields("benchmarks change_points gated", int),
        *fields("html", str),  # --html's page (DIR/index.html), outside the run's directory
        *fields("anchor", str),  # --anchor IMPL
    ),
    files=("-*.png",),  # --plot: one a benchmark, named after it
    read=False,
)

# `fnd history --command NAME`: one row per series (a row's key values, and its settings) and commit
HISTORY_FIGURES = Kind(
    "history --command",
    "history",
    columns=(
        *col("series figure commit", LABEL, key=True),  # figure: the column followed
        *col("date", LABEL),
        *col("subject", TEXT),
        *col("value verdict", LABEL),  # value: a number, or a text figure (reproduce's fnd column)
        *col("runs"),
        *col("change", LABEL),
        *col("size p"),
    ),
    fields=(*fields("store machine", str), *fields("series changes gated", int)),  # the command: in config
    read=False,
)

# `fnd bisect`: one row per run it made (GOOD vs BAD, each step, the first bad commit against its parent)
BISECT = Kind(
    "bisect",
    "bisect",
    columns=(
        *col("step", key=True, read=True),
        *col("role", TEXT, md=True, read=True),  # GOOD vs BAD, GOOD, BAD, step, vs parent
        *col(
            "commit", TEXT, key=True, md=True, read=True
        ),  # the full hash (TEXT: pandas reads 1e5... as a number)
        *col("subject", TEXT, md=True, read=True),
        *col("date", TEXT, read=True),  # the author date
        *col("verdict", TEXT, md=True, read=True),  # good, bad, skip; a paired verdict; exit 0 or 1
        *col("change ci_low ci_high", md=True, read=True),  # the commit against GOOD (vs parent: its parent)
        *col("runs seconds", md=True, read=True),
        *col("run", TEXT, read=True),  # the stems of the step's runs, in the same directory
        *col("note", TEXT, md=True, read=True),
    ),
    fields=(
        *fields("outcome mode repo good bad", str),
        *fields("bisected among", list),  # the command after --; the commits the first bad one is among
        *fields("first_bad first_bad_subject first_bad_date parent", str),
        *fields("candidates runs", int),
    ),
)

KINDS = (
    *(MATMUL_BENCH, INIT_SWEEP, INIT_SWEEP_MODEL, GRADCHECK, TRAIN, TRAIN_LR_FIND, TRAIN_WIDTHS),
    *(REPRODUCE, PEAK, COMPARE, HISTORY, HISTORY_FIGURES, BISECT),
)
COMMANDS = tuple(dict.fromkeys(k.command for k in KINDS))
# the commands `fnd history --command` follows: matmul-bench's timings, and each kind's Follow
FOLLOWED = (MATMUL_BENCH.command, *dict.fromkeys(k.command for k in KINDS if k.history))
READ = tuple(
    dict.fromkeys(k.command for k in KINDS if k.read)
)  # the commands whose runs show and compare read


def kind_of(meta):
    """The Kind of a run from its sidecar: its command's, INIT_SWEEP_MODEL for an init-sweep of a --model,
    TRAIN_LR_FIND for a train --lr-find, TRAIN_WIDTHS for a train --widths,
    HISTORY_FIGURES for a history of another command than matmul-bench."""
    config = meta.get("config") or {}
    if meta["command"] == "init-sweep" and config.get("model"):
        return INIT_SWEEP_MODEL
    if meta["command"] == "train" and (config.get("lr-find") or config.get("widths")):
        return TRAIN_LR_FIND if config.get("lr-find") else TRAIN_WIDTHS
    if meta["command"] == "history" and config.get("command", MATMUL_BENCH.command) != MATMUL_BENCH.command:
        return HISTORY_FIGURES
    return next(k for k in KINDS if k.command == meta["command"])
