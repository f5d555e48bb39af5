"""Severity of one layer's metric value, on the thresholds of docs/checks.md.

The UI colours a value (a table cell, the layer screen's latest/min/max) by
the severity the checks would give that value on its own: `severity(metric,
value)` is "error", "warning" or None (nothing to say, or the metric has no
per-layer threshold). The thresholds are the checks' own named constants,
imported from `gradscope/checks/*.py` (numpy only, never TensorFlow), so a
threshold changed there changes the colours here.

The checks judge medians over the probe steps and combine several facts (the
sweep, the loss); a cell shows one value. So a colour says "this value is past
the check's threshold", not "the check fired": the verdicts say that.

Per metric, with each threshold's source:

- `grad_norm` (a layer's gradient L2 norm):
  - NaN or Inf: **error** (`nonfinite-loss`, no threshold);
  - `>= EXPLODE_ERROR` (1e8, `checks/gradients.py`): **error** (`exploding-gradient`
    fires when the *global* norm reaches it; one layer's norm that large makes
    the global one at least as large);
  - exactly 0: **warning** (`zero-gradient` rule 3: a layer whose gradient is
    exactly 0 is a warning, an error only when every layer's is);
  - `< ALL_ZERO` (1e-7, `checks/gradients.py`, SageMaker Debugger's
    VanishingGradient threshold): **warning** (`vanishing-gradient` makes it an
    error only when even the largest layer's norm is that small).
- `update_ratio` (||dW|| / ||W|| per step):
  - NaN or Inf: **error** (the weights went non-finite);
  - `>= UPDATE_HIGH` (1e-1, `checks/optimizer.py`, TheDeepChecker's healthy
    band's top): **warning** (`lr-too-high` also needs divergence or the sweep);
  - `<= UPDATE_LOW` (1e-6, `checks/optimizer.py`): **warning** (`lr-too-low` also
    needs a flat loss or the sweep).
- `act_dead_frac` (share of units that output 0 for every sample):
  `>= 1.0`: **error**, `>= DEAD` (0.5, `checks/activations.py`, SageMaker
  Debugger's DeadRelu rule): **warning** (`dead-relu`).
- `act_saturated_frac` (share of sigmoid/tanh outputs in the flat tails):
  `>= SATURATED` (0.5, `checks/activations.py`, SageMaker Debugger's
  SaturatedActivation rule): **warning** (`saturated-activation` is never an error).
- `act_mean`, `act_std`: NaN or Inf: **error** (`nonfinite-loss` names the first
  layer whose activations went non-finite).
- `weight_norm` and any other metric: no threshold (None).
"""

from __future__ import annotations

import math
from typing import Literal

from gradscope.checks.activations import DEAD, SATURATED
from gradscope.checks.gradients import ALL_ZERO, EXPLODE_ERROR
from gradscope.checks.optimizer import UPDATE_HIGH, UPDATE_LOW

Level = Literal["error", "warning"]

ALL_DEAD = 1.0  # dead-relu: "error at 1.0" (docs/checks.md)

_NONFINITE_IS_ERROR = frozenset({"grad_norm", "update_ratio", "act_mean", "act_std"})


def severity(metric: str, value: float | None) -> Level | None:
    """"error", "warning" or None for one value of a layer's metric (None: no
    value, nothing wrong, or no per-layer threshold for that metric)."""
    if value is None:
        return None
    if not math.isfinite(value):
        return "error" if metric in _NONFINITE_IS_ERROR else None
    if metric == "grad_norm":
        if value >= EXPLODE_ERROR:
            return "error"
        if value < ALL_ZERO:  # exactly 0 included: zero-gradient's per-layer warning
            return "warning"
        return None
    if metric == "update_ratio":
        if value >= UPDATE_HIGH or value <= UPDATE_LOW:
            return "warning"
        return None
    if metric == "act_dead_frac":
        if value >= ALL_DEAD:
            return "error"
        return "warning" if value >= DEAD else None
    if metric == "act_saturated_frac":
        return "warning" if value >= SATURATED else None
    return None
