"""DiffApp: `gradscope diff` in a terminal. It shows one `Comparison` (no events,
no TensorFlow), the same one `gradscope diff --text` prints."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from gradscope.compare import Comparison
from gradscope.ui.screens.diff import DiffHelpScreen, DiffScreen


class DiffApp(App[None]):
    """Two recorded runs compared: verdict changes, layers side by side, both losses."""

    TITLE = "gradscope diff"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(self, comparison: Comparison, before_path: str, after_path: str) -> None:
        super().__init__()
        self.comparison = comparison
        self.before_path, self.after_path = before_path, after_path

    def get_default_screen(self) -> Screen[None]:
        return DiffScreen(self.comparison, self.before_path, self.after_path)

    def action_help(self) -> None:
        if not isinstance(self.screen, DiffHelpScreen):
            self.push_screen(DiffHelpScreen())
