"""Live mode: the user's script and the engine run in a child process; the
Textual UI runs here, in the parent, and owns the terminal.

The child is `gradscope run --events-fd N ...` (headless, events as JSON Lines
on an inherited pipe). Its stdout and stderr (Keras progress bars, TF logs, the
script's prints) are captured line by line and become `OutputLine` events, so
nothing draws over the UI. Reader threads only `put` into a bounded
`QueueSource`; the app drains it on its own timer. This module imports neither
TensorFlow nor Keras.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import IO, Any

from gradscope import runner, signals
from gradscope.events import Event, OutputLine, RunFinished, from_json
from gradscope.options import RunOptions
from gradscope.output_noise import tf_noise


class LiveRun:
    """The child process and the threads that turn its output into events."""

    def __init__(self, run_args: list[str], put: Callable[[Event], None]) -> None:
        self._put = put
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gradscope", "run", "--events-fd", str(write_fd), *run_args],
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Its own process group: Ctrl-C in the UI is ours to handle, not the child's.
            start_new_session=True,
        )
        os.close(write_fd)
        self.finished: RunFinished | None = None
        # The end of the child's stderr, printed after the UI closes when the run
        # failed (a traceback must outlive the alternate screen).
        self.stderr_tail: deque[str] = deque(maxlen=60)
        self._threads = [
            threading.Thread(target=self._read_events, args=(os.fdopen(read_fd, "r", encoding="utf-8"),), daemon=True),
            threading.Thread(target=self._read_output, args=(self.process.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read_output, args=(self.process.stderr, "stderr"), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_events(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                try:
                    event = from_json(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line of a killed child
                if isinstance(event, RunFinished):
                    self.finished = event
                self._put(event)

    def _read_output(self, stream: IO[bytes] | None, name: str) -> None:
        if stream is None:
            return
        with stream:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                # Keras progress bars redraw with \r: keep the latest state only.
                text = text.rsplit("\r", 1)[-1]
                if name == "stderr":
                    self.stderr_tail.append(text)
                self._put(OutputLine(name, text))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Ask a still-running child to stop (`signum`: its outputs are flushed) and wait."""
        if self.finished is not None:
            try:  # it said it is done: let it exit by itself
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        return code


def run_live(options: RunOptions, run_args: list[str], app_factory: Any = None) -> int:
    """`gradscope run` in a terminal: the UI here, the run in a child process."""
    # A typo or an unwritable output is one line and exit 2, before any UI.
    runner.prepare(options.script)
    from gradscope.sinks import output_files

    files = output_files(options)
    from gradscope.ui.sources import QueueSource

    source = QueueSource()
    # The record is written here, not by the child: it then holds what the run
    # printed too (`l` in `gradscope view`), in the order the UI saw it.
    record = _Recorder(options.record, source.put)
    live = LiveRun(child_args(run_args), record.put)
    if app_factory is None:
        from gradscope.ui.app import GradscopeApp

        app_factory = GradscopeApp
    signalled: list[int] = []
    app = None
    final: int | None = None
    try:
        try:
            app = app_factory(source)
            with signals.closing_ui(app, signalled):
                app.run()
        finally:
            quit_early = live.process.poll() is None and live.finished is None
            # The child is stopped with the signal that stopped us, or as by
            # Ctrl-C when the user quit: its record then says the exit code we give.
            code = live.stop(signalled[0] if signalled else signal.SIGINT)
        if signalled:
            final = 128 + signalled[0]
        elif quit_early:
            final = 130
        else:
            final = code
    finally:
        record.close(final)
    _leave_on_terminal(app, files)
    if signalled:
        signum = signalled[0]
        said = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"gradscope: {said}", file=sys.stderr)
    elif quit_early:
        # The user quit while the run went on: it was interrupted on their behalf.
        print("gradscope: run stopped (the UI was closed before it ended)", file=sys.stderr)
    elif code not in (0, 1):
        # A usage error, the script's traceback, an interruption: the UI's alternate
        # screen is gone, so repeat the end of the child's stderr on the terminal.
        relevant = [line for line in live.stderr_tail if not tf_noise(line)]
        if relevant:
            print("\n".join(relevant[-30:]), file=sys.stderr)
    return final


def _leave_on_terminal(app: Any, files: dict[str, str]) -> None:
    """Once the UI's alternate screen is gone, the diagnosis stays on the terminal
    (as a crash leaves its traceback): the cause, its fix, the files written."""
    from gradscope.report import Report
    from gradscope.verdict_text import exit_text

    report = getattr(app, "state", None)
    if not isinstance(report, Report):
        return
    if report.model is None and not report.verdicts and not files:
        return  # nothing diagnosed: the child's own lines say why
    width = shutil.get_terminal_size((80, 24)).columns
    text = exit_text(report, files, width=max(40, min(width, 100)))
    if text:
        sys.stdout.flush()
        print(text, flush=True)


class _Recorder:
    """`--record` in live mode: every event the UI gets (the child's and its
    output lines) is written, in one order, from whichever reader thread.

    The child's RunFinished is written last, when the run is over (output lines
    may still arrive after it), with the exit code gradscope gives; a child that
    died without one gets one written for it.
    """

    def __init__(self, path: str | None, forward: Callable[[Event], None]) -> None:
        from gradscope.sinks.record import RecordSink

        self._forward = forward
        self._lock = threading.Lock()
        self._sink = RecordSink(path) if path is not None else None
        self._finished: RunFinished | None = None

    def put(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunFinished):
                self._finished = event
            else:
                self._write(event)
            self._forward(event)

    def _write(self, event: Event) -> None:
        if self._sink is None:
            return
        try:
            self._sink.handle(event)
        except OSError as error:  # a full disk ends the record, not the run
            print(f"gradscope: stopped writing the record: {error}", file=sys.stderr)
            self._sink = None

    def close(self, exit_code: int | None) -> None:
        with self._lock:
            finished = self._finished
            if exit_code is not None:
                if finished is None:
                    finished = RunFinished("interrupted" if exit_code >= 128 else "stopped",
                                           exit_code)
                elif finished.exit_code != exit_code:
                    finished = replace(finished, exit_code=exit_code)
            if finished is not None:
                self._write(finished)
            if self._sink is not None:
                self._sink.close()
                self._sink = None


def child_args(run_args: list[str]) -> list[str]:
    """`run`'s arguments for the child, without `--record` (the parent writes it)."""
    from gradscope.cli import build_parsers, split_at_script

    _, run_parser = build_parsers()
    ours, script_part = split_at_script(run_args, run_parser)
    kept: list[str] = []
    skip = False
    for arg in ours:
        if skip:
            skip = False
            continue
        if arg == "--record":
            skip = True
            continue
        if arg.startswith("--record="):
            continue
        kept.append(arg)
    return [*kept, "--", *script_part] if script_part else kept

