"""`gradscope run`: run the user's script, diagnose its first fit, map how it ended to an exit code."""

from __future__ import annotations

import sys
import time

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
        with intercept_fit(session.on_fit):
            outcome = runner.run_script(script, options.script_args)
        status, code = _conclude(outcome, session, options.script)
    except GradscopeError as error:
        status, code = "gradscope-error", error.exit_code
        raise
    except KeyboardInterrupt:  # Ctrl-C outside the script (while Keras is imported)
        status, code = "interrupted", 130
        _say("interrupted")
    finally:
        session.finish(status, code)
    return code


def _conclude(outcome: ScriptOutcome, session: Session, script: str) -> tuple[str, int]:
    """The run's status and exit code, telling the user what they need to know."""
    if outcome.kind == "probe-finished":
        return "probe-only", session.verdict_exit_code()
    if outcome.kind == "raised":
        sys.stdout.flush()
        outcome.print_traceback()
        return "script-error", 3
    if outcome.kind == "interrupted":
        _say("interrupted")
        return "interrupted", 130
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
