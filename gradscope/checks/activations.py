"""Activation checks, from the probe steps' taps: ReLU units that never fire,
sigmoid/tanh units stuck in their flat tails. Registered in report order."""

from __future__ import annotations

import math

import numpy as np

from gradscope.checks.measures import (
    median_over_steps,
    over_probe_steps,
    probe_of,
    zero_weight_layers,
)
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.checks.wording import share as pct

# Share of a ReLU layer's units that output 0 for every sample in every probe
# batch (the least over the steps): SageMaker Debugger's DeadRelu rule flags a
# layer at 50 %. A whole dead layer (1.0) is an error: nothing passes it.
DEAD = 0.5
# Share of a hidden sigmoid/tanh layer's outputs in the flat tails (derivative
# under 4 % of its peak), median over the probe steps: SageMaker Debugger's
# SaturatedActivation rule flags a layer at 50 %.
SATURATED = 0.5


@check("dead-relu", "warning", "cause", "ReLU units output 0 for every sample",
       phase="dynamic", needs=("probe",))
def dead_relu(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    found: list[Finding] = []
    if p.dead.size == 0:
        return found
    # Units behind all-zero weights are "dead" only as a consequence: zero-gradient
    # names that cause.
    zeroed = set(zero_weight_layers(p))
    with np.errstate(all="ignore"):
        least = np.nanmin(np.where(np.isnan(p.dead), np.inf, p.dead), axis=0)
    for i, name in enumerate(p.layers):
        share = float(least[i])
        if i in zeroed or not math.isfinite(share) or share < DEAD:
            continue
        whole = share >= 1.0
        found.append(
            finding(
                name,
                f"{pct(share)} of the ReLU units in '{name}' output 0 for every sample in every "
                "probe batch: they get no gradient and cannot recover"
                + (" - the whole layer is dead." if whole else "."),
                "Lower the learning rate, use He initialisation, check the input scale, or use "
                "a leaky variant: Dense(n, activation='leaky_relu', kernel_initializer='he_normal')",
                severity="error" if whole else "warning",
                dead_fraction=share,
            )
        )
    return found


@check("saturated-activation", "warning", "cause", "sigmoid/tanh outputs sit in the flat tails",
       phase="dynamic", needs=("probe",))
def saturated_activation(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    found: list[Finding] = []
    med = median_over_steps(p.saturated)
    for i, name in enumerate(p.layers):
        # (An output layer's sigmoid is meant to reach its tails: confident
        # predictions of 0/1 labels.)
        if p.activations[i] not in ("sigmoid", "tanh") or name in p.output_layers:
            continue
        share = float(med[i]) if med.size else float("nan")
        if not math.isfinite(share) or share < SATURATED:
            continue
        found.append(
            finding(
                name,
                f"{pct(share)} of the {p.activations[i]} outputs of '{name}' sit in the flat "
                "tails, where the derivative is under 4 % of its peak: gradients through it "
                "nearly vanish.",
                "Scale the inputs to unit range, use Glorot initialisation, or switch hidden "
                "layers to ReLU: Dense(n, activation='relu')",
                saturated_fraction=share,
                figures=over_probe_steps(p.saturated.shape[0]),
            )
        )
    return found
