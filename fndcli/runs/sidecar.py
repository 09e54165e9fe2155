"""A run's sidecar, `<command>-<stamp>.json` (reproduce: `reproduce.json`): the one schema every command
writes.

`fnd show` and `fnd compare` read it back (`fndcli.runs.saved`). The fields every run writes
are documented here once; the fields of each kind of run, with their types, are declared
with the kind (`fndcli.kinds`). `schema` changes when a field changes meaning.
"""

from dataclasses import dataclass, field

from fndcli.kinds import kind_of

SCHEMA = 1


@dataclass
class Sidecar:
    command: str  # the command that ran: matmul-bench, init-sweep, gradcheck, train, ...
    config: dict  # the effective options, keyed as in a config file (flags > file > defaults)
    files: list = field(default_factory=list)  # the run's files, sidecar excluded; the main CSV first
    status: str = "complete"  # complete | interrupted (Ctrl-C: what finished is kept) | failed
    exit_code: int = 0  # the command's exit code
    error: str | None = None  # the one line on stderr for a failure after the work started
    config_file: str | None = None  # --config FILE.toml, when given
    schema: int = SCHEMA
    machine: dict = field(default_factory=dict)  # where and with what: fndcli.machine.run_metadata, flattened
    # the kind's own fields (fndcli.kinds), each as the command gave it
    own: dict = field(default_factory=dict)

    def to_dict(self):
        """The JSON object: every run's fields, the machine's, then the kind's own in the order it declares
        them (each one the command gave, even as None: a train run without a twin has autograd_step_s null).
        TypeError for a field the kind does not declare, or a value of another type: a bug in the command."""
        out = {name: value for name, value in vars(self).items() if name not in ("config", "machine", "own")}
        out.update(self.machine)
        declared = kind_of({"command": self.command, "config": self.config}).field_types
        own = {name: _plain(value) for name, value in self.own.items()}
        for name, value in own.items():
            if name not in declared or not holds(value, declared[name]):
                raise TypeError(
                    f"{self.command}'s sidecar field {name}={value!r}: not as fndcli.kinds declares it"
                )
        out.update((name, own[name]) for name in declared if name in own)
        out["config"] = self.config  # last: the longest part, read after the facts
        return out


def holds(value, types):
    """Whether a JSON value is of one of `types` (a bool is not an int unless bool is named)."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _plain(value):
    """A value as JSON will hold it: a tuple is a list, a numpy scalar a Python number."""
    return list(value) if isinstance(value, tuple) else getattr(value, "item", lambda: value)()
