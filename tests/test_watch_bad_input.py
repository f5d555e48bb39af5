"""The watch with trainings that do not go as planned: a callback that stops the
training early, an infinite dataset with steps_per_epoch, a second fit() (a new
phase), Ctrl-C in the middle of an epoch. Files stay complete, exit codes as
docs/cli.md says."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import numpy as np
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(320, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    # An infinite dataset, 10 steps per epoch, stopped after 2 epochs by EarlyStopping
    infinite = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    first = model.fit(infinite, steps_per_epoch=10, epochs=50, callbacks=[stop], verbose=0)
    print("first fit epochs", len(first.history["loss"]), flush=True)
    # A second fit of the same model: watched as fit 2, its steps go on counting
    second = model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    print("second fit epochs", len(second.history["loss"]), flush=True)
""")

SLOW = textwrap.dedent("""
    import time
    import numpy as np
    import keras

    class Slow(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            print("epoch", epoch + 1, flush=True)
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.02)

    x = np.random.default_rng(0).normal(size=(640, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    try:
        model.fit(x, y, batch_size=32, epochs=100, verbose=0, callbacks=[Slow()])
    finally:
        print("cleanup ran", flush=True)
""")


def _gradscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "gradscope", "run", "--headless", "--budget", "0", "--steps", "1", *args]


ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def test_early_stop_infinite_data_and_a_second_fit_are_watched(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    record, layers = tmp_path / "run.jsonl", tmp_path / "layers.csv"
    done = subprocess.run(
        _gradscope("--watch-every", "7", "--record", str(record), "--csv", str(layers), str(script)),
        capture_output=True, text=True, env=ENV, timeout=300,
    )
    # The script ran as under python: EarlyStopping stopped its first fit after 2 epochs
    assert done.returncode == 0, done.stderr[-3000:]
    assert "first fit epochs 2" in done.stdout and "second fit epochs 2" in done.stdout
    events = [json.loads(line) for line in record.read_text().splitlines()]
    # Then the epochs of both fits were seen, the steps counting on across them
    ends = [(e["fit"], e["epoch"], e["step"]) for e in events if e["type"] == "EpochEnded"]
    assert ends == [(1, 1, 10), (1, 2, 20), (2, 1, 30), (2, 2, 40)]
    progress = [e for e in events if e["type"] == "TrainProgress"]
    assert progress[0]["batches"] == 10 and progress[-1]["step"] == 40
    # the second fit is a phase of its own on the status line
    assert any(e["type"] == "PhaseChanged" and e["detail"] == "fit 2" for e in events)
    # every 7th step was watched, in both fits
    with open(layers, newline="") as f:
        steps = sorted({int(r["step"]) for r in csv.DictReader(f) if r["phase"] == "train"})
    assert steps == [1, 8, 15, 22, 29, 36]
    assert events[-1]["type"] == "RunFinished" and events[-1]["exit_code"] == 0


def test_ctrl_c_in_the_middle_of_an_epoch_leaves_complete_files(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    record, layers = tmp_path / "run.jsonl", tmp_path / "layers.csv"
    proc = subprocess.Popen(
        _gradscope("--watch-every", "5", "--record", str(record), "--csv", str(layers), str(script)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    assert proc.stdout is not None
    # When Ctrl-C comes while the third epoch trains
    for line in proc.stdout:
        if line.strip() == "epoch 3":
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # Then the script's cleanup ran, the exit code is 130, and every file is whole
    assert "cleanup ran" in out
    assert proc.returncode == 130, err[-3000:]
    events = [json.loads(line) for line in record.read_text().splitlines()]
    assert events[-1]["type"] == "RunFinished" and events[-1]["exit_code"] == 130
    assert [e["epoch"] for e in events if e["type"] == "EpochEnded"][:2] == [1, 2]
    with open(layers, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] == "train"]
    assert rows and all(r["act_dead_frac"] is not None for r in rows)
    assert {int(r["step"]) for r in rows} >= {1, 6, 11, 16, 21, 26, 31, 36}
