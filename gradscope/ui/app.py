"""GradscopeApp: the Textual front end. It reads events from a source and nothing else.

No TensorFlow, no Keras: `gradscope view` opens instantly and the tests need neither.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator
from typing import ClassVar

import textual.screen
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from gradscope.events import Event
from gradscope.ui.screens.help import HelpScreen
from gradscope.ui.screens.log import LogScreen
from gradscope.ui.screens.overview import OverviewScreen
from gradscope.ui.sources import EventSource, QueueSource, weight
from gradscope.ui.state import RunState

REFRESH_INTERVAL = 0.1  # seconds: at most ten redraws a second, however fast events come
# Layer rows folded in one go (about 1-3 ms): a bigger drain is folded in slices
# of this size with the event loop free between them, so a key press never
# waits for a whole tick's worth of a 1000-layer model's steps.
FOLD_SLICE_ROWS = 1000
# Textual draws a screen's changes on a timer of 1/TEXTUAL_FPS (60) seconds. When
# a frame overran its slot (a data refresh's frame: 10-20 ms), that timer skips
# ahead and waits one to two whole periods, 17-33 ms, before the next one: a key
# pressed then waited that long to be drawn. With 2 ms, a change is drawn as
# soon as the event loop is free; changes made together still share one frame.
FRAME_PERIOD = 0.002


def fast_frames() -> None:
    """Screens made from now on draw their changes every FRAME_PERIOD at most
    (unless the user chose a rate with TEXTUAL_FPS)."""
    if "TEXTUAL_FPS" not in os.environ:
        period = min(float(getattr(textual.screen, "UPDATE_PERIOD", FRAME_PERIOD)), FRAME_PERIOD)
        setattr(textual.screen, "UPDATE_PERIOD", period)  # noqa: B010 (a Final in Textual)


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
        fast_frames()
        self.source = source
        # A recording (gradscope view) has nothing more to come: no pause to offer.
        self.live = bool(getattr(source, "live", True))
        self.refresh_interval = refresh_interval
        self.state = RunState()
        self.paused = False
        # While paused, drained events wait here (bounded the same way as a live channel).
        self._held = QueueSource()
        # Events drained but not folded yet (a large drain is folded in slices).
        self._backlog = QueueSource()
        self._folding = False
        self._ended = False  # RunFinished folded in (the footer was told)
        self._frozen = False  # gc.freeze() in force (see _freeze_heap)

    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen(self.state)

    def on_mount(self) -> None:
        # A replay shows at once: fold what is there now, draw once the screen is up.
        self.state.apply_all(self.source.drain())
        self.call_after_refresh(self._refresh_screen)
        self.call_after_refresh(self._freeze_heap)
        self.set_interval(self.refresh_interval, self.drain)

    def _freeze_heap(self) -> None:
        """Leave what exists once the screen is up (modules, Textual's widgets and
        styles: most of the objects the garbage collector tracks) out of its full
        collections: each one would read them all again, a 30-60 ms pause that a
        key pressed then waits out. They are still freed when no longer referenced."""
        if not self._frozen:
            gc.collect()  # no garbage left in what is frozen
            gc.freeze()
            self._frozen = True

    def on_unmount(self) -> None:
        if self._frozen:  # the next full collection may reclaim the app's cycles
            gc.unfreeze()
            self._frozen = False

    def drain(self) -> None:
        """Take what the source has; fold it in and redraw, unless the view is paused.

        A small drain is folded at once; a large one (a 1000-layer model's
        steps streaming in) in slices, with the event loop free between them.
        """
        events = self.source.drain()
        if self.paused:
            if events:
                self._held.put_many(events)
                self._refresh_screen()
            return
        if not events:
            return
        if self._folding:
            self._backlog.put_many(events)
        elif sum(weight(e) for e in events) <= FOLD_SLICE_ROWS:
            if self.state.apply_all(events):
                self._refresh_screen()
        else:
            self._backlog.put_many(events)
            self._folding = True
            self.run_worker(self._fold_backlog(), group="fold", exit_on_error=False)

    async def _fold_backlog(self) -> None:
        try:
            while True:
                events = self._backlog.drain()
                if not events:
                    break
                for chunk in _slices(events, FOLD_SLICE_ROWS):
                    self.state.apply_all(chunk)
                    await asyncio.sleep(0)  # a key press may be handled here
                self._refresh_screen()
        finally:
            self._folding = False

    def _refresh_screen(self) -> None:
        if self.state.finished is not None and not self._ended:
            self._ended = True
            self.refresh_bindings()  # nothing more to come: no pause to offer
        # Only the screen on top is redrawn; one that comes back redraws on resume.
        refresh_view = getattr(self.screen, "refresh_view", None)
        if refresh_view is not None:
            refresh_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Pausing a recording, or a run that has ended, means nothing: the key is
        # neither offered nor bound (while paused it stays, to resume).
        if action == "toggle_pause":
            return self.live and (self.state.finished is None or self.paused)
        return True

    def held_count(self) -> int:
        return self._held.pending()

    def dropped_count(self) -> int:
        return int(getattr(self.source, "dropped", 0)) + self._held.dropped + self._backlog.dropped

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


def _slices(events: list[Event], rows: int) -> Iterator[list[Event]]:
    """`events` in order, cut into runs of at most `rows` layer rows (at least one event)."""
    chunk: list[Event] = []
    used = 0
    for event in events:
        cost = weight(event)
        if chunk and used + cost > rows:
            yield chunk
            chunk, used = [], 0
        chunk.append(event)
        used += cost
    if chunk:
        yield chunk
