"""`l`: what the run printed (Keras progress, TensorFlow logs, the script's own
prints and, if it crashed, its traceback), captured so it never draws over the UI."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from gradscope.ui.state import RunState


class LogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("l", "app.pop_screen", "Back", show=False),
    ]

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self.state = state
        self._shown = 0  # output_total when last drawn

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title")
        yield RichLog(id="log", markup=False, highlight=False, wrap=False, max_lines=5000)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        log = self.query_one(RichLog)
        new = self.state.output_total - self._shown
        lines = list(self.state.output)[-new:] if new > 0 else []
        for line in lines:
            log.write(line.text if line.stream == "stdout" else f"{line.text}")
        self._shown = self.state.output_total
        finished = self.state.finished
        status = (
            f" - finished: {finished.status}, exit {finished.exit_code}" if finished else " - running"
        )
        self.query_one("#log-title", Static).update(
            f"output of the run ({self.state.output_total} lines){status}"
        )
