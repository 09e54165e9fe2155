"""`fnd init-sweep --model`: the user's own nn.Module, every column checked against the same tensors by
hand."""

import importlib.util
import json
import math
import textwrap

import pytest
import torch
from conftest import assert_rejected, run_files

from fndcli import memory

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    def deep_mlp(depth=20, width=100):
        """A deep bias-free MLP with torch's default init."""
        layers = [nn.Flatten()]
        for _ in range(depth):
            layers += [nn.Linear(width, width, bias=False), nn.ReLU()]
        return nn.Sequential(*layers)


    class Mixed(nn.Module):
        """A reused ReLU, a tanh, one layer far too large and one far too small: every column has work."""

        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc4 = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 4)
            self.fc3 = nn.Linear(16, 16, bias=False)
            self.act, self.tanh = nn.ReLU(), nn.Tanh()
            with torch.no_grad():
                self.fc2.weight.mul_(1e5)
                self.fc3.weight.mul_(1e-9)

        def forward(self, x):
            h = self.tanh(self.fc1(x) * 10)
            h = self.act(self.fc2(h))
            return self.fc4(self.act(self.fc3(h)))


    def dead_bias():
        net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))
        with torch.no_grad():
            net[2].bias.fill_(-100.0)
        return net


    def huge_weights():
        net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))
        with torch.no_grad():
            net[2].weight.mul_(1e5)
        return net


    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU(inplace=True)
            self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.short(x)
            return self.relu(out)


    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


    class NoGrad(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            if x.requires_grad:
                raise ValueError("this model refuses gradients")
            return self.fc(x)


    class Huge(nn.Module):
        def forward(self, x):
            return x * 1e38


    class Square(nn.Module):
        def forward(self, x):
            return x * x


    def infinite_gradient():
        """x * 1e38 is finite in float32; its square is not, nor the gradient the square passes back."""
        return nn.Sequential(nn.Linear(8, 8), Huge(), Square(), nn.Linear(8, 4))


    class InfBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")


    class InfGrad(nn.Module):
        def forward(self, x):
            return InfBackward.apply(x)


    def inf_backward():
        """A finite forward pass whose only fault is a backward that returns inf."""
        return nn.Sequential(nn.Linear(8, 8), InfGrad())  # one finite gradient: no line to fit


    class FFT(nn.Module):
        def forward(self, x):
            return torch.fft.fft(x)


    def spectral():
        """A complex output from a leaf: its rows are of the real and imaginary parts."""
        return nn.Sequential(nn.Linear(8, 8), FFT())


    class Complex(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return self.fc(x).to(torch.complex64)


    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            raise RuntimeError("cannot build")


    NOT_A_MODEL = 3
''')


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "models.py"
    path.write_text(MODELS)
    spec = importlib.util.spec_from_file_location("probe_test_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def summary_of(out):
    import pandas as pd

    return pd.read_csv(next(out.glob("init-sweep-*-summary.csv")), keep_default_na=False, dtype=str).iloc[0]


def by_hand(module, name, shape, seed=0):
    """The model as fnd builds it at a seed, run with our own hooks: {(layer, call): (output, grad)},
    params."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(module, name)()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=gen).requires_grad_()
    seen, counts = {}, {}
    leaves = {m: n for n, m in model.named_modules() if not list(m.children())}

    def hook(m, inputs, out):
        counts[leaves[m]] = counts.get(leaves[m], 0) + 1
        key = (leaves[m], counts[leaves[m]])
        seen[key] = [out.detach().clone(), None]
        out.register_hook(lambda g: seen[key].__setitem__(1, g.detach().clone()))

    for m in leaves:
        m.register_forward_hook(hook)
    out = model(x)
    out.backward(torch.randn(out.shape, generator=gen))
    return x, seen, model


def expected(t, saturating=False):
    x = t.double().flatten()
    a = x.abs()
    fp16, bf16 = torch.finfo(torch.float16), torch.finfo(torch.bfloat16)
    return {
        "mean": x.mean(),
        "std": x.std(),
        "m2": (x * x).mean(),
        "frac_zero": (x == 0).double().mean(),
        "frac_near_zero": (a <= 0.05).double().mean(),
        "max_abs": a.max(),
        "non_finite": (~x.isfinite()).sum(),
        "fp16_overflow": (a > 65504).double().mean(),
        "fp16_underflow": ((a > 0) & (a < fp16.tiny)).double().mean(),
        "bf16_overflow": (a > bf16.max).double().mean(),
        "bf16_underflow": ((a > 0) & (a < bf16.tiny)).double().mean(),
        "frac_saturated": (a > 0.97).double().mean() if saturating else math.nan,
    }


def test_every_column_against_our_own_hooks_on_the_same_tensors(fnd, tmp_path, models):
    path, module = models
    result = fnd(
        "init-sweep", "--model", f"{path}:Mixed", "--input-shape", "32x8", "--backward", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output
    layers, meta = run_files(tmp_path, "init-sweep")
    x, seen, model = by_hand(module, "Mixed", (32, 8))
    order = [
        ("input", 1),
        ("fc1", 1),
        ("tanh", 1),
        ("fc2", 1),
        ("act", 1),
        ("fc3", 1),
        ("act", 2),
        ("fc4", 1),
    ]
    assert list(zip(layers["layer"], layers["call"])) == order and list(layers["order"]) == list(range(8))
    assert list(layers["type"]) == ["input", "Linear", "Tanh", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    for row in layers.itertuples():
        out, grad = (x.detach(), x.grad) if row.layer == "input" else seen[(row.layer, row.call)]
        assert row.shape == "x".join(map(str, out.shape))
        for column, value in expected(out, row.type == "Tanh").items():
            assert getattr(row, column) == pytest.approx(float(value), rel=1e-9, abs=1e-12, nan_ok=True), (
                row.layer,
                column,
            )
        g = grad.double()
        assert row.grad_std == pytest.approx(g.std().item(), rel=1e-9)
        assert row.grad_m2 == pytest.approx((g * g).mean().item(), rel=1e-9)
        if row.type == "Linear":
            w = getattr(model, row.layer).weight
            ratio = w.grad.double().std().item() / w.detach().double().std().item()
            assert row.weight_grad_std == pytest.approx(w.grad.double().std().item(), rel=1e-9)
            assert row.grad_data_ratio == pytest.approx(ratio, rel=1e-9)
    params = next(tmp_path.glob("init-sweep-*-params.csv"))
    import pandas as pd

    params = pd.read_csv(params)
    assert list(params["parameter"]) == [n for n, _ in model.named_parameters()]
    bias = params.set_index("parameter").loc["fc4.bias"]
    assert bias["grad_std"] == pytest.approx(model.fc4.bias.grad.double().std().item(), rel=1e-9)
    findings = dict(
        zip(layers["layer"] + layers["call"].astype(str), layers["finding"].astype(object).fillna(""))
    )
    assert "saturated" in findings["tanh1"] and "fp16 overflow" in findings["fc21"]
    assert "fp16 underflow" in findings["fc31"] and "dead" not in findings["act1"]
    assert meta["config"]["model"] == f"{path}:Mixed" and meta["config"]["depth"] is None


def test_a_deep_default_mlp_vanishes_with_fp16_underflow_and_kaiming_keeps_it(fnd, tmp_path, models):
    path, _ = models
    ref = f"{path}:deep_mlp"
    assert (
        fnd("init-sweep", "--model", ref, "--input-shape", "64x100", "--out", tmp_path / "keep").exit_code
        == 0
    )
    keep = summary_of(tmp_path / "keep")
    assert keep["verdict"] == "vanishing" and keep["first_fp16_underflow"] and keep["first_vanishing"]
    result = fnd(
        "init-sweep",
        "--model",
        ref,
        "--input-shape",
        "64x100",
        "--scheme",
        "kaiming",
        "--seeds",
        "2",
        "--out",
        tmp_path / "kaiming",
    )
    assert result.exit_code == 0, result.output
    kaiming = summary_of(tmp_path / "kaiming")
    assert (
        kaiming["verdict"] == "stable"
        and not kaiming["first_vanishing"]
        and not kaiming["first_fp16_underflow"]
    )
    layers, _ = run_files(tmp_path / "kaiming", "init-sweep")
    assert set(layers.loc[layers["type"] == "Linear", "gain_from"]) == {"relu"}
    linear = layers.loc[layers["type"] == "Linear"]
    assert linear["std"].iloc[0] == pytest.approx(math.sqrt(2), rel=0.1)  # He: Var = 2/n x n x E[x^2] = 2
    assert linear["std"].between(0.5, 3).all()
    compared = fnd("compare", tmp_path / "kaiming", tmp_path / "keep", "--out", tmp_path / "cmp")
    assert compared.exit_code == 1 and "BROKEN" in compared.stdout
    frame, _ = run_files(tmp_path / "cmp", "compare")
    assert {"verdict", "fp16 underflow from", "vanishing from"} <= set(
        frame.loc[frame["verdict"] == "BROKEN", "what"]
    )
    verdict_row = frame.set_index("what").loc["verdict"]
    before, after = float(kaiming["decades"]), float(summary_of(tmp_path / "keep")["decades"])
    assert verdict_row["note"] == f"decades {before:+.2f} -> {after:+.2f}"
    # a run with no trend to fit (its decades empty, as fnd writes them then): said so, not "+nan"
    summary = next((tmp_path / "keep").glob("init-sweep-*-summary.csv"))
    import pandas as pd

    edited = pd.read_csv(summary)
    edited["decades"] = math.nan
    edited.to_csv(summary, index=False)
    compared = fnd("compare", tmp_path / "kaiming", tmp_path / "keep", "--out", tmp_path / "cmp2")
    frame, _ = run_files(tmp_path / "cmp2", "compare")
    assert frame.set_index("what").loc["verdict", "note"] == f"decades {before:+.2f} -> (no trend)"


def test_the_layer_where_dead_and_fp16_overflow_start_is_named(fnd, tmp_path, models):
    path, _ = models
    for name in ("dead_bias", "huge_weights"):
        result = fnd(
            "init-sweep", "--model", f"{path}:{name}", "--input-shape", "64x16", "--out", tmp_path / name
        )
        assert result.exit_code == 0, result.output
    dead, huge = summary_of(tmp_path / "dead_bias"), summary_of(tmp_path / "huge_weights")
    assert dead["first_dead"] == "3" and "dead from 3 (ReLU, after 2 (Linear))" in dead["reason"]
    assert huge["first_fp16_overflow"] == "2" and not huge["first_dead"]


def test_a_small_resnet_with_batchnorm_is_stable_forward_and_backward_and_shows_the_same(
    fnd, tmp_path, models
):
    path, _ = models
    result = fnd(
        "init-sweep",
        "--model",
        f"{path}:ResNet",
        "--input-shape",
        "8x3x16x16",
        "--backward",
        "--plot",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    # its gradient's growth sits inside what BatchNorm at init explains (fndcli.init.bntheory)
    assert (
        summary["verdict"] == "stable"
        and summary["grad_verdict"] == "as BatchNorm predicts"
        and not summary["first_dead"]
    )
    layers, meta = run_files(tmp_path, "init-sweep")
    # a reused module: a row per call
    assert ("blocks.0.relu", 2) in set(zip(layers["layer"], layers["call"]))
    assert "blocks.0.short" in set(layers["layer"])  # parameter-free leaves too
    assert {f[len(meta["files"][0]) - 4 :] for f in meta["files"]} >= {
        "-std.png",
        "-heatmap.png",
        "-params.csv",
    }
    shown = fnd("show", tmp_path / meta["files"][0])
    printed = "".join(line for line in result.stdout.splitlines(True) if not line.startswith("Note: "))
    assert shown.exit_code == 0 and shown.stdout.endswith(printed.split(str(tmp_path))[0])  # not the git note


def test_the_users_error_mid_run_is_exit_1_with_their_traceback(fnd, tmp_path, models):
    path, _ = models
    result = fnd(
        "init-sweep", "--model", f"{path}:NoGrad", "--input-shape", "4x4", "--backward", "--out", tmp_path
    )
    assert result.exit_code == 1
    assert (
        "this model refuses gradients" in result.stderr and "Traceback (the user's frames)" in result.stdout
    )
    assert 'raise ValueError("this model refuses gradients")' in result.stdout
    assert json.loads(next(tmp_path.glob("init-sweep-*.json")).read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--model", "nowhere.py:Net", "--input-shape", "2x3"], ["'--model'", "does not exist"]),
        (["--model", "{path}:NOT_A_MODEL", "--input-shape", "2x3"], ["is an int"]),
        (["--model", "{path}:Broken", "--input-shape", "2x3"], ["'--model'", "RuntimeError: cannot build"]),
        (
            ["--model", "{path}:dead_bias", "--input-shape", "8x5"],
            ["'--input-shape'", "the model rejects input 8x5", "mat1 and mat2 shapes cannot be multiplied"],
        ),
        (["--model", "{path}:dead_bias", "--input-shape", "8x"], ["'--input-shape'", "is not BxCxHxW"]),
        (["--model", "{path}:dead_bias"], ["--model needs the input's shape"]),
        (
            ["--model", "{path}:dead_bias", "--input-shape", "8x16", "--depth", "3"],
            ["'--depth'", "fnd's own stacks"],
        ),
        (
            ["--model", "{path}:dead_bias", "--input-shape", "8x16", "--scheme", "all"],
            ["'--scheme'", "give one"],
        ),
        (
            ["--model", "{path}:dead_bias", "--input-shape", "8x16", "--scheme", "lsuv"],
            ["'--scheme'", "lsuv"],
        ),
        (["--input-shape", "8x16"], ["'--input-shape'", "is for --model"]),
        (["--scheme", "keep"], ["'--scheme'", "keep (the model's own init) is for --model"]),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(fnd, tmp_path, models, args, fragments):
    path, _ = models
    assert_rejected(fnd, tmp_path, "init-sweep", [a.format(path=path) for a in args], *fragments)


def test_a_model_too_large_for_memory_is_refused_before_it_runs(fnd, tmp_path, models, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 10**5)
    assert_rejected(
        fnd,
        tmp_path,
        "init-sweep",
        ["--model", f"{models[0]}:dead_bias", "--input-shape", "512x16"],
        "not enough memory",
        "--input-shape",
    )


@pytest.mark.parametrize(
    "name, first, by",
    [("infinite_gradient", "0 (Linear", "1 (Huge)"), ("inf_backward", "0 (Linear", "1 (InfGrad)")],
)
def test_a_non_finite_gradient_is_named_where_it_starts_and_no_trend_is_claimed(
    fnd, tmp_path, models, name, first, by
):
    """The gradient goes from the output back: the first non-finite one is the deepest, passed back by the
    next call."""
    result = fnd(
        "init-sweep",
        "--model",
        f"{models[0]}:{name}",
        "--input-shape",
        "16x8",
        "--backward",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    assert "+nan" not in result.stdout and "nan decades" not in result.stdout
    assert summary["grad_verdict"] == "exploding" and summary["grad_decades"] == ""
    assert (
        f"gradient: non-finite from {first}" in summary["reason"]
        and f"passed back by {by}" in summary["reason"]
    )
    assert "nan" not in result.stdout.replace("\n", " ").split("verdict:")[1]
    assert "the trend in decades cannot be measured" in result.stdout


def test_the_memory_plan_counts_a_complex_output_as_two_numbers_an_element(models):
    """spectral: Linear(8, 8) gives 8 numbers a row, the FFT 8 complex ones, 16 real numbers: what is kept is
    24."""
    from fndcli.init.probe import plan
    from fndcli.settings import ProbeConfig

    path, _ = models
    found = plan(ProbeConfig(model=f"{path}:spectral", input_shape=(16, 8)))
    assert (found.largest_per_row, found.total_per_row) == (16, 24)


@pytest.mark.parametrize("name", ["spectral", "Complex"])
def test_a_complex_output_counts_as_its_real_and_imaginary_parts(fnd, tmp_path, models, name):
    path, module = models
    result = fnd(
        "init-sweep", "--model", f"{path}:{name}", "--input-shape", "16x8", "--backward", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert "does not depend" not in result.output and "nan" not in result.stdout.split("verdict:")[1]
    summary = summary_of(tmp_path)
    assert summary["verdict"] != "" and summary["grad_decades"] != ""
    layers, _ = run_files(tmp_path, "init-sweep")
    if name == "spectral":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = module.spectral()
        out = model(torch.randn(16, 8, generator=torch.Generator().manual_seed(0))).detach()
        parts = torch.view_as_real(out).double()
        row = layers.set_index("layer").loc["1"]
        assert row["m2"] == pytest.approx((parts * parts).mean().item(), rel=1e-9)
        assert row["mean"] == pytest.approx(parts.mean().item(), abs=1e-9) and math.isfinite(row["grad_m2"])
