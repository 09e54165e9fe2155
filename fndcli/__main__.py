"""`python -m fndcli` is `fnd`."""

from fndcli.cli import main

main()
