"""A script that trains with a `train_on_batch` loop (no fit at all) is diagnosed too.

The first `train_on_batch` is taken over like a first fit: the diagnosis runs
on that one batch, then the call goes on with its own arguments and returns
what Keras returns; every later call goes straight to Keras.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import random, sys
    import keras, numpy as np, tensorflow as tf

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    bug = sys.argv[1] == "softmax-one-unit"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")[:, None]
    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(1, activation="softmax" if bug else "sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    for step in range(30):
        idx = np.random.randint(0, len(x), 32)  # the global RNG, as tutorials do
        logs = model.train_on_batch(x[idx], y[idx], return_dict=step % 2 == 0)
        print("step", step, repr(logs))
    print("weight sum", repr(float(sum(np.sum(w) for w in model.get_weights()))))
    print("next draws", random.random(), np.random.rand(), float(tf.random.uniform(())))
    """
)


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    folder: Path

    @property
    def verdicts(self) -> list[dict[str, str]]:
        with open(self.folder / "v.csv", newline="") as stream:
            return list(csv.DictReader(stream))

    @property
    def layer_rows(self) -> list[str]:
        return (self.folder / "l.csv").read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """The healthy script under python and under gradscope, and the buggy one
    under gradscope --probe-only, started together (each takes a while)."""
    tmp = tmp_path_factory.mktemp("train_on_batch")
    script = tmp / "loop.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    gradscope = [sys.executable, "-m", "gradscope", "run", "--headless"]
    commands = {
        "plain": [sys.executable, str(script), "healthy"],
        "healthy": [*gradscope, "--csv", "l.csv", "--verdicts", "v.csv", str(script), "healthy"],
        "buggy": [
            *gradscope, "--probe-only", "--csv", "l.csv", "--verdicts", "v.csv",
            str(script), "softmax-one-unit",
        ],
    }
    procs = {}
    for name, command in commands.items():
        folder = tmp / name
        folder.mkdir()
        procs[name] = (
            folder,
            subprocess.Popen(
                command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ),
        )
    results = {}
    try:
        for name, (folder, proc) in procs.items():
            out, err = proc.communicate(timeout=300)
            results[name] = Run(proc.returncode, out, err, folder)
        yield results
    finally:
        for _, proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_train_on_batch_loop_is_diagnosed_not_exit_4(runs: dict[str, Run]) -> None:
    run = runs["healthy"]
    assert run.rc == 0, run.stderr[-3000:]
    assert "ended without calling" not in run.stderr
    # it was really probed: probe rows, no probe-failed, a summary of its own
    assert [row for row in run.layer_rows if row.startswith("probe,")], run.stderr[-3000:]
    assert "probe-failed" not in [v["check"] for v in run.verdicts]
    assert "no problems found" in run.stderr, run.stderr[-3000:]
    # and the loop's own steps are watched from its first step on (every 100th:
    # the loop's steps after the probe are counted as training steps)
    train = [row.split(",") for row in run.layer_rows if row.startswith("train,")]
    assert train and {row[1] for row in train} <= {"1", "101", "201", "301"}
    assert all(row[6] for row in train if row[5] == "true")  # gradient norms measured


def test_the_loops_own_results_are_the_ones_python_gives(runs: dict[str, Run]) -> None:
    # Every train_on_batch result (the first included: gradscope hands it back
    # from Keras), the final weights, the next random draws: to the last digit.
    plain = runs["plain"]
    assert plain.rc == 0, plain.stderr[-3000:]
    lines = [line for line in plain.stdout.splitlines() if line.startswith(("step", "weight", "next"))]
    assert len(lines) == 32
    ours = [line for line in runs["healthy"].stdout.splitlines() if line.startswith(("step", "weight", "next"))]
    assert ours == lines


def test_a_buggy_train_on_batch_script_gets_its_top_verdict(runs: dict[str, Run]) -> None:
    run = runs["buggy"]
    assert run.rc == 1, run.stderr[-3000:]
    assert run.verdicts[0]["check"] == "single-unit-softmax", run.verdicts
    assert "Most likely cause: [single-unit-softmax]" in run.stderr
    # --probe-only ends the script at its first train_on_batch, as at a first fit
    assert "step 0" not in run.stdout


def test_a_gan_discriminators_first_batch_of_one_label_is_no_error() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from gradscope.events import EventBus
    from gradscope.intercept import ProbeFinished, intercept_fit
    from gradscope.options import RunOptions
    from gradscope.session import Session

    keras.utils.set_random_seed(0)
    discriminator = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="leaky_relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    discriminator.compile(optimizer="adam", loss="binary_crossentropy")
    real = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    bus = EventBus()
    session = Session(RunOptions(script="<test>", steps=3, probe_only=True, budget=1.0), bus)
    with intercept_fit(session.on_fit):
        with pytest.raises(ProbeFinished):
            discriminator.train_on_batch(real, np.ones((64, 1), "float32"))
    assert not [v.check for v in bus.verdicts() if v.severity == "error"]
