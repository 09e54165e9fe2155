"""The core of `fnd gradcheck`: hand-written gradients against autograd and finite differences.

Against autograd: the model's forward and hand-written backward run once; the same values
(input, weights, biases, targets) go through the autograd reference (`fndcli.backprop.reference`:
nn.Linear, nn.ReLU, F.mse_loss, F.cross_entropy), and every gradient is compared: the input,
each weight and bias, and each intermediate activation.

Against finite differences: each hand-written layer, and a small float64 copy of the whole
model, is wrapped as an autograd.Function whose backward is the hand-written one
(`bridge.HandWritten`), and `torch.autograd.gradcheck` compares it with central
differences; so is the chapter's `MyRelu`. ReLU inputs are kept at least `harness.MARGIN`
away from 0, so the kink does not spoil the differences.

The rows, the rules and both comparisons are `harness`'s; the user's model and layers (`--model`,
`--layer`) are checked the same way in `usercheck`.
"""

from dataclasses import asdict, dataclass, field

import pandas as pd
import torch

from fndcli.backprop import reference, usermodel
from fndcli.backprop.bridge import MyRelu
from fndcli.backprop.harness import (
    COLUMNS,
    CheckRow,
    away_from_zero,
    compare,
    fd_row,
    make_batch,
    small_model,
)
from fndcli.backprop.model import MLP, MSE, CrossEntropy, Linear, ReLU, init_mlp
from fndcli.backprop.usercheck import user_layer_rows, user_model_fd_rows, user_model_rows
from fndcli.memory import stops


def autograd_rows(cfg):
    """Every gradient of the hand-written model against torch autograd on the same values."""
    dtype = getattr(torch, cfg.dtype)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, target = make_batch(cfg.batch, cfg.n_in, cfg.n_out, cfg.loss, gen, dtype)
    model = init_mlp(cfg.sizes, cfg.init, cfg.loss, gen, dtype, x=x, device=cfg.device)
    x, target = x.to(cfg.device), target.to(cfg.device)
    loss = model.loss(x, target)
    model.zero_grad()
    try:
        model.backward()
    except RuntimeError as e:  # a broken backward that produces a wrongly shaped gradient
        return [CheckRow.raised("autograd", "backward", e, x)]

    params = model.named_params()
    twin = reference.twin_of([p.value for _, p in params[0::2]], [p.value for _, p in params[1::2]])
    xr = x.clone().requires_grad_()
    out, acts = reference.forward(twin, xr, keep=True)
    ref_loss = reference.loss(out, target, cfg.loss)
    ref_loss.backward()

    rtol, atol = cfg.tolerance, cfg.atol
    rows = [compare("autograd", "loss (value)", loss.detach(), ref_loss.detach(), rtol, atol)]
    for name in ["x", *model.names]:
        ref = xr.grad if name == "x" else acts[name].grad
        rows.append(compare("autograd", f"d loss / d {name}", model.grads[name], ref, rtol, atol))
    ref_grads = [g for _, w_grad, _, b_grad in reference.chapter_params(twin) for g in (w_grad, b_grad)]
    for (name, p), ref in zip(params, ref_grads):
        rows.append(compare("autograd", f"d loss / d {name}", p.grad, ref, rtol, atol))
    return rows


# --- finite differences --------------------------------------------------------------------


def _linear_fn(x, w, b):
    lin = Linear(w, b)
    out = lin.forward(x)

    def backward(g):
        gx = lin.backward(g)
        return gx, lin.w.grad, lin.b.grad

    return out, backward


def _relu_fn(x):
    relu = ReLU()
    return relu.forward(x), lambda g: (relu.backward(g),)


def _loss_fn(loss_cls, target):
    def build(pred):
        loss = loss_cls()
        return loss.forward(pred, target), lambda g: (loss.backward(g),)

    return build


def _model_fn(loss, target):
    """The whole hand-written model as f(x, w1, b1, w2, b2, ...) -> loss."""

    def build(x, *params):
        model = MLP(params[0::2], params[1::2], loss)
        value = model.loss(x, target)

        def backward(g):
            gx = model.backward()
            return (g * gx, *(g * p.grad for _, p in model.named_params()))

        return value, backward

    return build


def _myrelu_fn(x):
    """MyRelu through autograd, in the (value, backward) form of the hand-written layers."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_()
        out = MyRelu.apply(leaf)
    return out.detach(), lambda g: torch.autograd.grad(out, leaf, g, retain_graph=True)


def finite_difference_rows(cfg):
    """torch.autograd.gradcheck on each hand-written layer, a small copy of the model, and MyRelu."""
    gen = torch.Generator().manual_seed(cfg.seed)
    f64 = dict(generator=gen, dtype=torch.float64)
    sizes, x, target, params = small_model(cfg)
    rows = [
        fd_row(
            "linear", _linear_fn, [torch.randn(3, 4, **f64), torch.randn(4, 2, **f64), torch.randn(2, **f64)]
        ),  # x, w, b
        fd_row("relu", _relu_fn, [away_from_zero(torch.randn(3, 4, **f64))]),
        fd_row("mse", _loss_fn(MSE, torch.randn(3, 2, **f64)), [torch.randn(3, 2, **f64)]),
        fd_row(
            "cross-entropy",
            _loss_fn(CrossEntropy, torch.randint(0, 4, (3,), generator=gen)),
            [torch.randn(3, 4, **f64)],
        ),
    ]
    rows.append(
        fd_row(f"model {'-'.join(map(str, sizes))} ({cfg.loss})", _model_fn(cfg.loss, target), [x, *params])
    )
    rows.append(
        fd_row(
            "MyRelu (autograd.Function)",
            _myrelu_fn,
            [away_from_zero(torch.randn(3, 4, **f64))],
            function=MyRelu.apply,
        )
    )
    return rows


@dataclass
class GradcheckResult:
    rows: pd.DataFrame
    error: str | None = None  # out of memory part-way; the rows before it are kept
    tracebacks: dict = field(default_factory=dict)  # {what raised: the user's traceback}
    interrupted: bool = False  # Ctrl-C; the rows before it are kept


def run_gradcheck(cfg):
    """All checks of cfg (COLUMNS): fnd's model, or the user's model or layer (cfg.model, cfg.layer)."""
    rows, tracebacks = [], {}
    with stops(lambda: f"after {len(rows)} check(s)") as stopped:
        if cfg.model:
            cls = usermodel.load_class(cfg.model)
            rows += user_model_rows(cfg, cls, tracebacks)
            rows += user_model_fd_rows(cfg, cls)
        elif cfg.layer:
            rows += user_layer_rows(cfg, usermodel.load_class(cfg.layer), tracebacks)
        else:
            rows += autograd_rows(cfg)
            rows += finite_difference_rows(cfg)
    frame = pd.DataFrame.from_records([asdict(r) for r in rows], columns=COLUMNS)
    return GradcheckResult(frame, stopped.error, tracebacks, stopped.interrupted)
