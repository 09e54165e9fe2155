"""Where a run's files go, and what is written beside them.

Layout: every run of every command writes into one directory (default `results/`):

    <command>-<UTC yyyymmdd-HHMMSS>.csv         the rows
    <command>-<UTC yyyymmdd-HHMMSS>.json        the sidecar: effective config and metadata
    <command>-<UTC yyyymmdd-HHMMSS><extra>      command-specific files (pyperf JSON, plots, ...)

A second run in the same second gets `-2`, `-3`, ... after the stamp; nothing is ever
overwritten. Each file is written to a hidden temporary name in the same directory and
then hard-linked into place (which fails rather than replace an existing file), so an
interrupted run leaves no half-written file. The first file a run links claims its stem:
two runs that start in the same second and race for one name both pick it, one link
wins, and the loser moves on to the next free stem.
"""

import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputDirError(Exception):
    """The output directory cannot be created or written."""


def check_out_dir(out_dir):
    """Create `out_dir` if needed and prove it writable, before any work is done."""
    out_dir = Path(out_dir)
    taken = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if taken is not None:  # mkdir would say only "File exists" (or "Not a directory")
        raise OutputDirError(f"cannot write to output directory {str(out_dir)!r}: {str(taken)!r} is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fnd-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputDirError(f"cannot write to output directory {str(out_dir)!r}: {e.strerror or e}") from e
    return out_dir


def replace_file(path, text):
    """Write text to path, replacing what is there atomically (a reader sees the old file or the new one,
    never half of one): a temporary file beside it, then os.replace. A failed write leaves no temporary."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class RunFiles:
    """The files of one run, named from the command and the run's UTC start time."""

    def __init__(self, out_dir, command, started):
        self.out_dir = Path(out_dir)
        self._base = f"{command}-{started:%Y%m%d-%H%M%S}"
        self.written = []
        self.stem = self._free_stem(self._base, 1)
        self.writing = None  # the file being written

    def _free_stem(self, base, n):
        """The first of base, base-2, base-3, ... (from the n-th) with neither a .csv nor a .json."""
        while True:
            stem = base if n == 1 else f"{base}-{n}"
            if not any((self.out_dir / f"{stem}{ext}").exists() for ext in (".csv", ".json")):
                self._n = n
                return stem
            n += 1

    def path(self, suffix):
        return self.out_dir / f"{self.stem}{suffix}"

    def write(self, suffix, write_to):
        """Call write_to(tmp_path), then move the file into place atomically; return its path."""
        self.writing = self.path(suffix)  # for the message when it cannot be written
        fd, tmp = tempfile.mkstemp(prefix=f".{self.stem}{suffix}.", suffix=".tmp", dir=self.out_dir)
        os.close(fd)
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
            write_to(Path(tmp))
            final = self._link(tmp, suffix)
        finally:
            os.unlink(tmp)
        self.written.append(final)
        return final

    def _link(self, tmp, suffix):
        """Link tmp to its final name, which must not exist: never overwrite. The first file of
        a run claims the stem; if another run claimed it since, move on to the next free one."""
        while True:
            final = self.path(suffix)
            try:
                os.link(tmp, final)
                return final
            except FileExistsError:
                if self.written:  # the stem is ours, so someone else wrote into it: refuse
                    raise
                self.stem = self._free_stem(self._base, self._n + 1)

    def discard(self):
        """Remove the files written so far: a run whose files cannot all be written keeps none of them (a CSV
        without its sidecar is a run show and compare refuse)."""
        for path in self.written:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.written = []

    def write_text(self, suffix, text):
        return self.write(suffix, lambda p: p.write_text(text))

    def write_csv(self, suffix, frame):
        return self.write(suffix, lambda p: frame.to_csv(p, index=False))

    def write_json(self, suffix, obj):
        return self.write_text(suffix, json.dumps(obj, indent=2, default=str) + "\n")
