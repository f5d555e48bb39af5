"""`gradscope run`: run the user's script, diagnose its first fit, map how it ended to an exit code."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gradscope import __version__, runner
from gradscope.errors import GradscopeError
from gradscope.events import EventBus, RunStarted
from gradscope.intercept import intercept_fit  # light: Keras is imported on entry
from gradscope.options import RunOptions
from gradscope.runner import ScriptOutcome
from gradscope.session import Session


def run(options: RunOptions) -> int:
    """Run `options.script` under gradscope and return the exit code of cli.md."""
    # Pre-flight and output paths first: a typo costs no TensorFlow import and
    # truncates no file.
    script = runner.prepare(options.script)
    from gradscope.sinks import build_sinks

    bus = EventBus(build_sinks(options))
    try:
        bus.emit(
            RunStarted(
                script=options.script,
                argv=(options.script, *options.script_args),
                gradscope_version=__version__,
                started_at=time.time(),
            )
        )
        session = Session(options, bus)
    except BaseException:
        bus.close()
        raise

    # Only a bug of ours leaves these as they are.
    status, code = "gradscope-error", 1
    try:
        with _signals_as_interrupts(), intercept_fit(session.on_fit):
            outcome = runner.run_script(script, options.script_args)
        status, code = _conclude(outcome, session, options.script)
    except GradscopeError as error:
        status, code = "gradscope-error", error.exit_code
        raise
    except KeyboardInterrupt as error:  # Ctrl-C outside the script (while Keras is imported)
        status, code = "interrupted", _interrupt_code(error)
        _say("interrupted")
    finally:
        session.finish(status, code)
    return code


class Signalled(KeyboardInterrupt):
    """SIGTERM / SIGHUP (an SSH link dropping) unwinds like Ctrl-C, so the
    script's `finally` blocks run and every output is flushed; exit 128+n."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt_code(error: BaseException | None) -> int:
    return 128 + error.signum if isinstance(error, Signalled) else 130


@contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    def raise_signalled(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    saved = {}
    try:
        for signum in wanted:
            try:
                saved[signum] = signal.signal(signum, raise_signalled)
            except ValueError:  # not the main thread: leave signals alone
                break
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _conclude(outcome: ScriptOutcome, session: Session, script: str) -> tuple[str, int]:
    """The run's status and exit code, telling the user what they need to know."""
    if outcome.kind == "probe-finished":
        return "probe-only", session.verdict_exit_code()
    if outcome.kind == "raised":
        sys.stdout.flush()
        outcome.print_traceback()
        return "script-error", 3
    if outcome.kind == "interrupted":
        code = _interrupt_code(outcome.error)
        _say("interrupted" if code == 130 else f"stopped by {outcome.error}")
        return "interrupted", code
    if outcome.kind == "exited" and outcome.exit_code not in (None, 0):
        # The script's own non-zero exit wins, as with python: a non-int code is
        # printed and becomes 1.
        if not isinstance(outcome.exit_code, int):
            sys.stdout.flush()
            print(outcome.exit_code, file=sys.stderr)
        return "script-exit", runner.exit_code_of(outcome.exit_code)
    if session.fit_seen:
        return "ok", session.verdict_exit_code()
    _say(f"{script} ended without calling fit() on a Keras model; nothing to diagnose.")
    return "no-fit", 4


def _say(message: str) -> None:
    sys.stdout.flush()  # keep the order the user would see on one terminal
    print(f"gradscope: {message}", file=sys.stderr)
