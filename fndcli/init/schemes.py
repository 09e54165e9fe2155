"""Activations and weight-init schemes, each one registry by name, with the theory that predicts them.

Layout is the chapter's: a layer computes x @ w with w of shape (fan_in, fan_out).
torch.nn.init reads fans from an (out, in) weight, so its functions are not used here
directly; each scheme below is written out, with its source.

Theory (He et al. 2015, section 2.2): with zero-mean iid weights, a layer's pre-activation
z = x @ w has Var[z] = fan_in * Var[w] * E[x^2]. For z ~ N(0, s2), the activation's
`moments(s2)` gives the mean and second moment of act(z), and `grad_m2` is E[act'(z)^2],
which scales the gradient on the way back (section 2.3, with fan_out).

That is the mean over networks. One network of finite width n scatters around it: each
layer multiplies m2 by the mean-field gain times an iid random factor, so ln m2_L is about
Normal(L ln a - var/2, var) with var = kappa L / n, kappa = E act(z)^4 / (E act(z)^2)^2 - 1
(Hanin and Rolnick 2018; Hanin 2018; derived and checked by simulation in docs/init-sweep.md,
"Theory: one network's scatter").
`log_m2_variance` gives var; fndcli.init.sweep turns it into a band and a verdict.
"""

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from fndcli.names import ACTS, resolve_scheme_name


@dataclass(frozen=True)
class Act:
    """An activation, its derivative, its init gain and its Gaussian moments."""

    name: str
    fn: Callable  # z -> act(z)
    grad: Callable  # z -> act'(z); at exactly 0 the gradient is 0, as torch.relu's
    gain: float  # torch.nn.init.calculate_gain's value
    moments: Optional[Callable]  # s2 -> (mean, m2) of act(z) for z ~ N(0, s2); None: no closed form
    grad_m2: Optional[float]  # E[act'(z)^2] for symmetric z; None: no closed form
    kappa: Optional[float] = None  # E act(z)^4 / (E act(z)^2)^2 - 1 for Gaussian z; None: no random walk
    saturation: Optional[float] = None  # |act(z)| above this is pinned (tanh: 0.99 of its bound 1)


def make_act(name, leak=0.01):
    """The activation called `name`; `leak` is leaky-relu's negative slope."""
    if name == "linear":
        return Act("linear", lambda z: z, torch.ones_like, 1.0, lambda s2: (0.0, s2), 1.0, kappa=2.0)
    if name == "relu":
        return Act(
            "relu",
            torch.relu,
            lambda z: (z > 0).to(z.dtype),
            math.sqrt(2.0),
            lambda s2: (math.sqrt(s2 / (2 * math.pi)), s2 / 2),
            0.5,
            kappa=5.0,
        )
    if name == "leaky-relu":
        return Act(
            "leaky-relu",
            lambda z: torch.where(z > 0, z, leak * z),
            lambda z: torch.where(z > 0, torch.ones_like(z), torch.full_like(z, leak)),
            math.sqrt(2.0 / (1 + leak**2)),
            lambda s2: ((1 - leak) * math.sqrt(s2 / (2 * math.pi)), (1 + leak**2) * s2 / 2),
            (1 + leak**2) / 2,
            kappa=6 * (1 + leak**4) / (1 + leak**2) ** 2 - 1,
        )
    if name == "tanh":  # no closed form; with gain 5/3 it has a fixed point (m2* = 0.424), no random walk
        return Act("tanh", torch.tanh, lambda z: 1 - torch.tanh(z) ** 2, 5.0 / 3, None, None, saturation=0.99)
    raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTS)}")


@dataclass(frozen=True)
class InitParams:
    """What a scheme may need beyond the fans: the activation (for its gain), --scale, --mode."""

    act: Act
    scale: float = 0.1
    mode: str = "fan_in"


def _normal(fan_in, fan_out, std, gen, dtype):
    return torch.randn(fan_in, fan_out, generator=gen, dtype=dtype) * std  # (fan_in, fan_out)


def _uniform(fan_in, fan_out, bound, gen, dtype):
    return (torch.rand(fan_in, fan_out, generator=gen, dtype=dtype) * 2 - 1) * bound  # (fan_in, fan_out)


def _fan(fan_in, fan_out, p):
    return fan_in if p.mode == "fan_in" else fan_out


def orthogonal(fan_in, fan_out, gain, gen, dtype):
    """Orthonormal columns (fan_in >= fan_out) or rows, times gain (Saxe et al. 2013)."""
    a = torch.randn(max(fan_in, fan_out), min(fan_in, fan_out), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # q: (max, min), orthonormal columns
    q = q * torch.sign(torch.diagonal(r))  # make the factorisation unique: uniformly distributed q
    w = q if fan_in >= fan_out else q.t()
    return (gain * w).to(dtype)  # (fan_in, fan_out)


@dataclass(frozen=True)
class Scheme:
    """A weight-init scheme: `init` draws w (fan_in, fan_out); `variance` is Var[w], or None."""

    name: str
    init: Callable  # (fan_in, fan_out, InitParams, gen, dtype) -> w
    variance: Optional[Callable]  # (fan_in, fan_out, InitParams) -> Var[w]
    data_driven: bool = False  # rescaled on a batch after drawing (LSUV)
    kappa_shift: float = 0.0  # orthogonal weights remove the weights' own scatter: kappa - 2


def _xavier_var(fi, fo, p):  # Glorot & Bengio 2010, eq. 12 (gain 1, as in the paper)
    return 2.0 / (fi + fo)


def _kaiming_var(fi, fo, p):  # He et al. 2015, eq. 10 (forward, fan_in) or eq. 14 (backward, fan_out)
    return p.act.gain**2 / _fan(fi, fo, p)


SCHEMES = {
    s.name: s
    for s in [  # the names and summaries: fndcli.names.SCHEMES
        Scheme("normal", lambda fi, fo, p, g, d: _normal(fi, fo, 1.0, g, d), lambda fi, fo, p: 1.0),
        Scheme(
            "scaled", lambda fi, fo, p, g, d: _normal(fi, fo, p.scale, g, d), lambda fi, fo, p: p.scale**2
        ),
        Scheme(
            "xavier-normal",
            lambda fi, fo, p, g, d: _normal(fi, fo, math.sqrt(_xavier_var(fi, fo, p)), g, d),
            _xavier_var,
        ),
        Scheme(
            "xavier-uniform",
            lambda fi, fo, p, g, d: _uniform(fi, fo, math.sqrt(3 * _xavier_var(fi, fo, p)), g, d),
            _xavier_var,
        ),
        Scheme(
            "kaiming-normal",
            lambda fi, fo, p, g, d: _normal(fi, fo, math.sqrt(_kaiming_var(fi, fo, p)), g, d),
            _kaiming_var,
        ),
        Scheme(
            "kaiming-uniform",
            lambda fi, fo, p, g, d: _uniform(fi, fo, math.sqrt(3 * _kaiming_var(fi, fo, p)), g, d),
            _kaiming_var,
        ),
        # nn.Linear: kaiming_uniform_(a=sqrt(5)) -> U(+-1/sqrt(fan_in)), Var = 1 / (3 fan_in)
        Scheme(
            "torch-default",
            lambda fi, fo, p, g, d: _uniform(fi, fo, 1 / math.sqrt(fi), g, d),
            lambda fi, fo, p: 1 / (3 * fi),
        ),
        Scheme(
            "orthogonal",
            lambda fi, fo, p, g, d: orthogonal(fi, fo, p.act.gain, g, d),
            lambda fi, fo, p: p.act.gain**2 / max(fi, fo),
            kappa_shift=-2.0,
        ),
        Scheme("lsuv", lambda fi, fo, p, g, d: orthogonal(fi, fo, 1.0, g, d), None, data_driven=True),
    ]
}


def resolve_scheme(name):
    """A scheme by name or alias ('kaiming' is kaiming-normal)."""
    return SCHEMES[resolve_scheme_name(name)]


def lsuv(weights, x, acts, tol=0.1, max_iter=10):
    """Layer-sequential unit-variance (Mishkin & Matas 2015, Algorithm 1), in place.

    Layer by layer, divide w by the std of its output z = x @ w on the batch until
    |Var[z] - 1| < tol (or max_iter tries); then move on with x = act(z). The output
    normalised is the pre-activation, as in the paper's fully connected layers.
    Returns the variance of each layer's output after rescaling.
    """
    variances = []
    with torch.no_grad():
        for w, act in zip(weights, acts):
            for _ in range(max_iter):
                var = _var(x @ w)
                if not math.isfinite(var) or var == 0 or abs(var - 1) < tol:
                    break
                w /= math.sqrt(var)
            z = x @ w
            variances.append(_var(z))
            x = act.fn(z)
    return variances


def _var(z):
    """torch's sample variance; NaN, without torch's warning, for a single value (batch 1 x width 1)."""
    return z.var().item() if z.numel() > 1 else math.nan


def predict_m2(scheme, params, width, depth, direction="forward"):
    """Predicted second moment at layers 0..depth of a square stack, or None without a closed form.

    Forward: x_0 ~ N(0, 1), m2 of act(x_{l-1} @ w_l). Backward: the gradient w.r.t. x_l,
    starting from unit variance at x_depth (He et al. 2015, eq. 13).
    """
    act = params.act
    if scheme.variance is None or act.moments is None:
        return None
    a = width * scheme.variance(width, width, params)  # n * Var[w]
    if direction == "forward":
        m2, means = [1.0], [0.0]
        for _ in range(depth):
            mean, second = act.moments(a * m2[-1])
            m2.append(second)
            means.append(mean)
        std = [math.sqrt(max(s - m * m, 0.0)) if math.isfinite(s) else s for s, m in zip(m2, means)]
        return m2, std
    m2 = [1.0]
    for _ in range(depth):
        m2.append(a * act.grad_m2 * m2[-1])
    m2 = m2[::-1]  # index by layer: the gradient at x_depth is the seed
    return m2, [math.sqrt(s) for s in m2]


def log_m2_variance(scheme, act, width, depth, batch):
    """Variance of ln m2 at layer `depth` of one network (width x width layers, a batch of `batch` rows),
    across seeds; None where there is no theory (tanh, LSUV).

    kappa L / n to leading order in 1/n (the batch shares the weights, so it barely helps a
    ReLU stack). A linear stack averages over the batch better: layer l adds
    (kappa / n) min(1, (l + 1) / n), which sums to (kappa / 2) (L^2 + L) / n^2 while L <= n
    (docs/init-sweep.md) and grows by kappa / n a layer, one direction's walk, once the
    product of the weights is dominated by its top direction; orthogonal weights (kappa 0)
    keep every row's norm. Plus 2L / (nB) for the batch's own rows, and 2 / (nB) for the
    input's m2. Checked by simulation: see docs and tests/test_inits.py.
    """
    if act.kappa is None or scheme.variance is None:
        return None
    kappa, n, L = act.kappa + scheme.kappa_shift, width, depth
    if act.name == "linear":
        walk = kappa / n * sum(min(1.0, (layer + 1) / n) for layer in range(L)) + kappa * L / (n * batch)
    else:
        walk = kappa * L / n
    return walk + 2 / (n * batch)
