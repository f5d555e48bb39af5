"""File helpers shared by the headless sinks: fail early on a bad path, write atomically.

Paths are made absolute when a file is opened: a script that changes its
working directory must not move gradscope's outputs.
"""

from __future__ import annotations

import itertools
import os
import stat
from typing import TextIO

from gradscope.errors import UsageError

_tmp_counter = itertools.count()


def in_place(path: str) -> bool:
    """True for an existing target that is not a plain file: /dev/null, a FIFO,
    /dev/stdout, /dev/fd/N (a shell's `>(...)`). Such a target is written
    directly, never replaced by renaming a file over it, and needs no --force."""
    if os.path.abspath(path).startswith(("/dev/", "/proc/")):
        return os.path.exists(path)
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path)
    except OSError:
        return False


def check_writable(path: str) -> None:
    """Raise UsageError when `path` clearly cannot be written, without touching anything.

    Run for every output before any is opened, so one bad path leaves no
    half-created or truncated files behind.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        reason = "it is a folder"
    elif in_place(path):
        if os.access(path, os.W_OK):
            return
        reason = "permission denied"
    elif os.path.exists(folder) and not os.path.isdir(folder):
        reason = f"'{folder}' is a file, not a folder"
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
    whatever happens to this run. A run killed outright (SIGKILL, power loss)
    leaves the earlier file as it was, and its own `.NAME.PID.partial` beside it."""

    def __init__(self, final: str) -> None:
        # The real file: a symlink to it stays a symlink.
        self._final = os.path.realpath(final)
        folder = os.path.dirname(self._final)
        self._tmp = os.path.join(folder, f".{os.path.basename(self._final)}.{os.getpid()}.partial")
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
    only with --force) is replaced only once this run's file is complete; a
    device or pipe is written directly.
    """
    check_writable(path)
    try:
        if os.path.exists(path) and not in_place(path):
            return _ReplaceOnClose(path)  # type: ignore[return-value]
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from exc


def write_atomic(path: str, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old or the new file, never half.

    Give it an absolute path (see `final_path`): the script may change directory.
    """
    if in_place(path):
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return
    path = os.path.realpath(path)
    folder = os.path.dirname(path)
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


def final_path(path: str) -> str:
    """Where a file rewritten as a whole lives, fixed when it is opened (cwd may change)."""
    return os.path.abspath(path)


def write_atomic_at_open(path: str, text: str) -> None:
    """`write_atomic` for a sink's first write: failures become UsageError."""
    check_writable(path)
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from exc
