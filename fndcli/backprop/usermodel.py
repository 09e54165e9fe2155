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
from fndcli.backprop.model import Param
from fndcli.userref import UserCodeError, call


def _returned(value):
    """'None', 'a float', 'a tensor of shape (4, 1)': what the user's code returned, for a message."""
    if value is None:
        return "None"
    return (
        f"a tensor of shape {tuple(value.shape)}"
        if isinstance(value, torch.Tensor)
        else userref.a_kind(value)
    )


def tensor_out(value, what):
    """value, a tensor; UserCodeError if `what` returned anything else."""
    if not isinstance(value, torch.Tensor):
        raise UserCodeError(f"{what} returned {_returned(value)}, not a tensor")
    return value


def scalar_loss(value, what):
    """value as a 0-d tensor; UserCodeError unless `what` returned a one-element tensor (a float or a tuple
    cannot be differentiated, nor compared with the reference's loss)."""
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise UserCodeError(f"{what} returned {_returned(value)}, not a scalar tensor loss")
    return value.reshape(())


def attached(value, what, on):
    """value, which autograd must reach `on` from; UserCodeError if it is detached from the graph."""
    if not value.requires_grad:
        raise UserCodeError(
            f"{what} does not depend on {on}: it is detached from the graph (.item(), torch.tensor(), "
            ".detach() or numpy cut it)"
        )
    return value


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
    """The user's model class, built from fnd's tensors, behind the interface of
    `fndcli.backprop.model.MLP`."""

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
        loss = scalar_loss(call(f"{self.name}(x, targ)", self.model, x, target), f"{self.name}(x, targ)")
        self.outputs = {"out": self.forward(x)}
        return loss

    def forward(self, x, keep=False):
        """The output (N, n_out) from the current weights, by fnd's reference arithmetic: the protocol
        returns only the loss, and metrics need the predictions."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b, torch.relu(h) if i else h, w)
        return h

    def backward(self, input_grad=True):
        call(f"{self.name}.backward()", self.model.backward)
        for name, p in self.named_params():
            p.grad = gradient(p.value, name)
            if p.grad.shape != p.value.shape:  # fnd's SGD subtracts it from the tensor in place
                raise UserCodeError(
                    f".g on {name} has shape {tuple(p.grad.shape)}, not the tensor's {tuple(p.value.shape)}"
                )
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
        what = "model(x, targ) (the autograd twin)"
        loss = scalar_loss(call(what, self.model, x, y), what)
        return attached(loss, f"the loss of {what}", "the parameters") if torch.is_grad_enabled() else loss

    def chapter_params(self):
        return [t.detach() for t in self.leaves]


def load_class(reference):
    """The user's class a reference names (userref.RefError if it cannot be loaded or is not a class)."""
    obj = userref.load(reference, "class")
    if not inspect.isclass(obj):
        raise userref.RefError(f"{reference!r} is {userref.a_kind(obj)}, not a class")
    return obj


def check_model(cls, sizes, dtype):
    """Build the user's model class once, as a run will, from zero tensors of the run's shapes: UserCodeError
    (one line) if its constructor takes other arguments or raises, or what it builds lacks the protocol's call
    or backward."""
    n_layers = len(sizes) - 1
    built = f"{cls.__name__}({', '.join(f'{p}{i}' for i in range(1, n_layers + 1) for p in 'wb')})"
    try:
        inspect.signature(cls).bind(*range(2 * n_layers))
    except TypeError:
        raise UserCodeError(
            f"{cls.__name__}{inspect.signature(cls)} cannot be built as {built}: a model of "
            f"{' -> '.join(map(str, sizes))} is built from its {2 * n_layers} tensors"
        ) from None
    except ValueError:  # no signature to read (a builtin's): building it will tell
        pass
    tensors = [t for n_in, n_out in zip(sizes, sizes[1:]) for t in _zeros(n_in, n_out, dtype)]
    _build(cls, built, tensors, "loss = model(x, targ)")


def check_layer(cls, n_in, n_out, dtype):
    """Build the user's layer class once, as gradcheck will: a Lin-like one from zero tensors w (n_in, n_out)
    and b, a parameter-free one from nothing. UserCodeError (one line) if its signatures fit no layer
    (`layer_kind`), its constructor raises, or what it builds has no backward()."""
    kind, role = layer_kind(cls)
    tensors = _zeros(n_in, n_out, dtype) if kind == "linear" else []
    _build(
        cls,
        f"{cls.__name__}({'w, b' if tensors else ''})",
        tensors,
        "loss = layer(inp, targ)" if role == "loss" else "out = layer(inp)",
    )


def _zeros(n_in, n_out, dtype):
    dtype = getattr(torch, dtype)
    return [
        torch.zeros(n_in, n_out, dtype=dtype),
        torch.zeros(n_out, dtype=dtype),
    ]  # w (n_in, n_out), b (n_out,)


def _build(cls, built, tensors, forward):
    """cls(*tensors), which must raise nothing and give something the protocol can call and run backward()
    on."""
    obj = call(built, cls, *tensors)
    if not callable(obj):
        raise UserCodeError(f"{built} cannot be called: the protocol runs the forward pass as {forward}")
    if not callable(getattr(obj, "backward", None)):
        raise UserCodeError(
            f"{built} has no backward(): the protocol's backward() stores the gradients in .g"
        )


def _own(cls, name):
    """cls's attribute `name` from the class or a base of the user's, not from object or type; None if
    none."""
    return next((vars(k)[name] for k in cls.__mro__[:-1] if name in vars(k)), None)


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
    """('linear' | 'free', 'layer' | 'loss') of a layer class, from its signatures: a constructor of (w, b) is
    Lin-like, of nothing parameter-free; a call (or LayerFunction forward) of (inp, targ) is a loss."""
    init, call_fn = _own(cls, "__init__"), _own(cls, "__call__")
    n_init = _arity(init) if init is not None else 0
    call_arity = _arity(call_fn) if call_fn is not None else None
    if call_arity is None and _own(cls, "forward") is not None:
        call_arity = _arity(cls.forward)
    if n_init not in (0, 2) or call_arity not in (1, 2):
        called = (
            "it defines no __call__"
            if call_fn is None
            else f"its call takes {'any number of' if call_arity is None else call_arity} argument(s)"
        )
        raise UserCodeError(
            f"{cls.__name__} is neither Lin-like (w, b) nor parameter-free, called with (inp) or "
            f"(inp, targ): its constructor takes {n_init} argument(s) and {called}"
        )
    return ("linear" if n_init == 2 else "free"), ("loss" if call_arity == 2 else "layer")
