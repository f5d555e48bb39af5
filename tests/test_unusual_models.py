"""Unusual models and fits: each is probed where gradscope can, says so in an
`info` verdict where it cannot, never raises into the user's run, and the
user's own fit then runs as it would under `python`.

Each test runs the real pipeline on a tiny model (`diagnose_and_fit`: the first
fit is intercepted, probed, then handed back to Keras) and asserts what the user
sees: verdict IDs, per-layer rows, the numbers in them, the fit's history.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

from tests.diagnose import Diagnosis, Run, diagnose, diagnose_and_fit, weights_and_optimizer  # noqa: E402,F401

N = 64
rng = np.random.default_rng(0)
X = rng.normal(size=(N, 6)).astype("float32")
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")
SEQ = rng.normal(size=(N, 5, 3)).astype("float32")
TOKENS = rng.integers(0, 20, size=(N, 5)).astype("int32")  # 320 tokens of 20: many repeats

# Keras warns about finite generators / shuffle on generators: same with and without us.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(0)


# --------------------------------------------------------------------------- helpers


snapshot = weights_and_optimizer


def assert_probed(run: Run, *names: str) -> None:
    """No failure of ours, and a finite, positive gradient norm for each named layer."""
    assert "probe-failed" not in run.ids, run.diagnosis.find("probe-failed").message
    assert run.warnings() == []  # e.g. "experiments skipped: <exception>"
    rows = run.rows()
    for name in names:
        assert name in rows, sorted(rows)
        g = rows[name].grad_norm
        assert g is not None and math.isfinite(g) and g > 0, (name, g)


def assert_fit_ran(run: Run, epochs: int = 1) -> None:
    assert len(run.history["loss"]) == epochs
    assert all(math.isfinite(v) for v in run.history["loss"])


def small_classifier() -> keras.Model:
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="hidden"),
                              L.Dense(2, activation="softmax", name="out")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


# --------------------------------------------------------------------------- custom train_step


class CountingStep(keras.Model):
    """A custom train_step that minimises the compiled loss (as most do)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = L.Dense(8, activation="relu", name="hidden")
        self.out = L.Dense(2, activation="softmax", name="out")
        self.calls = 0

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))

    def train_step(self, data: Any) -> Any:
        self.calls += 1  # traced once per compiled train function
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


class OwnLoss(CountingStep):
    """A custom train_step computing its own loss; compiled without one."""

    def train_step(self, data: Any) -> Any:
        x, y = data
        with tf.GradientTape() as tape:
            p = self(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, p))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


def test_a_custom_train_step_is_probed_through_it_and_told_so() -> None:
    model = CountingStep()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    run = diagnose_and_fit(model, X, Y, batch_size=16)
    v = run.diagnosis.find("custom-train-step")
    assert v.severity == "info" and v.subject == "model"
    assert "through your own train_step()" in v.message
    assert v.evidence == {"overridden": ["train_step"],
                          "compiled_loss": "sparse_categorical_crossentropy", "probed": True,
                          "through": "train_step"}
    assert_probed(run, "hidden", "out")
    # the user's own train_step trained the fit
    assert model.calls >= 1
    assert_fit_ran(run)


def test_a_custom_train_step_without_a_compiled_loss_is_probed_through_it() -> None:
    model = OwnLoss()
    model.compile(optimizer="adam")
    run = diagnose_and_fit(model, X, Y, batch_size=16)
    v = run.diagnosis.find("custom-train-step")
    assert v.severity == "info" and v.evidence["probed"] is True
    assert v.evidence["through"] == "train_step"
    assert_probed(run, "hidden", "out")
    # the probe's steps (its loss: the step's own), then the watched steps of
    # the user's training, through its own train_step: the first, every 100th
    phases = [s.phase for s in run.diagnosis.layer_stats]
    assert phases[:3] == ["probe"] * 3 and set(phases[3:]) == {"train"}
    watched = [s for s in run.diagnosis.layer_stats if s.phase == "train"]
    assert [s.step for s in watched][:2] in ([1], [1, 101])
    assert next(r for r in watched[0].rows if r.layer == "hidden").grad_norm
    assert_fit_ran(run)


def test_only_the_users_own_overrides_count_as_custom_training() -> None:
    from gradscope.engine.target import custom_training

    class OwnComputeLoss(keras.Model):
        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            return super().compute_loss(*args, **kwargs)

    class Inherited(CountingStep):
        pass

    assert custom_training(small_classifier()) == []  # Keras's own Sequential
    assert custom_training(OwnComputeLoss()) == ["compute_loss"]
    assert custom_training(Inherited()) == ["train_step"]


# --------------------------------------------------------------------------- custom layers


class Scale(L.Layer):
    """A custom layer without get_config and with a required argument: no clone."""

    def __init__(self, factor: float) -> None:
        super().__init__(name="scale")
        self.factor = factor

    def build(self, shape: Any) -> None:
        self.w = self.add_weight(shape=(shape[-1],), initializer="ones", name="w")

    def call(self, x: Any) -> Any:
        return x * self.w * self.factor


def test_a_custom_layer_without_get_config_is_probed_in_place_and_restored_bitwise() -> None:
    model = keras.Sequential([keras.Input((6,)), Scale(0.5), L.Dense(8, activation="relu"),
                              L.BatchNormalization(), L.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.train_on_batch(X[:16], Y[:16])  # Adam has moments, BN moving stats moved
    before = snapshot(model)
    run = diagnose_and_fit(model, X, Y, batch_size=16)
    assert any("probed in place" in n for n in run.notes())
    assert_probed(run, "scale")
    # every weight, moving statistic, Adam moment and the iteration count are as
    # they were when the user's fit starts
    assert run.at_train_begin == before
    assert_fit_ran(run)


# --------------------------------------------------------------------------- multi-IO, weights


def two_in_two_out() -> keras.Model:
    a, b = keras.Input((6,), name="a"), keras.Input((3,), name="b")
    h = L.Dense(8, activation="relu", name="h")(L.Concatenate(name="joined")([a, b]))
    outputs = {"cls": L.Dense(2, activation="softmax", name="cls")(h),
               "reg": L.Dense(1, name="reg")(h)}
    model = keras.Model({"a": a, "b": b}, outputs)
    model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights={"cls": 1.0, "reg": 0.25})
    return model


def test_multiple_inputs_and_outputs_with_loss_weights_and_sample_weight() -> None:
    model = two_in_two_out()
    x = {"a": X, "b": X[:, :3] * 0.5}
    y = {"cls": Y, "reg": X[:, 2:3]}
    sw = {"cls": np.where(Y == 1, 2.0, 0.5).astype("float32"),
          "reg": np.linspace(0.0, 2.0, N).astype("float32")}
    # the user's own weighted loss on the whole (single) batch, before any training
    expected = model.evaluate(x, y, sample_weight=sw, batch_size=N, verbose=0, return_dict=True)
    run = diagnose_and_fit(model, x, y, sample_weight=sw, batch_size=N, shuffle=False)
    assert run.diagnosis.losses[0] == pytest.approx(expected["loss"], rel=1e-5)
    assert_probed(run, "h", "cls", "reg")
    assert_fit_ran(run)
    assert {"cls_loss", "reg_loss"} <= set(run.history)


def test_class_weight_weighs_the_probed_loss_like_the_users_fit() -> None:
    model = small_classifier()
    class_weight = {0: 1.0, 1: 4.0}
    as_sample_weight = np.array([class_weight[int(c)] for c in Y], dtype="float32")
    expected = model.evaluate(X, Y, sample_weight=as_sample_weight, batch_size=N, verbose=0)
    run = diagnose_and_fit(model, X, Y, class_weight=class_weight, batch_size=N, shuffle=False)
    assert run.diagnosis.losses[0] == pytest.approx(expected, rel=1e-5)
    assert_probed(run, "hidden", "out")
    assert_fit_ran(run)


# --------------------------------------------------------------------------- infinite generator


class Recorder(keras.Model):
    """Records the sample ids (column 0) of every batch its fit trains on."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = L.Dense(8, activation="relu", name="hidden")
        self.out = L.Dense(2, activation="softmax", name="out")
        self.seen: list[list[int]] = []

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))

    def train_step(self, data: Any) -> Any:
        x, _ = data
        self.seen.append(np.asarray(x)[:, 0].astype(int).tolist())
        return super().train_step(data)


def endless(seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An infinite generator drawing random batches; column 0 of x is the sample id."""
    draw = np.random.default_rng(seed)
    ids = np.c_[np.arange(N, dtype="float32"), X[:, 1:]]
    while True:
        i = draw.integers(0, N, 8)
        yield ids[i], Y[i]


def test_an_infinite_generator_with_steps_per_epoch_feeds_the_fit_as_under_python() -> None:
    def recorder() -> Recorder:
        keras.utils.set_random_seed(0)
        model = Recorder()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
        return model

    plain = recorder()
    plain.fit(endless(7), steps_per_epoch=4, epochs=2, verbose=0)
    probed = recorder()
    run = diagnose_and_fit(probed, endless(7), steps_per_epoch=4, epochs=2)
    assert_probed(run, "hidden", "out")
    assert len(plain.seen) == 8
    assert probed.seen == plain.seen  # the 3 probed batches first, then the rest
    assert_fit_ran(run, epochs=2)


# --------------------------------------------------------------------------- BN, Dropout


def test_batchnorm_and_dropout_are_probed_in_training_mode_and_user_stats_untouched() -> None:
    model = keras.Sequential([
        keras.Input((6,)),
        L.Dense(32, kernel_initializer=keras.initializers.RandomNormal(stddev=2.0), name="wide"),
        L.BatchNormalization(name="bn"),
        L.Dropout(0.5, name="drop"),
        L.Dense(2, activation="softmax", name="out"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(X, Y)  # moving statistics away from their initial values
    before = snapshot(model)
    run = diagnose_and_fit(model, X, Y, batch_size=N, shuffle=False)
    assert_probed(run, "wide", "bn", "out")
    rows = run.rows()
    # training mode: BN normalises with the batch's own statistics (inference mode
    # would pass the wide layer's std of ~5 through nearly unchanged) ...
    assert rows["wide"].act_std is not None and rows["wide"].act_std > 3
    assert rows["bn"].act_mean == pytest.approx(0.0, abs=0.05)
    assert rows["bn"].act_std == pytest.approx(1.0, abs=0.05)
    # ... and Dropout(0.5) zeroes half of it and doubles the rest: E[y^2] doubles
    second_moment = {k: rows[k].act_std ** 2 + rows[k].act_mean ** 2 for k in ("bn", "drop")}
    assert 1.5 < second_moment["drop"] / second_moment["bn"] < 2.6
    # the user's moving mean/variance (and everything else) are bitwise unchanged
    assert run.at_train_begin == before
    assert_fit_ran(run)


# --------------------------------------------------------------------------- RNN, Embedding


def test_lstm_and_gru_layers_get_one_row_each_under_their_own_names() -> None:
    inputs = keras.Input((5, 3))
    h = L.LSTM(4, return_sequences=True, name="lstm")(inputs)
    h = L.GRU(4, name="gru")(h)
    model = keras.Model(inputs, L.Dense(2, activation="softmax", name="out")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    run = diagnose_and_fit(model, SEQ, Y, batch_size=16)
    assert_probed(run, "lstm", "gru", "out")
    rows = run.rows()
    assert not any(name.endswith("_cell") for name in rows), sorted(rows)
    assert rows["lstm"].param_count == 4 * (3 * 4 + 4 * 4 + 4)  # the cell's kernels and bias
    for name in ("lstm", "gru"):
        assert rows[name].act_std is not None and math.isfinite(rows[name].act_std)
        assert rows[name].update_ratio is not None and rows[name].update_ratio > 0
    assert_fit_ran(run)


def test_embedding_gradient_norm_is_the_dense_gradients_norm() -> None:
    model = keras.Sequential([keras.Input((5,), dtype="int32"), L.Embedding(20, 4, name="emb"),
                              L.GlobalAveragePooling1D(), L.Dense(2, activation="softmax", name="out")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(Y, model(TOKENS, training=True))
        loss = tf.reduce_mean(loss)
    sparse = tape.gradient(loss, model.get_layer("emb").embeddings)
    assert isinstance(sparse, tf.IndexedSlices)
    dense_norm = float(tf.norm(tf.convert_to_tensor(sparse)))
    run = diagnose_and_fit(model, TOKENS, Y, batch_size=N, shuffle=False)
    assert_probed(run, "emb", "out")
    # repeated tokens' slices are summed per row before the norm is taken
    assert run.rows()["emb"].grad_norm == pytest.approx(dense_norm, rel=1e-4)
    assert_fit_ran(run)


# --------------------------------------------------------------------------- mixed precision


@pytest.fixture
def mixed_float16() -> Iterator[None]:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_mixed_precision_gradient_norms_are_unscaled(mixed_float16: None) -> None:
    def build() -> keras.Model:
        model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="hidden"),
                                  L.Dense(2, name="logits"),
                                  L.Activation("softmax", dtype="float32", name="out")])
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return model

    mixed = build()
    assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    keras.mixed_precision.set_global_policy("float32")
    twin = build()
    twin.set_weights(mixed.get_weights())

    run = diagnose_and_fit(mixed, X, Y, batch_size=N, shuffle=False)
    assert_probed(run, "hidden", "logits")
    reference = diagnose(twin, X, Y, steps=1, budget=0, batch_size=N, shuffle=False)
    twin_rows = {r.layer: r for r in reference.layer_stats[0].rows}
    for name in ("hidden", "logits"):
        got, want = run.rows()[name].grad_norm, twin_rows[name].grad_norm
        assert got is not None and want is not None
        # the loss scale (32768) divided out: float16 rounding apart, the same figure
        assert got == pytest.approx(want, rel=0.05), name
    assert "exploding-gradient" not in run.ids
    assert_fit_ran(run)
