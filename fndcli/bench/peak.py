"""This machine's ceilings: FMA throughput (GFLOP/s) and memory bandwidth (GB/s), measured and cached.

Why: a % of peak relative to another library (torch's best in the run) flips from machine to
machine; relative to the hardware's own limits it does not (BLIS, the Empirical Roofline Toolkit).

How (`fndcli.kernels.peak_source` has the kernels): in a process of its own, with the numba
settings of `fndcli.kernels.jitenv` (the FMA chains must vectorise), for each dtype and thread
count every chain count in CHAINS is calibrated to calls of at least CALL_S and timed REPEATS
times; the best call of the best kernel is the ceiling: a ceiling is what the machine can do, so
the fastest repeat is the estimate (a neighbour's load only ever slows a repeat down). Bandwidth
likewise, from STREAM's copy and triad over float64 arrays of max(4 x the last-level cache, 64 MiB)
each; the larger of the two is the row the roofline uses.

The cache, one JSON file (`cache_file()`), holds rows keyed by the machine (`machine_key()`:
CPU model, cores, vector unit, fnd's version) and by (what, kernel, dtype, threads, device); a
row it lacks is measured and added, `refresh` measures again. matmul-bench asks `ceilings()` for
the dtype and threads of its run.

A ceiling measured on a busy host is low, and every % peak after it high, so what was measured is cached
only if it agrees with itself and with the cache (`disagreements`): t threads on t cores at least SCALING x
t x one thread's FMA rate (and not above t x it / SCALING), and float64's rate FLOAT64_RATIO of float32's
(a SIMD register holds half as many float64 lanes). Each row records the load average it was measured at.
"""

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import fndcli
from fndcli.kernels import jitenv
from fndcli.kinds import PEAK

CALL_S = 0.02  # a timed call lasts at least this long (a timer's resolution and a thread's start are noise)
REPEATS = 5  # timed calls per kernel; the best is kept
STREAM_MIN_BYTES = 64 << 20
# Each STREAM array at most this: a VM reports its socket's whole L3 (480 MB on the Intel Xeon VM, shared with
# other tenants), and 4 x that is 5.8 GB to fill. Measured there, triad at 1 thread: 15.5 GB/s on 64 MB
# arrays,
# 15.2 on 256 MB, 15.1 on 1.9 GB; filling the 1.9 GB ones took 8.6 s, the 256 MB ones 1.2 s. Copy is LLVM's
# memcpy there, and glibc's memcpy switches to non-temporal stores (no write-allocate) above a threshold it
# sets
# from the L3's size: 2 threads copying 128 MB each read 27.5 GB/s, 256 MB each 45-48; triad 28-29 either way.
STREAM_MAX_BYTES = 256 << 20
CUDA_STREAM_BYTES = 256 << 20  # each array on a GPU (fndcli.kernels.cuda_peak.STREAM_BYTES; L2 is 50-60 MB)
COLUMNS = PEAK.written()  # peak's CSV (fndcli.kinds); the cache holds the same rows without `source`
# t threads on t physical cores must run at least this share of t x one thread's FMA rate: 2 threads >= 1.6x
# (each core has its own FMA units; measured 1.9-2.0x on quiet hosts: docs/measured.md)
SCALING = 0.8
# float64's FMA rate over float32's on the CPU: half (the lanes), +-25 % for the clock and the timer
FLOAT64_RATIO = (0.4, 0.625)


class PeakError(Exception):
    """The measuring process failed (its last line says why)."""


def cache_file():
    """$FND_CACHE_DIR/peak.json, else $XDG_CACHE_HOME/fnd/peak.json, else ~/.cache/fnd/peak.json."""
    base = (
        os.environ.get("FND_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fnd"
    )
    return Path(base) / "peak.json"


FIX = "set FND_CACHE_DIR to a directory fnd may write"


def cache_problem():
    """Why the ceiling cache could not be written where cache_file() says (None if it can): checked before
    anything is measured, so that a misplaced FND_CACHE_DIR is one line, not a traceback after seconds of
    measuring."""
    path = cache_file()
    if path.is_dir():
        return f"the ceiling cache {path} is a directory ({FIX})"
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"the ceiling cache cannot go in {path.parent}: {parent} is a file ({FIX})"
            break
    try:  # a real write, not os.access: root passes that for a read-only file system (/sys) too
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as e:
        return f"the ceiling cache cannot go in {path.parent}: {e.strerror or e} ({FIX})"
    return None


def machine_key():
    """What a cached ceiling is valid for: this CPU, its cores, its vector unit, this fnd."""
    from fndcli.machine import cpu_model

    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "isa": jitenv.isa()[0],
        "fnd_version": fndcli.__version__,
    }


def stream_elements():
    """float64 elements per STREAM array: 4 x the last-level cache, between STREAM_MIN_BYTES and
    STREAM_MAX_BYTES."""
    from fndcli.kernels.tiled import cache_sizes

    return min(max(4 * max(cache_sizes().values()), STREAM_MIN_BYTES), STREAM_MAX_BYTES) // 8


def stream_bytes(device="cpu"):
    """Memory the bandwidth rows need on `device`: three arrays."""
    return 3 * (8 * stream_elements() if device == "cpu" else CUDA_STREAM_BYTES)


def _row_key(row):
    return row["what"], row["kernel"], row["dtype"], row["threads"], row["device"]


def _read_cache():
    """(the cached rows for this machine, why the file on disk is not used: None if there is none or it is
    this machine's). One reader for load_cache and cache_note."""
    path = cache_file()
    if not path.exists():
        return [], None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return [], f"{path} could not be read (cut off, or edited?): measured again"
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        return [], f"{path} is not a ceiling cache fnd writes: measured again"
    if data.get("machine") != machine_key():
        return [], (
            f"{path} held another machine's ceilings (CPU, cores, vector unit or fnd version differ): "
            "measured again"
        )
    if not all(map(_sound, data["rows"])):
        return (
            [],
            f"{path} holds a row fnd does not write (a ceiling that is not a positive number?): measured "
            "again",
        )
    return data["rows"], None


def disagreements(rows, fresh):
    """Why the FMA `rows` of one machine and device cannot all be right, each naming the row measured now
    (in `fresh`, keys of _row_key) that takes part; [] if they agree. On the CPU: the best rate of each dtype
    at t threads against t (at most the physical cores) x its rate at 1 thread, and float64's against
    float32's at each thread count."""
    from fndcli.machine import physical_cores

    rates, new = {}, set()
    for r in rows:
        if r["what"] == "fma" and r["device"] == "cpu":
            key = (r["dtype"], r["threads"])
            rates[key] = max(rates.get(key, 0.0), r["gflops"])
            new |= {key} if _row_key(r) in fresh else set()
    out, cores = [], physical_cores()
    for (dtype, t), rate in sorted(rates.items()):
        one = rates.get((dtype, 1))
        if t > 1 and one and {(dtype, t), (dtype, 1)} & new:
            scale, expected = rate / one, min(t, cores)
            if not SCALING * expected <= scale <= expected / SCALING:
                out.append(
                    f"{dtype} at {t} threads {rate:.4g} GFLOP/s is {scale:.2f}x 1 thread's {one:.4g} (on "
                    f"{expected} physical cores: {SCALING * expected:.2g}x to {expected / SCALING:.2g}x)"
                )
        half = rates.get(("float32", t)) if dtype == "float64" else None
        if (
            half
            and {("float64", t), ("float32", t)} & new
            and not (FLOAT64_RATIO[0] <= rate / half <= FLOAT64_RATIO[1])
        ):
            out.append(
                f"float64 at {t} thread(s) {rate:.4g} GFLOP/s is {rate / half:.2f}x float32's {half:.4g} "
                f"(half the SIMD lanes: {FLOAT64_RATIO[0]:g}x to {FLOAT64_RATIO[1]:g}x)"
            )
    return out


def _sound(row):
    """A cached row as fnd writes it: its figure (gflops for fma, gb_s for bandwidth), time and work positive
    numbers, its threads a positive count; a hand-edited "abc", null or -5 would end as a traceback or a %
    peak of a negative ceiling."""

    def positive(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf

    return (
        isinstance(row, dict)
        and set(COLUMNS[:-1]) - {"load_avg"} <= set(row)  # rows cached before the load was recorded lack it
        and row["what"] in ("fma", "bandwidth")
        and all(isinstance(row[k], str) for k in ("kernel", "dtype", "device", "measured_utc"))
        and isinstance(row["threads"], int)
        and positive(row["threads"])
        and all(positive(row[k]) for k in ("gflops" if row["what"] == "fma" else "gb_s", "best_s", "work"))
    )


def cache_note():
    """Why the cache on disk will not be used, for the caption (None if there is none, or it is this
    machine's)."""
    return _read_cache()[1]


def load_cache():
    """The cached rows for this machine ([] if none, another machine's, or unreadable)."""
    return _read_cache()[0]


def store_cache(rows):
    """Write rows for this machine, replacing the file atomically (a reader sees the old or the new one)."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".peak.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"machine": machine_key(), "rows": rows}, f, indent=1)
        os.replace(tmp, path)
    except OSError:  # a full disk: the old file stays, and no temporary is left beside it
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """A ceiling matmul-bench's % peak is of."""

    gflops: float
    dtype: str
    threads: int
    device: str
    source: str  # "measured" (this run) or "cached"
    measured_utc: str

    def describe(self):
        """'226 GFLOP/s, this machine's float32 FMA peak at 2 threads, measured 2026-12-02 (cached)'."""
        where = "this machine's" if self.device == "cpu" else "the GPU's"
        at = f" at {self.threads} thread{'s' * (self.threads != 1)}" if self.device == "cpu" else ""
        when = self.measured_utc[:16].replace("T", " ")
        return (
            f"{self.gflops:.3g} GFLOP/s, {where} {self.dtype} FMA peak{at} (fnd peak), measured {when} UTC"
            + (" (cached)" if self.source == "cached" else "")
        )


def run_peak(dtypes, threads, device="cpu", refresh=False, bandwidth=True):
    """(rows, measured, refused): the FMA rows for every dtype x thread count and, with `bandwidth`, the
    STREAM rows for every thread count, from the cache where it has them (unless `refresh`) and measured
    otherwise. `measured` is how many rows this call measured. The cache is updated with what was measured,
    unless it disagrees with itself or the cache: then nothing is cached, and `refused` says why (else
    None)."""
    threads = [1] if device == "cuda" else list(threads)  # a GPU's ceiling is the whole device's
    cached = [] if refresh else load_cache()

    def have(what, t, dtype=None):
        return any(
            r["what"] == what and r["threads"] == t and r["device"] == device and dtype in (None, r["dtype"])
            for r in cached
        )

    wanted_fma = [(d, t) for d in dtypes for t in threads if not have("fma", t, d)]
    wanted_bw = [t for t in threads if bandwidth and not have("bandwidth", t)]
    load = os.getloadavg()[0]
    fresh = (
        [{**r, "load_avg": load} for r in _measure(device, wanted_fma, wanted_bw)]
        if wanted_fma or wanted_bw
        else []
    )
    base = load_cache() if fresh or refresh else cached  # re-read only to merge: another run may have written
    merged = {**{_row_key(r): r for r in base}, **{_row_key(r): r for r in fresh}}
    fresh_keys = {_row_key(r) for r in fresh}
    problems = disagreements(merged.values(), fresh_keys)
    refused = (
        f"not cached: {'; '.join(problems)}. Measured at a load average of {load:.2f} on {os.cpu_count()} "
        "cores: other work competed for them? fnd peak --refresh on a quiet host measures again"
        if problems
        else None
    )
    if fresh and not refused:
        try:
            store_cache(list(merged.values()))
        except OSError as e:  # the figures stand; only the cache is lost
            refused = f"not cached: cannot write {cache_file()}: [Errno {e.errno}] {e.strerror or e}"
    keep = [
        {
            **r,
            "source": ("measured, not cached" if refused else "measured")
            if _row_key(r) in fresh_keys
            else "cached",
        }
        for r in merged.values()
        if r["device"] == device
        and r["threads"] in threads
        and (r["dtype"] in dtypes if r["what"] == "fma" else bandwidth)
    ]
    keep.sort(key=lambda r: (r["what"] != "fma", r["dtype"], r["threads"], r["work"] / r["best_s"]))
    return keep, len(fresh), refused


def cached_bandwidth():
    """A lookup (device, threads) -> the cached bandwidth ceiling in GB/s, or None: the cache read once,
    nothing measured."""
    rows = load_cache()

    def lookup(device, threads):
        found = best(rows, "bandwidth", None, threads, device)
        return found["gb_s"] if found else None

    return lookup


def best(rows, what, dtype, threads, device="cpu"):
    """The best row of `what` (fma, bandwidth) at dtype/threads/device, or None."""
    rows = [
        r
        for r in rows
        if r["what"] == what
        and r["threads"] == threads
        and r["device"] == device
        and (what == "bandwidth" or r["dtype"] == dtype)
    ]
    column = "gflops" if what == "fma" else "gb_s"
    return max(rows, key=lambda r: r[column], default=None)


def ceilings(wanted, refresh=False):
    """{(device, dtype, threads): (Ceiling, bandwidth GB/s or None)} for matmul-bench's rows, measuring what
    the cache lacks. `wanted`: (device, dtype, threads) triples; CUDA rows are measured on the GPU."""
    out = {}
    for device in dict.fromkeys(w[0] for w in wanted):
        mine = [w for w in wanted if w[0] == device]
        rows, _, refused = run_peak(
            sorted({w[1] for w in mine}), sorted({w[2] for w in mine}), device, refresh
        )
        if refused:  # a % peak of a ceiling that disagrees with itself is not one
            raise PeakError(f"the ceilings measured now disagree, so no % peak: {refused}")
        for key in mine:
            _, dtype, threads = key
            threads = 1 if device == "cuda" else threads
            fma, bw = (
                best(rows, "fma", dtype, threads, device),
                best(rows, "bandwidth", None, threads, device),
            )
            if fma is not None:
                out[key] = (
                    Ceiling(fma["gflops"], dtype, threads, device, fma["source"], fma["measured_utc"]),
                    bw["gb_s"] if bw else None,
                )
    return out


def for_bench(keys, log=lambda message: None):
    """(ceilings, note) for matmul-bench's (device, dtype, threads) keys: dicts of device, dtype, threads,
    gflops, gb_s and source (what the ceiling is, for the caption), measured where the cache lacks them;
    `note` says why a key has none (None if every one has)."""
    measurable = [k for k in keys if k[0] == "cuda" or k[1] in ("float32", "float64")]
    note = (
        None
        if len(measurable) == len(keys)
        else ("fnd peak measures float32 and float64 on the CPU; --peak-gflops sets a ceiling for the others")
    )
    if not measurable:
        return [], note
    log("measuring this machine's ceilings (fnd peak; cached after the first time)")
    try:
        found = ceilings(measurable)
    except PeakError as e:
        return [], str(e)
    except KeyboardInterrupt:
        return [], "interrupted while measuring the ceilings"
    return [
        {"device": d, "dtype": t, "threads": n, "gflops": c.gflops, "gb_s": bw, "source": c.describe()}
        for (d, t, n), (c, bw) in found.items()
    ], note


def _measure(device, fma, bandwidth):
    """Rows measured now, in a process of fnd's own (with jitenv's settings on the CPU)."""
    spec = json.dumps({"device": device, "fma": fma, "bandwidth": bandwidth})
    most = max([t for _, t in fma] + list(bandwidth))
    env = {**os.environ, **(jitenv.settings() if device == "cpu" else {}), "NUMBA_NUM_THREADS": str(most)}
    proc = subprocess.run(
        [sys.executable, "-m", "fndcli.bench.peak_worker", spec], env=env, capture_output=True, text=True
    )
    if proc.returncode == -2 or proc.returncode == 130:
        raise KeyboardInterrupt
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise PeakError(f"measuring the ceilings failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
