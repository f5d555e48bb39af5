"""How check messages write numbers: shared so every check words them alike."""

from __future__ import annotations

import math


def share(value: float | None) -> str:
    """A share as a percentage ('95%'), never rounded to 100% or 0% unless it is
    exactly that: 99.6 % of the labels is not all of them, so it gets as many
    decimals as it needs ('99.6%', '99.96%'; past three, 'over 99.999%')."""
    if value is None:  # (callers print shares they measured; None is "not measured")
        return "n/a"
    if not math.isfinite(value) or value >= 1.0 or value <= 0.0:
        return f"{value:.0%}"
    for digits in range(4):
        text = f"{value:.{digits}%}"
        if float(text[:-1]) not in (0.0, 100.0):
            return text
    return "over 99.999%" if value > 0.5 else "under 0.001%"
