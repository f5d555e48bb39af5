"""GradscopeApp: the Textual front end. It reads events from a source and nothing else.

No TensorFlow, no Keras: `gradscope view` opens instantly and the tests need neither.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from gradscope.ui.screens.help import HelpScreen
from gradscope.ui.screens.log import LogScreen
from gradscope.ui.screens.overview import OverviewScreen
from gradscope.ui.sources import EventSource, QueueSource
from gradscope.ui.state import RunState

REFRESH_INTERVAL = 0.1  # seconds: at most ten redraws a second, however fast events come


class GradscopeApp(App[None]):
    """Shows a run as its events arrive from `source` (replay or live)."""

    CSS_PATH = "gradscope.tcss"
    TITLE = "gradscope"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # Ctrl-C quits at once, as in any terminal program (not Textual's "press ctrl+q").
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("p", "toggle_pause", "Pause"),
        Binding("question_mark", "help", "Help"),
        Binding("l", "log", "Log"),
    ]

    def __init__(self, source: EventSource, *, refresh_interval: float = REFRESH_INTERVAL) -> None:
        super().__init__()
        self.source = source
        # A recording (gradscope view) has nothing more to come: no pause to offer.
        self.live = bool(getattr(source, "live", True))
        self.refresh_interval = refresh_interval
        self.state = RunState()
        self.paused = False
        # While paused, drained events wait here (bounded the same way as a live channel).
        self._held = QueueSource()

    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen(self.state)

    def on_mount(self) -> None:
        # A replay shows at once: fold what is there now, draw once the screen is up.
        self.state.apply_all(self.source.drain())
        self.call_after_refresh(self._refresh_screen)
        self.set_interval(self.refresh_interval, self.drain)

    def drain(self) -> None:
        """Take what the source has; fold it in and redraw, unless the view is paused."""
        events = self.source.drain()
        if self.paused:
            if events:
                self._held.put_many(events)
                self._refresh_screen()
            return
        if self.state.apply_all(events):
            self._refresh_screen()

    def _refresh_screen(self) -> None:
        # Only the screen on top is redrawn; one that comes back redraws on resume.
        refresh_view = getattr(self.screen, "refresh_view", None)
        if refresh_view is not None:
            refresh_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Pausing a recording means nothing: the key is neither offered nor bound.
        if action == "toggle_pause":
            return self.live
        return True

    def held_count(self) -> int:
        return self._held.pending()

    def dropped_count(self) -> int:
        return int(getattr(self.source, "dropped", 0)) + self._held.dropped

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.state.apply_all(self._held.drain())
        self._refresh_screen()
        self.notify("view paused: events are kept" if self.paused else "view resumed", timeout=2)

    def action_log(self) -> None:
        if not isinstance(self.screen, LogScreen):
            self.push_screen(LogScreen(self.state, live=self.live))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
