"""`gradscope diff BEFORE.jsonl AFTER.jsonl`: what changed between two recorded runs.

In a terminal, a Textual app shows the comparison; with `--text` (or when
stdout is not a terminal) the same as plain text. Reads only events (no
TensorFlow); Textual is imported only for the app.
"""

from __future__ import annotations

import sys

from gradscope.commands.view import read_events
from gradscope.compare import Comparison, undiagnosed
from gradscope.errors import UsageError
from gradscope.events import Event
from gradscope.report import Report


def diff(before_path: str, after_path: str, text: bool = False) -> int:
    """Compare two `--record` files: the app in a terminal, else (or with `text`)
    the comparison as plain text. 0 once compared; bad input raises (exit 2)."""
    comparison = compare_files(before_path, after_path)
    if text or not sys.stdout.isatty():
        print(comparison.text(before_path, after_path))
        return 0
    from gradscope.ui.diff_app import DiffApp

    DiffApp(comparison, before_path, after_path).run()
    return 0


def compare_files(before_path: str, after_path: str) -> Comparison:
    """Both recordings read and folded; either one unreadable, foreign or holding
    no diagnosis is one line (exit 2)."""
    reports = []
    for path in (before_path, after_path):
        events = _read(path)
        if not events:
            raise UsageError(f"cannot compare '{path}': it is empty, not a recording")
        report = Report.from_events(events)
        reason = undiagnosed(report)
        if reason is not None:
            raise UsageError(f"cannot compare '{path}': {reason}")
        reports.append(report)
    return Comparison.of(reports[0], reports[1])


def _read(path: str) -> list[Event]:
    # view's rules for bad input, said as this command's words.
    try:
        return read_events(path)
    except UsageError as error:
        raise UsageError(str(error).replace("cannot view", "cannot compare", 1)) from None
