"""The watch never changes the user's training: with deterministic ops, the final
weights and the loss history are bit-for-bit the same with the watch measuring
every step and with no watch at all (and as under plain python)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = """
import json, sys
import numpy as np
import keras
import tensorflow as tf

tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(1)
rng = np.random.default_rng(0)
x = rng.normal(size=(192, 10)).astype("float32")
y = (x[:, :3].sum(axis=1) > 0).astype("int32")
model = keras.Sequential([
    keras.Input((10,)),
    keras.layers.Dense(24, activation="relu"),
    keras.layers.BatchNormalization(),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(12, activation="tanh"),
    keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(x, y, batch_size=32, epochs=3, validation_split=0.25, verbose=0)
# A second fit: watched as a new phase, and must stay untouched too.
history2 = model.fit(x, y, batch_size=48, epochs=1, verbose=0)
np.savez(sys.argv[1], *model.get_weights())
with open(sys.argv[1] + ".json", "w") as f:
    json.dump({"first": history.history, "second": history2.history}, f)
"""


def _train(tmp_path: Path, name: str, *gradscope_args: str) -> tuple[list[np.ndarray], dict]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if gradscope_args:
        command = [sys.executable, "-m", "gradscope", "run", "--headless", "--csv",
                   str(tmp_path / f"{name}.csv"), "--record", str(tmp_path / f"{name}.jsonl"),
                   "--budget", "0", "--steps", "1", *gradscope_args, str(script), str(out)]
    else:
        command = [sys.executable, str(script), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode in (0, 1), done.stderr[-3000:]
    weights = np.load(out)
    return [weights[k] for k in weights.files], json.loads(Path(str(out) + ".json").read_text())


def test_the_watch_leaves_the_training_bit_for_bit_unchanged(tmp_path: Path) -> None:
    # Given a seeded, deterministic training run under python, and under gradscope with no watch
    python_weights, python_history = _train(tmp_path, "python")
    plain_weights, plain_history = _train(tmp_path, "plain", "--no-watch")
    # When the same run is watched at every step (the most the watch can touch it)
    watched_weights, watched_history = _train(tmp_path, "watched", "--watch-every", "1")
    # Then the final weights and the loss history are identical, bit for bit
    assert len(watched_weights) == len(plain_weights) == len(python_weights)
    for a, b, c in zip(python_weights, plain_weights, watched_weights, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert watched_history == plain_history == python_history
    # and the watch did measure the training: phase=train rows at every global
    # step, with gradients and activations, across both fits (3 epochs of 5
    # steps, then 4 steps)
    rows = (tmp_path / "watched.csv").read_text().splitlines()
    train = [r.split(",") for r in rows if r.startswith("train,")]
    assert sorted({int(r[1]) for r in train}) == list(range(1, 20))
    dense = next(r for r in train if r[2] == "dense")
    assert dense[6] and dense[9]  # grad_norm and act_mean measured
    events = [json.loads(line) for line in (tmp_path / "watched.jsonl").read_text().splitlines()]
    ends = [(e["fit"], e["epoch"], e["step"]) for e in events if e["type"] == "EpochEnded"]
    assert ends == [(1, 1, 5), (1, 2, 10), (1, 3, 15), (2, 1, 19)]
    # --no-watch keeps the epochs, and measures no step
    plain_rows = (tmp_path / "plain.csv").read_text().splitlines()
    assert not [r for r in plain_rows if r.startswith("train,")]
