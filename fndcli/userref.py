"""References to the user's own code (`path/to/file.py:NAME`, `package.module:NAME`, plugins), and calling it.

`path/to/file.py:NAME@REV` loads the file as it was at git revision REV (`fndcli.gitrev`: its directory
written out of the repository, the work tree untouched); the commit each REV resolved to is kept
(`revisions`), and a process fnd starts is given it (`pin`), so it loads the same code.

Loading a file runs its code, as pytest's collection does. Each file is imported once per
process, under a module name of its own. What it changes of torch's global settings at import
(threads, default dtype, grad mode) is restored and reported, so it cannot skew fnd's
measurements. torch-free until a reference is loaded.

Installed packages register matmul kernels under the entry-point group `fnd.matmul`
(`[project.entry-points."fnd.matmul"] mykernel = "mypkg.kernels:matmul"`); their names
join the registry's in `--impl` and `--help`, and `--impl all` includes them.

What the user's code raises once loaded comes back as `UserCodeError` (`call`): one line naming the
call, and the user's own frames of the traceback.
"""

import functools
import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path

from fndcli import gitrev
from fndcli.numerics import first_line

PLUGIN_GROUP = "fnd.matmul"
_loaded = {}  # reference -> object, once per process
changed = []  # what loading user code changed of torch's settings (restored), for the sidecar
_revisions = {}  # FILE.py:NAME@REV as typed -> the commit REV resolved to, or was pinned to, in this process
_AT_REV = re.compile(r"(.+):([^\W\d]\w*)@(.+)")  # FILE.py:NAME@REV; REV may hold ':' and '@' (HEAD@{1})


def changes():
    """What loading user code changed of torch's settings (restored since), for a sidecar's
    user_code_changed."""
    return list(changed)


class RefError(Exception):
    """A reference that cannot be loaded: the message is one line, for exit 2."""


def is_reference(text):
    """`file.py:NAME` or `package.module:NAME` (registry names have no colon)."""
    return ":" in text


def plugins():
    """{name: 'module:attr'} of the installed `fnd.matmul` entry points.

    Read straight from each distribution's entry_points.txt on sys.path (what importlib.metadata
    reads), since --help lists them and importing importlib.metadata would slow every start-up.
    Read once per sys.path: a run asks for them at every (implementation, shape)."""
    return dict(_plugins(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _plugins(path):
    found = {}
    for entry in path:
        try:
            names = [n for n in os.listdir(entry or ".") if n.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for name in names:
            try:
                text = Path(entry or ".", name, "entry_points.txt").read_text()
            except (OSError, UnicodeDecodeError):  # no entry points, or a broken distribution: not fnd's
                continue
            if f"[{PLUGIN_GROUP}]" in text:
                found = {**_group(text), **found}  # the first on sys.path wins, as for an import
    return found


def _group(text):
    """{name: value} of the `fnd.matmul` section of an entry_points.txt."""
    out, inside = {}, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{PLUGIN_GROUP}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def revisions(references):
    """{reference: commit} of the FILE.py:NAME@REV among `references`: what each REV resolved to here, for a
    sidecar's user_code_revisions and for the processes fnd starts (`pin`)."""
    return {ref: _revisions[ref] for ref in references if ref in _revisions}


def pin(commits):
    """Load each reference of {reference: commit} at that commit, as the parent resolved it: a moving REV
    (HEAD, a branch) cannot give a process fnd starts other code than the parent checked."""
    _revisions.update(commits)


def _split(text):
    """(location, NAME, REV or None) of a reference."""
    match = _AT_REV.fullmatch(text)
    if match:
        return match.groups()
    location, sep, name = text.rpartition(":")
    if not sep or not location or not name.isidentifier():
        raise RefError(f"{text!r} is not FILE.py:NAME, FILE.py:NAME@REV or package.module:NAME")
    return location, name, None


def _torch_settings():
    """torch's global settings a user's file may change on import. torch is imported first if it is not yet: a
    file that imports it itself would otherwise find it fresh, change it, and leave nothing to compare
    with."""
    import torch

    return {
        "threads": torch.get_num_threads(),
        "default dtype": torch.get_default_dtype(),
        "grad mode": torch.is_grad_enabled(),
    }


def _restore(before):
    after = _torch_settings()
    if after == before:
        return
    import torch

    for key in before:
        if before[key] != after[key]:
            changed.append(f"{key} {after[key]} (restored to {before[key]})")
    torch.set_num_threads(before["threads"])
    torch.set_default_dtype(before["default dtype"])
    torch.set_grad_enabled(before["grad mode"])


class ExitOnImport(Exception):
    """The user's code called os._exit() while it was imported: it would end fnd there, silently, with its
    code (a CI step that passes having checked nothing)."""


def _exit_on_import(code=0):
    raise ExitOnImport(f"it calls os._exit({code}) on import, which would end fnd there")


def _watched(importer, what):
    """importer(what), with torch's settings restored afterwards, and what it changed of them recorded in
    `changed`; os._exit() raises ExitOnImport meanwhile (sys.exit() raises SystemExit of itself)."""
    before, real_exit = _torch_settings(), os._exit
    os._exit = _exit_on_import
    try:
        return importer(what)
    finally:
        os._exit = real_exit
        _restore(before)


def _import_file(path):
    """The user's file as a module of its own, imported as `python path` would run it: its directory first
    on the path, so `from helpers import x` finds the helpers.py beside it. What it imports from its
    directory leaves sys.modules again (the file's module keeps what it took), so two files, base/kern.py
    and kern.py, each with a helpers.py, each get their own."""
    name = "fnd_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    home = path.parent
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[name] = module
    sys.path.insert(0, str(home))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(home))
        for key in set(sys.modules) - before - {name}:
            if _within(getattr(sys.modules[key], "__file__", None), home):
                del sys.modules[key]
    return module


def _within(file, directory):
    """Whether a module's file lies in `directory` (a sibling of the user's file, or a package beside it)."""
    return bool(file) and Path(file).resolve().is_relative_to(directory)


def a_kind(obj):
    """'an int', 'a function': what obj is, for a message."""
    kind = type(obj).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _is_path(location):
    """Does a reference's location name a file (or a directory: a mistake), rather than a module to import?"""
    path = Path(location).expanduser()
    return (
        location.endswith(".py")
        or "/" in location
        or "\\" in location
        or path.is_file()
        or (path.is_dir() and not (path / "__init__.py").is_file())
    )


def load(text, what="callable"):
    """The object a reference names; RefError (one line) if it does not exist or is not callable."""
    if text in _loaded:
        return _loaded[text]
    location, name, rev = _split(text)
    where = repr(location)
    try:
        if rev is not None:
            path, where = _at_rev(text, location, rev)
            module = _watched(_import_file, path)
        elif _is_path(location):
            module = _watched(_import_file, _user_file(location, text))
        else:
            module = _watched(importlib.import_module, location)
    except RefError:
        raise
    except (Exception, SystemExit) as e:  # a file that calls sys.exit() on import is the user's bug too
        raise RefError(f"cannot import {where}: {type(e).__name__}: {first_line(e)}") from e
    if not hasattr(module, name):
        known = sorted(n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n)))
        raise RefError(f"{where} has no {name!r}; it defines {', '.join(known) or 'nothing callable'}")
    obj = getattr(module, name)
    if not callable(obj):
        raise RefError(f"{text!r} is {a_kind(obj)}, not a {what}")
    _loaded[text] = obj
    return obj


def _user_file(location, text):
    """The Python file a FILE.py:NAME reference names, resolved; RefError if it is none."""
    path = Path(location).expanduser().resolve()
    if path.is_dir():
        raise RefError(f"{location!r} is a directory, not a Python file (from {text!r}); name FILE.py:NAME")
    if not path.is_file():
        raise RefError(f"{location!r} does not exist (from {text!r})")
    if path.suffix != ".py":
        raise RefError(f"{location!r} is not a Python file (from {text!r}); name FILE.py:NAME")
    return path


def _at_rev(text, location, rev):
    """(path, how messages name it) of the file a FILE.py:NAME@REV names, written out as it was at REV's
    commit (the one pinned, if the parent pinned it), which is recorded."""
    if not location.endswith(".py"):
        raise RefError(f"{text!r}: @REV takes a file, FILE.py:NAME@REV, and {location!r} is not a .py file")
    try:
        at = gitrev.resolve(Path(location).expanduser().resolve(), _revisions.get(text, rev))
        path = gitrev.export(at)
    except gitrev.RevError as e:
        raise RefError(f"{text!r}: {e}") from None
    _revisions[text] = at.commit
    return path, f"{location!r} at {rev} ({at.commit[:12]})"


def check_kernel(obj, text):
    """RefError unless `obj` can be called as a kernel, fn(a, b): a class or a function of other arguments
    is refused here, before any work, not found out in the run."""
    import inspect

    if inspect.isclass(obj):
        raise RefError(f"{text!r} is a class, not a function of (a, b)")
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin or a compiled dispatcher: its call will tell
        return
    try:
        signature.bind(None, None)
    except TypeError:
        raise RefError(f"{text!r} takes {signature}, not (a, b)") from None


class UserCodeError(Exception):
    """The user's code raised, or broke the protocol fnd calls it by; `traceback` holds the user's frames."""

    def __init__(self, message, traceback=""):
        super().__init__(message)
        self.traceback = traceback


def call(what, fn, *args):
    """fn(*args), with an exception from the user's code turned into UserCodeError naming `what`."""
    try:
        return fn(*args)
    except (Exception, SystemExit) as e:  # sys.exit() in the user's code is their bug, not an exit of fnd
        raise UserCodeError(f"{what} raised {type(e).__name__}: {first_line(e)}", user_traceback(e)) from e


def user_traceback(error):
    """The traceback of an exception raised in the user's code: their frames, not fnd's or torch's."""
    skip = [str(Path(__file__).resolve().parent)]
    if "torch" in sys.modules:
        skip.append(str(Path(sys.modules["torch"].__file__).resolve().parent))
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not any(str(Path(f.filename).resolve()).startswith(d) for d in skip)
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    return "Traceback (the user's frames):\n" + "".join(lines)
