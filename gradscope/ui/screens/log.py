"""`l`: what the run printed (Keras progress, the script's own prints and, if it
crashed, its traceback), captured so it never draws over the UI.

Each line is shown as the terminal showed it, colours included (live mode
runs the script on a pseudo-terminal and interprets its `\r`s, `\b`s and
escape sequences: `gradscope/terminal_lines.py`). A line still being drawn
(a progress bar) is the log's last line and is redrawn in place until it is
finished. TensorFlow's start-up lines are folded into one muted line (`t`
shows them); the record keeps them. A recording made headless holds no output
(but TensorFlow's start-up lines): the screen says so, and shows the script's
traceback when it raised.
"""

from __future__ import annotations

from itertools import islice
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from gradscope.events import OutputLine
from gradscope.output_noise import tf_noise
from gradscope.report import plural
from gradscope.terminal_lines import has_controls, render
from gradscope.ui.state import RunState

NO_OUTPUT = "this recording holds no output of the run"


def line_text(line: OutputLine) -> Text:
    """A line as the terminal showed it: its colours from `ansi`. Records made
    before live mode interpreted the terminal's codes kept them in `text`."""
    if line.ansi:
        return Text.from_ansi(line.ansi)
    if has_controls(line.text):
        shown = render(line.text)
        return Text.from_ansi(shown.ansi) if shown.ansi else Text(shown.text)
    return Text(line.text)


class OutputLog(RichLog):
    """A RichLog whose last lines can be taken back: a line still being drawn
    is written, then replaced by its next state."""

    def drop_last(self, count: int) -> None:
        if count <= 0:
            return
        if not self._size_known:  # writes wait for the first size: drop them there
            for _ in range(min(count, len(self._deferred_renders))):
                self._deferred_renders.pop()
            return
        del self.lines[-count:]
        # Cached strips are keyed by line number: the replaced line's would show.
        self._line_cache.clear()
        self.virtual_size = Size(self._widest_line_width, len(self.lines))
        self.refresh()


class LogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("l", "app.pop_screen", "Back", show=False),
        Binding("t", "toggle_noise", "TF start-up lines"),
    ]

    def __init__(self, state: RunState, *, live: bool = True) -> None:
        super().__init__()
        self.state = state
        self.live = live
        self.show_noise = False
        self.hidden = 0  # TensorFlow start-up lines not shown
        self.printed = 0  # lines the run printed that are not TensorFlow's start-up
        self._shown = 0  # output_total when last drawn
        self._traceback_shown = False
        # The lines still being drawn (partial) at the log's end, as last drawn,
        # and how many log lines they took.
        self._partials: tuple[OutputLine, ...] = ()
        self._partial_rows = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="log-title", markup=False)
        yield Static("", id="log-hidden", markup=False)
        yield OutputLog(id="log", markup=False, highlight=False, wrap=False, max_lines=5000)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_view()
        self.query_one(OutputLog).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_noise":
            return self.hidden > 0 or self.show_noise
        return True

    def action_toggle_noise(self) -> None:
        self.show_noise = not self.show_noise
        self._redraw()

    def _redraw(self) -> None:
        self.query_one(OutputLog).clear()
        self._partials, self._partial_rows = (), 0
        self._shown = 0
        self.hidden = 0
        self.printed = 0
        self._traceback_shown = False
        self.refresh_view()

    def refresh_view(self) -> None:
        log = self.query_one(OutputLog)
        state = self.state
        output = state.output
        # The report keeps the partial lines (one per stream at most) at the end.
        partials: list[OutputLine] = []
        for line in reversed(output):
            if not line.partial or len(partials) == 2:
                break
            partials.append(line)
        partials.reverse()
        new = min(state.output_total - self._shown, len(output) - len(partials))
        hidden_before = self.hidden
        if new > 0 or tuple(partials) != self._partials:
            log.drop_last(self._partial_rows)
            self._partial_rows = 0
            lines = list(islice(reversed(output), len(partials), len(partials) + new))
            for line in reversed(lines):
                noise = tf_noise(line.text)
                self.printed += not noise
                if noise and not self.show_noise:
                    self.hidden += 1
                    continue
                log.write(line_text(line))
            for line in partials:
                if line.text and (self.show_noise or not tf_noise(line.text)):
                    log.write(line_text(line))
                    self._partial_rows += 1
            self._partials = tuple(partials)
        self._shown = state.output_total
        finished = state.finished
        if (not self.printed and finished is not None and finished.traceback
                and not self._traceback_shown and not self._partial_rows):
            # A headless recording: no output lines (TensorFlow's start-up lines
            # at most), but the traceback is in its end.
            self._traceback_shown = True
            for text in finished.traceback.rstrip("\n").splitlines():
                log.write(text)
        self._update_titles()
        if self.hidden != hidden_before:
            self.refresh_bindings()

    def _update_titles(self) -> None:
        finished = self.state.finished
        if self.printed:
            what = f"output of the run · {plural(self.printed, 'line')}"
        elif self._traceback_shown:
            what = f"the script's traceback ({NO_OUTPUT})" if not self.live \
                else "the script's traceback"
        elif not self.live:
            what = NO_OUTPUT
        else:
            what = "output of the run · nothing printed yet"
        when = f"finished · exit {finished.exit_code}" if finished else (
            "running" if self.live else "the recording ends here")
        self.query_one("#log-title", Static).update(f"{what} · {when}")
        hidden = self.query_one("#log-hidden", Static)
        count = self.hidden
        if self.show_noise:
            hidden.update("TensorFlow's start-up lines are shown · t hides them")
        else:
            hidden.update(f"{plural(count, 'TensorFlow start-up line')} hidden · t shows them")
        hidden.display = bool(count) or self.show_noise
