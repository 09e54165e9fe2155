"""The user's own hand-written model and layers, the chapter's way (fastbook ch. 17), under fnd's checks.

The protocol:
- a model is built from its tensors, `Model(w1, b1, w2, b2, ...)`, weights in the chapter's
  layout (n_in, n_out);
- `loss = model(x, targ)` runs the forward pass;
- `model.backward()` stores gradients in `.g` attributes: on `x` and on every tensor it was given.

Layers follow it too: `Lin(w, b)`, `Relu()`, `Mse()`, called as `out = layer(inp)` (a loss:
`layer(inp, targ)`), then `layer.backward()` reads `out.g` and sets `inp.g` (and `w.g`, `b.g`).
The chapter's `LayerFunction` base (`forward`/`bwd`) is the same protocol.

`UserModel` gives a user's class the interface of fnd's own MLP (`loss`, `backward`,
`named_params`, `zero_grad`, `forward`), so gradcheck and train run it like their own.
"""
import inspect

import torch

from fndcli import userref
from fndcli.model import Param
from fndcli.numerics import first_line


class UserCodeError(Exception):
    """The user's code raised, or broke the protocol; `traceback` holds the user's frames."""

    def __init__(self, message, traceback=""):
        super().__init__(message)
        self.traceback = traceback


def call(what, fn, *args):
    """fn(*args), with an exception from the user's code turned into UserCodeError naming `what`."""
    try:
        return fn(*args)
    except Exception as e:
        raise UserCodeError(f"{what} raised {type(e).__name__}: {first_line(e)}",
                            userref.user_traceback(e)) from e


def names(n_layers):
    """The parameters' names, as fnd's MLP names them: lin1.w, lin1.b, lin2.w, ..."""
    return [f"lin{i}.{p}" for i in range(1, n_layers + 1) for p in "wb"]


def gradient(tensor, name):
    """The `.g` a backward stored on `tensor`; UserCodeError if there is none."""
    g = getattr(tensor, "g", None)
    if g is None:
        raise UserCodeError(f"no .g on {name} after backward(): the protocol stores every gradient in .g")
    if not isinstance(g, torch.Tensor):
        raise UserCodeError(f".g on {name} is a {type(g).__name__}, not a tensor")
    return g


class UserModel:
    """The user's model class, built from fnd's tensors, behind the interface of `fndcli.model.MLP`."""

    def __init__(self, cls, weights, biases, name="model"):
        self.name = name
        tensors = [t for pair in zip(weights, biases) for t in pair]
        self._params = [Param(t, None) for t in tensors]
        self.names = []  # no named intermediates: the protocol does not expose them
        self.model = call(f"{name}(w1, b1, ...)", cls, *tensors)
        self.outputs, self._x = {}, None
        self.weights, self.biases = list(weights), list(biases)

    def named_params(self):
        return list(zip(names(len(self.weights)), self._params))

    def loss(self, x, target, keep=True):
        self._x = x
        loss = call(f"{self.name}(x, targ)", self.model, x, target)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise UserCodeError(f"{self.name}(x, targ) returned {type(loss).__name__}, not a scalar tensor loss")
        self.outputs = {"out": self.forward(x)}
        return loss.reshape(())

    def forward(self, x, keep=False):
        """The output (N, n_out) from the current weights, by fnd's reference arithmetic: the protocol
        returns only the loss, and metrics need the predictions."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b, torch.relu(h) if i else h, w)
        return h

    def backward(self, input_grad=True):
        call(f"{self.name}.backward()", self.model.backward)
        for (name, p) in self.named_params():
            p.grad = gradient(p.value, name)
        return gradient(self._x, "x") if input_grad else None

    def zero_grad(self):
        for t in [self._x, *(p.value for p in self._params)]:
            if t is not None and hasattr(t, "g"):
                del t.g
        for p in self._params:
            p.grad = None

    @property
    def cached(self):
        return 0


class UserTwin:
    """The user's class run under autograd: its own forward, differentiated by torch (train's twin)."""

    def __init__(self, cls, weights, biases):
        self.leaves = [t.detach().clone().requires_grad_() for pair in zip(weights, biases) for t in pair]
        self.model = call("model(w1, b1, ...) (the autograd twin)", cls, *self.leaves)

    def parameters(self):
        return self.leaves

    def loss(self, x, y):
        return call("model(x, targ) (the autograd twin)", self.model, x, y).reshape(())

    def chapter_params(self):
        return [t.detach() for t in self.leaves]


def load_class(reference):
    """The user's class a reference names (userref.RefError if it cannot be loaded)."""
    return userref.load(reference, "class")


def _arity(fn):
    """Positional parameters of fn besides self; None if it takes *args."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) - 1


def layer_kind(cls):
    """('linear' | 'free', 'layer' | 'loss') of a layer class, from its signatures: a constructor of
    (w, b) is Lin-like, of nothing parameter-free; a call (or LayerFunction forward) of (inp, targ) is a loss."""
    init = cls.__init__ if "__init__" in vars(cls) or any("__init__" in vars(b) for b in cls.__mro__[1:-1]) else None
    n_init = _arity(init) if init is not None else 0
    call_arity = _arity(cls.__call__)
    if call_arity is None and hasattr(cls, "forward"):
        call_arity = _arity(cls.forward)
    if n_init not in (0, 2) or call_arity not in (1, 2):
        raise UserCodeError(f"{cls.__name__} is neither Lin-like (w, b) nor parameter-free, called with (inp) or "
                            f"(inp, targ): its constructor takes {n_init} and its call {call_arity} argument(s)")
    return ("linear" if n_init == 2 else "free"), ("loss" if call_arity == 2 else "layer")
