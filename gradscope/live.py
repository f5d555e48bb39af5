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

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from gradscope import runner
from gradscope.errors import Signalled
from gradscope.events import Event, OutputLine, RunFinished, from_json
from gradscope.options import RunOptions


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

    def stop(self, timeout: float = 10.0) -> int:
        """Ask a still-running child to stop (SIGTERM: its outputs are flushed) and wait."""
        if self.finished is not None:
            try:  # it said it is done: let it exit by itself
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
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

    output_files(options)
    from gradscope.ui.sources import QueueSource

    source = QueueSource()
    live = LiveRun(run_args, source.put)
    if app_factory is None:
        from gradscope.ui.app import GradscopeApp

        app_factory = GradscopeApp
    signalled: list[int] = []
    try:
        app = app_factory(source)
        with _signals_close(app, signalled):
            app.run()
    finally:
        quit_early = live.process.poll() is None and live.finished is None
        code = live.stop()  # the child is asked to stop (SIGTERM) and waited for
    if signalled:
        signum = signalled[0]
        said = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"gradscope: {said}", file=sys.stderr)
        return 128 + signum
    if quit_early:
        # The user quit while the run went on: it was interrupted on their behalf.
        print("gradscope: run stopped (the UI was closed before it ended)", file=sys.stderr)
        return 130
    if code not in (0, 1):
        # A usage error, the script's traceback, an interruption: the UI's alternate
        # screen is gone, so repeat the end of the child's stderr on the terminal.
        relevant = [line for line in live.stderr_tail if not _tf_noise(line)]
        if relevant:
            print("\n".join(relevant[-30:]), file=sys.stderr)
    return code


def _tf_noise(line: str) -> bool:
    """TensorFlow's start-up log lines (I0000/W0000 ..., absl notices)."""
    return line[:5] in ("I0000", "W0000", "E0000") or line.startswith(
        ("WARNING: All log messages", "To enable the following instructions")
    )


@contextmanager
def _signals_close(app: Any, signalled: list[int]) -> Iterator[None]:
    """SIGTERM, SIGHUP (the terminal went away) and SIGINT close the UI the normal
    way, so the terminal is restored; the caller then stops the child."""

    def close_ui(signum: int, _frame: object) -> None:
        signalled.append(signum)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the UI is not running (yet): unwind instead
            raise Signalled(signum) from None
        loop.call_soon_threadsafe(app.exit)

    names = ("SIGTERM", "SIGHUP", "SIGINT")
    saved = {}
    try:
        for signum in (getattr(signal, name) for name in names if hasattr(signal, name)):
            try:
                saved[signum] = signal.signal(signum, close_ui)
            except ValueError:  # not the main thread: leave signals alone
                break
        yield
    except Signalled:
        pass  # recorded in `signalled`
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)
