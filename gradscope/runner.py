"""Runs the user's script exactly the way `python script.py args` does.

`runpy.run_path` is the usual tool, but it gives the script one string for both
`sys.argv[0]` and `__file__`, while python (3.9+) gives `argv[0]` as typed and
an absolute `__file__` (also the name tracebacks show). So we do what runpy does
by hand: a fresh `__main__` module, the code compiled under the absolute path,
`exec` in that module's namespace.
"""

from __future__ import annotations

import builtins
import io
import os
import sys
import traceback
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from typing import Any, Literal

from gradscope import backend_check
from gradscope.errors import UsageError
from gradscope.intercept import ProbeFinished

# Frames from files in this folder are gradscope's, not the user's.
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True)
class Script:
    """A script that passed the pre-flight: it exists, is a file and compiles."""

    path: str  # as the user typed it: this is sys.argv[0]
    abspath: str  # __file__ and the file name in tracebacks, as python gives them
    code: types.CodeType


OutcomeKind = Literal["returned", "exited", "raised", "interrupted", "probe-finished"]


@dataclass
class ScriptOutcome:
    """How the script ended.

    `exit_code` is the raw `SystemExit.code` (None, an int, or anything else)
    when kind == "exited". `error` is the exception when kind == "raised" (or
    the KeyboardInterrupt), its traceback already trimmed of gradscope's frames.
    """

    kind: OutcomeKind
    exit_code: Any = None
    error: BaseException | None = None

    def format_traceback(self) -> str:
        if self.error is None:
            return ""
        return "".join(traceback.format_exception(self.error))

    def print_traceback(self) -> None:
        """Show the user's traceback on stderr as python would, through a hook the script set."""
        if self.error is None:
            return
        hook = sys.excepthook
        if hook is not sys.__excepthook__:
            try:
                hook(type(self.error), self.error, self.error.__traceback__)
                return
            except Exception:
                pass  # a broken hook must not hide the user's error: fall back
        print(self.format_traceback(), end="", file=sys.stderr)


def prepare(path: str) -> Script:
    """Pre-flight: a missing file, a folder or a syntax error is one clear UsageError."""
    prefix = f"cannot run '{path}'"
    if not os.path.exists(path):
        raise UsageError(f"{prefix}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{prefix}: it is a directory, not a Python script")
    if path.lower().endswith(".ipynb"):
        # Python would run the notebook's JSON and fail on its first `null`.
        raise UsageError(
            f"{prefix}: it is a Jupyter notebook, not a Python script; export it first "
            f"(jupyter nbconvert --to script {path}) and run the .py file"
        )
    abspath = os.path.abspath(path)
    try:
        with io.open_code(abspath) as stream:
            source = stream.read()
    except OSError as error:
        raise UsageError(f"{prefix}: {error.strerror or error}") from None
    if b"\0" in source:  # an image, a data file, a compiled program
        raise UsageError(f"{prefix}: it is a binary file, not a Python script")
    try:
        # dont_inherit: our own `from __future__ import annotations` must not leak
        # into the user's code.
        code = compile(source, abspath, "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f"{path}:{error.lineno}" if error.lineno else path
        raise UsageError(f"{prefix}: syntax error at {where}: {error.msg}") from None
    except ValueError as error:  # e.g. null bytes in the source (Python < 3.12)
        raise UsageError(f"{prefix}: {error}") from None
    # Another Keras backend than TensorFlow: one line, before TensorFlow is imported.
    backend_check.check_run(source, path)
    return Script(path=path, abspath=abspath, code=code)


def run_script(script: Script, args: Sequence[str]) -> ScriptOutcome:
    """Run the script as `__main__` with `sys.argv = [script, *args]`; report how it ended.

    sys.argv, sys.path and sys.modules["__main__"] are restored afterwards; the
    working directory is never changed.
    """
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=script.abspath,
        __cached__=None,
        __loader__=SourceFileLoader("__main__", script.abspath),
        __package__=None,
        __spec__=None,
        __builtins__=builtins,
    )
    saved_argv = sys.argv
    saved_path = list(sys.path)
    had_main = "__main__" in sys.modules
    saved_main = sys.modules.get("__main__")

    sys.argv = [script.path, *args]
    if not sys.flags.safe_path:  # python -P adds no script folder either
        # Python puts the folder of the resolved script (symlinks followed) first,
        # in place of what started gradscope (its bin folder, or the cwd with -m).
        folder = os.path.dirname(os.path.realpath(script.abspath))
        if sys.path:
            sys.path[0] = folder
        else:
            sys.path.insert(0, folder)
    # Classes the script defines live in __main__: pickling and Keras
    # serialisation look them up there.
    sys.modules["__main__"] = module
    try:
        exec(script.code, module.__dict__)
    except ProbeFinished:
        return ScriptOutcome("probe-finished")
    except SystemExit as error:
        return ScriptOutcome("exited", exit_code=error.code)
    except KeyboardInterrupt as error:
        return ScriptOutcome("interrupted", error=trim_traceback(error))
    except BaseException as error:
        return ScriptOutcome("raised", error=trim_traceback(error))
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if had_main:
            sys.modules["__main__"] = saved_main  # type: ignore[assignment]
        else:
            sys.modules.pop("__main__", None)
    return ScriptOutcome("returned")


def exit_code_of(code: Any) -> int:
    """The process exit code python gives for `sys.exit(code)` (it prints non-int codes)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _is_ours(tb: types.TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_OWN_DIR)


# gradscope's functions that the user's own training runs through (the watch's
# train function and the hooks it traces their step with): an error raised in
# the user's step under them is the user's, and they are never shown.
_PASS_THROUGH: set[tuple[str, str]] = set()


def pass_through(module_file: str, *names: str) -> None:
    """Declare functions of `module_file` (named as their code is) as pass-through frames."""
    _PASS_THROUGH.update((module_file, name) for name in names)


def _passes_through(tb: types.TracebackType) -> bool:
    code = tb.tb_frame.f_code
    return (code.co_filename, code.co_name) in _PASS_THROUGH


def trim_traceback(error: BaseException) -> BaseException:
    """Drop gradscope's frames so the user sees their traceback as python shows it.

    Leading frames (the runner) always go. gradscope frames between the user's
    (the fit interceptor, the session) go too, unless the error was raised in
    gradscope itself: then they are the story of our bug and stay. Chained
    exceptions are trimmed the same way.
    """
    for current in exception_chain(error):
        current.__traceback__ = _trimmed(current.__traceback__)
    return error


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception chained to it (causes and contexts), once each."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def _trimmed(tb: types.TracebackType | None) -> types.TracebackType | None:
    frames: list[types.TracebackType] = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    keep = [frame for frame in frames if not _passes_through(frame)]
    while keep and _is_ours(keep[0]):
        keep.pop(0)
    if keep and not _is_ours(keep[-1]):
        keep = [frame for frame in keep if not _is_ours(frame)]
    if not keep:  # nothing but our own frames: an error of ours, show it whole
        keep = frames
    if len(keep) == len(frames):
        return frames[0] if frames else None
    # Relinked, not rebuilt: a new entry needs the line number, and an entry
    # whose instruction has none (a signal raised between lines) gives None.
    for entry, after in zip(keep, [*keep[1:], None], strict=True):
        entry.tb_next = after
    return keep[0]
