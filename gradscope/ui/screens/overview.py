"""The overview: header, ranked verdicts, the live layer table, the loss, the status."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Input

from gradscope.ui.state import SORT_LABELS, SORTS, RunState, export_csv, ordered_layers
from gradscope.ui.widgets.charts import ChartsRow
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.ui.widgets.run_info import RunHeader, StatusLine
from gradscope.ui.widgets.verdicts import VerdictPanel

if TYPE_CHECKING:
    from gradscope.ui.app import GradscopeApp


def export_path(folder: str = ".") -> str:
    """A new `gradscope-export-<time>.csv` in `folder` (numbered if taken)."""
    stem = os.path.join(folder, f"gradscope-export-{time.strftime('%Y%m%d-%H%M%S')}")
    path, number = f"{stem}.csv", 1
    while os.path.exists(path):
        path, number = f"{stem}-{number}.csv", number + 1
    return path


class OverviewScreen(Screen[None]):
    """Everything about the run on one screen; Enter opens a layer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("e", "export", "Export"),
        Binding("v", "toggle_verdicts", "Verdicts"),
        Binding("escape", "clear_filter", "All layers"),
    ]

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
        self.sort = "forward"
        self.needle = ""
        self._seen: dict[str, object] = {}

    @property
    def gs_app(self) -> GradscopeApp:
        return cast("GradscopeApp", self.app)

    def compose(self) -> ComposeResult:
        yield RunHeader()
        yield VerdictPanel(id="verdicts", classes="-folded")
        yield Input(placeholder="filter layers by name (Enter keeps it, Esc clears)", id="filter")
        yield LayerTable(id="layers")
        yield ChartsRow(id="charts")
        yield StatusLine()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(LayerTable).focus()
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    @property
    def table(self) -> LayerTable:
        return self.query_one(LayerTable)

    def refresh_view(self) -> None:
        """Redraw what changed since the last call."""
        state, app = self.state, self.gs_app
        status = (state.revision, app.paused, app.held_count(), app.dropped_count())
        if self._seen.get("status") != status:
            self._seen["status"] = status
            self.query_one(RunHeader).update_from(state, app.paused)
            self.query_one(StatusLine).update_from(state, *status[1:])
        verdicts = (state.verdict_revision, len(state.notes), state.finished is not None)
        if self._seen.get("verdicts") != verdicts:
            self._seen["verdicts"] = verdicts
            self.query_one(VerdictPanel).update_from(
                state.ranked_verdicts(), state.notes, state.finished is not None
            )
        table = (state.layer_revision, state.verdict_revision, self.sort, self.needle)
        if self._seen.get("table") != table:
            self._seen["table"] = table
            rows = ordered_layers(state, self.sort, self.needle)
            self.table.set_rows(rows, state.layer_flags(), self.sort)
            title = f"Layers ({len(rows)}"
            if self.needle:
                title += f" of {len(state.layers)} matching '{escape(self.needle)}'"
            self.table.border_title = f"{title}) · sort: {SORT_LABELS[self.sort]}"
        self.query_one(ChartsRow).update_from(state, state.layer_flags())

    # --- actions ---------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.refresh_view()
        self.table.move_cursor(0)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Esc is in the footer only while there is a filter to clear.
        if action == "clear_filter":
            return bool(self.needle) or self.has_class("-filtering")
        return True

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#filter", Input).focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        if not self.needle and not self.has_class("-filtering"):
            return
        self.needle = ""
        self.query_one("#filter", Input).value = ""
        self.remove_class("-filtering")
        self.table.focus()
        self.refresh_view()
        self.refresh_bindings()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self.refresh_view()
        self.table.move_cursor(0)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.needle:
            self.remove_class("-filtering")
        self.table.focus()
        self.refresh_bindings()

    def action_toggle_verdicts(self) -> None:
        panel = self.query_one(VerdictPanel)
        panel.toggle_class("-folded", "-unfolded")
        if panel.has_class("-unfolded"):
            panel.focus()
        else:
            self.table.focus()

    def action_export(self) -> None:
        path = export_path()
        try:
            count = export_csv(path, self.table.rows)
        except OSError as error:
            self.notify(f"cannot export to {path}: {error.strerror or error}", severity="error")
            return
        self.notify(f"exported {count} layer rows to {os.path.abspath(path)}", title="Export")

    def on_layer_table_opened(self, event: LayerTable.Opened) -> None:
        from gradscope.ui.screens.layer import LayerScreen

        self.app.push_screen(LayerScreen(self.state, event.layer))
