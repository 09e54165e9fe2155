"""The core of `fnd init-sweep --model`: the chapter's activation statistics, inside any nn.Module.

fastai's `ActivationStats` and the course's colorful dimension, Karpathy's per-layer gradient
std and grad:data ratio (makemore part 3), Hugging Face's `DebugUnderflowOverflow` for fp16
and bf16: a forward hook on every leaf module (parameter-free ones too, named as
`named_modules()` names them) reduces its output at once to running sums, in float64; nothing
else is kept, so memory is the model's own. A module called twice (one ReLU reused in a block)
gets a row per call. `fndcli.init.diagnose` turns the rows into findings and the verdict.

Each seed rebuilds the model under `torch.manual_seed(seed)` (its own init draws from the
global generator; fnd's state is restored after), draws the input x ~ N(0, 1) and, with a
scheme, every Linear/Conv weight from a generator seeded the same.
"""

import contextlib
import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fndcli import userref
from fndcli.init.schemes import InitParams, make_act, resolve_scheme
from fndcli.init.stats import Sums, log10_abs, log10_histogram, real
from fndcli.userref import UserCodeError, call

HIST_RANGE, HIST_BINS = (-30.0, 30.0), 120  # log10|x|, half a decade a bin; zeros first, inf/nan last
PROBE_BATCH = 2  # the batch of the check pass (shapes, order, memory); 2 so BatchNorm can run
ACT_GAINS = {nn.ReLU: "relu", nn.ReLU6: "relu", nn.LeakyReLU: "leaky-relu", nn.Tanh: "tanh"}
SATURATING = {
    nn.Tanh: (-1.0, 1.0),
    nn.Hardtanh: (-1.0, 1.0),
    nn.Sigmoid: (0.0, 1.0),
    nn.Hardsigmoid: (0.0, 1.0),
}
NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)


def load_builder(reference):
    """The function that builds the user's model: an nn.Module class, or a function returning one
    (userref.RefError, one line, if the reference names neither)."""
    obj = userref.load(reference, "class or function")
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise userref.RefError(f"{reference!r} is a class but not an nn.Module")
    return obj


def build(builder, reference):
    """builder(), which must be an nn.Module (UserCodeError if it raises or is not)."""
    model = call(f"{reference}()", builder)
    if not isinstance(model, nn.Module):
        raise UserCodeError(f"{reference}() returned {userref.a_kind(model)}, not an nn.Module")
    return model


def leaves(model):
    """{module: name} of the modules without children, as named_modules() names them ('' is the model)."""
    return {m: (name or "(model)") for name, m in model.named_modules() if next(m.children(), None) is None}


def tensors(out):
    """The floating and complex tensors in a module's output: a tensor, or tuples, lists and dicts of them."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() or out.is_complex() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in tensors(item)]
    return []


@dataclass(frozen=True)
class Call:
    """One call of a leaf module, in the order the forward pass reaches it."""

    layer: str  # named_modules()'s name
    call: int  # 1 for the first call of the module, 2 for the second, ...
    type: str  # the module's class name
    activation: bool  # an activation module (torch.nn.modules.activation, or a class named like one)
    gain_from: str  # the activation whose gain a scheme gives this Linear/Conv ('' for other modules)
    leak: float = 0.01  # that activation's negative slope, when it is a LeakyReLU


@dataclass(frozen=True)
class Plan:
    """What the check pass found, at PROBE_BATCH: the calls in order, and sizes for the memory estimate."""

    calls: tuple
    param_bytes: int
    itemsize: int
    largest_per_row: float  # elements of the largest leaf output, per input row
    total_per_row: float  # elements of every leaf output, per input row (what backward keeps)


def _is_activation(module):
    kind = type(module)
    return kind.__module__ == "torch.nn.modules.activation" or any(
        word in kind.__name__.lower() for word in ("relu", "tanh", "sigmoid", "gelu", "silu", "swish")
    )


def _gain_from(order, i):
    """(name, negative slope) of the activation after the i-th call (a Linear/Conv), norms, dropout and
    pooling skipped, whose gain the scheme uses; linear if a weighted layer or an activation without a gain
    comes first."""
    for module, _ in order[i + 1 :]:
        if type(module) in ACT_GAINS:
            return ACT_GAINS[type(module)], getattr(module, "negative_slope", 0.01)
        weighted = next(module.parameters(recurse=False), None) is not None
        if not (isinstance(module, NORMS) or not (weighted or _is_activation(module))):
            break
    return "linear", 0.01


def _calls(model, run):
    """[(module, name)] of the leaf calls run() makes, in order (hooks removed after)."""
    names, order = leaves(model), []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append((m, names[m]))) for m in names]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _call_table(order):
    counts, out = {}, []
    for i, (module, name) in enumerate(order):
        counts[name] = counts.get(name, 0) + 1
        gain, leak = _gain_from(order, i) if isinstance(module, WEIGHTED) else ("", 0.01)
        out.append(Call(name, counts[name], type(module).__name__, _is_activation(module), gain, leak))
    return tuple(out)


def plan(cfg):
    """Build the model once and run it at PROBE_BATCH rows under no_grad: the calls in order and the sizes.
    userref.RefError for a bad reference; UserCodeError (its `stage` says which) if building or the forward
    pass raises: the input shape is the usual culprit."""
    builder = load_builder(cfg.model)
    with _seeded(cfg.seed):
        try:
            model = build(builder, cfg.model).to(getattr(torch, cfg.dtype))
        except UserCodeError as e:
            e.stage = "model"
            raise
        rows = min(cfg.input_shape[0], PROBE_BATCH)
        x = torch.randn(rows, *cfg.input_shape[1:], dtype=getattr(torch, cfg.dtype))
        sizes = []
        names = leaves(model)

        def size(module, inputs, out):  # a complex element is two numbers
            sizes.append(sum(t.numel() * (1 + t.is_complex()) for t in tensors(out)))

        hooks = [m.register_forward_hook(size) for m in names]
        try:
            with torch.no_grad():
                order = _calls(model, lambda: _forward(model, x, cfg, "forward", stage="input"))
        finally:
            for hook in hooks:
                hook.remove()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return Plan(_call_table(order), params, x.element_size(), max(sizes, default=0) / rows, sum(sizes) / rows)


def _forward(model, x, cfg, what, stage="run"):
    try:
        return call(f"{cfg.model}() {what} on {'x'.join(map(str, x.shape))}", model, x)
    except UserCodeError as e:
        e.stage = stage
        raise


@contextlib.contextmanager
def _seeded(seed):
    """torch's global generator seeded for the user's code, and restored after: fnd's stays its own."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def reinit(model, calls, scheme_name, mode, scale, gen):
    """Every Linear/Conv weight drawn anew by the scheme, with the gain of the activation after it (biases
    kept).

    A weight (out, in, *k) is drawn as the scheme's (fan_in, out) matrix, transposed and reshaped, as
    torch.nn.init does (fan_in = in * prod(k)); a scheme whose variance depends on fan_out is rescaled to
    torch's fan_out = out * prod(k).
    """
    scheme = resolve_scheme(scheme_name)
    first = {c.layer: c for c in reversed(calls) if c.gain_from}  # a module called twice: its first call's
    named = dict(model.named_modules())
    with torch.no_grad():
        for layer, c in reversed(first.items()):
            w = named["" if layer == "(model)" else layer].weight
            fan_in, receptive = w[0].numel(), w[0, 0].numel()
            params = InitParams(make_act(c.gain_from, c.leak), scale, mode)
            drawn = scheme.init(fan_in, w.shape[0], params, gen, torch.float64)  # (fan_in, out)
            if scheme.variance is not None and scheme.kappa_shift == 0 and receptive > 1:
                drawn *= math.sqrt(
                    scheme.variance(fan_in, w.shape[0] * receptive, params)
                    / scheme.variance(fan_in, w.shape[0], params)
                )
            w.copy_(drawn.t().reshape(w.shape))


def histogram(t):
    """Counts of log10|x| over HIST_RANGE in HIST_BINS bins; zeros in the first bin, inf and nan in the
    last."""
    return log10_histogram(log10_abs(real(t).flatten()), *HIST_RANGE, HIST_BINS)


def units(module):
    """The weight rows that make one output feature each: a Linear's out_features, a Conv's out_channels,
    another module's weight rows (0 without a weight matrix); diagnose.jump_sd takes its gain's noise from
    them."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels
    weight = getattr(module, "weight", None)
    return weight.shape[0] if isinstance(weight, torch.Tensor) and weight.dim() >= 2 else 0


def mean_square(ts):
    """E[x^2] over the floating tensors ts in float64 (nan for none): a call's input, beside its output's."""
    parts = [real(t).flatten() for t in ts]
    n = sum(p.numel() for p in parts)
    return sum((p * p).sum().item() for p in parts) / n if n else math.nan


class Recorder:
    """Forward hooks on every leaf module (a pre-hook takes the input's m2 before an in-place module
    overwrites it), and, with backward, a hook on each output tensor for its gradient."""

    def __init__(self, model, backward, histograms):
        self.names, self.backward, self.histograms = leaves(model), backward, histograms
        self.sums, self.kinds, self.hist, self.counts, self.inputs, self.pending = {}, {}, {}, {}, {}, {}
        self.handles = [m.register_forward_pre_hook(self._before) for m in self.names]
        self.handles += [m.register_forward_hook(self._hook) for m in self.names]

    def _before(self, module, inputs):
        self.pending.setdefault(module, []).append(mean_square(tensors(inputs)))

    def _hook(self, module, inputs, out):
        name = self.names[module]
        self.counts[name] = self.counts.get(name, 0) + 1
        key = (name, self.counts[name])
        self.kinds[key] = (type(module).__name__, _is_activation(module))
        self.inputs[key] = (self.pending[module].pop(), units(module))
        sums = self.sums[key] = Sums(SATURATING.get(type(module)))
        for t in tensors(out):
            sums.add(t)
            if self.histograms:
                self.hist[key] = self.hist.get(key, 0) + histogram(t)
            if self.backward and t.requires_grad:
                t.register_hook(sums.add_grad)

    def remove(self):
        for handle in self.handles:
            handle.remove()


def run_seed(builder, cfg, calls, seed):
    """One network: built, re-initialised by the scheme, run forward (and backward) with the recorder.

    Returns (rows: the input's, then each leaf call's in forward order; parameter rows; histograms or None).
    """
    dtype = getattr(torch, cfg.dtype)
    with _seeded(seed):
        model = build(builder, cfg.model).to(dtype)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*cfg.input_shape, generator=gen, dtype=dtype)  # (B, ...), the input
    if cfg.scheme != "keep":
        reinit(model, calls, cfg.scheme, cfg.mode, cfg.scale, gen)
    x.requires_grad_(cfg.backward)
    recorder = Recorder(model, cfg.backward, cfg.histograms and seed == cfg.seed)
    inputs = Sums(None)
    inputs.add(x)
    try:
        with torch.set_grad_enabled(cfg.backward):
            out = _forward(model, x, cfg, "forward")
            if cfg.backward:
                outs = [t for t in tensors(out) if t.requires_grad]
                if not outs:
                    raise UserCodeError(
                        f"{cfg.model}()'s output does not depend on its parameters or input: "
                        "nothing to push a gradient back through"
                    )
                grads = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in outs]  # E|g|^2 = 1
                call(f"{cfg.model}() backward", torch.autograd.backward, outs, grads)
                inputs.add_grad(x.grad)
    finally:
        recorder.remove()
    gains = {(c.layer, c.call): c.gain_from for c in calls}
    rows = [
        {
            "layer": "input",
            "call": 1,
            "type": "input",
            "activation": False,
            "gain_from": "",
            **inputs.stats(),
            "in_m2": math.nan,
            "units": 0,
        }
    ]
    for key, sums in recorder.sums.items():
        kind, activation = recorder.kinds[key]
        in_m2, rows_of_weights = recorder.inputs[key]
        rows.append(
            {
                "layer": key[0],
                "call": key[1],
                "type": kind,
                "activation": activation,
                "gain_from": gains.get(key, "") if cfg.scheme != "keep" else "",
                **sums.stats(),
                "in_m2": in_m2,
                "units": rows_of_weights,
            }
        )
    params = {name: _param_row(name, p) for name, p in model.named_parameters()} if cfg.backward else {}
    for row in rows if cfg.backward else []:
        weight = params.get("weight" if row["layer"] == "(model)" else f"{row['layer']}.weight", {})
        row.update(
            weight_grad_std=weight.get("grad_std", math.nan),
            grad_data_ratio=weight.get("grad_data_ratio", math.nan),
        )
    hist = None
    if recorder.histograms:
        counts = (recorder.hist.get(key, np.zeros(HIST_BINS)) for key in recorder.sums)
        hist = np.stack([histogram(x), *counts])
    return rows, list(params.values()), hist


def _param_row(name, p):
    """A parameter's std, its gradient's std, and grad:data, std(grad) / std(W) (Karpathy's ratio, without
    lr)."""
    data = p.detach().double()
    std = data.std().item() if p.numel() > 1 else math.nan
    g = p.grad.detach().double() if p.grad is not None else None
    g_std = (g.std().item() if p.numel() > 1 else math.nan) if g is not None else math.nan
    return {
        "parameter": name,
        "shape": "x".join(map(str, p.shape)),
        "std": std,
        "grad_std": g_std,
        "grad_data_ratio": g_std / std if std and math.isfinite(std) else math.nan,
    }
