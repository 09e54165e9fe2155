"""Your own code under fnd's checks: matmul kernels (--impl FILE.py:NAME), models and layers (--model,
--layer)."""

import os
import re
import subprocess
import sys
import textwrap

import pyperf
import pytest
from conftest import CHAPTER_MATMUL, EXAMPLES, KERNELS, assert_rejected, run_files

MODEL = f"{EXAMPLES / 'chapter_model.py'}"

# The chapter's LayerFunction cells as printed (fastbook ch. 17): the shipped copy with its one fix undone,
# so Lin.bwd reads self.inp and self.out, which that class never sets.
FIXED_LINE = "self.w.g = inp.t() @ out.g  # the chapter: self.inp.t() @ self.out.g"
CHAPTER_LAYER_FUNCTION = (
    (EXAMPLES / "chapter_layer_function.py")
    .read_text()
    .replace(FIXED_LINE, "self.w.g = self.inp.t() @ self.out.g")
)


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


# --- matmul kernels ---------------------------------------------------------------------------


@pytest.mark.xdist_group("kernels-that-pass-run")
def test_your_kernels_checked_and_timed_beside_the_ladder(kernels_that_pass_run):
    refs = [f"{KERNELS}:chapter_matmul", f"{KERNELS}:row_broadcast"]
    result, out = kernels_that_pass_run.result, kernels_that_pass_run.out
    assert result.exit_code == 0, result.output
    frame, meta = run_files(out, "matmul-bench")
    rude = kernels_that_pass_run.impls[-1]  # rude.py:matmul, read by the test below
    assert frame["impl"].tolist() == [*refs, "torch", "numpy", rude] and frame["correct"].all()  # as given
    assert (frame["median_s"] > 0).all()
    names = pyperf.BenchmarkSuite.load(str(out / meta["files"][1])).get_benchmark_names()
    assert f"{refs[0]} 4x6x3 float32 cpu" in names  # timed by the worker, which imported the file itself


@pytest.mark.xdist_group("kernels-that-fail-run")
def test_the_chapters_float32_output_is_a_finding(kernels_that_fail_run):
    result = kernels_that_fail_run.result  # float64; beside torch and tests/test_matmul_cli.py's broken four
    assert result.exit_code == 1 and "Traceback" not in result.output
    frame, _ = run_files(kernels_that_fail_run.out, "matmul-bench")
    row = frame.set_index("impl").loc[CHAPTER_MATMUL]  # mykernels.py's, named from examples/
    assert row["error"].startswith("returned float32 from float64 inputs") and not row["correct"]


def test_a_slow_kernel_of_yours_meets_the_cost_guard(fnd, tmp_path):
    """Probed once at 8x8x8, the three loops cost about 15 us a multiply-add: 256^3 is skipped."""
    result = fnd(
        "matmul-bench",
        "--quick",
        "--impl",
        f"{KERNELS}:chapter_matmul",
        "--shape",
        "256x256x256",
        "--max-seconds",
        "20",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path, "matmul-bench")
    assert frame["skipped"].iloc[0].startswith("estimated") and "--max-seconds 20" in frame["skipped"].iloc[0]


def test_planted_bugs_fail_with_their_reasons_and_your_traceback(fnd, tmp_path):
    bad = write(
        tmp_path / "bad.py",
        """
        import torch

        def off_by_one(a, b):
            return a @ b + 1

        def transposed(a, b):
            return (a @ b).t()

        def helper(a):
            return a.undefined_method()

        def raises(a, b):
            return helper(a)
        """,
    )
    refs = [f"{bad}:off_by_one", f"{bad}:transposed", f"{bad}:raises"]
    result = fnd(
        "matmul-bench",
        "--quick",
        *[a for r in refs for a in ("--impl", r)],
        "--shape",
        "4x5x3",
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 1, result.output
    frame, _ = run_files(tmp_path / "out", "matmul-bench")
    errors = frame.set_index("impl")["error"]
    assert errors[refs[0]].startswith("wrong result: relative error")
    assert errors[refs[1]] == "returned shape (3, 4), expected (4, 3)"
    assert errors[refs[2]] == "raised AttributeError: 'Tensor' object has no attribute 'undefined_method'"
    out = result.stdout
    assert out.count("Traceback (the user's frames)") == 1  # once, below the table
    assert f'File "{bad}", line 14, in raises' in out and f'File "{bad}", line 11, in helper' in out
    assert "fndcli" not in out.split("Traceback (the user's frames)")[1].split("\n\n")[0]  # their frames only


@pytest.mark.parametrize(
    "ref,fragments",
    [
        ("{tmp}/missing.py:matmul", ["does not exist"]),
        ("{tmp}/k.py:nope", ["has no 'nope'", "it defines matmul"]),
        ("{tmp}/k.py:CONSTANT", ["is an int, not a function of (a, b)"]),
        ("{tmp}/broken.py:matmul", ["cannot import", "SyntaxError"]),
        ("no_such_package.mod:matmul", ["cannot import 'no_such_package.mod'", "ModuleNotFoundError"]),
        ("{tmp}/k.py:", ["is not FILE.py:NAME"]),
        ("nope", ["'nope' is not an implementation", "FILE.py:NAME"]),
    ],
)
def test_bad_references_exit_2_and_write_nothing(fnd, tmp_path, ref, fragments):
    write(tmp_path / "k.py", "CONSTANT = 3\ndef matmul(a, b):\n    return a @ b\n")
    write(tmp_path / "broken.py", "def matmul(a, b) return a @ b\n")
    assert_rejected(
        fnd, tmp_path, "matmul-bench", ["--impl", ref.format(tmp=tmp_path)], "'--impl'", *fragments
    )


@pytest.fixture(scope="module")
def fresh_process_run(tmp_path_factory):
    """One `python -m fndcli matmul-bench` in a process of its own (it has not imported torch yet: any real
    fnd run): --impl all in float16 (the numba kernels sit it out) with an installed plugin, demo-mm, on its
    PYTHONPATH, and k.py:mm, whose file adds a torch thread as it is imported and fails on more threads.
    (process, out, site, k.py:mm), for the two tests in xdist_group "fresh-process-run"."""
    tmp = tmp_path_factory.mktemp("fresh-process")
    site = tmp / "site"  # a distribution with an `fnd.matmul` entry point
    (site / "fnd_plugin_demo").mkdir(parents=True)
    write(site / "fnd_plugin_demo" / "__init__.py", "def matmul(a, b):\n    return a @ b\n")
    info = site / "fnd_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fnd-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fnd.matmul]\ndemo-mm = fnd_plugin_demo:matmul\n")
    rude = write(
        tmp / "k.py",
        """
        import torch
        BEFORE = torch.get_num_threads()
        torch.set_num_threads(BEFORE + 1)

        def mm(a, b):
            if torch.get_num_threads() != BEFORE:
                raise RuntimeError(f"torch runs on {torch.get_num_threads()} threads, not {BEFORE}")
            return a @ b
        """,
    )
    argv = ["--impl", "all", "--impl", f"{rude}:mm", "--dtype", "float16", "--shape", "3x4x2", "--quick"]
    proc = subprocess.run(
        [sys.executable, "-m", "fndcli", "matmul-bench", *argv, "--quiet", "--out", str(tmp / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},  # for fnd and its pyperf worker processes
    )
    return proc, tmp / "out", site, f"{rude}:mm"


@pytest.mark.xdist_group("fresh-process-run")
def test_an_installed_plugin_joins_the_registry(fresh_process_run):
    """A distribution with an `fnd.matmul` entry point: listed in --help, run by --impl all and by name."""
    proc, out, site, rude = fresh_process_run
    help_text = subprocess.run(
        [sys.executable, "-m", "fndcli", "matmul-bench", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(site)},
    ).stdout
    words = " ".join(help_text.replace("│", " ").split())
    flat = re.sub(r"(\w)- (\w)", r"\1-\2", words)  # click's wrapping undone: it breaks after a hyphen too
    assert "installed plugins (fnd.matmul): demo-mm" in flat
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame, _ = run_files(out, "matmul-bench")
    assert frame["impl"].tolist() == ["loops", "dot", "broadcast", "einsum", "torch", rude, "demo-mm"]
    assert frame["correct"].all() and frame["median_s"].iloc[-1] > 0


@pytest.mark.xdist_group("kernels-that-pass-run")
def test_a_file_that_changes_torch_settings_is_undone_and_recorded(kernels_that_pass_run):
    """rude.py (conftest.RUDE) adds a thread and makes float64 the default dtype as it is imported."""
    import torch

    threads = kernels_that_pass_run.torch_before[0]
    result = kernels_that_pass_run.result
    assert result.exit_code == 0, result.output
    assert kernels_that_pass_run.torch_after == (threads, torch.float32)  # as before the run
    _, meta = run_files(kernels_that_pass_run.out, "matmul-bench")
    assert f"threads {threads + 1} (restored to {threads})" in meta["user_code_changed"]
    assert any(c.startswith("default dtype torch.float64") for c in meta["user_code_changed"])


# --- models and layers -------------------------------------------------------------------------


def test_the_chapters_model_pasted_unmodified_passes(fnd, tmp_path):
    result = fnd("gradcheck", "--model", f"{MODEL}:Model", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    frame, _ = run_files(tmp_path, "gradcheck")
    assert frame["passed"].all() and set(frame["check"]) == {"forward", "autograd", "finite-difference"}
    assert {"d loss / d x", "d loss / d lin1.w", "d loss / d lin2.b"} <= set(frame["tensor"])


@pytest.mark.parametrize(
    "edit,failing",
    [
        # forward: relu's kink moved; the backward still matches this forward, so only fnd's reference catches
        # it
        (("inp.clamp_min(0.)", "inp.clamp_min(0.01)"), "loss against fnd's reference model"),
        # backward: the weight gradient's factor dropped
        (
            ("self.w.g = self.inp.t() @ self.out.g", "self.w.g = 0.5 * self.inp.t() @ self.out.g"),
            "d loss / d lin1.w",
        ),
        # shape: the bias gradient not summed over the batch
        (("self.b.g = self.out.g.sum(0)", "self.b.g = self.out.g"), "d loss / d lin2.b"),
        # protocol: the bias gradient never stored
        (("        self.b.g = self.out.g.sum(0)\n", ""), "d loss / d lin1.b (no .g after backward())"),
    ],
)
def test_a_planted_bug_in_your_model_fails_and_is_named(fnd, tmp_path, edit, failing):
    source = (EXAMPLES / "chapter_model.py").read_text()
    assert edit[0] in source
    bugged = write(tmp_path / "model.py", source.replace(*edit))
    result = fnd("gradcheck", "--model", f"{bugged}:Model", "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    frame, _ = run_files(tmp_path / "out", "gradcheck")
    assert failing in set(frame.loc[~frame["passed"], "tensor"]), frame[["tensor", "passed"]]


def test_the_chapters_layer_function_bug_is_reported_not_crashed(fnd, tmp_path):
    pasted = write(tmp_path / "chapter.py", CHAPTER_LAYER_FUNCTION)
    result = fnd("gradcheck", "--layer", f"{pasted}:Lin", "--out", tmp_path / "lin")
    assert result.exit_code == 1 and "Traceback (most recent" not in result.output
    assert "Lin.backward() raised AttributeError: 'Lin' object has no attribute 'inp'" in result.stdout
    line = CHAPTER_LAYER_FUNCTION.splitlines().index("        self.w.g = self.inp.t() @ self.out.g") + 1
    assert FIXED_LINE in (EXAMPLES / "chapter_layer_function.py").read_text()
    assert f'File "{pasted}", line {line}, in bwd' in result.stdout
    for name in ("Relu", "Mse"):  # its other layers are right
        assert fnd("gradcheck", "--layer", f"{pasted}:{name}", "--out", tmp_path / name).exit_code == 0
    for name in ("Lin", "Relu", "Mse"):  # the shipped copy, with the fix, passes
        result = fnd(
            "gradcheck",
            "--layer",
            f"{EXAMPLES / 'chapter_layer_function.py'}:{name}",
            "--out",
            tmp_path / f"fixed-{name}",
        )
        assert result.exit_code == 0, result.output
        frame, _ = run_files(tmp_path / f"fixed-{name}", "gradcheck")
        assert (frame["check"] == "finite-difference").sum() == 1 and frame["passed"].all()


def test_train_your_model_in_lockstep_with_its_twin(fnd, tmp_path):
    result = fnd("train", "--model", f"{MODEL}:Model", "--epochs", "3", "--samples", "400", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    history, meta = run_files(tmp_path, "train")
    assert history["valid_loss"].iloc[-1] < history["valid_loss"].iloc[0] / 2
    assert meta["max_rel_param_diff"] == 0 and meta["config"]["model"] == f"{MODEL}:Model"
    bugged = write(
        tmp_path / "bugged.py",
        (EXAMPLES / "chapter_model.py")
        .read_text()
        .replace("self.b.g = self.out.g.sum(0)", "self.b.g = 2 * self.out.g.sum(0)"),
    )
    result = fnd(
        "train", "--model", f"{bugged}:Model", "--epochs", "2", "--samples", "400", "--out", tmp_path / "b"
    )
    assert result.exit_code == 1 and "disagree" in result.stderr


@pytest.mark.parametrize(
    "command,args,fragments",
    [
        ("gradcheck", ["--model", "{tmp}/nothere.py:Model"], ["'--model'", "does not exist"]),
        ("gradcheck", ["--layer", "{model}:Nope"], ["'--layer'", "has no 'Nope'"]),
        ("gradcheck", ["--model", "{model}:Model", "--layer", "{model}:Lin"], ["not both"]),
        ("train", ["--model", "{tmp}/nothere.py:Model"], ["'--model'", "does not exist"]),
    ],
)
def test_bad_model_references_exit_2(fnd, tmp_path, command, args, fragments):
    assert_rejected(fnd, tmp_path, command, [a.format(tmp=tmp_path, model=MODEL) for a in args], *fragments)


# --- what your code returns, under fnd's checks ------------------------------------------------

MISBEHAVING = """

import torch


class FloatLoss(Model):
    def __call__(self, x, targ):
        return super().__call__(x, targ).item()


class TupleLoss(Model):
    def __call__(self, x, targ):
        return super().__call__(x, targ), 1


class RebuiltLoss(Model):
    def __call__(self, x, targ):
        return torch.tensor(super().__call__(x, targ).item())


class DetachedLin(Lin):
    def __call__(self, inp):
        super().__call__(inp)
        self.out = self.out.detach()
        return self.out


class FirstLayerDetached(Model):
    def __init__(self, w1, b1, w2, b2):
        super().__init__(w1, b1, w2, b2)
        self.layers[0] = DetachedLin(w1, b1)


class NoneRelu(Relu):
    def __call__(self, inp):
        super().__call__(inp)


class FloatRelu(Relu):
    def __call__(self, inp):
        return super().__call__(inp).sum().item()


class TupleMse(Mse):
    def __call__(self, inp, targ):
        return super().__call__(inp, targ), 1


class WrongShapeGrad(Model):
    def backward(self):
        super().backward()
        self.layers[0].w.g = torch.zeros(3)


class TransposedGrad(Model):
    def backward(self):
        super().backward()
        # as many numbers, (4, 5) for a (5, 4) tensor
        self.layers[0].w.g = self.layers[0].w.g.t().contiguous()


class VectorLoss(Model):
    def __call__(self, x, targ):
        return super().__call__(x, targ).expand(2)


class CtrlCBeforeTwinStep3(Model):
    twin_steps = 0

    def __call__(self, x, targ):
        if torch.is_grad_enabled() and self.layers[0].w.requires_grad:  # a training step of the autograd twin
            CtrlCBeforeTwinStep3.twin_steps += 1
            if CtrlCBeforeTwinStep3.twin_steps == 3:
                raise KeyboardInterrupt  # after the hand-written model's step 3, before its twin's
        return super().__call__(x, targ)
"""
TINY_MODEL = ["--n-in", "5", "--hidden", "4", "--batch", "8"]
TINY_TRAIN = ["--n-in", "5", "--hidden", "4", "--samples", "256", "--batch-size", "16", "--epochs", "1"]


def misbehaving(tmp_path):
    return write(tmp_path / "misbehaving.py", (EXAMPLES / "chapter_model.py").read_text() + MISBEHAVING)


@pytest.mark.parametrize(
    "option,name,failing",
    [
        ("--model", "FloatLoss", ["model (model(x, targ) returned a float, not a scalar tensor loss)"]),
        ("--model", "TupleLoss", ["model (model(x, targ) returned a tuple, not a scalar tensor loss)"]),
        (
            "--model",
            "VectorLoss",
            ["model (model(x, targ) returned a tensor of shape (2,), not a scalar tensor loss)"],
        ),
        (
            "--model",
            "RebuiltLoss",
            [
                "model (the loss of model(x, targ) under autograd does not depend on x or the "
                "parameters: it is detached from the graph"
            ],
        ),
        (
            "--model",
            "FirstLayerDetached",
            [
                f"d loss / d {t} (autograd found no gradient: the loss does not depend on "
                f"{t} through your forward, detached from the graph"
                for t in ("x", "lin1.w", "lin1.b")
            ],
        ),
        ("--layer", "NoneRelu", ["NoneRelu (NoneRelu(...)(inp) returned None, not a tensor)"]),
        ("--layer", "FloatRelu", ["FloatRelu (FloatRelu(...)(inp) returned a float, not a tensor)"]),
        (
            "--layer",
            "TupleMse",
            ["TupleMse (TupleMse(...)(inp, targ) returned a tuple, not a scalar tensor loss)"],
        ),
        (
            "--layer",
            "DetachedLin",
            [
                "DetachedLin (the output of DetachedLin under autograd does not depend "
                "on inp, w or b: it is detached from the graph"
            ],
        ),
    ],
)
def test_what_your_code_returns_wrongly_is_a_failing_row_that_names_it(fnd, tmp_path, option, name, failing):
    result = fnd(
        "gradcheck", option, f"{misbehaving(tmp_path)}:{name}", *TINY_MODEL, "--out", tmp_path / "out"
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    frame, _ = run_files(tmp_path / "out", "gradcheck")
    failed = frame.loc[~frame["passed"], "tensor"].tolist()
    for fragment in failing:
        assert any(t.startswith(fragment) for t in failed), (fragment, failed)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "name,fragments",
    [
        (
            "RebuiltLoss",
            [
                "in epoch 1, the loss of model(x, targ) (the autograd twin) does not depend on the "
                "parameters: it is detached from the graph"
            ],
        ),
        ("WrongShapeGrad", ["in epoch 1, .g on lin1.w has shape (3,), not the tensor's (5, 4)"]),
        ("TransposedGrad", ["in epoch 1, .g on lin1.w has shape (4, 5), not the tensor's (5, 4)"]),
        ("VectorLoss", ["model(x, targ) returned a tensor of shape (2,), not a scalar tensor loss"]),
    ],
)
def test_a_model_that_breaks_training_is_one_error_line(fnd, tmp_path, name, fragments):
    result = fnd(
        "train", "--model", f"{misbehaving(tmp_path)}:{name}", *TINY_TRAIN, "--out", tmp_path / "out"
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, (
        result.output
    )
    assert all(f in lines[0] for f in fragments), lines[0]
    _, meta = run_files(tmp_path / "out", "train")
    assert meta["status"] == "failed"


def test_ctrl_c_between_the_two_models_steps_gives_no_parameter_verdict(fnd, tmp_path, monkeypatch):
    """Interrupted after the hand-written step and before its twin's: the two are a step apart, not in
    disagreement. The twin's step time is over the two steps it finished, not the three of the hand-written
    model."""
    import types

    from fndcli.backprop import train as train_module

    ticks = iter(range(10**6))  # a clock that moves 1 s a reading: each timed step takes exactly 1 s
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    result = fnd(
        "train",
        "--model",
        f"{misbehaving(tmp_path)}:CtrlCBeforeTwinStep3",
        *TINY_TRAIN,
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 130, result.output
    assert "disagree" not in result.stderr, result.stderr
    _, meta = run_files(tmp_path / "out", "train")
    assert meta["status"] == "interrupted" and meta["steps"] == 3
    assert meta.get("max_rel_param_diff") is None and meta.get("max_rel_loss_diff") is None
    assert "hand-written step" in result.stdout and "largest relative difference" not in result.stdout
    assert meta["manual_step_s"] == 1.0 and meta["autograd_step_s"] == 1.0  # 3 s over 3 steps, 2 s over 2


def test_settings_changed_by_a_file_that_then_fails_to_import_are_restored(tmp_path):
    """A file that changes torch's settings and then raises on import: the settings are put back all the
    same."""
    import torch

    from fndcli import userref

    broken = write(
        tmp_path / "broken.py",
        """
        import torch
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        raise RuntimeError("half-imported")
        """,
    )
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    try:
        with pytest.raises(userref.RefError, match="half-imported"):
            userref.load(f"{broken}:Model")
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)


@pytest.mark.xdist_group("fresh-process-run")
def test_settings_a_kernel_file_changes_are_restored_in_a_fresh_process(fresh_process_run):
    """In a process that has not imported torch yet (any real `fnd` run), the file's import is still
    watched: k.py:mm runs, timed, on the threads it found."""
    proc, out, _, rude = fresh_process_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frame, meta = run_files(out, "matmul-bench")
    assert frame.set_index("impl").loc[rude, "median_s"] > 0
    assert len(meta["user_code_changed"]) == 1 and meta["user_code_changed"][0].startswith("threads ")


@pytest.mark.parametrize(
    "command,option,name,extra",
    [
        ("gradcheck", "--model", "Model", TINY_MODEL),
        ("gradcheck", "--layer", "Lin", TINY_MODEL),
        ("train", "--model", "Model", TINY_TRAIN),
        ("init-sweep", "--model", "Net", ["--input-shape", "4x5"]),
    ],
)
def test_every_command_that_loads_your_code_records_what_it_changed(
    fnd, tmp_path, monkeypatch, command, option, name, extra
):
    import torch

    from fndcli import userref

    monkeypatch.setattr(userref, "changed", [])  # this run's changes only, not those of the tests before it
    dtype = torch.get_default_dtype()
    rude = write(
        tmp_path / "rude.py",
        (EXAMPLES / "chapter_model.py").read_text()
        + textwrap.dedent("""

        import torch
        torch.set_grad_enabled(False)
        class Net(torch.nn.Sequential):
            def __init__(self):
                super().__init__(torch.nn.Linear(5, 3), torch.nn.ReLU())
        """),
    )
    result = fnd(command, option, f"{rude}:{name}", *extra, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert torch.is_grad_enabled() and torch.get_default_dtype() == dtype
    _, meta = run_files(tmp_path / "out", command)
    assert "grad mode False (restored to True)" in meta["user_code_changed"]


def test_each_file_imports_its_own_sibling_modules(fnd, tmp_path):
    """README's paired recipe: base/kern.py and kern.py each `from helpers import SCALE`, each its own
    helpers.py beside it (x1 and x2). Each file is imported with its directory first on the path and its
    siblings its own, in fnd's process and in the pyperf worker: base is right and timed, head is wrong."""
    for side, scale in (("base", 1.0), ("head", 2.0)):
        (tmp_path / side).mkdir()
        (tmp_path / side / "helpers.py").write_text(f"SCALE = {scale}\n")
        (tmp_path / side / "kern.py").write_text(
            "from helpers import SCALE\n\n\ndef mm(a, b):\n    return a @ b * SCALE\n"
        )
    base, head = (f"{tmp_path / side / 'kern.py'}:mm" for side in ("base", "head"))
    result = fnd(
        "matmul-bench", "--impl", base, "--impl", head, "--shape", "8x8x8", "--quick", "--out", tmp_path / "o"
    )
    assert result.exit_code == 1, result.output
    frame, _ = run_files(tmp_path / "o", "matmul-bench")
    rows = frame.set_index("impl")
    assert rows.loc[base, "correct"] and rows.loc[base, "median_s"] > 0
    assert not rows.loc[head, "correct"] and rows.loc[head, "error"].startswith(
        "wrong result: relative error 1.00e+00"
    )
    assert "helpers" not in sys.modules  # the siblings left sys.modules again


def test_a_kernel_that_prints_prints_on_its_first_calls_only(fnd, tmp_path):
    """A print in the kernel printed on every call, thousands of lines even with --quiet (the calls that size
    its values, --quick's timing): now only the probe's and the check's first calls print."""
    kern = write(tmp_path / "chatty.py", "def mm(a, b):\n    print('hello from mm')\n    return a @ b\n")
    result = fnd(
        "matmul-bench", "--impl", f"{kern}:mm", "--shape", "16x24x8", "--quick", "-q", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output
    assert 1 <= result.stdout.count("hello from mm") <= 3, result.stdout.count("hello from mm")
