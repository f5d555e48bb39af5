"""Static checks on each output layer against its loss (and the labels' shape):
what the output can produce and what the loss expects of it. Each check
looks at every output (facts.outputs)."""

from __future__ import annotations

from gradscope.checks import kinds
from gradscope.checks.facts import ArrayFacts, OutputFacts
from gradscope.checks.kinds import per_output
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.verdicts import Severity

# Losses that expect probabilities (from_logits=False) or logits (True).
PROBABILITY_LOSSES = kinds.CROSS_ENTROPIES


@check("single-unit-softmax", "error", "cause", "softmax over a single unit", phase="static",
       needs=("outputs",))
@per_output
def single_unit_softmax(out: OutputFacts, facts: Facts) -> list[Finding]:
    if out.activation != "softmax" or out.units != 1:
        return []
    return [
        finding(
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


@check("loss-output-mismatch", "error", "cause", "the loss cannot fit the output layer",
       phase="static", needs=("outputs",))
@per_output
def loss_output_mismatch(out: OutputFacts, facts: Facts) -> list[Finding]:
    found: list[Finding] = []
    labels = out.labels
    if out.loss == kinds.CATEGORICAL and out.units == 1:
        found.append(
            finding(
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
        out.loss == kinds.BINARY
        and out.activation in ("softmax", "sigmoid")
        and out.units is not None
        and out.units > 2
        and labels is not None
        and labels.one_hot
    ):
        found.append(
            finding(
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
    if labels is not None and labels.numeric and labels.finite:
        found += _label_ids_against_units(out, labels)
    if (
        out.loss == kinds.CATEGORICAL
        and labels is not None
        and (labels.one_hot or labels.multi_hot)
        and out.units is not None
        and out.units > 1
        and labels.shape[-1] != out.units
    ):
        found.append(
            finding(
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


def _label_ids_against_units(out: OutputFacts, labels: ArrayFacts) -> list[Finding]:
    """Class ids (one per sample) that need a different number of output units."""
    found: list[Finding] = []
    classes = int(labels.max) + 1  # ids 0..max
    per_class = (f"Dense({classes}, activation='softmax') with "
                 "loss='sparse_categorical_crossentropy'")
    if out.loss == kinds.BINARY and kinds.multiclass_into_binary(out, labels):
        message = (
            f"the labels hold {classes} classes (values {kinds.values_shown(labels)}) but "
            f"'{out.layer}' has 1 unit and the loss is binary cross-entropy "
            f"('{out.loss_display}'), which only knows two classes (0 and 1)."
        )
        found.append(finding(out.layer, message, f"One unit per class: {per_class}", units=1,
                             classes=classes))
    if (
        out.loss == kinds.BINARY
        and out.units is not None
        and out.units >= 2
        and labels.integer_valued
        and kinds.sparse_shaped(labels)
        and labels.min >= 0
        and labels.max <= 1
    ):
        found.append(
            finding(
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
    if out.loss == kinds.SPARSE and kinds.ids_beyond_units(out, labels):
        message = (
            f"'{out.layer}' has {out.units} output unit{'s' if out.units != 1 else ''} but "
            f"the labels hold class ids up to {labels.max:g} ({classes} classes, values "
            f"{kinds.values_shown(labels)}): the output needs one unit per class."
        )
        found.append(finding(out.layer, message, per_class, units=out.units, classes=classes))
    return found


@check("logits-mismatch", "error", "cause", "from_logits does not match the output activation",
       phase="static", needs=("outputs",))
@per_output
def logits_mismatch(out: OutputFacts, facts: Facts) -> list[Finding]:
    if out.loss not in PROBABILITY_LOSSES:
        return []
    if out.from_logits and out.activation in ("softmax", "sigmoid"):
        return [
            finding(
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
            finding(
                out.layer,
                f"'{out.layer}' has a linear output (no activation) but the loss "
                f"'{out.loss_display}' expects probabilities (from_logits=False): raw scores "
                "outside [0, 1] are clipped and their gradients lost.",
                "Tell the loss it gets logits: "
                f"loss=keras.losses.{kinds.loss_class(out.loss)}(from_logits=True)",
                severity="warning",
                activation=out.activation or "linear",
            )
        ]
    return []


@check("output-activation-mismatch", "error", "cause",
       "the output activation cannot produce the targets", phase="static", needs=("outputs",))
@per_output
def output_activation_mismatch(out: OutputFacts, facts: Facts) -> list[Finding]:
    labels = out.labels
    act = out.activation
    found: list[Finding] = []

    def add(message: str, fix: str, severity: Severity = "error") -> None:
        found.append(finding(out.layer, message, fix, severity=severity, activation=act))

    if kinds.is_classification(out) and act == "relu":
        add(
            f"'{out.layer}' ends a classifier with ReLU: negative scores are cut to 0 with zero "
            "gradient, so classes can get stuck at 0 and never recover.",
            "Use softmax (one unit per class) or sigmoid (one unit, two classes), or no "
            "activation with from_logits=True in the loss.",
        )
    elif kinds.is_classification(out) and act == "tanh":
        add(
            f"'{out.layer}' feeds tanh outputs (range -1..1) to cross-entropy, which expects "
            "probabilities in [0, 1].",
            "Use sigmoid or softmax on the output layer.",
        )
    if labels is None or not labels.numeric or not labels.finite:
        return found
    if act in ("softmax",) and labels.multi_hot and out.loss in (kinds.CATEGORICAL, kinds.BINARY):
        add(
            f"the targets are multi-label (rows of {labels.shape[-1]} with several 1s) but "
            f"'{out.layer}' uses softmax, which makes the classes compete for one unit of "
            "probability.",
            f"For multi-label targets: Dense({labels.shape[-1]}, activation='sigmoid') with "
            "loss='binary_crossentropy'.",
        )
    if out.loss in kinds.REGRESSION_LOSSES and not _looks_like_classes(out, labels):
        if act in ("sigmoid", "softmax") and (
            labels.min < -kinds.UNIT_TOL or labels.max > 1 + kinds.UNIT_TOL
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
