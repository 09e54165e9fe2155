"""A kernel checked against float64 `a @ b` on the same seeded inputs, and sized: its seconds per call.

matmul-bench checks every implementation before it times one (`fndcli.bench.run`), in fnd's own
process, or in a process of the implementation's own (`fndcli.bench.isolated`). A kernel that
raises, returns the wrong shape or dtype, or a wrong result is a failed Check that says why. Each kernel
gets its own copy of the shared inputs, and a kernel that writes to them is the failed one: the next
kernel, checked on the same case, is not blamed for it.
"""

import contextlib
import math
import os
import time
from dataclasses import dataclass

import torch

from fndcli import userref
from fndcli.bench.spec import TOLERANCES, Shape, make_inputs, synchronize
from fndcli.kernels.registry import IMPLS, resolve
from fndcli.memory import is_out_of_memory
from fndcli.names import ImplSpec, dtype_name
from fndcli.numerics import first_line, relative


@dataclass(frozen=True)
class Check:
    """One implementation's output against float64 `a @ b` on the same inputs."""

    max_abs_err: float
    rel_err: float
    correct: bool
    call_s: float  # measured seconds per call, to size the pyperf values; NaN if not correct
    compile_s: float  # first call minus a steady call, for compiled implementations; else NaN
    error: str = ""  # why it is not correct: it raised, returned the wrong shape, or a wrong result
    traceback: str = ""  # the user's frames, when the user's own code raised


def reference_case(shape, dtype, seed, device="cpu"):
    """The seeded inputs a, b and the float64 reference a @ b (m, n): one per shape and device."""
    a, b = make_inputs(shape, dtype, seed, device)
    return a, b, a.double() @ b.double()


def check_impl(impl, shape, dtype, seed, device="cpu", case=None):
    """Compare one implementation with float64 a @ b, and measure its seconds per call (and compile time).

    `case` is reference_case(...) for this shape, shared by every implementation run at it: the kernel is
    given copies of its a and b. An implementation that raises, returns the wrong shape or writes to its
    inputs is not correct, and says why.
    """
    given_a, given_b, ref = case or reference_case(shape, dtype, seed, device)
    a, b = given_a.clone(), given_b.clone()
    implementation = resolve(impl)
    fn, compiled = implementation.fn, implementation.compiled
    try:
        synchronize(device)
        t0 = time.perf_counter()
        out = fn(a, b)
        synchronize(device)
        first_s = time.perf_counter() - t0
    except (
        Exception,
        SystemExit,
    ) as e:  # a kernel's bug (sys.exit() too) is a failing row; out of memory isn't
        return _raised(e, impl)
    changed = [
        name for name, mine, given in (("a", a, given_a), ("b", b, given_b)) if not torch.equal(mine, given)
    ]
    if changed:  # its result and its timing would be of other inputs
        return failed(
            f"wrote to its input {' and '.join(changed)}: a matmul must leave a and b as it found them"
        )
    if not isinstance(out, torch.Tensor):
        return failed(f"returned {type(out).__name__}, not a tensor")
    if tuple(out.shape) != tuple(ref.shape):
        return failed(f"returned shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype != a.dtype:  # the chapter's torch.zeros(ar, bc) is float32 whatever the inputs
        return failed(
            f"returned {dtype_name(out.dtype)} from {dtype_name(a.dtype)} inputs (an output made with "
            f"torch.zeros(m, n) is float32 whatever the inputs; pass dtype=a.dtype)"
        )
    err = out.double() - ref
    max_abs = err.abs().max().item()
    rel = relative(err.norm().item(), ref.norm().item())
    bad = (~torch.isfinite(out)).sum().item() if torch.isfinite(ref).all() else 0  # not "relative error inf"
    if bad or not (math.isfinite(rel) and rel <= TOLERANCES[dtype]):
        why = (
            f"{bad} of {out.numel()} values not finite (NaN or inf) where a @ b has none"
            if bad
            else f"relative error {rel:.2e} > {TOLERANCES[dtype]:g} ({dtype} tolerance)"
        )
        return Check(max_abs, rel, False, math.nan, math.nan, f"wrong result: {why}")
    try:
        with unprinted():
            call_s = _seconds_per_call(fn, a, b, math.inf if compiled else first_s, device)
    except (Exception, SystemExit) as e:  # right once, then raised when called again
        return _raised(e, impl, " when called again")
    compile_s = max(first_s - call_s, 0.0) if compiled else math.nan
    return Check(max_abs, rel, True, call_s, compile_s)


def _raised(e, impl, when=""):
    if is_out_of_memory(e):
        raise e
    user = "" if impl in IMPLS else userref.user_traceback(e)
    return failed(f"raised {type(e).__name__}{when}: {first_line(e)}", user)


def failed(reason, user_traceback=""):
    return Check(math.nan, math.nan, False, math.nan, math.nan, reason, user_traceback)


def probe_spec(impl, device, dtype):
    """Facts for an implementation the registry does not know (the user's): its cost model comes from one
    call at 8x8x8. Under 1 us per multiply-add it is costed as compiled code at 1 GFLOP/s plus that call's
    overhead; above, as Python-level loops at the measured cost per multiply-add (so the three loops at
    1024^3 are skipped by --max-seconds, as the built-in ones are)."""
    shape = Shape(8, 8, 8)
    a, b = make_inputs(shape, dtype, 0, device)
    fn = resolve(impl).fn
    try:
        fn(a, b)  # first call: imports, compiles
        synchronize(device)
        t0 = time.perf_counter()
        fn(a, b)
        synchronize(device)
        call = time.perf_counter() - t0
    except (Exception, SystemExit):  # the check reports it
        call = 0.0
    per_mac = call / (shape.m * shape.k * shape.n)
    if per_mac > 1e-6:
        return ImplSpec(impl, "your code", lambda m, k, n: m * k * n, per_mac, math.inf)
    return ImplSpec(impl, "your code", lambda m, k, n: 1, call, 1e9)


@contextlib.contextmanager
def unprinted():
    """What a kernel prints while fnd calls it over and over (sizing its values, --quick's timing) goes
    nowhere, as a pyperf worker's output does: thousands of lines would bury the table, and --quiet's paths.
    Its first call, in the check, prints as it likes."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _seconds_per_call(fn, a, b, first_s, device, min_s=0.02):
    """Time batches of 1, 10, 100, ... calls until one lasts min_s; the first call counts only if
    it was not a compile (first_s is inf for compiled implementations)."""
    calls, elapsed = 1, first_s
    if math.isinf(first_s):
        calls, elapsed = 0, 0.0
    while elapsed < min_s:
        calls = max(
            1, calls * 10 if elapsed * 10 < min_s else max(calls + 1, math.ceil(calls * min_s / elapsed))
        )
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(a, b)
        synchronize(device)
        elapsed = time.perf_counter() - t0
    return elapsed / calls
