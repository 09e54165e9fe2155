"""The `fnd bisect` command line `fnd history` offers for a change point whose commits were not all measured:
the measured commit before it and the one where it starts are GOOD and BAD, git counts the commits between
them (`git rev-list --count`), and the benchmark's name gives the command (your kernel, its shape, dtype,
device, threads). Only for a kernel of yours (FILE.py:NAME, which bisect loads at each commit), and only
where the repository holding the directory fnd history was run from (or --repo) has both commits.
torch-free.
"""

import subprocess
from pathlib import Path

from fndcli.bench.spec import split_name

CHANGES = ("REGRESSION", "improved")


def _between(directory, older, newer):
    """The commits in older..newer, in the repository holding `directory`; None where git cannot tell."""
    proc = subprocess.run(
        ["git", "-C", str(directory), "rev-list", "--count", f"{older}..{newer}"],
        capture_output=True,
        text=True,
    )
    return int(proc.stdout) if proc.returncode == 0 else None


def bisect_offers(rows, directory=None):
    """One line per change point (fnd history's rows, one series after another, oldest commit first) with
    commits between it and the measured one before it that were not measured: how many, and the bisect."""
    lines, before = [], {}
    for row in rows:
        series = (row["benchmark"], row["threads"])
        older, before[series] = before.get(series), row["commit"]
        impl, rest = split_name(row["benchmark"])
        if older is None or row["change"] not in CHANGES or not impl.rpartition(":")[0].endswith(".py"):
            continue
        count = _between(directory or Path.cwd(), older, row["commit"])
        if count is None or count <= 1:
            continue
        shape, dtype, device = rest.split()
        threads = "" if row["threads"] is None else f" --threads {int(row['threads'])}"
        lines.append(
            f"{row['change']} at {row['commit']} of {impl} {shape}: {count - 1} commit(s) before it not "
            f"measured; to find which: fnd bisect {older} {row['commit']} -- matmul-bench --impl {impl} "
            f"--shape {shape} --dtype {dtype} --device {device}{threads}"
        )
    return lines
