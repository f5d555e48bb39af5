"""The loss over the run: the probe's steps, then the user's training over its
global steps, with validation.

- Two x scales, kept apart. *Steps* (a run with the watch: the training's points
  sit at global steps): once the training has points, the probe's few steps get
  their own narrow panel at the left (one column per probe step, at most a sixth
  of the plot), then a `┊` column, then the training over the rest of the width,
  x proportional to the global step (each column the mean of the points that fall
  on it, so 100,000 steps draw like 100). Before the training the probe takes the
  whole width, one slot per step. *Epochs* (a recording from before the watch,
  one training point per epoch): one slot per probe step and per epoch, in the
  order they came, spread over the full width; an epoch's training and
  validation losses share a slot. The axis row names where each part starts
  (`probe 1`, `step 1` or `epoch 1`) and the last step or epoch at the right end.
- Series kept apart by glyph and colour: the training loss as a filled area
  (`▁▂…█`: the watched steps' own losses; without them, the epochs' mean
  losses), the epochs' mean training loss as `×` points, validation as `•`
  points, probe steps as `+` points; the points of one series are joined by `·`
  where the cells are free. The key sits at the right of the axis row.
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
feeds it the points (`Report.loss_overview`: bounded, whatever the training's
length) and the theme's colours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

from rich.text import Text
from textual.widget import Widget

from gradscope.ui import format as fmt
from gradscope.ui.state import LossPoint
from gradscope.ui.widgets.depth_chart import Canvas, Picture, Styles, y_axis

FLAT_LOSS = 1e-3  # spread / size at or under which the loss is "flat"
MIN_SPAN = 1e-2  # the y-axis spans at least this share of the loss's size
# Phase -> (glyph, name in the key), drawn in this order (the later on top); the
# training loss is an area, not a glyph.
POINTS = {"epoch": ("×", "epoch"), "validation": ("•", "val"), "probe": ("+", "probe")}
AREA = "train"
OTHER = ("∘", "")  # a phase the chart does not know: points, no key entry
KEY_ORDER = ("probe", AREA, "epoch", "validation")
PROBE_SHARE = 6  # the probe's own panel takes at most 1/PROBE_SHARE of the plot...
PROBE_PANEL_FROM = 12  # ...from this many columns of plot (narrower: the training alone)
SEPARATOR = "┊"  # between the probe's panel and the training
Place = Callable[[LossPoint], "int | None"]


def _slot_key(point: LossPoint) -> tuple[str, int]:
    # Validation belongs to the epoch it was measured after.
    return ("train" if point.phase == "validation" else point.phase, point.step)


def slots(points: Sequence[LossPoint]) -> list[tuple[str, int]]:
    """The x-axis in epochs: one slot per probe step and per epoch, in the order they came."""
    seen: dict[tuple[str, int], None] = {}
    for point in points:
        seen.setdefault(_slot_key(point), None)
    return list(seen)


def training_unit(points: Sequence[LossPoint]) -> str:
    """What a training point's step counts: "step" (the watch's global steps: its
    epochs end with an "epoch" point) or "epoch" (a recording from before the
    watch). The chart's caller knows better early in a run (Report.legacy_training)."""
    return "step" if any(point.phase == "epoch" for point in points) else "epoch"


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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def is_flat(values: Sequence[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return False
    low, high = min(finite), max(finite)
    return high - low <= FLAT_LOSS * max(abs(low), abs(high))


def _how_many(measured: Sequence[LossPoint], unit: str, epochs: int | None) -> str:
    """`5 steps, 15 epochs` (epochs), `5 probe steps, 1500 steps, 15 epochs` (steps)."""
    if unit == "epoch":
        counts: dict[str, int] = {}
        for phase, _ in slots(measured):
            counts[phase] = counts.get(phase, 0) + 1
        return ", ".join(_unit(phase, count) for phase, count in counts.items())
    probe = len({p.step for p in measured if p.phase == "probe"})
    training = [p.step for p in measured if p.phase != "probe"]
    if epochs is None:
        epochs = sum(1 for p in measured if p.phase == "epoch")
    parts = []
    if probe:
        parts.append(_plural(probe, "probe step" if training else "step"))
    if training:
        parts.append(_plural(max(training), "step"))
    if epochs:
        parts.append(_plural(epochs, "epoch"))
    return ", ".join(parts)


def loss_title(points: Sequence[LossPoint], *, unit: str | None = None,
               epochs: int | None = None) -> str:
    """`Loss 2.45 → 0.0664, min 0.0664, val 0.326 (5 steps, 15 epochs)`, or
    `Loss flat at 2.303 (5 steps)`. With the watch's global steps (`unit`
    "step"), first → last and min read the probe and the epochs' mean losses
    (the steps' own losses before the first epoch ends: one step's loss is
    noisy), and the counts are `5 probe steps, 1500 steps, 15 epochs`."""
    measured = [p for p in points if p.loss is not None]
    if not measured:
        return "Loss"
    unit = unit or training_unit(measured)
    how_many = _how_many(measured, unit, epochs)
    phases = {p.phase for p in measured}
    if unit == "epoch":
        trend = phases - {"validation"}
    else:  # one step's own loss is noisy: the epochs' means say where it goes
        trend = {"probe", "epoch" if "epoch" in phases else AREA}
    own = [p.loss for p in measured if p.phase in trend and p.loss is not None]
    validation = [p.loss for p in measured if p.phase == "validation" and p.loss is not None]
    every = [p.loss for p in measured if p.loss is not None]
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


class _Layout(NamedTuple):
    """Where the points go across the plot (columns from 0)."""

    place: Place  # a point's column (None: not drawn)
    labels: list[tuple[int, str, bool]]  # (column, text, right-aligned) for the axis row
    separator: int | None  # the column of `┊` between the probe's panel and the training


def _even(count: int, columns: int) -> Callable[[int], int]:
    """Slot i of `count`, spread evenly over `columns` (the first and last at the edges)."""
    if count <= 1:
        return lambda index: 0
    return lambda index: round(index * (columns - 1) / (count - 1))


def _epochs_layout(measured: Sequence[LossPoint], plot: int) -> _Layout:
    """One slot per probe step and per epoch (or training step), in the order they came."""
    order = slots(measured)
    position = {key: index for index, key in enumerate(order)}
    column_of = _even(len(order), plot)
    labels: list[tuple[int, str, bool]] = []
    starts: dict[str, int] = {}
    for index, (phase, _) in enumerate(order):
        starts.setdefault(phase, index)
    for phase, index in starts.items():
        word = {"probe": "probe", "train": "epoch"}.get(phase, phase)
        labels.append((column_of(index), f"{word} {order[index][1]}", False))
    last_phase, last_step = order[-1]
    if len(order) > 1 and starts.get(last_phase) != len(order) - 1:
        labels.append((column_of(len(order) - 1), str(last_step), True))
    return _Layout(lambda point: column_of(position[_slot_key(point)]), labels, None)


def _steps_layout(measured: Sequence[LossPoint], plot: int) -> _Layout:
    """The probe's own panel at the left, then the training, x proportional to its step."""
    training = [p.step for p in measured if p.phase != "probe"]
    if not training:
        return _epochs_layout(measured, plot)
    probe_steps = list(dict.fromkeys(p.step for p in measured if p.phase == "probe"))
    panel = 0
    if probe_steps and plot >= PROBE_PANEL_FROM:
        panel = min(len(probe_steps), max(1, plot // PROBE_SHARE))
    begin = panel + 1 if panel else 0
    span = plot - 1 - begin
    low, high = min(training), max(training)
    probe_column = {step: _even(len(probe_steps), panel)(index)
                    for index, step in enumerate(probe_steps)}

    def place(point: LossPoint) -> int | None:
        if point.phase == "probe":
            return probe_column[point.step] if panel else None
        if high == low:
            return begin
        return begin + round((point.step - low) * span / (high - low))

    labels = [(begin, f"step {low}", False)]
    if high > low:
        labels.append((plot - 1, str(high), True))
    if panel:
        labels.append((0, f"probe {probe_steps[0]}", False))
    return _Layout(place, labels, panel if panel else None)


def render_loss(points: Sequence[LossPoint], width: int, height: int,
                styles: Styles | None = None, *, unit: str | None = None,
                epochs: int | None = None) -> Picture:
    """The chart in `width` x `height` cells: the plot, then the x-axis row with the key.

    `unit`: what a training point's step counts, "step" (global steps: the
    watch) or "epoch" (a recording from before it); guessed from the points when
    not given. `epochs`: the epochs ended, for the title (counted from the
    points when not given). The cost follows the number of points, never the
    training's length: give it a bounded series (`Report.loss_overview`)."""
    styles = styles or {}
    measured = [p for p in points if p.loss is not None]
    unit = unit or training_unit(measured)
    title = loss_title(measured, unit=unit, epochs=epochs)
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

    layout = (_steps_layout if unit == "step" else _epochs_layout)(measured, plot)
    # The area: the watched steps' losses; without them (--no-watch), the epochs' means.
    area_phase = AREA if unit == "epoch" or any(p.phase == AREA for p in measured) else "epoch"
    # Each series: column -> the values that fall on it (one pass over the points).
    series: dict[str, dict[int, list[float]]] = {}
    for point in measured:
        column = layout.place(point)
        if column is not None:
            series.setdefault(point.phase, {}).setdefault(column, []).append(float(point.loss or 0))
    canvas = Canvas(width, height)
    for row, text in enumerate(axis):
        canvas.write(row, 0, text, "axis")
    if layout.separator is not None:
        for row in range(rows):
            canvas.put(row, gutter + layout.separator, SEPARATOR, "axis")

    # The training loss: an area, joined linearly between the columns it has.
    area = {column: _value(vs) for column, vs in series.get(area_phase, {}).items()}
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
    ordered = [phase for phase in POINTS if phase in series]
    ordered += [phase for phase in series if phase not in POINTS]
    for phase in ordered:
        if phase == area_phase:
            continue
        glyph = POINTS.get(phase, OTHER)[0]
        role = phase if phase in POINTS else "axis"
        placed = sorted((column, _value(vs)) for column, vs in series[phase].items())
        for (left, a), (right, b) in zip(placed, placed[1:], strict=False):
            if not (math.isfinite(a) and math.isfinite(b)):
                continue
            if layout.separator is not None and left < layout.separator < right:
                continue  # never joined across the probe's panel
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
        drawn = set(series)
        key = [(fmt.BARS[-2] if phase == area_phase else POINTS[phase][0],
                "train" if phase == area_phase else POINTS[phase][1],
                "train" if phase == area_phase else phase)
               for phase in KEY_ORDER if phase in drawn]
        _axis_row(canvas, rows, gutter, key, layout.labels)
    return Picture(title, canvas.lines(styles))


def _axis_row(canvas: Canvas, row: int, gutter: int, key: Sequence[tuple[str, str, str]],
              labels: Sequence[tuple[int, str, bool]]) -> None:
    """The key at the right (two spaces between its entries, one where room is
    short), then the labels of the x-axis where they fit."""
    for space in (2, 1):
        key_width = sum(len(glyph) + 1 + len(name) for glyph, name, _ in key) \
            + space * (len(key) - 1)
        x = canvas.width - key_width
        if x >= gutter:
            for glyph, name, role in key:
                canvas.write(row, x, glyph, role)
                canvas.write(row, x + len(glyph) + 1, name, "axis")
                x += len(glyph) + 1 + len(name) + space
            break
    for column, text, right in labels:
        x = gutter + column - (len(text) - 1 if right else 0)
        # One free cell either side, so labels never run into each other or the key.
        if right:
            fits = canvas.free(row, x - 1, len(text) + 1)
        else:
            fits = canvas.free(row, x - 1 if x > gutter else x, len(text) + 2 - (x == gutter))
        if fits:
            canvas.write(row, x, text, "axis")


class LossChart(Widget):
    """The run's losses: probe steps, then the training (its steps, its epochs'
    means, validation), over the whole run at a bounded cost."""

    ROLES = ("train", "epoch", "validation", "probe", "axis", "error")
    COMPONENT_CLASSES: ClassVar[set[str]] = {f"loss-chart--{role}" for role in ROLES}
    DEFAULT_CSS = """
    LossChart { height: 100%; border-top: solid $primary; border-title-color: $text; }
    LossChart > .loss-chart--train { color: $text-accent; }
    LossChart > .loss-chart--epoch { color: $text-warning; text-style: bold; }
    LossChart > .loss-chart--validation { color: $text-success; text-style: bold; }
    LossChart > .loss-chart--probe { color: $text-primary; text-style: bold; }
    LossChart > .loss-chart--axis { color: $text-muted; }
    LossChart > .loss-chart--error { color: $text-error; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[LossPoint] = []
        self.unit: str | None = None
        self.epochs: int | None = None
        self.border_title = "Loss"

    def update_from(self, points: list[LossPoint], *, unit: str | None = None,
                    epochs: int | None = None) -> None:
        """`points`: a bounded series (Report.loss_overview); `unit`: "step" or
        "epoch" (Report.legacy_training), guessed from the points when None."""
        self.points, self.unit, self.epochs = points, unit, epochs
        self.border_title = loss_title(points, unit=unit, epochs=epochs)
        self.refresh()

    def render(self) -> Text:
        styles = {role: self.get_component_rich_style(f"loss-chart--{role}")
                  for role in self.ROLES}
        size = self.content_region
        picture = render_loss(self.points, size.width, size.height, styles,
                              unit=self.unit, epochs=self.epochs)
        return Text("\n").join(picture.lines)
