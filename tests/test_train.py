"""`fnd train`: lockstep parity with the autograd twin, learning, divergence, and the CLI."""

import math
import re
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from conftest import assert_rejected, run_files

from fndcli.backprop import train as fnd_train
from fndcli.backprop.train import COLUMNS, baseline_metric, make_data, metric, train
from fndcli.settings import TrainConfig

SMALL = dict(samples=256, n_in=12, hidden=(16, 8), epochs=3, batch_size=32)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize(
    "extra",
    [
        dict(),
        dict(momentum=0.9, lr=0.02),
        dict(task="classification", classes=3),
        dict(task="classification", labels="clusters", n_out=1, batch_size=1, epochs=1),
        dict(n_out=3, init="lsuv"),
        dict(act="tanh", init="xavier"),  # the hand-written Tanh's backward against nn.Tanh's autograd
    ],
)
def test_lockstep_parity_with_autograd_twin(dtype, tol, extra):
    result = train(TrainConfig(**{**SMALL, **extra, "dtype": dtype}))
    assert result.steps > 0 and result.diverged_epoch is None
    assert result.mismatch(tol) is None, (result.loss_diff, result.param_diff)
    assert result.model.cached == 0  # every forward's cache was consumed by its backward
    h = result.history
    assert ((h["train_loss"] - h["ref_train_loss"]).abs() <= tol * h["ref_train_loss"].abs()).all()


def test_twin_check_is_not_vacuous(monkeypatch):
    """An SGD step 1% too long is caught."""
    real_step = fnd_train.ManualSGD.step

    def long_step(self):
        self.lr *= 1.01
        real_step(self)
        self.lr /= 1.01

    monkeypatch.setattr(fnd_train.ManualSGD, "step", long_step)
    result = train(TrainConfig(**SMALL))
    assert result.param_diff.rel_diff > 1e-4 and result.mismatch(1e-5) is not None


def test_defaults_learn_and_write_history(fnd, tmp_path):
    result = fnd("train", "--out", tmp_path, "--plot")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert list(history.columns) == COLUMNS and list(history["epoch"]) == list(range(21))
    assert history["valid_loss"].iloc[-1] < history["valid_loss"].iloc[0] / 4  # far below where it started
    assert history["valid_metric"].iloc[-1] > 0.5  # R^2
    assert history["loss_rel_diff"].iloc[1:].max() <= 1e-5
    assert (history["step_s"].iloc[1:] > 0).all() and (history["ref_step_s"].iloc[1:] > 0).all()
    assert meta["baseline"] == "the training mean" and abs(meta["baseline_metric"]) < 0.01
    assert meta["manual_step_s"] > 0 and meta["autograd_step_s"] > 0 and meta["steps"] == 20 * 50
    assert (tmp_path / meta["files"][1]).read_bytes()[:4] == b"\x89PNG"
    assert "autograd twin" in result.stdout


def test_classification_beats_chance(fnd, tmp_path):
    result = fnd(
        "train",
        "--task",
        "classification",
        "--classes",
        "5",
        "--labels",
        "clusters",
        "--epochs",
        "5",
        "--samples",
        "1000",
        "--out",
        tmp_path,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    history, _ = run_files(tmp_path, "train")
    assert history["valid_metric"].iloc[-1] > 0.6  # chance is 0.2


def test_divergence_exits_1_names_the_epoch_and_keeps_the_csv(fnd, tmp_path):
    result = fnd("train", "--lr", "1000", "--samples", "400", "--out", tmp_path)
    assert result.exit_code == 1
    assert "diverged in epoch 1" in result.stderr and "smaller --lr" in result.stderr
    history, meta = run_files(tmp_path, "train")
    assert list(history["epoch"]) == [0] and meta["diverged_epoch"] == 1  # no epoch finished
    shown = fnd("show", tmp_path)  # the saved run says it too, though the Error line was the run's stderr
    assert shown.exit_code == 0 and "training diverged in epoch 1 (non-finite loss)" in shown.stdout


def test_no_check_autograd(fnd, tmp_path):
    result = fnd(
        "train", "--no-check-autograd", "--epochs", "2", "--samples", "400", "--out", tmp_path, "--quiet"
    )
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert history["ref_train_loss"].isna().all() and meta["autograd_step_s"] is None


def test_config_table(fnd, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[train]\nepochs = 2\nsamples = 300\nhidden = [8, 4]\ntask = "classification"\n')
    result = fnd("train", "--config", cfg, "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert (
        len(history) == 2
        and meta["config"]["hidden"] == [8, 4]
        and meta["config"]["task"] == "classification"
    )


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--lr", "0"], ["'--lr'", "positive"]),
        (["--lr", "nan"], ["'--lr'"]),
        (["--lr", "inf"], ["'--lr'"]),
        (["--epochs", "0"], ["'--epochs'"]),
        (["--batch-size", "0"], ["'--batch-size'"]),
        (["--batch-size", "5000"], ["'--batch-size'", "larger than the 3200 training examples"]),
        (["--task", "ranking"], ["'--task'", "'ranking'", "classification"]),
        (["--init", "xavier-gaussian"], ["'--init'", "kaiming"]),
        (["--valid-frac", "1"], ["'--valid-frac'"]),
    ],
)
def test_bad_input_exits_2(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "train", args, *fragments)


def _off_twin_loss(monkeypatch, rel, after_step=0):
    """The twin reports a loss off by `rel` (relative) from step `after_step` on; its gradients are
    untouched."""
    real, steps = fnd_train.twin_loss, []

    def twin_loss(twin, x, y, loss):
        value = real(twin, x, y, loss)
        if torch.is_grad_enabled():  # a training step, not an evaluation
            steps.append(1)
            if len(steps) > after_step:
                return value + rel * value.detach()
        return value

    monkeypatch.setattr(fnd_train, "twin_loss", twin_loss)


def test_a_twin_whose_loss_alone_is_off_exits_1_with_the_reason(fnd, tmp_path, monkeypatch):
    _off_twin_loss(monkeypatch, 1e-3)
    result = fnd("train", "--epochs", "2", "--samples", "400", "--out", tmp_path, "--quiet")
    assert result.exit_code == 1, result.output
    assert re.fullmatch(
        r"Error: the hand-written model and its autograd twin disagree: step \d+ \(epoch \d\) "
        r"differs by \d\.\d\de-0[34] relative, beyond --rtol 1e-05\n",
        result.stderr,
    ), result.stderr
    _, meta = run_files(tmp_path, "train")
    # the parameters agree: only the loss is off
    assert meta["max_rel_param_diff"] == 0 and meta["exit_code"] == 1


def test_a_late_mismatch_is_judged_against_its_own_step(monkeypatch):
    """5e-5 off in the last epoch only, when the loss is 7x below where it started: not diluted by
    the first steps' large losses (against the largest loss of the run it would be below 1e-5)."""
    _off_twin_loss(monkeypatch, 5e-5, after_step=2 * 8)
    result = train(TrainConfig(**SMALL))  # 3 epochs of 8 steps
    first, last = result.history["train_loss"].iloc[0], result.history["train_loss"].iloc[-1]
    assert 5e-5 * last / first < 1e-5
    assert result.loss_diff.rel_diff > 1e-5 and "epoch 3" in result.loss_diff.where
    assert result.mismatch(1e-5) is result.loss_diff


def _held_tensors(obj):
    """Every tensor `obj` holds through fnd's objects, their lists and dicts, each once."""
    tensors, visited = {}, set()

    def walk(o):
        if isinstance(o, torch.Tensor):
            tensors[id(o)] = o
        elif isinstance(o, (list, tuple, dict)):
            for item in o.values() if isinstance(o, dict) else o:
                walk(item)
        elif type(o).__module__.startswith("fndcli.") and id(o) not in visited:
            visited.add(id(o))
            for value in vars(o).values():
                walk(value)

    walk(obj)
    return list(tensors.values())


def test_evaluation_leaves_no_cache_so_memory_stays_flat():
    """Each epoch evaluates train and valid loss; those forward passes must not pile up caches. Counted by
    walking the trained model (its layers' caches, outputs, gradients, parameters), not by its own
    `cached`."""
    held = []
    for epochs in (1, 4):
        tensors = _held_tensors(train(TrainConfig(**{**SMALL, "epochs": epochs})).model)
        held.append((len(tensors), sum(t.numel() * t.element_size() for t in tensors)))
    assert held[0] == held[1] and held[0][0] > 0, held  # (tensors, bytes)


def test_r2_on_a_hand_computed_case():
    """y = 1, 2, 3, 4 (mean 2.5, SST 5); predictions 1, 2, 3, 5 (SSE 1): R^2 = 0.8. Two outputs: each about
    its mean."""
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert metric(torch.tensor([[1.0], [2.0], [3.0], [5.0]]), y, "regression") == pytest.approx(0.8)
    y2 = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 2.0]])  # second column: mean 0.5, SST 3
    out2 = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0], [5.0, 2.0]])  # SSE 1 + 1
    assert metric(out2, y2, "regression") == pytest.approx(1 - 2 / 8)


def test_baseline_is_the_majority_class_or_the_training_mean():
    assert (
        baseline_metric(torch.tensor([0, 1, 1, 2]), torch.tensor([1, 1, 0, 2, 1]), "classification", 3) == 0.6
    )
    # the training mean 2 on valid y = 1, 3, 5 (mean 3, SST 8): SSE 1 + 1 + 9 = 11, R^2 = 1 - 11/8
    r2 = baseline_metric(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 3.0, 5.0]), "regression", 1)
    assert r2 == pytest.approx(1 - 11 / 8)


def test_classification_prints_the_majority_baseline(fnd, tmp_path):
    """Teacher labels are unbalanced: the bar to beat is the majority class's share, not 1 / classes."""
    result = fnd("train", "--task", "classification", "--epochs", "1", "--samples", "1000", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    _, meta = run_files(tmp_path, "train")
    _, y_tr, _, y_va = make_data(TrainConfig(task="classification", samples=1000))
    majority = Counter(y_tr.tolist()).most_common(1)[0][0]
    share = sum(1 for y in y_va.tolist() if y == majority) / len(y_va)
    assert meta["baseline_metric"] == pytest.approx(share) and share > 0.3  # well above chance, 0.25
    assert f"predicts the majority class: {share:.4f}" in result.stdout
    assert "the hand-written step takes" in result.stdout and "x the twin's time" in result.stdout


def test_train_prints_its_step_time_ratio_and_each_difference_from_the_twin(fnd, tmp_path):
    """The printed lines against the run's own record: mine / twin (not twin / mine), and each difference with
    where it is; a loss that matched the twin at every step (0) is a figure, not left out."""
    result = fnd("train", "--epochs", "1", "--samples", "256", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    _, meta = run_files(tmp_path, "train")
    text = " ".join(result.stdout.split())  # whatever the console's wrapping
    ratio = meta["manual_step_s"] / meta["autograd_step_s"]
    assert f"the hand-written step takes {ratio:.2f}x the twin's time" in text, text
    assert (
        f"largest relative difference from the twin: loss {meta['max_rel_loss_diff']:.2e} at "
        f"{meta['max_rel_loss_diff_at']}, parameters {meta['max_rel_param_diff']:.2e} at "
        f"{meta['max_rel_param_diff_at']}; tolerance"
    ) in text, text
    assert meta["max_rel_loss_diff_at"] != "None" and meta["max_rel_param_diff_at"].startswith("parameter ")


def test_each_epochs_step_time_is_the_mean_of_that_epochs_steps(monkeypatch):
    """On a clock that advances 1 ms at every reading, each step (read before and after) lasts exactly 1 ms,
    the hand-written one and the twin's alike: every epoch's mean step time is 1 ms, the later epochs too
    (the step count of that epoch, 2, divides its 2 ms, not the 4 and 6 steps run since the start)."""
    clock = SimpleNamespace(readings=0)

    def perf_counter():
        clock.readings += 1
        return clock.readings * 1e-3

    monkeypatch.setattr(fnd_train, "time", SimpleNamespace(perf_counter=perf_counter))
    result = train(TrainConfig(samples=40, n_in=4, hidden=(4,), epochs=3, batch_size=16))  # 32 train rows
    h = result.history.iloc[1:]
    assert result.steps == 6 and list(h["epoch"]) == [1, 2, 3]
    assert h["step_s"].tolist() == pytest.approx([1e-3] * 3)
    assert h["ref_step_s"].tolist() == pytest.approx([1e-3] * 3)
    assert result.manual_step_s == pytest.approx(1e-3) and result.autograd_step_s == pytest.approx(1e-3)


def test_a_nan_parameter_is_the_one_named_furthest_from_the_twin():
    """lin1.w moved by 0.01 everywhere: 0.01 / max|w1| from the twin, a finite distance; lin2.w NaN: no
    distance at all, so it is the parameter named, at inf (a NaN must fail the check, never hide behind a
    finite one)."""
    cfg = TrainConfig(samples=40, n_in=4, hidden=(4,), epochs=1)
    model, twin = fnd_train.build_models(cfg, make_data(cfg)[0])
    params = dict(model.named_params())
    params["lin1.w"].value.add_(0.01)
    params["lin2.w"].value.fill_(math.nan)
    found = fnd_train._param_diff(model, twin)
    assert found.where == "parameter lin2.w" and found.rel_diff == math.inf
