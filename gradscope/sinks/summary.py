"""The short human summary printed in headless mode, causes first."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from gradscope.events import (
    Event,
    LayerStats,
    ModelDescribed,
    Note,
    PhaseChanged,
    RunFinished,
    StepStats,
    VerdictIssued,
)
from gradscope.verdicts import Verdict, rank

WIDTH = 80
_LABEL_WIDTH = 8  # "WARNING " is the widest severity label
_INDENT = " " * (2 + _LABEL_WIDTH)
_COLOURS = {"error": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m"}
_RESET = "\033[0m"


def headline(ranked: Sequence[Verdict]) -> Verdict | None:
    """The most likely cause: the first ranked verdict, if it is a problem (error or warning)."""
    if ranked and ranked[0].severity in ("error", "warning"):
        return ranked[0]
    return None


def unchecked(notes: Sequence[Note]) -> list[str]:
    """Check IDs that could not run (experiments cut short, lost to an error)."""
    return sorted({check for note in notes for check in note.unchecked})


def nothing_found(notes: Sequence[Note], steps: str = "") -> str:
    """What to say when no verdict came: never "no problems found" while some
    checks could not run."""
    missing = unchecked(notes)
    if missing:
        return (
            f"no problems found by the checks that ran; {_plural(len(missing), 'check')} "
            f"could not run ({', '.join(missing)})"
        )
    return f"no problems found in {steps}" if steps else "no problems found"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _wrap(text: str, first: str, rest: str) -> str:
    # No breaking inside words or at hyphens: check IDs and numbers stay whole.
    return textwrap.fill(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


class SummarySink:
    """Prints the verdicts once the diagnosis is over, then any later verdict as it comes.

    The diagnosis is over at the first PhaseChanged to "train" or "done", or at
    RunFinished when neither came. Warning and error Notes print at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        # Resolved here rather than as a default argument, so a redirected sys.stderr is used.
        self.stream = stream if stream is not None else sys.stderr
        self.colour = _wants_colour(self.stream)
        self._model: ModelDescribed | None = None
        self._verdicts: list[Verdict] = []
        self._probe_steps: set[int] = set()
        self._notes: list[Note] = []
        self._printed = False

    def handle(self, event: Event) -> None:
        if isinstance(event, ModelDescribed):
            self._model = event
        elif isinstance(event, (StepStats, LayerStats)):
            if event.phase == "probe":
                self._probe_steps.add(event.step)
        elif isinstance(event, VerdictIssued):
            self._verdicts.append(event.verdict)
            if self._printed:
                self._write(self.format_verdict(event.verdict))
        elif isinstance(event, Note):
            self._notes.append(event)
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
        if self._model is None and not self._verdicts:
            return
        self._write(self.render())

    def render(self) -> str:
        """The summary block as text (without the trailing newline)."""
        ranked = rank(self._verdicts)
        if self._model is not None:
            target = f"{self._model.model_name} ({self._model.param_count:,} params)"
        else:
            target = "the model"
        lines = [f"gradscope: {_plural(len(ranked), 'verdict')} for {target}"]
        top = headline(ranked)
        if top is not None:
            lines.append(_wrap(f"[{top.check}] {top.message}", "Most likely cause: ", "  "))
        else:
            steps = _plural(len(self._probe_steps), "probe step") if self._probe_steps else ""
            lines.append(f"gradscope: {nothing_found(self._notes, steps)}.")
        lines.extend(self.format_verdict(v) for v in ranked)
        return "\n".join(lines)

    def format_verdict(self, verdict: Verdict) -> str:
        """`  ERROR   check (subject): message` wrapped at 80 columns, then its fix."""
        label = verdict.severity.upper().ljust(_LABEL_WIDTH)
        text = _wrap(
            f"{verdict.check} ({verdict.subject}): {verdict.message}", "  " + label, _INDENT
        )
        if self.colour:
            # Coloured after wrapping: escape codes would count as columns.
            word = verdict.severity.upper()
            coloured = f"{_COLOURS.get(verdict.severity, '')}{word}{_RESET}"
            text = "  " + coloured + text[2 + len(word) :]
        # Fixes are often code: kept line for line (never re-wrapped) so they paste as-is.
        fix_lines = verdict.fix.splitlines() or [""]
        fix = [f"{_INDENT}fix: {fix_lines[0]}"]
        fix.extend(f"{_INDENT}     {line}" if line else "" for line in fix_lines[1:])
        return "\n".join([text, *fix])

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
