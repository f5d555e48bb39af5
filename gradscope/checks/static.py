"""Static checks: model, compile config and a data sample, before any step."""

from __future__ import annotations

from gradscope.checks.catalogue import verdict
from gradscope.checks.facts import ArrayFacts, ModelFacts, OutputFacts
from gradscope.verdicts import Verdict

CATEGORICAL = "categorical_crossentropy"
SPARSE = "sparse_categorical_crossentropy"
BINARY = "binary_crossentropy"
CROSS_ENTROPIES = (CATEGORICAL, SPARSE, BINARY)


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


def loss_label_mismatch(out: OutputFacts) -> list[Verdict]:
    labels = out.labels
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
        out.loss == CATEGORICAL
        and _sparse_shaped(labels)
        and labels.integer_valued
        and out.units is not None
        and out.units > 1
    ):
        found.append(
            verdict(
                "loss-label-mismatch",
                "labels",
                f"the labels are integer class ids (shape {labels.shape}, values "
                f"{_values(labels)}) but the loss is categorical cross-entropy "
                f"('{out.loss_display}'), which expects one-hot rows of length {out.units}.",
                "Use loss='sparse_categorical_crossentropy' with integer labels, or one-hot "
                f"encode them: y = keras.utils.to_categorical(y, {out.units})",
                labels_shape=labels.shape,
                values=list(labels.unique[:8]),
            )
        )
    elif out.loss == SPARSE and out.units is not None and _sparse_shaped(labels):
        if labels.integer_valued and (labels.min < 0 or labels.max >= out.units):
            found.append(
                verdict(
                    "loss-label-mismatch",
                    "labels",
                    f"class ids run from {labels.min:g} to {labels.max:g} but '{out.layer}' has "
                    f"{out.units} units, so only ids 0..{out.units - 1} are valid.",
                    f"Give the output layer one unit per class: Dense({int(labels.max) + 1}, "
                    "activation='softmax'), or re-map the labels to 0..C-1 "
                    "(e.g. y = y - y.min()).",
                    min=labels.min,
                    max=labels.max,
                    units=out.units,
                )
            )
    if out.loss == BINARY and (labels.min < 0 or labels.max > 1):
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


def run_static(facts: ModelFacts) -> list[Verdict]:
    found: list[Verdict] = []
    found += frozen(facts)
    for out in facts.outputs:
        found += single_unit_softmax(out)
        found += loss_output_mismatch(out)
        found += loss_label_mismatch(out)
    return found
