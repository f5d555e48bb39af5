"""The `gradscope` command line (also `python -m gradscope`).

Only argparse and gradscope's light modules are imported here: TensorFlow and
Textual are imported by the command that needs them, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import sys

from gradscope import __version__, workers
from gradscope.errors import GradscopeError, UsageError, interrupt_exit_code
from gradscope.options import RunOptions

DESCRIPTION = """\
Tells a Keras user, in seconds and in plain words, why their model is not learning.

  gradscope run [options] SCRIPT.py [script args...]
  gradscope view [--text] RUN.jsonl
  gradscope diff [--text] BEFORE.jsonl AFTER.jsonl
"""

RUN_DESCRIPTION = """\
Run an unmodified Keras training script as `python SCRIPT.py ARGS` would.
Its first fit() (or train_on_batch(), whichever comes first) is taken over:
gradscope checks the model, compile config and data, runs a few probe steps
on a clone, reports its verdicts, then lets the script's own training go on
(unless --probe-only).

gradscope's options come before the script; everything after the script is
the script's own, passed on verbatim. A `--` before the script is accepted.
"""

RUN_EPILOG = """\
exit codes: 0 no error verdict, 1 an error verdict, 2 usage error,
3 the script raised, 4 the script never called fit() or train_on_batch(),
130 interrupted; a script's own sys.exit(n) with n != 0 is kept.
"""

VIEW_DESCRIPTION = """\
Reopen a run recorded with `gradscope run --record RUN.jsonl`, without re-running it:
in the interactive UI in a terminal, as plain text with --text or when stdout
is not a terminal.
"""

DIFF_DESCRIPTION = """\
Compare two runs recorded with `gradscope run --record` (say, before and after a
fix): the verdicts that went away, the new ones and those that stayed, each
layer's gradient norm and update ratio side by side, and both loss curves. In
the interactive UI in a terminal, as plain text with --text or when stdout is
not a terminal.
"""

DIFF_EPILOG = """\
exit codes: 0 compared, 2 a file missing, not a recording, or holding no diagnosis.
"""


def _at_least_one(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value:g}")
    return value


def _not_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def build_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and its `run` subparser."""
    parser = argparse.ArgumentParser(
        prog="gradscope",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"gradscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a training script and diagnose its first fit() or train_on_batch()",
        description=RUN_DESCRIPTION,
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # An abbreviation would make the option/script split ambiguous.
        allow_abbrev=False,
    )
    run.add_argument("--headless", action="store_true",
                     help="no UI (automatic when stdout is not a terminal)")
    run.add_argument("--csv", metavar="PATH",
                     help="per-layer, per-step metrics as CSV ('-' = stdout, the headless default)")
    run.add_argument("--verdicts", metavar="PATH", help="verdicts as CSV, most likely cause first")
    run.add_argument("--json", metavar="PATH",
                     help="full report: run info, verdicts, final per-layer stats")
    run.add_argument("--record", metavar="PATH",
                     help="the event stream as JSON Lines, for `gradscope view`")
    run.add_argument("--steps", metavar="N", type=_at_least_one, default=5,
                     help="number of probe steps (default: %(default)s)")
    run.add_argument("--probe-only", action="store_true",
                     help="stop after the probe instead of letting the script's training go on")
    run.add_argument("--seed", metavar="N", type=_not_negative,
                     help="seed gradscope's own sampling and the script's global random "
                          "streams (as keras.utils.set_random_seed(N)), for reproducible verdicts")
    run.add_argument("--force", action="store_true", help="overwrite existing output files")
    run.add_argument("--events-fd", metavar="FD", type=_not_negative, default=None,
                     help=argparse.SUPPRESS)  # live mode's child: events to the parent's pipe
    run.add_argument("--budget", metavar="SECONDS", type=_seconds, default=60.0,
                     help="safety cap on the experiments' wall time; they are sized in steps, "
                          "so the cap only cuts a very slow model short, and says so "
                          "(default 60; 0 skips them)")
    run.add_argument("--watch-every", metavar="N", type=_at_least_one, default=None,
                     help="measure the per-layer figures of every N-th step of your own "
                          "training (default: a cadence that costs under 2 %% of its time)")
    run.add_argument("--no-watch", action="store_true",
                     help="do not measure your own training's steps (epoch losses are still kept)")
    run.add_argument("--tensorboard", metavar="DIR",
                     help="also write the probe's and the training's per-layer scalars and "
                          "histograms as TensorBoard event files under DIR (one run per run)")
    run.add_argument("script", metavar="SCRIPT.py", help="the training script")
    run.add_argument("script_args", metavar="ARGS", nargs="*",
                     help="the script's own arguments, passed on verbatim")

    view = commands.add_parser(
        "view",
        help="reopen a recorded run (gradscope run --record)",
        description=VIEW_DESCRIPTION,
        allow_abbrev=False,
    )
    view.add_argument("--text", action="store_true",
                      help="list the verdicts as plain text instead of opening the UI")
    view.add_argument("recording", metavar="RUN.jsonl", help="a file written by --record")

    diff = commands.add_parser(
        "diff",
        help="compare two recorded runs (before and after a fix)",
        description=DIFF_DESCRIPTION,
        epilog=DIFF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    diff.add_argument("--text", action="store_true",
                      help="print the comparison as plain text instead of opening the UI")
    diff.add_argument("before", metavar="BEFORE.jsonl", help="the earlier run's --record file")
    diff.add_argument("after", metavar="AFTER.jsonl", help="the later run's --record file")
    return parser, run


def split_at_script(argv: list[str], run_parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Split `run`'s arguments into gradscope's options and `[script, *script_args]`.

    Done by hand because argparse rewrites what follows the script (it drops a
    `--` there), while python hands the script its arguments untouched.
    """
    # Options that take a separate value; "--opt=value" is one token anyway.
    valued = {
        name
        for action in run_parser._actions  # argparse has no public listing
        if action.option_strings and action.nargs != 0
        for name in action.option_strings
    }
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            return argv[:index], argv[index + 1 :]
        if arg.startswith("-") and arg != "-":
            index += 2 if arg in valued else 1
            continue
        return argv[:index], argv[index:]
    return argv, []


def parse_run(argv: list[str], parser: argparse.ArgumentParser,
              run_parser: argparse.ArgumentParser) -> RunOptions:
    """RunOptions from `run`'s arguments (argparse exits with 2 on a bad option)."""
    ours, script_part = split_at_script(argv, run_parser)
    # "--" keeps a script name that starts with "-" from being read as an option.
    ns = parser.parse_args(["run", *ours, *(["--", script_part[0]] if script_part else [])])
    return RunOptions(
        script=ns.script,
        script_args=script_part[1:],
        # Headless is automatic when stdout is not a terminal; the live child
        # (--events-fd) is always headless, and so is a worker of several that
        # is not the chief (it shows nothing: gradscope/workers.py).
        headless=bool(ns.headless or ns.events_fd is not None or not sys.stdout.isatty()
                      or not workers.role().chief),
        events_fd=ns.events_fd,
        csv=ns.csv,
        verdicts=ns.verdicts,
        json=ns.json,
        record=ns.record,
        steps=ns.steps,
        probe_only=ns.probe_only,
        seed=ns.seed,
        force=ns.force,
        budget=ns.budget,
        watch_every=ns.watch_every,
        watch=not ns.no_watch,
        tensorboard=ns.tensorboard,
    )


def entry() -> None:
    """The `gradscope` command and `python -m gradscope`: run, then exit with the code.

    Once main() has closed every output and decided the exit code, a late
    signal (a second Ctrl-C, TensorFlow's threads winding down) must not turn
    it into a death by signal: they are ignored for the last steps of exit.
    """
    from gradscope import signals

    try:
        code = main()
    except KeyboardInterrupt as interrupt:
        code = interrupt_exit_code(interrupt)
    signals.ignore_at_exit()
    # CPython remembers, process-wide, any KeyboardInterrupt that came out of an
    # exec() or eval() of a string (dataclass and namedtuple creation run one),
    # even one caught afterwards, and then ends the process by SIGINT whatever
    # code it exits with. A Ctrl-C that lands in such a call would turn our 130
    # into a death by signal; evaluating a string afresh clears that memory.
    eval("None")  # noqa: S307 - a constant, to reset the interpreter's flag
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the gradscope command line; return the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser, run_parser = build_parsers()
    try:
        options: RunOptions | None = None
        try:
            if args and args[0] == "run":
                options = parse_run(args[1:], parser, run_parser)
            else:
                ns = parser.parse_args(args)
        except SystemExit as done:  # argparse: --help, --version, or a bad option
            return done.code if isinstance(done.code, int) else (0 if done.code is None else 2)
        if options is not None:
            if not options.headless:
                from gradscope.commands import live

                return live.run_live(options, args[1:])
            from gradscope.commands import run

            return run.run(options)
        if ns.command == "view":
            from gradscope.commands import view

            return view.view(ns.recording, text=ns.text)
        if ns.command == "diff":
            from gradscope.commands import diff

            return diff.diff(ns.before, ns.after, text=ns.text)
        parser.print_usage(sys.stderr)
        raise UsageError("give a command: `run SCRIPT.py`, `view RUN.jsonl` or `diff BEFORE.jsonl AFTER.jsonl` (see gradscope --help)")
    except (UsageError, GradscopeError) as error:
        sys.stdout.flush()
        print(f"gradscope: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM/SIGHUP (errors.Signalled)
        sys.stdout.flush()
        print("gradscope: interrupted", file=sys.stderr)
        return interrupt_exit_code(interrupt)
    except BrokenPipeError:
        # `gradscope ... | head` closed our stdout: stop quietly, as unix tools do,
        # and keep Python from complaining again when it flushes stdout at exit.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
