"""Headless outputs: each sink turns the event stream into one file or stream."""

from __future__ import annotations

import os
from collections.abc import Callable

from gradscope import workers
from gradscope.errors import UsageError
from gradscope.events import Sink
from gradscope.options import RunOptions
from gradscope.sinks._files import check_writable, in_place
from gradscope.sinks.json_report import JsonReportSink
from gradscope.sinks.layer_csv import LayerCsvSink
from gradscope.sinks.record import RecordSink
from gradscope.sinks.summary import SummarySink
from gradscope.sinks.tensorboard import TensorBoardSink, check_logdir
from gradscope.sinks.verdict_csv import VerdictCsvSink

__all__ = [
    "JsonReportSink",
    "LayerCsvSink",
    "RecordSink",
    "SummarySink",
    "TensorBoardSink",
    "VerdictCsvSink",
    "build_sinks",
    "output_files",
]


def _csv_target(options: RunOptions) -> str | None:
    """`--csv`, or stdout ("-") by default in headless mode (not for live mode's child)."""
    if options.csv is not None:
        return options.csv
    return "-" if options.headless and options.events_fd is None else None


def output_files(options: RunOptions) -> dict[str, str]:
    """The outputs the options ask for ({flag: path}), each checked, none touched.

    A bad path (missing folder, a folder, not writable, two outputs on one
    file, an existing file without --force) raises UsageError; so does a
    --tensorboard DIR that is a file or cannot be made. Cheap and
    TensorFlow-free: it runs before the script, and before live mode's UI.
    """
    csv_target = _csv_target(options)
    files = {"--verdicts": options.verdicts, "--json": options.json, "--record": options.record}
    if csv_target != "-":
        files = {"--csv": csv_target, **files}
    wanted = {flag: path for flag, path in files.items() if path is not None}

    seen: dict[str, str] = {}
    for flag, path in wanted.items():
        if path == "-":
            raise UsageError(
                f"{flag} cannot write to stdout ('-'); only --csv can: give a file path"
            )
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"{seen[key]} and {flag} both write '{path}': give each its own file")
        seen[key] = flag
        check_writable(path)
        if os.path.exists(path) and not in_place(path) and not options.force:
            raise UsageError(f"'{path}' already exists: pass --force to overwrite it ({flag})")
    if options.tensorboard is not None:
        # A folder that gets a new run folder each time: it may exist, no --force needed.
        check_logdir(options.tensorboard)
        key = os.path.realpath(options.tensorboard)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and --tensorboard both write '{options.tensorboard}': "
                "--tensorboard needs a folder of its own"
            )
        wanted["--tensorboard"] = options.tensorboard
    return wanted


def build_sinks(options: RunOptions) -> list[Sink]:
    """The sinks the options ask for, with their files already open.

    Every path is checked before any is opened, so a bad one raises UsageError
    before the run starts and before any other output file is created or truncated.
    A worker of a multi-worker cluster that is not its chief gets none: it would
    write the chief's files in the same places and repeat its lines (gradscope/workers.py).
    """
    if not workers.role().chief:
        # Live mode's child still feeds its parent (which decides on a UI).
        return [RecordSink.to_fd(options.events_fd)] if options.events_fd is not None else []
    wanted = output_files(options)
    csv_target = _csv_target(options)
    makers: dict[str, Callable[[str], Sink]] = {
        "--csv": LayerCsvSink,
        "--verdicts": VerdictCsvSink,
        "--json": JsonReportSink,
        "--record": RecordSink,
        # Last: its run folder is made only once every file has opened.
        "--tensorboard": lambda path: TensorBoardSink(path, options.script),
    }
    sinks: list[Sink] = []
    try:
        if csv_target == "-":
            sinks.append(LayerCsvSink("-"))
        for flag, path in wanted.items():
            sinks.append(makers[flag](path))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    if options.events_fd is not None:
        sinks.append(RecordSink.to_fd(options.events_fd))
    elif options.headless:
        sinks.append(SummarySink())
    return sinks
