"""`fnd train --stats`: the layers' statistics against torch hooks on an autograd twin trained by torch's own
SGD, update:data against parameter snapshots, the findings on the cases they are for, show and compare."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_rejected, run_files

from fndcli.backprop.model import init_mlp
from fndcli.backprop.reference import twin_of
from fndcli.backprop.train import make_data
from fndcli.settings import TrainConfig

TINY = ["--samples", "120", "--valid-frac", "0.2", "--n-in", "6", "--hidden", "8", "--hidden", "8"]
TINY += ["--batch-size", "32", "--epochs", "1", "--dtype", "float64", "--lr", "0.1"]


def _stats(tmp_path):
    return pd.read_csv(next(tmp_path.glob("train-*-stats.csv")))


def _replayed(cfg, act):
    """Each step's figures, computed apart from fnd: the twin (nn.Linear, nn.ReLU) trained by plain SGD on the
    batches train draws, read by forward and full backward hooks, and parameter copies around each step."""
    x, y, _, _ = make_data(cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    mlp = init_mlp(cfg.sizes, cfg.init, cfg.loss, gen, torch.float64, act=act)
    params = [p.value for _, p in mlp.named_params()]
    net = twin_of(params[0::2], params[1::2], act)
    names = ["lin1", f"{act}1", "lin2", f"{act}2", "out"]
    seen = {}
    x.requires_grad_()  # so that the full backward hooks see each module's input and output gradients
    for name, module in zip(names, net):
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__((name, "out"), o.detach()))
        module.register_full_backward_hook(
            lambda m, gi, go, name=name: seen.__setitem__((name, "grad"), go[0].detach())
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed + 2))
    rows = []
    for step, start in enumerate(range(0, len(order), cfg.batch_size)):
        idx = order[start : start + cfg.batch_size]
        net.zero_grad()
        torch.nn.functional.mse_loss(net(x[idx]), y[idx].view(-1, 1)).backward()
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        before = [(p.detach().clone(), p.grad.clone()) for m in linears for p in (m.weight, m.bias)]
        x.grad = None
        with torch.no_grad():  # plain SGD, the step fnd's must have taken
            for m in linears:
                for p in (m.weight, m.bias):
                    p -= cfg.lr * p.grad
        for name in names:
            out, grad = seen[(name, "out")], seen[(name, "grad")]
            rows += [
                (step, name, "mean", out.mean().item()),
                (step, name, "std", out.std().item()),
                (step, name, "dead", (out == 0).double().mean().item()),
                (step, name, "near_zero", (out.abs() <= 0.05).double().mean().item()),
                (step, name, "grad_std", grad.std().item()),
            ]
            if name.startswith("tanh"):  # makemore part 3's saturation
                rows.append((step, name, "saturated", (out.abs() > 0.97).double().mean().item()))
        after = [p.detach() for m in linears for p in (m.weight, m.bias)]
        for i, ((old, g), new) in enumerate(zip(before, after)):
            name = f"lin{i // 2 + 1}.{'wb'[i % 2]}"
            if old.numel() > 1:
                rows += [
                    (step, name, "grad_data", (g.std() / old.std()).item()),
                    (step, name, "update_data", ((new - old).std() / old.std()).item()),
                ]
            else:
                rows += [(step, name, "grad_data", math.nan), (step, name, "update_data", math.nan)]
    return pd.DataFrame(rows, columns=["step", "layer", "stat", "expected"])


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_layer_and_parameter_statistics_match_hooks_on_the_twin_and_snapshots(fnd, tmp_path, act):
    result = fnd(
        "train",
        *TINY,
        "--act",
        act,
        "--init",
        "kaiming" if act == "relu" else "xavier",
        "--stats",
        "1",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    got = _stats(tmp_path)
    cfg = TrainConfig(
        samples=120,
        n_in=6,
        hidden=(8, 8),
        batch_size=32,
        epochs=1,
        dtype="float64",
        lr=0.1,
        init="kaiming" if act == "relu" else "xavier",
    )
    expected = _replayed(cfg, act)
    both = expected.merge(got, on=["step", "layer", "stat"], how="left")
    saturation = 2 * 3 if act == "tanh" else 0
    assert len(expected) == 3 * (5 * 5 + 6 * 2) + saturation
    assert (both["value"].isna() == both["expected"].isna()).all()  # the one-element bias has no std
    both = both.dropna()
    assert len(both) == 3 * (5 * 5 + 5 * 2) + saturation
    bad = both[~np.isclose(both["value"], both["expected"], rtol=1e-9, atol=1e-12)]  # inf == inf (a 0 bias)
    assert not len(bad), bad.to_string()
    if act == "relu":  # about half dead at Kaiming init: the check compares something that is not zero
        assert 0.2 < both.query("layer == 'relu1' and stat == 'dead'")["value"].iloc[0] < 0.8
    else:
        assert "saturated" not in set(got.query("layer == 'lin1'")["stat"])
    loss = got[got["stat"] == "loss"]
    assert list(loss["step"]) == [0, 1, 2] and (loss["value"] > 0).all()
    hist = got[(got["layer"] == f"{act}1") & got["stat"].str.startswith("hist") & (got["step"] == 0)]
    assert len(hist) == 40 and hist["value"].sum() == 32 * 8  # every value of the batch in one bin


@pytest.mark.parametrize("model", [None, "examples/chapter_model.py:Model"])
def test_every_n_steps_for_fnds_model_and_a_chapter_protocol_model_alike(fnd, tmp_path, model):
    """A user's model exposes no intermediates: its layers come from fnd's reference arithmetic, which must
    give what fnd's own MLP (checked against hooks above) gives on the same weights and batches."""
    args = ["--samples", "200", "--n-in", "6", "--hidden", "8", "--epochs", "2", "--batch-size", "32"]
    args += ["--dtype", "float64", "--stats", "2", "--out", tmp_path / "run"]
    assert fnd("train", *args, *(["--model", model] if model else [])).exit_code == 0
    got = _stats(tmp_path / "run").query("stat != 'loss'")
    assert sorted(got["step"].unique()) == [0, 2, 4, 6, 8]  # 5 steps an epoch, every 2nd
    if model:
        assert fnd("train", *args[:-1], tmp_path / "fnd").exit_code == 0
        ours = _stats(tmp_path / "fnd").query("stat != 'loss'")
        both = ours.merge(got, on=["step", "layer", "stat"], suffixes=("_fnd", "_user"))
        assert len(both) == len(ours) == len(got)
        assert np.isclose(both["value_fnd"], both["value_user"], rtol=1e-9, atol=1e-12, equal_nan=True).all()


DEEP = ["--n-in", "10", "--samples", "480", "--batch-size", "32", "--epochs", "1", "--seeds", "3"]
DEEP += [a for _ in range(4) for a in ("--hidden", "64")] + ["--stats", "1", "--no-check-autograd"]


def test_a_rate_ten_times_too_high_names_each_layer_and_the_divergence_step_a_sane_rate_nothing(
    fnd, tmp_path
):
    sane = fnd("train", *DEEP, "--lr", "0.008", "--out", tmp_path / "sane")
    assert sane.exit_code == 0, sane.output
    _, meta = run_files(tmp_path / "sane", "train")
    findings = pd.read_csv(tmp_path / "sane" / meta["files"][2])
    assert not (findings["verdict"] == "holds").any(), findings
    high = fnd("train", *DEEP, "--lr", "0.08", "--out", tmp_path / "high")
    _, meta = run_files(tmp_path / "high", "train")
    findings = pd.read_csv(tmp_path / "high" / meta["files"][2]).query("verdict == 'holds'")
    rate = findings[findings["finding"] == "rate too high"]
    assert sorted(rate["layer"]) == [f"lin{i}.w" for i in range(1, 6)]
    diverged = findings[findings["finding"] == "diverged"]
    assert len(diverged) == 1 and diverged["step"].iloc[0] >= 1
    assert f"diverged at the loss, step {diverged['step'].iloc[0]}" in high.stdout
    assert "rate too high at lin1.w" in high.stdout


def test_a_dead_layer_is_named_at_step_0_and_after_on_every_seed(fnd, tmp_path):
    result = fnd(
        "train",
        *("--model", "examples/dead_model.py:DeadModel", "--samples", "200", "--n-in", "8"),
        *("--hidden", "16", "--epochs", "2", "--stats", "3", "--seeds", "2", "--out", tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "dead at relu1, step 0: 100% zeros from step 0 and after (2 of 2 seeds)" in result.stdout
    shown = fnd("show", tmp_path)
    assert "dead at relu1, step 0" in shown.stdout and "log10 update:data" in shown.stdout
    again = fnd("train", *TINY, "--stats", "2", "--out", tmp_path / "alive")  # no dead layer
    assert again.exit_code == 0
    compared = fnd("compare", tmp_path, tmp_path / "alive", "--format", "csv", "--out", tmp_path / "c")
    assert "dead at relu1" in compared.stdout and "improved" in compared.stdout


def test_seeds_without_stats_is_refused(fnd, tmp_path):
    assert_rejected(fnd, tmp_path, "train", ["--seeds", "3"], "--seeds", "is for --stats")


def test_saturation_is_measured_for_tanh_only():
    from fndcli.backprop.dynamics import output_stats

    t = torch.tensor([[0.99, -0.98, 0.5, 0.0]], dtype=torch.float64)
    assert output_stats(t, "tanh")["saturated"] == 0.5
    assert "saturated" not in output_stats(t, "relu") and math.isclose(output_stats(t, "relu")["dead"], 0.25)


def test_a_tanh_layer_fed_n01_weights_is_named_saturated(fnd, tmp_path):
    """The chapter's first try, N(0, 1) weights, before a tanh: pre-activations of std about sqrt(n_in). The
    run's own table is its seed's, as the same run without --stats gives it; the second seed only observed."""
    args = ["--act", "tanh", "--init", "normal", "--n-in", "50", "--hidden", "16", "--samples", "200"]
    args += ["--epochs", "1"]
    result = fnd("train", *args, "--stats", "2", "--seeds", "2", "--out", tmp_path / "stats")
    assert "saturated at tanh1, step 0" in result.stdout and "(2 of 2 seeds)" in result.stdout
    assert fnd("train", *args, "--out", tmp_path / "plain").exit_code == 0
    observed, plain = (run_files(tmp_path / side, "train")[0] for side in ("stats", "plain"))
    assert list(observed["train_loss"]) == list(plain["train_loss"])


def test_one_layers_figures_worked_by_hand():
    """x = [[0, 1, -2], [0, 0, 3]]: mean 1/3, std sqrt(8/3) (n - 1), mean square 14/6, 3 of 6 exact zeros,
    1 unit of 3 zero for both examples; |x| in bins of 0.25: 0 (x3), 1 -> 4, 2 -> 8, 3 -> 12. Past 10, inf
    and nan land in the last bin."""
    from fndcli.backprop.dynamics import output_stats

    got = output_stats(torch.tensor([[0.0, 1.0, -2.0], [0.0, 0.0, 3.0]]), "relu")
    expected = {"mean": 1 / 3, "std": math.sqrt(8 / 3), "m2": 14 / 6, "dead": 0.5, "near_zero": 0.5}
    assert {k: got[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    assert got["dead_units"] == pytest.approx(1 / 3)
    assert {k: v for k, v in got.items() if k.startswith("hist") and v} == {
        "hist00": 3,
        "hist04": 1,
        "hist08": 1,
        "hist12": 1,
    }
    edges = output_stats(torch.tensor([[0.1, 0.3, 9.9, 12.0, math.inf, math.nan]]), "tanh")
    assert {k: v for k, v in edges.items() if k.startswith("hist") and v} == {
        "hist00": 1,
        "hist01": 1,
        "hist39": 4,
    }


def test_the_smoothed_loss_is_a_weighted_mean_of_the_losses_so_far():
    """Bias-corrected, the moving average of [2, 4] is (0.98 x 2 + 4) / (0.98 + 1), and of a constant the
    constant itself from the first step."""
    from fndcli.backprop.findings import smoothed

    assert smoothed([2.0, 4.0]) == pytest.approx([2.0, (0.98 * 2 + 4) / 1.98], rel=1e-12)
    assert smoothed([3.0] * 5) == pytest.approx([3.0] * 5, rel=1e-12)


def _seed_stats(series):
    """One seed's stats from {(layer, stat): [value at step 0, 1, ...]}."""
    rows = [
        (0, step, 0, layer, stat, v)
        for (layer, stat), values in series.items()
        for step, v in enumerate(values)
    ]
    return pd.DataFrame(rows, columns=["seed", "step", "epoch", "layer", "stat", "value"])


def test_each_finding_on_stats_worked_by_hand():
    """log10 update:data [-5, -1, -1] (median -1, above -1.5, first there at step 1), [-5, -5, -5] (below
    -4.5), a bias's ignored; dead from its first step at 0.9 (its most, exactly), not at every later one;
    dead units 0 -> 25 %, and falling (not named); mean square x20 (1.3 decades up) and x0.05 (1.3 down),
    the output's ignored."""
    from fndcli.backprop.findings import seed_findings

    found = seed_findings(
        _seed_stats(
            {
                ("lin1.w", "update_data"): [1e-5, 0.1, 0.1],
                ("lin1.b", "update_data"): [10.0, 10.0, 10.0],
                ("lin2.w", "update_data"): [1e-5, 1e-5, 1e-5],
                ("relu1", "dead"): [0.5, 0.9, 0.8, 0.9],
                ("relu1", "dead_units"): [0.0, 0.05, 0.25],
                ("relu2", "dead_units"): [0.5, 0.3, 0.1],
                ("lin1", "m2"): [1.0, 2.0, 20.0],
                ("lin2", "m2"): [1.0, 0.05],
                ("out", "m2"): [1.0, 1e4],
            }
        )
    )
    assert sorted(found) == sorted(
        [
            ("rate too high", "lin1.w", 1, "log10 update:data -1.00 (median)"),
            ("barely moves", "lin2.w", 0, "log10 update:data -5.00 (median)"),
            ("dead", "relu1", 1, "90% zeros from step 1 not at every later step"),
            ("dead units grow", "relu1", 2, "dead units 0% -> 25%"),
            ("explodes", "lin1", 2, "mean square x20 from step 0"),
            ("collapses", "lin2", 1, "mean square x0.05 from step 0"),
        ]
    )


@pytest.mark.parametrize(
    "losses, expected",
    [
        # step 10's 100 takes the smoothed loss to (8.97 + 100) / 9.97 = 10.9, past 4 x 1; 200 steps of 1
        # later it is back to 1.04: spiked
        ([1.0] * 10 + [100.0] + [1.0] * 200, (10, False)),
        ([1.0] * 10 + [100.0] * 5, (10, True)),  # still 99 / 1 above at the end: diverged
        ([1.0] * 10 + [5.0] + [1.0] * 5, (None, False)),  # the batch passed 4x, the smoothed (1.40) did not
        ([1.0, 1.0, math.nan], (2, True)),
    ],
)
def test_a_diverged_loss_is_told_from_a_spike(losses, expected):
    from fndcli.backprop.findings import diverged_at

    assert diverged_at(np.arange(len(losses)), np.array(losses)) == expected


def test_a_finding_holds_when_every_seed_shows_it_and_is_told_at_the_first_seeds_step():
    from fndcli.backprop.findings import findings

    first = _seed_stats({("relu1", "dead"): [0.5, 1.0, 1.0], ("lin1", "m2"): [1.0, 1.0, 1.0]})
    second = _seed_stats({("relu1", "dead"): [0.5, 0.5, 1.0], ("lin1", "m2"): [1.0, 1.0, 20.0]})
    got = findings(pd.concat([first, second.assign(seed=1)]), 2).set_index("finding")
    assert list(got.index) == ["dead", "explodes"]  # findings.ORDER
    dead, explodes = got.loc["dead"], got.loc["explodes"]
    assert (dead["step"], dead["seeds_with"], dead["verdict"]) == (1, 2, "holds")
    assert dead["detail"] == "100% zeros from step 1 and after; steps 1-2 across seeds"
    assert (explodes["step"], explodes["seeds_with"], explodes["verdict"]) == (2, 1, "cannot tell")
