"""The exception types gradscope raises on purpose; `cli.main` catches them once."""

from __future__ import annotations

import signal


class UsageError(Exception):
    """Bad command line or unusable script path: one clear line, exit 2."""

    exit_code = 2


class GradscopeError(Exception):
    """Something gradscope itself could not do; carries the exit code to use."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BackendError(GradscopeError, RuntimeError):
    """Keras is on another backend than TensorFlow (gradscope/backend_check.py):
    one line and exit 2 from `gradscope run`, a RuntimeError from the Python API."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


class Signalled(KeyboardInterrupt):
    """SIGTERM / SIGHUP (an SSH link dropping) unwinds like Ctrl-C, so the
    script's `finally` blocks run and every output is flushed; exit 128+n."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt_exit_code(error: BaseException | None) -> int:
    """130 for Ctrl-C (SIGINT), 128+n for a signal turned into `Signalled`."""
    return 128 + error.signum if isinstance(error, Signalled) else 130
