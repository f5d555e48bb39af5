"""What several dynamic checks (and the dynamic suppressions) read off the probe
and the experiments: one definition each, so that two checks that speak of
"the best rate" or "a gradient gone NaN" mean the same thing. Numpy only."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from gradscope.checks.facts import ExperimentFacts, ProbeFacts

if TYPE_CHECKING:
    from gradscope.checks.registry import Facts

# The tiny-subset accuracy a model that learns reaches (or gains) in the
# overfit run: 32 samples are memorised, so 90 % is easily reached, and a
# 30-point rise from the start is learning whatever the classes' shares.
ACC_REACHED = 0.9
ACC_RISE = 0.3
# Held-back accuracy this far above the majority share shows a model learning
# from the inputs (predicting the majority scores exactly that share): at least
# 10 points, and at least 3 standard deviations of an accuracy measured on the
# held-back rows (sqrt(m (1 - m) / n): 0.094 for 256 balanced rows).
HELDOUT_LEARNED = 0.1
HELDOUT_SIGMAS = 3.0


def probe_of(facts: Facts) -> ProbeFacts:
    """The probe a check declared it needs (needs=("probe",): the registry runs
    it only when there is one)."""
    assert facts.probe is not None, "a check reading the probe must declare needs=('probe',)"
    return facts.probe


def experiments_of(facts: Facts) -> ExperimentFacts:
    """The experiments a check declared it needs (needs=(..., "experiments"))."""
    assert facts.experiments is not None, "declare needs=('experiments',)"
    return facts.experiments


def median_over_steps(grid: np.ndarray) -> np.ndarray:
    """Per layer, the median over the probe steps of a [steps, layers] figure,
    ignoring NaN (a layer where the figure does not apply stays NaN, silently)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(grid, axis=0) if grid.size else np.zeros(0)


def over_probe_steps(steps: int) -> str:
    """Where a verdict's per-layer figures come from, in words (its evidence
    says so: the UI's table shows one step's figures, not the median)."""
    return "median over probe step 1" if steps <= 1 else f"median over probe steps 1-{steps}"


def nan_median(values: np.ndarray) -> float:
    """The median of `values` ignoring NaN (NaN when all are; without the
    all-NaN warning, which a loss that went NaN would otherwise print)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmedian(values))


def bad_gradients(p: ProbeFacts) -> np.ndarray:
    """[steps, layers] True where a layer with weights got a NaN/Inf gradient norm
    (a NaN norm on a layer without weights only means "does not apply")."""
    has_weights = ~np.isnan(p.weight_norm)
    return np.isinf(p.grad_norm) | (np.isnan(p.grad_norm) & has_weights)


def zero_weight_layers(p: ProbeFacts) -> list[int]:
    """Hidden layers whose weights were all exactly zero at the first probe step.

    Zeros hurt only where units must tell themselves apart (hidden layers): a
    zero-initialised output layer, as in logistic regression, trains fine."""
    if p.weight_norm.size == 0:
        return []
    weighted = [i for i in range(len(p.layers)) if not np.isnan(p.weight_norm[0, i])]
    last = weighted[-1] if weighted else -1
    return [
        int(i)
        for i in np.where(p.weight_norm[0] == 0.0)[0]
        if i != last and p.layers[i] not in p.output_layers
    ]


def best_lr(e: ExperimentFacts) -> tuple[float, float] | None:
    """The sweep's rate with the lowest finite loss, and that loss."""
    finite = [pt for pt in e.sweep if math.isfinite(pt.loss)]
    if not finite:
        return None
    best = min(finite, key=lambda pt: pt.loss)
    return best.lr, best.loss


def sweep_loss(e: ExperimentFacts, lr: float) -> float | None:
    """The sweep's loss at exactly `lr` (None: the sweep did not try it)."""
    for pt in e.sweep:
        if pt.lr == lr:
            return pt.loss
    return None


def nonfinite_in_experiments(e: ExperimentFacts) -> tuple[str, tuple[float, ...]] | None:
    """Where a clone trained at the user's own learning rate went NaN/Inf after
    the probe steps: the tiny subset, the sweep's run at the user's rate, or the
    replay of the user's budget (each is evidence on its own: which 32 samples
    the subset holds decides whether a log(0) is hit there)."""
    if e.overfit_steps and not math.isfinite(e.overfit_loss_end):
        return f"while a clone trained on {e.overfit_samples} samples", e.overfit_curve
    user = sweep_loss(e, e.user_lr) if e.user_lr is not None else None
    if user is not None and not math.isfinite(user):
        return (
            f"within {e.sweep_steps} steps at your learning rate ({e.user_lr:g}) on the probe "
            "batches", tuple(pt.loss for pt in e.sweep if pt.lr == e.user_lr),
        )
    if e.budget_curve and not all(math.isfinite(c) for c in e.budget_curve):
        return (
            f"while a clone replayed your budget of {e.budget_steps} steps", e.budget_curve,
        )
    return None


def accuracy_rose(e: ExperimentFacts) -> bool:
    """The tiny-subset accuracy shows learning (ACC_REACHED, or ACC_RISE gained)."""
    return (
        e.overfit_acc_end is not None
        and e.overfit_acc_start is not None
        and (e.overfit_acc_end >= ACC_REACHED or e.overfit_acc_end - e.overfit_acc_start >= ACC_RISE)
    )


def learns_held_back(e: ExperimentFacts) -> bool:
    """The held-back experiment shows the model learning from the inputs: its
    accuracy on rows it never trained on is clearly above the majority share.
    (A tiny subset trained as one fixed batch can fail to show it: with inputs
    of order 1e-3 the bias takes the subset's majority class long before the
    weights grow enough to matter, while mini-batches of a balanced part leave
    the bias alone and the weights decide.)"""
    if not e.heldout_steps or e.heldout_acc is None or e.heldout_majority is None:
        return False
    m, n = e.heldout_majority, max(1, e.heldout_samples)
    margin = max(HELDOUT_LEARNED, HELDOUT_SIGMAS * math.sqrt(m * (1 - m) / n))
    return e.heldout_acc >= m + margin
