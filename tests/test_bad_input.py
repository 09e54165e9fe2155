"""Bad input gets one clear line and exit 2, before any work: config tables, --model classes, --help's
placeholders."""

import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_one_line_error, assert_rejected, fnd_each_in_a_fresh_process

from fndcli.cli.config import command_tables

MODEL = Path(__file__).parent.parent / "examples" / "chapter_model.py"
COMMANDS = ["matmul-bench", "init-sweep", "gradcheck", "train", "compare", "show", "reproduce", "peak"]
TABLES = "known tables: [compare], [gradcheck], [init-sweep], [matmul-bench], [peak], [reproduce], [train]"


def toml(tmp_path, text):
    path = tmp_path / "fnd.toml"
    path.write_text(textwrap.dedent(text))
    return path


# --- config tables -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table,suggestion",
    [("init_sweep", "[init-sweep]"), ("init-swep", "[init-sweep]"), ("trian", "[train]"), ("plot", None)],
)
def test_an_unknown_table_names_itself_the_file_and_the_known_tables(fnd, tmp_path, table, suggestion):
    config = toml(tmp_path, f"[train]\nepochs = 2\n\n[{table}]\ndepth = 3\n")
    result = assert_rejected(
        fnd,
        tmp_path,
        "train",
        ["--config", config],
        "'--config'",
        str(config),
        f"unknown table [{table}]",
        TABLES,
    )
    assert (
        (f"(did you mean {suggestion}?)" in result.stderr)
        if suggestion
        else "did you mean" not in result.stderr
    )


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


@pytest.mark.parametrize(
    "text,fragments",
    [
        ("seed = 3\n", ["'seed' is outside any table", "[train]"]),
        ("train = 3\n", ["[train] must be a table"]),
        ("[train]\nlrr = 0.1\n", ["unknown key 'lrr' in [train] (did you mean 'lr'?)"]),
        # range errors from the file name the file and the key, whichever check finds them
        ("[train]\nlr = -1\n", ["'--config'", "[train] lr: must be a positive finite number, got -1"]),
        ("[train]\nepochs = 0\n", ["'--config'", "[train] epochs: must be 1 or more, got 0"]),
        (
            "[train]\nbatch_size = 5000\n",
            ["'--config'", "[train] batch-size: 5000 is larger than the 3200 training"],
        ),
        (
            "[train]\nvalid-frac = 1.5\n",
            ["'--config'", "[train] valid-frac: must be between 0 and 1, got 1.5"],
        ),
        # one key spelt both ways; an empty list (which would silently mean the default)
        (
            "[train]\nvalid-frac = 0.2\nvalid_frac = 0.3\n",
            ["sets valid-frac twice ('valid_frac' and 'valid-frac')"],
        ),
        ("[train]\nhidden = []\n", ["[train] hidden is an empty list; leave the key out for the default"]),
        # another command's table of a shared file: its keys and types are checked too, whichever command
        # reads it
        (
            "[train]\nepochs = 2\n[gradcheck]\nbatchh = 3\n",
            ["unknown key 'batchh' in [gradcheck] (did you mean 'batch'?)"],
        ),
        (
            "[gradcheck]\nbatch = 'x'\n",
            ['[gradcheck] batch must be an integer, got "x"'],
        ),  # as TOML spells it
        ("[train]\nepochs = true\n", ["[train] epochs must be an integer, got true"]),
        ("[train]\nlr = [1, false]\n", ["[train] lr must be a number, got [1, false]"]),
    ],
)
def test_a_bad_config_value_names_the_file_and_the_key(fnd, tmp_path, text, fragments):
    config = toml(tmp_path, text)
    assert_rejected(fnd, tmp_path, "train", ["--config", config], f"config '{config}'", *fragments)


def test_a_flag_that_overrides_the_file_is_blamed_itself(fnd, tmp_path):
    config = toml(tmp_path, "[train]\nlr = 0.1\n")
    result = assert_rejected(fnd, tmp_path, "train", ["--config", config, "--lr", "-2"], "'--lr'", "got -2.0")
    assert "config" not in result.stderr


def test_a_directory_given_as_config(fnd, tmp_path):
    assert_rejected(fnd, tmp_path, "train", ["--config", tmp_path], f"config '{tmp_path}' is a directory")


# --- --model: checked at load, like --layer ----------------------------------------------------

MODELS = """
def f(a, b):
    return a @ b

class NotAModel:
    pass

class Raises:
    def __init__(self, w1, b1, w2, b2):
        raise ValueError("no thanks")

class NoBackward:
    def __init__(self, *tensors):
        self.tensors = tensors

    def __call__(self, x, targ):
        return x.sum()

class NotCallable:
    def __init__(self, w1, b1, w2, b2):
        pass

    def backward(self):
        pass

class LinRaises:
    def __init__(self, w, b):
        raise ValueError("bad lin")

    def __call__(self, inp):
        return inp

CONSTANT = 3
"""


@pytest.mark.parametrize("command", ["gradcheck", "train"])
@pytest.mark.parametrize(
    "name,fragment",
    [
        ("f", "'{models}:f' is a function, not a class"),
        ("CONSTANT", "'{models}:CONSTANT' is an int, not a class"),
        (
            "NotAModel",
            "NotAModel() cannot be built as NotAModel(w1, b1, w2, b2): a model of 100 -> 50 -> 1 is built "
            "from its 4 tensors",
        ),
        ("Raises", "Raises(w1, b1, w2, b2) raised ValueError: no thanks"),
        ("NoBackward", "NoBackward(w1, b1, w2, b2) has no backward()"),
        ("NotCallable", "NotCallable(w1, b1, w2, b2) cannot be called"),
    ],
)
def test_a_model_that_is_not_one_is_exit_2_at_load(fnd, tmp_path, command, name, fragment):
    models = tmp_path / "models.py"
    models.write_text(MODELS)
    assert_rejected(
        fnd, tmp_path, command, ["--model", f"{models}:{name}"], "'--model'", fragment.format(models=models)
    )


def test_a_model_built_for_another_depth(fnd, tmp_path):
    assert_rejected(
        fnd,
        tmp_path,
        "gradcheck",
        ["--model", f"{MODEL}:Model", "--hidden", "10", "--hidden", "8"],
        "'--model'",
        "Model(w1, b1, w2, b2) cannot be built as Model(w1, b1, w2, b2, w3, b3): a model of "
        "100 -> 10 -> 8 -> 1 is built from its 6 tensors",
    )


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("f", "is a function, not a class"),
        ("NotAModel", "its constructor takes 0 argument(s) and it defines no __call__"),
        ("LinRaises", "LinRaises(w, b) raised ValueError: bad lin"),
    ],
)
def test_a_layer_that_is_not_one_is_exit_2(fnd, tmp_path, name, fragment):
    models = tmp_path / "models.py"
    models.write_text(MODELS)
    assert_rejected(fnd, tmp_path, "gradcheck", ["--layer", f"{models}:{name}"], "'--layer'", fragment)


# --- --help and messages -----------------------------------------------------------------------


def test_the_commands_listed_here_are_the_apps(fnd):
    listed = fnd("--help").stdout.split("Commands:")[1].split()
    assert sorted(c for c in listed if c in COMMANDS) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_real_placeholders(fnd, command):
    """N, X, NAME, a|b, PATH: none of Typer's `<int range>`, `<list[cpu|cuda]>`, `{BASE}`, `BASE <path>`."""
    result = fnd(command, "--help")
    assert result.exit_code == 0, result.output
    assert not re.findall(r"<[^<>\n]+>", result.stdout) and not re.findall(r"\{[^{}\n]+\}", result.stdout)
    options = [
        line.split()[0:2]
        for line in result.stdout.split("Options:")[1].splitlines()
        if line.startswith("  -")
    ]
    # every option has its placeholder or help beside it
    assert all(len(opt) == 2 for opt in options), options


def test_arguments_and_long_choices_read_as_click_writes_them(fnd):
    compare = fnd("compare", "--help").stdout
    assert compare.split("\n")[0].endswith(" compare [OPTIONS] BASE [NEW]")  # NEW: none with --pair
    assert re.search(r"^  BASE  +The run to compare against", compare, re.M)
    assert fnd("show", "--help").stdout.split("\n")[0].endswith(" show [OPTIONS] RUN")
    for command in ("gradcheck", "train"):
        lines = fnd(command, "--help").stdout.splitlines()
        init = next(line for line in lines if line.startswith("  --init"))
        assert init.split()[:3] == ["--init", "NAME", "Init"], init  # the choices are in the help text
    assert "  --dtype float32|float64 " in fnd("train", "--help").stdout
    assert "  --device cpu|cuda " in fnd("matmul-bench", "--help").stdout


@pytest.mark.parametrize(
    "command,args,fragments",
    [
        ("gradcheck", ["--batch", "1.5"], ["'--batch'", "'1.5' is not an integer"]),
        ("gradcheck", ["--hidden", "x"], ["'--hidden'", "'x' is not an integer"]),
        ("init-sweep", ["--scale", "abc"], ["'--scale'", "'abc' is not a number"]),
        ("train", ["--epochs", "0"], ["'--epochs'", "must be 1 or more, got 0"]),
        ("compare", ["--seed", "-1", "a", "b"], ["'--seed'", "must be 0 or more, got -1"]),
        (
            "matmul-bench",
            ["--impl", "{tmp}/k.py:CONSTANT"],
            ["'{tmp}/k.py:CONSTANT' is an int, not a function of (a, b)"],
        ),
        ("matmul-bench", ["--impl", "{tmp}/adir:mm"], ["'{tmp}/adir' is a directory, not a Python file"]),
        (
            "matmul-bench",
            ["--impl", "{tmp}/adir.py:mm"],
            ["'{tmp}/adir.py' is a directory, not a Python file"],
        ),
        ("matmul-bench", ["--impl", "{tmp}/k.txt:mm"], ["'{tmp}/k.txt' is not a Python file"]),
        (
            "matmul-bench",
            ["--impl", "{tmp}/k.py:Kernel"],
            ["'{tmp}/k.py:Kernel' is a class, not a function of (a, b)"],
        ),
        ("matmul-bench", ["--impl", "{tmp}/k.py:one"], ["'{tmp}/k.py:one' takes (a), not (a, b)"]),
        ("matmul-bench", ["--quick", "--fast"], ["'--fast'", "not --quick and --fast"]),
        (
            "matmul-bench",
            ["--threads", "100000"],
            ["'--threads'", "or less, got 100000"],
        ),  # 100000 threads froze the host
        (
            "matmul-bench",
            ["--impl", "{tmp}/exits.py:mm"],
            ["cannot import", "SystemExit: 5"],
        ),  # sys.exit() on import
        (
            "matmul-bench",
            ["--impl", "torch", "--baseline", "torch@"],
            ["'--baseline'", "'torch@' is not in this run"],
        ),
        ("train", ["--momentum", "1.5"], ["'--momentum'", "must be in [0, 1), got 1.5"]),
        ("compare", ["--seed", str(2**64), "a", "b"], ["'--seed'"]),
        (
            "matmul-bench",
            ["--impl", "loops", "--shape", "2048x2048x2048"],
            ["'--shape'", "nothing would be timed"],
        ),
        (
            "train",
            ["--task", "regression", "--classes", "5"],
            ["'--classes'", "is for --task classification"],
        ),
        ("train", ["--task", "classification", "--n-out", "3"], ["'--n-out'", "is for --task regression"]),
    ],
)
def test_messages_name_the_value(fnd, tmp_path, command, args, fragments):
    (tmp_path / "k.py").write_text("CONSTANT = 3\n\nclass Kernel:\n    pass\n\ndef one(a):\n    return a\n")
    (tmp_path / "k.txt").write_text("mm = 3\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(5)\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir.py").mkdir()
    assert_rejected(
        fnd,
        tmp_path,
        command,
        [a.format(tmp=tmp_path) for a in args],
        *[f.format(tmp=tmp_path) for f in fragments],
    )


def test_an_empty_out_is_not_the_current_directory(fnd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Path('') is '.': fnd would have written here
    assert_one_line_error(
        fnd("gradcheck", "--batch", "2", "--out", ""), "'--out'", "is empty: name a directory"
    )
    assert not list(tmp_path.iterdir())


def test_show_a_name_too_long(fnd, tmp_path):
    assert_one_line_error(fnd("show", tmp_path / ("x" * 300)), "'RUN'", "File name too long")


@pytest.mark.xdist_group("wrong-and-skipped-run")
def test_a_kernel_that_calls_sys_exit_is_a_failing_row(wrong_and_skipped_run):
    """sys.exit() inside the user's kernel is their bug: a row that says so, exit 1, the run written."""
    result, exits = wrong_and_skipped_run.result, wrong_and_skipped_run.impls[-1]  # exits.py:mm: sys.exit(3)
    assert result.exit_code == 1, result.output  # not sys.exit's 3
    frame = pd.read_csv(next(wrong_and_skipped_run.out.glob("*.csv")))
    rows = frame[frame["m"] == 4].set_index("impl")  # at 4x6x3; tests/test_matmul_cli.py reads the rest
    assert rows.loc[exits, "error"] == "raised SystemExit: 3" and rows.loc["torch", "correct"]
    assert not rows.loc[exits, "correct"]  # a failing row (exit 1 comes from the flipped dot's row as well)


def test_a_kernel_right_once_that_raises_when_called_again_is_a_failing_row(wrong_and_skipped_run):
    """A kernel whose first call is right and whose third raises (in the calls that size its values) was a
    traceback of fnd's: now a failing row that says when, with the user's frames."""
    later = wrong_and_skipped_run.impls[-2]
    frame = pd.read_csv(next(wrong_and_skipped_run.out.glob("*.csv")))
    row = frame[frame["m"] == 4].set_index("impl").loc[later]
    assert row["error"] == "raised ValueError when called again: third call" and not row["correct"]
    assert "later.py" in wrong_and_skipped_run.result.output and "Traceback (most recent" not in (
        wrong_and_skipped_run.result.output
    )


def test_a_file_that_calls_os_exit_on_import_is_refused_not_a_silent_pass(tmp_path):
    """os._exit(0) at import ended fnd with exit 0, no output and nothing written: a CI step that passes. In a
    process of their own (were it to exit, pytest's process would end with 0 too), every command that loads
    the user's code says so in one line, exit 2, writing nothing."""
    quits = tmp_path / "quits.py"
    quits.write_text("import os\nos._exit(0)\n\ndef mm(a, b):\n    return a @ b\n")
    out = tmp_path / "out"
    invocations = [
        ["matmul-bench", "--impl", f"{quits}:mm", "--quick", "--out", out],
        ["gradcheck", "--model", f"{quits}:mm", "--out", out],
        ["train", "--model", f"{quits}:mm", "--out", out],
        ["init-sweep", "--model", f"{quits}:mm", "--input-shape", "4x10", "--out", out],
    ]
    for args, (code, stdout, stderr) in zip(invocations, fnd_each_in_a_fresh_process(invocations)):
        assert code == 2 and stdout == "", (args, code, stdout)
        assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
        assert str(quits) in stderr and "calls os._exit(0) on import" in stderr, stderr
    assert not out.exists()


def test_bisect_without_the_double_dash_says_where_the_command_goes(fnd, tmp_path):
    """`fnd bisect GOOD BAD gradcheck --model ...`: click meets --model as an option of bisect's own; the line
    says the command goes after --, and lists none of bisect's options as what was meant."""
    result = fnd("bisect", "HEAD~1", "HEAD", "gradcheck", "--model", "m.py:Model", "--out", tmp_path / "o")
    assert_one_line_error(result, "No such option: --model", "goes after --: fnd bisect GOOD BAD -- COMMAND")
    assert "Possible options" not in result.stderr and not (tmp_path / "o").exists()
