"""Large models: the probe's memory mechanisms (scripts/bench_scale.py measures them).

A model whose weights and optimizer state are large is probed in place behind a
snapshot on disk; the probe step reads each update off the optimizer's own ops
instead of keeping a copy of the weights. These tests shrink the thresholds so
that small models take the same paths.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

from gradscope.engine import snapshot as snapshot_module  # noqa: E402
from gradscope.engine import target as target_module  # noqa: E402
from gradscope.engine.experiments import Trainer  # noqa: E402
from gradscope.engine.layers import describe, probe_layers  # noqa: E402
from gradscope.engine.probe import ProbeStep  # noqa: E402
from gradscope.engine.snapshot import CHUNK_BYTES, VariableSnapshot  # noqa: E402
from gradscope.events import EventBus, LayerStats, Note  # noqa: E402
from gradscope.intercept import FitCall, ProbeFinished  # noqa: E402
from gradscope.options import RunOptions  # noqa: E402
from gradscope.session import Session  # noqa: E402

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 8)).astype("float32")
Y = rng.normal(size=(64, 1)).astype("float32")


def bits(variables: list[Any]) -> list[bytes]:
    return [np.asarray(v.numpy()).tobytes() for v in variables]


def awkward_variables() -> list[keras.Variable]:
    """Values a byte-for-byte copy must keep: -0.0, NaN payloads, ints, bfloat16,
    a scalar, an empty tensor and one above the chunk size (the DLPack path)."""
    big = rng.normal(size=(CHUNK_BYTES // 4 // 1024 + 3, 1024)).astype("float32")
    big[0, :3] = [-0.0, np.nan, -np.inf]
    payload = np.array([0x7FC00001, 0xFFC12345], dtype=np.uint32).view(np.float32)
    return [
        keras.Variable(big),
        keras.Variable(np.concatenate([payload, [-0.0, 1.5]]).astype("float32")),
        keras.Variable(np.arange(7, dtype="int64")),
        keras.Variable(np.float32(3.25)),
        keras.Variable(rng.normal(size=(5, 3)).astype("float32"), dtype="bfloat16"),
        keras.Variable(np.zeros((0, 4), "float32")),
    ]


@pytest.mark.parametrize("spill_over", [0, 2**62], ids=["on-disk", "in-memory"])
def test_a_snapshot_puts_every_bit_back(spill_over: int) -> None:
    # Given variables holding awkward values, snapshotted,
    variables = awkward_variables()
    original = bits(variables)
    snapshot = VariableSnapshot(variables, spill_over=spill_over)
    assert snapshot.on_disk == (spill_over == 0)
    # when they are overwritten and restored (twice, as the experiments do),
    for _ in range(2):
        for v in variables:
            v.assign(np.ones(v.shape, dtype=ml_dtypes.bfloat16 if v.dtype == "bfloat16" else v.dtype))
        snapshot.restore()
        # then they hold exactly the snapshot's bits,
        assert bits(variables) == original
    # and a restored variable trains on as usual.
    variables[0].assign_add(tf.ones(variables[0].shape))
    assert float(variables[0].numpy()[1, 0]) == pytest.approx(float(np.frombuffer(original[0], np.float32)[1024]) + 1)
    snapshot.close()


def trained_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(16, activation="relu"), L.BatchNormalization(), L.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.train_on_batch(X, Y)
    return model


@pytest.fixture
def too_large_to_clone(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[bytes]]:
    """A model mid-training whose state counts as too large to clone (snapshot on
    disk), and the bits of its variables and optimizer state."""
    monkeypatch.setattr(target_module, "CLONE_MAX_BYTES", 0)
    monkeypatch.setattr(snapshot_module, "SPILL_BYTES", 0)
    model = trained_model()
    return model, bits(list(model.variables) + list(model.optimizer.variables))


def test_a_model_too_large_to_clone_is_probed_in_place_and_put_back(
    too_large_to_clone: tuple[Any, list[bytes]],
) -> None:
    # Given a model whose state counts as too large to clone, and a snapshot on disk,
    model, before = too_large_to_clone
    # when the probe runs its steps on it,
    target = target_module.make_target(model, X)
    assert target.mode == "in-place" and target.snapshot is not None and target.snapshot.on_disk
    assert "probed in place rather than on a clone" in target.notes[0]
    layers = probe_layers(target.model)
    xt, yt = tf.constant(X), tf.constant(Y)
    target.loss_fn(yt, target.model(xt), None)
    step = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, describe(layers))
    figures = [step.layer_figures(step.run(xt, yt, None)) for _ in range(3)]
    # then it trained the user's model meanwhile,
    assert bits(list(model.variables)) != before[: len(model.variables)]
    assert all(f.update_ratio and f.update_ratio > 0 for f in figures[-1] if f.weight_norm)
    # and restoring puts back every weight, moving statistic and Adam moment.
    target.restore()
    target.close()
    assert bits(list(model.variables) + list(model.optimizer.variables)) == before


def test_the_session_leaves_a_model_probed_in_place_for_its_size_untouched(
    too_large_to_clone: tuple[Any, list[bytes]],
) -> None:
    model, before = too_large_to_clone
    bus = EventBus()
    session = Session(RunOptions(script="train.py", steps=3, probe_only=True), bus)
    call = FitCall(model, (X, Y), {"batch_size": 16, "epochs": 1, "verbose": 0}, keras.Model.fit)
    with pytest.raises(ProbeFinished):
        session.on_fit(call)
    assert [v.check for v in bus.verdicts() if v.check == "probe-failed"] == []
    assert any(isinstance(e, LayerStats) for e in bus.history)
    assert not any(isinstance(e, Note) and "experiments skipped" in e.text for e in bus.history)
    assert bits(list(model.variables) + list(model.optimizer.variables)) == before


@pytest.mark.parametrize(
    "optimizer",
    [
        lambda: keras.optimizers.Adam(0.01),
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        lambda: keras.optimizers.RMSprop(0.01),
        lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),  # two writes: weight difference
        lambda: keras.optimizers.SGD(0.1),
    ],
    ids=["adam", "sgd-momentum", "rmsprop", "adamw", "sgd"],
)
def test_the_update_read_off_the_optimizer_is_the_weights_change(optimizer: Any) -> None:
    # Given a model mid-training,
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="tanh"), L.Dense(1)])
    model.compile(optimizer=optimizer(), loss="mse")
    model.train_on_batch(X, Y)
    target = target_module.make_target(model, X)
    layers = probe_layers(target.model)
    xt, yt = tf.constant(X), tf.constant(Y)
    target.loss_fn(yt, target.model(xt), None)
    step = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, describe(layers))
    # when a probe step reports each variable's update,
    weights = [np.array(v.numpy(), dtype=np.float64) for v in step.tvars]
    result = step.run(xt, yt, None)
    moved = [np.array(v.numpy(), dtype=np.float64) - w for v, w in zip(step.tvars, weights, strict=True)]
    # then its norm is that of the change of the weights (up to float rounding).
    expected = np.array([np.sum(d * d) for d in moved])
    np.testing.assert_allclose(result.update_sq, expected, rtol=1e-4)
    np.testing.assert_allclose(result.weight_sq, [np.sum(w * w) for w in weights], rtol=1e-5)


def test_experiments_reset_to_the_targets_snapshot() -> None:
    # Given a trainer that starts from a snapshot it was handed,
    model = trained_model()
    variables = list(model.variables) + list(model.optimizer.variables)
    start = bits(variables)
    snapshot = VariableSnapshot(variables, spill_over=0)
    trainer = Trainer(model, model.optimizer, target_module._user_loss_fn(model), start=snapshot)
    # when it trains and resets,
    trainer.train(tf.constant(X), tf.constant(Y), None)
    assert bits(variables) != start
    trainer.reset()
    # then the model and optimizer are back at the start, and closing the trainer
    # leaves the caller's snapshot usable.
    assert bits(variables) == start
    trainer.close()
    snapshot.restore()
    snapshot.close()


def digits_model(bias: float = 0.0) -> tuple[Any, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    keras.utils.set_random_seed(0)
    start = keras.initializers.Constant(bias)
    model = keras.Sequential([
        keras.Input((64,)),
        L.Dense(64, activation="relu", bias_initializer=start),
        L.Dense(32, activation="tanh"),
        L.Dense(32, activation="relu", bias_initializer=start),
        L.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model, (digits.data / 16.0).astype("float32"), digits.target


def test_an_eager_probe_step_reports_what_the_compiled_one_does() -> None:
    # Given a model mid-training, probed twice from the same state,
    model, x, y = digits_model()
    model.train_on_batch(x[:32], y[:32])
    xt, yt = tf.constant(x[:64]), tf.constant(y[:64])
    figures = {}
    for eager in (False, True):
        target = target_module.make_target(model, xt)
        layers = probe_layers(target.model)
        target.loss_fn(yt, target.model(xt), None)
        step = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, describe(layers), eager)
        # when the steps run compiled, then eagerly (as for a model of EAGER_LAYERS layers),
        figures[eager] = [step.layer_figures(step.run(xt, yt, None)) for _ in range(3)]
        target.restore()
        target.close()
    # then every figure of every step is the same (up to float rounding).
    for compiled_step, eager_step in zip(figures[False], figures[True], strict=True):
        for traced, run_eagerly in zip(compiled_step, eager_step, strict=True):
            for name in traced.__dataclass_fields__:
                a, b = getattr(traced, name), getattr(run_eagerly, name)
                assert (a is None) == (b is None), name
                if a is not None:
                    assert b == pytest.approx(a, rel=1e-4, abs=1e-7), name


def test_a_model_past_the_eager_threshold_is_diagnosed_with_eager_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gradscope.engine import compiling

    # Given a model whose depth counts as too deep to trace (biases at -1 kill its ReLUs),
    monkeypatch.setattr(compiling, "EAGER_LAYERS", 2)
    model, x, y = digits_model(bias=-1.0)
    bus = EventBus()
    session = Session(RunOptions(script="train.py", steps=5, probe_only=True), bus)
    call = FitCall(model, (x, y), {"batch_size": 32, "epochs": 10, "verbose": 0}, keras.Model.fit)
    # when gradscope diagnoses its fit,
    with pytest.raises(ProbeFinished):
        session.on_fit(call)
    notes = [e.text for e in bus.history if isinstance(e, Note)]
    # then it says its steps ran eagerly, and why,
    assert any("steps run eagerly" in n and "layers" in n for n in notes), notes
    # the probe, histograms and experiments all ran,
    assert not [n for n in notes if "skipped" in n], notes
    assert [v.check for v in bus.verdicts() if v.check == "probe-failed"] == []
    assert sum(isinstance(e, LayerStats) for e in bus.history) >= 5
    # and the dead ReLUs are found as they are with compiled steps.
    assert "dead-relu" in [v.check for v in bus.verdicts()]
