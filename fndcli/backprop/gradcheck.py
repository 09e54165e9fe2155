"""The core of `fnd gradcheck`: hand-written gradients against autograd and finite differences.

Against autograd: the model's forward and hand-written backward run once; the same values
(input, weights, biases, targets) go through the autograd reference (`fndcli.backprop.reference`:
nn.Linear, nn.ReLU, F.mse_loss, F.cross_entropy), and every gradient is compared: the input, each weight and bias, and
each intermediate activation.

Against finite differences: each hand-written layer, and a small float64 copy of the whole
model, is wrapped as an autograd.Function whose backward is the hand-written one
(`bridge.HandWritten`), and `torch.autograd.gradcheck` compares it with central
differences; so is the chapter's `MyRelu`. ReLU inputs are kept at least MARGIN away from
0, so the kink does not spoil the differences.
"""
import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial

import pandas as pd
import torch

from fndcli.backprop import reference, usermodel
from fndcli.backprop.bridge import HandWritten, MyRelu
from fndcli.backprop.model import MLP, MSE, CrossEntropy, Linear, ReLU, init_mlp
from fndcli.memory import stops
from fndcli.names import dtype_name
from fndcli.numerics import first_line, relative
from fndcli.userref import UserCodeError, call

MARGIN = 1e-3  # smallest |pre-activation| allowed in a finite-difference check
FD_EPS = 1e-6
FD_RTOL, FD_ATOL = 1e-3, 1e-5  # torch.autograd.gradcheck's own defaults, passed explicitly
# What `passed` means on each kind of row (the `rule` column).
AUTOGRAD_RULE = "max|diff| <= atol + rtol * max|ref|"
FD_RULE = "torch.autograd.gradcheck: |analytic - numeric| <= atol + rtol * |numeric|, every element"
RAISED_RULE = "the backward raised"
PROTOCOL_RULE = "the protocol: backward() stores .g"
GRAPH_RULE = "autograd reaches the tensor through the user's forward"


@dataclass(frozen=True)
class CheckRow:
    """One row of gradcheck's CSV (COLUMNS): one tensor of ours against its reference."""

    check: str             # 'forward', 'autograd' or 'finite-difference'
    tensor: str            # what was checked, e.g. 'd loss / d lin1.w'; and why, when it could not be
    shape: str             # the reference's, e.g. '100x50' or 'scalar'
    dtype: str             # the reference's, e.g. 'float32'
    exact: bool | None     # torch.equal; None where it does not apply (finite differences, a check that did not run)
    allclose: bool | None  # torch.allclose with its own defaults, as Karpathy's `cmp`, for information; None as exact
    max_abs_diff: float    # max|ours - ref|; inf when the two cannot be compared
    rel_err: float         # max_abs_diff / max|ref| (numerics.relative)
    rtol: float | None     # the tolerances behind `passed`; None where nothing was compared
    atol: float | None
    rule: str              # what `passed` means on this row
    passed: bool

    @classmethod
    def failed(cls, check, tensor, why, like, rule):
        """A check that could not compare anything: it fails, and `tensor` says why."""
        return cls(check, f"{tensor} ({why})", _shape(like), dtype_name(like.dtype), exact=None, allclose=None,
                   max_abs_diff=math.inf, rel_err=math.inf, rtol=None, atol=None, rule=rule, passed=False)

    @classmethod
    def raised(cls, check, tensor, error, like):
        """A check that could not run because the backward raised `error`."""
        why = str(error) if isinstance(error, UserCodeError) else f"raised {type(error).__name__}: {first_line(error)}"
        return cls.failed(check, tensor, why, like, RAISED_RULE)


COLUMNS = [f.name for f in fields(CheckRow)]  # the CSV's columns, in this order


def _shape(t):
    return "x".join(map(str, t.shape)) or "scalar"


def make_batch(batch, n_in, n_out, loss, gen, dtype):
    """x ~ N(0, 1) (batch, n_in); MSE targets N(0, 1), (batch,) for one output else (batch, n_out);
    cross-entropy targets are class indices (batch,)."""
    x = torch.randn(batch, n_in, generator=gen, dtype=dtype)
    if loss == "cross-entropy":
        return x, torch.randint(0, n_out, (batch,), generator=gen)
    shape = (batch,) if n_out == 1 else (batch, n_out)
    return x, torch.randn(*shape, generator=gen, dtype=dtype)


def compare(check, tensor, ours, ref, rtol, atol):
    """One row: our tensor against the reference, `passed` by AUTOGRAD_RULE with rtol and atol."""
    row = partial(CheckRow, check, tensor, _shape(ref), dtype_name(ref.dtype), rtol=rtol, atol=atol,
                  rule=AUTOGRAD_RULE)
    if ours.shape != ref.shape:
        return row(exact=False, allclose=False, max_abs_diff=math.inf, rel_err=math.inf, passed=False)
    max_abs = (ours - ref).abs().max().item() if ref.numel() else 0.0
    ref_max = ref.abs().max().item() if ref.numel() else 0.0
    return row(exact=bool(torch.equal(ours, ref)), allclose=bool(torch.allclose(ours, ref)), max_abs_diff=max_abs,
               rel_err=relative(max_abs, ref_max),
               passed=bool(math.isfinite(max_abs) and max_abs <= atol + rtol * ref_max))


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

def _away_from_zero(t, margin=0.1):
    return t + margin * torch.where(t >= 0, 1.0, -1.0).to(t.dtype)


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


def _small_model(cfg):
    """A small float64 copy of cfg's model (same depth and loss) whose ReLU inputs are all >= MARGIN from 0."""
    sizes = [min(cfg.n_in, 5), *(min(h, 4) for h in cfg.hidden), max(2, min(cfg.n_out, 3)) if cfg.loss ==
             "cross-entropy" else min(cfg.n_out, 3)]
    best = None
    for seed in range(cfg.seed, cfg.seed + 200):
        gen = torch.Generator().manual_seed(seed)
        x, target = make_batch(4, sizes[0], sizes[-1], cfg.loss, gen, torch.float64)
        model = init_mlp(sizes, cfg.init, cfg.loss, gen, torch.float64, x=x)
        model.forward(x, keep=False)
        pre = [model.outputs[n] for n in model.names if n.startswith("lin")]
        gap = min((z.abs().min().item() for z in pre), default=math.inf)
        if best is None or gap > best[0]:
            best = (gap, sizes, x, target, [p.value for _, p in model.named_params()])
        if gap >= MARGIN:
            break
    return best[1:]


def _fd_max_diff(build, inputs):
    """Largest |hand-written - central difference| over every element of every input, and max|ref|."""
    value, backward = build(*inputs)
    v = torch.randn(value.shape, generator=torch.Generator().manual_seed(1), dtype=value.dtype)  # projection
    analytic = [g for g in backward(v)]
    max_abs, ref_max = 0.0, 0.0
    for t, a in zip(inputs, analytic):
        flat = t.detach().clone().reshape(-1)
        for i in range(flat.numel()):
            plus, minus = flat.clone(), flat.clone()
            plus[i] += FD_EPS
            minus[i] -= FD_EPS
            args_p = [plus.view_as(t) if u is t else u for u in inputs]
            args_m = [minus.view_as(t) if u is t else u for u in inputs]
            numeric = ((build(*args_p)[0] - build(*args_m)[0]) * v).sum().item() / (2 * FD_EPS)
            max_abs = max(max_abs, abs(a.reshape(-1)[i].item() - numeric))
            ref_max = max(ref_max, abs(numeric))
    return max_abs, ref_max


def _myrelu_fn(x):
    """MyRelu through autograd, in the (value, backward) form of the hand-written layers."""
    with torch.enable_grad():
        leaf = x.detach().requires_grad_()
        out = MyRelu.apply(leaf)
    return out.detach(), lambda g: torch.autograd.grad(out, leaf, g, retain_graph=True)


def _fd_row(tensor, build, inputs, function=None):
    """gradcheck's verdict on `function` (default: `build` wrapped by HandWritten), and our own central differences."""
    inputs = [t.detach().to(torch.float64) for t in inputs]
    leaves = [t.clone().requires_grad_() for t in inputs]
    function = function or (lambda *a: HandWritten.apply(build, *a))
    try:
        ok = torch.autograd.gradcheck(function, leaves, eps=FD_EPS, atol=FD_ATOL, rtol=FD_RTOL, raise_exception=False)
        max_abs, ref_max = _fd_max_diff(build, inputs)
    except (RuntimeError, UserCodeError) as e:
        return CheckRow.raised("finite-difference", tensor, e, inputs[0])
    # exact and allclose do not apply: the reference is a numerical estimate
    return CheckRow("finite-difference", tensor, _shape(inputs[0]), "float64", exact=None, allclose=None,
                    max_abs_diff=max_abs, rel_err=relative(max_abs, ref_max), rtol=FD_RTOL, atol=FD_ATOL,
                    rule=FD_RULE, passed=bool(ok))


def finite_difference_rows(cfg):
    """torch.autograd.gradcheck on each hand-written layer, a small copy of the model, and MyRelu."""
    gen = torch.Generator().manual_seed(cfg.seed)
    f64 = dict(generator=gen, dtype=torch.float64)
    sizes, x, target, params = _small_model(cfg)
    rows = [
        _fd_row("linear", _linear_fn, [torch.randn(3, 4, **f64), torch.randn(4, 2, **f64), torch.randn(2, **f64)]),
        _fd_row("relu", _relu_fn, [_away_from_zero(torch.randn(3, 4, **f64))]),
        _fd_row("mse", _loss_fn(MSE, torch.randn(3, 2, **f64)), [torch.randn(3, 2, **f64)]),
        _fd_row("cross-entropy", _loss_fn(CrossEntropy, torch.randint(0, 4, (3,), generator=gen)),
                [torch.randn(3, 4, **f64)]),
    ]
    rows.append(_fd_row(f"model {'-'.join(map(str, sizes))} ({cfg.loss})", _model_fn(cfg.loss, target),
                        [x, *params]))
    rows.append(_fd_row("MyRelu (autograd.Function)", _myrelu_fn, [_away_from_zero(torch.randn(3, 4, **f64))],
                        function=MyRelu.apply))
    return rows


# --- the user's own model and layers (fndcli.backprop.usermodel: the chapter's protocol) ---------------------

def _grad_rows(named, leaves, rtol, atol):
    """Each (name, tensor) the user's backward should have given a .g, against the .grad of its autograd leaf."""
    rows = []
    for (name, tensor), leaf in zip(named, leaves):
        g, ref = getattr(tensor, "g", None), leaf.grad
        if ref is None:
            rows.append(CheckRow.failed("autograd", f"d loss / d {name}", "autograd found no gradient: the loss "
                                        f"does not depend on {name} through your forward, detached from the graph",
                                        leaf, GRAPH_RULE))
        elif not isinstance(g, torch.Tensor):
            why = "no .g after backward()" if g is None else f".g is a {type(g).__name__}"
            rows.append(CheckRow.failed("autograd", f"d loss / d {name}", why, ref, PROTOCOL_RULE))
        else:
            rows.append(compare("autograd", f"d loss / d {name}", g.to(ref.dtype) if g.shape == ref.shape else g,
                                ref, rtol, atol))
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
        rows.append(compare("forward", "loss against fnd's reference model", loss.detach(), ref_loss.detach(),
                            rtol, atol))
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
    def build(x, *params):
        model = call("model(w1, b1, ...)", cls, *params)
        value = call("model(x, targ)", model, x, target)

        def backward(g):
            call("model.backward()", model.backward)
            return (g * usermodel.gradient(x, "x"), *(g * usermodel.gradient(p, n)
                                                        for n, p in zip(usermodel.names(len(params) // 2), params)))
        return usermodel.scalar_loss(value, "model(x, targ)"), backward
    return build


def user_model_fd_rows(cfg, cls):
    """torch.autograd.gradcheck on a small float64 copy of the user's model (fnd's tensors, same depth)."""
    sizes, x, target, params = _small_model(cfg)
    return [_fd_row(f"model {'-'.join(map(str, sizes))} (yours)", _user_model_fn(cls, target), [x, *params])]


def _layer_case(cfg, cls, dtype, gen):
    """The tensors a layer is built and called with: (constructor args, inputs, target or None, names)."""
    kind, role = usermodel.layer_kind(cls)
    width = cfg.n_out if role == "loss" else cfg.n_in
    inp = torch.randn(cfg.batch, width, generator=gen, dtype=dtype)  # (B, n)
    ctor = []
    if kind == "linear":
        n_out = cfg.hidden[0]
        ctor = [torch.randn(cfg.n_in, n_out, generator=gen, dtype=dtype) / math.sqrt(cfg.n_in),  # w (n_in, n_out)
                torch.randn(n_out, generator=gen, dtype=dtype) * 0.1]                           # b (n_out,)
    target = None
    if role == "loss":
        target = make_batch(cfg.batch, 1, cfg.n_out, cfg.loss, gen, dtype)[1]
    return ctor, inp, target, ["inp", *(["w", "b"] if ctor else [])]


def _layer_apply(cls, ctor, inp, target):
    """Build the user's layer from ctor and call it on inp (and target, for a loss): (layer, out), a tensor."""
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
            return tuple(gr if target is None else g * gr for gr in grads)  # a loss's backward assumes 1 upstream
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
        usermodel.attached(auto, f"the {'output' if target is None else 'loss'} of {cls.__name__} under autograd",
                           on).backward(upstream)
    except UserCodeError as e:
        tracebacks[str(e)] = e.traceback
        return [CheckRow.raised("autograd", cls.__name__, e, inp)]
    rows = _grad_rows(list(zip(names, ours)), leaves, cfg.tolerance, cfg.atol)
    small = replace(cfg, batch=4, n_in=5, hidden=(3,), n_out=min(cfg.n_out, 3), dtype="float64")
    ctor64, inp64, target64, _ = _layer_case(small, cls, torch.float64, torch.Generator().manual_seed(cfg.seed))
    rows.append(_fd_row(f"{cls.__name__} (yours)", _layer_fn(cls, target64, names),
                        [inp64 if target64 is not None else _away_from_zero(inp64), *ctor64]))
    return rows


@dataclass
class GradcheckResult:
    rows: pd.DataFrame
    error: str | None = None                         # out of memory part-way; the rows before it are kept
    tracebacks: dict = field(default_factory=dict)   # {what raised: the user's traceback}
    interrupted: bool = False                        # Ctrl-C; the rows before it are kept


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
