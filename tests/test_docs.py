"""README documents every command and, in that command's own section, every one of its options."""
import re
from pathlib import Path

import pytest
import typer.main

from fndcli.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()
GROUP = typer.main.get_command(app)


def _commands():
    with GROUP.make_context("fnd", ["--help"], resilient_parsing=True) as ctx:
        return [(name, GROUP.get_command(ctx, name)) for name in GROUP.list_commands(ctx)]


def section(name):
    """The text of README's `## `fnd NAME`` section, up to the next second-level heading."""
    match = re.search(rf"^## `fnd {re.escape(name)}`\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no section '## `fnd {name}`'"
    return match.group(1)


def documented_options(text):
    """The options named in the first cell of a table row (`| `--depth`, `--width` | ...`)."""
    rows = (line.split("|")[1] for line in text.splitlines() if line.startswith("| `--"))
    return {opt for cell in rows for opt in re.findall(r"--[a-z0-9-]+", cell)}


@pytest.mark.parametrize("name,command", _commands())
def test_command_documented_in_its_own_section(name, command):
    documented = documented_options(section(name))
    assert "Example" in (command.help or ""), f"{name}'s docstring needs an example"
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in documented, f"{opt} of {name} is not in the option table of README's {name} section"


def test_only_the_commands_own_section_counts():
    """An option documented under another command does not count: train has no --sweep."""
    assert "--sweep" in documented_options(section("matmul-bench"))
    assert "--sweep" not in documented_options(section("train"))
