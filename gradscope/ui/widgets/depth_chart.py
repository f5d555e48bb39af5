"""Gradient norm by depth: one bar per layer, input on the left, output on the
right, all on one log scale, so a gradient that shrinks towards the input shows
as a staircase at a glance.

- Which layers: those with a measured gradient norm (`LayerTrack.value`: the
  latest measured, i.e. the last probe step's while training rows carry none),
  in forward order. Layers without weights (Dropout, Flatten...) have no bar.
- The scale: log10, from the decade below the smallest norm to the decade above
  the largest, shared by every bar; the y-axis labels the decades (`1e-07` at
  the bottom, `1` at the top, the ones between where rows allow). A norm of
  exactly 0 has no place on a log scale: it shows as `0` on the bottom row; a
  NaN/Inf norm as a column of `!`.
- Flags: a layer named by a verdict is drawn in its severity's colour and gets
  the layer table's mark under its bar (`●` error, `▲` warning, `·` info), so it
  shows without colour too.
- More layers than columns: each column stands for a run of consecutive layers
  and shows their **minimum** (a vanishing gradient is the news; NaN/Inf wins
  over any number) and the worst flag among them; the x-axis says so.
- The title gives the range of the norms (`grad norm by depth: 6.27e-07 … 1.21`).

`render_depth` is a pure function (tested on recorded runs); `DepthChart` only
feeds it the report and the theme's colours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, NamedTuple

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from gradscope.report import Report
from gradscope.ui import format as fmt
from gradscope.verdicts import SEVERITY_ORDER

MARKS = {"error": "●", "warning": "▲", "info": "·"}  # as in the layer table
Styles = Mapping[str, Style | str]


class Picture(NamedTuple):
    """A rendered chart: its title and its lines (Rich Text, styled by role)."""

    title: str
    lines: list[Text]

    @property
    def plain(self) -> list[str]:
        return [line.plain for line in self.lines]


class Canvas:
    """A grid of (character, role) cells, turned into styled lines at the end."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", "")] * width for _ in range(height)]

    def put(self, row: int, column: int, char: str, role: str = "") -> None:
        if 0 <= row < self.height and 0 <= column < self.width:
            self.cells[row][column] = (char, role)

    def free(self, row: int, column: int, length: int) -> bool:
        if column < 0 or column + length > self.width or not 0 <= row < self.height:
            return False
        return all(char == " " for char, _ in self.cells[row][column:column + length])

    def write(self, row: int, column: int, text: str, role: str = "") -> None:
        for offset, char in enumerate(text):
            self.put(row, column + offset, char, role)

    def lines(self, styles: Styles) -> list[Text]:
        out = []
        for row in self.cells:
            text = Text(no_wrap=True, overflow="crop")
            for char, role in row:
                text.append(char, styles.get(role, "") if role else "")
            out.append(text)
        return out


def y_axis(labels: Mapping[int, str], rows: int) -> tuple[int, list[str]]:
    """The y-axis gutter: each row's label right-aligned, then `┤` (labelled) or `│`."""
    width = max((len(label) for label in labels.values()), default=0)
    return width + 1, [labels.get(row, "").rjust(width) + ("┤" if row in labels else "│")
                       for row in range(rows)]


def worse(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if SEVERITY_ORDER.get(a, 9) <= SEVERITY_ORDER.get(b, 9) else b


class Column(NamedTuple):
    first: int  # forward position (0-based) of the first layer it stands for
    last: int
    names: tuple[str, ...]
    norm: float  # the minimum of its layers' norms (NaN/Inf if any is)
    flag: str | None  # the worst severity among its layers


def depth_layers(report: Report) -> list[tuple[int, str, float]]:
    """(forward position, name, latest measured grad norm) of every layer that has one."""
    found = []
    for track in report.layers.values():
        value = track.value("grad_norm")
        if value is not None:
            found.append((track.index, track.name, value))
    found.sort(key=lambda item: item[0])
    return found


def aggregate(layers: Sequence[tuple[int, str, float]], flags: Mapping[str, str],
              columns: int) -> list[Column]:
    """One Column per layer while they fit; else `columns` runs of consecutive
    layers, each showing the minimum of its norms (a non-finite norm wins)."""
    count = len(layers)
    groups = max(1, min(count, columns))
    out = []
    for group in range(groups):
        chunk = layers[group * count // groups:(group + 1) * count // groups]
        if not chunk:
            continue
        values = [value for _, _, value in chunk]
        bad = [value for value in values if not math.isfinite(value)]
        norm = bad[0] if bad else min(values)
        flag: str | None = None
        for _, name, _ in chunk:
            flag = worse(flag, flags.get(name))
        out.append(Column(chunk[0][0], chunk[-1][0], tuple(n for _, n, _ in chunk), norm, flag))
    return out


def depth_title(layers: Sequence[tuple[int, str, float]]) -> str:
    values = [value for _, _, value in layers]
    positive = [v for v in values if math.isfinite(v) and v > 0]
    title = "grad norm by depth"
    if positive:
        title += f": {fmt.number(min(positive))} … {fmt.number(max(positive))}"
    zeros = sum(1 for v in values if v == 0)
    bad = sum(1 for v in values if not math.isfinite(v))
    if zeros:
        title += f" · {zeros} zero"
    if bad:
        title += f" · {bad} NaN/Inf"
    return title


def x_label(columns: Sequence[Column], layer_count: int, width: int) -> str:
    """What the x-axis spans, the longest wording that fits."""
    first, last = columns[0], columns[-1]
    a, b = first.first + 1, last.last + 1
    per = math.ceil(layer_count / len(columns)) if columns else 1
    how = f" · each column the min of {per} layers" if per > 1 else ""
    short_how = " · min per column" if per > 1 else ""
    if layer_count == 1:
        return next((o for o in (f"layer {a} {first.names[0]}", f"layer {a}") if len(o) <= width), "")
    options = [
        f"layer {a} {first.names[0]} → {b} {last.names[-1]}, input → output{how}",
        f"layer {a} → {b}, input → output{how}",
        f"layer {a} → {b}, input → output{short_how}",
        f"layer {a} → {b}{short_how}",
        f"layer {a} → {b}",
        f"{a} → {b}",
    ]
    return next((option for option in options if len(option) <= width), "")


def render_depth(layers: Sequence[tuple[int, str, float]], flags: Mapping[str, str],
                 width: int, height: int, styles: Styles | None = None) -> Picture:
    """The chart in `width` x `height` cells: bars, then a row of marks, then the
    x-axis (each when there is room). `layers`: (forward position, name, norm)."""
    styles = styles or {}
    title = depth_title(layers)
    if not layers:
        return Picture(title, [Text("no gradient norms yet (the probe steps measure them)")])
    if width < 4 or height < 1:
        return Picture(title, [Text("")] * max(0, height))
    with_marks = height >= 2
    with_axis = height >= 4
    rows = max(1, height - with_marks - with_axis)

    positive = [v for _, _, v in layers if math.isfinite(v) and v > 0]
    bottom, top = fmt.decades(min(positive), max(positive)) if positive else (-1, 0)
    span = top - bottom
    labels = {0: fmt.number(10.0 ** top), rows - 1: fmt.number(10.0 ** bottom)}
    for decade in range(top - 1, bottom, -1):
        row = min(rows - 1, int((top - decade) / span * rows))
        if row not in labels:
            labels[row] = fmt.number(10.0 ** decade)
    if rows == 1:
        labels = {0: fmt.number(10.0 ** top)}
    gutter, axis = y_axis(labels, rows)
    plot = width - gutter
    if plot < 1:
        return Picture(title, [Text("")] * height)

    columns = aggregate(layers, flags, plot)
    canvas = Canvas(width, height)
    for row, text in enumerate(axis):
        canvas.write(row, 0, text, "axis")
    levels = rows * len(fmt.BARS)
    for position, column in enumerate(columns):
        start = gutter + position * plot // len(columns)
        end = gutter + (position + 1) * plot // len(columns)
        bar_width = end - start - 1 if end - start >= 2 else 1
        role = column.flag if column.flag in ("error", "warning") else "bar"
        norm = column.norm
        for offset in range(bar_width):
            x = start + offset
            if not math.isfinite(norm):
                for row in range(rows):
                    canvas.put(row, x, "!", "error")
            elif norm <= 0:
                if offset == 0:
                    canvas.put(rows - 1, x, "0", role)
            else:
                share = (math.log10(norm) - bottom) / span
                level = min(levels, max(1, round(share * levels)))
                for from_bottom in range(rows):
                    cell = level - from_bottom * len(fmt.BARS)
                    if cell > 0:
                        canvas.put(rows - 1 - from_bottom, x,
                                   fmt.BARS[min(cell, len(fmt.BARS)) - 1], role)
        if with_marks and column.flag in MARKS:
            canvas.put(rows, start + (bar_width - 1) // 2, MARKS[column.flag], column.flag or "")
    if with_axis:
        canvas.write(rows + with_marks, gutter, x_label(columns, len(layers), plot), "axis")
    return Picture(title, canvas.lines(styles))


class DepthChart(Widget):
    """The report's gradient norms by depth; `update_from` redraws only on a change."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "depth-chart--bar", "depth-chart--axis", "depth-chart--error",
        "depth-chart--warning", "depth-chart--info",
    }
    DEFAULT_CSS = """
    DepthChart {
        height: 100%;
        border-top: solid $primary;
        border-title-color: $text;
    }
    DepthChart > .depth-chart--bar { color: $text-accent; }
    DepthChart > .depth-chart--axis { color: $text-muted; }
    DepthChart > .depth-chart--error { color: $text-error; text-style: bold; }
    DepthChart > .depth-chart--warning { color: $text-warning; }
    DepthChart > .depth-chart--info { color: $text-primary; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.norms: list[tuple[int, str, float]] = []
        self.flags: dict[str, str] = {}
        self._gate: object = None
        self._seen: object = None
        self.border_title = "grad norm by depth"

    def update_from(self, report: Report, flags: Mapping[str, str]) -> bool:
        """Take the report's norms and flags; True (and a redraw) when they changed."""
        gate = (report.layer_revision, report.verdict_revision, len(report.layers), len(flags))
        if gate == self._gate:
            return False
        self._gate = gate
        layers = depth_layers(report)
        shown = {name: flags[name] for _, name, _ in layers if name in flags}
        key = (layers, shown)
        if key == self._seen:
            return False
        self._seen = key
        self.norms, self.flags = layers, shown
        self.border_title = depth_title(layers)
        self.refresh()
        return True

    def render(self) -> Text:
        styles = {role: self.get_component_rich_style(f"depth-chart--{role}")
                  for role in ("bar", "axis", "error", "warning", "info")}
        size = self.content_region
        picture = render_depth(self.norms, self.flags, size.width, size.height, styles)
        return Text("\n").join(picture.lines)
