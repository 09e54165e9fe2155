"""What the history keys a run by: the machine it ran on, the commit of the code it measured, the versions.

Torch-free and quick (a few git calls): the facts are taken when a run starts, before its work.
"""

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from fndcli.machine import cpu_model, physical_cores, version


@dataclass(frozen=True)
class Machine:
    """What a machine is, as it stays across reboots: no clock speed, no bogomips, no kernel release (a
    fingerprint built from those changes on its own; folo-rs lost 16 of 17 alerts to one built from
    bogomips)."""

    cpu_model: str
    isa: str  # the widest vector unit LLVM targets here: AVX-512, AVX2 or SSE (fndcli.kernels.jitenv)
    cores: int  # physical cores
    cpus: int  # logical CPUs
    memory_gib: int  # total RAM, rounded to GiB (the kernel's MemTotal moves by a few MB between versions)
    os: str  # the distribution and its major version, from /etc/os-release ('debian 12'), else the system
    arch: str
    gpu: str | None  # NVIDIA GPUs by model, from the driver's /proc files (no torch)

    @property
    def fingerprint(self):
        """16 hex digits of a hash of every fact above: one machine, one fingerprint."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def this_machine():
    from fndcli.kernels.jitenv import isa

    return Machine(
        cpu_model=cpu_model(),
        isa=isa()[0],
        cores=physical_cores(),
        cpus=os.cpu_count() or 1,
        memory_gib=round(_mem_total() / 2**30),
        os=_os_name(),
        arch=platform.machine(),
        gpu=_gpus(),
    )


def _mem_total():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _os_name():
    """'debian 12', 'ubuntu 22.04': ID and VERSION_ID of /etc/os-release; else 'Linux', 'Darwin', ..."""
    try:
        fields = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        )
    except OSError:
        return platform.system()
    name = " ".join(fields.get(k, "").strip().strip("\"'") for k in ("ID", "VERSION_ID")).strip()
    return name or platform.system()


def _gpus():
    models = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            models += [
                line.split(":", 1)[1].strip() for line in info.read_text().splitlines() if "Model" in line
            ]
        except OSError:
            continue
    return ", ".join(models) or None


@dataclass(frozen=True)
class Commit:
    """The commit of the code a run measured; every field None where it is not in a git repository."""

    repo: str | None = None  # the repository's top directory
    commit: str | None = None  # the full hash; None in a repository without commits
    dirty: bool | None = None  # tracked files differ from the commit (untracked ones do not count)
    branch: str | None = None  # None when HEAD is detached
    commit_utc: str | None = None  # the commit's time, ISO 8601 in UTC
    subject: str | None = None


GIT = {  # what commit_of asks git, all at once (three processes, 4 ms rather than 11 here)
    "top": ("rev-parse", "--show-toplevel"),
    "status": ("status", "--porcelain=v2", "--branch", "--untracked-files=no"),
    "last": ("log", "-1", "--date=iso-strict-local", "--format=%H%x00%cd%x00%s"),
}


def _git(directory):
    """{name: git's stdout, or None where it failed} for each of GIT's questions about `directory`."""
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    asked, said = {}, {}
    try:
        for name, args in GIT.items():
            asked[name] = subprocess.Popen(
                ["git", "-C", str(directory), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
    except OSError:  # no git
        pass
    for name, process in asked.items():
        try:
            out = process.communicate(timeout=10)[0]
            said[name] = out if process.returncode == 0 else None
        except subprocess.SubprocessError:
            process.kill()
            process.communicate()
    return {name: said.get(name) for name in GIT}


def commit_of(directory):
    """The git facts of the repository holding `directory` (Commit() when there is none)."""
    said = _git(directory)
    if said["top"] is None:
        return Commit()
    status = (said["status"] or "").splitlines()
    head = dict(line[2:].split(" ", 1) for line in status if line.startswith("# "))
    last = (said["last"] or "").strip()
    commit, when, subject = last.split("\0", 2) if last.count("\0") == 2 else (None, None, None)
    return Commit(
        repo=said["top"].strip(),
        commit=commit,
        dirty=any(not line.startswith("#") for line in status),
        branch=None if head.get("branch.head", "(detached)") == "(detached)" else head["branch.head"],
        commit_utc=when,
        subject=subject,
    )


def held_by(directory, commits):
    """The hashes of `commits` that the git repository holding `directory` has (in any of its branches: a
    clone of it anywhere has them too); None when `directory` is in no git repository."""
    lines = "".join(f"{c}^{{commit}}\n" for c in sorted(commits))
    proc = subprocess.run(
        ["git", "-C", str(directory), "cat-file", "--batch-check"],
        input=lines,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:  # not in a git repository (128)
        return None
    return {line.split()[0] for line in proc.stdout.splitlines() if not line.endswith(" missing")}


def code_directory(params):
    """Where the code a run measures lives: the directory of the first user file it loads (`--impl`,
    `--model`, `--layer` FILE.py:NAME), else the current directory. A package.module:NAME reference counts as
    the current directory's."""
    for name in ("impl", "model", "layer"):
        values = params.get(name)
        for value in values if isinstance(values, (list, tuple)) else [values]:
            location = str(value or "").rpartition(":")[0]
            if location.endswith(".py"):
                return Path(location).expanduser().resolve().parent
    return Path.cwd()


def versions():
    """fnd's, torch's, numba's and Python's versions, without importing torch or numba."""
    import fndcli

    return {
        "fnd_version": fndcli.__version__,
        "torch_version": version("torch"),
        "numba_version": version("numba"),
        "python_version": platform.python_version(),
    }
