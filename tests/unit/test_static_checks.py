"""Every static check on hand-built facts, at its edges: just past each threshold
it fires (with the severity and the evidence the user reads), just short of it
it stays quiet. Run through the registry (one check) and through run_static
(every check, then the static suppressions). No TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gradscope.checks import static
from gradscope.checks.facts import (
    ArrayFacts,
    BatchFacts,
    EmbeddingIds,
    ModelFacts,
    OutputFacts,
)
from gradscope.checks.registry import REGISTRY, Facts
from gradscope.checks.static import run_static

ROOT = Path(__file__).resolve().parents[2]
SPARSE = "sparse_categorical_crossentropy"
CATEGORICAL = "categorical_crossentropy"
BINARY = "binary_crossentropy"

# --- builders: healthy defaults, one field changed per case ------------------


def ids(n_classes: int = 10, n: int = 100, **over: Any) -> ArrayFacts:
    """Integer class ids 0..n_classes-1, balanced, one per sample."""
    base = ArrayFacts(
        shape=(n,), dtype="int64", n=n, finite=True, nonfinite_count=0, integer_valued=True,
        min=0.0, max=float(n_classes - 1), mean=(n_classes - 1) / 2, std=1.0,
        unique=tuple(float(i) for i in range(n_classes)), n_unique=n_classes,
        one_hot=False, multi_hot=False, absmax=float(n_classes - 1),
        majority_fraction=1 / n_classes,
    )
    return replace(base, **over)


def one_hot(n_classes: int = 3, n: int = 90, **over: Any) -> ArrayFacts:
    return ids(n_classes, n, **{
        "shape": (n, n_classes), "unique": (0.0, 1.0), "n_unique": 2, "max": 1.0,
        "absmax": 1.0, "one_hot": True, "row_sums_one": True, **over,
    })


def floats(n: int = 100, features: int = 1, **over: Any) -> ArrayFacts:
    """Continuous values at unit scale (standardised inputs, regression targets)."""
    base = ArrayFacts(
        shape=(n, features) if features > 1 else (n,), dtype="float32", n=n, finite=True,
        nonfinite_count=0, integer_valued=False, min=-3.0, max=3.0, mean=0.0, std=1.0,
        unique=tuple(float(i) / 10 for i in range(-25, 26)), n_unique=51, one_hot=False,
        multi_hot=False, absmax=3.0, feature_scale_ratio=1.5,
    )
    return replace(base, **over)


def output(**over: Any) -> OutputFacts:
    """A softmax classifier over 10 classes with sparse class ids."""
    loss = over.pop("loss", SPARSE)
    base = OutputFacts(
        name="out", layer="out", units=10, activation="softmax", loss=loss, loss_display=loss,
        from_logits=False, labels=ids(), metrics=("accuracy",),
    )
    return replace(base, **over)


def regression(**over: Any) -> OutputFacts:
    return output(**{"units": 1, "activation": None, "loss": "mse", "labels": floats(),
                     "metrics": (), **over})


def model(*outputs: OutputFacts, **over: Any) -> ModelFacts:
    """A trainable MLP on one standardised input."""
    base = ModelFacts(
        name="m", total_params=1000, trainable_params=1000, weighted_layers=("dense", "out"),
        frozen_layers=(), outputs=outputs or (output(),), inputs=(floats(features=8),),
        first_layer_type="Dense", first_layer_name="dense",
    )
    return replace(base, **over)


def batches(**over: Any) -> BatchFacts:
    """Three mixed, distinct, shuffled batches of 32 sliced from arrays."""
    base = BatchFacts(kind="arrays", n_batches=3, identical_pairs=0,
                      batch_majority=(0.2, 0.2, 0.2), batch_class=(1, 2, 3),
                      batch_sizes=(32, 32, 32))
    return replace(base, **over)


def facts(*outputs: OutputFacts, b: BatchFacts | None = None, **model_over: Any) -> Facts:
    return Facts(model=model(*outputs, **model_over), batches=b)


def with_input(x: ArrayFacts, **over: Any) -> Facts:
    return facts(inputs=(x,), **over)


# --- the tables --------------------------------------------------------------
# fires: (check id, facts, severity, evidence key, its value)
# quiet: (check id, facts)


def fires(check: str, f: Facts, severity: str, key: str, value: Any, id: str) -> Any:
    return pytest.param(check, f, severity, key, value, id=f"{check}: {id}")


def quiet(check: str, f: Facts, id: str) -> Any:
    return pytest.param(check, f, id=f"{check}: {id}")


FIRES = [
    # pipeline.py
    fires("zero-sample-weights", facts(b=batches(zero_weight_share=0.9)), "warning",
          "zero_share", 0.9, "90% weighted 0 (ZERO_WEIGHTS_WARN)"),
    fires("zero-sample-weights", facts(b=batches(zero_weight_share=1.0)), "error",
          "zero_share", 1.0, "every sample weighted 0"),
    fires("repeated-batch", facts(b=batches(kind="generator", identical_pairs=2)), "error",
          "batches", 3, "each batch the same as the one before"),
    fires("ordered-labels", facts(b=batches(batch_majority=(0.95, 0.95), batch_class=(0, 1),
                                            batch_sizes=(8, 8))),
          "warning", "batch_classes", [0, 1], "95% one class (PURE_BATCH), batches of 8"),
    fires("ordered-labels", facts(output(labels=ids(majority_fraction=0.79)),
                                  b=batches(batch_majority=(1.0, 1.0), batch_class=(0, 0))),
          "warning", "batch_classes", [0, 0], "one class throughout but the labels are mixed"),
    fires("ordered-labels", facts(b=batches(kind="generator", batch_majority=(1.0, 1.0),
                                            batch_class=(0, 0))),
          "warning", "batch_classes", [0, 0], "a generator's first batches all one class"),
    fires("batch-norm-single-sample", facts(b=batches(batch_sizes=(1, 1)),
                                            batch_norm_layers=("bn",)),
          "error", "layers", ["bn"], "batches of one sample"),
    # inputs.py
    fires("nonfinite-input", with_input(floats(finite=False, nonfinite_count=3)), "error",
          "count", 3, "NaN in the input"),
    fires("nonfinite-input", facts(output(labels=ids(finite=False, nonfinite_count=1))),
          "error", "count", 1, "NaN in the labels"),
    fires("constant-input", with_input(floats(absmax=0.0, min=0.0, max=0.0)), "error",
          "absmax", 0.0, "all zero"),
    fires("constant-input", with_input(floats(n=2, constant_features=True)), "error",
          "absmax", 3.0, "two samples, the same"),
    fires("embedding-out-of-range",
          facts(embedding_ids=(EmbeddingIds("emb", 10, 0, 10, 1, 100),)), "error",
          "outside_fraction", 0.01, "one id == input_dim"),
    # model.py
    fires("frozen-model", facts(trainable_params=0, frozen_layers=("dense", "out")), "error",
          "frozen_layers", ["dense", "out"], "nothing trainable"),
    fires("frozen-layers", facts(trainable_params=10, frozen_layers=("dense",)), "info",
          "frozen_layers", ["dense"], "one layer frozen"),
    fires("dropout-too-high", facts(dropout_rates=(("drop", 0.8),)), "warning", "rate", 0.8,
          "rate 0.8 (DROPOUT_HIGH)"),
    fires("dropout-too-high", facts(dropout_rates=(("a", 0.5), ("b", 0.9))), "error",
          "layers", ["b"], "rate 0.9 (DROPOUT_ERROR)"),
    # outputs.py
    fires("single-unit-softmax", facts(output(units=1, labels=ids(2))), "error", "units", 1,
          "softmax over 1 unit"),
    fires("loss-output-mismatch", facts(output(loss=CATEGORICAL, units=1, labels=one_hot(2))),
          "error", "units", 1, "categorical cross-entropy on one unit"),
    fires("loss-output-mismatch", facts(output(loss=BINARY, activation="sigmoid", units=3,
                                               labels=one_hot(3))),
          "warning", "labels_shape", [90, 3], "binary cross-entropy on one-hot rows"),
    fires("loss-output-mismatch", facts(output(loss=BINARY, activation="sigmoid", units=1,
                                               labels=ids(3))),
          "error", "classes", 3, "class ids 0..2 into one unit"),
    fires("loss-output-mismatch", facts(output(loss=BINARY, units=2, labels=ids(2))), "error",
          "units", 2, "one 0/1 label on two units"),
    fires("loss-output-mismatch", facts(output(units=10, labels=ids(11))), "error",
          "classes", 11, "class id 10 on 10 units"),
    fires("loss-output-mismatch", facts(output(loss=CATEGORICAL, units=4, labels=one_hot(3))),
          "error", "classes", 3, "one-hot of 3 on 4 units"),
    fires("logits-mismatch", facts(output(from_logits=True)), "error", "activation", "softmax",
          "from_logits=True after softmax"),
    fires("logits-mismatch", facts(output(activation=None, from_logits=False)), "warning",
          "activation", "linear", "probabilities expected from a linear output"),
    fires("output-activation-mismatch", facts(output(activation="relu")), "error",
          "activation", "relu", "a classifier ending in ReLU"),
    fires("output-activation-mismatch", facts(output(activation="tanh")), "error",
          "activation", "tanh", "tanh into cross-entropy"),
    fires("output-activation-mismatch",
          facts(output(loss=CATEGORICAL, units=3, labels=one_hot(3, one_hot=False, multi_hot=True)),),
          "error", "activation", "softmax", "softmax over multi-label rows"),
    fires("output-activation-mismatch",
          facts(regression(activation="sigmoid", labels=floats(min=0.0, max=1.00001))),
          "error", "activation", "sigmoid", "targets just past 1 + UNIT_TOL"),
    fires("output-activation-mismatch",
          facts(regression(activation="relu", labels=floats(min=-0.001))),
          "error", "activation", "relu", "a negative target under ReLU"),
    fires("output-activation-mismatch",
          facts(regression(activation="tanh", labels=floats(min=0.0, max=1.001))),
          "error", "activation", "tanh", "a target past 1 under tanh"),
    # labels.py
    fires("label-smoothing-too-high",
          facts(output(loss=CATEGORICAL, labels=one_hot(10), label_smoothing=0.5)), "warning",
          "label_smoothing", 0.5, "0.5 (LABEL_SMOOTHING_WARN)"),
    fires("label-smoothing-too-high",
          facts(output(loss=BINARY, activation="sigmoid", units=1, labels=ids(2),
                       label_smoothing=0.9)),
          "error", "label_smoothing", 0.9, "0.9 (LABEL_SMOOTHING_ERROR)"),
    fires("loss-label-mismatch",
          facts(output(labels=replace(ids(), numeric=False, dtype="<U5"))), "error", "dtype",
          "<U5", "text labels"),
    fires("loss-label-mismatch", facts(output(labels=one_hot(10))), "error", "labels_shape",
          [90, 10], "one-hot rows into the sparse loss"),
    fires("loss-label-mismatch", facts(output(loss=CATEGORICAL)), "error", "labels_shape",
          [100], "class ids into categorical cross-entropy"),
    fires("loss-label-mismatch", facts(output(loss="kld")), "error", "labels_shape", [100],
          "class ids into KL divergence"),
    fires("loss-label-mismatch", facts(output(labels=ids(11, min=1.0))), "error", "max", 10.0,
          "one-based ids 1..10 on 10 units"),
    fires("loss-label-mismatch", facts(output(labels=ids(min=-1.0))), "error", "min", -1.0,
          "a negative class id"),
    fires("loss-label-mismatch",
          facts(output(loss=BINARY, activation="sigmoid", units=1,
                       labels=ids(2, min=-1.0, unique=(-1.0, 1.0)))),
          "error", "min", -1.0, "-1/+1 labels into binary cross-entropy"),
    fires("loss-label-mismatch",
          facts(output(loss=BINARY, activation="sigmoid", units=1,
                       labels=floats(min=0.0, max=1.00001))),
          "error", "max", 1.00001, "a label just past 1 + UNIT_TOL"),
    fires("regression-target-classification", facts(output(labels=floats(min=3.0, max=9.0))),
          "error", "max", 9.0, "continuous targets into the sparse loss"),
    fires("regression-target-classification",
          facts(output(loss=CATEGORICAL, units=3, labels=floats(features=3))),
          "error", "min", -3.0, "rows that do not sum to 1 into categorical cross-entropy"),
    fires("constant-labels", facts(output(labels=ids(1, n=2, majority_fraction=1.0))), "error",
          "n", 2, "two labels, one value"),
    fires("constant-labels",
          facts(output(loss=CATEGORICAL, units=3, labels=one_hot(3, majority_fraction=1.0))),
          "error", "n", 90, "the same one-hot row"),
    fires("class-imbalance", facts(output(labels=ids(2, majority_fraction=0.9))), "warning",
          "majority_fraction", 0.9, "90% one class (IMBALANCE)"),
    fires("class-imbalance",
          facts(output(labels=ids(2, majority_fraction=0.95)),
                b=batches(sample_weighted=True, weighted_majority=0.9)),
          "warning", "majority_fraction", 0.95, "weights leaving the majority 90% of the weight"),
    fires("class-imbalance",
          facts(output(labels=ids(2, majority_fraction=0.95), metrics=("accuracy", "auc"))),
          "warning", "majority_fraction", 0.95, "accuracy beside AUC"),
    fires("mse-for-classification", facts(output(loss="mse", units=3, labels=one_hot(3))),
          "warning", "", None, "one-hot rows under softmax"),
    fires("mse-for-classification",
          facts(output(loss="mae", activation="sigmoid", units=1, labels=ids(2))),
          "warning", "", None, "0/1 ids under sigmoid"),
    fires("unscaled-targets", facts(regression(labels=floats(mean=1000.0))), "warning", "mean",
          1000.0, "mean 1e3 (TARGET_SCALE)"),
    fires("unscaled-targets", facts(regression(labels=floats(std=1000.0))), "warning", "std",
          1000.0, "std 1e3"),
    fires("accuracy-on-regression", facts(regression(metrics=("accuracy",))), "warning",
          "metrics", ["accuracy"], "accuracy on continuous targets"),
    # input_scale.py
    fires("unnormalized-input", with_input(floats(absmax=100.0)), "warning", "absmax", 100.0,
          "|x| reaches 100 (INPUT_ABSMAX)"),
    fires("unnormalized-input", with_input(floats(absmax=0.01)), "warning", "tiny", True,
          "|x| at most 0.01 (INPUT_TINY)"),
    fires("unnormalized-input", with_input(floats(absmax=10.0, feature_scale_ratio=1e3)),
          "warning", "ratio", 1e3, "features 1e3 apart (FEATURE_RATIO)"),
    fires("unnormalized-input", with_input(floats(absmax=255.0), input_names=("pixels",)),
          "warning", "input", "pixels", "a named input"),
    fires("unnormalized-input",
          facts(inputs=(floats(), floats(absmax=400.0)), input_names=("a", "chol"),
                first_layer_input=floats(absmax=400.0)),
          "warning", "input", "chol", "the largest of two concatenated inputs"),
]

QUIET = [
    quiet("zero-sample-weights", facts(b=batches(zero_weight_share=0.89)), "89% weighted 0"),
    quiet("zero-sample-weights", facts(b=batches()), "no sample weights"),
    quiet("repeated-batch", facts(b=batches(kind="generator", identical_pairs=1)),
          "one repeat in three batches"),
    quiet("repeated-batch", facts(b=batches(identical_pairs=2)), "arrays (gradscope slices them)"),
    quiet("ordered-labels", facts(b=batches(batch_majority=(0.95, 0.94), batch_class=(0, 1))),
          "one batch 94% one class"),
    quiet("ordered-labels", facts(b=batches(batch_majority=(1.0, 1.0), batch_class=(0, 1),
                                            batch_sizes=(7, 8))),
          "a batch of 7 (ORDERED_MIN_BATCH)"),
    quiet("ordered-labels", facts(output(labels=ids(majority_fraction=0.8)),
                                  b=batches(batch_majority=(1.0, 1.0), batch_class=(0, 0))),
          "arrays all one class, labels 80% one class (MIXED_LABELS)"),
    quiet("batch-norm-single-sample", facts(b=batches(batch_sizes=(1, 2)),
                                            batch_norm_layers=("bn",)),
          "a batch of two"),
    quiet("batch-norm-single-sample", facts(b=batches(batch_sizes=(1, 1))),
          "batches of one, no BatchNormalization"),
    quiet("batch-norm-single-sample", facts(batch_norm_layers=("bn",)), "no batch facts"),
    quiet("nonfinite-input", facts(), "finite data"),
    quiet("nonfinite-input", with_input(replace(floats(finite=False), numeric=False)),
          "text input (not numbers to judge)"),
    quiet("constant-input", with_input(floats(n=1, constant_features=True)), "one sample"),
    quiet("constant-input", facts(), "varied inputs"),
    quiet("embedding-out-of-range",
          facts(embedding_ids=(EmbeddingIds("emb", 10, 0, 9, 0, 100),)), "ids up to input_dim - 1"),
    quiet("frozen-model", facts(trainable_params=1, frozen_layers=("dense",)),
          "one trainable parameter"),
    quiet("frozen-model", facts(total_params=0, trainable_params=0), "no parameters at all"),
    quiet("frozen-layers", facts(), "nothing frozen"),
    quiet("frozen-layers", facts(trainable_params=0, frozen_layers=("dense", "out")),
          "all frozen: frozen-model instead"),
    quiet("dropout-too-high", facts(dropout_rates=(("drop", 0.79),)), "rate 0.79"),
    quiet("single-unit-softmax", facts(output(units=2, labels=ids(2))), "softmax over 2 units"),
    quiet("single-unit-softmax",
          facts(output(loss=BINARY, activation="sigmoid", units=1, labels=ids(2))),
          "one sigmoid unit"),
    quiet("loss-output-mismatch", facts(), "10 units for ids 0..9"),
    quiet("loss-output-mismatch", facts(output(labels=ids(10, min=1.0, max=10.0))),
          "one-based ids 1..10 (loss-label-mismatch's)"),
    quiet("loss-output-mismatch", facts(output(loss=CATEGORICAL, units=3, labels=one_hot(3))),
          "one-hot of 3 on 3 units"),
    quiet("loss-output-mismatch",
          facts(output(loss=BINARY, activation="sigmoid", units=2, labels=one_hot(2))),
          "binary cross-entropy on one-hot pairs"),
    quiet("logits-mismatch", facts(output(activation=None, from_logits=True)),
          "logits with from_logits=True"),
    quiet("logits-mismatch", facts(regression()), "a regression loss"),
    quiet("output-activation-mismatch", facts(), "softmax classifier"),
    quiet("output-activation-mismatch",
          facts(regression(activation="sigmoid", labels=floats(min=0.0, max=1.000001))),
          "targets within UNIT_TOL of 1"),
    quiet("output-activation-mismatch",
          facts(regression(activation="tanh", labels=floats(min=-1.0, max=1.0))),
          "targets in [-1, 1] under tanh"),
    quiet("output-activation-mismatch", facts(regression(activation="relu",
                                                         labels=floats(min=0.0))),
          "non-negative targets under ReLU"),
    quiet("output-activation-mismatch", facts(output(loss="mse", units=3, labels=one_hot(3))),
          "softmax on one-hot under mse (mse-for-classification's)"),
    quiet("label-smoothing-too-high",
          facts(output(loss=CATEGORICAL, labels=one_hot(10), label_smoothing=0.49)), "0.49"),
    quiet("label-smoothing-too-high", facts(output(label_smoothing=0.9)),
          "sparse loss (no label_smoothing there)"),
    quiet("loss-label-mismatch", facts(), "class ids into the sparse loss"),
    quiet("loss-label-mismatch", facts(output(labels=ids(11))),
          "id 10 on 10 units (loss-output-mismatch's)"),
    quiet("loss-label-mismatch",
          facts(output(loss=BINARY, activation="sigmoid", units=1, labels=ids(3))),
          "ids 0..2 into one unit (loss-output-mismatch's)"),
    quiet("loss-label-mismatch",
          facts(output(loss=BINARY, activation="sigmoid", units=1,
                       labels=floats(min=-1e-6, max=1.000001))),
          "labels within UNIT_TOL of [0, 1]"),
    quiet("loss-label-mismatch", facts(output(labels=ids(finite=False))),
          "NaN labels (nonfinite-input's)"),
    quiet("regression-target-classification",
          facts(output(loss=CATEGORICAL, units=3,
                       labels=floats(features=3, min=0.0, max=1.0, row_sums_one=True))),
          "soft rows summing to 1"),
    quiet("regression-target-classification",
          facts(output(loss=BINARY, activation="sigmoid", units=1,
                       labels=floats(min=0.0, max=1.0))),
          "probabilities into binary cross-entropy"),
    quiet("regression-target-classification", facts(), "integer ids"),
    quiet("constant-labels", facts(output(labels=ids(1, n=1))), "a single label"),
    quiet("constant-labels", facts(output(labels=ids(2, n=2))), "two labels, two values"),
    quiet("class-imbalance", facts(output(labels=ids(2, majority_fraction=0.89))),
          "89% one class"),
    quiet("class-imbalance", facts(output(labels=ids(1, majority_fraction=1.0))),
          "one class (constant-labels')"),
    quiet("class-imbalance",
          facts(output(labels=ids(2, majority_fraction=0.95)),
                b=batches(sample_weighted=True, weighted_majority=0.89)),
          "weights leave the majority 89% of the weight"),
    quiet("class-imbalance",
          facts(output(labels=ids(2, majority_fraction=0.95), metrics=("precision", "auc"))),
          "per-class metrics only"),
    quiet("class-imbalance", facts(regression(labels=ids(2, majority_fraction=0.95))),
          "a regression loss"),
    quiet("mse-for-classification", facts(regression(labels=ids(2))), "a linear output"),
    quiet("mse-for-classification",
          facts(output(loss="mse", activation="sigmoid", units=1, labels=ids(3))),
          "ids past 1 under sigmoid (output-activation-mismatch's)"),
    quiet("unscaled-targets", facts(regression(labels=floats(mean=999.0, std=999.0))),
          "mean and std 999"),
    quiet("unscaled-targets", facts(regression(loss="mae", labels=floats(mean=1e4))),
          "mae (not squared)"),
    quiet("accuracy-on-regression", facts(regression(metrics=("mae",))), "no accuracy metric"),
    quiet("accuracy-on-regression", facts(regression(metrics=("accuracy",), labels=ids(2))),
          "integer targets"),
    quiet("unnormalized-input", with_input(floats(absmax=99.9)), "|x| up to 99.9"),
    quiet("unnormalized-input", with_input(floats(absmax=0.0101)), "|x| up to 0.0101"),
    quiet("unnormalized-input", with_input(floats(absmax=10.0, feature_scale_ratio=999.0)),
          "features 999 apart"),
    quiet("unnormalized-input", with_input(floats(absmax=9.9, feature_scale_ratio=1e4)),
          "features 1e4 apart, all under 10"),
    quiet("unnormalized-input", with_input(floats(absmax=255.0), first_layer_type="Embedding"),
          "an Embedding first"),
    quiet("unnormalized-input",
          with_input(floats(absmax=255.0), first_layer_input=floats(absmax=1.0)),
          "rescaled before the first weighted layer"),
]


# --- the tests ---------------------------------------------------------------


def _static_ids() -> set[str]:
    return {c.id for c in REGISTRY.values() if c.phase == "static"}


@pytest.mark.parametrize(("check", "f", "severity", "key", "value"), FIRES)
def test_the_check_fires_past_its_edge(check: str, f: Facts, severity: str, key: str,
                                       value: Any) -> None:
    for found in (REGISTRY[check].run(f), run_static(f.model, f.batches)):
        mine = [v for v in found if v.check == check]
        assert mine, [v.check for v in found]
        v = mine[0]
        assert (v.severity, v.kind) == (severity, REGISTRY[check].kind)
        if key:
            expected = pytest.approx(value) if isinstance(value, float) else value
            assert v.evidence[key] == expected, v.evidence
        assert v.message and v.fix and v.subject


@pytest.mark.parametrize(("check", "f"), QUIET)
def test_the_check_is_quiet_short_of_its_edge(check: str, f: Facts) -> None:
    assert REGISTRY[check].run(f) == []
    assert check not in [v.check for v in run_static(f.model, f.batches)]


def test_every_static_check_has_a_firing_and_a_quiet_case() -> None:
    firing = {p.values[0] for p in FIRES}
    quiet_ = {p.values[0] for p in QUIET}
    assert firing == _static_ids(), firing ^ _static_ids()
    assert quiet_ == _static_ids(), quiet_ ^ _static_ids()


def test_a_healthy_model_gets_no_static_verdict() -> None:
    assert run_static(model(), batches()) == []
    assert run_static(model(regression())) == []


def test_checks_over_outputs_judge_every_output() -> None:
    two = model(output(name="a", layer="a", units=1, labels=ids(2)),
                output(name="b", layer="b", units=1, labels=ids(2)))
    assert [v.subject for v in run_static(two) if v.check == "single-unit-softmax"] == ["a", "b"]


def test_the_static_checks_run_in_family_order_with_the_input_scale_last() -> None:
    order = [c.module.rsplit(".", 1)[-1] for c in REGISTRY.values() if c.phase == "static"]
    families = [m.__name__.rsplit(".", 1)[-1] for m in static.FAMILIES]
    assert list(dict.fromkeys(order)) == families
    assert [c.id for c in REGISTRY.values() if c.phase == "static"][-1] == "unnormalized-input"


# --- static suppressions (checks/arbitration.py) ------------------------------

CONSTANT = output(loss=BINARY, activation="sigmoid", units=1,
                  labels=ids(1, min=1.0, max=1.0, unique=(1.0,), absmax=1.0,
                             majority_fraction=1.0))
MOSTLY_ONES = output(loss=BINARY, activation="sigmoid", units=1,
                     labels=ids(2, majority_fraction=0.95))
SORTED = dict(batch_majority=(1.0, 1.0), batch_class=(1, 1))


@pytest.mark.parametrize(("out", "b", "expected"), [
    pytest.param(CONSTANT, batches(kind="generator", **SORTED), ["ordered-labels"],
                 id="a sorted generator: ordered-labels, not constant-labels"),
    pytest.param(CONSTANT, batches(kind="generator"), ["constant-labels"],
                 id="a generator not sorted: constant-labels"),
    pytest.param(CONSTANT, batches(kind="dataset", **SORTED), ["constant-labels"],
                 id="a dataset of one class: constant-labels"),
    pytest.param(CONSTANT, batches(kind="batch", n_batches=1, batch_majority=(1.0,),
                                   batch_class=(1,), batch_sizes=(64,)), [],
                 id="one train_on_batch batch of ones: nothing"),
    pytest.param(MOSTLY_ONES, batches(kind="batch", n_batches=1), [],
                 id="one train_on_batch batch, 95% ones: no class-imbalance"),
    pytest.param(MOSTLY_ONES, batches(), ["class-imbalance"],
                 id="the same labels from arrays: class-imbalance"),
])
def test_static_suppressions(out: OutputFacts, b: BatchFacts, expected: list[str]) -> None:
    assert [v.check for v in run_static(model(out), b)] == expected


def test_a_train_on_batch_batch_still_gets_the_other_label_checks() -> None:
    text = output(labels=replace(ids(1), numeric=False, dtype="<U5"))
    found = run_static(model(text), batches(kind="batch", n_batches=1))
    assert [v.check for v in found] == ["loss-label-mismatch"]


# --- the entry points of old (checks/static.py) --------------------------------


def test_the_old_per_check_entry_points_still_answer() -> None:
    imbalanced = output(labels=ids(2, majority_fraction=0.95))
    assert [v.check for v in static.class_imbalance(imbalanced)] == ["class-imbalance"]
    assert static.class_imbalance(imbalanced, batches(sample_weighted=True)) == []
    assert [v.check for v in static.zero_sample_weights(batches(zero_weight_share=1.0))] == [
        "zero-sample-weights"]
    assert [v.check for v in static.unnormalized_input(model(inputs=(floats(absmax=255.0),)))] \
        == ["unnormalized-input"]
    assert [v.check for v in static.regression_target_classification(
        output(labels=floats()))] == ["regression-target-classification"]
    assert [v.check for v in static.mse_for_classification(
        output(loss="mse", units=3, labels=one_hot(3)))] == ["mse-for-classification"]


# --- no TensorFlow --------------------------------------------------------------


def test_the_checks_import_no_tensorflow() -> None:
    code = "import gradscope.checks.all, sys; assert 'tensorflow' not in sys.modules, 'tensorflow'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
