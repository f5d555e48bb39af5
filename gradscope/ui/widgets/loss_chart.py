"""The loss over the run: probe steps, then training epochs, with validation.

- The x-axis is the run's sequence of points, spread over the full width: each
  probe step is one slot, each epoch one slot (training and validation of an
  epoch share it), in the order they came. The axis row names where each part
  starts (`probe 1`, `epoch 1`).
- Three series kept apart by glyph and colour: the training loss as a filled
  area (`▁▂…█`), validation as `•` points, probe steps as `+` points; the points
  of one series are joined by `·` where the cells are free. The key sits at the
  right of the axis row.
- The y-axis labels its scale: the largest value at the top, the smallest at the
  bottom, the middle one when there are 3 rows or more (`fmt.number`). It is
  linear, or log10 when every value is positive and they span more than two
  decades (then the title says "log").
- A loss that moves by at most FLAT_LOSS (0.1 %) of its size is drawn as a flat
  line at mid height, labelled with its value, and the title says "flat at":
  never scaled between its own min and max, where float noise would look like
  big jumps. Any loss is drawn on a span of at least MIN_SPAN (1 %) of its size
  for the same reason.
- NaN/Inf losses are a `!` on the top row.

`render_loss` is a pure function (tested on recorded runs); `LossChart` only
feeds it the points and the theme's colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from gradscope.ui import format as fmt
from gradscope.ui.state import LossPoint
from gradscope.ui.widgets.depth_chart import Canvas, Picture, Styles, y_axis

FLAT_LOSS = 1e-3  # spread / size at or under which the loss is "flat"
MIN_SPAN = 1e-2  # the y-axis spans at least this share of the loss's size
# Phase -> (glyph, name in the key); the training loss is an area, not a glyph.
POINTS = {"probe": ("+", "probe"), "validation": ("•", "val")}
AREA = "train"
OTHER = ("∘", "")  # a phase the chart does not know: points, no key entry


def _slot_key(point: LossPoint) -> tuple[str, int]:
    # Validation belongs to the epoch it was measured after.
    return ("train" if point.phase == "validation" else point.phase, point.step)


def slots(points: Sequence[LossPoint]) -> list[tuple[str, int]]:
    """The x-axis: one slot per probe step and per epoch, in the order they came."""
    seen: dict[tuple[str, int], None] = {}
    for point in points:
        seen.setdefault(_slot_key(point), None)
    return list(seen)


def _value(points: list[float]) -> float:
    """A column's value: the mean of its points (NaN/Inf wins, so it still shows)."""
    bad = [v for v in points if not math.isfinite(v)]
    return bad[0] if bad else sum(points) / len(points)


def _unit(phase: str, count: int) -> str:
    if phase == "probe":
        return f"{count} step{'s' if count != 1 else ''}"
    if phase == "train":
        return f"{count} epoch{'s' if count != 1 else ''}"
    return f"{count} {phase} point{'s' if count != 1 else ''}"


def is_flat(values: Sequence[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return False
    low, high = min(finite), max(finite)
    return high - low <= FLAT_LOSS * max(abs(low), abs(high))


def loss_title(points: Sequence[LossPoint]) -> str:
    """`Loss 2.45 → 0.0664, min 0.0664, val 0.326 (5 steps, 15 epochs)`, or
    `Loss flat at 2.303 (5 steps)`."""
    measured = [p for p in points if p.loss is not None]
    if not measured:
        return "Loss"
    counts: dict[str, int] = {}
    for phase, _ in slots(measured):
        counts[phase] = counts.get(phase, 0) + 1
    how_many = ", ".join(_unit(phase, count) for phase, count in counts.items())
    own = [p.loss for p in measured if p.phase != "validation" and p.loss is not None]
    validation = [p.loss for p in measured if p.phase == "validation" and p.loss is not None]
    every = own + validation
    if is_flat(every):
        finite = [v for v in every if math.isfinite(v)]
        return f"Loss flat at {fmt.number(finite[-1], 4)} ({how_many})"
    parts = []
    if len(own) == 1:
        parts.append(fmt.number(own[0], 4))
    elif own:
        parts.append(f"{fmt.number(own[0], 4)} → {fmt.number(own[-1], 4)}")
        finite = [v for v in own if math.isfinite(v)]
        if finite:
            parts.append(f"min {fmt.number(min(finite), 4)}")
    if validation:
        parts.append(f"val {fmt.number(validation[-1], 4)}")
    log = fmt.log_scale(every)
    return f"Loss {', '.join(parts)} ({how_many}){' · log scale' if log else ''}"


def render_loss(points: Sequence[LossPoint], width: int, height: int,
                styles: Styles | None = None) -> Picture:
    """The chart in `width` x `height` cells: the plot, then the x-axis row with the key."""
    styles = styles or {}
    title = loss_title(points)
    measured = [p for p in points if p.loss is not None]
    if not measured:
        return Picture(title, [Text("no steps yet")])
    if width < 4 or height < 1:
        return Picture(title, [Text("")] * max(0, height))
    with_axis = height >= 2
    rows = height - with_axis

    values = [float(p.loss) for p in measured if p.loss is not None]
    finite = [v for v in values if math.isfinite(v)]
    flat = is_flat(finite)
    log = fmt.log_scale(finite)

    def scaled(value: float) -> float:
        return math.log10(value) if log else value

    low, high = (scaled(min(finite)), scaled(max(finite))) if finite else (0.0, 1.0)
    if not log:
        span = MIN_SPAN * max(abs(low), abs(high)) or 1.0
        if high - low < span:
            middle = (low + high) / 2
            low, high = middle - span / 2, middle + span / 2
    levels = rows * len(fmt.BARS)

    def level(value: float) -> int:
        if flat or high == low:
            share = 0.5
        else:
            share = (scaled(value) - low) / (high - low)
        return min(levels - 1, max(0, round(share * (levels - 1))))

    def row_of(value: float) -> int:
        return rows - 1 - level(value) // len(fmt.BARS)

    # The y-axis: top, bottom and middle values (a flat loss: its value on its row).
    def label(value: float) -> str:
        return fmt.number(10.0 ** value if log else value)

    if flat:
        labels = {row_of(finite[-1]): fmt.number(finite[-1], 4)}
    elif rows == 1:
        labels = {0: label(high)}
    else:
        labels = {0: label(high), rows - 1: label(low)}
        if rows >= 3:
            middle_row = (rows - 1) // 2
            labels[middle_row] = label(high - (high - low) * (middle_row + 0.5) / rows)
    gutter, axis = y_axis(labels, rows)
    plot = width - gutter
    if plot < 1:
        return Picture(title, [Text("")] * height)

    order = slots(measured)
    position = {key: index for index, key in enumerate(order)}

    def column_of(index: int) -> int:
        if len(order) == 1:
            return 0
        return round(index * (plot - 1) / (len(order) - 1))

    # Each series: column -> the values that fall on it.
    series: dict[str, dict[int, list[float]]] = {}
    for point in measured:
        column = column_of(position[_slot_key(point)])
        series.setdefault(point.phase, {}).setdefault(column, []).append(float(point.loss or 0))
    canvas = Canvas(width, height)
    for row, text in enumerate(axis):
        canvas.write(row, 0, text, "axis")

    # The training loss: an area, joined linearly between its epochs.
    area = {column: _value(vs) for column, vs in series.get(AREA, {}).items()}
    known = sorted(area)
    for left, right in zip(known, known[1:], strict=False):
        for column in range(left + 1, right):
            a, b = area[left], area[right]
            if math.isfinite(a) and math.isfinite(b):
                area[column] = a + (b - a) * (column - left) / (right - left)
    for column, value in area.items():
        x = gutter + column
        if not math.isfinite(value):
            canvas.put(0, x, "!", "error")
            continue
        top = level(value)
        for from_bottom in range(rows):
            cell = top - from_bottom * len(fmt.BARS)
            if cell >= 0:
                canvas.put(rows - 1 - from_bottom, x,
                           fmt.BARS[min(cell, len(fmt.BARS) - 1)], "train")

    # Point series: joined by dots in free cells, then their glyphs on top.
    marked: list[tuple[int, int, str, str]] = []
    for phase, columns in series.items():
        if phase == AREA:
            continue
        glyph = POINTS.get(phase, OTHER)[0]
        role = phase if phase in POINTS else "axis"
        placed = sorted((column, _value(vs)) for column, vs in columns.items())
        for (left, a), (right, b) in zip(placed, placed[1:], strict=False):
            if not (math.isfinite(a) and math.isfinite(b)):
                continue
            for column in range(left + 1, right):
                value = a + (b - a) * (column - left) / (right - left)
                if canvas.free(row_of(value), gutter + column, 1):
                    canvas.put(row_of(value), gutter + column, "·", role)
        for column, value in placed:
            if math.isfinite(value):
                marked.append((row_of(value), gutter + column, glyph, role))
            else:
                marked.append((0, gutter + column, "!", "error"))
    for row, x, glyph, role in marked:
        canvas.put(row, x, glyph, role)

    if with_axis:
        _axis_row(canvas, rows, gutter, order, column_of, set(series))
    return Picture(title, canvas.lines(styles))


def _axis_row(canvas: Canvas, row: int, gutter: int, order: Sequence[tuple[str, int]],
              column_of: Callable[[int], int], phases: set[str]) -> None:
    """The key at the right, then where each part of the run starts (where free)."""
    entries = [(glyph, name, phase) for phase, (glyph, name) in POINTS.items() if phase in phases]
    if AREA in phases:
        entries.insert(1 if "probe" in phases else 0, (fmt.BARS[-2], "train", AREA))
    key_width = sum(len(glyph) + 1 + len(name) for glyph, name, _ in entries) + 2 * (len(entries) - 1)
    x = canvas.width - key_width
    if x >= gutter:
        for glyph, name, phase in entries:
            canvas.write(row, x, glyph, phase)
            canvas.write(row, x + len(glyph) + 1, name, "axis")
            x += len(glyph) + 1 + len(name) + 2
    starts: dict[str, int] = {}
    for index, (phase, _) in enumerate(order):
        starts.setdefault(phase, index)
    for phase, index in starts.items():
        word = {"probe": "probe", "train": "epoch"}.get(phase, phase)
        text = f"{word} {order[index][1]}"
        x = gutter + column_of(index)
        # One free cell either side, so labels never run into each other or the key.
        if canvas.free(row, x - 1 if x > gutter else x, len(text) + 2 - (x == gutter)):
            canvas.write(row, x, text, "axis")
    last_phase, last_step = order[-1]
    if len(order) > 1 and starts.get(last_phase) != len(order) - 1:
        text = str(last_step)
        x = gutter + column_of(len(order) - 1) - len(text) + 1
        if canvas.free(row, x - 1, len(text) + 1):
            canvas.write(row, x, text, "axis")


class LossChart(Widget):
    """StepStats losses: probe steps, then epochs with their validation loss."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "loss-chart--train", "loss-chart--validation", "loss-chart--probe",
        "loss-chart--axis", "loss-chart--error",
    }
    DEFAULT_CSS = """
    LossChart { height: 100%; border-top: solid $primary; border-title-color: $text; }
    LossChart > .loss-chart--train { color: $text-accent; }
    LossChart > .loss-chart--validation { color: $text-success; text-style: bold; }
    LossChart > .loss-chart--probe { color: $text-primary; text-style: bold; }
    LossChart > .loss-chart--axis { color: $text-muted; }
    LossChart > .loss-chart--error { color: $text-error; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[LossPoint] = []
        self.border_title = "Loss"

    def update_from(self, points: list[LossPoint]) -> None:
        self.points = points
        self.border_title = loss_title(points)
        self.refresh()

    def render(self) -> Text:
        styles = {role: self.get_component_rich_style(f"loss-chart--{role}")
                  for role in ("train", "validation", "probe", "axis", "error")}
        size = self.content_region
        picture = render_loss(self.points, size.width, size.height, styles)
        return Text("\n").join(picture.lines)
