"""False alarms of the static checks on healthy, well-known Keras code, each
as a class of problem: a healthy case that must stay free of the verdict and a
buggy one whose right verdict is still the top one (the real pipeline on tiny
real models), plus numpy-only unit tests on hand-built facts."""

from __future__ import annotations

import numpy as np
import pytest

from gradscope.checks.facts import ArrayFacts, OutputFacts, summarize

keras = pytest.importorskip("keras")

from tests.diagnose import diagnose  # noqa: E402

L = keras.layers


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(0)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype("float32"), d.target.astype("int64")


def _out(labels: object, loss: str, units: int = 1, activation: str = "sigmoid",
         metrics: tuple[str, ...] = ()) -> OutputFacts:
    facts = summarize(labels)
    assert isinstance(facts, ArrayFacts)
    return OutputFacts(name="out", layer="out", units=units, activation=activation, loss=loss,
                       loss_display=loss, from_logits=False, labels=facts, metrics=metrics)


# --- 1. regression-target-classification: BCE on targets in [0, 1] is valid ---

def test_bce_on_soft_targets_of_any_shape_is_not_a_regression_target() -> None:
    from gradscope.checks.static import regression_target_classification

    rng = np.random.default_rng(0)
    images = rng.random((64, 8, 8, 1))  # an autoencoder's targets: pixels in [0, 1]
    probabilities = rng.random(64)  # one probability per sample
    assert regression_target_classification(_out(images, "binary_crossentropy")) == []
    assert regression_target_classification(_out(probabilities, "binary_crossentropy")) == []


def test_continuous_targets_into_class_losses_are_still_regression_targets() -> None:
    from gradscope.checks.static import regression_target_classification

    rng = np.random.default_rng(0)
    score = rng.uniform(3, 9, 64)
    found = regression_target_classification(
        _out(score, "sparse_categorical_crossentropy", units=10, activation="softmax"))
    assert [v.check for v in found] == ["regression-target-classification"]
    rows = rng.normal(size=(64, 3))  # rows that do not sum to 1
    found = regression_target_classification(
        _out(rows, "categorical_crossentropy", units=3, activation="softmax"))
    assert [v.check for v in found] == ["regression-target-classification"]


def test_an_image_autoencoder_with_bce_is_not_called_a_regression_on_classes() -> None:
    # Given the digits' 8x8 images (in [0, 1]) reconstructed through a conv
    # autoencoder with a sigmoid output and binary cross-entropy (the Keras blog's recipe)
    x, _ = _digits()
    images = x.reshape(-1, 8, 8, 1)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(8, 3, activation="relu", padding="same"),
        L.MaxPooling2D(2),
        L.Conv2D(8, 3, activation="relu", padding="same"),
        L.UpSampling2D(2),
        L.Conv2D(1, 3, activation="sigmoid", padding="same"),
    ])
    model.compile("adam", "binary_crossentropy")
    found = diagnose(model, images, images, steps=2, budget=0)
    assert "regression-target-classification" not in found.ids, found.ids
    assert not any(v.severity == "error" for v in found.verdicts), found.ids


def test_a_multi_output_model_with_probability_targets_is_not_a_regression_on_classes() -> None:
    # Given two heads: the digit class, and the share of ink in the image (a probability)
    x, y = _digits()
    ink = (x > 0.5).mean(axis=1).astype("float32")
    inp = keras.Input((64,))
    h = L.Dense(32, activation="relu")(inp)
    digit = L.Dense(10, activation="softmax", name="digit")(h)
    share = L.Dense(1, activation="sigmoid", name="ink")(h)
    model = keras.Model(inp, {"digit": digit, "ink": share})
    model.compile("adam", {"digit": "sparse_categorical_crossentropy", "ink": "binary_crossentropy"})
    found = diagnose(model, x, {"digit": y, "ink": ink}, steps=2, budget=0)
    assert "regression-target-classification" not in found.ids, found.ids
    assert not any(v.severity == "error" for v in found.verdicts), found.ids


def test_a_continuous_score_into_sparse_ce_is_still_the_top_verdict() -> None:
    # Given a continuous score (3.0-9.0) given to a 10-way softmax with sparse CE
    x, _ = _digits()
    score = (3 + 6 * x[:, 20:30].mean(axis=1)).astype("float32")
    model = keras.Sequential([keras.Input((64,)), L.Dense(32, activation="relu"),
                              L.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    found = diagnose(model, x, score, steps=2, budget=0)
    assert found.ids[0] == "regression-target-classification", found.ids


# --- 2. class-imbalance: weighted samples or per-class metrics handle it ------

def _rare_positive() -> tuple[np.ndarray, np.ndarray]:
    """Digits, 'is it a 3' with half the 3s dropped: about 5 % positives."""
    x, y = _digits()
    rng = np.random.default_rng(0)
    return x, ((y == 3) & (rng.random(len(y)) < 0.5)).astype("float32")


def _balanced_weights(y: np.ndarray) -> dict[int, float]:
    counts = np.bincount(y.astype(int))
    return {c: len(y) / (2 * n) for c, n in enumerate(counts)}


def test_balancing_weights_in_the_batches_are_read() -> None:
    from gradscope.checks.facts import batch_facts

    ys = [np.array([0] * 30 + [1] * 2), np.array([0] * 31 + [1])]
    w = _balanced_weights(np.concatenate(ys))
    weights = [np.array([w[int(c)] for c in y]) for y in ys]
    b = batch_facts("arrays", [np.zeros((32, 2))] * 2, ys, weights=weights)
    assert b.sample_weighted and b.weighted_majority is not None and b.weighted_majority < 0.6
    plain = batch_facts("arrays", [np.zeros((32, 2))] * 2, ys, weights=[np.ones(32)] * 2)
    assert not plain.sample_weighted and plain.weighted_majority == pytest.approx(61 / 64)


def test_class_imbalance_is_quiet_when_weights_or_per_class_metrics_handle_it() -> None:
    from gradscope.checks.facts import BatchFacts
    from gradscope.checks.static import class_imbalance

    labels = np.array([0] * 95 + [1] * 5)
    plain = _out(labels, "binary_crossentropy", metrics=("accuracy",))
    assert [v.check for v in class_imbalance(plain)] == ["class-imbalance"]
    assert class_imbalance(_out(labels, "binary_crossentropy")) != []  # no metrics at all
    # per-class metrics only: nothing hides a model stuck on the majority class
    aware = _out(labels, "binary_crossentropy", metrics=("precision", "recall", "auc", "prc"))
    assert class_imbalance(aware) == []
    # accuracy next to AUC: accuracy still reports the majority's share
    mixed = _out(labels, "binary_crossentropy", metrics=("accuracy", "auc"))
    assert class_imbalance(mixed) != []
    weighted = BatchFacts("arrays", 5, 0, sample_weighted=True, weighted_majority=0.5)
    assert class_imbalance(plain, weighted) == []
    # weights that leave the majority with >= 90 % of the weight do not rebalance
    mild = BatchFacts("arrays", 5, 0, sample_weighted=True, weighted_majority=0.93)
    assert class_imbalance(plain, mild) != []


def _binary_mlp(metrics: list[object]) -> keras.Model:
    model = keras.Sequential([keras.Input((64,)), L.Dense(16, activation="relu"),
                              L.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=metrics)
    return model


def test_rare_positives_with_class_weight_are_not_called_imbalanced() -> None:
    x, y = _rare_positive()
    found = diagnose(_binary_mlp(["accuracy"]), x, y, steps=3, budget=0,
                     class_weight=_balanced_weights(y))
    assert "class-imbalance" not in found.ids, found.ids


def test_rare_positives_with_balancing_sample_weights_are_not_called_imbalanced() -> None:
    x, y = _rare_positive()
    w = _balanced_weights(y)
    weights = np.array([w[int(c)] for c in y], dtype="float32")
    found = diagnose(_binary_mlp(["accuracy"]), x, y, steps=3, budget=0, sample_weight=weights)
    assert "class-imbalance" not in found.ids, found.ids


def test_rare_positives_judged_by_precision_recall_auc_are_not_called_imbalanced() -> None:
    x, y = _rare_positive()
    model = _binary_mlp([keras.metrics.Precision(), keras.metrics.Recall(), keras.metrics.AUC()])
    found = diagnose(model, x, y, steps=3, budget=0)
    assert "class-imbalance" not in found.ids, found.ids


def test_rare_positives_judged_by_accuracy_without_weights_are_imbalanced() -> None:
    x, y = _rare_positive()
    found = diagnose(_binary_mlp(["accuracy"]), x, y, steps=3, budget=0)
    assert found.ids[0] == "class-imbalance", found.ids


# --- 3. outputs are judged through wrappers, nested models and dicts ---------

OUTPUT_CHECKS = ("output-activation-mismatch", "logits-mismatch", "single-unit-softmax",
                 "loss-output-mismatch", "loss-label-mismatch", "mse-for-classification",
                 "regression-target-classification")


def _no_output_alarm(ids: list[str]) -> None:
    assert not [c for c in ids if c in OUTPUT_CHECKS], ids


def _tags() -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 6 steps x 4 features; each step's tag (0..2) is the argmax
    of its first 3 features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6, 4)).astype("float32")
    return x, x[..., :3].argmax(axis=-1).astype("int64")


def _tagger(last_activation: str) -> keras.Model:
    model = keras.Sequential([
        keras.Input((6, 4)),
        L.LSTM(8, return_sequences=True),
        L.TimeDistributed(L.Dense(8, activation="relu")),
        L.TimeDistributed(L.Dense(3, activation=last_activation, name="tags")),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_time_distributed_softmax_is_seen_as_the_output() -> None:
    x, y = _tags()
    found = diagnose(_tagger("softmax"), x, y, steps=2, budget=0)
    _no_output_alarm(found.ids)


def test_a_time_distributed_relu_output_is_blamed_by_its_own_name() -> None:
    x, y = _tags()
    found = diagnose(_tagger("relu"), x, y, steps=2, budget=0)
    top = found.verdicts[0]
    assert top.check == "output-activation-mismatch", found.ids
    assert top.subject == "tags" and "ReLU" in top.message


def _bidirectional(scale: float) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    x, _ = _tags()
    y = (scale * np.tanh(x[:, :, 0].mean(axis=1, keepdims=True))).repeat(8, axis=1)
    model = keras.Sequential([keras.Input((6, 4)), L.Dense(8, activation="relu"),
                              L.Bidirectional(L.LSTM(4), name="encoder")])
    model.compile("adam", "mse")
    return model, x, y.astype("float32")


def test_a_bidirectional_output_is_judged_by_its_lstm() -> None:
    model, x, y = _bidirectional(1.0)  # targets within tanh's [-1, 1]
    found = diagnose(model, x, y, steps=2, budget=0)
    _no_output_alarm(found.ids)


def test_a_bidirectional_output_out_of_tanh_range_is_blamed_by_its_name() -> None:
    model, x, y = _bidirectional(50.0)
    found = diagnose(model, x, y, steps=2, budget=0)
    top = found.verdicts[0]
    assert top.check == "output-activation-mismatch", found.ids
    assert top.subject == "encoder" and "tanh" in top.message


def _with_head(head_activation: str) -> keras.Model:
    head = keras.Sequential([keras.Input((16,)), L.Dense(16, activation="relu"),
                             L.Dense(10, activation=head_activation, name="classes")], name="head")
    model = keras.Sequential([keras.Input((64,)), L.Dense(16, activation="relu"), head])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_nested_model_as_the_last_layer_is_seen_through() -> None:
    x, y = _digits()
    found = diagnose(_with_head("softmax"), x, y, steps=2, budget=0)
    _no_output_alarm(found.ids)


def test_a_nested_model_ending_in_relu_is_blamed_by_its_inner_layer() -> None:
    x, y = _digits()
    found = diagnose(_with_head("relu"), x, y, steps=2, budget=0)
    top = found.verdicts[0]
    assert top.check == "output-activation-mismatch" and top.subject == "classes", found.ids


def _two_heads(loss: dict[str, str]) -> keras.Model:
    inp = keras.Input((64,))
    h = L.Dense(32, activation="relu")(inp)
    outputs = {
        "digit": L.Dense(10, activation="softmax", name="digit")(h),
        "ink": L.Dense(1, name="ink")(h),  # a regression head: linear
    }
    model = keras.Model(inp, outputs)
    model.compile("adam", loss, metrics={"digit": ["accuracy"], "ink": ["mae"]})
    return model


def _digits_and_ink() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x, y = _digits()
    ink = (4 * x.mean(axis=1) + 0.1 * x[:, 10]).astype("float32")  # continuous
    return x, {"digit": y, "ink": ink}


def test_dict_outputs_are_judged_each_with_its_own_loss_and_labels() -> None:
    x, y = _digits_and_ink()
    found = diagnose(_two_heads({"digit": "sparse_categorical_crossentropy", "ink": "mse"}),
                     x, y, steps=2, budget=0)
    _no_output_alarm(found.ids)
    assert "accuracy-on-regression" not in found.ids, found.ids


def test_a_dict_output_given_the_wrong_loss_is_found_by_its_key() -> None:
    x, y = _digits_and_ink()
    model = _two_heads({"digit": "sparse_categorical_crossentropy",
                        "ink": "sparse_categorical_crossentropy"})
    found = diagnose(model, x, y, steps=2, budget=0)
    assert found.ids[0] == "regression-target-classification", found.ids


# --- 4. wording: the loss named as it is, shares never rounded to 100 %, inputs by name

def test_shares_round_to_100_or_0_percent_only_when_exact() -> None:
    from gradscope.checks.wording import share

    assert [share(v) for v in (0.95, 0.996, 0.9996, 1.0, 0.0, 0.004, 0.5)] == [
        "95%", "99.6%", "99.96%", "100%", "0%", "0.4%", "50%"]
    assert share(0.9999999) == "over 99.999%" and share(1e-9) == "under 0.001%"


def test_a_996_percent_majority_is_not_printed_as_all_of_them() -> None:
    from gradscope.checks.static import class_imbalance

    labels = np.array([0] * 996 + [1] * 4)
    (v,) = class_imbalance(_out(labels, "binary_crossentropy", metrics=("accuracy",)))
    assert "99.6%" in v.message and "100%" not in v.message


def test_no_check_module_prints_a_measured_share_with_plain_percent_rounding() -> None:
    # Each measured share goes through wording.share: `:.0%` would print 99.6 %
    # as 100 %. (Thresholds, named in capitals, are round numbers.)
    import re
    from pathlib import Path

    import gradscope.checks.static as static

    for path in Path(static.__file__).parent.glob("*.py"):
        if path.name == "wording.py":  # the helper itself
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.findall(r"\{[a-z][\w.]*:\.0%\}", text), path.name


def test_mse_for_classification_names_the_loss_it_sees() -> None:
    from gradscope.checks.static import mse_for_classification

    onehot = np.eye(3)[np.arange(60) % 3]
    for loss, words in (("mae", "absolute error"), ("mse", "squared error")):
        (v,) = mse_for_classification(_out(onehot, loss, units=3, activation="softmax"))
        assert words in v.message, v.message
    (v,) = mse_for_classification(_out(onehot, "mae", units=3, activation="softmax"))
    assert "squared" not in v.message


def _heart_like(raw: str | None) -> dict[str, np.ndarray]:
    """13 named tabular columns, standardised except `raw` (kept in its units, up to ~400)."""
    rng = np.random.default_rng(0)
    names = ["age", "ca", "chol", "cp", "exang", "fbs", "oldpeak", "restecg", "sex", "slope",
             "thal", "thalach", "trestbps"]
    cols = {n: rng.normal(size=(303, 1)).astype("float32") for n in names}
    if raw is not None:
        cols[raw] = rng.uniform(120, 400, size=(303, 1)).astype("float32")
    return cols


def test_the_unnormalized_input_among_named_inputs_is_named_by_its_key() -> None:
    from gradscope.checks.facts import ModelFacts
    from gradscope.checks.static import unnormalized_input

    cols = _heart_like("chol")
    names = tuple(sorted(cols))
    joined = np.concatenate([cols[n] for n in names], axis=1)
    facts = ModelFacts(
        name="m", total_params=1, trainable_params=1, weighted_layers=("dense",), frozen_layers=(),
        inputs=tuple(summarize(cols[n]) for n in names), input_names=names,  # type: ignore[misc]
        first_layer_input=summarize(joined), first_layer_type="Dense", first_layer_name="dense",
    )
    (v,) = unnormalized_input(facts)
    assert "input 'chol' reaches" in v.message and v.evidence["input"] == "chol", v.message
    assert "input 0" not in v.message


def _dict_input_model(names: list[str]) -> keras.Model:
    inputs = {n: keras.Input((1,), name=n) for n in names}
    h = L.Concatenate()([inputs[n] for n in names])
    h = L.Dense(16, activation="relu")(h)
    model = keras.Model(inputs, L.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def test_a_dict_of_standardised_inputs_is_not_called_unnormalized() -> None:
    cols = _heart_like(None)
    y = (cols["age"][:, 0] + cols["thalach"][:, 0] > 0).astype("float32")
    found = diagnose(_dict_input_model(sorted(cols)), cols, y, steps=2, budget=0)
    assert "unnormalized-input" not in found.ids, found.ids


def test_a_raw_column_among_dict_inputs_is_the_top_verdict_by_its_name() -> None:
    cols = _heart_like("chol")
    y = (cols["age"][:, 0] + cols["thalach"][:, 0] > 0).astype("float32")
    # Inputs concatenated in another order than the dict's sorted keys
    found = diagnose(_dict_input_model(sorted(cols, reverse=True)), cols, y, steps=2, budget=0)
    top = found.verdicts[0]
    assert top.check == "unnormalized-input", found.ids
    assert "input 'chol'" in top.message, top.message
