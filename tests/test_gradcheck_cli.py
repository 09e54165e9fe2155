"""`fnd gradcheck` through the real Typer app: all-pass settings, broken backward passes, bad input."""

import pytest
from conftest import assert_rejected, run_files

from fndcli.backprop import model as fnd_model
from fndcli.backprop.gradcheck import COLUMNS


@pytest.mark.parametrize(
    "args",
    [
        [],  # the chapter's 200x100 -> 50 -> 1, MSE, float32
        [
            "--hidden",
            "64",
            "--hidden",
            "32",
            "--hidden",
            "16",
            "--n-in",
            "120",
            "--n-out",
            "4",
        ],  # deeper, multi-output
        ["--loss", "cross-entropy", "--n-out", "10", "--hidden", "128"],
        ["--batch", "1", "--n-out", "3"],
        ["--dtype", "float64", "--loss", "cross-entropy", "--n-out", "5", "--batch", "1"],
        ["--init", "lsuv", "--batch", "32"],
    ],
)
def test_all_pass(fnd, tmp_path, args):
    result = fnd("gradcheck", *args, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    frame, meta = run_files(tmp_path, "gradcheck")
    assert list(frame.columns) == COLUMNS and frame["passed"].all()
    checks = frame.groupby("check").size()
    n_hidden = max(1, args.count("--hidden"))
    # loss, x, activations, out, params
    assert checks["autograd"] == 1 + 1 + 2 * n_hidden + 1 + 2 * (n_hidden + 1)
    assert checks["finite-difference"] == 6  # linear, relu, mse, cross-entropy, the model, MyRelu
    assert "all checks pass" in result.stdout
    assert meta["rtol"] == (1e-12 if "float64" in args else 1e-5)
    # every row states the tolerances behind its `passed`; allclose and exact are empty where they do not
    # apply
    auto, fd = frame[frame["check"] == "autograd"], frame[frame["check"] == "finite-difference"]
    assert (
        (auto["rtol"] == meta["rtol"]).all() and (auto["atol"] == 0).all() and auto["allclose"].notna().all()
    )
    assert (fd["rtol"] == 1e-3).all() and (fd["atol"] == 1e-5).all()  # torch.autograd.gradcheck's
    assert (
        fd["allclose"].isna().all()
        and fd["exact"].isna().all()
        and fd["rule"].str.contains("gradcheck").all()
    )


def _broken_mse(self, grad_out=1.0):
    return grad_out * self._diff / self._diff.numel()  # the factor 2 dropped


def _transposed_weight_grad(self, grad_out, input_grad=True):
    x = self._inputs.pop()
    self.w.grad += (x.t() @ grad_out).t()
    self.b.grad += grad_out.sum(0)
    return grad_out @ self.w.value.t() if input_grad else None


def _flipped_relu_mask(self, grad_out):
    return grad_out * ~self._masks.pop()


def test_a_backward_that_raises_is_one_failing_row_that_says_why(fnd, tmp_path, monkeypatch):
    # 8x4 layer: the sum cannot fit
    monkeypatch.setattr(fnd_model.Linear, "backward", _transposed_weight_grad)
    result = fnd(
        "gradcheck", "--n-in", "8", "--hidden", "4", "--n-out", "2", "--batch", "16", "--out", tmp_path
    )
    assert result.exit_code == 1, result.output
    frame, _ = run_files(tmp_path, "gradcheck")
    row = frame[frame["check"] == "autograd"].squeeze()  # the only one: nothing else can be compared
    assert (
        row["tensor"].startswith("backward (raised RuntimeError: ") and row["rule"] == "the backward raised"
    )
    assert (row["shape"], row["dtype"], row["max_abs_diff"], row["passed"]) == (
        "16x8",
        "float32",
        float("inf"),
        False,
    )
    assert row[["exact", "allclose", "rtol", "atol"]].isna().all()


def test_the_csv_columns_and_their_order():
    assert COLUMNS == [
        "check",
        "tensor",
        "shape",
        "dtype",
        "exact",
        "allclose",
        "max_abs_diff",
        "rel_err",
        "rtol",
        "atol",
        "rule",
        "passed",
    ]


@pytest.mark.parametrize(
    "cls,method,broken,failing",
    [
        (fnd_model.MSE, "backward", _broken_mse, "d loss / d out"),
        (fnd_model.Linear, "backward", _transposed_weight_grad, "d loss / d lin1.w"),
        (fnd_model.ReLU, "backward", _flipped_relu_mask, "d loss / d lin1"),
    ],
)
def test_a_broken_backward_fails_and_exits_1(fnd, tmp_path, monkeypatch, cls, method, broken, failing):
    monkeypatch.setattr(cls, method, broken)
    # square layers, so a transposed weight gradient still fits its buffer
    result = fnd(
        "gradcheck", "--n-in", "8", "--hidden", "8", "--n-out", "8", "--batch", "16", "--out", tmp_path
    )
    assert result.exit_code == 1, result.output
    frame, meta = run_files(tmp_path, "gradcheck")
    failed = frame[~frame["passed"]]
    assert failing in set(failed["tensor"]) and meta["exit_code"] == 1
    assert (failed["check"] == "finite-difference").any()  # gradcheck catches it too
    assert "check(s) failed" in result.stdout


def test_tolerance_flags_override(fnd, tmp_path):
    result = fnd("gradcheck", "--rtol", "0", "--out", tmp_path)
    assert result.exit_code == 1  # float32 is not bitwise equal to autograd everywhere
    result = fnd("gradcheck", "--rtol", "1e-3", "--atol", "1e-6", "--batch", "8", "--out", tmp_path / "b")
    assert result.exit_code == 0 and "1e-06 + 0.001 * max|ref|" in result.stdout


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--batch", "0"], ["'--batch'"]),
        (["--n-in", "-1"], ["'--n-in'"]),
        (["--hidden", "0"], ["'--hidden'"]),
        (["--n-out", "0"], ["'--n-out'"]),
        (["--loss", "hinge"], ["'--loss'", "'hinge'", "cross-entropy"]),
        (["--dtype", "float16"], ["'--dtype'", "float64"]),
        (["--loss", "cross-entropy"], ["'--n-out'", "2 or more"]),
        (["--rtol", "-1"], ["'--rtol'"]),
        (["--init", "he"], ["'--init'", "kaiming"]),
    ],
)
def test_bad_input_exits_2(fnd, tmp_path, args, fragments):
    assert_rejected(fnd, tmp_path, "gradcheck", args, *fragments)


def _off_by_1e3(monkeypatch):
    """Every weight gradient 0.1 % too large: a bug a 1000x looser rtol would let through."""
    real = fnd_model.Linear.backward

    def backward(self, grad_out, input_grad=True):
        before = self.w.grad.clone()
        out = real(self, grad_out, input_grad)
        self.w.grad.copy_(before + (self.w.grad - before) * (1 + 1e-3))
        return out

    monkeypatch.setattr(fnd_model.Linear, "backward", backward)


def test_a_relative_bug_of_1e3_fails_at_the_default_rtol_and_passes_at_1e2(fnd, tmp_path, monkeypatch):
    _off_by_1e3(monkeypatch)
    result = fnd("gradcheck", "--out", tmp_path / "default")
    assert result.exit_code == 1, result.output
    frame, _ = run_files(tmp_path / "default", "gradcheck")
    failed = set(frame.loc[~frame["passed"], "tensor"])
    assert failed == {"d loss / d lin1.w", "d loss / d lin2.w"}
    assert frame.set_index("tensor").loc["d loss / d lin1.w", "rel_err"] == pytest.approx(1e-3, rel=0.01)
    result = fnd("gradcheck", "--rtol", "1e-2", "--out", tmp_path / "loose")
    assert result.exit_code == 0, result.output


def test_finite_differences_of_the_correct_model_agree_to_1e_8(fnd, tmp_path):
    """Central differences in float64 at a small step are good to ~1e-10 on smooth functions (cross-entropy
    included), so every finite-difference row of the correct model agrees far inside gradcheck's 1e-3."""
    result = fnd(
        "gradcheck",
        "--loss",
        "cross-entropy",
        "--n-out",
        "3",
        "--n-in",
        "2",
        "--hidden",
        "2",
        "--batch",
        "4",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path, "gradcheck")
    fd = frame[frame["check"] == "finite-difference"]
    assert len(fd) == 6 and (fd["rel_err"] < 1e-8).all(), fd[["tensor", "rel_err"]]


def test_an_interrupted_gradcheck_says_so_and_claims_no_failure(fnd, tmp_path, monkeypatch):
    """Ctrl-C after the autograd rows: exit 130, the rows kept, 'interrupted', not '0 check(s) failed'."""
    from conftest import fail_on_call, run_files

    from fndcli.backprop import gradcheck

    fail_on_call(monkeypatch, gradcheck, "finite_difference_rows", 1, KeyboardInterrupt)
    result = fnd("gradcheck", "--batch", "4", "--out", tmp_path)
    assert result.exit_code == 130, result.output
    frame, meta = run_files(tmp_path, "gradcheck")
    assert meta["status"] == "interrupted" and len(frame) and frame["passed"].all()
    assert f"interrupted: kept the {len(frame)} check(s) that finished" in result.stdout
    assert "failed" not in result.stdout and "all checks pass" not in result.stdout
    shown = fnd("show", tmp_path)
    assert f"interrupted: kept the {len(frame)} check(s) that finished" in shown.stdout
