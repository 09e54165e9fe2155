"""`fnd train --stats N`: what each layer and parameter did while the model trained, every N steps.

Per layer (each Linear's and each activation's output, on the step's own batch): the mean, the std, the share
exactly zero (`dead`), the share near zero (|x| <= NEAR_ZERO, fastai's ActivationStats), the share of units
zero for every example of the batch (`dead_units`), the mean square, and for a tanh (`--act tanh`) the share
saturated (|x| > SATURATED, Karpathy's makemore part 3);
the std of the loss's gradient at that output; a histogram of |x| (miniai's `color_dim`: HIST_BINS bins over
[0, HIST_MAX], the last holding what is above). Per parameter: the std of its values and of its gradient,
grad:data (std grad / std value)
and update:data (the std of the step the optimizer actually applied, from a copy taken before the step and
the value after it, over the std of the value before). And every step, the batch's loss.

fnd's MLP keeps every intermediate and its gradient by name (`model.outputs`, `model.grads`); a user's model
(`--model`) exposes only its loss and its parameters' `.g`, so its layers are read from fnd's reference
arithmetic (Linear, ReLU: what `usermodel.UserModel.forward` computes) on the weights before the step,
differentiated by autograd, while its parameters' figures are its own gradients and the step fnd's SGD took.

The rows are long: (seed, step, epoch, layer, stat, value), one figure each; `step` counts the steps taken
before it (step 0: the first batch, at the initial weights).
"""

import math
from dataclasses import dataclass, replace

import pandas as pd
import torch

from fndcli.backprop import reference
from fndcli.backprop.findings import LOSS, findings, layer_type
from fndcli.backprop.train import train

NEAR_ZERO = 0.05  # fastai ActivationStats' near-zero share: |x| <= 0.05
SATURATED = 0.97  # makemore part 3: |tanh| > 0.97 is saturated
HIST_BINS, HIST_MAX = 40, 10.0  # miniai's color_dim: 40 bins of |x| over 0..10
COLUMNS = ["seed", "step", "epoch", "layer", "stat", "value"]
SATURATING = ("tanh", "sigmoid")


def output_stats(x, kind):
    """{stat: value} of one layer's output x (N, units) on a batch."""
    x = x.detach().double()
    flat, a = x.reshape(-1), x.abs()
    stats = {
        "mean": flat.mean().item(),
        "std": flat.std().item() if flat.numel() > 1 else math.nan,
        "m2": flat.pow(2).mean().item(),
        "dead": (flat == 0).double().mean().item(),
        "near_zero": (a <= NEAR_ZERO).double().mean().item(),
    }
    if kind != "linear":
        stats["dead_units"] = (x == 0).all(dim=0).double().mean().item() if x.dim() == 2 else math.nan
    if kind in SATURATING:
        stats["saturated"] = (a > SATURATED).double().mean().item()
    # bins of width HIST_MAX / HIST_BINS from 0, the last holding everything above (inf and nan too);
    # bincount, not histc: on a busy 2-core host histc took ten times as long
    top = torch.nan_to_num(a.reshape(-1), nan=HIST_MAX, posinf=HIST_MAX).clamp(max=HIST_MAX)
    counts = torch.bincount(
        (top * (HIST_BINS / HIST_MAX)).long().clamp(max=HIST_BINS - 1), minlength=HIST_BINS
    )
    stats.update({f"hist{i:02d}": float(c) for i, c in enumerate(counts.tolist())})
    return stats


def std(t):
    return t.detach().double().std().item() if t.numel() > 1 else math.nan


def ratio(a, b):
    """a / b, inf where b is 0 and a is not, nan where both are."""
    if b == 0:
        return math.inf if a else math.nan
    return a / b


def param_stats(before, grad, after):
    """{stat: value} of one parameter: its value before the step, its gradient, its value after."""
    s = std(before)
    g = std(grad) if grad is not None else math.nan
    return {
        "std": s,
        "grad_std": g,
        "grad_data": ratio(g, s),
        "update_data": ratio(std(after - before), s),
    }


def reference_layers(weights, biases, x, y, loss_kind):
    """(outputs, grads) by name of fnd's reference arithmetic on a user's weights: Linear -> ReLU -> ... ->
    Linear, differentiated by autograd (the protocol exposes no intermediates)."""
    with torch.enable_grad():
        h, outputs, n = x, {}, len(weights)
        for i, (w, b) in enumerate(zip(weights, biases), start=1):
            w, b = w.detach().requires_grad_(), b.detach().requires_grad_()  # a graph through every layer
            h = torch.addmm(b, h, w)  # (N, n_in) @ (n_in, n_out) + b
            outputs["out" if i == n else f"lin{i}"] = h
            if i < n:
                h = torch.relu(h)
                outputs[f"relu{i}"] = h
        for t in outputs.values():
            t.retain_grad()
        reference.loss(h, y, loss_kind).backward()
    return outputs, {k: v.grad for k, v in outputs.items()}


@dataclass
class Observer:
    """Called by `backprop.train.train` around every step: `before` copies the parameters on an observed
    step, `after` records the loss, and on an observed step the layers and parameters."""

    every: int
    seed: int
    loss_kind: str
    rows: list = None
    _before: list = None

    def __post_init__(self):
        self.rows = []

    def before(self, step, model):
        if step % self.every == 0:
            self._before = [p.value.detach().clone() for _, p in model.named_params()]

    def after(self, step, epoch, model, xb, yb, loss):
        self.rows.append((self.seed, step, epoch, LOSS, "loss", loss))
        if self._before is None:
            return
        before, self._before = self._before, None
        if getattr(model, "grads", None):  # fnd's MLP: its own intermediates and their gradients
            outputs = {k: v for k, v in model.outputs.items() if k != "x"}
            grads = model.grads
        else:
            outputs, grads = reference_layers(before[0::2], before[1::2], xb, yb, self.loss_kind)
        for name, out in outputs.items():
            stats = output_stats(out, layer_type(name))
            grad = grads.get(name)
            stats["grad_std"] = std(grad) if grad is not None else math.nan
            self.rows += [(self.seed, step, epoch, name, k, v) for k, v in stats.items()]
        for (name, p), old in zip(model.named_params(), before):
            for k, v in param_stats(old, p.grad, p.value).items():
                self.rows.append((self.seed, step, epoch, name, k, v))

    def frame(self):
        return pd.DataFrame.from_records(self.rows, columns=COLUMNS)


@dataclass
class Dynamics:
    result: object  # the run's own seed's TrainResult
    stats: pd.DataFrame  # COLUMNS, every seed
    findings: pd.DataFrame  # findings.COLUMNS


def train_observed(cfg, every, seeds, on_epoch=lambda row: None):
    """Train cfg's seed with its twin (the run's result), then seeds - 1 more seeds (seed + 1, ...) without
    one, each observed every `every` steps; the stats of all, and the findings that hold across them."""
    frames, result = [], None
    for k in range(seeds):
        seed_cfg = cfg if k == 0 else replace(cfg, seed=cfg.seed + k, check_autograd=False)
        observer = Observer(every, seed_cfg.seed, cfg.loss)
        done = train(seed_cfg, on_epoch=on_epoch if k == 0 else lambda row: None, observer=observer)
        result = result or done
        frames.append(observer.frame())
        if done.interrupted or done.error:
            break
    stats = pd.concat(frames, ignore_index=True)
    return Dynamics(result, stats, findings(stats, stats["seed"].nunique()))
