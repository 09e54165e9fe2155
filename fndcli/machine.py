"""Where and with what a run ran: the machine's facts, written beside every result.

The ground floor: the commands' cores (`bench.peak` names the CPU in its cache) and the
runs' files (`runs.sidecar`, `runs.saved`) read these alike. No torch is imported here.
"""

import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import fndcli


def utc_now():
    return dt.datetime.now(dt.timezone.utc)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_words(model, cores, isa):
    """A CPU as fnd names it beside its ceilings: 'Intel(R) Xeon(R) Processor, 2 cores, AVX-512'."""
    return f"{model}, {cores} cores, {isa}"


def physical_cores():
    """Cores without their SMT siblings: the distinct thread_siblings_list of the CPUs (os.cpu_count() if the
    kernel does not say)."""
    lists = set()
    for cpu in Path("/sys/devices/system/cpu").glob("cpu[0-9]*"):
        try:
            lists.add((cpu / "topology" / "thread_siblings_list").read_text().strip())
        except OSError:
            continue
    return len(lists) or os.cpu_count() or 1


def git_commit():
    """The commit of the fnd source tree, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(fndcli.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def version(package):
    """An installed package's version, without importing it; None if it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_metadata(started):
    """Where and with what a run ran: versions, machine, the command line, its start and finish.

    torch is not imported here: a command that never loaded it (show, compare) records its
    installed version, and no threads or GPU of its own.
    """
    torch = sys.modules.get("torch")
    gpu = torch.cuda.get_device_name() if torch is not None and torch.cuda.is_available() else None
    return {
        "command_line": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started_utc": started.isoformat(),
        "finished_utc": utc_now().isoformat(),
        "fnd_version": fndcli.__version__,
        "torch_version": torch.__version__ if torch is not None else version("torch"),
        "python_version": platform.python_version(),
        "pyperf_version": version("pyperf"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        # torch's threads in this process as the run ends (matmul-bench times at config.threads: see its rows)
        "threads": torch.get_num_threads() if torch is not None else None,
        "git_commit": git_commit(),
    }


# What each run_metadata field holds (None where it may be missing), for the readers of sidecars (runs.saved).
METADATA_TYPES = {
    **dict.fromkeys(
        (
            "command_line",
            "started_utc",
            "finished_utc",
            "fnd_version",
            "python_version",
            "platform",
            "cpu_model",
        ),
        (str,),
    ),
    **dict.fromkeys(("torch_version", "pyperf_version", "gpu", "git_commit"), (str, type(None))),
    "cpu_count": (int, type(None)),
    "threads": (int, type(None)),
}
