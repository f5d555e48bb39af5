"""The overview: header, ranked verdicts, the live layer table, the loss, the status."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Input

from gradscope.ui.state import (
    SORTS,
    RunState,
    TableFigures,
    export_csv,
    ordered_layers,
    sort_label,
)
from gradscope.ui.widgets.charts import ChartsRow
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.ui.widgets.run_info import RunHeader, StatusLine, outcome_text
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


TABLE_MIN_HEIGHT = 5  # the table's title and header, and three layers


def diagnosed(state: RunState) -> bool:
    """The diagnosis is over (the user's own training goes on, or the run ended):
    no verdict by now means none was found, not "still diagnosing"."""
    phase = state.phase_event.phase if state.phase_event else None
    return state.finished is not None or phase in ("train", "done")


TABLE_ACTIONS = frozenset({"cycle_sort", "reverse_sort", "toggle_flagged", "filter", "export"})


class OverviewScreen(Screen[None]):
    """Everything about the run on one screen; Enter opens a layer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("f", "toggle_flagged", "Flagged"),
        Binding("slash", "filter", "Filter"),
        Binding("e", "export", "Export"),
        Binding("v", "toggle_verdicts", "Verdicts"),
        Binding("escape", "clear_filter", "All layers"),
    ]

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
        self.sort = "forward"
        self.reverse = False
        self.needle = ""
        self.flagged_only = False  # only the layers a verdict names
        self._figures = TableFigures()  # the table's scale and figures' steps, kept per layer
        self._seen: dict[str, object] = {}
        self._bounds: tuple[float, float] | None = None  # the table's history scale
        self._figures_title = ""  # where the table's figures come from
        # The layer and verdict revisions the last data refresh showed.
        self._revisions: tuple[int, int] | None = None

    @property
    def gs_app(self) -> GradscopeApp:
        return cast("GradscopeApp", self.app)

    def compose(self) -> ComposeResult:
        yield RunHeader()
        # The verdicts take the room their headline needs; the table yields it
        # (down to TABLE_MIN_HEIGHT), then the verdicts scroll.
        with Vertical(id="main"):
            yield VerdictPanel(id="verdicts", classes="-folded")
            yield Input(placeholder="filter layers by name (Enter keeps it, Esc clears)",
                        id="filter")
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

    def refresh_view(self, *, data: bool = True) -> None:
        """Redraw what changed since the last call.

        `data=False`, a key's own redraw (sort, filter): only the table's rows, in
        their new order. What new data changes (the header, the status, the
        verdicts, the charts, the history's scale and the title's steps) waits
        for the next refresh, a tenth of a second away, so that the key's frame
        draws the table alone.
        """
        state, app = self.state, self.gs_app
        if data or self._revisions is None:
            status = (state.revision, app.paused, app.held_count(), app.dropped_count())
            if self._seen.get("status") != status:
                self._seen["status"] = status
                self.query_one(RunHeader).update_from(state, app.paused, live=app.live)
                self.query_one(StatusLine).update_from(state, *status[1:], live=app.live)
            verdicts = (state.verdict_revision, len(state.notes), state.finished is not None,
                        diagnosed(state))
            if self._seen.get("verdicts") != verdicts:
                self._seen["verdicts"] = verdicts
                self._show_verdicts()
            self._revisions = (state.layer_revision, state.verdict_revision)
        table = (*self._revisions, self.sort, self.reverse, self.needle, self.flagged_only)
        if self._seen.get("table") != table:
            self._seen["table"] = table
            rows = ordered_layers(state, self.sort, self.needle, reverse=self.reverse,
                                  flagged_only=self.flagged_only)
            # The history's scale and the figures' steps do not depend on the order:
            # a sort key (or a click on a header) reads neither again.
            figures_of = (*self._revisions, self.needle, self.flagged_only)
            if self._seen.get("figures") != figures_of:
                self._seen["figures"] = figures_of
                # One scale for every row's history: the gradient norms of all layers.
                self._bounds = self._figures.grad_bounds(state.layers.values())
                # Where the figures come from: the verdicts quote medians over the probe
                # steps, the table one step's figures (the user's epochs measure weights only).
                self._figures_title = self._figures.title(
                    rows, epochs=state.legacy_training())
            self.table.set_rows(rows, state.layer_flags(), self.sort, reverse=self.reverse,
                                bounds=self._bounds)
            title = f"Layers ({len(rows)}"
            if self.needle or self.flagged_only:
                title += f" of {len(state.layers)}"
            if self.flagged_only:
                title += ", flagged"
            if self.needle:
                title += f", matching '{escape(self.needle)}'"
            title += f") · sort: {sort_label(self.sort, self.reverse)}"
            figures = self._figures_title
            self.table.border_title = f"{title} · {figures}" if figures else title
        if data:
            self.query_one(ChartsRow).update_from(state, state.layer_flags())

    def _show_verdicts(self) -> None:
        state, finished = self.state, self.state.finished
        # A script that raised before its model reached fit(): its error is the
        # news, never an empty list that would read as "no problem found".
        crashed = (finished is not None and finished.status == "script-error"
                   and state.model is None and not state.verdicts)
        empty = None
        if (finished is not None and not state.verdicts
                and finished.status not in ("ok", "probe-only")):
            empty = f"nothing was diagnosed: {outcome_text(state)}"
        error = traceback = ""
        if crashed and finished is not None:
            error, traceback = finished.error or "the script raised", finished.traceback
        panel = self.query_one(VerdictPanel)
        panel.update_from(state.ranked_verdicts(), state.notes, diagnosed(state), empty=empty,
                          error=error, traceback=traceback)
        if crashed != self.has_class("-crashed"):
            self.set_class(crashed, "-crashed")
            self.refresh_bindings()
            if crashed:
                panel.focus()
        self.call_after_refresh(self.fit_verdicts)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_verdicts)

    def fit_verdicts(self) -> None:
        """The verdict panel may grow until the layer table keeps TABLE_MIN_HEIGHT
        lines (its title, its header, three layers); past that it scrolls."""
        main = self.query_one("#main")
        room = main.content_region.height
        if not self.has_class("-crashed"):
            room -= TABLE_MIN_HEIGHT
            if self.has_class("-filtering"):
                room -= 1
        panel = self.query_one(VerdictPanel)
        height = max(3, room)
        if self._seen.get("panel_max") != height:
            self._seen["panel_max"] = height
            panel.styles.max_height = height
        panel.call_after_refresh(panel.update_more_mark)

    def on_descendant_focus(self) -> None:
        # The filter's line comes and goes with the focus: the panel makes room.
        self.call_after_refresh(self.fit_verdicts)

    # --- actions ---------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        self.sort_by(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)], reverse=False)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort, reverse=not self.reverse)

    def on_layer_table_sort_clicked(self, event: LayerTable.SortClicked) -> None:
        # A click on a header sorts by its column; a second click reverses.
        self.sort_by(event.sort, reverse=not self.reverse if event.sort == self.sort else False)

    def sort_by(self, sort: str, reverse: bool) -> None:
        self.sort, self.reverse = sort, reverse
        self.refresh_view(data=False)
        self.table.move_cursor(0)

    def action_toggle_flagged(self) -> None:
        self.flagged_only = not self.flagged_only
        self.refresh_view(data=False)
        self.table.move_cursor(0)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The table's keys mean nothing while a crash before fit() hides the table.
        if action in TABLE_ACTIONS and self.has_class("-crashed"):
            return False
        # Esc is in the footer only while there is a filter to clear.
        if action == "clear_filter":
            return bool(self.needle) or self.flagged_only or self.has_class("-filtering")
        return True

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#filter", Input).focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        if not self.needle and not self.flagged_only and not self.has_class("-filtering"):
            return
        self.needle = ""
        self.flagged_only = False
        self.query_one("#filter", Input).value = ""
        self.remove_class("-filtering")
        self.table.focus()
        self.refresh_view(data=False)
        self.refresh_bindings()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self.refresh_view(data=False)
        self.table.move_cursor(0)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not self.needle:
            self.remove_class("-filtering")
        self.table.focus()
        self.refresh_bindings()

    def action_toggle_verdicts(self) -> None:
        panel = self.query_one(VerdictPanel)
        panel.set_unfolded(not panel.unfolded)
        if panel.unfolded:
            panel.focus()
        else:
            self.table.focus()

    def action_export(self) -> None:
        path = export_path()
        try:
            count = export_csv(path, self.table.rows, self._figures)
        except OSError as error:
            self.notify(f"cannot export to {path}: {error.strerror or error}", severity="error")
            return
        self.notify(f"exported {count} layer rows to {os.path.abspath(path)}", title="Export")

    def on_layer_table_opened(self, event: LayerTable.Opened) -> None:
        from gradscope.ui.screens.layer import LayerScreen

        self.app.push_screen(LayerScreen(self.state, event.layer))
