"""Cases met while running new, realistic scripts through gradscope (not the
demo corpus): each pins the mechanism that had judged them wrongly."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_iris

from tests.diagnose import diagnose


def test_class_ids_under_a_softmax_with_mse_are_a_classifier_with_the_wrong_loss() -> None:
    # Given iris's class ids 0..2, a Dense(3, softmax) output and loss='mse'
    # (Keras's fit crashes: shapes (32,) and (32, 3) do not broadcast)
    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("sgd", "mse")
    found = diagnose(model, x, y, steps=2, budget=0)
    # Then the headline is the loss, not "softmax cannot reach regression targets 0..2"
    assert found.ids[0] == "mse-for-classification"
    assert "output-activation-mismatch" not in found.ids


def test_a_softmax_regression_onto_values_beyond_its_units_is_still_an_output_mismatch() -> None:
    # Given integer targets up to 50 (counts, not class ids) under a Dense(3, softmax) + mse
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 4)).astype("float32")
    y = rng.integers(0, 50, size=(128, 3)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "mse")
    found = diagnose(model, x, y, steps=2, budget=0)
    assert "output-activation-mismatch" in found.ids


def _price_model(learning_rate: float, normalise: np.ndarray | None) -> keras.Model:
    keras.utils.set_random_seed(0)
    layers: list[keras.layers.Layer] = [keras.Input((3,))]
    if normalise is not None:
        norm = keras.layers.Normalization()
        norm.adapt(normalise)
        layers.append(norm)
    model = keras.Sequential([
        *layers, keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1),
    ])
    model.compile(keras.optimizers.Adam(learning_rate), "mse")
    return model


def _prices() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1000, size=(1000, 3)).astype("float32")
    y = (3 * x[:, 0] - 2 * x[:, 1] + x[:, 2] + rng.normal(0, 10, 1000)).astype("float32")
    return x, y


def test_large_targets_a_model_copes_with_are_not_blamed() -> None:
    # Given targets in the thousands, a Normalization layer and Adam(0.05):
    # under python this fits to an MSE of ~100 against a variance of ~1e6
    x, y = _prices()
    found = diagnose(_price_model(0.05, x), x, y, steps=3, epochs=40)
    assert "unscaled-targets" not in found.ids, found.ids


def test_large_targets_that_stall_the_optimizer_are_the_cause() -> None:
    # Given the same targets with Adam(1e-3): the output weights cannot grow fast enough
    x, y = _prices()
    found = diagnose(_price_model(1e-3, x), x, y, steps=3, epochs=40)
    assert "unscaled-targets" in found.ids, found.ids


def test_a_multi_label_model_is_scored_per_label_not_by_argmax() -> None:
    # Given 5 independent yes/no labels per row under 5 sigmoid units (learns to ~96%)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 20)).astype("float32")
    y = (x @ rng.normal(size=(20, 5)) > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((20,)), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(5, activation="sigmoid"),
    ])
    model.compile("adam", "binary_crossentropy", metrics=["binary_accuracy"])
    found = diagnose(model, x, y, steps=3, epochs=10, batch_size=64)
    # Then its accuracy is not "stuck at the majority share" (argmax of a multi-hot row)
    assert "accuracy-at-baseline" not in found.ids, found.ids


def _digits_mlp(
    optimizer: keras.optimizers.Optimizer | str, loss: object = "sparse_categorical_crossentropy"
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer, loss)
    return model, (digits.data / 16.0).astype("float32"), digits.target


def test_two_softmax_units_with_binary_crossentropy_on_one_label_per_sample() -> None:
    # Given 0/1 labels of shape (n, 1), Dense(2, softmax) and binary cross-entropy
    # (Keras's fit raises: target (32, 1) and output (32, 2))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = (x[:, :1] > 0).astype("int64")
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "binary_crossentropy")
    found = diagnose(model, x, y, steps=2, budget=0)
    first = found.verdicts[0]
    assert first.check == "loss-output-mismatch" and first.severity == "error"
    assert "Dense(1, activation='sigmoid')" in first.fix


def test_tiny_gradient_clipping_is_named_as_why_steps_are_tiny() -> None:
    model, x, y = _digits_mlp(keras.optimizers.SGD(learning_rate=0.01, clipnorm=1e-5))
    found = diagnose(model, x, y, steps=3, epochs=5)
    low = found.find("lr-too-low")
    assert "clipnorm=1e-05" in low.message and "clipnorm=1.0" in low.fix


def test_imbalanced_data_a_model_is_learning_is_not_stuck_at_baseline() -> None:
    # Given 85/15 labels with real signal: the model predicts the majority for its
    # first few hundred steps while its loss falls below the class shares' entropy
    # (under python it reaches ~90% accuracy, AUC ~0.91)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 10)).astype("float32")
    logit = 2.5 * x[:, 0] + 1.5 * x[:, 1] - 3.5
    y = (rng.uniform(size=3000) < 1 / (1 + np.exp(-logit))).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((10,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    found = diagnose(model, x, y, steps=3, epochs=10, validation_split=0.2)
    assert "accuracy-at-baseline" not in found.ids, found.ids


@pytest.mark.parametrize(("rate", "severity"), [(0.95, "error"), (0.85, "warning"), (0.5, None)])
def test_dropout_that_drops_nearly_everything_is_the_cause(rate: float, severity: str | None) -> None:
    model, x, y = _digits_mlp(keras.optimizers.Adam())
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(rate, name="drop"),
                              *model.layers])
    model.compile("adam", "sparse_categorical_crossentropy")
    found = diagnose(model, x, y, steps=2, budget=0)
    if severity is None:
        assert "dropout-too-high" not in found.ids
        return
    first = found.verdicts[0]
    assert (first.check, first.severity, first.subject) == ("dropout-too-high", severity, "drop")
    assert first.evidence["rate"] == rate


def test_batch_norm_on_batches_of_one_sample_is_the_cause() -> None:
    x, y = load_iris(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(16), keras.layers.BatchNormalization(name="bn"),
        keras.layers.Activation("relu"), keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    found = diagnose(model, x, y, steps=3, budget=0, batch_size=1)
    assert found.verdicts[0].check == "batch-norm-single-sample"
    # and a batch of one is not "sorted by label" for being single-class
    assert "ordered-labels" not in found.ids


def test_inputs_scaled_twice_are_named_when_the_model_cannot_learn_from_them() -> None:
    # Given pixels divided by 16 and then by 255 again (max 0.004) and plain SGD
    model, x, y = _digits_mlp(keras.optimizers.SGD(0.01))
    found = diagnose(model, x / 255.0, y, steps=3, epochs=5)
    first = found.verdicts[0]
    assert first.check == "unnormalized-input" and first.evidence.get("tiny") is True


def test_tiny_inputs_a_model_learns_from_anyway_are_not_blamed() -> None:
    # Given features of order 1e-3 that a larger Adam step learns from at once
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(512, 4)) * 1e-3).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    found = diagnose(model, x, y, steps=3, epochs=5)
    assert "unnormalized-input" not in found.ids, found.ids


def test_a_gradient_huge_before_any_update_is_blamed_on_the_init_not_the_rate() -> None:
    # Given six ReLU layers initialised with RandomNormal(stddev=1.0) and plain SGD(0.01)
    from sklearn.datasets import load_digits

    digits = load_digits()
    init = keras.initializers.RandomNormal(stddev=1.0, seed=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((64,))]
        + [keras.layers.Dense(128, activation="relu", kernel_initializer=init) for _ in range(6)]
        + [keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    found = diagnose(model, (digits.data / 16.0).astype("float32"), digits.target, steps=5)
    first = found.verdicts[0]
    assert first.check == "exploding-gradient" and first.evidence.get("from_start") is True
    assert "initialis" in first.fix


def test_sample_weights_of_zero_are_the_cause_and_not_the_learning_rate() -> None:
    # Given sample weights computed with an integer division: 0 for every sample
    model, x, y = _digits_mlp("adam")
    weights = (np.arange(len(x)) // len(x)).astype("float32")
    found = diagnose(model, x, y, sample_weight=weights, steps=3)
    # Then the weights are named first, and no learning rate is blamed for steps
    # that are 0 because the gradient is
    first = found.verdicts[0]
    assert (first.check, first.severity) == ("zero-sample-weights", "error")
    assert "every sample in the probe batches has weight 0" in first.message
    assert "lr-too-low" not in found.ids, found.ids


def test_a_loss_that_rounds_the_predictions_cuts_every_gradient() -> None:
    import tensorflow as tf

    # Given a custom loss that rounds the predictions (tf.round has no gradient)
    def rounded_mse(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.square(y_true - tf.round(y_pred)), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = np.round(np.abs(3 * x[:, 0] + x[:, 1])).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", rounded_mse)
    found = diagnose(model, x, y, steps=3)
    # Then one error says the loss is cut off from the weights, and what cuts it
    first = found.verdicts[0]
    assert (first.check, first.severity) == ("zero-gradient", "error")
    assert "no trainable variable gets a gradient" in first.message
    assert "round" in first.fix
    assert found.ids.count("zero-gradient") == 1
    assert "lr-too-low" not in found.ids, found.ids


def test_kl_divergence_on_class_ids_is_a_label_mismatch() -> None:
    # Given class ids 0..9 with loss='kl_divergence' (Keras's fit crashes on the shapes)
    model, x, y = _digits_mlp("adam", loss="kl_divergence")
    found = diagnose(model, x, y, steps=2, budget=0)
    first = found.verdicts[0]
    assert first.check == "loss-label-mismatch"
    assert "KL divergence" in first.message and "sparse_categorical_crossentropy" in first.fix


def test_temporal_weights_that_zero_long_padding_are_not_zero_sample_weights() -> None:
    from gradscope.checks.facts import batch_facts
    from gradscope.checks.static import zero_sample_weights

    # Given per-timestep weights (n, T) that zero 95 % of each sequence (its padding)
    weights = np.zeros((32, 100), dtype="float32")
    weights[:, :5] = 1.0
    x = np.zeros((32, 100, 4), dtype="float32")
    facts = batch_facts("arrays", [x, x], [None, None], weights=[weights, weights])
    # Then no sample counts as unweighted, and nothing is said
    assert facts.zero_weight_share == 0.0
    assert zero_sample_weights(facts) == []
    # while per-sample weights of 0 for 30 of 32 samples are a warning
    per_sample = np.zeros(32, dtype="float32")
    per_sample[:2] = 1.0
    found = zero_sample_weights(batch_facts("arrays", [x], [None], weights=[per_sample]))
    assert [(v.check, v.severity) for v in found] == [("zero-sample-weights", "warning")]
    assert "94% of the samples" in found[0].message


def test_a_model_with_text_vectorization_is_probed_on_a_clone() -> None:
    import tensorflow as tf

    # Given a text classifier whose first layer is an adapted TextVectorization
    # (its vocabulary lives in a lookup table, which clone_model leaves empty)
    rng = np.random.default_rng(0)
    words = np.array(["good", "fine", "bad", "poor", "the", "movie", "was", "plot"])
    labels = rng.integers(0, 2, 256)
    texts = np.array([
        " ".join(rng.choice(words[4:], 4)) + " " + ("good fine" if lab else "bad poor")
        for lab in labels
    ])
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(texts)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((1,), dtype="string"), vectorize, keras.layers.Embedding(20, 8),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile("adam", "binary_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((texts[:, None], labels)).batch(32)
    found = diagnose(model, data, steps=3)
    # Then the probe runs on a clone that carries the vocabulary: no failure, no note
    assert "probe-failed" not in found.ids, found.ids
    notes = [e.text for e in found.events if type(e).__name__ == "Note"]
    assert not [n for n in notes if "could not be cloned" in n], notes
