"""The autograd reference for fnd's hand-written MLP, written once: gradcheck, train and the tests use it.

torch's own pieces: nn.Linear (its weight is (out, in), the chapter's (in, out) transposed),
nn.ReLU, F.mse_loss and F.cross_entropy, differentiated by autograd.
"""

import torch
import torch.nn.functional as F
from torch import nn


def twin_of(weights, biases, act="relu"):
    """nn.Sequential Linear -> ReLU (or Tanh) -> ... -> Linear holding copies of the chapter-layout weights
    (in, out)."""
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        if i:
            layers.append(nn.ReLU() if act == "relu" else nn.Tanh())
        layer = nn.Linear(*w.shape, dtype=w.dtype, device=w.device)
        with torch.no_grad():
            layer.weight.copy_(w.t())
            layer.bias.copy_(b)
        layers.append(layer)
    return nn.Sequential(*layers)


def chapter_params(twin):
    """[(w (in, out), b), ...] of the twin, as the hand-written model names them, with their gradients."""
    linears = [layer for layer in twin if isinstance(layer, nn.Linear)]
    return [
        (
            layer.weight.t(),
            None if layer.weight.grad is None else layer.weight.grad.t(),
            layer.bias,
            layer.bias.grad,
        )
        for layer in linears
    ]


def forward(twin, x, keep=False):
    """The output, and with keep=True every intermediate by the hand-written model's names ('lin1',
    'relu1', ..., 'out'), each holding its gradient after backward."""
    acts, h, n = {}, x, sum(isinstance(layer, nn.Linear) for layer in twin)
    linear = 0
    for layer in twin:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            linear += 1
            name = "out" if linear == n else f"lin{linear}"
        else:
            name = f"{type(layer).__name__.lower()}{linear}"
        if keep:
            h.retain_grad()
            acts[name] = h
    return h, acts


def loss(out, target, kind):
    """F.mse_loss over all elements (a target (N,) is taken as (N, 1)), or F.cross_entropy."""
    if kind == "mse":
        return F.mse_loss(out, target.view_as(out) if target.dim() == 1 else target)
    return F.cross_entropy(out, target)


class Twin:
    """fnd's autograd twin of a hand-written MLP: twin_of's nn.Sequential with torch's loss (train)."""

    def __init__(self, weights, biases, kind, act="relu"):
        self.net, self.kind = twin_of(weights, biases, act), kind

    def parameters(self):
        return self.net.parameters()

    def loss(self, x, y):
        return loss(self.net(x), y, self.kind)

    def chapter_params(self):
        """[w1 (in, out), b1, w2, ...], in the order the hand-written model names its parameters."""
        return [t for w, _, b, _ in chapter_params(self.net) for t in (w, b)]


class TorchSGD:
    """torch's own SGD update for the twin: `torch.optim.sgd.sgd`, the function torch.optim.SGD.step calls
    (v = mu * v + g, the first v being g; p -= lr * v), without the optimizer object around it, whose
    param groups import torch._dynamo (2 s a process here) when it is made. The hand-written model's
    update (`train.ManualSGD`) is fnd's; this one stays torch's: the lockstep checks one against the other."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.buffers = [None] * len(self.params)  # torch.optim.SGD's momentum_buffer, per parameter

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        from torch.optim.sgd import sgd

        sgd(
            self.params,
            [p.grad for p in self.params],
            self.buffers,  # filled in place, as SGD.step's state is
            weight_decay=0.0,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
        )
