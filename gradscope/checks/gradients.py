"""Gradient checks, from the probe steps: a loss or gradient gone NaN/Inf,
variables without gradient, gradients vanishing towards the first layer,
gradients huge or growing, and, under mixed precision, steps a loss-scale
optimizer skipped (float16 overflow) and gradients flushed to zero in float16
(underflow). Registered in the order they are reported."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradscope.checks.facts import ProbeFacts
from gradscope.checks.measures import (
    bad_gradients,
    median_over_steps,
    nan_median,
    nonfinite_in_experiments,
    over_probe_steps,
    probe_of,
    zero_weight_layers,
)
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.verdicts import Severity

# Vanishing gradients (docs/checks.md): ratio of the first trainable layer's
# gradient norm to the last one's, median over probe steps. AUTOTRAINER flags
# vanishing when early-layer gradients fall orders of magnitude below late
# ones; a healthy network keeps them within ~1e-1..1e1 of each other.
VANISH_WARN = 1e-3
VANISH_ERROR = 1e-5
# All gradients this small (with a non-zero loss) count as vanished outright
# (SageMaker Debugger's VanishingGradient threshold is 1e-7 on mean |g|).
ALL_ZERO = 1e-7
# ... but only while there is a loss to reduce: a model already at a loss of
# 1e-6 (a solved toy problem) has tiny gradients because it is done.
LOSS_LEFT = 1e-6
EXPLODE_ERROR = 1e8  # global gradient norm: far past any healthy network's (1e-3..1e2)
EXPLODE_GROWTH = 1e2  # growth over the probe steps, monotonic: 100x in a handful of steps
# When the gradient explodes, a first-step norm (before any update) this large
# says it was huge from the start: initialisation or data scale, not the rate.
EXPLODE_FROM_START = 1e4

# Mixed precision (docs/checks.md#loss-scale-overflow, #gradient-underflow).
# A LossScaleOptimizer starts at a scale of 2**15 and halves it at each step
# whose scaled float16 gradients overflow (the step is skipped): a few skips at
# the start are how it finds its scale. Most probe steps skipped, the last one
# included, mean the scale has not settled yet: the training stands still meanwhile.
OVERFLOW_MOST = 0.5
# A float16 layer whose gradient entries are, in this share (median over the
# probe steps), exactly 0 or float16 subnormals (below 2**-14 = 6.1e-5, where
# float16 keeps fewer digits, and flushed to 0 below 6e-8), with at least
# UNDERFLOW_TINY of subnormals: the gradients straddle float16's smallest
# numbers. (Dead ReLU units give exact zeros but no subnormals: a healthy
# loss-scaled model has ~0.1 % subnormals, one without scaling 70-90 %;
# tests/test_mixed_precision.py.)
UNDERFLOW_LOST = 0.5
UNDERFLOW_TINY = 0.05
UNDERFLOW_ERROR = 0.9  # nearly all of it lost: the layer hardly learns
# Gradients flushed entirely leave no subnormals, only zeros: those count when
# the dead units of the layer and of the one before it (a dead output unit
# zeroes a column of the kernel's gradient, a dead input a row) leave more than
# this share of them unexplained; in float32 live units get no exact zeros.
UNDERFLOW_UNEXPLAINED = 0.25


@dataclass(frozen=True)
class MixedPrecisionProbe(ProbeFacts):
    """The probe of a mixed precision model (a layer computing in float16, or a
    LossScaleOptimizer): ProbeFacts and what float16 did to the gradients."""

    skipped: np.ndarray | None = None  # [steps] the LossScaleOptimizer skipped the update
    loss_scales: np.ndarray | None = None  # [steps] the scale the gradients carried (NaN: none)
    # [steps, layers] share of the gradient's entries exactly 0 / float16
    # subnormals, as computed (loss-scaled); NaN for layers not in float16.
    grad_zero_frac: np.ndarray | None = None
    grad_tiny_frac: np.ndarray | None = None


def skipped_steps(p: ProbeFacts) -> np.ndarray:
    """[steps] True where a LossScaleOptimizer skipped the step (its scaled
    gradients overflowed float16): no update, no gradient figure to judge."""
    steps = p.losses.size
    skipped = p.skipped if isinstance(p, MixedPrecisionProbe) else None
    if skipped is None or skipped.size != steps:
        return np.zeros(steps, dtype=bool)
    return skipped.astype(bool)


_NONFINITE_FIX = (
    "Look for NaN/Inf or huge values in the inputs and labels, lower the learning rate, "
    "and avoid log(0) in a hand-written loss (clip: ops.clip(p, 1e-7, 1 - 1e-7), or use "
    "Keras's loss with from_logits=True on a linear output); clip gradients: "
    "keras.optimizers.Adam(1e-3, clipnorm=1.0)"
)

_VANISH_FIX = (
    "Use ReLU-family activations with He initialisation in hidden layers, add "
    "normalisation or residual connections in deep stacks, e.g.\n"
    "    Dense(128, activation='relu', kernel_initializer='he_normal')\n"
    "    BatchNormalization()"
)


@check("nonfinite-loss", "error", "cause", "the loss or a gradient is NaN/Inf",
       phase="dynamic", needs=("probe",))
def nonfinite_loss(facts: Facts) -> list[Finding]:
    p, e = probe_of(facts), facts.experiments
    bad_steps = [i for i, v in enumerate(p.losses) if not math.isfinite(float(v))]
    # (a step the loss-scale optimizer skipped overflowed float16, not float32:
    # loss-scale-overflow's, not a NaN gradient)
    skipped = skipped_steps(p)
    bad_steps += [int(i) for i in np.where(np.any(bad_gradients(p), axis=1))[0] if not skipped[i]]
    if not bad_steps:
        later = nonfinite_in_experiments(e) if e is not None else None
        if later is None:
            return []
        where, curve = later
        shown = ", ".join(f"{c:.4g}" for c in curve[:8])
        return [
            finding(
                "loss",
                f"the loss became NaN/Inf {where} (loss: {shown}); the "
                f"{p.losses.size} probe steps were still finite, so it appears as "
                "training goes on.",
                _NONFINITE_FIX,
                curve=list(curve),
            )
        ]
    step = min(bad_steps)
    culprit = _first_nonfinite_layer(p, step)
    where = f" It first appears in layer '{culprit}'." if culprit else ""
    loss_text = ", ".join(f"{float(v):.4g}" for v in p.losses[: step + 1])
    return [
        finding(
            culprit or "loss",
            f"the loss or a gradient became NaN/Inf at probe step {step + 1} "
            f"(losses: {loss_text}).{where}",
            _NONFINITE_FIX,
            step=step + 1,
            layer=culprit,
        )
    ]


def _first_nonfinite_layer(p: ProbeFacts, step: int) -> str | None:
    """The first layer in forward order whose activations or gradients went non-finite."""
    for i, name in enumerate(p.layers):
        if not p.act_finite[step, i]:
            return name
    bad = bad_gradients(p)[step]
    for i, name in enumerate(p.layers):
        if bad[i]:
            return name
    return None


@check("exploding-gradient", "error", "cause", "gradients are huge or growing",
       phase="dynamic", needs=("probe",))
def exploding_gradient(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    if p.grad_norm.size == 0:
        return []
    skipped = skipped_steps(p)
    finite_steps = [i for i in range(p.grad_norm.shape[0]) if not np.any(np.isinf(p.grad_norm[i]))
                    and math.isfinite(float(p.losses[i])) and not skipped[i]]
    if not finite_steps:
        return []
    # (steps a loss-scale optimizer skipped have no gradient figure: left out)
    grid = p.grad_norm[[i for i in range(finite_steps[-1] + 1) if not skipped[i]]]
    totals = np.sqrt(np.nansum(np.where(np.isfinite(grid), grid, 0.0) ** 2, axis=1))
    if totals.size == 0:
        return []
    peak = float(totals.max())
    growing = (
        totals.size >= 3
        and totals[0] > 0
        and bool(np.all(np.diff(totals) > 0))
        and totals[-1] / totals[0] >= EXPLODE_GROWTH
    )
    if peak < EXPLODE_ERROR and not growing:
        return []
    trend = ", ".join(f"{t:.3g}" for t in totals)
    norms = [float(t) for t in totals]
    if _huge_from_start(p):
        return [
            finding(
                "model",
                f"the global gradient norm is huge from the first step, before any update "
                f"({trend} over the probe steps): the weights' initialisation or the scale "
                "of the inputs or targets makes it so, not the learning rate.",
                "Use the default initialisers (glorot_uniform; he_normal for ReLU) rather "
                "than a wide RandomNormal, scale inputs and targets to unit range, and clip "
                "gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0)",
                severity="error",
                norms=norms,
                from_start=True,
            )
        ]
    return [
        finding(
            "model",
            f"the global gradient norm is {'growing step over step' if growing else 'huge'} "
            f"({trend} over the probe steps).",
            "Lower the learning rate, scale inputs and targets to unit range, and clip "
            "gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0)",
            severity="error",
            norms=norms,
        )
    ]


def _huge_from_start(p: ProbeFacts) -> bool:
    """The first probe step's gradient (taken before any update) is already huge:
    the learning rate has not acted yet, so it is not the cause."""
    measured = np.where(~skipped_steps(p))[0]  # a skipped step updated nothing either
    if p.grad_norm.size == 0 or measured.size == 0 or not math.isfinite(float(p.losses[measured[0]])):
        return False
    first = p.grad_norm[measured[0]]
    if np.any(np.isinf(first)):
        return False
    total = float(np.sqrt(np.nansum(np.where(np.isfinite(first), first, 0.0) ** 2)))
    return total >= EXPLODE_FROM_START


@check("zero-gradient", "error", "cause", "a variable gets no or zero gradient",
       phase="dynamic", needs=("probe",))
def zero_gradient(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    found: list[Finding] = []
    with_weights = [i for i in range(len(p.layers)) if np.any(np.isfinite(p.grad_norm[:, i]))]
    cut_off = {name.split("/")[0] for name in p.disconnected}
    if p.disconnected:
        shown = ", ".join(p.disconnected[:6])
        # No variable at all on the loss's path: the loss itself is cut off from
        # the model (an op without a gradient in it, or outputs it never reads).
        nothing = bool(with_weights) and all(p.layers[i] in cut_off for i in with_weights)
        found.append(
            finding(
                p.disconnected[0].split("/")[0],
                (
                    "no trainable variable gets a gradient: the loss does not depend on the "
                    f"model's weights as TensorFlow differentiates it ({shown})."
                    if nothing
                    else f"{len(p.disconnected)} trainable variable(s) get no gradient at all "
                    f"(not connected to the loss): {shown}."
                ),
                (
                    "Make the loss differentiable in the predictions: a custom loss or model "
                    "code must not pass them through round, argmax, a cast to int, a "
                    "comparison or tf.stop_gradient (use y_pred itself, or a smooth "
                    "stand-in such as a sigmoid for a threshold)."
                    if nothing
                    else "Make sure every trainable layer is used on the path to the model's "
                    "outputs (a layer created but never called, an output not in the loss, a "
                    "tf.stop_gradient or a non-differentiable op such as argmax or round)."
                ),
                severity="error" if nothing else "warning",
                variables=list(p.disconnected[:20]),
            )
        )
    if p.grad_norm.size == 0 or not np.all(np.isfinite(p.losses)):
        return found
    zero_every_step = np.all(p.grad_norm == 0.0, axis=0)
    # (Layers with no gradient at all are said above: their zeros are no news.)
    names = [p.layers[i] for i in np.where(zero_every_step)[0] if p.layers[i] not in cut_off]
    zero_weights = [p.layers[i] for i in zero_weight_layers(p)]
    if zero_weights:
        found.append(
            finding(
                zero_weights[0],
                f"the weights of {', '.join(zero_weights[:6])} start at exactly 0: every unit "
                "computes the same thing, ReLUs output 0 and the gradients are zero or "
                "identical, so the units never differentiate.",
                "Use a random initialiser (the Keras default), e.g. "
                "Dense(n, kernel_initializer='glorot_uniform'); for reproducibility seed it: "
                "keras.utils.set_random_seed(0)",
                severity="error",
                layers=zero_weights[:20],
            )
        )
        names = [n for n in names if n not in zero_weights]
    if names:
        everything = len(names) == len(with_weights)
        found.append(
            finding(
                names[0],
                f"{'every' if everything else len(names)} trainable layer"
                f"{'' if len(names) == 1 or everything else 's'} ({', '.join(names[:6])}) got an exactly-zero "
                f"gradient in all {p.grad_norm.shape[0]} probe steps: "
                + ("nothing can learn." if everything else
                   ("it cannot learn." if len(names) == 1 else "they cannot learn.")),
                "Exact zeros usually come from dead ReLUs, a saturated or constant output "
                "(softmax over one unit, clipped probabilities), or zero inputs: fix the "
                "cause reported with this verdict.",
                severity="error" if everything else "warning",
                layers=names[:20],
            )
        )
    return found


@check("vanishing-gradient", "error", "cause", "early layers get orders of magnitude less gradient",
       phase="dynamic", needs=("probe",))
def vanishing_gradient(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    if p.grad_norm.size == 0 or not np.all(np.isfinite(p.losses)):
        return []
    med = median_over_steps(np.where(np.isfinite(p.grad_norm), p.grad_norm, np.nan))
    trainable = [i for i in range(len(p.layers)) if math.isfinite(float(med[i]))]
    # Layers with an exactly-zero gradient are the zero-gradient check's business;
    # an Embedding's gradient touches only the rows in the batch, so its norm is
    # small by nature and says nothing about vanishing.
    flowing = [i for i in trainable if med[i] > 0 and p.layer_types[i] != "Embedding"]
    loss = nan_median(p.losses)
    if len(trainable) >= 1 and loss > LOSS_LEFT:
        top = max((float(med[i]) for i in trainable), default=0.0)
        if 0 < top < ALL_ZERO:
            return [
                finding(
                    "model",
                    f"every layer's gradient norm is below {ALL_ZERO:g} (largest {top:.2g}) "
                    f"while the loss is {loss:.4g}: nothing learns.",
                    _VANISH_FIX,
                    largest=top,
                )
            ]
    if len(flowing) < 2:
        return []
    first, last = flowing[0], flowing[-1]
    ratio = float(med[first] / med[last])
    if ratio >= VANISH_WARN:
        return []
    severity: Severity = "error" if ratio < VANISH_ERROR else "warning"
    return [
        finding(
            p.layers[first],
            f"the gradient reaching the first layer '{p.layers[first]}' ({med[first]:.2g}) is "
            f"{1 / ratio:.2g}x smaller than at the last layer '{p.layers[last]}' "
            f"({med[last]:.2g}) across {len(flowing)} trainable layers: the early layers "
            "barely learn.",
            _VANISH_FIX,
            severity=severity,
            ratio=ratio,
            first_layer=p.layers[first],
            last_layer=p.layers[last],
            # The table shows one step's figures: this says why they differ.
            figures=over_probe_steps(p.losses.size),
        )
    ]


@check("loss-scale-overflow", "warning", "cause",
       "the loss-scale optimizer skips steps: float16 gradients overflow",
       phase="dynamic", needs=("probe",))
def loss_scale_overflow(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    skipped = skipped_steps(p) & np.isfinite(p.losses)  # (a NaN loss is nonfinite-loss's)
    if not np.any(skipped):
        return []
    steps, count = int(skipped.size), int(skipped.sum())
    scales = p.loss_scales if isinstance(p, MixedPrecisionProbe) and p.loss_scales is not None else None
    shown = [float(s) for s in scales] if scales is not None else []
    trend = " -> ".join(f"{s:g}" for s in shown if math.isfinite(s))
    at = ", ".join(str(int(i) + 1) for i in np.where(skipped)[0])
    most = count >= OVERFLOW_MOST * steps and bool(skipped[-1])
    evidence = {"skipped": count, "steps": steps,
                "skipped_steps": [int(i) + 1 for i in np.where(skipped)[0]], "loss_scales": shown}
    if most:
        return [
            finding(
                "optimizer",
                f"the LossScaleOptimizer skipped {count} of the {steps} probe steps (steps {at}): "
                "their loss-scaled float16 gradients overflowed to Inf/NaN, so it updated nothing "
                f"and halved the loss scale each time ({trend}), and it still overflows. The "
                "real (float32) gradients are finite: this is no exploding gradient, but until "
                "the scale settles the training stands still.",
                "It settles by itself once the scaled gradients fit float16 (65504); if it keeps "
                "skipping, the unscaled gradients are themselves near float16's range: scale the "
                "inputs and targets to unit range, start from a lower scale "
                "(keras.optimizers.LossScaleOptimizer(opt, initial_scale=2**8)), or use "
                "keras.mixed_precision.set_global_policy('mixed_bfloat16') (float32's range), "
                "or keep the offending layer in float32 (dtype='float32')",
                severity="warning",
                **evidence,
            )
        ]
    return [
        finding(
            "optimizer",
            f"the LossScaleOptimizer skipped {count} of the {steps} probe steps (steps {at}) while "
            f"its dynamic loss scale settled ({trend}): their scaled float16 gradients overflowed, "
            "so it halved the scale and updated nothing. That is normal at the start of mixed "
            "precision training; those steps are left out of the gradient checks (their real, "
            "float32 gradients are finite: no exploding gradient).",
            "Nothing to do; to skip fewer steps at the start, begin from a lower scale: "
            "keras.optimizers.LossScaleOptimizer(opt, initial_scale=2**10)",
            severity="info",
            **evidence,
        )
    ]


def _dead_share(dead: np.ndarray, i: int) -> float:
    """The dead-unit share of layer `i` plus that of the nearest tapped layer
    before it (0 where not measured): the share of its gradient's entries that
    dead ReLUs can zero."""
    own = float(dead[i]) if math.isfinite(float(dead[i])) else 0.0
    before = next((float(dead[j]) for j in range(i - 1, -1, -1) if math.isfinite(float(dead[j]))), 0.0)
    return own + before


@check("gradient-underflow", "warning", "cause",
       "float16 gradients underflow: a large share is flushed to zero",
       phase="dynamic", needs=("probe",))
def gradient_underflow(facts: Facts) -> list[Finding]:
    p = probe_of(facts)
    if not isinstance(p, MixedPrecisionProbe) or p.grad_zero_frac is None or p.grad_tiny_frac is None:
        return []
    if p.grad_zero_frac.shape != p.grad_norm.shape or not np.all(np.isfinite(p.losses)):
        return []
    measured = ~skipped_steps(p)
    if not np.any(measured):
        return []
    zeros = median_over_steps(p.grad_zero_frac[measured])
    tiny = median_over_steps(p.grad_tiny_frac[measured])
    lost = zeros + tiny
    dead = median_over_steps(np.where(np.isfinite(p.dead), p.dead, np.nan)[measured])
    hit = [i for i in range(len(p.layers))
           if math.isfinite(float(lost[i])) and lost[i] >= UNDERFLOW_LOST
           and (tiny[i] >= UNDERFLOW_TINY or zeros[i] > _dead_share(dead, i) + UNDERFLOW_UNEXPLAINED)]
    if not hit:
        return []
    scales = p.loss_scales[measured] if p.loss_scales is not None else np.zeros(0)
    scale = float(scales[-1]) if scales.size and math.isfinite(float(scales[-1])) else None
    worst = max(hit, key=lambda i: float(lost[i]))
    listed = ", ".join(
        f"'{p.layers[i]}' {zeros[i]:.0%} zero + {tiny[i]:.0%} subnormal" for i in hit[:6]
    )
    scaled = (f"even with the loss scaled by {scale:g}" if scale is not None
              else "with no loss scaling")
    fix = (
        "Keep loss scaling on: compile(..., auto_scale_loss=True) (the default under "
        "mixed_float16) or wrap the optimizer: keras.optimizers.LossScaleOptimizer(opt)"
        if scale is None else
        "Let the loss scale grow: keras.optimizers.LossScaleOptimizer(opt, initial_scale=2**20) "
        "or multiply a tiny hand-written loss back to unit size"
    ) + (
        "; or use keras.mixed_precision.set_global_policy('mixed_bfloat16') (float32's range), "
        f"or run the layer in float32: e.g. Dense(..., dtype='float32') for '{p.layers[worst]}'"
    )
    return [
        finding(
            p.layers[worst],
            f"the gradients of {len(hit)} float16 layer{'s' if len(hit) > 1 else ''} ({listed}; "
            f"median over the probe steps) underflow float16 {scaled}: below 6.1e-5 float16 "
            "keeps fewer and fewer digits, and below 6e-8 it flushes them to exactly zero, so "
            "those weights learn from a coarse or zero gradient. In float32 they are small but "
            "exact: this is float16's range, not a vanishing gradient of the network.",
            fix,
            severity="error" if float(lost[worst]) >= UNDERFLOW_ERROR else "warning",
            layers=[p.layers[i] for i in hit[:20]],
            zero_frac={p.layers[i]: round(float(zeros[i]), 4) for i in hit[:20]},
            subnormal_frac={p.layers[i]: round(float(tiny[i]), 4) for i in hit[:20]},
            loss_scale=scale,
        )
    ]
