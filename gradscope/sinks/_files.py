"""File helpers shared by the headless sinks: fail early on a bad path, write atomically."""

from __future__ import annotations

import itertools
import os
from typing import TextIO

from gradscope.errors import UsageError

_tmp_counter = itertools.count()


def check_writable(path: str) -> None:
    """Raise UsageError when `path` clearly cannot be written, without touching anything.

    Run for every output before any is opened, so one bad path leaves no
    half-created or truncated files behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        reason = "it is a folder"
    elif not os.path.isdir(folder):
        reason = f"folder '{folder}' does not exist"
    elif not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        reason = "permission denied"
    else:
        return
    raise UsageError(f"cannot write '{path}': {reason}")


class _ReplaceOnClose:
    """A stream written to a hidden sibling that replaces `final` only on close:
    an earlier run's file (overwritten with --force) is never left half-written,
    whatever happens to this run."""

    def __init__(self, final: str) -> None:
        folder = os.path.dirname(os.path.abspath(final))
        self._final = final
        self._tmp = os.path.join(folder, f".{os.path.basename(final)}.{os.getpid()}.partial")
        self._file = open(self._tmp, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> int:
        return self._file.write(text)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            os.replace(self._tmp, self._final)

    @property
    def closed(self) -> bool:
        return self._file.closed


def open_output(path: str) -> TextIO:
    """Open `path` for writing, as a UsageError when that fails.

    A new file is written in place (flushed as the run goes, so `tail -f` works
    and an interrupted run keeps its rows); an existing one (the CLI allows that
    only with --force) is replaced only once this run's file is complete.
    """
    check_writable(path)
    try:
        if os.path.exists(path):
            return _ReplaceOnClose(path)  # type: ignore[return-value]
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from exc


def write_atomic(path: str, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old or the new file, never half."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{next(_tmp_counter)}.tmp")
    # os.open with mode 0o666 honours the umask (mkstemp would leave the file 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic_at_open(path: str, text: str) -> None:
    """`write_atomic` for a sink's first write: failures become UsageError."""
    check_writable(path)
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from exc
