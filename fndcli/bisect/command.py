"""The user's command as `fnd bisect` runs it at each step: which fnd command it is (a timing or a check),
the references to the user's files in it (`--impl`, `--model`, `--layer` FILE.py:NAME), and the command
line of a step, each reference loaded at the step's commits (`FILE.py:NAME@COMMIT`, fndcli.gitrev).
torch-free.
"""

from dataclasses import dataclass
from pathlib import Path

from fndcli.bisect.commits import BisectError

TIMING = "matmul-bench"  # a step times the candidate beside GOOD and BAD in one --gate run
CHECKS = ("gradcheck", "init-sweep", "train")  # a step is the command's own verdict: exit 0 or 1
REFERENCE_OPTIONS = ("--impl", "--model", "--layer")
NOT_PAIRED = ("--quick", "--fast", "--rigorous")  # presets whose processes cannot be paired step by step
FND_OWNS = ("--out", "--quiet", "--db", "--no-history")  # bisect's own, given to each step


@dataclass(frozen=True)
class Command:
    """The command after `--`: its name, its arguments, and where the user's file references sit in them."""

    name: str
    args: tuple
    references: tuple  # (index in args, the reference as typed)

    @property
    def timing(self):
        return self.name == TIMING

    @property
    def file(self):
        """The first referenced file, absolute: its repository is the one bisected."""
        return Path(self.references[0][1].rpartition(":")[0]).expanduser().resolve()

    def at(self, *commits):
        """The step's arguments: each reference once per commit, `FILE.py:NAME@COMMIT`, in that order."""
        out, where = [], dict(self.references)
        for i, arg in enumerate(self.args):
            if i in where:  # `--impl X` -> `--impl X@A --impl X@B ...`
                out += [
                    f"{arg}@{commits[0]}",
                    *(w for c in commits[1:] for w in (self.args[i - 1], f"{arg}@{c}")),
                ]
            else:
                out.append(arg)
        return [self.name, *out, *(["--gate"] if self.timing and "--gate" not in self.args else [])]


def parse(argv):
    """The Command of the words after `--`; BisectError (exit 2) for a command fnd cannot bisect."""
    if not argv:
        raise BisectError("give the command to bisect after --: fnd bisect GOOD BAD -- gradcheck --model ...")
    name = argv[0]
    args = tuple(w for arg in argv[1:] for w in _split_option(arg))
    if name not in (TIMING, *CHECKS):
        raise BisectError(
            f"fnd bisect runs {TIMING} (a timing) or {', '.join(CHECKS)} (a check) on your code; "
            f"{name!r} is none of them"
        )
    for arg in args:
        option = arg.split("=", 1)[0]
        if option in FND_OWNS:
            raise BisectError(f"{option} is fnd bisect's own: give it before GOOD BAD, not in the command")
        if name == TIMING and option in (*NOT_PAIRED, "--order"):
            raise BisectError(
                f"a timing step is one --gate run, its processes paired; drop {option} from the command"
            )
    references = tuple(_references(args))
    if not references:
        raise BisectError(
            f"the command names none of your files: give {' or '.join(REFERENCE_OPTIONS)} FILE.py:NAME, the "
            "code whose history is bisected"
        )
    for _, ref in references:
        if "@" in ref.rpartition(":")[2]:
            raise BisectError(f"{ref!r}: give FILE.py:NAME without @REV; bisect loads it at each commit")
    return Command(name, args, references)


def _split_option(arg):
    """`--impl=X` as `--impl X`, so a reference is always the word after its option."""
    option, eq, value = arg.partition("=")
    return [option, value] if eq and option in REFERENCE_OPTIONS else [arg]


def _references(args):
    """(index, value) of each FILE.py:NAME given to a reference option (package.module:NAME is not in git)."""
    for i, arg in enumerate(args[:-1]):
        if arg in REFERENCE_OPTIONS and args[i + 1].rpartition(":")[0].endswith(".py"):
            yield i + 1, args[i + 1]
