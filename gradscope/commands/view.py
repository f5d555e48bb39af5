"""`gradscope view`: reopen a recorded run.

In a terminal, the Textual app replays it; with `--text` (or when stdout is not
a terminal) a plain listing of its verdicts. Reads only events, so it needs no
TensorFlow, and Textual only for the app.
"""

from __future__ import annotations

import json
import sys

from gradscope.errors import GradscopeError, UsageError
from gradscope.events import Event, from_json
from gradscope.report import Report
from gradscope.verdict_text import verdicts_block


def view(path: str, text: bool = False) -> int:
    """Show the run recorded in `path` (a `--record` JSON Lines file): the app in a
    terminal, else (or with `text`) the verdicts as plain text."""
    events = read_events(path)
    if text or not sys.stdout.isatty():
        return print_verdicts(events, path)
    from gradscope.ui import ReplaySource
    from gradscope.ui.app import GradscopeApp

    GradscopeApp(ReplaySource(events)).run()
    return 0


def print_verdicts(events: list[Event], path: str) -> int:
    """The plain listing: how the run ended, then the verdicts as the headless
    summary gives them (most likely cause first, each with its fix)."""
    report = Report.from_events(events)
    started, finished = report.started, report.finished
    title = f"run of {started.script}" if started else f"run recorded in {path}"
    if finished:
        title += f" ({finished.status}, exit {finished.exit_code})"
    print(title)
    if report.model is None and not report.verdicts:
        print("no verdicts: fit() was never diagnosed")
    else:
        print(verdicts_block(report))
    return 0


def read_events(path: str) -> list[Event]:
    """The events of a recording; a missing or foreign file is one clear line."""
    try:
        with open(path, encoding="utf-8") as stream:
            lines = stream.readlines()
    except FileNotFoundError:
        raise UsageError(f"cannot view '{path}': no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot view '{path}': it is a directory, not a recording") from None
    except OSError as error:
        raise UsageError(f"cannot view '{path}': {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot view '{path}': not a text file") from None
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(from_json(line))
        except (ValueError, KeyError, TypeError) as error:
            message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            raise GradscopeError(
                f"{path}:{number} is not a gradscope event ({message}); "
                "give a file written by `gradscope run --record`",
                exit_code=2,
            ) from None
    return events
