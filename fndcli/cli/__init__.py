"""The `fnd` command line: one thin module per command (read options, call the core once, render,
map errors to exit codes), on the app of `fndcli.cli.app`.

Nothing this package imports at start-up loads torch, pandas, numba, matplotlib or pyperf:
the option choices come from `fndcli.names`, the defaults from `fndcli.settings`, and each
command imports its core only once its options are checked. So `--help`, `--version` and a
usage error answer in a fraction of a second.
"""

from fndcli.cli import (  # noqa: F401  (each registers)
    bisect,
    compare,
    gradcheck,
    history,
    init_sweep,
    matmul_bench,
    peak,
    reproduce,
    show,
    train,
)
from fndcli.cli.app import app, main

__all__ = ["app", "main"]
