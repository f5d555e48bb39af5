"""Every way gradscope handles SIGINT, SIGTERM and SIGHUP, in one place.

- `handlers`: install one handler for the stopping signals, put back what was there.
- `Interrupts`: while the script runs, the signals unwind like Ctrl-C (so every
  output is closed), and none is lost while gradscope holds the user's fit.
- `deferred`: hold the signals while the outputs are being closed.
- `ignore_at_exit`: once the exit code is decided, no late signal changes it.
- `closing_ui`: in live mode the signals close the UI the normal way.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gradscope.errors import Signalled

STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")


def interrupt(signum: int) -> KeyboardInterrupt:
    """The exception a stopping signal unwinds with (`Signalled` for SIGTERM/SIGHUP)."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Signalled(signum)


def _numbers(names: tuple[str, ...]) -> list[int]:
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


@contextmanager
def handlers(handler: Callable[[int, Any], None], names: tuple[str, ...] = STOPPING) -> Iterator[None]:
    """Install `handler` for the named signals that exist here, and put back what was there."""
    saved = {}
    try:
        for signum in _numbers(names):
            try:
                saved[signum] = signal.signal(signum, handler)
            except ValueError:  # not the main thread: leave signals alone
                break
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


class Interrupts:
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt (`Signalled` for the
    latter two), so the script's `finally` blocks run and every output is closed.

    While gradscope holds the first fit (the diagnosis, then the user's training
    it runs), an interrupt cannot be lost on its way: TensorFlow turns a
    KeyboardInterrupt raised inside its Python callbacks into an error of its
    own, which the probe would take for a failure and go on. So the signal is
    remembered, and raised again at the next event (this object sits first on
    the event bus: before any output records that event), or when the fit ends
    in any other way. Outside that fit the script gets its KeyboardInterrupt
    exactly as under python, and may handle it.
    """

    def __init__(self) -> None:
        self.pending: int | None = None
        self._holding = False

    def _raise(self, signum: int, _frame: object) -> None:
        if self._holding:
            self.pending = signum
        raise interrupt(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        with handlers(self._raise):
            yield

    @contextmanager
    def holding_fit(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread() or self._holding:
            yield  # signals reach the main thread only: nothing to hold here
            return
        self._holding, self.pending = True, None
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # an error, or ProbeFinished, after a lost interrupt
            if self.pending is not None:
                raise interrupt(self.pending) from error
            raise
        else:
            if self.pending is not None:  # swallowed altogether
                raise interrupt(self.pending)
        finally:
            self._holding, self.pending = False, None

    # The event bus's Sink protocol: every event is a checkpoint.
    def handle(self, event: object) -> None:
        if self._holding and self.pending is not None:
            raise interrupt(self.pending)

    def close(self) -> None:
        pass


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then act on the first."""
    pending: list[int] = []

    def remember(signum: int, _frame: object) -> None:
        pending.append(signum)

    with handlers(remember):
        yield
    if pending:
        raise interrupt(pending[0])


def ignore_at_exit() -> None:
    """Ignore the stopping signals from now on: the exit code is decided, and a
    late signal (a second Ctrl-C, TensorFlow's threads winding down) must not
    turn it into a death by signal."""
    for signum in _numbers(STOPPING):
        try:
            signal.signal(signum, signal.SIG_IGN)
        except KeyboardInterrupt:  # one that landed just before it was ignored
            signal.signal(signum, signal.SIG_IGN)


@contextmanager
def closing_ui(app: Any, signalled: list[int]) -> Iterator[None]:
    """SIGTERM, SIGHUP (the terminal went away) and SIGINT close the UI the normal
    way, so the terminal is restored; the caller then stops the child. The
    signals received are appended to `signalled`."""

    def close_ui(signum: int, _frame: object) -> None:
        signalled.append(signum)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the UI is not running (yet): unwind instead
            raise Signalled(signum) from None
        loop.call_soon_threadsafe(app.exit)

    try:
        with handlers(close_ui, ("SIGTERM", "SIGHUP", "SIGINT")):
            yield
    except Signalled:
        pass  # recorded in `signalled`
