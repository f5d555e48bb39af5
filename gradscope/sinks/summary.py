"""The short human summary printed in headless mode, causes first."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from gradscope.events import Event, Note, PhaseChanged, RunFinished, VerdictIssued
from gradscope.report import Report, headline, nothing_found, unchecked
from gradscope.verdict_text import format_verdict, verdicts_block
from gradscope.verdicts import Verdict

__all__ = ["SummarySink", "headline", "nothing_found", "unchecked"]


class SummarySink:
    """Prints the verdicts once the diagnosis is over, then any later verdict as it comes.

    The diagnosis is over at the first PhaseChanged to "train" or "done", or at
    RunFinished when neither came. Warning and error Notes print at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        # Resolved here rather than as a default argument, so a redirected sys.stderr is used.
        self.stream = stream if stream is not None else sys.stderr
        self.colour = _wants_colour(self.stream)
        self.report = Report()
        self._printed = False

    def handle(self, event: Event) -> None:
        self.report.apply(event)
        if isinstance(event, VerdictIssued):
            if self._printed:
                self._write(self.format_verdict(event.verdict))
        elif isinstance(event, Note):
            if event.level in ("warning", "error"):
                self._write(f"gradscope: {event.text}")
        elif isinstance(event, PhaseChanged):
            if event.phase in ("train", "done"):
                self._print_summary()
        elif isinstance(event, RunFinished):
            self._print_summary()

    def close(self) -> None:
        # A run cut short without RunFinished still gets what was found.
        self._print_summary()

    def _print_summary(self) -> None:
        if self._printed:
            return
        self._printed = True
        # fit() never reached (script error, no fit): the CLI says so; "no problems" would mislead.
        if self.report.model is None and not self.report.verdicts:
            return
        self._write(self.render())

    def render(self) -> str:
        """The summary block as text (without the trailing newline)."""
        return verdicts_block(self.report, colour=self.colour)

    def format_verdict(self, verdict: Verdict) -> str:
        return format_verdict(verdict, colour=self.colour)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
