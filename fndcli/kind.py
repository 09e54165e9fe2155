"""What a kind of run is: its columns (Column), the sidecar fields it writes (fields), what `fnd history
--command` follows of it (Follow). The kinds themselves are declared in `fndcli.kinds`. Torch-free.
"""

from dataclasses import dataclass

NUMBER, BOOL, TEXT, LABEL = "number", "bool", "text", "label"  # a column's type (Column.type)
NONE = type(None)


@dataclass(frozen=True)
class Column:
    name: str
    # NUMBER; BOOL (True/False, or empty); TEXT (an empty cell reads "", not NaN); LABEL (a name, read as
    # pandas reads it; empty is missing)
    type: str = NUMBER
    key: bool = False  # part of what names a row: never empty
    md: bool = False  # one of `fnd show --format md`'s columns
    read: bool = False  # show and compare read it: a run without it is refused, its values are checked
    sometimes: bool = False  # written by some runs only (an option adds it)


def col(spec, type=NUMBER, **flags):
    """Column(s) from a spec: 'name', or several 'a b c' of one type and the same flags."""
    return tuple(Column(name, type, **flags) for name in spec.split())


@dataclass(frozen=True)
class Follow:
    """What `fnd history --command` follows of a kind's runs (fndcli.history.figures): each row of the
    main CSV gives a series per figure, named by its key columns (verdicts, figures and `last` aside)."""

    figures: tuple  # (figure column, its verdict column or None): a series each
    failing: tuple = ()  # the verdicts that fail (--gate), as the CSV writes them (a bool: 'False')
    # a key column counting rows (train's epoch): not in the series' name, so its last row gives the figure
    last: str | None = None
    once: str | None = None  # names the measurement a row reports: each is counted once (peak's cached rows)
    measured: bool = False  # a measured rate, not a deterministic figure: each run's value is one sample
    settings: bool = True  # runs of other settings (the sidecar's config, --out aside) are series apart


@dataclass(frozen=True, eq=False)  # each kind is one object: compared and hashed by identity
class Kind:
    name: str  # how show, compare and errors name it
    command: str  # the command whose runs these are
    columns: tuple  # the main CSV's Columns, in the order written
    fields: tuple  # (name, (JSON types)) of the sidecar fields it writes, in that order
    main: str = ".csv"  # the main CSV: a suffix after the run's stem, or a name in own_directory
    files: tuple = ()  # its other files: suffixes after the stem (names in own_directory)
    own_directory: str | None = None  # a run in a directory of its own: its sidecar's name there
    read: bool = True  # show and compare read its runs back (compare's runs: their CSV is the verdict)
    history: Follow | None = None  # what `fnd history --command` follows of its runs

    def names(self, **flag):
        """The column names whose flags hold the values given (key=True, read=True, type=NUMBER), in order."""
        return tuple(c.name for c in self.columns if all(getattr(c, f) == v for f, v in flag.items()))

    def written(self, sometimes=False):
        """The main CSV's columns in order: those every run writes, and with `sometimes` the optional ones."""
        return [c.name for c in self.columns if sometimes or not c.sometimes]

    def of_type(self, type):
        return tuple(c.name for c in self.columns if c.type == type)

    @property
    def field_types(self):
        return dict(self.fields)


def fields(spec, *types):
    """Sidecar field(s) of the given JSON types, None allowed (a float may be written as an int)."""
    kinds = (*types, *((int,) if float in types and int not in types else ()), NONE)
    return tuple((name, kinds) for name in spec.split())
