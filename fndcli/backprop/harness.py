"""What every check of `fnd gradcheck` shares: the row, its rules, the batch, and the two comparisons.

A check is one `CheckRow`: a tensor of ours against its reference, and `passed` by the rule the row names.
`compare` judges a tensor against autograd's; `fd_row` runs `torch.autograd.gradcheck` on a function given
as (value, backward), wrapped by `bridge.HandWritten`, and measures the largest difference from central
differences itself. The chapter's checks (`gradcheck`) and the user's (`usercheck`) are both made of these.
"""

import math
from dataclasses import dataclass, fields
from functools import partial

import torch

from fndcli.backprop.bridge import HandWritten
from fndcli.backprop.model import init_mlp
from fndcli.names import dtype_name
from fndcli.numerics import first_line, relative
from fndcli.userref import UserCodeError

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

    check: str  # 'forward', 'autograd' or 'finite-difference'
    tensor: str  # what was checked, e.g. 'd loss / d lin1.w'; and why, when it could not be
    shape: str  # the reference's, e.g. '100x50' or 'scalar'
    dtype: str  # the reference's, e.g. 'float32'
    # torch.equal; None where it does not apply (finite differences, a check that did not run)
    exact: bool | None
    # torch.allclose with its own defaults, as Karpathy's `cmp`, for information; None as exact
    allclose: bool | None
    max_abs_diff: float  # max|ours - ref|; inf when the two cannot be compared
    rel_err: float  # max_abs_diff / max|ref| (numerics.relative)
    rtol: float | None  # the tolerances behind `passed`; None where nothing was compared
    atol: float | None
    rule: str  # what `passed` means on this row
    passed: bool

    @classmethod
    def failed(cls, check, tensor, why, like, rule):
        """A check that could not compare anything: it fails, and `tensor` says why."""
        return cls(
            check,
            f"{tensor} ({why})",
            shape_of(like),
            dtype_name(like.dtype),
            exact=None,
            allclose=None,
            max_abs_diff=math.inf,
            rel_err=math.inf,
            rtol=None,
            atol=None,
            rule=rule,
            passed=False,
        )

    @classmethod
    def raised(cls, check, tensor, error, like):
        """A check that could not run because the backward raised `error`."""
        why = str(error)
        if not isinstance(error, UserCodeError):
            why = f"raised {type(error).__name__}: {first_line(error)}"
        return cls.failed(check, tensor, why, like, RAISED_RULE)


COLUMNS = [f.name for f in fields(CheckRow)]  # the CSV's columns, in this order


def shape_of(t):
    """'100x50', or 'scalar' for a 0-d tensor."""
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
    row = partial(
        CheckRow,
        check,
        tensor,
        shape_of(ref),
        dtype_name(ref.dtype),
        rtol=rtol,
        atol=atol,
        rule=AUTOGRAD_RULE,
    )
    if ours.shape != ref.shape:
        return row(exact=False, allclose=False, max_abs_diff=math.inf, rel_err=math.inf, passed=False)
    max_abs = (ours - ref).abs().max().item() if ref.numel() else 0.0
    ref_max = ref.abs().max().item() if ref.numel() else 0.0
    return row(
        exact=bool(torch.equal(ours, ref)),
        allclose=bool(torch.allclose(ours, ref)),
        max_abs_diff=max_abs,
        rel_err=relative(max_abs, ref_max),
        passed=bool(math.isfinite(max_abs) and max_abs <= atol + rtol * ref_max),
    )


def away_from_zero(t, margin=0.1):
    """t moved `margin` away from 0, each element to its own side: a ReLU's kink stays out of the way."""
    return t + margin * torch.where(t >= 0, 1.0, -1.0).to(t.dtype)


def small_model(cfg):
    """A small float64 copy of cfg's model (same depth and loss), its ReLU inputs all >= MARGIN from 0."""
    sizes = [
        min(cfg.n_in, 5),
        *(min(h, 4) for h in cfg.hidden),
        max(2, min(cfg.n_out, 3)) if cfg.loss == "cross-entropy" else min(cfg.n_out, 3),
    ]
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


def fd_row(tensor, build, inputs, function=None):
    """One row: torch.autograd.gradcheck's verdict on `function` (default: `build` wrapped by HandWritten),
    and the largest difference from our own central differences."""
    inputs = [t.detach().to(torch.float64) for t in inputs]
    leaves = [t.clone().requires_grad_() for t in inputs]
    function = function or (lambda *a: HandWritten.apply(build, *a))
    try:
        ok = torch.autograd.gradcheck(
            function, leaves, eps=FD_EPS, atol=FD_ATOL, rtol=FD_RTOL, raise_exception=False
        )
        max_abs, ref_max = _fd_max_diff(build, inputs)
    except (RuntimeError, UserCodeError) as e:
        return CheckRow.raised("finite-difference", tensor, e, inputs[0])
    # exact and allclose do not apply: the reference is a numerical estimate
    return CheckRow(
        "finite-difference",
        tensor,
        shape_of(inputs[0]),
        "float64",
        exact=None,
        allclose=None,
        max_abs_diff=max_abs,
        rel_err=relative(max_abs, ref_max),
        rtol=FD_RTOL,
        atol=FD_ATOL,
        rule=FD_RULE,
        passed=bool(ok),
    )
