"""The user's own model and layers under `fnd gradcheck` (`--model`, `--layer`): the chapter's protocol
(`fndcli.backprop.usermodel`: forward, then backward() stores `.g`), checked as fnd's own model is.

Against autograd: the user's forward runs once more on leaves that require grad, and autograd's `.grad`
on each is the reference for the `.g` the user's backward stored; a model's loss is also compared with fnd's
reference model on the same tensors. Against finite differences: a small float64 case, as for fnd's model.
"""

import math
from dataclasses import replace

import torch

from fndcli.backprop import reference, usermodel
from fndcli.backprop.harness import (
    GRAPH_RULE,
    PROTOCOL_RULE,
    CheckRow,
    away_from_zero,
    compare,
    fd_row,
    make_batch,
    small_model,
)
from fndcli.backprop.model import init_mlp
from fndcli.userref import UserCodeError, call


def _grad_rows(named, leaves, rtol, atol):
    """Each (name, tensor) the user's backward should have given a .g, against its autograd leaf's .grad."""
    rows = []
    for (name, tensor), leaf in zip(named, leaves):
        g, ref = getattr(tensor, "g", None), leaf.grad
        if ref is None:
            why = (
                f"autograd found no gradient: the loss does not depend on {name} through your forward, "
                "detached from the graph"
            )
            rows.append(CheckRow.failed("autograd", f"d loss / d {name}", why, leaf, GRAPH_RULE))
        elif not isinstance(g, torch.Tensor):
            why = "no .g after backward()" if g is None else f".g is a {type(g).__name__}"
            rows.append(CheckRow.failed("autograd", f"d loss / d {name}", why, ref, PROTOCOL_RULE))
        else:
            ours = g.to(ref.dtype) if g.shape == ref.shape else g
            rows.append(compare("autograd", f"d loss / d {name}", ours, ref, rtol, atol))
    return rows


def user_model_rows(cfg, cls, tracebacks):
    """The user's model built from fnd's tensors: its loss against fnd's reference model, every .g its
    backward stores against autograd run through the user's own forward."""
    dtype = getattr(torch, cfg.dtype)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, target = make_batch(cfg.batch, cfg.n_in, cfg.n_out, cfg.loss, gen, dtype)
    fnd = init_mlp(cfg.sizes, cfg.init, cfg.loss, gen, dtype, x=x, device=cfg.device)
    x, target = x.to(cfg.device), target.to(cfg.device)
    tensors = [p.value for _, p in fnd.named_params()]
    names = usermodel.names(len(tensors) // 2)
    rtol, atol = cfg.tolerance, cfg.atol
    rows = []
    try:
        ours = [t.clone() for t in tensors]
        xh = x.clone()
        model = call("model(w1, b1, ...)", cls, *ours)
        loss = usermodel.scalar_loss(call("model(x, targ)", model, xh, target), "model(x, targ)")
        ref_loss = reference.loss(reference.twin_of(tensors[0::2], tensors[1::2])(x), target, cfg.loss)
        rows.append(
            compare(
                "forward", "loss against fnd's reference model", loss.detach(), ref_loss.detach(), rtol, atol
            )
        )
        call("model.backward()", model.backward)
        leaves = [t.clone().requires_grad_() for t in tensors]
        xr = x.clone().requires_grad_()
        what = "model(x, targ) under autograd"
        auto = call(what, cls, *leaves)
        auto_loss = usermodel.scalar_loss(call(what, auto, xr, target), what)
        usermodel.attached(auto_loss, f"the loss of {what}", "x or the parameters").backward()
    except UserCodeError as e:
        tracebacks[str(e)] = e.traceback
        return rows + [CheckRow.raised("autograd", "model", e, x)]
    return rows + _grad_rows([("x", xh), *zip(names, ours)], [xr, *leaves], rtol, atol)


def _user_model_fn(cls, target):
    """The user's model as f(x, w1, b1, ...) -> loss, with its backward, for finite differences."""

    def build(x, *params):
        model = call("model(w1, b1, ...)", cls, *params)
        value = call("model(x, targ)", model, x, target)

        def backward(g):
            call("model.backward()", model.backward)
            names = usermodel.names(len(params) // 2)
            grads = [usermodel.gradient(x, "x"), *(usermodel.gradient(p, n) for n, p in zip(names, params))]
            return tuple(g * gr for gr in grads)

        return usermodel.scalar_loss(value, "model(x, targ)"), backward

    return build


def user_model_fd_rows(cfg, cls):
    """torch.autograd.gradcheck on a small float64 copy of the user's model (fnd's tensors, same depth)."""
    sizes, x, target, params = small_model(cfg)
    return [fd_row(f"model {'-'.join(map(str, sizes))} (yours)", _user_model_fn(cls, target), [x, *params])]


def _layer_case(cfg, cls, dtype, gen):
    """The tensors a layer is built and called with: (constructor args, inputs, target or None, names)."""
    kind, role = usermodel.layer_kind(cls)
    width = cfg.n_out if role == "loss" else cfg.n_in
    inp = torch.randn(cfg.batch, width, generator=gen, dtype=dtype)  # (B, n)
    ctor = []
    if kind == "linear":
        n_out = cfg.hidden[0]
        w = torch.randn(cfg.n_in, n_out, generator=gen, dtype=dtype) / math.sqrt(cfg.n_in)  # (n_in, n_out)
        b = torch.randn(n_out, generator=gen, dtype=dtype) * 0.1  # (n_out,)
        ctor = [w, b]
    target = None
    if role == "loss":
        target = make_batch(cfg.batch, 1, cfg.n_out, cfg.loss, gen, dtype)[1]
    return ctor, inp, target, ["inp", *(["w", "b"] if ctor else [])]


def _layer_apply(cls, ctor, inp, target):
    """Build the user's layer from ctor, call it on inp (and target, for a loss): (layer, out), a tensor."""
    layer = call(f"{cls.__name__}(...)", cls, *ctor)
    what = f"{cls.__name__}(...)({'inp' if target is None else 'inp, targ'})"
    if target is None:
        return layer, usermodel.tensor_out(call(what, layer, inp), what)
    return layer, usermodel.scalar_loss(call(what, layer, inp, target), what)


def _layer_fn(cls, target, names):
    """The user's layer as f(inp, *params) -> out, with its backward, for finite differences."""

    def build(x, *params):
        layer, out = _layer_apply(cls, params, x, target)

        def backward(g):
            if target is None:
                out.g = g  # a layer's backward reads the upstream gradient from out.g
            call(f"{cls.__name__}.backward()", layer.backward)
            grads = [usermodel.gradient(t, n) for n, t in zip(names, [x, *params])]
            # a loss's backward assumes an upstream gradient of 1
            return tuple(gr if target is None else g * gr for gr in grads)

        return out, backward

    return build


def user_layer_rows(cfg, cls, tracebacks):
    """One of the user's layer classes: the .g its backward stores against autograd through its own
    forward, then finite differences on a small float64 case."""
    dtype = getattr(torch, cfg.dtype)
    gen = torch.Generator().manual_seed(cfg.seed)
    ctor, inp, target, names = _layer_case(cfg, cls, dtype, gen)
    try:
        ours = [t.clone() for t in [inp, *ctor]]
        layer, out = _layer_apply(cls, ours[1:], ours[0], target)
        upstream = None if target is not None else torch.randn(out.shape, generator=gen, dtype=dtype)
        if upstream is not None:
            out.g = upstream
        call(f"{cls.__name__}.backward()", layer.backward)
        leaves = [t.clone().requires_grad_() for t in [inp, *ctor]]
        auto = _layer_apply(cls, leaves[1:], leaves[0], target)[1]
        on = " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))  # 'inp', 'inp, w or b'
        what = f"the {'output' if target is None else 'loss'} of {cls.__name__} under autograd"
        usermodel.attached(auto, what, on).backward(upstream)
    except UserCodeError as e:
        tracebacks[str(e)] = e.traceback
        return [CheckRow.raised("autograd", cls.__name__, e, inp)]
    rows = _grad_rows(list(zip(names, ours)), leaves, cfg.tolerance, cfg.atol)
    small = replace(cfg, batch=4, n_in=5, hidden=(3,), n_out=min(cfg.n_out, 3), dtype="float64")
    gen64 = torch.Generator().manual_seed(cfg.seed)
    ctor64, inp64, target64, _ = _layer_case(small, cls, torch.float64, gen64)
    rows.append(
        fd_row(
            f"{cls.__name__} (yours)",
            _layer_fn(cls, target64, names),
            [inp64 if target64 is not None else away_from_zero(inp64), *ctor64],
        )
    )
    return rows
