"""Static checks: model, compile config and a data sample, before any step."""

from __future__ import annotations

import math

import numpy as np

# Which static findings wait for the experiments' evidence: checks/arbitration.py
from gradscope.checks.arbitration import NEEDS_EVIDENCE as NEEDS_EVIDENCE  # noqa: F401
from gradscope.checks.arbitration import needs_evidence as needs_evidence  # noqa: F401
from gradscope.checks.catalogue import verdict
from gradscope.checks.facts import ArrayFacts, BatchFacts, ModelFacts, OutputFacts
from gradscope.checks.wording import share as pct
from gradscope.verdicts import Verdict

CATEGORICAL = "categorical_crossentropy"
SPARSE = "sparse_categorical_crossentropy"
BINARY = "binary_crossentropy"
CROSS_ENTROPIES = (CATEGORICAL, SPARSE, BINARY)
UNIT_TOL = 1e-6  # MinMaxScaler and friends overshoot [0, 1] by rounding


def _values(labels: ArrayFacts, limit: int = 8) -> str:
    shown = ", ".join(f"{v:g}" for v in labels.unique[:limit])
    more = ", ..." if labels.n_unique > limit else ""
    return "{" + shown + more + "}"


def _n_classes(labels: ArrayFacts) -> int | None:
    """Number of classes the labels encode, when they look like class labels."""
    if labels.one_hot or labels.multi_hot:
        return labels.shape[-1]
    if labels.integer_valued and labels.min >= 0 and labels.n_unique <= 50:
        return int(labels.max) + 1
    return None


def _sparse_shaped(labels: ArrayFacts) -> bool:
    return len(labels.shape) == 1 or (len(labels.shape) >= 2 and labels.shape[-1] == 1)


LABEL_SMOOTHING_ERROR = 0.9


def label_smoothing(out: OutputFacts) -> list[Verdict]:
    s = out.label_smoothing
    if out.loss not in (CATEGORICAL, BINARY) or s < 0.5:
        return []
    uniform = s >= LABEL_SMOOTHING_ERROR
    return [
        verdict(
            "label-smoothing-too-high",
            "loss",
            f"'{out.loss_display}' has label_smoothing={s:g}: the targets are blended "
            + ("into a uniform distribution, so every class gets the same target and there "
               "is nothing left to learn." if uniform else
               "that far towards uniform, so the correct class barely stands out."),
            f"Use a small value such as label_smoothing=0.1 (or 0): "
            f"keras.losses.{_loss_class(out.loss)}(label_smoothing=0.1)",
            severity="error" if uniform else "warning",
            label_smoothing=s,
        )
    ]


def single_unit_softmax(out: OutputFacts) -> list[Verdict]:
    if out.activation != "softmax" or out.units != 1:
        return []
    return [
        verdict(
            "single-unit-softmax",
            out.layer,
            f"'{out.layer}' applies softmax over 1 unit: softmax of a single value is always "
            "1.0, so the prediction never changes whatever the weights.",
            "For two classes use one sigmoid unit with binary cross-entropy:\n"
            "    Dense(1, activation='sigmoid')  +  loss='binary_crossentropy'\n"
            "or one unit per class with softmax:\n"
            "    Dense(n_classes, activation='softmax')  +  loss='sparse_categorical_crossentropy'",
            units=1,
            loss=out.loss_display,
        )
    ]


def loss_output_mismatch(out: OutputFacts) -> list[Verdict]:
    found: list[Verdict] = []
    labels = out.labels
    if out.loss == CATEGORICAL and out.units == 1:
        found.append(
            verdict(
                "loss-output-mismatch",
                "loss",
                f"categorical cross-entropy ('{out.loss_display}') on '{out.layer}', which has "
                "1 output unit: with one unit there is only one class, so the loss has nothing "
                "to learn.",
                "For a yes/no target: Dense(1, activation='sigmoid') with "
                "loss='binary_crossentropy'. For C classes: Dense(C, activation='softmax').",
                units=1,
                loss=out.loss_display,
            )
        )
    if (
        out.loss == BINARY
        and out.activation in ("softmax", "sigmoid")
        and out.units is not None
        and out.units > 2
        and labels is not None
        and labels.one_hot
    ):
        found.append(
            verdict(
                "loss-output-mismatch",
                "loss",
                f"binary cross-entropy on '{out.layer}' ({out.activation} over {out.units} units) "
                f"with one-hot labels of shape {labels.shape}: each unit is scored as a separate "
                "yes/no question, and the reported accuracy is inflated.",
                "For single-label classes use softmax with categorical cross-entropy:\n"
                f"    Dense({out.units}, activation='softmax')  +  loss='categorical_crossentropy'",
                severity="warning",
                units=out.units,
                labels_shape=labels.shape,
            )
        )
    if (
        out.loss == BINARY
        and labels is not None
        and labels.numeric
        and labels.finite
        and _multiclass_into_binary(out, labels)
    ):
        classes = int(labels.max) + 1
        found.append(
            verdict(
                "loss-output-mismatch",
                out.layer,
                f"the labels hold {classes} classes (values {_values(labels)}) but '{out.layer}' "
                f"has 1 unit and the loss is binary cross-entropy ('{out.loss_display}'), which "
                "only knows two classes (0 and 1).",
                f"One unit per class: Dense({classes}, activation='softmax') with "
                "loss='sparse_categorical_crossentropy'",
                units=1,
                classes=classes,
            )
        )
    if (
        out.loss == BINARY
        and out.units is not None
        and out.units >= 2
        and labels is not None
        and labels.numeric
        and labels.finite
        and labels.integer_valued
        and _sparse_shaped(labels)
        and labels.min >= 0
        and labels.max <= 1
    ):
        found.append(
            verdict(
                "loss-output-mismatch",
                out.layer,
                f"'{out.layer}' has {out.units} output units but the labels are one 0/1 value "
                f"per sample (shape {labels.shape}) and the loss is binary cross-entropy "
                f"('{out.loss_display}'): the label and output shapes do not match (Keras "
                "refuses them or broadcasts one label over every unit).",
                "For a yes/no target use one unit: Dense(1, activation='sigmoid') with "
                "loss='binary_crossentropy'; or keep "
                f"Dense({out.units}, activation='softmax') with "
                "loss='sparse_categorical_crossentropy'.",
                units=out.units,
                labels_shape=labels.shape,
            )
        )
    if (
        out.loss == SPARSE
        and labels is not None
        and labels.numeric
        and labels.finite
        and labels.integer_valued
        and _sparse_shaped(labels)
        and out.units is not None
        and labels.min >= 0
        and labels.max >= out.units
        and not (labels.min == 1 and labels.max == out.units)
    ):
        classes = int(labels.max) + 1
        found.append(
            verdict(
                "loss-output-mismatch",
                out.layer,
                f"'{out.layer}' has {out.units} output unit{'s' if out.units != 1 else ''} but "
                f"the labels hold class ids up to {labels.max:g} ({classes} classes, values "
                f"{_values(labels)}): the output needs one unit per class.",
                f"Dense({classes}, activation='softmax') with "
                "loss='sparse_categorical_crossentropy'",
                units=out.units,
                classes=classes,
            )
        )
    if (
        out.loss == CATEGORICAL
        and labels is not None
        and (labels.one_hot or labels.multi_hot)
        and out.units is not None
        and out.units > 1
        and labels.shape[-1] != out.units
    ):
        found.append(
            verdict(
                "loss-output-mismatch",
                "loss",
                f"'{out.layer}' has {out.units} output units but the one-hot labels have "
                f"{labels.shape[-1]} classes (shape {labels.shape}).",
                f"Make the output layer Dense({labels.shape[-1]}, activation='softmax'), "
                "or fix the label encoding.",
                units=out.units,
                classes=labels.shape[-1],
            )
        )
    return found


def _multiclass_into_binary(out: OutputFacts, labels: ArrayFacts) -> bool:
    """Integer class ids 0..C-1 (C > 2) fed to binary cross-entropy on one unit."""
    return (
        out.units == 1
        and labels.integer_valued
        and _sparse_shaped(labels)
        and labels.min >= 0
        and labels.max >= 2
        and labels.n_unique <= 50
    )


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


def loss_label_mismatch(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    what = _not_numbers(labels) if labels is not None else None
    if what is not None:
        # Keras cannot make a tensor of them, and no loss could compare them with outputs.
        return [
            verdict(
                "loss-label-mismatch",
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
    if labels is None or not labels.numeric or not labels.finite:
        return []
    found: list[Verdict] = []
    if out.loss == SPARSE and labels.one_hot and labels.shape[-1] > 1:
        found.append(
            verdict(
                "loss-label-mismatch",
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
        and _sparse_shaped(labels)
        and labels.integer_valued
        and out.units is not None
        and out.units > 1
    ):
        # Both compare a distribution per sample: one-hot rows, not class ids.
        kld = out.loss == "kld"
        found.append(
            verdict(
                "loss-label-mismatch",
                "labels",
                f"the labels are integer class ids (shape {labels.shape}, values "
                f"{_values(labels)}) but the loss is "
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
    elif out.loss == SPARSE and out.units is not None and _sparse_shaped(labels):
        one_based = labels.min == 1 and labels.max == out.units
        too_few_units = labels.min >= 0 and labels.max >= out.units and not one_based
        if labels.integer_valued and too_few_units:
            pass  # the output layer is too small: loss-output-mismatch says so
        elif labels.integer_valued and (labels.min < 0 or labels.max >= out.units):
            found.append(
                verdict(
                    "loss-label-mismatch",
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
    if out.loss == BINARY and _multiclass_into_binary(out, labels):
        pass  # class ids 0..C-1 into one unit: loss-output-mismatch says so
    elif out.loss == BINARY and (labels.min < -UNIT_TOL or labels.max > 1 + UNIT_TOL):
        found.append(
            verdict(
                "loss-label-mismatch",
                "labels",
                f"binary cross-entropy needs labels in [0, 1], but they run from {labels.min:g} "
                f"to {labels.max:g} (values {_values(labels)}).",
                "Map the labels to 0/1 (e.g. y = (y > 0).astype('float32') for -1/+1 labels), "
                "or for more than two classes use softmax with sparse categorical cross-entropy.",
                min=labels.min,
                max=labels.max,
            )
        )
    return found


def frozen(facts: ModelFacts) -> list[Verdict]:
    if facts.total_params > 0 and facts.trainable_params == 0:
        return [
            verdict(
                "frozen-model",
                "model",
                f"the model has {facts.total_params:,} parameters and none of them is trainable "
                f"({len(facts.frozen_layers)} layers have trainable=False), so fit() cannot "
                "change anything.",
                "Unfreeze what should learn, then compile again (trainable flags are read at "
                "compile time):\n    base_model.trainable = False   # keep the base frozen\n"
                "    model.layers[-1].trainable = True\n    model.compile(...)",
                frozen_layers=list(facts.frozen_layers[:20]),
            )
        ]
    if facts.frozen_layers:
        shown = ", ".join(facts.frozen_layers[:8])
        more = f" and {len(facts.frozen_layers) - 8} more" if len(facts.frozen_layers) > 8 else ""
        return [
            verdict(
                "frozen-layers",
                "model",
                f"{len(facts.frozen_layers)} of {len(facts.weighted_layers)} layers with weights "
                f"are frozen (trainable=False): {shown}{more}.",
                "Nothing to do if that is intended (e.g. a frozen pretrained base); otherwise "
                "set layer.trainable = True and compile again.",
                frozen_layers=list(facts.frozen_layers[:50]),
            )
        ]
    return []


# --- issue 3: the rest of the static catalogue ---------------------------------

PROBABILITY_LOSSES = CROSS_ENTROPIES
REGRESSION_LOSSES = ("mse", "mae", "huber", "logcosh", "msle", "mape")
# Losses whose gradient grows with the error: huge targets make huge steps.
# (MSLE works on logs: it is itself a fix for large targets; Huber is linear.)
SQUARED_LOSSES = ("mse",)

# Input scale (docs/checks.md): raw pixels (0-255) and unscaled tabular columns
# (incomes, areas) are the usual offenders; |x| up to ~20 (e.g. digits 0-16)
# trains fine with the default initialisers.
INPUT_ABSMAX = 100.0
# Inputs no larger than this (pixels divided by 255 twice: at most 0.004) give
# the first layer a gradient that much smaller than its weights need.
INPUT_TINY = 0.01
FEATURE_RATIO = 1e3
TARGET_SCALE = 1e3  # regression targets: max(|mean|, std)
IMBALANCE = 0.90


def _is_classification(out: OutputFacts) -> bool:
    return out.loss in CROSS_ENTROPIES


def _class_like(labels: ArrayFacts) -> bool:
    return labels.one_hot or (
        labels.integer_valued and labels.n_unique <= 50 and labels.min >= 0
    )


def logits_mismatch(out: OutputFacts) -> list[Verdict]:
    if out.loss not in PROBABILITY_LOSSES:
        return []
    if out.from_logits and out.activation in ("softmax", "sigmoid"):
        return [
            verdict(
                "logits-mismatch",
                out.layer,
                f"the loss '{out.loss_display}' has from_logits=True but '{out.layer}' already "
                f"applies {out.activation}: the loss squashes the probabilities a second time, "
                "so the gradient is tiny and the predictions barely move.",
                f"Drop one of the two: either activation=None on '{out.layer}' and keep "
                f"from_logits=True, or keep the {out.activation} and use from_logits=False.",
                activation=out.activation,
            )
        ]
    if out.from_logits is False and out.activation in ("linear", None):
        return [
            verdict(
                "logits-mismatch",
                out.layer,
                f"'{out.layer}' has a linear output (no activation) but the loss "
                f"'{out.loss_display}' expects probabilities (from_logits=False): raw scores "
                "outside [0, 1] are clipped and their gradients lost.",
                "Tell the loss it gets logits: "
                f"loss=keras.losses.{_loss_class(out.loss)}(from_logits=True)",
                severity="warning",
                activation=out.activation or "linear",
            )
        ]
    return []


def _loss_class(kind: str | None) -> str:
    return {
        CATEGORICAL: "CategoricalCrossentropy",
        SPARSE: "SparseCategoricalCrossentropy",
        BINARY: "BinaryCrossentropy",
    }.get(kind or "", "CategoricalCrossentropy")


def output_activation_mismatch(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    act = out.activation
    found: list[Verdict] = []

    def add(message: str, fix: str, severity: str = "error") -> None:
        found.append(
            verdict("output-activation-mismatch", out.layer, message, fix,
                    severity=severity, activation=act)  # type: ignore[arg-type]
        )

    if _is_classification(out) and act == "relu":
        add(
            f"'{out.layer}' ends a classifier with ReLU: negative scores are cut to 0 with zero "
            "gradient, so classes can get stuck at 0 and never recover.",
            "Use softmax (one unit per class) or sigmoid (one unit, two classes), or no "
            "activation with from_logits=True in the loss.",
        )
    elif _is_classification(out) and act == "tanh":
        add(
            f"'{out.layer}' feeds tanh outputs (range -1..1) to cross-entropy, which expects "
            "probabilities in [0, 1].",
            "Use sigmoid or softmax on the output layer.",
        )
    if labels is None or not labels.numeric or not labels.finite:
        return found
    if act in ("softmax",) and labels.multi_hot and out.loss in (CATEGORICAL, BINARY):
        add(
            f"the targets are multi-label (rows of {labels.shape[-1]} with several 1s) but "
            f"'{out.layer}' uses softmax, which makes the classes compete for one unit of "
            "probability.",
            f"For multi-label targets: Dense({labels.shape[-1]}, activation='sigmoid') with "
            "loss='binary_crossentropy'.",
        )
    if out.loss in REGRESSION_LOSSES and not _looks_like_classes(out, labels):
        if act in ("sigmoid", "softmax") and (
            labels.min < -UNIT_TOL or labels.max > 1 + UNIT_TOL
        ):
            add(
                f"'{out.layer}' uses {act} (outputs in [0, 1]) but the regression targets "
                f"range from {labels.min:.4g} to {labels.max:.4g}: most targets are out of reach.",
                "Use a linear output for regression: Dense(1) (activation=None), and "
                "standardise the targets.",
            )
        elif act == "relu" and labels.min < 0:
            add(
                f"'{out.layer}' uses ReLU (outputs >= 0) but some targets are negative "
                f"(min {labels.min:.4g}): those can never be reached.",
                "Use a linear output: Dense(1) with activation=None.",
            )
        elif act == "tanh" and (labels.min < -1 or labels.max > 1):
            add(
                f"'{out.layer}' uses tanh (outputs in [-1, 1]) but the targets range from "
                f"{labels.min:.4g} to {labels.max:.4g}.",
                "Use a linear output (activation=None), or scale the targets into [-1, 1].",
            )
    return found


def _looks_like_classes(out: OutputFacts, labels: ArrayFacts) -> bool:
    units = out.units or 0
    return labels.one_hot or (
        labels.integer_valued and labels.n_unique <= 2 and out.activation in ("sigmoid", "softmax")
    ) or (
        # Class ids 0..units-1 under a softmax over `units`: a classifier given a
        # regression loss (mse-for-classification), not a regression model.
        labels.integer_valued and out.activation == "softmax" and units > 1
        and labels.min >= 0 and labels.max < units
    )


def regression_target_classification(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    if labels is None or not labels.numeric or not labels.finite:
        return []
    if out.loss == SPARSE and not labels.integer_valued:
        bad = True
    elif out.loss == CATEGORICAL and not labels.integer_valued and not labels.row_sums_one:
        bad = True
    else:
        # Binary cross-entropy is never judged here: any target in [0, 1] is a
        # valid probability for it (soft labels, an image autoencoder's pixels,
        # a head trained on probabilities), and targets outside [0, 1] are
        # loss-label-mismatch's business.
        bad = False
    if not bad:
        return []
    return [
        verdict(
            "regression-target-classification",
            "labels",
            f"the targets are continuous (e.g. values from {labels.min:.4g} to {labels.max:.4g}, "
            f"{labels.n_unique if labels.n_unique <= 50 else 'many'} distinct) but the loss "
            f"'{out.loss_display}' is for classes.",
            "For a numeric target use a regression loss and a linear output: Dense(1) with "
            "loss='mse' (or 'mae'); for classes, turn the targets into integer ids first.",
            min=labels.min,
            max=labels.max,
        )
    ]


def accuracy_on_regression(facts: ModelFacts, out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    if labels is None or out.loss not in REGRESSION_LOSSES or labels.integer_valued:
        return []
    names = [m for m in out.metrics if "accuracy" in m or m == "acc"]
    if not names:
        return []
    return [
        verdict(
            "accuracy-on-regression",
            "loss",
            f"metrics={names} on continuous targets with '{out.loss_display}': accuracy counts "
            "exact matches, so it stays near 0 however well the model fits.",
            "Judge regression by the loss or MAE: metrics=['mae']",
            metrics=names,
        )
    ]


def unscaled_targets(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    if labels is None or out.loss not in SQUARED_LOSSES or not labels.finite or not labels.numeric:
        return []
    scale = max(abs(labels.mean), labels.std)
    if scale < TARGET_SCALE:
        return []
    return [
        verdict(
            "unscaled-targets",
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


# What each regression loss measures, for messages: MAE is no squared error.
_ERROR_KINDS = {
    "mse": "squared error",
    "mae": "absolute error",
    "huber": "Huber loss (squared, then absolute error)",
    "logcosh": "log-cosh error",
    "msle": "squared error of logarithms",
    "mape": "percentage error",
}


def mse_for_classification(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    if labels is None or out.loss not in REGRESSION_LOSSES:
        return []
    if out.activation not in ("softmax", "sigmoid"):
        return []
    if not (labels.one_hot or (labels.integer_valued and labels.n_unique <= 50 and labels.min >= 0)):
        return []
    if out.activation == "sigmoid" and not labels.one_hot and labels.max > 1:
        return []  # class ids > 1 into a sigmoid: output-activation-mismatch's business
    return [
        verdict(
            "mse-for-classification",
            "loss",
            f"'{out.loss_display}' on class labels ({'one-hot' if labels.one_hot else 'integer ids'}, "
            f"values {_values(labels)}) with a {out.activation} output: "
            f"{_ERROR_KINDS.get(out.loss or '', 'a regression loss')} on probabilities gives "
            "weak gradients once a prediction is wrong and confident.",
            "Use cross-entropy: loss='binary_crossentropy' for a sigmoid output, "
            "'categorical_crossentropy' (one-hot) or 'sparse_categorical_crossentropy' "
            "(integer ids) for softmax.",
            severity="warning",
        )
    ]


def constant_labels(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
    if labels is None or not labels.numeric or not labels.finite or labels.n < 2:
        return []
    constant = labels.n_unique == 1 or (labels.one_hot and labels.majority_fraction == 1.0)
    if not constant:
        return []
    value = f"{labels.unique[0]:g}" if labels.n_unique == 1 else "the same one-hot row"
    return [
        verdict(
            "constant-labels",
            "labels",
            f"all {labels.n} labels in the sample are {value}: there is nothing to learn except "
            "that constant.",
            "Check how the labels are built (e.g. a column overwritten, a threshold that "
            "puts everything in one class, y = np.zeros(...) left over).",
            n=labels.n,
        )
    ]


# Metrics that judge each class on its own (by name, as compiled; lower case):
# a model stuck on the majority class scores 0 on them, so they do not hide it.
_IMBALANCE_AWARE = ("precision", "recall", "auc", "prc", "f1", "fbeta", "true_pos",
                    "false_neg", "true_neg", "false_pos", "sensitivity", "specificity", "iou")
_IMBALANCE_AWARE_EXACT = ("tp", "fp", "tn", "fn", "rec", "prec", "pr")


def _accuracy_like(name: str) -> bool:
    return "accuracy" in name or name == "acc"


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


def class_imbalance(out: OutputFacts, batches: BatchFacts | None = None) -> list[Verdict]:
    labels = out.labels
    if labels is None or not labels.numeric or not _is_classification(out):
        return []
    if not _class_like(labels):
        return []
    share = labels.majority_fraction
    if math.isnan(share) or share < IMBALANCE or share >= 1.0:
        return []
    if _imbalance_handled(out, batches):
        return []
    return [
        verdict(
            "class-imbalance",
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


def nonfinite_input(facts: ModelFacts) -> list[Verdict]:
    found: list[Verdict] = []
    for i, inp in enumerate(facts.inputs):
        if inp.numeric and not inp.finite:
            found.append(
                verdict(
                    "nonfinite-input",
                    "inputs",
                    f"{_input_label(facts, i)} holds {inp.nonfinite_count} NaN/Inf values (shape {inp.shape}): "
                    "one NaN makes the loss and every gradient NaN.",
                    "Clean or impute them before training:\n"
                    "    x = np.nan_to_num(x)   # or drop / impute the rows",
                    count=inp.nonfinite_count,
                )
            )
    for out in facts.outputs:
        labels = out.labels
        if labels is not None and labels.numeric and not labels.finite:
            found.append(
                verdict(
                    "nonfinite-input",
                    "labels",
                    f"the labels for '{out.name}' hold {labels.nonfinite_count} NaN/Inf values.",
                    "Drop or fix those rows: keep = np.isfinite(y).all(axis=-1) if y.ndim > 1 "
                    "else np.isfinite(y); x, y = x[keep], y[keep]",
                    count=labels.nonfinite_count,
                )
            )
    return found


def constant_input(facts: ModelFacts) -> list[Verdict]:
    found: list[Verdict] = []
    for i, inp in enumerate(facts.inputs):
        if not inp.numeric or not inp.finite or inp.n < 2:
            continue
        if inp.absmax == 0.0 or inp.constant_features:
            what = "all zero" if inp.absmax == 0.0 else "the same for every sample"
            found.append(
                verdict(
                    "constant-input",
                    "inputs",
                    f"{_input_label(facts, i)} (shape {inp.shape}) is {what}: the model cannot tell samples "
                    "apart, so it can only learn the average label.",
                    "Check the preprocessing (an integer division that floors to 0, an "
                    "array overwritten, the wrong column selected).",
                    absmax=inp.absmax,
                )
            )
    return found


# First layers that take ids or normalise their input themselves.
_SELF_SCALING = (
    "Embedding", "BatchNormalization", "LayerNormalization", "Normalization",
    "GroupNormalization", "UnitNormalization", "CategoryEncoding", "Hashing",
)


def _input_label(facts: ModelFacts, i: int) -> str:
    """How messages name raw input i: by its dict key or Input name, as "the
    input" when it is the only one, else by position."""
    names = facts.input_names if len(facts.input_names) == len(facts.inputs) else ()
    if names and names[i]:
        return f"input '{names[i]}'"
    return "the input" if len(facts.inputs) == 1 else f"input {i}"


def _source_of(facts: ModelFacts, inp: ArrayFacts) -> int | None:
    """Which raw input the first layer's values come from: the one reaching the
    same largest |x| (a concatenation of named inputs reaches its largest
    member's); None when none does (the values were transformed on the way)."""
    for i, raw in enumerate(facts.inputs):
        if raw.numeric and raw.finite and math.isclose(raw.absmax, inp.absmax, rel_tol=1e-5):
            return i
    return None


def unnormalized_input(facts: ModelFacts) -> list[Verdict]:
    if facts.first_layer_type in _SELF_SCALING:
        return []
    # Judge what the first weighted layer receives: a Rescaling layer or an
    # `x / 255` inside call() has already fixed raw pixels.
    # (facts, name in messages, what differs in scale, input's name)
    judged: list[tuple[ArrayFacts, str, str, str]] = []
    if facts.first_layer_input is not None:
        inp = facts.first_layer_input
        source = _source_of(facts, inp) if len(facts.inputs) > 1 else None
        if len(facts.inputs) <= 1:
            label = "the input"
        elif source is not None:
            label = _input_label(facts, source)
        else:
            label = f"what '{facts.first_layer_name or facts.first_layer_type}' receives"
        names = facts.input_names if len(facts.input_names) == len(facts.inputs) else ()
        # Several inputs reach the first layer together (concatenated): their
        # features are compared with each other, not within one input.
        features = (
            f"the features '{facts.first_layer_name or facts.first_layer_type}' receives"
            + (f" (largest in {label})" if source is not None else "")
            if len(facts.inputs) > 1 else "the features of the input"
        )
        judged.append((inp, label, features, names[source] if names and source is not None else ""))
    else:
        names = facts.input_names if len(facts.input_names) == len(facts.inputs) else ()
        judged = [(inp, _input_label(facts, i), f"the features of {_input_label(facts, i)}",
                   names[i] if names else "") for i, inp in enumerate(facts.inputs)]
    found: list[Verdict] = []
    for inp, label, features, name in judged:
        if not inp.numeric or not inp.finite or inp.absmax == 0.0:
            continue
        where = {"input": name} if name else {}
        if inp.absmax >= INPUT_ABSMAX:
            found.append(
                verdict(
                    "unnormalized-input",
                    "inputs",
                    f"{label} reaches |x| = {inp.absmax:.4g} (mean {inp.mean:.4g}, std "
                    f"{inp.std:.4g}): far from unit scale, which saturates sigmoid/tanh units "
                    "and makes the first layer's gradients huge.",
                    "Scale the inputs, e.g. x = x / 255.0 for pixels, or standardise:\n"
                    "    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)\n"
                    "or put keras.layers.Normalization() (adapted on x) first in the model.",
                    severity="warning",
                    absmax=inp.absmax,
                    **where,
                )
            )
        elif inp.absmax <= INPUT_TINY:
            found.append(
                verdict(
                    "unnormalized-input",
                    "inputs",
                    f"{label} never exceeds |x| = {inp.absmax:.2g} (mean {inp.mean:.2g}, std "
                    f"{inp.std:.2g}): far below unit scale (scaled twice?), so the first "
                    "layer's outputs and its gradients are tiny and it barely learns.",
                    "Scale the inputs once, e.g. x = x / 255.0 for raw pixels only, or "
                    "standardise: x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)",
                    severity="warning",
                    absmax=inp.absmax,
                    tiny=True,
                    **where,
                )
            )
        elif inp.feature_scale_ratio >= FEATURE_RATIO and inp.absmax >= 10:
            found.append(
                verdict(
                    "unnormalized-input",
                    "inputs",
                    f"{features} differ in scale by {inp.feature_scale_ratio:.2g}x "
                    f"(largest |x| {inp.absmax:.4g}): the large columns dominate the first layer.",
                    "Standardise each feature: x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)",
                    severity="warning",
                    ratio=inp.feature_scale_ratio,
                    **where,
                )
            )
    return found


def run_static(facts: ModelFacts, batches: BatchFacts | None = None) -> list[Verdict]:
    """Every static check; inputs first (their causes explain label-side symptoms too)."""
    found: list[Verdict] = []
    sorted_prefix = False
    if batches is not None:
        found += zero_sample_weights(batches)
        found += repeated_batch(batches)
        labels = facts.outputs[0].labels if facts.outputs else None
        ordered = ordered_labels(batches, labels)
        found += ordered
        # A generator's first batches all of one class are most likely sorted data,
        # not constant labels: say it once.
        sorted_prefix = bool(ordered) and batches.kind == "generator"
    found += nonfinite_input(facts)
    found += constant_input(facts)
    found += frozen(facts)
    found += batch_norm_single_sample(facts, batches)
    found += dropout_too_high(facts)
    found += embedding_out_of_range(facts)
    for out in facts.outputs:
        found += single_unit_softmax(out)
        found += label_smoothing(out)
        found += loss_output_mismatch(out)
        found += loss_label_mismatch(out)
        found += logits_mismatch(out)
        found += output_activation_mismatch(out)
        found += regression_target_classification(out)
        if not sorted_prefix:
            found += constant_labels(out)
        found += class_imbalance(out, batches)
        found += mse_for_classification(out)
        found += unscaled_targets(out)
        found += accuracy_on_regression(facts, out)
    found += unnormalized_input(facts)
    return found


# Dropout rates from here on leave too few units for a signal to get through;
# Keras's `rate` is the share DROPPED (TF1's keep_prob was the share kept, so
# keep_prob=0.9 ported as Dropout(0.9) drops 90 %).
DROPOUT_HIGH = 0.8
DROPOUT_ERROR = 0.9


def dropout_too_high(facts: ModelFacts) -> list[Verdict]:
    high = [(name, rate) for name, rate in facts.dropout_rates if rate >= DROPOUT_HIGH]
    if not high:
        return []
    worst = max(rate for _, rate in high)
    names = ", ".join(f"{name} ({rate:g})" for name, rate in high)
    return [
        verdict(
            "dropout-too-high",
            high[0][0],
            f"dropout drops {pct(worst)} of the units in training ({names}): so little gets "
            "through that the gradient is mostly noise. Keras's rate is the share dropped, "
            "not kept (TF1's keep_prob).",
            "Use a rate of 0.1-0.5: keras.layers.Dropout(0.2)  (for keep_prob=p write "
            "Dropout(1 - p)).",
            severity="error" if worst >= DROPOUT_ERROR else "warning",
            layers=[name for name, _ in high],
            rate=worst,
        )
    ]


# Shares of samples with weight 0 from which the weights leave too little to
# learn from (warning) or nothing at all (error).
ZERO_WEIGHTS_WARN = 0.9


def zero_sample_weights(b: BatchFacts) -> list[Verdict]:
    """sample_weight (or class_weight) of 0 for (nearly) every sample: those
    samples add nothing to the loss or its gradient."""
    share = b.zero_weight_share
    if share is None or share < ZERO_WEIGHTS_WARN:
        return []
    every = share >= 1.0
    return [
        verdict(
            "zero-sample-weights",
            "sample_weight",
            f"{'every sample' if every else f'{pct(share)} of the samples'} in the probe "
            f"batches {'has' if every else 'have'} weight 0 (sample_weight or class_weight): "
            + ("the loss is 0 whatever the model predicts, so no step changes anything."
               if every else "the model learns from the few samples left."),
            "Check how the weights are computed (integer division, a mask inverted, a "
            "class_weight of 0): e.g. w = age / len(x), not age // len(x); weights should "
            "average about 1.",
            severity="error" if every else "warning",
            zero_share=share,
        )
    ]


def embedding_out_of_range(facts: ModelFacts) -> list[Verdict]:
    """Ids outside [0, input_dim): on CPU the fit stops with InvalidArgumentError,
    on a GPU the lookup returns zeros, so those tokens carry nothing."""
    merged: dict[str, list[int]] = {}  # layer -> [input_dim, min, max, outside, total]
    for e in facts.embedding_ids:
        m = merged.setdefault(e.layer, [e.input_dim, e.min_id, e.max_id, 0, 0])
        m[1], m[2] = min(m[1], e.min_id), max(m[2], e.max_id)
        m[3] += e.outside
        m[4] += e.total
    found = []
    for layer, (dim, lo, hi, outside, total) in merged.items():
        if not outside:
            continue
        share = outside / total
        found.append(
            verdict(
                "embedding-out-of-range",
                layer,
                f"Embedding '{layer}' has input_dim={dim} (ids 0..{dim - 1}) but receives ids "
                f"from {lo} to {hi}: {pct(share)} of them are outside its table. On CPU the fit "
                "stops with InvalidArgumentError; on a GPU their lookups return zeros, so "
                "those tokens carry nothing.",
                f"Size the table to the vocabulary: Embedding(input_dim={max(hi + 1, dim)}, ...)  "
                "(the largest id + 1; with a tokenizer, its vocabulary size)"
                + ("; map negative ids (padding?) to 0." if lo < 0 else "."),
                input_dim=dim,
                min_id=lo,
                max_id=hi,
                outside_fraction=share,
            )
        )
    return found


def batch_norm_single_sample(facts: ModelFacts, b: BatchFacts | None) -> list[Verdict]:
    """A batch of one: BatchNormalization subtracts the batch mean, i.e. the sample
    itself, so in training every unit outputs its beta whatever the input."""
    if not facts.batch_norm_layers or b is None or not b.batch_sizes or max(b.batch_sizes) != 1:
        return []
    names = facts.batch_norm_layers
    return [
        verdict(
            "batch-norm-single-sample",
            names[0],
            f"the batches hold one sample each and the model has BatchNormalization "
            f"({', '.join(names)}): normalising a batch of one subtracts the sample from "
            "itself, so in training these layers output a constant and the input cannot "
            "reach the output.",
            "Use batches of 16 or more: model.fit(x, y, batch_size=32); for batch size 1 "
            "use keras.layers.LayerNormalization instead.",
            layers=list(names),
        )
    ]


def repeated_batch(b: BatchFacts) -> list[Verdict]:
    # Arrays are sliced by gradscope itself: batches cannot repeat unless rows do.
    if b.kind == "arrays" or b.n_batches < 2 or b.identical_pairs < b.n_batches - 1:
        return []
    return [
        verdict(
            "repeated-batch",
            "data",
            f"the {b.kind} yielded the same batch {b.n_batches} times in a row: the model sees "
            "one batch over and over, not the data set.",
            "Advance through the data in the generator, e.g.\n"
            "    def batches(x, y, bs):\n"
            "        while True:\n"
            "            idx = np.random.permutation(len(x))\n"
            "            for i in range(0, len(x), bs):\n"
            "                j = idx[i:i + bs]\n"
            "                yield x[j], y[j]",
            batches=b.n_batches,
        )
    ]


PURE_BATCH = 0.95


# Batches this small are single-class by chance (a batch of 1 always is).
ORDERED_MIN_BATCH = 8


def ordered_labels(b: BatchFacts, labels: ArrayFacts | None) -> list[Verdict]:
    if len(b.batch_majority) < 2 or min(b.batch_majority) < PURE_BATCH:
        return []
    if b.batch_sizes and min(b.batch_sizes) < ORDERED_MIN_BATCH:
        return []
    distinct = len(set(b.batch_class))
    mixed_overall = labels is not None and labels.majority_fraction < 0.8
    # A generator shows us only its first batches: all one class there is
    # "sorted" far more often than "constant".
    if distinct < 2 and not mixed_overall and b.kind != "generator":
        return []
    return [
        verdict(
            "ordered-labels",
            "data",
            f"each of the first {len(b.batch_majority)} batches is (nearly) a single class "
            f"(classes {', '.join(str(c) for c in b.batch_class)}): the data is sorted by label "
            "and not shuffled, so each step pulls the model towards one class.",
            "Shuffle before batching: model.fit(x, y, shuffle=True), "
            "dataset.shuffle(len(x)).batch(bs), or shuffle the index in your generator.",
            batch_classes=list(b.batch_class),
        )
    ]
