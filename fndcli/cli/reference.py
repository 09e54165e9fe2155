"""docs/cli.md, the option reference: `fnd --help` and each command's `--help`, as a terminal shows them.

`make docs` (`python -m fndcli.cli.reference docs/cli.md`) writes it; tests/test_docs.py fails when it is
stale. Two things would make the page differ from one machine to the next: help wraps at the terminal's
width, and `--threads` is bounded by the machine's cores. So the help is laid out at a fixed width, in a
fresh interpreter whose core count is a placeholder that the page writes as CORES.
"""

import subprocess
import sys
from pathlib import Path

WIDTH = 78  # click lays help out at min(terminal, 80) - 2 columns: what any terminal of 80 or more shows
# os.cpu_count() in the child (cli/peak.py and cli/matmul_bench.py read it at import); as long as "CORES",
# so the lines wrap as they will read
CORES = 98765

HEADER = """# Command-line reference

<!-- Generated from fnd's --help by `make docs` (fndcli/cli/reference.py): edit the help, not this page. -->

Every command's `--help`, as a terminal of 80 columns or more shows it; CORES stands for the
machine's core count. [README](../README.md) introduces each command; its page here goes in depth.
"""


def render():
    """The page's Markdown, from the help of the app this process imported, laid out at WIDTH columns."""
    import typer.main
    from typer import _click as click

    from fndcli.cli import app

    group = typer.main.get_command(app)
    root = click.Context(group, info_name="fnd", terminal_width=WIDTH, max_content_width=WIDTH)
    sections = [HEADER, _section("fnd", group.get_help(root))]
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        help_text = command.get_help(click.Context(command, info_name=name, parent=root))
        sections.append(_section(f"fnd {name}", help_text, page=f"{name}.md"))
    return "\n".join(sections)


def _section(title, help_text, page=None):
    link = f"In depth: [{page}]({page}).\n\n" if page else ""
    return f"## `{title}`\n\n{link}```text\n{help_text.rstrip()}\n```\n"


def markdown():
    """The page as any machine makes it: render() in a child interpreter whose os.cpu_count() is CORES."""
    code = (
        f"import os\nos.cpu_count = lambda: {CORES}\n"
        "from fndcli.cli.reference import render\nprint(render(), end='')\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if child.returncode != 0:
        raise RuntimeError(f"rendering the reference failed:\n{child.stderr}")
    return child.stdout.replace(str(CORES), "CORES")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m fndcli.cli.reference PATH  (writes the option reference to PATH)")
    Path(sys.argv[1]).write_text(markdown())
