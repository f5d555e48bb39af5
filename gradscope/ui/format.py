"""How numbers look on screen: short, aligned, honest about NaN and 'does not apply'."""

from __future__ import annotations

import math
from collections.abc import Sequence

BARS = "▁▂▃▄▅▆▇█"
MISSING = "–"  # the metric does not apply to this layer
FLAT = 1e-4  # a sparkline whose spread is below this share of its values is flat


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    return format(value, f".{digits}g")


def log10(value: float | None) -> str:
    """An update ratio as its order of magnitude: -3.0 means 1e-3 of the weights per step."""
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    if value <= 0:
        return "-∞"
    if math.isinf(value):
        return "inf"
    return format(math.log10(value), ".1f")


def percent(fraction: float | None) -> str:
    if fraction is None:
        return MISSING
    if math.isnan(fraction):
        return "nan"
    return f"{fraction * 100:.0f}%"


def count(n: int) -> str:
    """Parameter counts: exact while short, then k / M."""
    if n < 100_000:
        return f"{n:,}"
    if n < 10_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def _log_scale(values: Sequence[float | None]) -> bool:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    # Norms and losses that span orders of magnitude only show their shape on a log scale.
    return bool(positive) and len(positive) == len(finite) and max(positive) / min(positive) > 100


def spark(values: Sequence[float | None], width: int, height: int = 1, *,
          bounds: tuple[float, float] | None = None, log: bool | None = None) -> list[str]:
    """A sparkline, one column per value (the newest `width`), right-aligned;
    `height` lines, top first.

    By default it is scaled between its own min and max (log when they span
    decades). `bounds` (low, high, in the values' units) and `log` give a shared
    scale instead, so rows drawn with the same ones compare with each other.
    A gap (None) is a blank column, NaN/inf a '!' on the bottom line.
    """
    if width <= 0:
        return [""] * height
    values = list(values)[-width:]
    if log is None:
        log = _log_scale(values) if bounds is None else False

    def scaled(value: float | None) -> float | None:
        if value is None or not math.isfinite(value):
            return value
        if log:  # zero or below has no place on a log scale: the bottom
            return math.log10(value) if value > 0 else -300.0
        return value

    points = [scaled(v) for v in values]
    finite = [p for p in points if p is not None and math.isfinite(p)]
    if bounds is not None:
        low, high = (scaled(max(bounds[0], 1e-300)) if log else bounds[0],
                     scaled(max(bounds[1], 1e-300)) if log else bounds[1])
        low, high = float(low or 0.0), float(high or 0.0)
        points = [p if p is None or not math.isfinite(p) else min(max(p, low), high)
                  for p in points]
    else:
        low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    extent = high - low
    if extent <= FLAT * max(abs(low), abs(high)):
        extent = 0.0  # float noise (a weight norm read twice) is not a trend
    levels = len(BARS) * height
    lines = [[" "] * len(points) for _ in range(height)]
    for column, point in enumerate(points):
        if point is None:
            continue
        if not math.isfinite(point):
            lines[-1][column] = "!"
            continue
        # A flat series sits at mid height rather than looking empty.
        level = round((point - low) / extent * (levels - 1)) if extent > 0 else levels // 2
        for row in range(height):
            from_bottom = height - 1 - row
            cell = level - from_bottom * len(BARS)
            if cell >= len(BARS):
                lines[row][column] = BARS[-1]
            elif cell >= 0:
                lines[row][column] = BARS[cell]
    return ["".join(line).rjust(width) for line in lines]


def downsample(values: Sequence[float | None], width: int) -> list[float | None]:
    """At most `width` points: the mean of each bucket (NaN if any is NaN, so it still shows)."""
    if len(values) <= width or width <= 0:
        return list(values)
    out: list[float | None] = []
    for bucket in range(width):
        start = bucket * len(values) // width
        end = (bucket + 1) * len(values) // width
        chunk = [v for v in values[start:end] if v is not None]
        if not chunk:
            out.append(None)
        elif any(not math.isfinite(v) for v in chunk):
            out.append(math.nan)
        else:
            out.append(sum(chunk) / len(chunk))
    return out
