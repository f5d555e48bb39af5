"""The first verdicts, through the whole pipeline on real tiny models."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.diagnose import diagnose  # noqa: E402

layers = keras.layers
RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 8)).astype("float32")
Y_BIN = (X[:, 0] + X[:, 1] > 0).astype("float32")
Y_INT = (np.digitize(X[:, 0], [-0.5, 0.5])).astype("int64")  # 3 classes
Y_ONEHOT = np.eye(3, dtype="float32")[Y_INT]


def mlp(out_units: int, out_act: str, loss: object, hidden_act: str = "relu", depth: int = 1,
        lr: float = 1e-3) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((8,))]
        + [layers.Dense(16, activation=hidden_act) for _ in range(depth)]
        + [layers.Dense(out_units, activation=out_act, name="out")]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model


def test_softmax_on_one_unit_is_named_with_its_layer() -> None:
    # given a binary classifier whose last layer is Dense(1, softmax)
    model = mlp(1, "softmax", "binary_crossentropy")
    # when gradscope probes its fit
    d = diagnose(model, X, Y_BIN, epochs=3)
    # then the first verdict is the cause, on the output layer
    v = d.verdicts[0]
    assert v.check == "single-unit-softmax"
    assert v.severity == "error" and v.subject == "out"
    assert "sigmoid" in v.fix


def test_softmax_as_a_separate_activation_layer_is_caught_too() -> None:
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1),
         layers.Activation("softmax", name="act")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    d = diagnose(model, X, Y_BIN)
    assert d.find("single-unit-softmax").subject == "act"


def test_categorical_crossentropy_on_one_unit_is_a_loss_output_mismatch() -> None:
    model = mlp(1, "sigmoid", "categorical_crossentropy")
    d = diagnose(model, X, Y_BIN)
    v = d.find("loss-output-mismatch")
    assert v.severity == "error" and "1 output unit" in v.message


def test_binary_crossentropy_on_softmax_with_one_hot_labels_warns() -> None:
    model = mlp(3, "softmax", "binary_crossentropy")
    d = diagnose(model, X, Y_ONEHOT)
    v = d.find("loss-output-mismatch")
    assert v.severity == "warning" and "one-hot labels of shape (" in v.message
    assert "categorical_crossentropy" in v.fix


def test_one_hot_labels_with_sparse_loss_is_a_label_mismatch_quoting_the_shape() -> None:
    model = mlp(3, "softmax", "sparse_categorical_crossentropy")
    d = diagnose(model, X, Y_ONEHOT)
    v = d.find("loss-label-mismatch")
    assert "one-hot" in v.message and ", 3)" in v.message
    assert "argmax" in v.fix or "categorical_crossentropy" in v.fix


def test_integer_labels_with_categorical_loss_is_a_label_mismatch() -> None:
    model = mlp(3, "softmax", keras.losses.CategoricalCrossentropy())
    d = diagnose(model, X, Y_INT.reshape(-1, 1).astype("float32"))
    v = d.find("loss-label-mismatch")
    assert "integer class ids" in v.message and "to_categorical" in v.fix


def test_more_classes_than_output_units_is_a_loss_output_mismatch() -> None:
    model = mlp(2, "softmax", "sparse_categorical_crossentropy")
    d = diagnose(model, X, Y_INT)  # ids 0..2, only 2 units
    v = d.verdicts[0]
    assert v.check == "loss-output-mismatch" and v.subject == "out"
    assert "2 output units" in v.message and "3 classes" in v.message
    assert "Dense(3, activation='softmax')" in v.fix


def test_one_based_class_ids_are_a_label_mismatch() -> None:
    model = mlp(3, "softmax", "sparse_categorical_crossentropy")
    d = diagnose(model, X, Y_INT + 1)  # ids 1..3 for 3 units
    v = d.verdicts[0]
    assert v.check == "loss-label-mismatch" and "one-based" in v.message
    assert "y - 1" in v.fix


def test_binary_labels_outside_zero_one_are_flagged() -> None:
    model = mlp(1, "sigmoid", "binary_crossentropy")
    d = diagnose(model, X, Y_BIN * 2 - 1)  # -1 / +1 labels
    v = d.find("loss-label-mismatch")
    assert "-1 to 1" in v.message


def test_a_model_with_nothing_trainable_is_frozen() -> None:
    model = mlp(1, "sigmoid", "binary_crossentropy")
    for layer in model.layers:
        layer.trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    d = diagnose(model, X, Y_BIN)
    v = d.verdicts[0]
    assert v.check == "frozen-model" and "none of them is trainable" in v.message


def test_partly_frozen_model_gets_only_an_info_listing_the_layers() -> None:
    model = mlp(1, "sigmoid", "binary_crossentropy", depth=2)
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    d = diagnose(model, X, Y_BIN)
    v = d.find("frozen-layers")
    assert v.severity == "info" and model.layers[0].name in v.message
    assert "frozen-model" not in d.ids


def test_nan_in_inputs_gives_a_nonfinite_loss_naming_the_first_layer() -> None:
    model = mlp(1, "sigmoid", "binary_crossentropy")
    x = X.copy()
    x[:, 3] = np.nan
    d = diagnose(model, x, Y_BIN)
    v = d.find("nonfinite-loss")
    assert v.severity == "error"
    assert v.subject == model.layers[0].name
    assert "step 1" in v.message


def test_deep_sigmoid_stack_has_vanishing_gradients() -> None:
    model = mlp(1, "sigmoid", "binary_crossentropy", hidden_act="sigmoid", depth=12)
    d = diagnose(model, X, Y_BIN)
    v = d.find("vanishing-gradient")
    assert v.subject == model.layers[0].name
    assert "smaller than at the last layer" in v.message


def test_healthy_classifier_gets_no_error_and_no_warning() -> None:
    model = mlp(3, "softmax", "sparse_categorical_crossentropy")
    d = diagnose(model, X, Y_INT, epochs=30)  # (one epoch of 8 steps would be undertrained)
    assert [v for v in d.verdicts if v.severity in ("error", "warning")] == []
    # and every probe step reported a finite loss and one row per layer
    assert len(d.layer_stats) == 5
    assert all(len(s.rows) == 2 for s in d.layer_stats)
