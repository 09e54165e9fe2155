"""`fnd show RUN` prints what the command printed: its title, its table, the lines under it (one renderer
each)."""

import pytest

RUNS = {  # matmul-bench's is conftest.LADDER, the run tests/test_matmul_cli.py and test_compare.py read too
    "init-sweep": ["--scheme", "kaiming", "--act", "relu", "--depth", "4", "--width", "8", "--batch", "4"],
    "gradcheck": ["--batch", "4", "--n-in", "5", "--hidden", "3", "--init", "kaiming"],
    "train": [
        "--samples",
        "100",
        "--epochs",
        "2",
        "--n-in",
        "4",
        "--hidden",
        "4",
        "--task",
        "classification",
        "--momentum",
        "0.5",
    ],
    "reproduce": ["--quick", "--section", "bridge"],
    "peak": ["--dtype", "float32", "--threads", "1"],  # from the suite's seeded cache: nothing measured
}
FACTS = ("run", "when", "where", "versions", "command")


@pytest.mark.parametrize(
    "command", [pytest.param("matmul-bench", marks=pytest.mark.xdist_group("ladder-run")), *RUNS]
)
def test_show_prints_what_the_command_printed(fnd, tmp_path, request, command):
    if command == "matmul-bench":
        ladder = request.getfixturevalue("ladder_run")
        ran, out = ladder.result, ladder.out
    else:
        ran, out = fnd(command, *RUNS[command], "--out", tmp_path), tmp_path
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    paths = [line for line in lines if line.startswith(str(out))]
    printed = "\n".join(lines[: len(lines) - len(paths)])
    assert printed.strip() and paths
    if command == "train":  # the title names the loss: a property of the task, not a key of the config
        assert ", cross-entropy, SGD lr 0.05 momentum 0.5, float32" in printed
    _written_as_declared(paths)
    shown = fnd("show", paths[0])
    assert shown.exit_code == 0, shown.output
    facts = shown.stdout.splitlines()[: len(FACTS)]
    assert [line.split(":")[0] for line in facts] == list(FACTS)
    assert "\n".join(shown.stdout.splitlines()[len(FACTS) :]) == printed


def test_a_train_run_without_a_twin_or_a_finished_step_shows_what_it_has(fnd, tmp_path):
    import json

    ran = fnd("train", *RUNS["train"], "--no-check-autograd", "--out", tmp_path)
    assert ran.exit_code == 0, ran.output
    assert "hand-written step" in ran.stdout and "twin" not in ran.stdout.split("hand-written step")[1]
    sidecar = next(tmp_path.glob("train-*.json"))
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "steps": 0, "manual_step_s": None, "status": "interrupted"}))
    shown = fnd("show", tmp_path)
    assert shown.exit_code == 0, shown.output
    assert "no training step finished" in shown.stdout and "interrupted" in shown.stdout


def _written_as_declared(paths):
    """The run's main CSV has its kind's columns (fndcli.kinds) in order, and its sidecar the kind's
    fields."""
    import json

    import pandas as pd

    from fndcli.kinds import kind_of
    from fndcli.runs.saved import find_sidecar

    sidecar, _ = find_sidecar(paths[0])
    meta = json.loads(sidecar.read_text())
    kind = kind_of(meta)
    main = sidecar.parent / (kind.main if kind.own_directory else sidecar.name[: -len(".json")] + kind.main)
    assert list(pd.read_csv(main).columns) == [c.name for c in kind.columns if not c.sometimes]
    common = ["command", "files", "status", "exit_code", "error", "config_file", "schema", "command_line"]
    own = list(meta)[list(meta).index("git_commit") + 1 : -1]
    assert list(meta)[: len(common)] == common and list(meta)[-1] == "config"
    assert own == [name for name, _ in kind.fields if name in own]
