"""Bad input gets one clear line and exit 2, before any work: config tables, --model classes, --help's placeholders."""
import re
import textwrap
from pathlib import Path

import pytest

from conftest import assert_one_line_error, assert_rejected
from fndcli.cli.config import command_tables

MODEL = Path(__file__).parent.parent / "examples" / "chapter_model.py"
COMMANDS = ["matmul-bench", "init-sweep", "gradcheck", "train", "compare", "show", "reproduce"]
TABLES = "known tables: [compare], [gradcheck], [init-sweep], [matmul-bench], [reproduce], [train]"


def toml(tmp_path, text):
    path = tmp_path / "fnd.toml"
    path.write_text(textwrap.dedent(text))
    return path


# --- config tables -----------------------------------------------------------------------------

@pytest.mark.parametrize("table,suggestion", [("init_sweep", "[init-sweep]"), ("init-swep", "[init-sweep]"),
                                              ("trian", "[train]"), ("plot", None)])
def test_an_unknown_table_names_itself_the_file_and_the_known_tables(fnd, tmp_path, table, suggestion):
    config = toml(tmp_path, f"[train]\nepochs = 2\n\n[{table}]\ndepth = 3\n")
    result = assert_rejected(fnd, tmp_path, "train", ["--config", config], "'--config'", str(config),
                             f"unknown table [{table}]", TABLES)
    assert (f"(did you mean {suggestion}?)" in result.stderr) if suggestion else "did you mean" not in result.stderr


def test_the_known_tables_are_the_commands_that_take_config():
    from typer.main import get_command

    from fndcli.cli import app

    group = get_command(app)
    ctx = group.make_context("fnd", ["train"], resilient_parsing=True)
    sub = group.get_command(ctx, "train").make_context("train", [], parent=ctx, resilient_parsing=True)
    assert command_tables(sub) == sorted(c for c in COMMANDS if c != "show")


def test_a_table_for_another_command_is_fine(fnd, tmp_path):
    """book.toml holds four commands' tables: gradcheck takes it and fails on the flag, not on the file."""
    result = fnd("gradcheck", "--config", "configs/book.toml", "--rtol", "-1", "--out", tmp_path / "out")
    assert_one_line_error(result, "'--rtol'", "got -1.0")


@pytest.mark.parametrize("text,fragments", [
    ("seed = 3\n", ["'seed' is outside any table", "[train]"]),
    ("train = 3\n", ["[train] must be a table"]),
    ("[train]\nlrr = 0.1\n", ["unknown key 'lrr' in [train] (did you mean 'lr'?)"]),
    # range errors from the file name the file and the key, whichever check finds them
    ("[train]\nlr = -1\n", ["'--config'", "[train] lr: must be a positive finite number, got -1"]),
    ("[train]\nepochs = 0\n", ["'--config'", "[train] epochs: must be 1 or more, got 0"]),
    ("[train]\nbatch_size = 5000\n", ["'--config'", "[train] batch-size: 5000 is larger than the 3200 training"]),
    ("[train]\nvalid-frac = 1.5\n", ["'--config'", "[train] valid-frac: must be between 0 and 1, got 1.5"]),
])
def test_a_bad_config_value_names_the_file_and_the_key(fnd, tmp_path, text, fragments):
    config = toml(tmp_path, text)
    assert_rejected(fnd, tmp_path, "train", ["--config", config], f"config '{config}'", *fragments)


def test_a_flag_that_overrides_the_file_is_blamed_itself(fnd, tmp_path):
    config = toml(tmp_path, "[train]\nlr = 0.1\n")
    result = assert_rejected(fnd, tmp_path, "train", ["--config", config, "--lr", "-2"], "'--lr'", "got -2.0")
    assert "config" not in result.stderr


def test_a_directory_given_as_config(fnd, tmp_path):
    assert_rejected(fnd, tmp_path, "train", ["--config", tmp_path], f"config '{tmp_path}' is a directory")
