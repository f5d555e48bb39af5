"""Static checks on the labels (targets) against the loss and metrics: their
encoding, their values, their distribution. Each check looks at every output
(facts.outputs) and its labels."""

from __future__ import annotations

import math

import numpy as np

from gradscope.checks.facts import ArrayFacts, BatchFacts, OutputFacts
from gradscope.checks.kinds import (
    BINARY,
    CATEGORICAL,
    MAX_CLASSES,
    REGRESSION_LOSSES,
    SPARSE,
    UNIT_TOL,
    ids_beyond_units,
    is_classification,
    loss_class,
    multiclass_into_binary,
    per_output,
    sparse_shaped,
    values_shown,
)
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.checks.wording import share as pct

# Label smoothing blends each target towards uniform by this share: from 0.5 the
# correct class is no longer clearly ahead (warning); from 0.9 the targets are
# (nearly) uniform and there is nothing left to learn (error). Common values are 0.1-0.2.
LABEL_SMOOTHING_WARN = 0.5
LABEL_SMOOTHING_ERROR = 0.9

# Regression targets whose max(|mean|, std) reaches this make a squared loss
# and its gradients huge at the first step (prices in dollars, areas in m^2).
TARGET_SCALE = 1e3
# Losses whose gradient grows with the error: huge targets make huge steps.
# (MSLE works on logs: it is itself a fix for large targets; Huber is linear.)
SQUARED_LOSSES = ("mse",)

# A majority class holding this share of the labels: always predicting it scores
# 90 % accuracy while learning nothing (docs/checks.md, class-imbalance).
IMBALANCE = 0.90

# What each regression loss measures, for messages: MAE is no squared error.
_ERROR_KINDS = {
    "mse": "squared error",
    "mae": "absolute error",
    "huber": "Huber loss (squared, then absolute error)",
    "logcosh": "log-cosh error",
    "msle": "squared error of logarithms",
    "mape": "percentage error",
}

# Metrics that judge each class on its own (by name, as compiled; lower case):
# a model stuck on the majority class scores 0 on them, so they do not hide it.
_IMBALANCE_AWARE = ("precision", "recall", "auc", "prc", "f1", "fbeta", "true_pos",
                    "false_neg", "true_neg", "false_pos", "sensitivity", "specificity", "iou")
_IMBALANCE_AWARE_EXACT = ("tp", "fp", "tn", "fn", "rec", "prec", "pr")


def _accuracy_like(name: str) -> bool:
    return "accuracy" in name or name == "acc"


def _class_like(labels: ArrayFacts) -> bool:
    """Labels that read as class ids: one-hot rows, or few non-negative integers."""
    return labels.one_hot or (
        labels.integer_valued and labels.n_unique <= MAX_CLASSES and labels.min >= 0
    )


def _usable(labels: ArrayFacts) -> bool:
    """Labels whose values can be judged: numbers, none of them NaN/Inf
    (NaN/Inf are nonfinite-input's; text is loss-label-mismatch's)."""
    return labels.numeric and labels.finite


@check("label-smoothing-too-high", "error", "cause",
       "label smoothing blends the targets towards uniform", phase="static", needs=("outputs",))
@per_output
def label_smoothing_too_high(out: OutputFacts, facts: Facts) -> list[Finding]:
    s = out.label_smoothing
    if out.loss not in (CATEGORICAL, BINARY) or s < LABEL_SMOOTHING_WARN:
        return []
    uniform = s >= LABEL_SMOOTHING_ERROR
    return [
        finding(
            "loss",
            f"'{out.loss_display}' has label_smoothing={s:g}: the targets are blended "
            + ("into a uniform distribution, so every class gets the same target and there "
               "is nothing left to learn." if uniform else
               "that far towards uniform, so the correct class barely stands out."),
            f"Use a small value such as label_smoothing=0.1 (or 0): "
            f"keras.losses.{loss_class(out.loss)}(label_smoothing=0.1)",
            severity="error" if uniform else "warning",
            label_smoothing=s,
        )
    ]


def _not_numbers(labels: ArrayFacts) -> str | None:
    """What the labels are, when they are no numbers at all (text, Python objects, dates)."""
    if labels.numeric or labels.n == 0:
        return None
    try:
        kind = np.dtype(labels.dtype).kind
    except TypeError:
        return None
    if kind in "US":
        return f"text (dtype {labels.dtype})"
    if kind == "O":
        return "Python objects (dtype object)"
    return None if kind in "biuf" else f"of dtype {labels.dtype}"


@check("loss-label-mismatch", "error", "cause", "the label encoding does not fit the loss",
       phase="static", needs=("outputs",))
@per_output
def loss_label_mismatch(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    what = _not_numbers(labels) if labels is not None else None
    if what is not None:
        # Keras cannot make a tensor of them, and no loss could compare them with outputs.
        return [
            finding(
                "labels",
                f"the labels are {what}, not numbers: Keras cannot turn them into a "
                f"tensor, and no loss ('{out.loss_display}') can compare them with the "
                "model's outputs.",
                "Turn them into numbers: class names into class ids with "
                "classes, y = np.unique(y, return_inverse=True) (then "
                "loss='sparse_categorical_crossentropy'), or numbers held as objects with "
                "y = y.astype('float32').",
                dtype=labels.dtype if labels is not None else None,
            )
        ]
    if labels is None or not _usable(labels):
        return []
    found: list[Finding] = []
    if out.loss == SPARSE and labels.one_hot and labels.shape[-1] > 1:
        found.append(
            finding(
                "labels",
                f"the labels are one-hot (shape {labels.shape}) but the loss is sparse "
                f"categorical cross-entropy ('{out.loss_display}'), which expects one integer "
                "class id per sample.",
                "Either use loss='categorical_crossentropy' with the one-hot labels, or pass "
                "integer ids: y = y.argmax(axis=-1)",
                labels_shape=labels.shape,
                loss=out.loss_display,
            )
        )
    elif (
        out.loss in (CATEGORICAL, "kld")
        and sparse_shaped(labels)
        and labels.integer_valued
        and out.units is not None
        and out.units > 1
    ):
        # Both compare a distribution per sample: one-hot rows, not class ids.
        kld = out.loss == "kld"
        found.append(
            finding(
                "labels",
                f"the labels are integer class ids (shape {labels.shape}, values "
                f"{values_shown(labels)}) but the loss is "
                + (
                    f"KL divergence ('{out.loss_display}'), which compares two probability "
                    f"distributions: it expects rows of length {out.units} that sum to 1."
                    if kld
                    else f"categorical cross-entropy ('{out.loss_display}'), which expects "
                    f"one-hot rows of length {out.units}."
                ),
                "Use loss='sparse_categorical_crossentropy'"
                + (
                    " (KL divergence against one-hot targets is the same loss up to a constant), or one-hot encode the labels: "
                    if kld
                    else " with integer labels, or one-hot encode them: "
                )
                + f"y = keras.utils.to_categorical(y, {out.units})",
                labels_shape=labels.shape,
                values=list(labels.unique[:8]),
            )
        )
    elif out.loss == SPARSE and out.units is not None and sparse_shaped(labels):
        one_based = labels.min == 1 and labels.max == out.units
        if ids_beyond_units(out, labels):
            pass  # the output layer is too small: loss-output-mismatch says so
        elif labels.integer_valued and (labels.min < 0 or labels.max >= out.units):
            found.append(
                finding(
                    "labels",
                    f"class ids run from {labels.min:g} to {labels.max:g} but '{out.layer}' has "
                    f"{out.units} units, so only ids 0..{out.units - 1} are valid"
                    + (" (the ids look one-based)." if one_based else "."),
                    "Re-map the labels to 0..C-1, e.g. y = y - 1 for ids that start at 1 "
                    "(or y = np.unique(y, return_inverse=True)[1]).",
                    min=labels.min,
                    max=labels.max,
                    units=out.units,
                )
            )
    if out.loss == BINARY and multiclass_into_binary(out, labels):
        pass  # class ids 0..C-1 into one unit: loss-output-mismatch says so
    elif out.loss == BINARY and (labels.min < -UNIT_TOL or labels.max > 1 + UNIT_TOL):
        found.append(
            finding(
                "labels",
                f"binary cross-entropy needs labels in [0, 1], but they run from {labels.min:g} "
                f"to {labels.max:g} (values {values_shown(labels)}).",
                "Map the labels to 0/1 (e.g. y = (y > 0).astype('float32') for -1/+1 labels), "
                "or for more than two classes use softmax with sparse categorical cross-entropy.",
                min=labels.min,
                max=labels.max,
            )
        )
    return found


@check("regression-target-classification", "error", "cause",
       "continuous targets with a classification loss", phase="static", needs=("outputs",))
@per_output
def regression_target_classification(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    if labels is None or not _usable(labels):
        return []
    # Binary cross-entropy is never judged here: any target in [0, 1] is a
    # valid probability for it (soft labels, an image autoencoder's pixels,
    # a head trained on probabilities), and targets outside [0, 1] are
    # loss-label-mismatch's business. Categorical cross-entropy takes soft
    # rows that sum to 1.
    continuous = not labels.integer_valued and (
        out.loss == SPARSE or (out.loss == CATEGORICAL and not labels.row_sums_one)
    )
    if not continuous:
        return []
    distinct = labels.n_unique if labels.n_unique <= MAX_CLASSES else "many"
    return [
        finding(
            "labels",
            f"the targets are continuous (e.g. values from {labels.min:.4g} to {labels.max:.4g}, "
            f"{distinct} distinct) but the loss '{out.loss_display}' is for classes.",
            "For a numeric target use a regression loss and a linear output: Dense(1) with "
            "loss='mse' (or 'mae'); for classes, turn the targets into integer ids first.",
            min=labels.min,
            max=labels.max,
        )
    ]


@check("constant-labels", "error", "cause", "every label is the same", phase="static",
       needs=("outputs",))
@per_output
def constant_labels(out: OutputFacts, facts: Facts) -> list[Finding]:
    # When one sample of labels says nothing about all of them (a sorted
    # generator's first batches, one train_on_batch batch), checks/arbitration.py
    # drops this verdict (STATIC_SUPPRESSIONS).
    labels = out.labels
    if labels is None or not _usable(labels) or labels.n < 2:
        return []
    constant = labels.n_unique == 1 or (labels.one_hot and labels.majority_fraction == 1.0)
    if not constant:
        return []
    value = f"{labels.unique[0]:g}" if labels.n_unique == 1 else "the same one-hot row"
    return [
        finding(
            "labels",
            f"all {labels.n} labels in the sample are {value}: there is nothing to learn except "
            "that constant.",
            "Check how the labels are built (e.g. a column overwritten, a threshold that "
            "puts everything in one class, y = np.zeros(...) left over).",
            n=labels.n,
        )
    ]


def _imbalance_aware(name: str) -> bool:
    return name in _IMBALANCE_AWARE_EXACT or any(k in name for k in _IMBALANCE_AWARE)


def _imbalance_handled(out: OutputFacts, batches: BatchFacts | None) -> bool:
    """The script already deals with the imbalance: its sample weights (or
    class_weight) bring the majority's share of the weight below IMBALANCE, or
    it judges the model only by per-class metrics (no accuracy to be fooled by)."""
    if batches is not None and batches.sample_weighted and (
        batches.weighted_majority is None or batches.weighted_majority < IMBALANCE
    ):
        return True
    metrics = out.metrics
    return bool(metrics) and not any(_accuracy_like(m) for m in metrics) and any(
        _imbalance_aware(m) for m in metrics
    )


@check("class-imbalance", "warning", "cause", "one class holds >= 90 % of the labels",
       phase="static", needs=("outputs",))
@per_output
def class_imbalance(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    if labels is None or not labels.numeric or not is_classification(out):
        return []
    share = labels.majority_fraction
    if not _class_like(labels) or math.isnan(share) or share < IMBALANCE or share >= 1.0:
        return []  # (a single class is constant-labels')
    if _imbalance_handled(out, facts.batches):
        return []
    return [
        finding(
            "labels",
            f"the majority class holds {pct(share)} of the labels: a model that always predicts "
            f"it scores {pct(share)} accuracy while learning nothing.",
            "Weight the classes, resample, or judge by per-class recall / AUC:\n"
            "    from sklearn.utils.class_weight import compute_class_weight\n"
            "    w = compute_class_weight('balanced', classes=np.unique(y), y=y)\n"
            "    model.fit(x, y, class_weight=dict(enumerate(w)), ...)",
            majority_fraction=share,
        )
    ]


@check("mse-for-classification", "warning", "cause", "squared/absolute error on class labels",
       phase="static", needs=("outputs",))
@per_output
def mse_for_classification(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    if labels is None or out.loss not in REGRESSION_LOSSES:
        return []
    if out.activation not in ("softmax", "sigmoid") or not _class_like(labels):
        return []
    if out.activation == "sigmoid" and not labels.one_hot and labels.max > 1:
        return []  # class ids > 1 into a sigmoid: output-activation-mismatch's business
    return [
        finding(
            "loss",
            f"'{out.loss_display}' on class labels ({'one-hot' if labels.one_hot else 'integer ids'}, "
            f"values {values_shown(labels)}) with a {out.activation} output: "
            f"{_ERROR_KINDS.get(out.loss or '', 'a regression loss')} on probabilities gives "
            "weak gradients once a prediction is wrong and confident.",
            "Use cross-entropy: loss='binary_crossentropy' for a sigmoid output, "
            "'categorical_crossentropy' (one-hot) or 'sparse_categorical_crossentropy' "
            "(integer ids) for softmax.",
            severity="warning",
        )
    ]


@check("unscaled-targets", "warning", "cause", "regression targets far from unit scale",
       phase="static", needs=("outputs",))
@per_output
def unscaled_targets(out: OutputFacts, facts: Facts) -> list[Finding]:
    # Issued only if the experiments do not show the model coping with the
    # scale: checks/arbitration.py (NEEDS_EVIDENCE, confirmed).
    labels = out.labels
    if labels is None or out.loss not in SQUARED_LOSSES or not _usable(labels):
        return []
    if max(abs(labels.mean), labels.std) < TARGET_SCALE:
        return []
    return [
        finding(
            "labels",
            f"the regression targets are far from unit scale (mean {labels.mean:.4g}, std "
            f"{labels.std:.4g}, max {labels.max:.4g}) with '{out.loss_display}': the initial loss "
            "and gradients are huge and the output layer must grow enormous weights.",
            "Standardise the targets and undo it on predictions:\n"
            "    mu, sd = y_train.mean(), y_train.std()\n"
            "    model.fit(x, (y_train - mu) / sd, ...)\n"
            "    y_pred = model.predict(x) * sd + mu",
            mean=labels.mean,
            std=labels.std,
        )
    ]


@check("accuracy-on-regression", "warning", "cause", "accuracy metric on a regression task",
       phase="static", needs=("outputs",))
@per_output
def accuracy_on_regression(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    if labels is None or out.loss not in REGRESSION_LOSSES or labels.integer_valued:
        return []
    names = [m for m in out.metrics if _accuracy_like(m)]
    if not names:
        return []
    return [
        finding(
            "loss",
            f"metrics={names} on continuous targets with '{out.loss_display}': accuracy counts "
            "exact matches, so it stays near 0 however well the model fits.",
            "Judge regression by the loss or MAE: metrics=['mae']",
            metrics=names,
        )
    ]
