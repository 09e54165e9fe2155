"""The chapter's model with hand-written backward passes (fastbook ch. 17), made robust.

Each layer's `forward` caches what its backward needs; `backward(grad_out)` returns the
gradient for its input and *adds* to its parameters' gradients. Both rules make a tensor
with two consumers come out right: a layer called twice (shared weights) pops its caches in
reverse order and accumulates, and a caller that feeds one tensor to two layers sums the
two gradients it gets back. The chapter instead assigns `inp.g = ...`, which overwrites.

Where the chapter's code (fastbook ch. 17) is fragile, this is not (docs/gradcheck.md, each with its test):
- MSE averages over all N*k elements, and takes targets shaped (N,) or (N, k);
- ReLU's gradient at exactly 0 is 0, as torch.relu's (autograd of clamp_min(0.) gives 1);
- `Linear.backward` reads its own cached input (a version of the chapter's reads
  `self.inp`, which its class never sets);
- shapes are checked and a mismatch names both shapes.
"""

from dataclasses import dataclass

import torch

from fndcli.init.schemes import InitParams, lsuv, make_act, resolve_scheme


class ShapeError(ValueError):
    """Two tensors that must agree in shape do not."""


@dataclass
class Param:
    """A parameter's value and the gradient accumulated into it."""

    value: torch.Tensor
    grad: torch.Tensor

    @classmethod
    def of(cls, value):
        return cls(value, torch.zeros_like(value))

    def zero_grad(self):
        self.grad.zero_()


class Linear:
    """out = x @ w + b, with w (n_in, n_out) in the chapter's layout."""

    def __init__(self, w, b):
        if w.dim() != 2 or b.shape != (w.shape[1],):
            raise ShapeError(f"linear: bias {tuple(b.shape)} does not fit weight {tuple(w.shape)}")
        self.w, self.b = Param.of(w), Param.of(b)
        self._inputs = []

    @property
    def params(self):
        return [self.w, self.b]

    def forward(self, x, keep=True):
        """keep=False for a forward pass that no backward will follow (evaluation): nothing is cached."""
        if x.dim() != 2 or x.shape[1] != self.w.value.shape[0]:
            raise ShapeError(
                f"linear: input {tuple(x.shape)} does not match weight {tuple(self.w.value.shape)}"
            )
        if keep:
            self._inputs.append(x)
        return torch.addmm(self.b.value, x, self.w.value)  # b + (N, n_in) @ (n_in, n_out) -> (N, n_out)

    def backward(self, grad_out, input_grad=True):
        """Add to w.grad and b.grad; return the input's gradient (None if input_grad is False)."""
        x = self._inputs.pop()
        self.w.grad.addmm_(x.t(), grad_out)  # += (n_in, N) @ (N, n_out), one fused GEMM
        self.b.grad += grad_out.sum(0)
        return grad_out @ self.w.value.t() if input_grad else None  # (N, n_out) @ (n_out, n_in)


class ReLU:
    """max(x, 0); the gradient at exactly 0 is 0, as torch.relu's."""

    params = []

    def __init__(self):
        self._masks = []

    def forward(self, x, keep=True):
        mask = x > 0
        if keep:
            self._masks.append(mask)
        return x * mask  # exact zeros, x's dtype, any memory layout

    def backward(self, grad_out):
        return grad_out * self._masks.pop()


class Tanh:
    """tanh(x); its gradient 1 - tanh(x)^2, from the output it cached."""

    params = []

    def __init__(self):
        self._masks = []  # the outputs, kept as ReLU keeps its masks (MLP.cached counts them)

    def forward(self, x, keep=True):
        out = torch.tanh(x)
        if keep:
            self._masks.append(out)
        return out

    def backward(self, grad_out):
        out = self._masks.pop()
        return grad_out * (1 - out * out)


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}  # the hidden layers' activation (train --act)


def _check_same_shape(kind, pred, target):
    if pred.shape != target.shape:
        raise ShapeError(f"{kind}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")


class MSE:
    """Mean of squared errors over all N*k elements. Targets (N,) are taken as (N, 1)."""

    def forward(self, pred, target):
        if target.dim() == 1 and pred.dim() == 2 and pred.shape[1] == 1:
            target = target.unsqueeze(1)  # (N,) -> (N, 1), never broadcast to (N, N)
        _check_same_shape("mse", pred, target)
        self._diff = pred - target
        return self._diff.pow(2).mean()

    def backward(self, grad_out=1.0):
        return grad_out * 2 * self._diff / self._diff.numel()


class CrossEntropy:
    """Softmax cross-entropy, stable through log-sum-exp, averaged over the batch.

    Targets are class indices (N,) or class probabilities (N, C).
    """

    def forward(self, logits, target):
        if logits.dim() != 2:
            raise ShapeError(f"cross-entropy: logits must be (N, C), got {tuple(logits.shape)}")
        n, c = logits.shape
        if target.dim() == 1:
            if target.shape[0] != n:
                raise ShapeError(
                    f"cross-entropy: logits {tuple(logits.shape)} and target {tuple(target.shape)} differ"
                )
            target = torch.nn.functional.one_hot(target.long(), c).to(logits.dtype)  # (N,) -> (N, C)
        _check_same_shape("cross-entropy", logits, target)
        top = logits.max(dim=1, keepdim=True).values  # subtract the max: exp never overflows
        lse = top + (logits - top).exp().sum(dim=1, keepdim=True).log()  # (N, 1) log-sum-exp
        self._softmax = (logits - lse).exp()
        self._target = target
        return -(target * (logits - lse)).sum() / n

    def backward(self, grad_out=1.0):
        n = self._target.shape[0]
        # d/dlogits of -sum_c p_c log softmax_c = softmax * sum_c p_c - p
        return grad_out * (self._softmax * self._target.sum(1, keepdim=True) - self._target) / n


LOSSES = {"mse": MSE, "cross-entropy": CrossEntropy}


class MLP:
    """Linear -> ReLU (or tanh) -> ... -> Linear, with a loss; sizes = [n_in, *hidden, n_out].

    `forward` keeps every layer's output and `backward` every gradient, by name, so
    gradcheck can compare each intermediate: 'x', 'lin1', 'relu1', ..., 'out' (the last
    Linear's output), and parameters 'lin1.w', 'lin1.b', ...
    """

    def __init__(self, weights, biases, loss="mse", act="relu"):
        self.layers, self.names = [], []
        for i, (w, b) in enumerate(zip(weights, biases), start=1):
            if i > 1:
                self.layers.append(ACTIVATIONS[act]())
                self.names.append(f"{act}{i - 1}")
            self.layers.append(Linear(w, b))
            self.names.append(f"lin{i}")
        self.names[-1] = "out"
        self.loss_fn = LOSSES[loss]()
        self.outputs, self.grads = {}, {}

    @property
    def linears(self):
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def named_params(self):
        """[(name, Param)] in layer order: lin1.w, lin1.b, lin2.w, ..."""
        return [(f"lin{i}.{p}", getattr(lin, p)) for i, lin in enumerate(self.linears, start=1) for p in "wb"]

    def forward(self, x, keep=True):
        """The output (N, n_out). keep=False evaluates: no layer caches what backward would pop,
        so evaluation passes do not pile up (they would grow memory every epoch)."""
        self.outputs = {"x": x}
        for name, layer in zip(self.names, self.layers):
            x = layer.forward(x, keep)
            self.outputs[name] = x
        return x

    def loss(self, x, target, keep=True):
        return self.loss_fn.forward(self.forward(x, keep), target)

    @property
    def cached(self):
        """How many forward passes' caches wait for a backward, summed over layers (0 between steps)."""
        return sum(
            len(layer._inputs) if isinstance(layer, Linear) else len(layer._masks) for layer in self.layers
        )

    def backward(self, input_grad=True):
        """Back from the loss; parameters' gradients accumulate, so call zero_grad between steps.

        Returns the gradient for the input x; training skips it (input_grad=False), as
        autograd does for an input that does not require grad: it is a whole extra GEMM.
        """
        g = self.loss_fn.backward()
        self.grads = {"out": g}
        for name, layer in zip(reversed(self.names[:-1]), reversed(self.layers[1:])):
            g = layer.backward(g)
            self.grads[name] = g
        self.grads["x"] = self.layers[0].backward(g, input_grad)
        return self.grads["x"]

    def zero_grad(self):
        for _, p in self.named_params():
            p.zero_grad()


def init_mlp(
    sizes,
    scheme="kaiming",
    loss="mse",
    gen=None,
    dtype=torch.float32,
    x=None,
    leak=0.01,
    device="cpu",
    act="relu",
):
    """An MLP with weights from init-sweep's registry and zero biases, on `device`.

    Each layer's scheme uses the activation that follows it (ReLU for hidden layers,
    linear for the last). A data-driven scheme (lsuv) is rescaled on the batch `x`.
    Weights are drawn on the CPU from the seeded generator, so a seed gives the same
    model on every device.
    """
    scheme = resolve_scheme(scheme)
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    acts = [make_act(act, leak)] * (len(sizes) - 2) + [make_act("linear")]
    weights = [
        scheme.init(fi, fo, InitParams(act), gen, dtype) for fi, fo, act in zip(sizes, sizes[1:], acts)
    ]
    if scheme.data_driven:
        if x is None:
            raise ValueError(f"init scheme {scheme.name!r} needs a batch to rescale on")
        lsuv(weights, x.cpu(), acts)
    biases = [torch.zeros(fo, dtype=dtype) for fo in sizes[1:]]
    return MLP([w.to(device) for w in weights], [b.to(device) for b in biases], loss, act)
