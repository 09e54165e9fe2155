"""README documents every command and every option, and each command's help has an example."""
from pathlib import Path

import pytest
import typer.main

from fndcli.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()
GROUP = typer.main.get_command(app)


def _commands():
    with GROUP.make_context("fnd", ["--help"], resilient_parsing=True) as ctx:
        return [(name, GROUP.get_command(ctx, name)) for name in GROUP.list_commands(ctx)]


@pytest.mark.parametrize("name,command", _commands())
def test_command_documented(name, command):
    assert f"## `fnd {name}`" in README
    assert "Example" in (command.help or ""), f"{name}'s docstring needs an example"
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in README, f"{opt} of {name} is not in README"
