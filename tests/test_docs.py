"""The docs keep up with the CLI: docs/cli.md is fnd's --help as it is now and names every option; README
introduces every command with an example and a link to its page, and stays a front door; every `fnd ...`
example parses against the real CLI; every relative link resolves."""

import re
import shlex
from collections import Counter
from pathlib import Path

import pytest
import typer
import typer.main
from typer import _click as click
from typer.core import TyperArgument

from fndcli.cli import app, reference

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
CLI_REFERENCE = ROOT / "docs" / "cli.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 200
GROUP = typer.main.get_command(app)


def _commands():
    root = click.Context(GROUP, info_name="fnd")
    return [(name, GROUP.get_command(root, name)) for name in GROUP.list_commands(root)]


COMMANDS = _commands()


def test_commands_are_found():
    """The tests below are parametrized over the app's commands: an empty list would pass them all."""
    assert {
        "matmul-bench",
        "peak",
        "init-sweep",
        "gradcheck",
        "train",
        "reproduce",
        "compare",
        "show",
    } <= dict(COMMANDS).keys()


@pytest.mark.parametrize("name,command", COMMANDS)
def test_every_command_has_an_example_in_its_help(name, command):
    assert "Example" in (command.help or ""), f"{name}'s docstring needs an example"


# docs/cli.md, the option reference


def test_the_option_reference_is_current():
    assert CLI_REFERENCE.read_text() == reference.markdown(), "docs/cli.md is stale: run `make docs`"


def reference_section(title):
    """The text of docs/cli.md's section '## `TITLE`', up to the next one."""
    match = re.search(rf"^## `{re.escape(title)}`\n(.*?)(?=^## |\Z)", CLI_REFERENCE.read_text(), re.M | re.S)
    assert match, f"docs/cli.md has no section '## `{title}`': run `make docs`"
    return match.group(1)


def param_names(param):
    """What a reader looks a parameter up by: an option's every spelling, an argument's metavar."""
    if isinstance(param, TyperArgument):
        return [param.metavar or param.name.upper()]
    return [*param.opts, *param.secondary_opts]


@pytest.mark.parametrize("title,command", [("fnd", GROUP), *((f"fnd {name}", cmd) for name, cmd in COMMANDS)])
def test_every_option_is_in_the_reference(title, command):
    section = reference_section(title)
    for param in command.params:
        for name in param_names(param):
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", section), (
                f"{name} of `{title}` is not in its section of docs/cli.md: run `make docs`"
            )


# README, the front door


def test_readme_is_a_front_door():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README is {lines} lines; at most {README_MAX_LINES}: move detail to docs/"
    )


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_readme_introduces_each_command_with_an_example_and_its_page(name):
    """A paragraph that starts **`fnd NAME`**, links docs/NAME.md, and is followed by an example of NAME."""
    match = re.search(
        rf"^\*\*`fnd {re.escape(name)}`\*\*(.*?)\n\n```console\n(.*?)```", README.read_text(), re.M | re.S
    )
    assert match, f"README has no paragraph starting **`fnd {name}`** followed by a console example"
    paragraph, example = match.groups()
    assert f"](docs/{name}.md" in paragraph, f"README's paragraph on fnd {name} does not link docs/{name}.md"
    assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md does not exist"
    assert re.search(rf"^\$ fnd {re.escape(name)}\b", example, re.M), (
        f"README's example after fnd {name} is not one"
    )


def examples(path):
    """Each `$ fnd ...` line of the page's console blocks, as the words fnd gets (no comment, no
    redirection)."""
    for line in re.findall(r"^\$ (fnd .*)$", path.read_text(), re.M):
        lexer = shlex.shlex(
            line, posix=True, punctuation_chars=True
        )  # `a; b` is three words, as bash reads it
        lexer.whitespace_split, lexer.commenters = True, "#"
        words = list(lexer)
        ends = [i for i, word in enumerate(words) if word in ("|", ">", ">>", "&&", ";")]
        args = words[1 : ends[0] if ends else None]
        yield pytest.param(args, id=f"{path.name}: fnd {' '.join(args)}")


def parse(args):
    """Parse args as `fnd` would, through every option's type and callback, running no command."""
    root = click.Context(GROUP, info_name="fnd")
    try:
        if args[0].startswith("-"):
            GROUP.parse_args(root, list(args))
        else:
            command = GROUP.get_command(root, args[0])
            if command is None:
                raise click.exceptions.UsageError(f"no such command '{args[0]}'")
            command.make_context(args[0], list(args[1:]), parent=root)
    except typer.Exit as e:  # --help, --version
        assert e.exit_code == 0


@pytest.mark.parametrize("args", [e for page in PAGES for e in examples(page)])
def test_every_example_parses(args, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples name files from the repository's root (configs/, examples/)
    try:
        parse(args)
    except click.ClickException as e:
        pytest.fail(f"`fnd {shlex.join(args)}` does not parse: {e.format_message()}")


def test_readme_has_examples_of_every_command():
    named = {args[0] for args in (p.values[0] for p in examples(README))}
    assert {name for name, _ in COMMANDS} <= named


# links


def without_code(text):
    """Markdown with its fenced blocks and inline code taken out: what is in them is not a link or a
    heading."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))


def anchors(path):
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens, -1, -2
    for repeats."""
    seen = Counter()
    for heading in re.findall(
        r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S), re.M
    ):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        yield slug if not seen[slug] else f"{slug}-{seen[slug]}"
        seen[slug] += 1


def links(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(path.read_text())):
        if not re.match(r"[a-z]+:", target):  # https:, mailto:
            yield pytest.param(path, target, id=f"{path.relative_to(ROOT)}: {target}")


@pytest.mark.parametrize("page,target", [link for page in PAGES for link in links(page)])
def test_every_relative_link_resolves(page, target):
    file, _, anchor = target.partition("#")
    resolved = (page.parent / file).resolve() if file else page
    assert resolved.exists(), f"{page.relative_to(ROOT)} links {target}: no such file"
    if anchor and resolved.suffix == ".md":
        assert anchor in set(anchors(resolved)), f"{page.relative_to(ROOT)} links {target}: no such heading"
