"""Each kind of run is declared once (fndcli.kinds); its readers, views, compare rules and writers are tied to
it."""

import io
import json

import pandas as pd
import pytest
from conftest import assert_one_line_error

from fndcli import kind as kind_types
from fndcli import kinds
from fndcli.kinds import KINDS
from fndcli.runs.sidecar import Sidecar

READ = [k for k in KINDS if k.read]


def test_every_kind_show_reads_has_a_view_and_every_view_a_kind():
    from fndcli.report.views import VIEWS

    assert set(VIEWS) == set(READ)


def test_compare_has_rows_for_every_kind_it_reads_and_refuses_the_rest_by_name():
    from fndcli.runs.compare import ROWS

    assert set(ROWS) <= set(READ)
    assert {k.name for k in READ if k not in ROWS} == {
        "reproduce",
        "peak",
        "bisect",
    }  # a report, ceilings, a bisect's steps: fnd show them


def test_each_kind_names_its_columns_once_and_keys_what_it_reads():
    for kind in KINDS:
        names = [c.name for c in kind.columns]
        assert len(names) == len(set(names)), kind.name
        assert all(
            c.type in (kind_types.NUMBER, kind_types.BOOL, kind_types.TEXT, kind_types.LABEL)
            for c in kind.columns
        )
        if kind.read:
            assert set(kind.names(key=True)) <= set(kind.names(read=True)), kind.name
            assert kind.names(md=True) and kind.names(key=True), kind.name
        assert len(dict(kind.fields)) == len(kind.fields), kind.name


def test_gradchecks_rows_are_its_kinds_columns():
    """gradcheck's rows are a dataclass (backprop.harness.CheckRow); other cores take their kind's list."""
    from fndcli.backprop import harness

    assert harness.COLUMNS == kinds.GRADCHECK.written()


@pytest.mark.parametrize(
    "args, kind",
    [
        (
            [
                "--depth",
                "3",
                "--width",
                "8",
                "--batch",
                "4",
                "--scheme",
                "kaiming",
                "--act",
                "relu",
                "--backward",
            ],
            kinds.INIT_SWEEP,
        ),
        (
            ["--model", "examples/resnet.py:deep_mlp", "--input-shape", "4x100", "--backward"],
            kinds.INIT_SWEEP_MODEL,
        ),
        (["--model", "examples/resnet.py:deep_mlp", "--input-shape", "4x100"], kinds.INIT_SWEEP_MODEL),
    ],
)
def test_init_sweeps_files_hold_their_kinds_columns_with_and_without_backward(fnd, tmp_path, args, kind):
    ran = fnd("init-sweep", *args, "--out", tmp_path)
    assert ran.exit_code == 0, ran.output
    summary = next(tmp_path.glob("*-summary.csv"))
    assert list(pd.read_csv(summary).columns) == kind.written("--backward" in args)
    meta = json.loads(next(p for p in tmp_path.glob("*.json")).read_text())
    assert kinds.kind_of(meta) is kind


def test_compares_file_holds_its_kinds_columns(fnd, tmp_path):
    from test_compare import fake_matmul_run, processes

    csv = fake_matmul_run(tmp_path, {"torch": processes(1e-5)})
    assert fnd("compare", csv, csv, "--out", tmp_path / "o").exit_code == 0
    assert list(pd.read_csv(next((tmp_path / "o").glob("compare-*.csv"))).columns) == kinds.COMPARE.written()


@pytest.mark.parametrize(
    "meta, name",
    [
        ({"command": "init-sweep", "config": {"model": "m.py:net"}}, "init-sweep --model"),
        ({"command": "init-sweep", "config": {"model": None}}, "init-sweep"),
        ({"command": "init-sweep"}, "init-sweep"),
        ({"command": "history", "config": {"command": "gradcheck"}}, "history --command"),
        ({"command": "history", "config": {"command": "matmul-bench"}}, "history"),
        ({"command": "train", "config": {"lr-find": True}}, "train --lr-find"),
        ({"command": "train", "config": {"lr-find": False}}, "train"),
        ({"command": "train", "config": {"widths": "64,128"}}, "train --widths"),
        *(
            ({"command": k.command, "config": {}}, k.name)
            for k in KINDS
            if k
            not in (kinds.INIT_SWEEP_MODEL, kinds.HISTORY_FIGURES, kinds.TRAIN_LR_FIND, kinds.TRAIN_WIDTHS)
        ),
    ],
)
def test_a_runs_kind_is_its_commands_or_init_sweeps_of_a_model(meta, name):
    assert kinds.kind_of(meta).name == name


def test_what_fnd_history_follows_of_a_kind_is_its_own_columns():
    """Each Follow names columns of its kind: figures and verdicts, `last` a key, `once` a column; and
    `fnd history --command` offers matmul-bench and the commands of the kinds that declare one."""
    followed = [k for k in KINDS if k.history]
    for kind in followed:
        follow = kind.history
        named = {c for pair in follow.figures for c in pair if c} | ({follow.once} - {None})
        assert named <= {c.name for c in kind.columns}, kind.name
        assert follow.last is None or follow.last in kind.names(key=True), kind.name
        assert not follow.failing or all(verdict for _, verdict in follow.figures), kind.name
    assert kinds.FOLLOWED == ("matmul-bench", "init-sweep", "gradcheck", "train", "reproduce", "peak")
    assert {k.command for k in followed} == set(kinds.FOLLOWED) - {"matmul-bench"}


def test_the_sidecar_writes_the_kinds_fields_in_its_order_and_refuses_others():
    import numpy as np

    own = {"fd_eps": 1e-6, "seed": np.int64(3), "device": "cpu", "rtol": 1}  # given out of order, a numpy int
    written = Sidecar("gradcheck", {"batch": 4}, own=own).to_dict()
    assert list(written)[-5:] == ["device", "seed", "rtol", "fd_eps", "config"]
    assert written["seed"] == 3 and type(written["seed"]) is int
    for bad in ({"preset": "quick"}, {"seed": "3"}, {"seed": True}, {"rtol": "1e-5"}):
        with pytest.raises(TypeError, match=next(iter(bad))):
            Sidecar("gradcheck", {}, own=bad).to_dict()
    assert "user_code_changed" in dict(kinds.INIT_SWEEP_MODEL.fields)  # the --model kind's own field
    with pytest.raises(TypeError, match="user_code_changed"):
        Sidecar("init-sweep", {"model": None}, own={"user_code_changed": []}).to_dict()
    Sidecar("init-sweep", {"model": "m.py:net"}, own={"user_code_changed": []}).to_dict()


def test_a_sidecar_field_of_the_wrong_type_for_its_kind_is_refused_on_read(fnd, tmp_path):
    from test_compare import fake_matmul_run, processes

    from fndcli.runs.saved import RunError, load

    csv = fake_matmul_run(tmp_path, {"torch": processes(1e-5)})
    sidecar = csv.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    for field, value in (("preset", 5), ("load_avg_start", "high"), ("config", [1])):
        sidecar.write_text(json.dumps({**meta, field: value}))
        with pytest.raises(RunError, match=f"field {field} holds"):
            load(csv)
    # peak's field, not matmul-bench's: not read
    sidecar.write_text(json.dumps({**meta, "measured_rows": "x"}))
    assert load(csv).kind is kinds.MATMUL_BENCH


def test_md_shows_the_declared_columns_in_order(fnd, tmp_path):
    from test_compare import fake_matmul_run, processes

    csv = fake_matmul_run(tmp_path, {"torch": processes(1e-5)})
    shown = fnd("show", csv, "--format", "md")
    header = next(line for line in shown.stdout.splitlines() if line.startswith("| impl"))
    present = set(pd.read_csv(csv).columns)
    assert [c.strip() for c in header.strip("|").split("|")] == [
        c for c in kinds.MATMUL_BENCH.names(md=True) if c in present
    ]


def test_no_kind_declares_a_field_that_every_sidecar_writes():
    """A kind's own field named as one of every run's (`command`) would overwrite it, and the run would read
    back as another command's."""
    import dataclasses

    every = {f.name for f in dataclasses.fields(Sidecar)} - {"machine", "own"}
    assert {k.name: every & set(k.field_types) for k in KINDS if every & set(k.field_types)} == {}


def test_a_tuple_field_is_written_as_the_list_json_reads_back():
    written = Sidecar("compare", {}, own={"pair": ("a", "b"), "gated": 0}).to_dict()
    assert written["pair"] == ["a", "b"] and type(written["pair"]) is list


def test_compare_refuses_a_stack_run_against_a_model_run_by_kind(fnd, tmp_path):
    stacks = ["--depth", "3", "--width", "8", "--batch", "4", "--scheme", "kaiming", "--act", "relu"]
    model = ["--model", "examples/resnet.py:deep_mlp", "--input-shape", "4x100"]
    for name, args in (("stacks", stacks), ("model", model)):
        assert fnd("init-sweep", *args, "--out", tmp_path / name).exit_code == 0
    kinds = {"stacks": "init-sweep", "model": "init-sweep --model"}
    for base, new in (("stacks", "model"), ("model", "stacks")):
        result = fnd("compare", tmp_path / base, tmp_path / new, "--out", tmp_path / "o")
        said = f"BASE is a {kinds[base]} run and NEW a {kinds[new]} run: compare runs of one kind"
        assert_one_line_error(result, said)
    assert not (tmp_path / "o").exists()


def test_a_model_run_written_before_the_jump_finding_is_still_read(fnd, tmp_path):
    """A --model run whose summary lacks first_jump (written before that finding): show reads it, and compare
    against a new run reads "no jump" on its side (deep_mlp has none on either: no row for it)."""
    model = ["--model", "examples/resnet.py:deep_mlp", "--input-shape", "4x100"]
    assert fnd("init-sweep", *model, "--out", tmp_path / "old").exit_code == 0
    summary = next((tmp_path / "old").glob("*-summary.csv"))
    pd.read_csv(summary, dtype=str, keep_default_na=False).drop(columns="first_jump").to_csv(
        summary, index=False
    )
    assert fnd("show", tmp_path / "old").exit_code == 0
    assert fnd("init-sweep", *model, "--out", tmp_path / "new").exit_code == 0
    result = fnd("compare", tmp_path / "old", tmp_path / "new", "--out", tmp_path / "o", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert "jump from" not in set(rows["what"]) and (rows["verdict"] == "same").all()
