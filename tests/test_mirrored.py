"""The watch under MirroredStrategy on two logical CPU devices: the watched
training steps' per-layer figures are the whole step's (the all-reduced
gradient, every replica's activations), equal to one device's on the same
global batches, and the training stays the one python runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras.src.layers.layer import Layer
    from gradscope.engine.watch import Watch
    from gradscope.events import LayerStats

    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 8)).astype("float32")
    Y = (X[:, 0] - X[:, 1] > 0).astype("float32")
    original_call = Layer.__call__

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                                  keras.layers.Dense(8, activation="tanh", name="squash"),
                                  keras.layers.Dense(1, activation="sigmoid", name="out")])
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
        return model

    def train(strategy, watched):
        if strategy is not None:
            with strategy.scope():
                model = build()
        else:
            model = build()
        events, callbacks = [], []
        if watched:
            watch = Watch(model, events.append, 1)
            callbacks = [watch.begin_fit(2)]
        history = model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)
        rows = {e.step: {r.layer: [r.grad_norm, r.weight_norm, r.update_ratio, r.act_mean, r.act_std,
                                   r.act_saturated_frac, r.act_dead_frac] for r in e.rows}
                for e in events if isinstance(e, LayerStats)}
        weights = [v.numpy().tolist() for v in model.weights]
        return rows, history.history, weights

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one, _, _ = train(None, True)
    two, history, weights = train(mirrored, True)
    _, plain_history, plain_weights = train(mirrored, False)
    print("RESULT " + json.dumps({
        "one": one, "two": two, "replicas": mirrored.num_replicas_in_sync,
        "same_training": history == plain_history and weights == plain_weights,
        "layer_call_restored": Layer.__call__ is original_call,
    }))
""")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    script = tmp_path_factory.mktemp("mirrored") / "mirrored.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


def test_the_watched_figures_are_the_whole_steps_on_two_replicas(result: dict) -> None:
    one, two = result["one"], result["two"]
    assert result["replicas"] == 2
    # Every one of the 6 steps watched, on every layer
    assert sorted(two, key=int) == sorted(one, key=int) and len(one) == 6
    for step in one:
        for layer, figures in one[step].items():
            for name, a, b in zip(["grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
                                   "saturated", "dead"], figures, two[step][layer], strict=True):
                if a is None:
                    assert b is None, (step, layer, name)
                    continue
                # The same math, summed in another order on two devices: float32 rounding
                assert b == pytest.approx(a, rel=2e-4, abs=1e-6), (step, layer, name, a, b)


def test_the_training_under_the_strategy_is_the_one_python_runs(result: dict) -> None:
    assert result["same_training"]
    # and no patch of ours outlives the watched step (replica threads take turns)
    assert result["layer_call_restored"]
