"""The live per-layer table: a line-API widget that formats only the rows on screen,
so a 1000-layer model refreshed ten times a second costs a screenful, not a model.

What it computes per refresh (`set_rows`), not per row: the longest name and
type, the history column's shared scale, and (per terminal width) the columns'
layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gradscope.report import RECENT_GRADS
from gradscope.ui import format as fmt
from gradscope.ui.state import DESCENDING, LayerTrack, has_weights
from gradscope.ui.thresholds import severity  # cell colours: the checks' thresholds


class Column(NamedTuple):
    key: str
    label: str
    short: str  # the label when the terminal is narrow
    width: int  # the widest content; 0: measured (name, type) or the room left (history)
    right: bool = False
    sort: str | None = None  # the sort order a click on the header picks
    metric: str | None = None  # coloured by thresholds.severity(metric, value)


COLUMNS = (
    Column("mark", "", "", 1, sort="flag"),
    Column("name", "layer", "layer", 0, sort="name"),
    Column("type", "type", "type", 0, sort="type"),
    Column("params", "params", "params", 6, right=True, sort="params"),
    Column("trainable", "T", "T", 1, sort="trainable"),
    Column("grad_norm", "grad norm", "grad", 8, right=True, sort="grad_norm",
           metric="grad_norm"),
    Column("history", "history", "hist", 0, sort="grad_norm"),
    Column("update_ratio", "log upd", "upd", 5, right=True, sort="update_ratio",
           metric="update_ratio"),
    Column("dead", "dead", "dead", 4, right=True, sort="dead", metric="act_dead_frac"),
    Column("saturated", "sat", "sat", 4, right=True, sort="saturated",
           metric="act_saturated_frac"),
)
# The column whose header carries the sort's arrow.
SORTED_COLUMN = {column.sort: column.key for column in COLUMNS
                 if column.sort and column.key != "history"}
# When the terminal is narrow: short labels first, then the least useful columns go.
LEVELS: tuple[tuple[bool, frozenset[str]], ...] = (
    (False, frozenset()),
    (True, frozenset()),
    (True, frozenset({"params"})),
    (True, frozenset({"params", "type"})),
    (True, frozenset({"params", "type", "trainable"})),
    (True, frozenset({"params", "type", "trainable", "saturated"})),
)
MIN_NAME, MIN_TYPE, MIN_HISTORY = 10, 6, 5
# What a name and a type need to be read: the LEVELS give up room for them.
READABLE_NAME, READABLE_TYPE = 20, 10
# The flexible columns grow in this order, each to its target: a readable name
# and type first, a short history, then each to all it can use.
GROWTH = (("name", READABLE_NAME), ("type", READABLE_TYPE), ("history", 16), ("name", 0),
          ("type", 0), ("history", 0))
MARKS = {"error": "●", "warning": "▲", "info": "·"}
ARROWS = {True: "▼", False: "▲"}  # descending (largest first), ascending


class Cell(NamedTuple):
    column: Column
    width: int
    label: str


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


def layout(width: int, longest_name: int, longest_type: int,
           history: int) -> tuple[Cell, ...]:
    """The columns that fit `width` cells and their widths.

    Every column gets its natural width: its widest content, and its header
    with room for the sort arrow (headers are never cut). Name, type and history
    start at a minimum and grow, in the GROWTH order, up to the longest name,
    the longest type and `history` values; room beyond is left blank. When the
    names (up to READABLE_NAME) and types (READABLE_TYPE) do not fit, the LEVELS
    give up room: short labels, then params, type, T and sat; failing that, the
    first level whose minimums fit, and past the last level the row is cropped.
    """
    wants = {"name": longest_name, "type": longest_type, "history": history}
    readable = {"name": min(longest_name, READABLE_NAME), "type": min(longest_type, READABLE_TYPE)}
    chosen: tuple[Cell, ...] = ()
    for needs in (readable, {}):
        for short, dropped in LEVELS:
            columns = [column for column in COLUMNS if column.key not in dropped]
            widths: dict[str, int] = {}
            labels: dict[str, str] = {}
            for column in columns:
                label = column.short if short else column.label
                labels[column.key] = label
                header = len(label) + (1 if column.key in SORTED_COLUMN.values() else 0)
                if column.key == "name":
                    widths["name"] = max(header, min(longest_name, MIN_NAME))
                elif column.key == "type":
                    widths["type"] = max(header, min(longest_type, MIN_TYPE))
                elif column.key == "history":
                    widths["history"] = max(len(label), MIN_HISTORY)
                else:
                    widths[column.key] = max(header, column.width)
            used = sum(widths.values()) + len(columns) - 1
            chosen = tuple(Cell(c, widths[c.key], labels[c.key]) for c in columns)
            short_of = sum(max(0, need - widths[key]) for key, need in needs.items()
                           if key in widths)
            if used + short_of > width:
                continue
            spare = width - used
            for key, target in GROWTH:
                if key not in widths or spare <= 0:
                    continue
                goal = min(wants[key], target) if target else wants[key]
                grow = min(spare, max(0, goal - widths[key]))
                widths[key] += grow
                spare -= grow
            return tuple(Cell(c, widths[c.key], labels[c.key]) for c in columns)
    return chosen


class LayerTable(ScrollView, can_focus=True):
    """One row per layer, latest measured figures; Enter opens the layer, a click
    on a header sorts by that column (again: the other way)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "layer-table--header",
        "layer-table--sorted",
        "layer-table--cursor",
        "layer-table--error",
        "layer-table--warning",
        "layer-table--info",
        "layer-table--muted",
        "layer-table--spark",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open"),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
    ]

    class Opened(Message):
        """The user asked for one layer's details."""

        def __init__(self, layer: str) -> None:
            super().__init__()
            self.layer = layer

    class SortClicked(Message):
        """The user clicked a column's header: sort by it (again: the other way)."""

        def __init__(self, sort: str) -> None:
            super().__init__()
            self.sort = sort

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[LayerTrack] = []
        self.flags: dict[str, str] = {}
        self.sort = "forward"
        self.reverse = False
        self.cursor = 0
        self.bounds: tuple[float, float] | None = None  # the history's shared scale
        self._longest = (0, 0)  # the longest layer name and type among the rows
        self._history = 0  # the most gradient norms a row has to draw
        self._layout: tuple[tuple[int, int, int, int], tuple[Cell, ...]] | None = None
        # The styles the rows use, worked out once, not once per line and paint
        # (Textual computes a widget's style from all its ancestors on each ask).
        self._styles: dict[tuple[bool, str], Style] = {}
        # Each drawn row, kept until its layer, cursor, flag, layout, scale or
        # styles change: a key that moves the cursor redraws two rows, not a screenful.
        self._drawn: dict[LayerTrack, tuple[tuple[object, ...], Strip]] = {}
        self.paints = 0  # full repaints, for scripts/bench_ui.py

    # --- data ------------------------------------------------------------------

    def set_rows(self, rows: list[LayerTrack], flags: dict[str, str], sort: str, *,
                 reverse: bool = False, bounds: tuple[float, float] | None = None) -> None:
        """The rows to show, in order; `bounds`: the history column's shared scale
        (low, high gradient norm, drawn on a log scale)."""
        self.rows, self.flags, self.sort, self.reverse = rows, flags, sort, reverse
        self.bounds = bounds
        self._longest = (max((len(track.name) for track in rows), default=0),
                         max((len(track.layer_type) for track in rows), default=0))
        self._history = min(RECENT_GRADS, max((len(t.recent_grads) for t in rows), default=0))
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        if len(self._drawn) > 2 * len(rows) + 100:  # rows of layers no longer shown
            self._drawn.clear()
        self._update_virtual_size()
        self.refresh()

    @property
    def cursor_layer(self) -> str | None:
        return self.rows[self.cursor].name if self.rows else None

    def visible_names(self) -> list[str]:
        """The layer names in table order (all rows, not just the ones on screen)."""
        return [track.name for track in self.rows]

    def columns(self) -> tuple[Cell, ...]:
        """The columns on show at the current width, with their widths and labels."""
        width = self.scrollable_content_region.width
        key = (width, *self._longest, self._history)
        if self._layout is None or self._layout[0] != key:
            self._layout = (key, layout(width, *self._longest, self._history))
        return self._layout[1]

    def _update_virtual_size(self) -> None:
        # The header takes the first line; rows scroll beneath it.
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)

    def on_resize(self, event: Resize) -> None:
        self._update_virtual_size()

    # --- keys and mouse ----------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * max(1, self._page_rows()))

    def action_cursor_to(self, index: int) -> None:
        self.move_cursor(index if index >= 0 else len(self.rows) - 1)

    def action_open(self) -> None:
        if self.rows:
            self.post_message(self.Opened(self.rows[self.cursor].name))

    def move_cursor(self, index: int) -> None:
        self.cursor = max(0, min(index, len(self.rows) - 1))
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + self._page_rows():
            self.scroll_to(y=self.cursor - self._page_rows() + 1, animate=False, immediate=True)
        self.refresh()

    def _page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def column_at(self, x: int) -> Column | None:
        """The column under content offset x (the gap after a column counts as it)."""
        start = 0
        for cell in self.columns():
            if start <= x <= start + cell.width:
                return cell.column
            start += cell.width + 1
        return None

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:  # the border
            return
        if offset.y < 1:  # the header: sort by the column
            column = self.column_at(offset.x)
            if column is not None and column.sort is not None:
                self.post_message(self.SortClicked(column.sort))
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.action_open()
            self.move_cursor(index)

    # --- drawing ---------------------------------------------------------------

    def notify_style_update(self) -> None:
        # A class, a pseudo-class (focus) or the theme changed here or above: the
        # stylesheet is applied again to this widget, which lands here.
        self._styles.clear()
        self._drawn.clear()  # a theme or a pseudo-class may change any colour
        super().notify_style_update()

    def _style(self, name: str = "", cursor: bool = False) -> Style:
        """The base style (`name` empty), or the cursor row's, plus component
        `name`'s colour and weight; kept until the styles change."""
        key = (cursor, name)
        style = self._styles.get(key)
        if style is None:
            if name:
                style = self._style("", cursor) + self._ink(name)
            elif cursor:
                style = self._style() + self.get_component_rich_style("layer-table--cursor")
            else:
                style = self.rich_style
            self._styles[key] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._style()
        if y == 0:
            self.paints += 1
            return self._header(width, base)
        index = round(self.scroll_y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        track = self.rows[index]
        is_cursor = index == self.cursor
        flag = self.flags.get(track.name)
        self.columns()
        assert self._layout is not None
        style = self._style("", is_cursor)
        key = (track.samples, is_cursor, flag, self._layout[0], self.bounds, width, style)
        drawn = self._drawn.get(track)
        if drawn is not None and drawn[0] == key:
            return drawn[1]
        strip = self._row(track, is_cursor, width)
        self._drawn[track] = (key, strip)
        return strip

    def _header(self, width: int, base: Style) -> Strip:
        header = self._styles.get((False, "#header"))
        sorted_style = self._styles.get((False, "#sorted"))
        if header is None or sorted_style is None:
            header = base + self.get_component_rich_style("layer-table--header")
            sorted_style = header + self.get_component_rich_style("layer-table--sorted")
            self._styles[False, "#header"], self._styles[False, "#sorted"] = header, sorted_style
        sorted_key = SORTED_COLUMN.get(self.sort)
        arrow = ARROWS[(self.sort in DESCENDING) != self.reverse]
        segments: list[Segment] = []
        for cell in self.columns():
            column = cell.column
            is_sorted = column.key == sorted_key
            label = cell.label + arrow if is_sorted else cell.label
            segments.append(Segment(fit(label, cell.width, column.right),
                                    sorted_style if is_sorted else header))
            segments.append(Segment(" ", header))
        return Strip(segments[:-1]).adjust_cell_length(width, header)

    def _row(self, track: LayerTrack, is_cursor: bool, width: int) -> Strip:
        style = self._style("", is_cursor)
        muted = self._style("layer-table--muted", is_cursor)
        flag = self.flags.get(track.name)
        flagged = self._style(f"layer-table--{flag}", is_cursor) if flag else style
        measured = track.latest is not None
        segments: list[Segment] = []
        for cell in self.columns():
            column = cell.column
            key = column.key
            cell_style = style
            if key == "mark":
                text, cell_style = MARKS.get(flag or "", " "), flagged
            elif key == "name":
                text, cell_style = track.name, flagged
            elif key == "type":
                text = track.layer_type
            elif key == "params":
                text = fmt.count(track.param_count)
            elif key == "trainable":
                # Without weights a layer is neither trainable nor frozen.
                text = ("✓" if track.trainable else "✗") if has_weights(track) else fmt.MISSING
                if not track.trainable:
                    cell_style = muted
            elif key == "history":
                text = self._spark(track, cell.width) if measured else ""
                cell_style = self._style("layer-table--spark", is_cursor)
            else:
                assert column.metric is not None
                value = track.value(column.metric)
                if key == "grad_norm":
                    text = fmt.number(value)
                elif key == "update_ratio":
                    text = fmt.log10(value)
                else:
                    text = fmt.percent(value)
                level = severity(column.metric, value)
                if level is not None:
                    cell_style = self._style(f"layer-table--{level}", is_cursor)
            if text == fmt.MISSING:
                cell_style = muted
            segments.append(Segment(fit(text, cell.width, column.right), cell_style))
            segments.append(Segment(" ", style))
        return Strip(segments[:-1]).adjust_cell_length(width, style)

    def _ink(self, name: str) -> Style:
        """A component style's colour and weight only: its background (the
        widget's own) would paint over the cursor row's highlight."""
        full = self.get_component_rich_style(name)
        return Style(color=full.color, bold=full.bold, italic=full.italic, dim=full.dim)

    def _spark(self, track: LayerTrack, width: int) -> str:
        # Training-phase rows have no gradient: the sparkline skips those steps.
        # One log scale for every row (the smallest to the largest norm shown), so a
        # vanishing layer sits low and the output layer high.
        values: Sequence[float] = track.recent_grads
        if self.bounds is None:
            return fmt.spark(list(values), width)[0]
        return fmt.spark(list(values), width, bounds=self.bounds, log=True)[0]
