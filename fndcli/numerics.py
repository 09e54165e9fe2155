"""The one convention for relative errors, used by every check fnd prints."""
import math


def relative(diff, ref):
    """diff / ref, both non-negative magnitudes: 0 when both are 0; inf when only ref is, or when
    either is not finite (a NaN must fail a check, never pass it)."""
    if not (math.isfinite(diff) and math.isfinite(ref)):
        return math.inf
    if ref > 0:
        return diff / ref
    return 0.0 if diff == 0 else math.inf
