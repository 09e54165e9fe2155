"""The chapter's PyTorch bridge, and autograd wrappers around the hand-written layers.

`MyRelu` and `LinearLayer` are the chapter's: a torch.autograd.Function with its own
backward, and an nn.Module with the chapter's Kaiming init. `HandWritten` runs any fnd
layer inside autograd, with the layer's own backward as the Function's backward, so
torch.autograd.gradcheck can compare it with finite differences.
"""

import math

import torch
from torch import nn


class MyRelu(torch.autograd.Function):
    """ReLU as an autograd.Function (fastbook ch. 17); gradient 0 at exactly 0, as torch.relu."""

    @staticmethod
    def forward(ctx, i):
        ctx.save_for_backward(i)
        return i.clamp_min(0.0)

    @staticmethod
    def backward(ctx, grad_output):
        (i,) = ctx.saved_tensors
        return grad_output * (i > 0).to(grad_output.dtype)


class LinearLayer(nn.Module):
    """The chapter's linear layer: weight (n_out, n_in) ~ N(0, 2 / n_in), zero bias."""

    def __init__(self, n_in, n_out, generator=None, dtype=torch.float32):
        super().__init__()
        w = torch.randn(n_out, n_in, generator=generator, dtype=dtype) * math.sqrt(2 / n_in)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=dtype))

    def forward(self, x):
        return x @ self.weight.t() + self.bias


class HandWritten(torch.autograd.Function):
    """f(*inputs) computed and differentiated by fnd's own code.

    `build(*inputs)` returns (value, backward) where backward(grad_value) returns one
    gradient per input. gradcheck calls backward many times, and a hand-written layer's
    backward consumes its cache, so each backward call rebuilds the layer from the inputs.
    """

    @staticmethod
    def forward(ctx, build, *inputs):
        ctx.build = build
        ctx.save_for_backward(*inputs)
        return build(*inputs)[0]

    @staticmethod
    def backward(ctx, grad_value):
        _, backward = ctx.build(*ctx.saved_tensors)
        return (None, *backward(grad_value))
