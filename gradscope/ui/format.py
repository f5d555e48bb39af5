"""How numbers look on screen: short, aligned, honest about NaN and 'does not apply'."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

BARS = "▁▂▃▄▅▆▇█"
MISSING = "–"  # the metric does not apply to this layer
FLAT = 1e-4  # a sparkline whose spread is below this share of its values is flat
# number(): scientific outside [1e-3, 1e4), plain inside.
SCIENTIFIC_BELOW, SCIENTIFIC_FROM = 1e-3, 1e4


def number(value: float | None, digits: int = 3) -> str:
    """One number, one style everywhere: `digits` significant digits (3 by default),
    trailing zeros dropped; scientific for |x| < 1e-3 or |x| >= 1e4 (`6.27e-07`,
    `1.5e+08`), plain otherwise (`0.0123`, `1.21`, `123`, `1234`: a number under
    1e4 keeps its integer digits). 0 is `0`; NaN and infinities are `nan`, `inf`,
    `-inf`; None (does not apply) is MISSING."""
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    digits = max(1, digits)
    # The style follows the value as rounded: 0.00099996 shows as 0.001, 9999.7 as 1e+04.
    size = abs(float(format(value, f".{digits - 1}e")))
    if size < SCIENTIFIC_BELOW or size >= SCIENTIFIC_FROM:
        mantissa, exponent = format(value, f".{digits - 1}e").split("e")
        return f"{_trim(mantissa)}e{exponent}"
    decimals = max(0, digits - 1 - math.floor(math.log10(size)))
    return _trim(format(value, f".{decimals}f"))


def _trim(text: str) -> str:
    """Trailing zeros of a decimal part dropped (`1.50` -> `1.5`, `2.00` -> `2`)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def with_unit(value: float | None, unit: str, digits: int = 3) -> str:
    """A number and its unit (`0.25 s`, `123 steps/s`); MISSING alone when None."""
    text = number(value, digits)
    return text if value is None else f"{text} {unit}"


def seconds(value: float | None) -> str:
    return with_unit(value, "s")


def per_second(value: float | None, what: str = "steps") -> str:
    return with_unit(value, f"{what}/s")


def duration(value: float | None) -> str:
    """A time to come, to the second, in the largest units that read at a glance:
    `29 s`, `4 min 05 s`, `2 h 07 min`; MISSING when unknown."""
    if value is None or not math.isfinite(value) or value < 0:
        return MISSING
    whole = round(value)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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
    """A share as a whole percentage; `<1%` and `>99%` rather than rounding a share
    that is not 0 or 1 to `0%` or `100%` (100 % dead is an error, 99.6 % is not)."""
    if fraction is None:
        return MISSING
    if math.isnan(fraction):
        return "nan"
    if 0 < fraction < 0.005:
        return "<1%"
    if 0.995 <= fraction < 1:
        return ">99%"
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


def log_scale(values: Iterable[float | None]) -> bool:
    """Whether values are best drawn on a log scale: all finite ones positive and
    spanning more than two decades."""
    return _log_scale(list(values))


def shared_bounds(values: Iterable[float | None], *, log: bool = False) -> tuple[float, float] | None:
    """One scale for a metric across layers: the (low, high) of its finite values
    (with `log`, of its positive ones: 0 and below sit at the bottom of a log
    scale). Give it every layer's values of one metric, e.g.
    `shared_bounds(chain.from_iterable(t.series("grad_norm") for t in tracks), log=True)`,
    and pass the result to `spark(..., bounds=..., log=...)` for each layer so that
    their lines compare with each other. None when no value counts (then `spark`
    scales each line on its own)."""
    low = high = None
    for value in values:
        if value is None or not math.isfinite(value) or (log and value <= 0):
            continue
        if low is None or value < low:
            low = value
        if high is None or value > high:
            high = value
    if low is None or high is None:
        return None
    return (low, high)


def decades(low: float, high: float) -> tuple[int, int]:
    """The powers of ten around [low, high] (both > 0): (floor(log10 low), ceil(log10 high)),
    at least one decade apart."""
    bottom = math.floor(math.log10(low))
    top = math.ceil(math.log10(high))
    return (bottom, max(top, bottom + 1))


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
