"""What every section of `fnd reproduce` shares: its settings, its result, a claim and its verdict, the
book's figures."""

from dataclasses import dataclass, field

import pandas as pd

from fndcli.kinds import REPRODUCE

SECTIONS = ("ladder", "init", "backprop", "bridge", "train")
CLAIM_COLUMNS = REPRODUCE.written()  # fndcli.kinds
SPEEDUP_FACTOR = 5.0  # a machine's speedup may differ from the book's by this factor and still "hold"

# The book's %timeit figures at m1 (5, 784) @ m2 (784, 10), in seconds.
BOOK_TIMES = {"loops": 1.15, "dot": 1.7e-3, "broadcast": 357e-6, "einsum": 68.7e-6, "torch": 14e-6}
BOOK_SOURCES = {
    "loops": "Matrix multiplication from scratch",
    "dot": "Matrix multiplication from scratch (elementwise arithmetic)",
    "broadcast": "Broadcasting",
    "einsum": "Einstein summation",
    "torch": "Matrix multiplication from scratch",
}


@dataclass(frozen=True)
class ReproduceConfig:
    quick: bool = (
        False  # the whole report in under a minute: timed in fnd's own process, fewer seeds and epochs
    )
    sections: tuple = SECTIONS
    seed: int = 0

    @property
    def seeds(self):
        return 3 if self.quick else 12

    @property
    def epochs(self):
        return 5 if self.quick else 20


@dataclass
class ReproduceResult:
    claims: pd.DataFrame  # CLAIM_COLUMNS
    frames: dict = field(default_factory=dict)  # file name -> DataFrame (each experiment's rows)
    figures: dict = field(default_factory=dict)  # file name -> function(path) writing a PNG
    text: dict = field(default_factory=dict)  # section -> a paragraph for the report
    suite: object = None  # the ladder's pyperf suite
    interrupted: bool = False  # Ctrl-C: the sections before it are kept


def claim(section, claim, source, book, fnd, ok, rule, machine_dependent=False):
    verdict = "holds" if ok else ("differs" if machine_dependent else "fails")
    return {
        "section": section,
        "claim": claim,
        "source": source,
        "book": book,
        "fnd": fnd,
        "verdict": verdict,
        "rule": rule,
        "machine_dependent": machine_dependent,
    }


def human_time(seconds):
    from fndcli.report.figures import human_seconds

    return human_seconds(seconds)


def finished(result):
    """A core's result, or KeyboardInterrupt again if Ctrl-C cut it short (the cores keep partial rows;
    a claim must not be judged on them)."""
    if result.interrupted:
        raise KeyboardInterrupt
    return result
