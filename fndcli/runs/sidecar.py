"""A run's sidecar, `<command>-<stamp>.json` (reproduce: `reproduce.json`): the one schema every command writes.

`fnd show` and `fnd compare` read it back (`fndcli.runs.saved`). Every field is documented
here once; a command fills the ones that concern it and `to_dict` leaves out the
command-specific ones it did not fill. `schema` changes when a field changes meaning.
"""
import dataclasses
from dataclasses import dataclass, field

SCHEMA = 1


@dataclass
class Sidecar:
    # --- every run ---
    command: str                        # the command that ran: matmul-bench, init-sweep, gradcheck, train, ...
    config: dict                        # the effective options, keyed as in a config file (flags > file > defaults)
    files: list = field(default_factory=list)  # the run's files, sidecar excluded; the main CSV first
    status: str = "complete"            # complete | interrupted (Ctrl-C: what finished is kept) | failed
    exit_code: int = 0                  # the command's exit code
    error: str | None = None            # the one line on stderr for a failure after the work started
    config_file: str | None = None      # --config FILE.toml, when given
    schema: int = SCHEMA
    machine: dict = field(default_factory=dict)  # where and with what: fndcli.runs.files.run_metadata, flattened
    # --- what the run measured under (matmul-bench, init-sweep, gradcheck, train) ---
    device: str | None = None           # cpu, cuda, or cpu,cuda for a matmul-bench over both
    dtype: str | None = None            # float32, float64, ...
    seed: int | None = None
    # --- matmul-bench ---
    preset: str | None = None           # the pyperf preset: default, quick, fast, rigorous, gate
    order: str | None = None            # interleaved or sequential worker processes
    worker_order: list | None = None    # the worker runs in the order they ran
    pyperf_args: list | None = None     # pyperf's arguments, one list per worker run
    baseline: str | None = None         # matmul-bench: the series speedups are over; train: the trivial model
    baseline_reason: str | None = None  # why that series is the baseline
    peak: list | None = None            # the ceilings % peak is of: [{device, dtype, threads, gflops, gb_s, source,
    #                                     given (only with --peak-gflops: true)}]
    peak_note: str | None = None        # why some rows have no % peak (a dtype fnd peak does not measure, ...)
    above_ceiling: list | None = None   # rows faster than their ceiling: no % peak (the ceiling is wrong)
    tf32_matmul: bool | None = None     # torch's matmul precision settings (TF32 changes float32 on a GPU)
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str | None = None
    cuda_device: str | None = None
    user_code_changed: list | None = None  # torch settings the user's code changed on import (restored)
    load_avg_start: float | None = None  # the host's 1-minute load average when the run started (os.getloadavg)
    unstable: list | None = None        # warnings: rows whose timings are not to be trusted, a busy host (bench.stats)
    # --- peak ---
    measured_rows: int | None = None    # rows measured by this run; the rest came from the cache
    cache_file: str | None = None       # the cache of ceilings it read and wrote
    cache_note: str | None = None       # why the cache on disk was not used (unreadable, another machine's)
    # --- gradcheck ---
    rtol: float | None = None           # the autograd rows' tolerances
    atol: float | None = None
    fd_rtol: float | None = None        # torch.autograd.gradcheck's, for the finite-difference rows
    fd_atol: float | None = None
    fd_eps: float | None = None
    # --- train ---
    manual_step_s: float | None = None  # the hand-written model's mean seconds per step
    autograd_step_s: float | None = None  # its autograd twin's
    steps: int | None = None
    max_rel_loss_diff: float | None = None  # the largest relative difference from the twin, and where
    max_rel_loss_diff_at: str | None = None
    max_rel_param_diff: float | None = None
    max_rel_param_diff_at: str | None = None
    baseline_metric: float | None = None  # the trivial model's validation metric
    diverged_epoch: int | None = None
    # --- compare ---
    compared: str | None = None         # the command whose runs were compared
    base_run: str | None = None         # the two sidecars
    new_run: str | None = None
    counts: dict | None = None          # compare: verdict -> rows; reproduce: verdict -> claims
    geomean_ratio: float | None = None  # of the NEW/BASE time ratios
    machine_differs: list | None = None  # [(key, base, new)]
    software_differs: list | None = None
    settings_differ: list | None = None
    gated: int | None = None            # rows that fail the gate
    pair: list | None = None            # compare --pair A B: the two implementations of one run, B judged against A

    def to_dict(self, given=()):
        """The JSON object: every run's fields, the machine's, and the command-specific ones that were filled or
        `given` (named by the command, even as None: a train run without a twin has autograd_step_s null)."""
        keep = {f.name for f in dataclasses.fields(self)[:8]} | set(given)
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "machine":
                out.update(value)
            elif f.name in keep or value is not None:
                out[f.name] = value
        out["config"] = out.pop("config")  # last: the longest part, read after the facts
        return out
