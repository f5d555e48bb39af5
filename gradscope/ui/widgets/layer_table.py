"""The live per-layer table: a line-API widget that formats only the rows on screen,
so a 1000-layer model refreshed ten times a second costs a screenful, not a model."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click, Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gradscope.ui import format as fmt
from gradscope.ui.state import LayerTrack


class Column(NamedTuple):
    key: str
    label: str
    width: int  # 0 = takes the room left
    right: bool = False


COLUMNS = (
    Column("mark", "", 1),
    Column("name", "layer", 0),
    Column("type", "type", 10),
    Column("params", "params", 7, right=True),
    Column("trainable", "T", 1),
    Column("grad_norm", "grad norm", 9, right=True),
    Column("history", "history", 8),
    Column("update_ratio", "log upd", 7, right=True),
    Column("dead", "dead", 5, right=True),
    Column("saturated", "sat", 5, right=True),
)
# The column each sort order sorts on (its header gets the sort mark).
SORTED_COLUMN = {"grad_norm": "grad_norm", "update_ratio": "update_ratio", "dead": "dead"}
MIN_NAME = 8
MARKS = {"error": "●", "warning": "▲", "info": "·"}


def fit(text: str, width: int, right: bool = False) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


class LayerTable(ScrollView, can_focus=True):
    """One row per layer, latest figures; Enter opens the layer."""

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

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[LayerTrack] = []
        self.flags: dict[str, str] = {}
        self.sort = "forward"
        self.cursor = 0
        self._longest = 0  # the longest layer name among the rows
        self.paints = 0  # full repaints, for scripts/bench_ui.py

    # --- data ------------------------------------------------------------------

    def set_rows(self, rows: list[LayerTrack], flags: dict[str, str], sort: str) -> None:
        self.rows, self.flags, self.sort = rows, flags, sort
        self._longest = max((len(track.name) for track in rows), default=0)
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        self._update_virtual_size()
        self.refresh()

    @property
    def cursor_layer(self) -> str | None:
        return self.rows[self.cursor].name if self.rows else None

    def visible_names(self) -> list[str]:
        """The layer names in table order (all rows, not just the ones on screen)."""
        return [track.name for track in self.rows]

    def _update_virtual_size(self) -> None:
        # The header takes the first line; rows scroll beneath it.
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)

    def on_resize(self, event: Resize) -> None:
        self._update_virtual_size()

    # --- keys ------------------------------------------------------------------

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

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:  # the border or the header
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain >= 2:
                self.action_open()
            self.move_cursor(index)

    # --- drawing ---------------------------------------------------------------

    def _widths(self, width: int) -> list[int]:
        # The name column takes the room left, but no more than the longest name needs.
        fixed = sum(c.width for c in COLUMNS) + len(COLUMNS) - 1
        name = max(MIN_NAME, min(width - fixed, max(self._longest, len(COLUMNS[1].label))))
        return [c.width or name for c in COLUMNS]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            self.paints += 1
            return self._header(width, base)
        index = round(self.scroll_y) + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        return self._row(self.rows[index], index == self.cursor, width, base)

    def _header(self, width: int, base: Style) -> Strip:
        header = base + self.get_component_rich_style("layer-table--header")
        sorted_style = header + self.get_component_rich_style("layer-table--sorted")
        sorted_key = SORTED_COLUMN.get(self.sort)
        segments: list[Segment] = []
        for column, cell_width in zip(COLUMNS, self._widths(width), strict=True):
            label = column.label + ("↓" if column.key == sorted_key else "")
            style = sorted_style if column.key == sorted_key else header
            segments.append(Segment(fit(label, cell_width, column.right), style))
            segments.append(Segment(" ", header))
        return Strip(segments).adjust_cell_length(width, header)

    def _row(self, track: LayerTrack, is_cursor: bool, width: int, base: Style) -> Strip:
        style = base + self.get_component_rich_style("layer-table--cursor") if is_cursor else base
        muted = style + self.get_component_rich_style("layer-table--muted")
        flag = self.flags.get(track.name)
        flagged = style + self.get_component_rich_style(f"layer-table--{flag}") if flag else style
        spark_style = style + self.get_component_rich_style("layer-table--spark")

        measured = track.latest is not None
        # Training-phase rows have no gradient: the sparkline skips those steps.
        history = list(track.recent_grads)
        cells = {
            "mark": (MARKS.get(flag or "", " "), flagged),
            "name": (track.name, flagged),
            "type": (track.layer_type, style),
            "params": (fmt.count(track.param_count), style),
            "trainable": ("✓" if track.trainable else "✗", style if track.trainable else muted),
            "grad_norm": (fmt.number(track.value("grad_norm")), style),
            "history": (fmt.spark(history, COLUMNS[6].width)[0] if measured else "", spark_style),
            "update_ratio": (fmt.log10(track.value("update_ratio")), style),
            "dead": (fmt.percent(track.value("act_dead_frac")), style),
            "saturated": (fmt.percent(track.value("act_saturated_frac")), style),
        }
        segments: list[Segment] = []
        for column, cell_width in zip(COLUMNS, self._widths(width), strict=True):
            text, cell_style = cells[column.key]
            if text == fmt.MISSING:
                cell_style = muted
            segments.append(Segment(fit(text, cell_width, column.right), cell_style))
            segments.append(Segment(" ", style))
        return Strip(segments).adjust_cell_length(width, style)
