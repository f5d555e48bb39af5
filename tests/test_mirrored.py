"""The watch under MirroredStrategy on two logical CPU devices: the watched
training steps' per-layer figures are the whole step's (the all-reduced
gradient, every replica's activations), equal to one device's on the same
global batches, and the training stays the one python runs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

# Every script starts so: two logical devices on the CPU, set before TensorFlow starts.
TWO_CPUS = textwrap.dedent("""
    import contextlib, json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
""")

SCRIPT = TWO_CPUS + textwrap.dedent("""
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


def _result_of(source: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What the script prints after RESULT, run in a process of its own (its two
    logical devices must be set before TensorFlow starts)."""
    script = tmp_path_factory.mktemp("mirrored") / "script.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line[len("RESULT "):])


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _result_of(SCRIPT, tmp_path_factory)


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


# --- the diagnosis's probe inside the strategy ------------------------------------

PROBE_SCRIPT = TWO_CPUS + textwrap.dedent("""
    from gradscope.engine.layers import describe, probe_layers
    from gradscope.engine.probe import ProbeStep
    from gradscope.engine.target import make_target, replica_target

    seen = []  # (replica, rows) of every trace of the layer below: what each device computes on

    class Rows(keras.layers.Layer):
        def call(self, x):
            if x.shape[0] is not None:
                context = tf.distribute.get_replica_context()
                replica = tf.get_static_value(context.replica_id_in_sync_group) if context else None
                seen.append((None if replica is None else int(replica), int(x.shape[0])))
            return x

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8)).astype("float32")
    # Feature 2 is negative in the first half of every batch of 32 and positive in
    # the second: hidden unit 0 (below) is alive on the second replica's shard only.
    X[:, 2] = np.abs(X[:, 2]) * np.where(np.arange(64) % 32 < 16, -1.0, 1.0)
    Y = rng.integers(0, 3, size=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8,)), Rows(name="rows"),
            keras.layers.Dense(16, activation="relu", kernel_regularizer="l2", name="hidden"),
            keras.layers.Dense(8, activation="tanh", name="squash"),
            keras.layers.Dense(3, activation="softmax", name="out")])
        model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=32, epochs=1, shuffle=False, verbose=0)  # the optimizer has state
    hidden = model.get_layer("hidden")
    kernel, bias = hidden.kernel.numpy(), hidden.bias.numpy()
    kernel[:, 0], bias[0] = 0.0, 0.0
    kernel[2, 0] = 5.0
    hidden.kernel.assign(kernel); hidden.bias.assign(bias)

    def steps(target, probe, feed):
        seen.clear()
        out = []
        for step in range(3):
            x, y = X[step % 2 * 32:][:32], Y[step % 2 * 32:][:32]
            r = probe.run(*feed(x, y))
            out.append({"loss": [r.loss, r.data_loss, r.reg_loss],
                        "layers": [[f.grad_norm, f.weight_norm, f.update_ratio, f.act_mean, f.act_std,
                                    f.act_saturated_frac, f.act_dead_frac] for f in probe.layer_figures(r)]})
        return out

    one_target = make_target(model, X[:32])
    layers = probe_layers(one_target.model)
    metas = describe(layers)
    one_target.loss_fn(tf.constant(Y[:32]), one_target.model(X[:32]), None)
    one = steps(one_target, ProbeStep(one_target.model, one_target.optimizer, one_target.loss_fn,
                                      layers, metas),
                lambda x, y: (tf.constant(x), tf.constant(y), None))
    one_traced = list(seen)
    two_target = make_target(model, X[:32])
    replica = replica_target(two_target, model, strategy, X[:32], Y[:32], None)
    two = steps(two_target, ProbeStep(replica.model, replica.optimizer, replica.loss_fn,
                                      probe_layers(replica.model), metas, strategy=strategy),
                lambda x, y: (x, y, None))
    replica.hand_back(two_target)
    close = lambda a, b: all(np.allclose(np.asarray(u), np.asarray(v), rtol=2e-4, atol=1e-6)
                             for u, v in zip(a, b))
    print("RESULT " + json.dumps({
        "names": [m.name for m in metas], "one": one, "two": two,
        "one_traced": one_traced, "two_traced": seen,
        "same_weights_after": close([v.value for v in one_target.model.weights],
                                    [v.value for v in two_target.model.weights]),
        "same_optimizer_after": close([v.value for v in one_target.optimizer.variables],
                                      [v.value for v in two_target.optimizer.variables]),
        "user_untouched": close([v.value for v in model.weights], [kernel, bias]) is False,
    }))
""")


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _result_of(PROBE_SCRIPT, tmp_path_factory)


def test_the_probe_on_two_replicas_gives_the_one_device_figures(probed: dict) -> None:
    names = probed["names"]
    figure_names = ["grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "saturated", "dead"]
    for step, (one, two) in enumerate(zip(probed["one"], probed["two"], strict=True), start=1):
        # total, data and regularisation loss of the whole global batch
        assert two["loss"] == pytest.approx(one["loss"], rel=2e-4, abs=1e-6), step
        for name, a_row, b_row in zip(names, one["layers"], two["layers"], strict=True):
            for what, a, b in zip(figure_names, a_row, b_row, strict=True):
                if a is None:
                    assert b is None, (step, name, what)
                else:
                    assert b == pytest.approx(a, rel=2e-4, abs=1e-6), (step, name, what, a, b)
    hidden = names.index("hidden")
    # hidden unit 0 is alive on one shard only: alive in the batch, as on one device
    assert probed["two"][0]["layers"][hidden][6] == probed["one"][0]["layers"][hidden][6] < 1.0
    # the steps left the same weights and optimizer state for the experiments
    assert probed["same_weights_after"] and probed["same_optimizer_after"]


def test_each_device_computes_on_its_shard_only(probed: dict) -> None:
    # One device, the whole batch of 32; on two replicas, 16 rows on each device:
    # a device holds one replica step's activations, not the global batch's.
    assert {rows for _, rows in probed["one_traced"]} == {32}
    assert sorted(map(tuple, probed["two_traced"])) == [(0, 16), (1, 16)], probed["two_traced"]


RUN_SCRIPT = TWO_CPUS + textwrap.dedent("""

    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 8)).astype("float32")
    Y = (X[:, 0] - X[:, 1] > 0).astype("float32")

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer="l2", name="hidden"),
            keras.layers.Dense(8, activation="tanh", name="squash"),
            keras.layers.Dense(1, activation="sigmoid", name="out")])
        model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
        return model

    how = sys.argv[1]
    if how == "one":
        build().fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    elif how == "mirrored":
        with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
            model = build()
        model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    else:  # fit() inside the scope too, as many tutorials write it
        with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
            model = build()
            model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
""")


def assert_same_figures(one: list[dict], two: list[dict]) -> None:
    """The same CSV rows' figures, to float32 rounding (empty where one's is)."""
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        for column in ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
                       "act_saturated_frac", "act_dead_frac"):
            if a[column] == "":
                assert b[column] == "", (a, column)
            else:
                assert float(b[column]) == pytest.approx(float(a[column]), rel=2e-4, abs=1e-5), (a, b, column)


def _gradscope_run(script: str, tmp: object, how: str) -> dict:
    out = f"{tmp}/{how}"
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--seed", "1", "--steps", "3",
         "--csv", f"{out}.csv", "--verdicts", f"{out}-verdicts.csv", "--json", f"{out}.json",
         script, how],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    with open(f"{out}.csv") as rows, open(f"{out}-verdicts.csv") as verdicts, open(f"{out}.json") as report:
        return {"rc": done.returncode, "rows": list(csv.DictReader(rows)),
                "verdicts": verdicts.read(), "json": json.load(report), "stderr": done.stderr}


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object, dict]:
    tmp = tmp_path_factory.mktemp("mirrored_run")
    script = tmp / "train.py"
    script.write_text(RUN_SCRIPT)
    return str(script), tmp, _gradscope_run(str(script), tmp, "one")


@pytest.mark.parametrize("how", ["mirrored", "in-scope"])
def test_gradscope_run_under_the_strategy_reports_what_one_device_does(
        one_device_run: tuple[str, object, dict], how: str) -> None:
    # (in-scope: before, the clone and the experiments' steps were the strategy's,
    # made inside its scope: the histograms and the experiments were lost)
    script, tmp, one = one_device_run
    two = _gradscope_run(script, tmp, how)
    assert one["rc"] == two["rc"] == 0, two["stderr"][-2000:]
    assert "lost to an error" not in two["stderr"]
    # the same verdicts, word for word
    assert two["verdicts"] == one["verdicts"]
    # the same probe and training rows, to float32 rounding
    assert [(r["phase"], r["step"], r["layer"]) for r in two["rows"]] == [
        (r["phase"], r["step"], r["layer"]) for r in one["rows"]]
    assert {r["phase"] for r in one["rows"]} == {"probe", "train"}
    assert_same_figures(one["rows"], two["rows"])
    # and the run says where the probe ran
    notes = json.dumps(two["json"])
    assert "probe steps on the strategy's 2 replicas" in notes
    assert "replicas" not in json.dumps(one["json"])


OWN_STEP_SCRIPT = TWO_CPUS + textwrap.dedent("""

    class Own(keras.Sequential):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 8)).astype("float32")
    Y = (X[:, 0] - X[:, 1] > 0).astype("float32")
    mirrored = sys.argv[1] == "mirrored"
    with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope() if mirrored else contextlib.nullcontext():
        model = Own([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                     keras.layers.Dense(1, activation="sigmoid", name="out")])
        model.compile("adam", "binary_crossentropy")
    history = model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    print("LOSSES", history.history["loss"], float(sum(np.abs(v.numpy()).sum() for v in model.weights)))
""")


def test_an_own_train_step_under_the_strategy_runs_on_its_replicas_and_the_training_is_pythons(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # Run outside the replicas, the step's first apply built the optimizer outside
    # the strategy's scope: the user's fit then failed ('Adam' has no '_momentums').
    tmp = tmp_path_factory.mktemp("mirrored_own_step")
    script = tmp / "own.py"
    script.write_text(OWN_STEP_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def losses(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("LOSSES")]

    plain = subprocess.run([sys.executable, str(script), "mirrored"], capture_output=True, text=True,
                           timeout=300, env=env)
    runs = {}
    for how in ("one", "mirrored"):
        done = subprocess.run(
            [sys.executable, "-m", "gradscope", "run", "--headless", "--steps", "2", "--budget", "0",
             "--csv", str(tmp / f"{how}.csv"), "--verdicts", str(tmp / f"{how}-verdicts.csv"), str(script), how],
            capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        with open(tmp / f"{how}.csv") as rows, open(tmp / f"{how}-verdicts.csv") as verdicts:
            runs[how] = (done, list(csv.DictReader(rows)), list(csv.DictReader(verdicts)))
    done, rows, verdicts = runs["mirrored"]
    # the user's training: the loss and the weights python gets
    assert losses(done.stdout) and losses(done.stdout) == losses(plain.stdout)
    said = [v for v in verdicts if v["check"] == "custom-train-step"]
    assert said and "through your own train_step()" in said[0]["message"], verdicts
    # probed on both replicas: the one-device figures
    probe = [r for r in rows if r["phase"] == "probe"]
    one = [r for r in runs["one"][1] if r["phase"] == "probe"]
    assert [(r["step"], r["layer"]) for r in probe] == [(r["step"], r["layer"]) for r in one] and probe
    assert_same_figures(one, probe)
