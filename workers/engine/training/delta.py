"""The delta rule, dependency-free so the web side can use it without importing torch."""

from __future__ import annotations

import math


def default_delta(n: int) -> float:
    """The largest power of ten at or below 1/(10 n): n counts people, not rows."""
    if n <= 0:
        raise ValueError("n must be positive")
    # The small tolerance keeps exact powers (n = 100 -> 1e-3) from falling one decade on rounding.
    return 10.0 ** math.floor(math.log10(1.0 / (10 * n)) + 1e-12)
