"""Failures of gradscope's own code are never silent.

The user's run always goes on (a bug of ours must not cost them their
training), but they are told what the failure cost them: a `Note` at warning
level naming what was lost. `GRADSCOPE_DEBUG=1` also prints its traceback.
`GRADSCOPE_STRICT=1` (set by the test suite) lets a programming error of ours
propagate instead, so a test fails where a user would only see the note.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradscope.events import Note

# Exceptions that mean a mistake in code, not a model or data gradscope cannot
# handle (those come as ValueError, TF's OpError... with a message for the user).
BUG_TYPES: tuple[type[BaseException], ...] = (
    TypeError, AttributeError, KeyError, IndexError, NameError, AssertionError,
    ZeroDivisionError,
)
_PACKAGE = Path(__file__).resolve().parent


def debugging() -> bool:
    return bool(os.environ.get("GRADSCOPE_DEBUG"))


def strict() -> bool:
    return bool(os.environ.get("GRADSCOPE_STRICT"))


def is_our_bug(exc: BaseException) -> bool:
    """A programming error raised in gradscope's own code (its innermost frame is
    ours): a TypeError inside Keras is the user's model, not our bug."""
    if not isinstance(exc, BUG_TYPES):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    try:
        return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def print_traceback(exc: BaseException) -> None:
    if debugging():
        traceback.print_exception(exc, file=sys.stderr)


def lost(emit: Callable[[Any], None], what: str, exc: BaseException,
         unchecked: tuple[str, ...] = ()) -> None:
    """Tell the user that `what` was lost to `exc` (re-raised under GRADSCOPE_STRICT
    when it is a bug of ours); `unchecked`: the check IDs that could not run."""
    if strict() and is_our_bug(exc):
        raise exc
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    emit(Note(
        "warning",
        f"{what} lost to an error ({type(exc).__name__}: {first}); "
        "GRADSCOPE_DEBUG=1 prints its traceback",
        unchecked,
    ))
    print_traceback(exc)
