"""`gradscope` as a user meets it: options, exit codes, what lands on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gradscope import __version__
from gradscope.cli import main
from gradscope.commands import run as run_command
from gradscope.events import EventBus, RunFinished, RunStarted, VerdictIssued, to_json
from gradscope.intercept import FitCall, ProbeFinished
from gradscope.options import RunOptions
from gradscope.verdicts import Verdict

QUIET_TF = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def ran(monkeypatch) -> list[RunOptions]:
    """Captures the RunOptions `gradscope run` would run with, running nothing."""
    seen: list[RunOptions] = []

    def fake_run(options: RunOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(run_command, "run", fake_run)
    return seen


# --- options -----------------------------------------------------------------


def test_everything_after_the_script_belongs_to_the_script(ran):
    # given a script with options of its own that look like ours
    code = main(["run", "--headless", "train.py", "--seed", "3", "--csv", "x", "--", "-h"])

    assert code == 0
    options = ran[0]
    assert options.script == "train.py"
    assert options.script_args == ["--seed", "3", "--csv", "x", "--", "-h"]
    # and none of them were taken as gradscope's
    assert options.seed is None and options.csv is None


def test_all_options_before_the_script_are_read(ran):
    main([
        "run", "--headless", "--csv", "-", "--verdicts", "v.csv", "--json=r.json",
        "--record", "r.jsonl", "--steps=3", "--probe-only", "--seed", "0", "--force",
        "train.py", "a",
    ])

    assert ran == [
        RunOptions(
            script="train.py", script_args=["a"], headless=True, csv="-", verdicts="v.csv",
            json="r.json", record="r.jsonl", steps=3, probe_only=True, seed=0, force=True,
        )
    ]


def test_defaults(ran):
    main(["run", "train.py"])

    assert ran == [RunOptions(script="train.py", steps=5)]


TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker"}}


@pytest.mark.parametrize(("index", "headless"), [(0, False), (1, True)])
def test_in_a_terminal_only_the_chief_worker_opens_the_ui(ran, monkeypatch, index, headless):
    # Every worker of a multi-worker training runs `gradscope run train.py`: one UI, the chief's
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("TF_CONFIG", json.dumps({**TWO_WORKERS, "task": {"type": "worker", "index": index}}))
    monkeypatch.setattr("gradscope.commands.live.run_live", lambda options, args: ran.append(options) or 0)

    main(["run", "train.py"])

    assert [options.headless for options in ran] == [headless]


def test_a_worker_that_is_not_the_chief_says_nothing_when_the_script_never_trains(tmp_path):
    script = write(tmp_path / "nofit.py", "print('no fit here')\n")
    said = {}
    for index in (0, 1):
        env = dict(os.environ, TF_CONFIG=json.dumps({**TWO_WORKERS, "task": {"type": "worker", "index": index}}))
        done = subprocess.run([sys.executable, "-m", "gradscope", "run", str(script)], capture_output=True,
                              text=True, timeout=120, env=env)
        said[index] = (done.returncode, [x for x in done.stderr.splitlines() if x.startswith("gradscope:")])
    assert said[0][0] == said[1][0] == 4
    assert len(said[0][1]) == 1 and "nothing to diagnose" in said[0][1][0]
    assert said[1][1] == []


def test_double_dash_before_the_script_is_accepted_and_dropped(ran):
    main(["run", "--probe-only", "--", "train.py", "--", "x"])

    assert ran[0].script == "train.py"
    assert ran[0].probe_only
    assert ran[0].script_args == ["--", "x"]  # the script's own "--" is its business


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["run", "--steps", "0", "train.py"], "argument --steps: must be 1 or more, got 0"),
        (["run", "--steps=many", "train.py"], "argument --steps: expected a whole number, got 'many'"),
        (["run", "--seed", "-1", "train.py"], "argument --seed: must be 0 or more, got -1"),
        (["run", "--bogus", "train.py"], "unrecognized arguments: --bogus"),
        (["run", "--head", "train.py"], "unrecognized arguments: --head"),  # no abbreviations
        (["run", "--headless"], "the following arguments are required: SCRIPT.py"),
        (["run", "--csv"], "argument --csv: expected one argument"),
    ],
)
def test_bad_options_are_usage_errors(ran, capsys, args, complaint):
    code = main(args)

    assert code == 2
    assert complaint in capsys.readouterr().err
    assert ran == []


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "gradscope: give a command" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"gradscope {__version__}\n"


def test_run_help_describes_the_contract(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "gradscope run [-h]" in out
    for option in ("--headless", "--csv", "--verdicts", "--json", "--record", "--steps",
                   "--probe-only", "--seed", "--force"):
        assert option in out


def test_help_imports_neither_tensorflow_nor_textual_and_answers_fast():
    # given a fresh interpreter
    probe = textwrap.dedent(
        """\
        import contextlib, io, json, sys, time
        start = time.perf_counter()
        from gradscope.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            codes = [main(["--help"]), main(["run", "--help"]), main(["--version"]),
                     main(["run", "missing.py"])]
        print(json.dumps({
            "codes": codes,
            "seconds": time.perf_counter() - start,
            "heavy": [m for m in ("tensorflow", "keras", "textual") if m in sys.modules],
        }))
        """
    )

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    answer = json.loads(done.stdout)
    assert answer["codes"] == [0, 0, 0, 2]
    assert answer["heavy"] == []  # not even a script that is not there costs a TF import
    assert answer["seconds"] < 1.0


# --- running scripts ---------------------------------------------------------


def test_parity_with_python(tmp_path):
    # given a script that reports what it sees and exits with its own code
    write(
        tmp_path / "scripts" / "show.py",
        """\
        import os, sys
        print("seen name", __name__)
        print("seen argv", sys.argv)
        print("seen path0", sys.path[0])
        print("seen cwd", os.getcwd())
        sys.exit(7)
        """,
    )
    cwd = tmp_path / "work"
    cwd.mkdir()
    script_and_args = ["../scripts/show.py", "a", "--b", "c"]

    # when python and gradscope run it from the same folder
    by_python = subprocess.run([sys.executable, *script_and_args], cwd=cwd,
                               capture_output=True, text=True, env=QUIET_TF)
    by_gradscope = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", *script_and_args],
        cwd=cwd, capture_output=True, text=True, env=QUIET_TF,
    )

    # then the script saw the same things and the exit code is the script's
    def seen(out: str) -> list[str]:  # headless output (the CSV header) may share stdout
        return [line for line in out.splitlines() if line.startswith("seen ")]

    assert len(seen(by_python.stdout)) == 4
    assert seen(by_gradscope.stdout) == seen(by_python.stdout)
    assert by_python.returncode == 7
    assert by_gradscope.returncode == 7


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: "nope.py", "gradscope: cannot run 'nope.py': no such file"),
        (lambda tmp: (tmp / "folder").mkdir() or "folder",
         "gradscope: cannot run 'folder': it is a directory, not a Python script"),
        (lambda tmp: write(tmp / "bad.py", "def f(:\n    pass\n").name,
         "gradscope: cannot run 'bad.py': syntax error at bad.py:1: invalid syntax"),
    ],
    ids=["missing", "directory", "syntax-error"],
)
def test_unusable_script_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, make, message):
    monkeypatch.chdir(tmp_path)
    script = make(tmp_path)

    code = main(["run", "--headless", script])

    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [message]
    assert out == ""


def test_script_raising_before_fit_shows_their_traceback_as_python_does(tmp_path, monkeypatch,
                                                                       capsys):
    # given a script that fails while loading its data
    script = write(
        tmp_path / "train.py",
        """\
        import json

        def load(path):
            with open(path) as f:
                return json.load(f)

        config = load("no-such-config.json")
        """,
    )
    by_python = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                               capture_output=True, text=True)

    # when gradscope runs it (same cwd, same absolute path)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--headless", str(script)])

    # then exit 3 with exactly python's traceback: their file and lines, none of ours
    err = capsys.readouterr().err
    assert code == 3
    assert by_python.stderr.startswith("Traceback (most recent call last):")
    assert err.startswith(by_python.stderr)
    assert f'File "{script}", line 7, in <module>' in err
    assert "gradscope" + os.sep not in err


def test_script_that_never_fits_exits_4(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "prepare.py", "print('data ready')\n")

    code = main(["run", "--headless", "prepare.py"])

    out, err = capsys.readouterr()
    assert code == 4
    assert "data ready" in out
    assert (
        "gradscope: prepare.py ended without calling fit() or train_on_batch() on a Keras "
        "model; nothing to diagnose."
        in err.splitlines()
    )


@pytest.mark.parametrize(
    ("ending", "code", "said"),
    [
        ("sys.exit(0)", 4, "ended without calling fit()"),
        ("sys.exit(5)", 5, None),
        ("sys.exit('config is broken')", 1, "config is broken"),
        ("raise KeyboardInterrupt", 130, "gradscope: interrupted"),
    ],
)
def test_how_the_script_ends_sets_the_exit_code(tmp_path, monkeypatch, capsys, ending, code, said):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.py", f"import sys\n{ending}\n")

    assert main(["run", "--headless", "train.py"]) == code
    if said:
        assert said in capsys.readouterr().err


TINY_FIT = """\
    import numpy as np
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0)
    print("after fit")
"""


class ScriptedSession:
    """A session that issues the verdicts a test gives it, then acts like --probe-only."""

    verdicts: list[Verdict] = []
    finished: list[tuple[str, int]] = []

    def __init__(self, options: RunOptions, bus: EventBus) -> None:
        self.bus = bus
        self.fit_seen = False

    def on_fit(self, call: FitCall) -> Any:
        self.fit_seen = True
        for verdict in self.verdicts:
            self.bus.emit(VerdictIssued(verdict))
        raise ProbeFinished()

    def verdict_exit_code(self) -> int:
        return 1 if any(v.severity == "error" for v in self.bus.verdicts()) else 0

    def finish(self, status: str, exit_code: int, **_: str) -> None:
        ScriptedSession.finished.append((status, exit_code))
        self.bus.emit(RunFinished(status=status, exit_code=exit_code))
        self.bus.close()


@pytest.mark.parametrize(("severity", "code"), [("warning", 0), ("error", 1)])
def test_probe_only_exit_code_follows_the_verdicts(tmp_path, monkeypatch, capsys, severity, code):
    # given a session that finds one problem and then ends the script after the probe
    verdict = Verdict(check="lr-too-high", severity=severity, subject="optimizer",
                      message="the loss explodes", fix="lower the learning rate")
    monkeypatch.setattr(ScriptedSession, "verdicts", [verdict])
    monkeypatch.setattr(ScriptedSession, "finished", [])
    monkeypatch.setattr(run_command, "Session", ScriptedSession)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.py", TINY_FIT)

    exit_code = main(["run", "--headless", "--probe-only", "train.py"])

    # then the script stopped at fit, and CI can gate on the exit code
    assert exit_code == code
    assert "after fit" not in capsys.readouterr().out
    assert ScriptedSession.finished == [("probe-only", code)]


def test_real_fit_end_to_end_and_view_the_recording(tmp_path):
    # given a tiny but real training script
    write(tmp_path / "train.py", TINY_FIT)

    # when it runs under gradscope, recording the run
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only",
         "--record", "run.jsonl", "train.py"],
        cwd=tmp_path, capture_output=True, text=True, env=QUIET_TF,
    )

    # then it ends cleanly, and the recording opens in `gradscope view`
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    viewed = subprocess.run([sys.executable, "-m", "gradscope", "view", "run.jsonl"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert viewed.returncode == 0, viewed.stderr
    assert viewed.stdout.startswith("run of train.py (")


# --- view --------------------------------------------------------------------


def test_view_lists_the_recorded_verdicts_most_likely_cause_first(tmp_path, capsys):
    # given a recording with a warning issued before an error
    warning = Verdict(check="loss-flat", severity="warning", subject="model",
                      message="the loss did not move", fix="", kind="symptom")
    error = Verdict(check="labels-mismatch", severity="error", subject="loss",
                    message="labels are one-hot but the loss expects integers",
                    fix="use:\n    loss='categorical_crossentropy'")
    events = [
        RunStarted(script="train.py", argv=("train.py",), gradscope_version="0.1.0", started_at=0.0),
        VerdictIssued(warning),
        VerdictIssued(error),
        RunFinished(status="probe-only", exit_code=1),
    ]
    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in events))

    assert main(["view", str(recording)]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "run of train.py (probe-only, exit 1)",
        "gradscope: 2 verdicts for the model",
        "Most likely cause: [labels-mismatch] labels are one-hot but the loss expects",
        "  integers",
        "  ERROR   labels-mismatch (loss): labels are one-hot but the loss expects",
        "          integers",
        "          fix: use:",
        "                   loss='categorical_crossentropy'",
        "  WARNING loss-flat (model): the loss did not move",
    ]


def test_view_of_a_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"gradscope: cannot view '{tmp_path / 'nope.jsonl'}': no such file"
    ]


def test_view_of_a_foreign_file_says_so(tmp_path, capsys):
    other = write(tmp_path / "notes.jsonl", "hello\n")

    assert main(["view", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gradscope: {other}:1 is not a gradscope event")
    assert len(err.splitlines()) == 1
