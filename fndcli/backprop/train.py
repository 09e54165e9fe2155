"""The core of `fnd train`: the hand-written model trained by SGD written from scratch, in lockstep
with an autograd twin.

The twin is `fndcli.backprop.reference`'s nn.Sequential of nn.Linear / nn.ReLU with the same starting
weights (transposed into nn.Linear's (out, in) layout), trained by torch's own SGD update
(`reference.TorchSGD`) with the same learning rate and momentum, on the same batches in the same order.
After every step the two losses are compared, relative to that step's own scale (`step_rel_diff`), so a
large early loss does not hide a late mismatch; at the end, every parameter.
"""

import math
import time
from dataclasses import dataclass

import pandas as pd
import torch

from fndcli.backprop import reference, usermodel
from fndcli.backprop.model import init_mlp
from fndcli.bench.spec import synchronize
from fndcli.kinds import TRAIN
from fndcli.memory import stops
from fndcli.numerics import relative
from fndcli.userref import UserCodeError

COLUMNS = TRAIN.written()  # fndcli.kinds
TEACHER_HIDDEN = 32


@dataclass
class Mismatch:
    """Where the hand-written model is furthest from its twin: a step's loss, or a final parameter."""

    rel_diff: float
    where: str  # "step 17 (epoch 1)" or "parameter lin1.w"


@dataclass
class TrainResult:
    history: pd.DataFrame
    manual_step_s: float
    autograd_step_s: float | None
    loss_diff: Mismatch | None  # the largest |manual - twin| / |twin| over the steps' losses
    param_diff: Mismatch | None  # the largest max|Δ| / max|twin| over the final parameters
    # (both None without a twin, or when a step was cut short: the two a step apart)
    baseline_metric: float  # the valid metric of a constant: the training mean, or the majority class
    model: object = None  # the trained hand-written MLP
    diverged_epoch: int | None = None
    interrupted: bool = False
    steps: int = 0
    error: str | None = None  # an allocation that failed mid-run, or the user's model raised; epochs kept
    user_traceback: str = ""  # the user's frames, when their model raised

    def mismatch(self, tolerance):
        """The first comparison beyond tolerance, or None."""
        for found in (self.loss_diff, self.param_diff):
            if found is not None and not found.rel_diff <= tolerance:
                return found
        return None


def make_data(cfg):
    """Seeded synthetic data, split into (x_train, y_train, x_valid, y_valid).

    Regression: x ~ N(0, 1), y = teacher(x) + noise * N(0, 1), the teacher a fixed random
    ReLU network n_in -> 32 -> n_out (Kaiming). Classification: labels are the argmax of
    such a teacher's `classes` outputs, or the cluster of x drawn around `classes`
    Gaussian centres.
    """
    dtype = getattr(torch, cfg.dtype)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.samples, cfg.n_in, generator=gen, dtype=dtype)  # (S, n_in)
    if cfg.task == "classification" and cfg.labels == "clusters":
        centres = torch.randn(cfg.classes, cfg.n_in, generator=gen, dtype=dtype) * 0.5  # (C, n_in)
        y = torch.randint(0, cfg.classes, (cfg.samples,), generator=gen)
        x = x + centres[y]
    else:
        teacher = init_mlp([cfg.n_in, TEACHER_HIDDEN, cfg.outputs], "kaiming-normal", "mse", gen, dtype)
        out = teacher.forward(x, keep=False)  # (S, outputs)
        if cfg.task == "classification":
            y = out.argmax(dim=1)
        else:
            y = out + cfg.noise * torch.randn(out.shape, generator=gen, dtype=dtype)
            y = y.squeeze(1) if cfg.n_out == 1 else y
    n_train = cfg.n_train
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def twin_loss(twin, x, y, loss):
    """The autograd twin's loss on a batch."""
    return twin.loss(x, y)


def metric(out, y, task):
    """R^2 for regression (1 - SSE/SST over all outputs, SST about each output's mean), accuracy for
    classification."""
    if task == "classification":
        return (out.argmax(dim=1) == y).double().mean().item()
    y = y.view_as(out)
    sst = (y - y.mean(0)).pow(2).sum().item()
    return 1 - (out - y).pow(2).sum().item() / sst if sst > 0 else math.nan


def baseline_metric(y_train, y_valid, task, outputs):
    """The valid metric of a model that ignores its input: the training set's majority class, or its mean.

    With teacher labels one class can hold nearly half the validation set, so chance (1 / classes)
    understates what accuracy must beat; R^2 of the training mean is about 0, not exactly.
    """
    if task == "classification":
        majority = torch.bincount(y_train, minlength=outputs).argmax()
        return (y_valid == majority).double().mean().item()
    mean = y_train.reshape(len(y_train), -1).mean(0)  # (outputs,)
    return metric(mean.expand(len(y_valid), -1), y_valid, task)


class ManualSGD:
    """SGD with optional momentum, as torch.optim.SGD defines it: v = mu * v + g; p -= lr * v."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [None] * len(params)

    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad
            if self.momentum:
                v = self.velocity[i]
                self.velocity[i] = g.clone() if v is None else v.mul_(self.momentum).add_(g)
                g = self.velocity[i]
            p.value.add_(g, alpha=-self.lr)


def step_rel_diff(loss, ref, out):
    """|loss - ref| relative to this step's scale: |ref| plus the mean |output| the loss came from.

    A loss computed from outputs of size s carries rounding of about eps * s: cross-entropy of a
    confident prediction is lse - logit, a small difference of large numbers. Relative to the
    loss alone that rounding would look like a mismatch; relative to the step's own scale it
    does not, and a late mismatch is still judged against its own step, not the first loss.
    """
    return relative(abs(loss - ref), abs(ref) + out.abs().mean().item())


def train(cfg, on_epoch=lambda row: None, observer=None):
    """Train for cfg.epochs; returns the per-epoch history (epoch 0 is before training) and the
    comparisons. `observer` (`dynamics.Observer`, --stats) sees every step, outside its timing."""
    x_tr, y_tr, x_va, y_va = (t.to(cfg.device) for t in make_data(cfg))  # made on the CPU, from the seed
    baseline = baseline_metric(y_tr, y_va, cfg.task, cfg.outputs)
    try:
        model, twin = build_models(cfg, x_tr)
    except UserCodeError as e:
        return TrainResult(
            pd.DataFrame(columns=COLUMNS),
            math.nan,
            None,
            None,
            None,
            baseline,
            error=f"before training, {e}",
            user_traceback=e.traceback,
        )
    opt = ManualSGD([p for _, p in model.named_params()], cfg.lr, cfg.momentum)
    twin_opt = reference.TorchSGD(twin.parameters(), lr=cfg.lr, momentum=cfg.momentum) if twin else None
    shuffle = torch.Generator().manual_seed(cfg.seed + 2)

    def evaluate(epoch, seconds, step_s, ref_step_s, loss_diff):
        with torch.no_grad():  # keep=False: an evaluation pass leaves no cache for a backward
            row = {
                "epoch": epoch,
                "train_loss": model.loss(x_tr, y_tr, keep=False).item(),
                "valid_loss": model.loss(x_va, y_va, keep=False).item(),
                "valid_metric": metric(model.outputs["out"], y_va, cfg.task),
                "seconds": seconds,
                "step_s": step_s,
                "ref_step_s": ref_step_s,
                "ref_train_loss": twin_loss(twin, x_tr, y_tr, cfg.loss).item() if twin else math.nan,
                "ref_valid_loss": twin_loss(twin, x_va, y_va, cfg.loss).item() if twin else math.nan,
                "loss_rel_diff": loss_diff,
            }
        on_epoch(row)
        return row

    def manual_step(xb, yb):
        model.zero_grad()
        loss = model.loss(xb, yb)
        model.backward(input_grad=False)
        opt.step()
        return loss

    def twin_step(xb, yb):
        twin_opt.zero_grad()
        ref = twin_loss(twin, xb, yb, cfg.loss)
        ref.backward()
        twin_opt.step()
        return ref

    def timed(step, xb, yb):
        """(seconds, the step's loss as a float): the device synchronised on both sides of the clock."""
        synchronize(cfg.device)
        t0 = time.perf_counter()
        loss = step(xb, yb)
        synchronize(cfg.device)
        return time.perf_counter() - t0, loss.item()

    rows, manual_s, twin_s, steps, twin_steps, in_step = [], 0.0, 0.0, 0, 0, False
    worst = Mismatch(0.0, "every step") if twin else None
    diverged, error, user_traceback = None, None, ""
    with stops(lambda: f"in epoch {len(rows)}") as stopped:
        try:
            rows.append(evaluate(0, 0.0, math.nan, math.nan, math.nan))
            for epoch in range(1, cfg.epochs + 1):
                t_epoch, manual_before, twin_before, steps_before = (
                    time.perf_counter(),
                    manual_s,
                    twin_s,
                    steps,
                )
                order = torch.randperm(len(x_tr), generator=shuffle).to(cfg.device)
                loss_diff = 0.0 if twin else math.nan
                for start in range(0, len(order), cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    xb, yb = x_tr[idx], y_tr[idx]
                    in_step = True  # until the twin's step is done, the two models may be a step apart
                    if observer:
                        observer.before(steps, model)
                    seconds, loss = timed(manual_step, xb, yb)
                    if observer:
                        observer.after(steps, epoch, model, xb, yb, loss)
                    manual_s += seconds
                    steps += 1
                    if twin:
                        seconds, ref = timed(twin_step, xb, yb)
                        twin_s += seconds
                        twin_steps += 1
                        rel = step_rel_diff(loss, ref, model.outputs["out"])
                        loss_diff = max(loss_diff, rel)
                        if not rel <= worst.rel_diff:
                            worst = Mismatch(rel, f"step {steps} (epoch {epoch})")
                    in_step = False
                    if not math.isfinite(loss):
                        diverged = epoch
                        break
                if diverged:
                    break
                n = steps - steps_before
                rows.append(
                    evaluate(
                        epoch,
                        time.perf_counter() - t_epoch,
                        (manual_s - manual_before) / n,
                        (twin_s - twin_before) / n if twin else math.nan,
                        loss_diff,
                    )
                )
        except UserCodeError as e:
            error, user_traceback = f"in epoch {len(rows)}, {e}", e.traceback
    error = error or stopped.error
    # a step cut short (Ctrl-C, the user's model raising): no verdict
    compared = twin is not None and not in_step
    history = pd.DataFrame.from_records(rows, columns=COLUMNS)
    return TrainResult(
        history,
        manual_s / max(steps, 1),
        twin_s / max(twin_steps, 1) if twin else None,
        worst if compared else None,
        _param_diff(model, twin) if compared else None,
        baseline,
        model,
        diverged,
        stopped.interrupted,
        steps,
        error,
        user_traceback,
    )


def _param_diff(model, twin):
    """The parameter furthest from its twin's, as max|Δ| / max|twin| (inf for a NaN: numerics.relative)."""
    found = max(
        (
            Mismatch(relative((p.value - t).abs().max().item(), t.abs().max().item()), f"parameter {name}")
            for (name, p), t in zip(model.named_params(), twin.chapter_params())
        ),
        key=lambda m: m.rel_diff,
    )
    return Mismatch(0.0, "every parameter") if found.rel_diff == 0 else found


def build_models(cfg, x_tr):
    """The hand-written model (fnd's, or the user's class built from the same tensors) and its autograd twin
    (torch's layers, or the user's own forward under autograd); None without --check-autograd."""
    model = init_mlp(
        cfg.sizes,
        cfg.init,
        cfg.loss,
        torch.Generator().manual_seed(cfg.seed + 1),
        getattr(torch, cfg.dtype),
        x=x_tr,
        device=cfg.device,
        act=cfg.act,
    )
    params = [p.value for _, p in model.named_params()]
    weights, biases = params[0::2], params[1::2]
    if not cfg.model:
        return model, reference.Twin(weights, biases, cfg.loss, cfg.act) if cfg.check_autograd else None
    cls = usermodel.load_class(cfg.model)
    twin = usermodel.UserTwin(cls, weights, biases) if cfg.check_autograd else None
    return usermodel.UserModel(cls, weights, biases), twin
