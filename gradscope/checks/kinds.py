"""What the static checks share: the loss kinds they tell apart and the few
readings of facts that more than one family makes (how labels are shaped,
how messages quote values and name inputs). No checks live here."""

from __future__ import annotations

import functools
from collections.abc import Callable

from gradscope.checks.facts import ArrayFacts, ModelFacts, OutputFacts
from gradscope.checks.registry import CheckFn, Facts, Finding

# Canonical loss kinds (engine.facts.canonical_loss names them).
CATEGORICAL = "categorical_crossentropy"
SPARSE = "sparse_categorical_crossentropy"
BINARY = "binary_crossentropy"
CROSS_ENTROPIES = (CATEGORICAL, SPARSE, BINARY)
REGRESSION_LOSSES = ("mse", "mae", "huber", "logcosh", "msle", "mape")

# MinMaxScaler and friends overshoot [0, 1] by rounding: labels within this of
# 0 and 1 still count as in [0, 1].
UNIT_TOL = 1e-6

# Label sets with up to this many distinct integers are read as class ids
# (the same bound as facts.MAX_UNIQUE: beyond it the values are not counted).
MAX_CLASSES = 50


def per_output(judge: Callable[[OutputFacts, Facts], list[Finding]]) -> CheckFn:
    """A check of every output from `judge`, which reads one output (and the
    rest of the facts: the batches, say): its findings, output after output.

        @check("single-unit-softmax", ..., needs=("outputs",))
        @per_output
        def single_unit_softmax(out: OutputFacts, facts: Facts) -> list[Finding]: ...
    """

    @functools.wraps(judge)
    def each_output(facts: Facts) -> list[Finding]:
        return [f for out in facts.outputs for f in judge(out, facts)]

    return each_output


def is_classification(out: OutputFacts) -> bool:
    return out.loss in CROSS_ENTROPIES


def values_shown(labels: ArrayFacts, limit: int = 8) -> str:
    """The label values as messages quote them: '{0, 1, 2, ...}'."""
    shown = ", ".join(f"{v:g}" for v in labels.unique[:limit])
    more = ", ..." if labels.n_unique > limit else ""
    return "{" + shown + more + "}"


def sparse_shaped(labels: ArrayFacts) -> bool:
    """One value per sample: shape (n,) or (n, 1)."""
    return len(labels.shape) == 1 or (len(labels.shape) >= 2 and labels.shape[-1] == 1)


def multiclass_into_binary(out: OutputFacts, labels: ArrayFacts) -> bool:
    """Integer class ids 0..C-1 (C > 2) fed to binary cross-entropy on one unit
    (loss-output-mismatch reports it; loss-label-mismatch then stays quiet)."""
    return (
        out.units == 1
        and labels.integer_valued
        and sparse_shaped(labels)
        and labels.min >= 0
        and labels.max >= 2
        and labels.n_unique <= MAX_CLASSES
    )


def ids_beyond_units(out: OutputFacts, labels: ArrayFacts) -> bool:
    """Sparse class ids 0..C-1 with C larger than the output's units, and not
    one-based ids 1..units: the output layer is too small (loss-output-mismatch
    reports it; loss-label-mismatch then stays quiet)."""
    return (
        out.units is not None
        and labels.integer_valued
        and sparse_shaped(labels)
        and labels.min >= 0
        and labels.max >= out.units
        and not (labels.min == 1 and labels.max == out.units)
    )


def loss_class(kind: str | None) -> str:
    """The keras.losses class a fix names for a cross-entropy kind."""
    return {
        CATEGORICAL: "CategoricalCrossentropy",
        SPARSE: "SparseCategoricalCrossentropy",
        BINARY: "BinaryCrossentropy",
    }.get(kind or "", "CategoricalCrossentropy")


def input_label(facts: ModelFacts, i: int) -> str:
    """How messages name raw input i: by its dict key or Input name, as "the
    input" when it is the only one, else by position."""
    names = facts.input_names if len(facts.input_names) == len(facts.inputs) else ()
    if names and names[i]:
        return f"input '{names[i]}'"
    return "the input" if len(facts.inputs) == 1 else f"input {i}"
