"""unnormalized-input: the scale of what the first weighted layer receives.

A module of its own because it runs after every other static check (the
registry runs checks in the order they are registered, and checks/static.py
imports this module last): its verdict is a warning-level cause, and among
warnings of equal rank the label- and loss-side ones have always been read
first."""

from __future__ import annotations

import math

from gradscope.checks.facts import ArrayFacts, ModelFacts
from gradscope.checks.kinds import input_label
from gradscope.checks.registry import Facts, Finding, check, finding

# Input scale (docs/checks.md): raw pixels (0-255) and unscaled tabular columns
# (incomes, areas) are the usual offenders; |x| up to ~20 (e.g. digits 0-16)
# trains fine with the default initialisers.
INPUT_ABSMAX = 100.0
# Inputs no larger than this (pixels divided by 255 twice: at most 0.004) give
# the first layer a gradient that much smaller than its weights need.
INPUT_TINY = 0.01
# Features whose RMS differ by this factor: the large columns dominate the
# first layer's pre-activations (and its gradient) at initialisation ...
FEATURE_RATIO = 1e3
# ... provided the largest of them is itself past ~10: a ratio among features
# all within unit scale (a near-zero column next to standardised ones) is harmless.
FEATURE_RATIO_MIN_ABSMAX = 10

# First layers that take ids or normalise their input themselves.
_SELF_SCALING = (
    "Embedding", "BatchNormalization", "LayerNormalization", "Normalization",
    "GroupNormalization", "UnitNormalization", "CategoryEncoding", "Hashing",
)


def _source_of(facts: ModelFacts, inp: ArrayFacts) -> int | None:
    """Which raw input the first layer's values come from: the one reaching the
    same largest |x| (a concatenation of named inputs reaches its largest
    member's); None when none does (the values were transformed on the way)."""
    for i, raw in enumerate(facts.inputs):
        if raw.numeric and raw.finite and math.isclose(raw.absmax, inp.absmax, rel_tol=1e-5):
            return i
    return None


def _judged(facts: ModelFacts) -> list[tuple[ArrayFacts, str, str, str]]:
    """What is judged: (its facts, its name in messages, what differs in scale,
    the input's name). What the first weighted layer receives when known: a
    Rescaling layer or an `x / 255` inside call() has already fixed raw pixels."""
    names = facts.input_names if len(facts.input_names) == len(facts.inputs) else ()
    if facts.first_layer_input is None:
        return [(inp, input_label(facts, i), f"the features of {input_label(facts, i)}",
                 names[i] if names else "") for i, inp in enumerate(facts.inputs)]
    inp = facts.first_layer_input
    layer = facts.first_layer_name or facts.first_layer_type
    source = _source_of(facts, inp) if len(facts.inputs) > 1 else None
    if len(facts.inputs) <= 1:
        label = "the input"
    elif source is not None:
        label = input_label(facts, source)
    else:
        label = f"what '{layer}' receives"
    # Several inputs reach the first layer together (concatenated): their
    # features are compared with each other, not within one input.
    features = (
        f"the features '{layer}' receives" + (f" (largest in {label})" if source is not None else "")
        if len(facts.inputs) > 1 else "the features of the input"
    )
    return [(inp, label, features, names[source] if names and source is not None else "")]


@check("unnormalized-input", "warning", "cause", "inputs far from unit scale",
       phase="static", needs=("model",))
def unnormalized_input(facts: Facts) -> list[Finding]:
    model = facts.model
    if model.first_layer_type in _SELF_SCALING:
        return []
    found: list[Finding] = []
    for inp, label, features, name in _judged(model):
        if not inp.numeric or not inp.finite or inp.absmax == 0.0:
            continue
        where = {"input": name} if name else {}
        if inp.absmax >= INPUT_ABSMAX:
            found.append(
                finding(
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
                finding(
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
        elif inp.feature_scale_ratio >= FEATURE_RATIO and inp.absmax >= FEATURE_RATIO_MIN_ABSMAX:
            found.append(
                finding(
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
