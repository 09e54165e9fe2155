"""Conventions every check fnd prints shares: relative errors, and the one line an exception is reported
by."""

import math


def relative(diff, ref):
    """diff / ref, both non-negative magnitudes: 0 when both are 0; inf when only ref is, or when
    either is not finite (a NaN must fail a check, never pass it)."""
    if not (math.isfinite(diff) and math.isfinite(ref)):
        return math.inf
    if ref > 0:
        return diff / ref
    return 0.0 if diff == 0 else math.inf


def first_line(error):
    """An exception's message in one line, for a row's reason or an error line; never empty
    (a bare MemoryError has no message)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"
