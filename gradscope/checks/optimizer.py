"""Optimizer checks: regularisation that outweighs the data, and a learning
rate too high or too low, judged from the probe's update ratios ||dW||/||W||
and the experiments' learning-rate sweep. Registered in report order."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradscope.checks.facts import ExperimentFacts, ProbeFacts
from gradscope.checks.measures import (
    best_lr,
    experiments_of,
    median_over_steps,
    nan_median,
    nonfinite_in_experiments,
    probe_of,
    sweep_loss,
)
from gradscope.checks.registry import Facts, Finding, check, finding

# TheDeepChecker's healthy band for ||dW||/||W|| per step is [1e-4, 1e-1].
UPDATE_HIGH = 1e-1
HEALTHY_LOW = 1e-4
# Two orders of magnitude below the band (gradscope's own): a modest but
# working rate (small Adam rates give ratios near 1e-4) is not blamed on the
# ratio alone.
UPDATE_LOW = 1e-6
# The overfit run "diverges" when it ends above its start by more than this
# factor (gradscope's own: 5 % of noise on a tiny subset is not divergence).
DIVERGED = 1.05
# The sweep "says lower" when its best rate is at least SWEEP_LOWER_RATE times
# below yours and its loss under SWEEP_LOWER_MARGIN of the loss at your rate;
# "strongly" under SWEEP_STRONG_MARGIN. It "says higher" when its best rate is
# at least SWEEP_HIGHER_RATE times yours and beats your loss by more than
# SWEEP_HIGHER_MARGIN x |initial loss|. All gradscope's own: a rate is blamed
# only when a clearly different one does clearly better on the same start.
SWEEP_LOWER_RATE = 10.0
SWEEP_LOWER_MARGIN = 0.9
SWEEP_STRONG_MARGIN = 0.8
SWEEP_HIGHER_RATE = 100.0
SWEEP_HIGHER_MARGIN = 0.1
# The overfit run's loss "is flat" when it moved by at most this share of its start.
FLAT = 1e-3
# Adam-family steps are lr * m / (sqrt(v) + epsilon): an epsilon this large (the
# TF1 docs' 1.0 or 0.1) shrinks every step as much as a tiny rate.
BIG_EPSILON = 1e-2
# Gradient clipping at or below this (clipnorm, global_clipnorm or clipvalue)
# shrinks steps like a tiny learning rate; 1.0 and 5.0 are the usual choices.
CLIP_TINY = 1e-3
# Regularisation loss / data loss (gradscope's own): one order of magnitude is
# where the penalty, not the data, decides the direction of every step.
REG_DOMINATES = 10.0


@check("regularization-dominates", "warning", "cause", "regularisation dwarfs the data loss",
       phase="dynamic", needs=("probe",))
def regularization_dominates(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    if p.data_losses is None or p.reg_losses is None or p.reg_losses.size == 0:
        return []
    data = nan_median(p.data_losses)
    reg = nan_median(p.reg_losses)
    if not (math.isfinite(data) and math.isfinite(reg)) or reg <= REG_DOMINATES * max(data, 1e-12):
        return []
    return [
        finding(
            "loss",
            f"the regularisation loss ({reg:.4g}) is {reg / max(data, 1e-12):.3g}x the data "
            f"loss ({data:.4g}): the optimiser mostly shrinks weights instead of fitting the data.",
            "Lower the regularisation factor, e.g. kernel_regularizer=keras.regularizers.l2(1e-4)",
            reg_loss=reg,
            data_loss=data,
        )
    ]


@dataclass(frozen=True)
class RateEvidence:
    """What lr-too-high and lr-too-low both read: the update ratio, the sweep's
    verdict on your rate, and whether the loss diverged. The two never both
    fire: too high needs a ratio >= UPDATE_HIGH / 10, too low one <= HEALTHY_LOW."""

    ratio: float  # median over layers of each layer's median ||dW||/||W||
    best: tuple[float, float] | None  # the sweep's best (rate, loss)
    user_lr: float | None
    diverged: bool
    sweep_says_lower: bool
    sweep_strongly_lower: bool
    sweep_says_higher: bool
    # The sweep's best rate is the user's own (or higher): the rate is not what
    # goes wrong; an initialisation or input problem makes the steps huge.
    sweep_clears_user: bool
    sweep_text: str  # the sweep's result, for the message ("" without a sweep)

    @property
    def too_high(self) -> bool:
        return (
            not self.sweep_clears_user
            and self.ratio >= UPDATE_HIGH
            and (self.diverged or self.sweep_says_lower)
        ) or (self.ratio >= UPDATE_HIGH / 10 and self.sweep_strongly_lower)

    def evidence(self) -> dict[str, Any]:  # (Any: passed on as finding(**evidence))
        return {
            "update_ratio": self.ratio,
            "best_lr": self.best[0] if self.best else None,
            "user_lr": self.user_lr,
        }


def rate_evidence(p: ProbeFacts, e: ExperimentFacts) -> RateEvidence | None:
    """None when no layer has an update ratio (nothing to judge the rate by)."""
    ratio = _median_update_ratio(p)
    if ratio is None:
        return None
    best = best_lr(e)
    user_lr = e.user_lr
    sweep_text = ""
    if best is not None and user_lr is not None:
        sweep_text = (
            f"; a {e.sweep_steps}-step sweep on a clone found the loss fell furthest near "
            f"lr={best[0]:.0e} (loss {best[1]:.4g}); you use {user_lr:g}"
        )
    diverged = (
        not math.isfinite(e.overfit_loss_end)
        or e.overfit_loss_end > e.overfit_loss_start * DIVERGED
        or not np.all(np.isfinite(p.losses))
        or nonfinite_in_experiments(e) is not None
    )
    user_loss = sweep_loss(e, user_lr) if user_lr is not None else None
    says_lower = (
        best is not None
        and user_lr is not None
        and best[0] <= user_lr / SWEEP_LOWER_RATE
        and _beats(best, user_loss, SWEEP_LOWER_MARGIN)
    )
    return RateEvidence(
        ratio=ratio,
        best=best,
        user_lr=user_lr,
        diverged=bool(diverged),
        sweep_says_lower=says_lower,
        sweep_strongly_lower=(
            says_lower
            and best is not None
            and _beats(best, user_loss, SWEEP_STRONG_MARGIN)
        ),
        sweep_says_higher=(
            best is not None
            and user_lr is not None
            and best[0] >= user_lr * SWEEP_HIGHER_RATE
            and user_loss is not None
            and best[1] < user_loss - SWEEP_HIGHER_MARGIN * abs(e.init_loss)
        ),
        sweep_clears_user=best is not None and user_lr is not None and best[0] >= user_lr,
        sweep_text=sweep_text,
    )


def _beats(best: tuple[float, float], user_loss: float | None, margin: float) -> bool:
    """The sweep's best loss is under `margin` x the loss at your rate, or your
    rate's own run diverged (or was not in the sweep)."""
    return user_loss is None or not math.isfinite(user_loss) or best[1] < margin * user_loss


def _median_update_ratio(p: ProbeFacts) -> float | None:
    med = median_over_steps(p.update_ratio)
    vals = med[np.isfinite(med)] if med.size else med
    return float(np.median(vals)) if vals.size else None


@check("lr-too-high", "error", "cause", "learning rate too high",
       phase="dynamic", needs=("probe", "experiments"))
def lr_too_high(facts: Facts) -> list[Finding]:
    p, e = probe_of(facts), experiments_of(facts)
    ev = rate_evidence(p, e)
    # (A rate of exactly 0 is lr-too-low's, whatever the ratio reads.)
    if ev is None or e.user_lr == 0.0 or not ev.too_high:
        return []
    best = ev.best
    return [
        finding(
            "optimizer",
            f"each step changes the weights by {ev.ratio:.2g} of their size (median "
            f"||dW||/||W||; healthy is 1e-4..1e-1) and the loss "
            f"{'diverges' if ev.diverged else 'does not settle'}{ev.sweep_text}.",
            "Lower the learning rate"
            + (f", e.g. keras.optimizers.{e.optimizer_name}(learning_rate={best[0]:.0e})" if best else "")
            + ".",
            **ev.evidence(),
        )
    ]


@check("lr-too-low", "error", "cause", "learning rate too low",
       phase="dynamic", needs=("probe", "experiments"))
def lr_too_low(facts: Facts) -> list[Finding]:
    p, e = probe_of(facts), experiments_of(facts)
    ev = rate_evidence(p, e)
    if ev is None:
        return []
    if e.user_lr == 0.0:
        return [
            finding(
                "optimizer",
                "the learning rate is 0: no step can change any weight.",
                "Set a learning rate, e.g. keras.optimizers."
                f"{e.optimizer_name}(learning_rate=1e-3)",
                user_lr=0.0,
            )
        ]
    best, user_lr, ratio = ev.best, ev.user_lr, ev.ratio
    flat = abs(e.overfit_loss_end - e.overfit_loss_start) <= FLAT * max(abs(e.overfit_loss_start), 1e-12)
    eps = e.optimizer_epsilon
    big_eps = eps is not None and eps >= BIG_EPSILON
    # Clipping every gradient to a tiny norm (or value) caps each step at
    # lr x that, whatever the gradient says.
    clip = e.optimizer_clip if e.optimizer_clip and e.optimizer_clip[1] <= CLIP_TINY else None
    # Steps are small because the gradient is (exactly zero: zero-gradient says
    # why), or a sweep found no higher rate doing better: the rate is not it.
    grads = p.grad_norm[np.isfinite(p.grad_norm)]
    no_gradient = grads.size > 0 and not np.any(grads > 0)
    no_higher_rate = (
        best is not None and user_lr is not None and best[0] <= user_lr and not (big_eps or clip)
    )
    if no_gradient or no_higher_rate:
        return []
    higher = ev.sweep_says_higher
    if not ((ratio <= UPDATE_LOW and (flat or higher)) or (ratio <= HEALTHY_LOW and higher)):
        return []
    eps_text = (
        f"; the optimizer's epsilon={eps:g} divides each step by about that much" if big_eps else ""
    )
    if clip:
        eps_text += (
            f"; the optimizer clips every gradient to {clip[0]}={clip[1]:g}, which caps "
            "each step at the learning rate times that"
        )
    fix = (
        f"Remove the clipping or clip at a typical gradient size: "
        f"keras.optimizers.{e.optimizer_name}(..., {clip[0]}=1.0)."
        if clip
        else f"Use the default epsilon: keras.optimizers.{e.optimizer_name}(learning_rate="
        f"{user_lr:g})  (epsilon=1e-7), or raise the learning rate."
        if big_eps and user_lr
        else "Raise the learning rate"
        + (f", e.g. keras.optimizers.{e.optimizer_name}(learning_rate={best[0]:.0e})" if best else "")
        + "."
    )
    return [
        finding(
            "optimizer",
            f"each step changes the weights by only {ratio:.2g} of their size (median "
            f"||dW||/||W||; healthy is 1e-4..1e-1){eps_text}{ev.sweep_text}.",
            fix,
            severity="error" if flat else "warning",
            **ev.evidence(),
        )
    ]
