"""Every dynamic check on hand-built facts (numpy only, no TensorFlow): each
fires just past its threshold and stays quiet just short of it, run alone
through the registry and through run_dynamic; then the dynamic suppressions
(checks/arbitration.py) that order and filter what run_dynamic returns.

The builders start from a healthy model (a ReLU hidden layer and a softmax
output over 10 classes, trained by Adam(1e-3), whose experiments all show it
learning) and each case changes only what its check reads."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from gradscope.checks import gradients, optimizer, symptoms
from gradscope.checks.dynamic import dynamic_checks, run_dynamic
from gradscope.checks.facts import ExperimentFacts, ModelFacts, OutputFacts, ProbeFacts, SweepPoint
from gradscope.checks.registry import REGISTRY, Facts
from gradscope.verdicts import Verdict

NAN, INF = float("nan"), float("inf")
USER_LR = 1e-3
TASK = (True, 10, "sparse_categorical_crossentropy")  # run_dynamic's view of the model below

# ------------------------------------------------------------------ builders


def probe(*, layers: Sequence[str] = ("hidden", "out"), types: Sequence[str] | None = None,
          activations: Sequence[str | None] | None = None, steps: int = 3,
          losses: Sequence[float] | None = None, grad_norm: Any = 0.1, weight_norm: Any = 1.0,
          update_ratio: Any = 1e-3, saturated: Any = 0.0, dead: Any = 0.0,
          act_finite: Any = True, data_losses: Sequence[float] | None = None,
          reg_losses: Sequence[float] | None = None, disconnected: Sequence[str] = (),
          output_layers: Sequence[str] = ("out",)) -> ProbeFacts:
    """Probe facts; a per-layer figure is a scalar (every step and layer), a row
    (per layer) or a [steps, layers] grid."""
    n = len(layers)

    def grid(value: Any, dtype: type = float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (steps, n)).copy()

    default_acts: list[str | None] = ["relu"] * (n - 1) + ["softmax"]
    return ProbeFacts(
        layers=tuple(layers),
        layer_types=tuple(types or ["Dense"] * n),
        activations=tuple(activations or default_acts),
        losses=np.asarray(losses if losses is not None else [2.3 - 0.1 * i for i in range(steps)],
                          dtype=float),
        grad_norm=grid(grad_norm),
        weight_norm=grid(weight_norm),
        update_ratio=grid(update_ratio),
        act_mean=grid(0.5),
        act_finite=grid(act_finite, bool),
        saturated=grid(saturated),
        dead=grid(dead),
        data_losses=None if data_losses is None else np.asarray(data_losses, dtype=float),
        reg_losses=None if reg_losses is None else np.asarray(reg_losses, dtype=float),
        disconnected=tuple(disconnected),
        output_layers=tuple(output_layers),
    )


def sweep(losses: dict[float, float]) -> tuple[SweepPoint, ...]:
    return tuple(SweepPoint(lr, loss) for lr, loss in sorted(losses.items()))


# The sweep of a model whose rate is right: the user's rate does best.
HEALTHY_SWEEP = sweep({1e-4: 2.0, 1e-3: 0.5, 1e-2: 1.0})


def experiments(**kw: Any) -> ExperimentFacts:
    """Experiment facts of a model that learns; keywords override."""
    base: dict[str, Any] = dict(
        init_loss=2.3, loss_after_probe=2.2, pred_change=0.1, pred_scale=0.5,
        pred_spread_after=0.2, n_units=10, probability_output=True,
        overfit_steps=150, overfit_samples=32, overfit_loss_start=2.3, overfit_loss_end=0.1,
        overfit_curve=(2.3, 1.5, 0.8, 0.4, 0.2, 0.1), overfit_acc_start=0.1, overfit_acc_end=1.0,
        overfit_majority=0.15, overfit_spread_end=0.3,
        sweep=HEALTHY_SWEEP, sweep_steps=20, user_lr=USER_LR,
        heldout_steps=200, heldout_samples=256, heldout_train_acc=0.95, heldout_acc_start=0.1,
        heldout_acc=0.9, heldout_majority=0.13, eval_majority=0.13,
    )
    base.update(kw)
    return ExperimentFacts(**base)


MODEL = ModelFacts(
    name="mlp", total_params=2410, trainable_params=2410, weighted_layers=("hidden", "out"),
    frozen_layers=(),
    outputs=(OutputFacts(name="out", layer="out", units=10, activation="softmax",
                         loss="sparse_categorical_crossentropy",
                         loss_display="sparse_categorical_crossentropy", from_logits=False,
                         labels=None),),
)


def facts(p: ProbeFacts | None = None, e: ExperimentFacts | None = None) -> Facts:
    return Facts(model=MODEL, probe=p if p is not None else probe(),
                 experiments=e if e is not None else experiments())


def ids(found: Sequence[Verdict]) -> list[str]:
    return [v.check for v in found]


def test_the_healthy_defaults_get_no_verdict() -> None:
    assert run_dynamic(probe(), experiments(), *TASK) == []
    assert [c.id for c in dynamic_checks() if c.run(facts())] == []


# ------------------------------------------------------------------ the table
#
# pytest.param(check id, probe, experiments, expected) with expected either
# None (quiet) or (severity, evidence key, evidence value).

Expect = tuple[str, str, Any] | None


def case(check: str, p: ProbeFacts | None = None, e: ExperimentFacts | None = None,
         expect: Expect = None, *, id: str) -> Any:
    return pytest.param(check, p, e, expect, id=f"{check}: {id}")


def ratio_grid(first: float, last: float = 1.0) -> list[float]:
    return [first, last]


# A sweep in which 10x below the user's rate does better than at it (loss 2.0):
# by 10.5 % (lower, not strongly), 20.5 % (strongly) or exactly 20 % (not strongly).
SWEEP_LOWER = sweep({1e-4: 1.79, 1e-3: 2.0, 1e-2: 3.0})
SWEEP_STRONGLY_LOWER = sweep({1e-4: 1.59, 1e-3: 2.0, 1e-2: 3.0})
SWEEP_JUST_NOT_STRONGLY = sweep({1e-4: 1.6, 1e-3: 2.0, 1e-2: 3.0})
# 100x above the user's rate beats it by more (1.769) or less (1.771) than
# 0.1 x the initial loss 2.3 below the 2.0 at the user's rate.
SWEEP_HIGHER = sweep({1e-3: 2.0, 1e-1: 1.769})
SWEEP_NOT_HIGHER = sweep({1e-3: 2.0, 1e-1: 1.771})
DIVERGES = dict(overfit_loss_start=2.0, overfit_loss_end=2.0 * optimizer.DIVERGED * 1.01)
SETTLES = dict(overfit_loss_start=2.0, overfit_loss_end=2.0 * optimizer.DIVERGED)
FLAT_OVERFIT = dict(overfit_loss_start=2.0, overfit_loss_end=2.0, overfit_curve=(2.0,) * 6)
# Accuracy on the tiny subset that neither reaches 0.9 nor rises by 0.3, and
# held-back accuracy at the majority share: no experiment shows learning.
NO_ACC_RISE = dict(overfit_acc_start=0.1, overfit_acc_end=0.35, heldout_acc=0.13,
                   heldout_acc_start=0.13, heldout_train_acc=0.15)


def held_back(acc: float, samples: int = 256) -> dict[str, Any]:
    """A held-back part of balanced classes on which the clone reached `acc`."""
    return dict(heldout_majority=0.5, heldout_acc=acc, heldout_acc_start=0.5,
                heldout_train_acc=acc, heldout_samples=samples)
FALLING_BUDGET = (2.0, 1.5, 1.2, 0.97, 0.9)  # last drop 0.07 >= 0.25 x mean drop 0.275
LEVELLING_BUDGET = (2.0, 1.5, 1.2, 0.968, 0.9)  # last drop 0.068 < 0.06875

CASES = [
    # -- gradients
    case("nonfinite-loss", probe(losses=[2.3, NAN, NAN]), None, ("error", "step", 2),
         id="NaN loss at step 2"),
    case("nonfinite-loss", probe(grad_norm=[[0.1, 0.1], [0.1, INF], [0.1, 0.1]]), None,
         ("error", "layer", "out"), id="Inf gradient in a layer"),
    case("nonfinite-loss", probe(losses=[2.3, 3e38, 2.0]), None, None, id="huge but finite"),
    case("nonfinite-loss", probe(grad_norm=[NAN, 0.1], weight_norm=[NAN, 1.0]), None, None,
         id="NaN norm on a layer without weights"),
    case("nonfinite-loss", None, experiments(overfit_loss_end=INF, overfit_curve=(2.3, INF)),
         ("error", "curve", [2.3, INF]), id="the tiny subset goes Inf later"),
    case("nonfinite-loss", None, experiments(sweep=sweep({1e-4: 2.0, USER_LR: NAN})),
         ("error", "curve", [NAN]), id="the sweep at the user's rate goes NaN"),
    case("exploding-gradient", probe(layers=["out"], grad_norm=gradients.EXPLODE_ERROR), None,
         ("error", "from_start", True), id="norm at EXPLODE_ERROR"),
    case("exploding-gradient", probe(layers=["out"], grad_norm=0.99 * gradients.EXPLODE_ERROR),
         None, None, id="norm just under EXPLODE_ERROR"),
    case("exploding-gradient", probe(layers=["out"], grad_norm=[[1.0], [10.0], [100.0]]), None,
         ("error", "norms", [1.0, 10.0, 100.0]), id="grows 100x over the steps"),
    case("exploding-gradient", probe(layers=["out"], grad_norm=[[1.0], [10.0], [99.0]]), None,
         None, id="grows 99x"),
    case("exploding-gradient", probe(layers=["out"], grad_norm=[[1.0], [200.0], [100.0]]), None,
         None, id="grows 100x but not monotonically"),
    case("zero-gradient", probe(grad_norm=[0.0, 0.1]), None, ("warning", "layers", ["hidden"]),
         id="one layer zero at every step"),
    case("zero-gradient", probe(grad_norm=0.0), None, ("error", "layers", ["hidden", "out"]),
         id="every layer zero"),
    case("zero-gradient", probe(grad_norm=[[0.0, 0.1], [0.0, 0.1], [1e-30, 0.1]]), None, None,
         id="zero at all steps but one"),
    case("zero-gradient", probe(weight_norm=[[0.0, 1.0], [0.1, 1.0], [0.2, 1.0]]), None,
         ("error", "layers", ["hidden"]), id="hidden weights start at 0"),
    case("zero-gradient", probe(weight_norm=[[1.0, 0.0], [1.0, 0.1], [1.0, 0.2]]), None, None,
         id="output weights start at 0 (logistic regression)"),
    case("zero-gradient", probe(disconnected=["hidden/kernel"]), None,
         ("warning", "variables", ["hidden/kernel"]), id="a variable without gradient"),
    case("zero-gradient", probe(disconnected=["hidden/kernel", "out/kernel"]), None,
         ("error", "variables", ["hidden/kernel", "out/kernel"]),
         id="no variable on the loss's path"),
    case("vanishing-gradient", probe(grad_norm=ratio_grid(0.99 * gradients.VANISH_WARN)), None,
         ("warning", "ratio", 0.99 * gradients.VANISH_WARN), id="ratio just under VANISH_WARN"),
    case("vanishing-gradient", probe(grad_norm=ratio_grid(gradients.VANISH_WARN)), None, None,
         id="ratio at VANISH_WARN"),
    case("vanishing-gradient", probe(grad_norm=ratio_grid(0.99 * gradients.VANISH_ERROR)), None,
         ("error", "ratio", 0.99 * gradients.VANISH_ERROR), id="ratio just under VANISH_ERROR"),
    case("vanishing-gradient", probe(grad_norm=ratio_grid(gradients.VANISH_ERROR)), None,
         ("warning", "ratio", gradients.VANISH_ERROR), id="ratio at VANISH_ERROR is a warning"),
    case("vanishing-gradient", probe(grad_norm=ratio_grid(1e-9), types=["Embedding", "Dense"]),
         None, None, id="an Embedding's small gradient"),
    case("vanishing-gradient", probe(grad_norm=0.99 * gradients.ALL_ZERO), None,
         ("error", "largest", 0.99 * gradients.ALL_ZERO), id="every norm under ALL_ZERO"),
    case("vanishing-gradient", probe(grad_norm=gradients.ALL_ZERO), None, None,
         id="every norm at ALL_ZERO"),
    case("vanishing-gradient", probe(grad_norm=1e-9, losses=[gradients.LOSS_LEFT] * 3), None,
         None, id="tiny norms on a loss already at LOSS_LEFT"),
    # -- activations
    case("dead-relu", probe(dead=[0.5, NAN]), None, ("warning", "dead_fraction", 0.5),
         id="half the units dead"),
    case("dead-relu", probe(dead=[[0.6, NAN], [0.49, NAN], [0.6, NAN]]), None, None,
         id="under half at one step"),
    case("dead-relu", probe(dead=[1.0, NAN]), None, ("error", "dead_fraction", 1.0),
         id="the whole layer dead"),
    case("dead-relu", probe(dead=[1.0, NAN], weight_norm=[[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]),
         None, None, id="dead behind zero weights (zero-gradient's)"),
    case("saturated-activation", probe(activations=["sigmoid", "softmax"], saturated=[0.5, 0.0]),
         None, ("warning", "saturated_fraction", 0.5), id="half in the tails"),
    case("saturated-activation", probe(activations=["tanh", "softmax"], saturated=[0.49, 0.0]),
         None, None, id="just under half"),
    case("saturated-activation", probe(activations=["relu", "sigmoid"], saturated=[0.0, 0.9]),
         None, None, id="an output sigmoid"),
    # -- optimizer
    case("regularization-dominates", probe(data_losses=[1.0] * 3, reg_losses=[10.01] * 3), None,
         ("warning", "reg_loss", 10.01), id="just over 10x the data loss"),
    case("regularization-dominates", probe(data_losses=[1.0] * 3, reg_losses=[10.0] * 3), None,
         None, id="10x the data loss"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH),
         experiments(sweep=sweep({1e-4: 1.9, USER_LR: 2.0}), **DIVERGES),
         ("error", "update_ratio", optimizer.UPDATE_HIGH), id="ratio at UPDATE_HIGH, diverges"),
    case("lr-too-high", probe(update_ratio=0.99 * optimizer.UPDATE_HIGH),
         experiments(sweep=sweep({1e-4: 1.9, USER_LR: 2.0}), **DIVERGES), None,
         id="ratio just under UPDATE_HIGH"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH),
         experiments(sweep=sweep({1e-4: 1.9, USER_LR: 2.0}), **SETTLES), None,
         id="ends at 1.05x its start: not diverged"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH),
         experiments(sweep=sweep({1e-4: 2.5, USER_LR: 2.0}), **DIVERGES), None,
         id="the sweep clears the user's rate"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH), experiments(sweep=SWEEP_LOWER),
         ("error", "best_lr", 1e-4), id="the sweep says lower"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH / 10),
         experiments(sweep=SWEEP_STRONGLY_LOWER), ("error", "best_lr", 1e-4),
         id="ratio at UPDATE_HIGH/10, sweep strongly lower"),
    case("lr-too-high", probe(update_ratio=optimizer.UPDATE_HIGH / 10),
         experiments(sweep=SWEEP_JUST_NOT_STRONGLY), None, id="sweep better by exactly 20 %"),
    case("lr-too-high", probe(update_ratio=0.99 * optimizer.UPDATE_HIGH / 10),
         experiments(sweep=SWEEP_STRONGLY_LOWER), None, id="ratio just under UPDATE_HIGH/10"),
    case("lr-too-low", probe(update_ratio=0.0), experiments(user_lr=0.0),
         ("error", "user_lr", 0.0), id="a rate of 0"),
    case("lr-too-low", probe(update_ratio=optimizer.UPDATE_LOW), experiments(sweep=(), **FLAT_OVERFIT),
         ("error", "update_ratio", optimizer.UPDATE_LOW), id="ratio at UPDATE_LOW, loss flat"),
    case("lr-too-low", probe(update_ratio=1.01 * optimizer.UPDATE_LOW),
         experiments(sweep=(), **FLAT_OVERFIT), None, id="ratio just over UPDATE_LOW"),
    case("lr-too-low", probe(update_ratio=optimizer.HEALTHY_LOW), experiments(sweep=SWEEP_HIGHER),
         ("warning", "best_lr", 0.1), id="ratio at HEALTHY_LOW, the sweep says higher"),
    case("lr-too-low", probe(update_ratio=optimizer.HEALTHY_LOW),
         experiments(sweep=SWEEP_NOT_HIGHER), None, id="the higher rate not better enough"),
    case("lr-too-low", probe(update_ratio=1.01 * optimizer.HEALTHY_LOW),
         experiments(sweep=SWEEP_HIGHER), None, id="ratio just over HEALTHY_LOW"),
    case("lr-too-low", probe(update_ratio=optimizer.UPDATE_LOW, grad_norm=0.0),
         experiments(sweep=(), **FLAT_OVERFIT), None, id="every gradient zero (zero-gradient's)"),
    case("lr-too-low", probe(update_ratio=optimizer.UPDATE_LOW),
         experiments(optimizer_epsilon=1.0, **FLAT_OVERFIT), ("error", "user_lr", USER_LR),
         id="a large Adam epsilon though the sweep prefers the user's rate"),
    case("lr-too-low", probe(update_ratio=optimizer.UPDATE_LOW),
         experiments(optimizer_epsilon=0.99 * optimizer.BIG_EPSILON, **FLAT_OVERFIT), None,
         id="epsilon just under BIG_EPSILON"),
    # -- symptoms
    case("predictions-unchanged", None, experiments(pred_change=1e-7), ("error", None, None),
         id="change at 1e-7"),
    case("predictions-unchanged", None, experiments(pred_change=1.01e-7), None,
         id="change just over 1e-7"),
    case("collapsed-predictions", None,
         experiments(pred_spread_after=5e-3, overfit_spread_end=5e-3, eval_majority=0.5),
         ("error", "tolerance", 5e-3), id="spread at 1 % of what balanced labels need"),
    case("collapsed-predictions", None,
         experiments(pred_spread_after=5.05e-3, overfit_spread_end=0.0, eval_majority=0.5), None,
         id="spread just over it"),
    case("collapsed-predictions", None,
         experiments(pred_spread_after=0.0, overfit_spread_end=0.0, eval_majority=1.0), None,
         id="one class only"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.71,
                                             **NO_ACC_RISE),
         ("error", "loss_end", 1.71), id="150 steps remove under 15 %"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.7,
                                             **NO_ACC_RISE), None, id="150 steps remove 15 %"),
    case("cannot-overfit", None, experiments(overfit_steps=10, overfit_loss_start=2.0,
                                             overfit_loss_end=1.971, **NO_ACC_RISE),
         ("error", "loss_start", 2.0), id="10 steps remove under 1.5 %"),
    case("cannot-overfit", None, experiments(overfit_steps=10, overfit_loss_start=2.0,
                                             overfit_loss_end=1.969, **NO_ACC_RISE), None,
         id="10 steps remove 1.5 %"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             overfit_acc_start=0.1, overfit_acc_end=0.4), None,
         id="accuracy rose by 0.3"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             init_loss=2.0, sweep=sweep({USER_LR: 2.0, 1e-2: 1.4}),
                                             **NO_ACC_RISE), None,
         id="a higher rate reaches 70 % of the initial loss"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             init_loss=2.0, sweep=sweep({USER_LR: 2.0, 1e-2: 1.41}),
                                             **NO_ACC_RISE), ("error", "loss_end", 1.9),
         id="a higher rate stays above 70 % of the initial loss"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             **{**NO_ACC_RISE, **held_back(0.6)}), None,
         id="held back 10 points over the majority (256 rows)"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             **{**NO_ACC_RISE, **held_back(0.599)}),
         ("error", "loss_end", 1.9), id="held back just under 10 points over it"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             **{**NO_ACC_RISE, **held_back(0.69, 64)}), None,
         id="held back 3 sigma over the majority (64 rows)"),
    case("cannot-overfit", None, experiments(overfit_loss_start=2.0, overfit_loss_end=1.9,
                                             **{**NO_ACC_RISE, **held_back(0.68, 64)}),
         ("error", "loss_start", 2.0), id="held back under 3 sigma over it (64 rows)"),
    case("accuracy-at-baseline", None,
         experiments(overfit_steps=40, overfit_majority=22 / 32, overfit_acc_start=22 / 32,
                     overfit_acc_end=22 / 32 + 0.019, **held_back(0.599)),
         ("warning", "majority", 22 / 32), id="subset at the majority, 10 rare samples"),
    case("accuracy-at-baseline", None,
         experiments(overfit_steps=40, overfit_majority=22 / 32, overfit_acc_start=22 / 32,
                     overfit_acc_end=22 / 32, **held_back(0.6)), None,
         id="subset at the majority but held back beats it"),
    case("accuracy-at-baseline", None,
         experiments(overfit_steps=40, overfit_majority=23 / 32, overfit_acc_start=23 / 32,
                     overfit_acc_end=23 / 32), None, id="subset with 9 rare samples"),
    case("accuracy-at-baseline", None,
         experiments(overfit_steps=39, overfit_majority=22 / 32, overfit_acc_start=22 / 32,
                     overfit_acc_end=22 / 32), None, id="39 steps on the subset"),
    case("accuracy-at-baseline", None,
         experiments(heldout_majority=0.8, heldout_train_acc=0.8, heldout_acc=0.8,
                     heldout_acc_start=0.8), ("warning", "accuracy", 0.8),
         id="held back at the majority"),
    case("accuracy-at-baseline", None,
         experiments(heldout_majority=0.8, heldout_train_acc=0.8, heldout_acc=0.811,
                     heldout_acc_start=0.8), None, id="held back just over it"),
    case("accuracy-at-baseline", None,
         experiments(heldout_majority=0.8, heldout_train_acc=0.8, heldout_acc=0.8,
                     heldout_pred_majority=0.95, heldout_train_pred_majority=0.95),
         ("warning", "predicted_majority", 0.95), id="95 % of the answers the majority"),
    case("accuracy-at-baseline", None,
         experiments(heldout_majority=0.8, heldout_train_acc=0.8, heldout_acc=0.8,
                     heldout_pred_majority=0.94, heldout_train_pred_majority=0.99), None,
         id="94 % of the answers the majority"),
    case("accuracy-at-baseline", None,
         experiments(heldout_majority=0.8, heldout_train_acc=0.8, heldout_acc=0.8,
                     heldout_loss=(0.6, 0.449), heldout_prior_loss=0.5), None,
         id="held-back loss below 0.9 of the prior's"),
    case("loss-flat", None, experiments(loss_after_probe=2.3, init_loss=2.3, **FLAT_OVERFIT),
         ("error", None, None), id="flat from the start"),
    case("loss-flat", None,
         experiments(loss_after_probe=2.3 * (1 - 2e-6), init_loss=2.3, overfit_loss_start=2.0,
                     overfit_loss_end=2.0, overfit_curve=()), None,
         id="the probe moved it by 2e-6"),
    case("loss-flat", None,
         experiments(overfit_loss_start=2.0, overfit_loss_end=1.2,
                     overfit_curve=(2.0, 1.5, 1.3, 1.2, 1.2, 1.2)),
         ("error", None, None), id="a plateau above half the start"),
    case("loss-flat", None,
         experiments(overfit_loss_start=2.0, overfit_loss_end=1.2,
                     overfit_curve=(2.0, 1.5, 1.3, 1.25, 1.21, 1.2)), None,
         id="still falling in the second half"),
    case("loss-flat", None,
         experiments(overfit_loss_start=2.0, overfit_loss_end=1.0,
                     overfit_curve=(2.0, 1.5, 1.3, 1.0, 1.0, 1.0)), None,
         id="a plateau at half the start"),
    case("init-loss-unexpected", None, experiments(init_loss=3 * math.log(10) + 1.01),
         ("warning", "expected", math.log(10)), id="above 3 ln(10) + 1"),
    case("init-loss-unexpected", None, experiments(init_loss=3 * math.log(10) + 1.0), None,
         id="at 3 ln(10) + 1"),
    case("labels-unpredictable", None,
         experiments(heldout_acc=0.139, heldout_acc_start=0.13, heldout_train_acc=0.9),
         ("warning", "heldout_acc", 0.139), id="held back within 1 point of chance"),
    case("labels-unpredictable", None,
         experiments(heldout_acc=0.141, heldout_acc_start=0.13, heldout_train_acc=0.9), None,
         id="held back just over chance + 1 point"),
    case("labels-unpredictable", None,
         experiments(heldout_acc=0.13, heldout_acc_start=0.13, heldout_train_acc=0.229), None,
         id="the fitted part barely learned either"),
    case("undertrained", None, experiments(budget_steps=100, budget_curve=FALLING_BUDGET),
         ("info", "budget_steps", 100), id="still falling at a quarter of its pace"),
    case("undertrained", None,
         experiments(budget_steps=100, budget_curve=FALLING_BUDGET, budget_acc_end=0.18),
         ("warning", "curve", list(FALLING_BUDGET)), id="and still at chance"),
    case("undertrained", None, experiments(budget_steps=100, budget_curve=LEVELLING_BUDGET),
         None, id="levelling off"),
    case("undertrained", None,
         experiments(budget_steps=100, budget_curve=FALLING_BUDGET, sweep=(),
                     overfit_loss_end=0.31 * 2.3), None, id="nothing clearly lower reachable"),
]


def _matches(value: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return len(value) == len(expected) and all(map(_matches, value, expected))
    if isinstance(expected, float):
        return (math.isnan(expected) and math.isnan(value)) or value == pytest.approx(expected)
    return bool(value == expected)


def _assert_verdict(found: list[Verdict], check: str, expect: Expect) -> None:
    mine = [v for v in found if v.check == check]
    if expect is None:
        assert mine == [], mine
        return
    severity, key, value = expect
    assert len(mine) >= 1, ids(found)
    v = mine[-1] if key == "layers" and len(mine) > 1 else mine[0]
    assert v.severity == severity, v
    assert v.kind == REGISTRY[check].kind
    if key is not None:
        assert _matches(v.evidence[key], value), (key, v.evidence)


@pytest.mark.parametrize(("check", "p", "e", "expect"), CASES)
def test_the_check_alone(check: str, p: ProbeFacts | None, e: ExperimentFacts | None,
                         expect: Expect) -> None:
    found = REGISTRY[check].run(facts(p, e))
    assert {v.check for v in found} <= {check}
    _assert_verdict(found, check, expect)


@pytest.mark.parametrize(("check", "p", "e", "expect"), CASES)
def test_through_run_dynamic(check: str, p: ProbeFacts | None, e: ExperimentFacts | None,
                             expect: Expect) -> None:
    found = run_dynamic(p if p is not None else probe(), e if e is not None else experiments(),
                        *TASK)
    _assert_verdict(found, check, expect)


# Read mixed-precision figures (a MixedPrecisionProbe): their firing and quiet
# cases are in tests/unit/test_mixed_precision_checks.py.
MIXED_PRECISION = {"loss-scale-overflow", "gradient-underflow"}


def test_every_dynamic_check_has_a_firing_and_a_quiet_case() -> None:
    registered = {c.id for c in dynamic_checks()}
    firing = {c.values[0] for c in CASES if c.values[3] is not None}
    quiet = {c.values[0] for c in CASES if c.values[3] is None}
    assert MIXED_PRECISION <= registered
    assert registered - MIXED_PRECISION == firing == quiet == (registered - MIXED_PRECISION) | firing | quiet
    assert len(registered) == 19


def test_each_dynamic_id_is_declared_once_by_its_family() -> None:
    families = {
        "gradscope.checks.gradients": {"nonfinite-loss", "zero-gradient", "vanishing-gradient",
                                       "exploding-gradient", "loss-scale-overflow",
                                       "gradient-underflow"},
        "gradscope.checks.activations": {"dead-relu", "saturated-activation"},
        "gradscope.checks.optimizer": {"lr-too-high", "lr-too-low", "regularization-dominates"},
        "gradscope.checks.symptoms": {"predictions-unchanged", "collapsed-predictions",
                                      "cannot-overfit", "accuracy-at-baseline", "loss-flat",
                                      "init-loss-unexpected", "labels-unpredictable",
                                      "undertrained"},
    }
    for module, expected in families.items():
        assert {c.id for c in dynamic_checks() if c.module == module} == expected


def test_the_registry_agrees_with_the_catalogue() -> None:
    from gradscope.checks.catalogue import CATALOGUE

    for c in dynamic_checks():
        info = CATALOGUE[c.id]
        assert (c.severity, c.kind, c.title) == (info.severity, info.kind, info.title), c.id


# ---------------------------------------------------- the task run_dynamic is told


def test_init_loss_reads_the_task_run_dynamic_is_told() -> None:
    high = experiments(init_loss=3 * math.log(2) + 1.01)  # over ln(2)'s bound, under ln(10)'s
    assert "init-loss-unexpected" in ids(run_dynamic(probe(), high, True, 2, "binary_crossentropy"))
    assert "init-loss-unexpected" not in ids(run_dynamic(probe(), high, *TASK))
    # (told it is no classification, a cross-entropy loss does not make it one)
    too_high = experiments(init_loss=50.0)
    assert ids(run_dynamic(probe(), too_high, False, None, "categorical_crossentropy")) == []
    [v] = run_dynamic(probe(), too_high, *TASK)
    assert v.check == "init-loss-unexpected" and v.evidence["init_loss"] == 50.0


def test_without_experiments_only_the_probe_checks_run() -> None:
    # (a model probed through its own train_step: no experiments)
    assert run_dynamic(probe(), None, False, None, None) == []
    zero_rate = probe(update_ratio=0.0)
    assert run_dynamic(zero_rate, None, *TASK) == []
    assert ids(run_dynamic(probe(grad_norm=0.0), None, *TASK)) == ["zero-gradient"]


# ------------------------------------------------------- the dynamic suppressions


def _exploding_then_nan(first: float) -> ProbeFacts:
    """Gradients growing 1e4x over three finite steps, then NaN at step 4; half
    the hidden ReLUs dead (a verdict the NaN suppresses)."""
    grads = [[first, 0.1], [first * 100, 0.1], [first * 1e4, 0.1], [NAN, NAN]]
    return probe(steps=4, losses=[2.3, 50.0, 1e4, NAN], grad_norm=grads, dead=[0.6, NAN],
                 update_ratio=0.3)


NAN_EXPERIMENTS = experiments(sweep=sweep({1e-4: 1.9, USER_LR: 2.0}), overfit_loss_end=NAN,
                              pred_change=0.0, budget_steps=100, budget_curve=FALLING_BUDGET,
                              **NO_ACC_RISE)


def test_after_a_nan_the_rate_comes_first_then_the_nan_then_the_symptoms() -> None:
    found = run_dynamic(_exploding_then_nan(1.0), NAN_EXPERIMENTS, *TASK)
    assert ids(found) == ["lr-too-high", "exploding-gradient", "nonfinite-loss",
                          "predictions-unchanged", "cannot-overfit"]
    assert found[2].evidence["step"] == 4
    # the per-layer checks ran, and were left out
    assert REGISTRY["dead-relu"].run(facts(_exploding_then_nan(1.0), NAN_EXPERIMENTS))


def test_after_a_nan_a_gradient_huge_from_the_start_comes_before_the_rate() -> None:
    found = run_dynamic(_exploding_then_nan(gradients.EXPLODE_FROM_START), NAN_EXPERIMENTS, *TASK)
    assert ids(found)[:3] == ["exploding-gradient", "lr-too-high", "nonfinite-loss"]
    assert found[0].evidence["from_start"] is True


def test_without_a_nan_the_explosion_is_listed_before_the_rate() -> None:
    # (rank() orders them later; run_dynamic keeps the registration order)
    p = probe(layers=["out"], grad_norm=[[1.0], [10.0], [100.0]], update_ratio=0.3)
    found = run_dynamic(p, experiments(sweep=SWEEP_LOWER), *TASK)
    assert ids(found) == ["exploding-gradient", "lr-too-high"]


def test_zero_weights_suppress_vanishing_gradient() -> None:
    zero_start = [[0.0, 1.0], [0.1, 1.0], [0.2, 1.0]]
    p = probe(weight_norm=zero_start, grad_norm=ratio_grid(1e-9))
    assert ids(REGISTRY["vanishing-gradient"].run(facts(p))) == ["vanishing-gradient"]
    found = run_dynamic(p, experiments(), *TASK)
    assert ids(found) == ["zero-gradient"]
    # zero output weights (logistic regression) suppress nothing
    p = probe(weight_norm=[[1.0, 0.0], [1.0, 0.1], [1.0, 0.2]], grad_norm=ratio_grid(1e-9))
    assert ids(run_dynamic(p, experiments(), *TASK)) == ["vanishing-gradient"]


def test_undertrained_only_without_an_error() -> None:
    budget = experiments(budget_steps=100, budget_curve=FALLING_BUDGET)
    assert ids(run_dynamic(probe(), budget, *TASK)) == ["undertrained"]
    # a warning leaves it, after the others
    warned = run_dynamic(probe(dead=[0.5, NAN]), budget, *TASK)
    assert ids(warned) == ["dead-relu", "undertrained"]
    # an error drops it
    errored = run_dynamic(probe(dead=[1.0, NAN]), budget, *TASK)
    assert ids(errored) == ["dead-relu"] and errored[0].severity == "error"
    assert REGISTRY["undertrained"].run(facts(probe(dead=[1.0, NAN]), budget))


def test_the_symptoms_keep_their_order() -> None:
    stuck = experiments(pred_change=0.0, pred_spread_after=0.0, overfit_spread_end=0.0,
                        init_loss=50.0, loss_after_probe=50.0, **FLAT_OVERFIT, **NO_ACC_RISE)
    assert ids(run_dynamic(probe(), stuck, *TASK)) == [
        "predictions-unchanged", "collapsed-predictions", "cannot-overfit", "loss-flat",
        "init-loss-unexpected",
    ]


def test_tiny_inputs_are_cleared_when_the_held_back_part_shows_learning() -> None:
    # (tests/test_fresh_cases.py's tiny inputs under Adam(0.05): the fixed 32-sample
    # batch only moved the bias to its majority class, 31 % -> 59 % accuracy, while
    # the held-back part reached 86 % against a majority of 52 %)
    from gradscope.checks.arbitration import confirmed
    from gradscope.checks.catalogue import verdict

    tiny = verdict("unnormalized-input", "input", "tiny", "scale", absmax=0.004, tiny=True)
    subset = dict(overfit_loss_start=0.694, overfit_loss_end=0.665, overfit_acc_start=0.3125,
                  overfit_acc_end=0.594, overfit_majority=0.594)
    learned = experiments(**subset, **held_back(0.855))
    assert confirmed([tiny], learned) == []
    assert ids(run_dynamic(probe(), learned, True, 2, "sparse_categorical_crossentropy")) == []
    at_chance = experiments(**subset, **held_back(0.52))
    assert confirmed([tiny], at_chance) == [tiny]
    assert ids(run_dynamic(probe(), at_chance, True, 2, "sparse_categorical_crossentropy")) == [
        "cannot-overfit", "accuracy-at-baseline"]


# ------------------------------------------------------------- no TensorFlow


def test_the_dynamic_checks_import_no_tensorflow() -> None:
    code = ("import sys, gradscope.checks.dynamic, gradscope.checks.arbitration; "
            "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_old_names_are_still_importable() -> None:
    from gradscope.checks.dynamic import (
        COLLAPSE_FLOAT,
        COLLAPSE_SHARE,
        MIN_MINORITY,
        collapsed_predictions,
        confirmed,
    )
    from gradscope.checks.dynamic import symptoms as old_symptoms

    assert (COLLAPSE_FLOAT, COLLAPSE_SHARE, MIN_MINORITY) == (
        symptoms.COLLAPSE_FLOAT, symptoms.COLLAPSE_SHARE, symptoms.MIN_MINORITY)
    assert callable(collapsed_predictions) and callable(confirmed) and callable(old_symptoms)
