"""Every hand-written backward against torch autograd (float64, tight), including the chapter's fragile
cases."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fndcli.backprop import reference
from fndcli.backprop.bridge import LinearLayer, MyRelu
from fndcli.backprop.model import MLP, MSE, CrossEntropy, Linear, ReLU, ShapeError, init_mlp
from fndcli.backprop.usermodel import UserModel, load_class

F64 = torch.float64
TIGHT = dict(rtol=1e-12, atol=1e-14)
sizes = st.integers(1, 7)


def _leaf(t):
    return t.detach().clone().requires_grad_()


@settings(max_examples=30, deadline=None)
@given(n=sizes, i=sizes, o=sizes, seed=st.integers(0, 9999), contiguous=st.booleans())
def test_linear_backward_matches_autograd(n, i, o, seed, contiguous):
    gen = torch.Generator().manual_seed(seed)
    x, w, b, g = (torch.randn(*s, generator=gen, dtype=F64) for s in [(n, i), (i, o), (o,), (n, o)])
    if not contiguous:
        x = x.t().contiguous().t()  # same values, column-major
    lin = Linear(w, b)
    out = lin.forward(x)
    gx = lin.backward(g)
    xr, wr, br = _leaf(x), _leaf(w), _leaf(b)
    (xr @ wr + br).backward(g)
    torch.testing.assert_close(out, (x @ w + b), **TIGHT)
    for ours, ref in [(gx, xr.grad), (lin.w.grad, wr.grad), (lin.b.grad, br.grad)]:
        torch.testing.assert_close(ours, ref, **TIGHT)


@settings(max_examples=30, deadline=None)
@given(n=sizes, k=sizes, seed=st.integers(0, 9999))
def test_relu_backward_matches_torch_relu_including_exact_zeros(n, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=gen, dtype=F64)
    x[0, 0] = 0.0  # the kink: torch.relu's gradient there is 0, and so is ours
    g = torch.randn(n, k, generator=gen, dtype=F64)
    relu = ReLU()
    out = relu.forward(x)
    xr = _leaf(x)
    torch.relu(xr).backward(g)
    assert torch.equal(out, torch.relu(x)) and torch.equal(relu.backward(g), xr.grad)


@pytest.mark.parametrize(
    "n,k,target_shape", [(5, 1, (5,)), (5, 1, (5, 1)), (4, 3, (4, 3)), (1, 1, (1,)), (1, 4, (1, 4))]
)
def test_mse_averages_over_all_elements(n, k, target_shape):
    """The chapter's Mse squeezes: (N, 1) against (N,) is fine, but k > 1 or a (N, 1) target breaks it."""
    gen = torch.Generator().manual_seed(0)
    pred, target = (
        torch.randn(n, k, generator=gen, dtype=F64),
        torch.randn(*target_shape, generator=gen, dtype=F64),
    )
    mse = MSE()
    loss = mse.forward(pred, target)
    pr = _leaf(pred)
    ref = F.mse_loss(pr, target.view(n, k))
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), **TIGHT)
    torch.testing.assert_close(mse.backward(), pr.grad, **TIGHT)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("n,c", [(6, 4), (1, 3), (3, 2)])
def test_cross_entropy_matches_autograd_and_is_stable(n, c, soft):
    gen = torch.Generator().manual_seed(1)
    # exp(1000) overflows without log-sum-exp
    logits = torch.randn(n, c, generator=gen, dtype=F64) * 50 + 1000
    target = (
        torch.softmax(torch.randn(n, c, generator=gen, dtype=F64), 1)
        if soft
        else torch.randint(0, c, (n,), generator=gen)
    )
    ce = CrossEntropy()
    loss = ce.forward(logits, target)
    lr = _leaf(logits)
    ref = F.cross_entropy(lr, target)
    ref.backward()
    assert math.isfinite(loss.item())
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-12, atol=1e-12)
    # logits near 1000 carry absolute rounding of about 1000 * eps = 2e-13 into log-softmax
    torch.testing.assert_close(ce.backward(), lr.grad, rtol=1e-9, atol=1e-12)


def _model_grads_vs_autograd(model, x, target, loss_name):
    """The hand-written model's loss and gradients, and the autograd reference's
    (fndcli.backprop.reference)."""
    model.zero_grad()
    loss = model.loss(x, target)
    gx = model.backward()
    params = [p.value for _, p in model.named_params()]
    twin = reference.twin_of(params[0::2], params[1::2])
    xr = _leaf(x)
    ref = reference.loss(reference.forward(twin, xr)[0], target, loss_name)
    ref.backward()
    ref_grads = [g for _, w_grad, _, b_grad in reference.chapter_params(twin) for g in (w_grad, b_grad)]
    return loss, gx, ref, xr, ref_grads


@pytest.mark.parametrize("dtype,tol", [(torch.float64, TIGHT), (torch.float32, dict(rtol=1e-5, atol=1e-6))])
@pytest.mark.parametrize(
    "sizes,batch,loss_name",
    [
        ([100, 50, 1], 200, "mse"),
        ([7, 5, 4, 3], 1, "mse"),
        ([6, 8, 5], 9, "cross-entropy"),
        ([3, 2, 2], 1, "cross-entropy"),
    ],
)
def test_mlp_matches_autograd(sizes, batch, loss_name, dtype, tol):
    gen = torch.Generator().manual_seed(3)
    model = init_mlp(sizes, "kaiming", loss_name, gen, dtype)
    x = torch.randn(batch, sizes[0], generator=gen, dtype=dtype).t().contiguous().t()  # non-contiguous input
    target = (
        torch.randint(0, sizes[-1], (batch,), generator=gen)
        if loss_name == "cross-entropy"
        else torch.randn(batch, generator=gen, dtype=dtype)
        if sizes[-1] == 1
        else torch.randn(batch, sizes[-1], generator=gen, dtype=dtype)
    )
    loss, gx, ref, xr, ref_grads = _model_grads_vs_autograd(model, x, target, loss_name)
    torch.testing.assert_close(loss, ref.detach(), **tol)
    torch.testing.assert_close(gx, xr.grad, **tol)
    for (_, p), ref_grad in zip(model.named_params(), ref_grads):
        assert p.grad.dtype == dtype
        torch.testing.assert_close(p.grad, ref_grad, **tol)


def test_two_consumers_accumulate():
    """A layer used twice (shared weights) and a tensor fed to two layers both sum their gradients."""
    gen = torch.Generator().manual_seed(4)
    w, b = torch.randn(4, 4, generator=gen, dtype=F64), torch.randn(4, generator=gen, dtype=F64)
    x = torch.randn(3, 4, generator=gen, dtype=F64)
    shared, relu, loss = Linear(w, b), ReLU(), MSE()
    h = shared.forward(x)
    y = shared.forward(relu.forward(h)) + h  # shared used twice; h has two consumers
    target = torch.zeros(3, 4, dtype=F64)
    loss.forward(y, target)
    g = loss.backward()
    g_h = g + relu.backward(shared.backward(g))  # both consumers' gradients, summed
    gx = shared.backward(g_h)
    xr, wr, br = _leaf(x), _leaf(w), _leaf(b)
    hr = xr @ wr + br
    F.mse_loss(torch.relu(hr) @ wr + br + hr, target).backward()
    for ours, ref in [(gx, xr.grad), (shared.w.grad, wr.grad), (shared.b.grad, br.grad)]:
        torch.testing.assert_close(ours, ref, **TIGHT)


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda: Linear(torch.ones(3, 4), torch.ones(4)).forward(torch.ones(2, 5)), r"\(2, 5\).*\(3, 4\)"),
        (lambda: Linear(torch.ones(3, 4), torch.ones(3)), r"\(3,\).*\(3, 4\)"),
        (lambda: MSE().forward(torch.ones(4, 2), torch.ones(4, 3)), r"\(4, 2\).*\(4, 3\)"),
        (lambda: MSE().forward(torch.ones(4, 2), torch.ones(4)), r"\(4, 2\).*\(4,\)"),
        (
            lambda: CrossEntropy().forward(torch.ones(4, 2), torch.ones(3, dtype=torch.long)),
            r"\(4, 2\).*\(3,\)",
        ),
    ],
)
def test_shape_mismatch_names_both_shapes(make, fragment):
    with pytest.raises(ShapeError, match=fragment):
        make()


def test_myrelu_matches_torch_relu():
    x = torch.randn(6, 5, dtype=F64)
    x[0, :2] = 0.0
    a, b = _leaf(x), _leaf(x)
    g = torch.randn(6, 5, dtype=F64)
    MyRelu.apply(a).backward(g)
    torch.relu(b).backward(g)
    assert torch.equal(a.grad, b.grad)
    assert torch.autograd.gradcheck(MyRelu.apply, (_leaf(x + 0.1 * torch.sign(x) + 0.1 * (x == 0)),))


def test_linear_layer_matches_nn_linear_and_chapter_init():
    gen = torch.Generator().manual_seed(5)
    layer = LinearLayer(400, 300, generator=gen, dtype=F64)
    assert layer.weight.shape == (300, 400) and layer.weight.std().item() == pytest.approx(
        math.sqrt(2 / 400), rel=0.02
    )
    assert torch.equal(layer.bias, torch.zeros(300, dtype=F64))
    ref = torch.nn.Linear(400, 300, dtype=F64)
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(torch.randn(300, dtype=F64))
        layer.bias.copy_(ref.bias)
    x = torch.randn(8, 400, dtype=F64)
    g = torch.randn(8, 300, dtype=F64)
    layer(x).backward(g)
    ref(x).backward(g)
    torch.testing.assert_close(layer(x), ref(x), **TIGHT)
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad, **TIGHT)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad, **TIGHT)


def test_lsuv_model_init_needs_a_batch():
    with pytest.raises(ValueError, match="needs a batch"):
        init_mlp([4, 3, 1], "lsuv")
    assert isinstance(init_mlp([4, 3, 1], "lsuv", x=torch.randn(16, 4)), MLP)


def test_user_model_forward_is_the_reference_forward():
    """UserModel predicts as Linear -> ReLU -> Linear (no ReLU on the input), and the user's loss is their
    MSE."""
    chapter = load_class(f"{Path(__file__).parent.parent / 'examples' / 'chapter_model.py'}:Model")
    gen = torch.Generator().manual_seed(6)
    weights = [torch.randn(4, 3, generator=gen, dtype=F64), torch.randn(3, 1, generator=gen, dtype=F64)]
    biases = [torch.randn(3, generator=gen, dtype=F64), torch.randn(1, generator=gen, dtype=F64)]
    # x has negatives
    x, y = (
        torch.randn(5, 4, generator=gen, dtype=F64),
        torch.randn(5, generator=gen, dtype=F64),
    )
    model = UserModel(chapter, weights, biases)
    ref, _ = reference.forward(reference.twin_of(weights, biases), x)
    assert torch.allclose(model.forward(x), ref, **TIGHT)
    assert torch.allclose(model.loss(x, y), F.mse_loss(ref.squeeze(1), y), **TIGHT)
