"""Live mode: the user's script and the engine run in a child process; the
Textual UI runs here, in the parent, and owns the terminal.

The child is `gradscope run --events-fd N ...` (headless, events as JSON Lines
on an inherited pipe). Its stdout and stderr (Keras progress bars, TF logs, the
script's prints) are each on a pseudo-terminal of their own, the size of the
log screen, so the script prints what it would print in a terminal (Keras and
tqdm redraw their bars in place, colours stay). What arrives is read in chunks
and played through `terminal_lines.TerminalLines`: every finished line becomes
an `OutputLine` (as the terminal showed it); the line still being drawn is
sent as a `partial` OutputLine at most every PARTIAL_EVERY seconds (display
only: never recorded). Two terminals, not one, so each line keeps the stream
it came from (the record says it; a failed run's stderr is repeated after the
UI closes) and a warning on stderr never splices into a half-drawn bar. Where
no pseudo-terminal can be opened, pipes stand in (the same reading; Keras still
redraws with `\r`). Reader threads only `put` into a bounded `QueueSource`;
the app drains it on its own timer. This module imports neither TensorFlow
nor Keras.
"""

from __future__ import annotations

import codecs
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import IO, Any

from gradscope import runner, signals
from gradscope.events import Event, OutputLine, RunFinished, from_json
from gradscope.options import RunOptions
from gradscope.output_noise import tf_noise
from gradscope.terminal_lines import Line, TerminalLines

# The line still being drawn (a progress bar redrawn up to 1000 times a
# second) reaches the UI at most this often per stream: the UI redraws ten
# times a second anyway. Finished lines are never held back.
PARTIAL_EVERY = 0.1
# ...and only once it has stayed unfinished this long: a print() arrives in
# pieces (its arguments, then the newline), and is no progress bar.
PARTIAL_SETTLE = 0.02
# The log screen's frame around the child's terminal: its vertical scrollbar
# (2 columns), its title, the hidden-lines line and the footer (3 rows).
LOG_FRAME = (2, 3)
_EMPTY = Line("")


def terminal_size() -> tuple[int, int]:
    """(columns, rows) for the child's terminals: the log screen's text area
    in this terminal (the size when the run starts; a resize is not passed on)."""
    size = shutil.get_terminal_size((80, 24))
    return max(20, size.columns - LOG_FRAME[0]), max(5, size.lines - LOG_FRAME[1])


def open_output(columns: int, rows: int) -> tuple[int, int]:
    """(read end, the child's end) for one of the child's output streams: a
    pseudo-terminal of `columns` x `rows`, or a pipe where none can be opened."""
    try:
        import fcntl
        import termios

        primary, secondary = os.openpty()
    except (ImportError, AttributeError, OSError):
        return os.pipe()
    try:
        attrs = termios.tcgetattr(secondary)
        attrs[1] &= ~termios.ONLCR  # oflag: "\n" reaches us as "\n", not "\r\n"
        termios.tcsetattr(secondary, termios.TCSANOW, attrs)
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    except (OSError, termios.error):
        pass  # the terminal's defaults: the lines read the same
    return primary, secondary


class LiveRun:
    """The child process and the threads that turn its output into events."""

    def __init__(self, run_args: list[str], put: Callable[[Event], None]) -> None:
        self._put = put
        read_fd, write_fd = os.pipe()
        columns, rows = terminal_size()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # What a terminal of that size would say to a script that asks the environment.
        if "COLUMNS" in env:
            env["COLUMNS"] = str(columns)
        if "LINES" in env:
            env["LINES"] = str(rows)
        outputs = {name: open_output(columns, rows) for name in ("stdout", "stderr")}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gradscope", "run", "--events-fd", str(write_fd),
                 *run_args],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=outputs["stdout"][1],
                stderr=outputs["stderr"][1],
                env=env,
                # Its own process group: Ctrl-C in the UI is ours to handle, not the
                # child's. Its own session too, so the terminals are not its controlling
                # terminal: closing ours never sends it a SIGHUP.
                start_new_session=True,
            )
        except BaseException:
            for fd in (read_fd, *(fd for pair in outputs.values() for fd in pair)):
                os.close(fd)
            raise
        finally:
            os.close(write_fd)
        for _, child_end in outputs.values():
            os.close(child_end)  # the child's copies only: our reads then end when it exits
        self.finished: RunFinished | None = None
        # The end of the child's stderr, printed after the UI closes when the run
        # failed (a traceback must outlive the alternate screen).
        self.stderr_tail: deque[str] = deque(maxlen=60)
        self._threads = [
            threading.Thread(target=self._read_events, args=(os.fdopen(read_fd, "r", encoding="utf-8"),), daemon=True),
            *(threading.Thread(target=self._read_output, args=(fds[0], name), daemon=True)
              for name, fds in outputs.items()),
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

    def _read_output(self, fd: int, name: str) -> None:
        read_output(fd, name, self._output)

    def _output(self, line: OutputLine) -> None:
        if line.stream == "stderr" and not line.partial:
            self.stderr_tail.append(line.text)
        self._put(line)

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


def read_output(fd: int, name: str, put: Callable[[OutputLine], None]) -> None:
    """Read one of the child's streams (a pseudo-terminal or a pipe) until it
    closes, in chunks as they come, and `put` what a terminal shows of it:
    each finished line at once, the line being drawn (`partial`) at most every
    PARTIAL_EVERY seconds once it has been unfinished PARTIAL_SETTLE seconds,
    and once more when the stream goes quiet, so a bar that stops shows its
    last state. Closes `fd`."""
    screen = TerminalLines()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    shown: Line | None = None  # the partial line the UI shows now, if any
    sent_at = -PARTIAL_EVERY
    drawn_since: float | None = None  # when the unfinished line began to change
    try:
        while True:
            wait = None
            if drawn_since is not None:
                due = max(sent_at + PARTIAL_EVERY, drawn_since + PARTIAL_SETTLE)
                wait = max(0.0, due - time.monotonic())
            if select.select([fd], [], [], wait)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: a pseudo-terminal whose other end closed
                    chunk = b""
                if not chunk:
                    break
                done = screen.feed(decoder.decode(chunk))
                for line in done:
                    put(OutputLine(name, line.text, line.ansi))
                    shown = None  # the finished line took the partial one's place
                if done or not screen.changed:
                    drawn_since = None
                if screen.changed and drawn_since is None:
                    drawn_since = time.monotonic()
            now = time.monotonic()
            if (drawn_since is not None and now - sent_at >= PARTIAL_EVERY
                    and now - drawn_since >= PARTIAL_SETTLE):
                line = screen.current()
                drawn_since = None
                if line != (shown or _EMPTY):
                    put(OutputLine(name, line.text, line.ansi, partial=True))
                    shown = line
                    sent_at = now
    finally:
        os.close(fd)
    done = screen.feed(decoder.decode(b"", final=True))
    last = screen.flush()  # an unfinished last line is finished by the end
    if last is not None:
        done.append(last)
    for line in done:
        put(OutputLine(name, line.text, line.ansi))
    if not done and shown is not None and shown != _EMPTY:
        put(OutputLine(name, "", partial=True))  # the line was erased before the end


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
            elif not (isinstance(event, OutputLine) and event.partial):
                # A line still being drawn is for the screen only: the record
                # keeps each line as it was when finished.
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

