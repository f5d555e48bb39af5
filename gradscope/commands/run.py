"""`gradscope run`: run the user's script, diagnose its first fit (or train_on_batch), map how it ended to an exit code."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gradscope import __version__, runner, signals, workers
from gradscope.errors import GradscopeError, Signalled, interrupt_exit_code
from gradscope.events import EventBus, LayerStats, PhaseChanged, RunStarted
from gradscope.intercept import (  # light: Keras is imported on entry
    FitCall,
    ProbeFinished,
    intercept_fit,
)
from gradscope.options import RunOptions
from gradscope.runner import ScriptOutcome
from gradscope.session import Session
from gradscope.verdicts import Verdict, rank

__all__ = ["Signalled", "run"]


def run(options: RunOptions) -> int:
    """Run `options.script` under gradscope and return the exit code of cli.md."""
    # Pre-flight and output paths first: a typo costs no TensorFlow import and
    # truncates no file.
    script = runner.prepare(options.script)
    from gradscope.sinks import build_sinks

    # SIGTERM/SIGHUP unwind like Ctrl-C from the moment an output file is open.
    interrupts = signals.Interrupts()
    with interrupts.installed():
        bus = EventBus(build_sinks(options))
        bus.sinks.insert(0, interrupts)  # every event is a checkpoint, before any output
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

        watch = _FitWatch(session, interrupts)
        # Only a bug of ours leaves these as they are.
        status, code = "gradscope-error", 1
        error_line = error_text = ""
        try:
            from gradscope.tf_startup import import_keras_quietly

            import_keras_quietly(bus.emit)
            with intercept_fit(watch.on_fit, watch.on_later_fit), _threads_end_quietly_after_the_probe():
                if options.seed is not None:
                    _seed_script(options.seed)
                bus.emit(PhaseChanged("script"))
                outcome = runner.run_script(script, options.script_args)
            status, code = _conclude(outcome, session, options.script, watch.error)
            if outcome.kind == "raised" and outcome.error is not None:
                error_line = last_line(outcome.error)
                error_text = outcome.format_traceback()
        except GradscopeError as error:
            status, code = "gradscope-error", error.exit_code
            raise
        except KeyboardInterrupt as error:  # Ctrl-C outside the script (while Keras is imported)
            status, code = "interrupted", interrupt_exit_code(error)
            _say("interrupted")
        finally:
            # A second signal must not tear the outputs: it waits until they are closed.
            with signals.deferred():
                session.finish(status, code, error=error_line, traceback=error_text)
    return code


def last_line(error: BaseException) -> str:
    """The exception's last line as python prints it ("ValueError: bad shape")."""
    import traceback

    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else type(error).__name__


def _seed_script(seed: int) -> None:
    """--seed N: the script starts with Python's, NumPy's and TensorFlow's global
    random streams seeded, as after `keras.utils.set_random_seed(N)`, so an
    unseeded model initialises the same way on every run (and so gets the same
    verdicts). A script that seeds itself overrides this, as it would."""
    import keras  # already imported by intercept_fit

    keras.utils.set_random_seed(seed)


class _FitWatch:
    """Stands between the interceptor and the session. It remembers what the
    user's own fit() raised (the session catches every failure of its own, so an
    exception coming out of it is the user's fit failing), and makes sure no
    interrupt is lost while gradscope holds that fit."""

    def __init__(self, session: Session, interrupts: signals.Interrupts) -> None:
        self.session = session
        self.interrupts = interrupts
        self.error: BaseException | None = None

    def on_fit(self, call: FitCall) -> Any:
        with self.interrupts.holding_fit():
            try:
                return self.session.on_fit(call)
            except Exception as error:
                self.error = error
                raise

    def on_later_fit(self, call: FitCall) -> Any:
        with self.interrupts.holding_fit():
            return self.session.on_later_fit(call)


@contextmanager
def _threads_end_quietly_after_the_probe() -> Iterator[None]:
    """--probe-only ends a fit made in a thread of the script: that thread stops
    (ProbeFinished) without a traceback; the rest of the script goes on, as it
    would after that thread ended."""
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, ProbeFinished):
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:  # the script may have set its own
            threading.excepthook = previous


def _conclude(
    outcome: ScriptOutcome, session: Session, script: str, fit_error: BaseException | None
) -> tuple[str, int]:
    """The run's status and exit code, telling the user what they need to know."""
    if outcome.kind == "probe-finished":
        return "probe-only", session.verdict_exit_code()
    if outcome.kind == "raised":
        sys.stdout.flush()
        outcome.print_traceback()
        trained = any(
            isinstance(e, LayerStats) and e.phase == "train" for e in session.bus.history
        )
        cause = explaining_verdict(outcome.error, fit_error, session.bus.verdicts(), trained)
        if cause is not None:
            # Right under the traceback, where the user looks: the crash has a known cause.
            _say(f"this is likely {cause.check}: {cause.message} — fix: {cause.fix}")
        return "script-error", 3
    if outcome.kind == "interrupted":
        code = interrupt_exit_code(outcome.error)
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
    _say(
        f"{script} ended without calling fit() or train_on_batch() on a Keras model; "
        "nothing to diagnose."
    )
    return "no-fit", 4


def _say(message: str) -> None:
    if not workers.role().chief:
        return  # a worker of several that is not the chief says nothing (gradscope/workers.py)
    sys.stdout.flush()  # keep the order the user would see on one terminal
    print(f"gradscope: {message}", file=sys.stderr)


def explaining_verdict(
    error: BaseException | None,
    fit_error: BaseException | None,
    verdicts: list[Verdict],
    trained: bool,
) -> Verdict | None:
    """The verdict that explains the script's crash, if gradscope saw it coming.

    That is: the crash is the user's fit() failing (or an error raised while
    handling that) before its first epoch ended (`trained` is False), a training
    step on the clone had failed too (so no step could run), and an error
    verdict names a cause. The top-ranked such cause is the one the summary
    already called the most likely. The two failures need not be the same
    exception: Keras checks the data before its first step (string labels are
    "Invalid dtype") where the probe fails in the step itself.
    """
    if trained or error is None or fit_error is None or not _in_chain(error, fit_error):
        return None
    if not any(v.check == "probe-failed" for v in verdicts):
        return None
    causes = [
        v for v in rank(verdicts)
        if v.severity == "error" and v.kind == "cause" and v.check != "probe-failed"
    ]
    return causes[0] if causes else None


def _in_chain(error: BaseException, wanted: BaseException) -> bool:
    from gradscope.runner import exception_chain

    return any(current is wanted for current in exception_chain(error))
