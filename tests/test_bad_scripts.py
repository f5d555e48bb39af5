"""Scripts that go wrong, or do unusual things, under `gradscope run`.

Each gives one clear message and the exit code of docs/cli.md, or behaves
exactly as under `python`. Already covered in test_cli.py: a missing script, a
folder, a syntax error, a script raising before fit(), one that never calls
fit(), and the script's own sys.exit codes before fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gradscope.cli import main
from gradscope.commands.run import explaining_verdict
from gradscope.verdicts import Verdict

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# --- not a Python script ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("plot.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
         "gradscope: cannot run 'plot.png': it is a binary file, not a Python script"),
        ("train.ipynb", b'{"cells": [{"execution_count": null}], "nbformat": 4}\n',
         "gradscope: cannot run 'train.ipynb': it is a Jupyter notebook, not a Python script; "
         "export it first (jupyter nbconvert --to script train.ipynb) and run the .py file"),
    ],
    ids=["binary", "notebook"],
)
def test_a_file_that_is_not_a_python_script_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    name: str, content: bytes, message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(content)

    code = main(["run", "--headless", name])

    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [message]
    assert out == ""


# --- fit() raising inside Keras ---------------------------------------------------

# Dense(3) + categorical cross-entropy fed integer labels of shape (n,): Keras 3
# raises "Arguments `target` and `output` must have the same rank" on the first batch.
INT_LABELS_CATEGORICAL = """\
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.arange(64) % 3  # integer class ids, shape (64,)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    print("not reached")
"""

# x has 5 features, the model takes 4: Keras raises, and no check of ours explains it.
WRONG_INPUT_WIDTH = """\
    import numpy as np
    import keras

    x = np.random.default_rng(0).normal(size=(64, 5)).astype("float32")
    y = (np.arange(64) % 2).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
"""


def _exception_line(err: list[str], prefix: str) -> int:
    matches = [i for i, line in enumerate(err) if line.startswith(prefix)]
    assert len(matches) == 1, err
    return matches[0]


def test_a_crash_in_fit_that_a_check_explains_names_the_cause_under_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a script whose fit() raises inside Keras for a reason a static check knows
    monkeypatch.chdir(tmp_path)
    script = write(tmp_path / "train.py", INT_LABELS_CATEGORICAL)

    code = main(["run", "--headless", "--csv", "layers.csv", str(script)])

    # Then exit 3 with the user's traceback (their line, Keras's error, none of our frames)
    out, err_text = capsys.readouterr()
    err = err_text.splitlines()
    assert code == 3
    assert "not reached" not in out
    start = err.index("Traceback (most recent call last):")
    raised = _exception_line(err, "ValueError: Arguments `target` and `output` must have the same rank")
    traceback = err[start:raised]
    assert f'  File "{script}", line 8, in <module>' in traceback
    assert not any("gradscope" + os.sep in line for line in traceback)
    # and right under it, one line naming the cause and its fix
    likely = [i for i, line in enumerate(err) if line.startswith("gradscope: this is likely ")]
    assert len(likely) == 1 and likely[0] > raised
    line = err[likely[0]]
    assert line.startswith("gradscope: this is likely loss-label-mismatch: the labels are integer class ids")
    assert " — fix: " in line and "sparse_categorical_crossentropy" in line


def test_a_crash_in_fit_no_check_explains_shows_only_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = write(tmp_path / "train.py", WRONG_INPUT_WIDTH)

    code = main(["run", "--headless", "--csv", "layers.csv", str(script)])

    err = capsys.readouterr().err.splitlines()
    assert code == 3
    assert "Traceback (most recent call last):" in err
    _exception_line(err, "ValueError: Exception encountered when calling Sequential.call()")
    assert not any(line.startswith("gradscope: this is likely") for line in err)


def test_a_crash_after_a_working_fit_is_not_blamed_on_a_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a fit that runs (with an error verdict: softmax over one unit), then a
    # failure of the script's own
    monkeypatch.chdir(tmp_path)
    script = write(
        tmp_path / "train.py",
        """\
        import numpy as np
        import keras

        x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
        y = (np.arange(32) % 2).astype("float32")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="softmax")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        raise RuntimeError("could not save the model")
        """,
    )

    code = main(["run", "--headless", "--budget", "0", "--verdicts", "v.csv", str(script)])

    err = capsys.readouterr().err.splitlines()
    assert code == 3
    assert "single-unit-softmax" in (tmp_path / "v.csv").read_text()
    assert err[-1] == "RuntimeError: could not save the model"
    assert not any(line.startswith("gradscope: this is likely") for line in err)


def _verdicts(probe_failed: bool = True) -> list[Verdict]:
    cause = Verdict("loss-label-mismatch", "error", "labels", "integer labels", "one-hot them")
    symptom = Verdict("loss-flat", "error", "loss", "flat", "see above", kind="symptom")
    failed = Verdict("probe-failed", "info", "model", "a step fails", "see above",
                     evidence={"error": "ValueError: rank mismatch"})
    return [symptom, failed, cause] if probe_failed else [symptom, cause]


def test_the_explained_crash_may_be_wrapped_by_the_script() -> None:
    # `except ValueError as e: raise RuntimeError("training failed") from e`
    fit_error = ValueError("rank mismatch")
    wrapped = RuntimeError("training failed")
    wrapped.__cause__ = fit_error

    cause = explaining_verdict(wrapped, fit_error, _verdicts(), trained=False)

    assert cause is not None and cause.check == "loss-label-mismatch"


def test_no_explanation_when_steps_could_run_or_the_crash_is_not_the_fits() -> None:
    fit_error = ValueError("rank mismatch")
    # the probe's step ran: the verdict does not predict a crash
    assert explaining_verdict(fit_error, fit_error, _verdicts(probe_failed=False), False) is None
    # the user's training got through an epoch: the crash came later, for another reason
    assert explaining_verdict(fit_error, fit_error, _verdicts(), trained=True) is None
    # the script's error is not the fit's
    assert explaining_verdict(KeyError("k"), fit_error, _verdicts(), trained=False) is None


def test_text_labels_crash_keras_before_its_first_step_and_get_the_cause_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Keras rejects the data ("Invalid dtype: str...") where the probe's step fails
    # on a cast: different exceptions, one cause
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "train.py",
        """\
        import numpy as np
        import keras

        x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
        y = np.array(["cat", "dog", "cow"] * 2)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        """,
    )

    code = main(["run", "--headless", "--csv", "layers.csv", "train.py"])

    err = capsys.readouterr().err.splitlines()
    assert code == 3
    assert err[-1].startswith("gradscope: this is likely loss-label-mismatch: the labels are text")


def test_probe_only_ends_a_fit_made_in_a_thread_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a script whose first fit runs in a worker thread, under --probe-only
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "train.py",
        """\
        import threading

        import numpy as np
        import keras

        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        worker = threading.Thread(target=lambda: model.fit(np.zeros((8, 3)), np.zeros((8, 1)), verbose=0))
        worker.start()
        worker.join()
        print("main thread goes on")
        """,
    )

    code = main(["run", "--headless", "--probe-only", "--budget", "0", "--csv", "l.csv", "train.py"])

    # Then that thread stopped after the probe without a traceback; the script went on
    out, err = capsys.readouterr()
    assert code in (0, 1)
    assert "main thread goes on" in out
    assert "Traceback" not in err and "ProbeFinished" not in err


# --- as under python: threads, cwd, several models, sys.exit during fit ------------

SEED_DATA_MODEL = """\
    import numpy as np
    import keras

    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")


    def build(name):
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
             keras.layers.Dense(1, activation="sigmoid")], name=name)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        return model

"""

SCRIPTS = {
    # The first fit runs in a worker thread; a second model, and the first one's
    # second fit, run in the main thread; a non-daemon thread outlives the main module.
    "threads-and-models": """\
        import threading
        import time

        first, second = build("first"), build("second")
        result = {}


        def work():
            result["first"] = first.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"]


        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        print("result first", result["first"])
        print("result second", second.fit(x, y, epochs=2, batch_size=16, verbose=0).history["loss"])
        print("result first again", first.fit(x, y, epochs=1, verbose=0).history["loss"])
        print("result weights", [float(np.sum(w)) for w in second.get_weights()])


        def late():
            time.sleep(0.5)
            print("result late thread done", flush=True)


        threading.Thread(target=late).start()  # python waits for it before exiting
        print("result main done", flush=True)
    """,
    # The script moves to another folder before fit (its relative paths follow it,
    # gradscope's, given on the command line, do not), then a callback ends it with
    # sys.exit(6) during the user's own training.
    "cwd-and-exit": """\
        import os
        import sys

        os.makedirs("elsewhere", exist_ok=True)
        os.chdir("elsewhere")
        with open("note.txt", "w") as f:
            f.write("written by the script")
        print("result cwd", os.path.basename(os.getcwd()))


        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    print("result note", open("note.txt").read())
                    print("result stopping after epoch", epoch, flush=True)
                    sys.exit(6)


        build("moved").fit(x, y, epochs=5, verbose=0, callbacks=[Stop()])
        print("result not reached")
    """,
}

OUTPUTS = ["--csv", "l.csv", "--verdicts", "v.csv", "--json", "r.json", "--record", "r.jsonl"]


@dataclass
class Ran:
    folder: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def results(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("result ")]

    def events(self) -> list[dict]:
        return [json.loads(line) for line in (self.folder / "r.jsonl").read_text().splitlines()]

    def ended_as_usual(self) -> bool:
        """Ran to its end: exit code 1 with an error verdict, 0 without (cli.md)."""
        events = self.events()
        error = any(e["type"] == "VerdictIssued" and e["verdict"]["severity"] == "error"
                    for e in events)
        finished = events[-1]
        return (
            finished["type"] == "RunFinished"
            and finished["status"] == "ok"
            and finished["exit_code"] == self.returncode == int(error)
        )


def _prepare(folder: Path, name: str) -> None:
    folder.mkdir(parents=True)
    if name == "cwd-and-exit":
        # Earlier outputs, replaced with --force: the replacement must land here too.
        (folder / "l.csv").write_text("earlier\n")
        (folder / "v.csv").write_text("earlier\n")


def _run(cmd: list[str], folder: Path) -> Ran:
    done = subprocess.run(cmd, cwd=folder, env=ENV, capture_output=True, text=True, timeout=300)
    return Ran(folder, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def started(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    dict[str, tuple[Future[Ran], Future[Ran]]]
]:
    """Each script of SCRIPTS under python and under gradscope, two processes at a time."""
    tmp = tmp_path_factory.mktemp("as-python")
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {}
        for name, body in SCRIPTS.items():
            script = tmp / f"{name}.py"
            script.write_text(textwrap.dedent(SEED_DATA_MODEL) + textwrap.dedent(body))
            for mode in ("python", "gradscope"):
                _prepare(tmp / name / mode, name)
            jobs[name] = (
                pool.submit(_run, [sys.executable, str(script)], tmp / name / "python"),
                pool.submit(
                    _run,
                    [sys.executable, "-m", "gradscope", "run", "--headless", "--force", "--budget", "1",
                     *OUTPUTS, str(script)],
                    tmp / name / "gradscope",
                ),
            )
        yield jobs


def pair(started: dict[str, tuple[Future[Ran], Future[Ran]]], name: str) -> tuple[Ran, Ran]:
    python, gradscope = (job.result(timeout=300) for job in started[name])
    assert python.returncode in (0, 6), python.stderr[-2000:]
    assert "Traceback" not in gradscope.stderr, gradscope.stderr[-3000:]
    return python, gradscope


def test_threads_behave_as_under_python(started: dict) -> None:
    python, gradscope = pair(started, "threads-and-models")
    # The fit made in a thread was probed and trained the same; the late thread ran
    assert python.results[-1] == "result late thread done"
    assert gradscope.results == python.results
    assert python.returncode == 0 and gradscope.ended_as_usual()


def test_only_the_first_fit_is_probed_the_others_run_untouched(started: dict) -> None:
    python, gradscope = pair(started, "threads-and-models")
    # Every fit trains to the same numbers as under python
    assert [line.split(" [")[0] for line in python.results[:4]] == [
        "result first", "result second", "result first again", "result weights"
    ]
    assert gradscope.results == python.results
    # and only the first model was described and probed, once
    events = gradscope.events()
    assert [e["model_name"] for e in events if e["type"] == "ModelDescribed"] == ["first"]
    phases = [e["phase"] for e in events if e["type"] == "PhaseChanged"]
    # (one PhaseChanged per experiment: the status line names each)
    assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [
        "script", "static", "probe", "experiments", "train"
    ]
    # the watch follows the first model only: its first fit's 2 epochs, then its
    # second fit as fit 2; the other model's fit is not watched
    ends = [(e["fit"], e["epoch"]) for e in events if e["type"] == "EpochEnded"]
    assert ends == [(1, 1), (1, 2), (2, 1)]
    train_steps = [e["step"] for e in events if e["type"] == "LayerStats" and e["phase"] == "train"]
    assert train_steps[0] == 1


def test_a_script_that_changes_directory_keeps_its_paths_and_ours(started: dict) -> None:
    python, gradscope = pair(started, "cwd-and-exit")
    assert python.results[:2] == ["result cwd elsewhere", "result note written by the script"]
    assert gradscope.results == python.results
    # Every output (new ones, and those replaced with --force) is where it was asked
    # for, relative to where gradscope started; the script's own file is in its folder.
    here = gradscope.folder
    assert (here / "l.csv").read_text().startswith("phase,step,layer,")
    assert (here / "v.csv").read_text().startswith("check,severity,subject,message,fix")
    assert json.loads((here / "r.json").read_text())["finished"]["exit_code"] == 6
    assert gradscope.events()[-1]["type"] == "RunFinished"
    assert sorted(p.name for p in (here / "elsewhere").iterdir()) == ["note.txt"]
    assert not [p.name for p in here.iterdir() if p.name.startswith(".")]


def test_sys_exit_during_the_users_training_keeps_its_code(started: dict) -> None:
    python, gradscope = pair(started, "cwd-and-exit")
    assert python.returncode == gradscope.returncode == 6
    assert gradscope.results[-1] == "result stopping after epoch 1"
    finished = gradscope.events()[-1]
    assert (finished["type"], finished["status"], finished["exit_code"]) == (
        "RunFinished", "script-exit", 6
    )
