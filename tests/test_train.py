"""`fnd train`: lockstep parity with the autograd twin, learning, divergence, and the CLI."""

import pytest

from conftest import assert_rejected, run_files
from fndcli import train as fnd_train
from fndcli.train import COLUMNS, TrainConfig, train

SMALL = dict(samples=256, n_in=12, hidden=(16, 8), epochs=3, batch_size=32)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("extra", [dict(), dict(momentum=0.9, lr=0.02), dict(task="classification", classes=3),
                                   dict(task="classification", labels="clusters", n_out=1, batch_size=1, epochs=1),
                                   dict(n_out=3, init="lsuv")])
def test_lockstep_parity_with_autograd_twin(dtype, tol, extra):
    result = train(TrainConfig(**{**SMALL, **extra, "dtype": dtype}))
    assert result.steps > 0 and result.diverged_epoch is None
    assert result.max_loss_diff <= tol and result.max_param_diff <= tol, (result.max_loss_diff, result.max_param_diff)
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
    assert result.max_param_diff > 1e-4


def test_defaults_learn_and_write_history(fnd, tmp_path):
    result = fnd("train", "--out", tmp_path, "--plot")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert list(history.columns) == COLUMNS and list(history["epoch"]) == list(range(21))
    assert history["valid_loss"].iloc[-1] < history["valid_loss"].iloc[0] / 4  # far below where it started
    assert history["valid_metric"].iloc[-1] > 0.5  # R^2
    assert history["loss_diff"].iloc[1:].max() <= 1e-5 * history["train_loss"].max()
    assert meta["manual_step_s"] > 0 and meta["autograd_step_s"] > 0 and meta["steps"] == 20 * 50
    assert (tmp_path / meta["files"][1]).read_bytes()[:4] == b"\x89PNG"
    assert "autograd twin" in result.stdout


def test_classification_beats_chance(fnd, tmp_path):
    result = fnd("train", "--task", "classification", "--classes", "5", "--labels", "clusters", "--epochs", "5",
                 "--samples", "1000", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    history, _ = run_files(tmp_path, "train")
    assert history["valid_metric"].iloc[-1] > 0.6  # chance is 0.2


def test_divergence_exits_1_names_the_epoch_and_keeps_the_csv(fnd, tmp_path):
    result = fnd("train", "--lr", "1000", "--samples", "400", "--out", tmp_path)
    assert result.exit_code == 1
    assert "diverged in epoch 1" in result.stderr and "smaller --lr" in result.stderr
    history, meta = run_files(tmp_path, "train")
    assert list(history["epoch"]) == [0] and meta["diverged_epoch"] == 1  # no epoch finished


def test_no_check_autograd(fnd, tmp_path):
    result = fnd("train", "--no-check-autograd", "--epochs", "2", "--samples", "400", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert history["ref_train_loss"].isna().all() and meta["autograd_step_s"] is None


def test_config_table(fnd, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text('[train]\nepochs = 2\nsamples = 300\nhidden = [8, 4]\ntask = "classification"\n')
    result = fnd("train", "--config", cfg, "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert len(history) == 2 and meta["config"]["hidden"] == [8, 4] and meta["config"]["task"] == "classification"


@pytest.mark.parametrize("args,fragments", [
    (["--lr", "0"], ["'--lr'", "positive"]),
    (["--lr", "nan"], ["'--lr'"]),
    (["--lr", "inf"], ["'--lr'"]),
    (["--epochs", "0"], ["'--epochs'"]),
    (["--batch-size", "0"], ["'--batch-size'"]),
    (["--batch-size", "5000"], ["'--batch-size'", "larger than the 3200 training examples"]),
    (["--task", "ranking"], ["'--task'", "'ranking'", "classification"]),
    (["--init", "xavier-gaussian"], ["'--init'", "kaiming"]),
    (["--valid-frac", "1"], ["'--valid-frac'"]),
])
def test_bad_input_exits_2(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "train", args, *fragments)
