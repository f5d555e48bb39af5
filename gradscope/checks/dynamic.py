"""Dynamic checks: from the compiled probe steps on the clone."""

from __future__ import annotations

import math

import numpy as np

from gradscope.checks.arbitration import confirmed as confirmed  # (its old home)
from gradscope.checks.arbitration import rate_and_explosion
from gradscope.checks.catalogue import verdict
from gradscope.checks.facts import ExperimentFacts, ProbeFacts
from gradscope.checks.wording import share as pct
from gradscope.verdicts import Severity, Verdict

# Vanishing gradients (docs/checks.md): ratio of the first trainable layer's
# gradient norm to the last one's, median over probe steps. AUTOTRAINER flags
# vanishing when early-layer gradients fall orders of magnitude below late
# ones; a healthy network keeps them within ~1e-1..1e1 of each other.
VANISH_WARN = 1e-3
VANISH_ERROR = 1e-5
# All gradients this small (with a non-zero loss) count as vanished outright
# (SageMaker Debugger's VanishingGradient threshold is 1e-7 on mean |g|).
ALL_ZERO = 1e-7


def _bad_gradients(p: ProbeFacts) -> np.ndarray:
    """[steps, layers] True where a layer with weights got a NaN/Inf gradient norm
    (a NaN norm on a layer without weights only means "does not apply")."""
    has_weights = ~np.isnan(p.weight_norm)
    return np.isinf(p.grad_norm) | (np.isnan(p.grad_norm) & has_weights)


def nonfinite_loss(p: ProbeFacts, e: ExperimentFacts | None = None) -> list[Verdict]:
    bad_steps = [i for i, v in enumerate(p.losses) if not math.isfinite(float(v))]
    bad_steps += [int(i) for i in np.where(np.any(_bad_gradients(p), axis=1))[0]]
    if not bad_steps:
        later = _nonfinite_in_experiments(e) if e is not None else None
        if later is not None:
            where, curve = later
            shown = ", ".join(f"{c:.4g}" for c in curve[:8])
            return [
                verdict(
                    "nonfinite-loss",
                    "loss",
                    f"the loss became NaN/Inf {where} (loss: {shown}); the "
                    f"{p.losses.size} probe steps were still finite, so it appears as "
                    "training goes on.",
                    _NONFINITE_FIX,
                    curve=list(curve),
                )
            ]
        return []
    step = min(bad_steps)
    culprit = _first_nonfinite_layer(p, step)
    where = f" It first appears in layer '{culprit}'." if culprit else ""
    loss_text = ", ".join(f"{float(v):.4g}" for v in p.losses[: step + 1])
    return [
        verdict(
            "nonfinite-loss",
            culprit or "loss",
            f"the loss or a gradient became NaN/Inf at probe step {step + 1} "
            f"(losses: {loss_text}).{where}",
            _NONFINITE_FIX,
            step=step + 1,
            layer=culprit,
        )
    ]


_NONFINITE_FIX = (
    "Look for NaN/Inf or huge values in the inputs and labels, lower the learning rate, "
    "and avoid log(0) in a hand-written loss (clip: ops.clip(p, 1e-7, 1 - 1e-7), or use "
    "Keras's loss with from_logits=True on a linear output); clip gradients: "
    "keras.optimizers.Adam(1e-3, clipnorm=1.0)"
)


def _nonfinite_in_experiments(e: ExperimentFacts) -> tuple[str, tuple[float, ...]] | None:
    """Where a clone trained at the user's own learning rate went NaN/Inf after
    the probe steps: the tiny subset, the sweep's run at the user's rate, or the
    replay of the user's budget (each is evidence on its own: which 32 samples
    the subset holds decides whether a log(0) is hit there)."""
    if e.overfit_steps and not math.isfinite(e.overfit_loss_end):
        return f"while a clone trained on {e.overfit_samples} samples", e.overfit_curve
    user = _sweep_loss(e, e.user_lr) if e.user_lr is not None else None
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


def _first_nonfinite_layer(p: ProbeFacts, step: int) -> str | None:
    """The first layer in forward order whose activations or gradients went non-finite."""
    for i, name in enumerate(p.layers):
        if not p.act_finite[step, i]:
            return name
    bad = _bad_gradients(p)[step]
    for i, name in enumerate(p.layers):
        if bad[i]:
            return name
    return None


def vanishing_gradient(p: ProbeFacts) -> list[Verdict]:
    if p.grad_norm.size == 0 or not np.all(np.isfinite(p.losses)):
        return []
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(np.isfinite(p.grad_norm), p.grad_norm, np.nan), axis=0)
    trainable = [i for i in range(len(p.layers)) if math.isfinite(float(med[i]))]
    # Layers with an exactly-zero gradient are the zero-gradient check's business;
    # an Embedding's gradient touches only the rows in the batch, so its norm is
    # small by nature and says nothing about vanishing.
    flowing = [i for i in trainable if med[i] > 0 and p.layer_types[i] != "Embedding"]
    if len(trainable) >= 1 and float(np.nanmedian(p.losses)) > 1e-6:
        top = max((float(med[i]) for i in trainable), default=0.0)
        if 0 < top < ALL_ZERO:
            return [
                verdict(
                    "vanishing-gradient",
                    "model",
                    f"every layer's gradient norm is below {ALL_ZERO:g} (largest {top:.2g}) "
                    f"while the loss is {float(np.nanmedian(p.losses)):.4g}: nothing learns.",
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
        verdict(
            "vanishing-gradient",
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
        )
    ]


_VANISH_FIX = (
    "Use ReLU-family activations with He initialisation in hidden layers, add "
    "normalisation or residual connections in deep stacks, e.g.\n"
    "    Dense(128, activation='relu', kernel_initializer='he_normal')\n"
    "    BatchNormalization()"
)


# --- issue 3: the rest of the dynamic catalogue ---------------------------------

# TheDeepChecker's healthy band for ||dW||/||W|| per step is [1e-4, 1e-1].
UPDATE_HIGH = 1e-1
UPDATE_LOW = 1e-6
DEAD = 0.5  # share of a ReLU layer's units that never fire
SATURATED = 0.5  # share of sigmoid/tanh outputs in the flat tails
EXPLODE_ERROR = 1e8  # gradient norm
EXPLODE_GROWTH = 1e2  # growth over the probe steps, monotonic
# When the gradient explodes, a first-step norm (before any update) this large
# says it was huge from the start: initialisation or data scale, not the rate.
EXPLODE_FROM_START = 1e4
REG_DOMINATES = 10.0  # regularisation loss / data loss
OVERFIT_MIN_DROP = 0.15  # share of the tiny subset's loss a learning model removes
# ... in this many steps; a slow model's budget buys fewer, and the drop asked for
# shrinks in proportion (10 steps of plain SGD take a healthy model's loss down
# by a few percent only): a short test may miss, it must not accuse.
OVERFIT_FULL_STEPS = 100
# Accuracy stuck at the majority share (on the tiny subset or held back) means
# something only after enough steps for a healthy model to leave it.
HELDOUT_MIN_STEPS = 40
# ... and only on a subset holding at least this many samples outside the
# majority class: accuracy moves only through them. A model that has learned to
# find even 30 % of them shows it on 10 with probability 1 - 0.7**10 = 97 %; on
# 2 (a 256-sample held-back part of 99/1 data) it looks exactly like one
# predicting the majority for everything half the time (0.7**2 = 49 %).
# Applies to accuracy-at-baseline and labels-unpredictable alike.
MIN_MINORITY = 10
# collapsed-predictions: probabilities whose spread across samples (std of an
# output unit) is under this share of the spread the labels ask for (the std
# of a class's 0/1 indicator, sqrt(m (1 - m)) for a majority share m) sit
# within 1 % of one value where the labels span 0..1: the same output for
# every input, to any metric.
COLLAPSE_SHARE = 1e-2
# Outputs without a probability scale (logits, regression) count as the same
# only when equal to float32 precision relative to their size: 1e-6 is ~10
# float32 ulps (eps 1.2e-7), what reordered sums leave on identical outputs.
# (Relative, not floored at 1: small regression targets give small outputs
# that differ by far less than 1e-6 and still differ.)
COLLAPSE_FLOAT = 1e-6


def _median_over_steps(grid: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(grid, axis=0) if grid.size else np.zeros(0)


def zero_gradient(p: ProbeFacts) -> list[Verdict]:
    found: list[Verdict] = []
    with_weights = [i for i in range(len(p.layers)) if np.any(np.isfinite(p.grad_norm[:, i]))]
    cut_off = {name.split("/")[0] for name in p.disconnected}
    if p.disconnected:
        shown = ", ".join(p.disconnected[:6])
        # No variable at all on the loss's path: the loss itself is cut off from
        # the model (an op without a gradient in it, or outputs it never reads).
        nothing = bool(with_weights) and all(p.layers[i] in cut_off for i in with_weights)
        found.append(
            verdict(
                "zero-gradient",
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
    zero_weights = [p.layers[i] for i in _zero_weight_layers(p)]
    if zero_weights:
        found.append(
            verdict(
                "zero-gradient",
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
            verdict(
                "zero-gradient",
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


def _zero_weight_layers(p: ProbeFacts) -> list[int]:
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


def exploding_gradient(p: ProbeFacts) -> list[Verdict]:
    if p.grad_norm.size == 0:
        return []
    finite_steps = [i for i in range(p.grad_norm.shape[0]) if not np.any(np.isinf(p.grad_norm[i]))
                    and math.isfinite(float(p.losses[i]))]
    if not finite_steps:
        return []
    grid = p.grad_norm[: finite_steps[-1] + 1]
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
    if _huge_from_start(p):
        return [
            verdict(
                "exploding-gradient",
                "model",
                f"the global gradient norm is huge from the first step, before any update "
                f"({trend} over the probe steps): the weights' initialisation or the scale "
                "of the inputs or targets makes it so, not the learning rate.",
                "Use the default initialisers (glorot_uniform; he_normal for ReLU) rather "
                "than a wide RandomNormal, scale inputs and targets to unit range, and clip "
                "gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0)",
                severity="error",
                norms=[float(t) for t in totals],
                from_start=True,
            )
        ]
    return [
        verdict(
            "exploding-gradient",
            "model",
            f"the global gradient norm is {'growing step over step' if growing else 'huge'} "
            f"({trend} over the probe steps).",
            "Lower the learning rate, scale inputs and targets to unit range, and clip "
            "gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0)",
            severity="error",
            norms=[float(t) for t in totals],
        )
    ]


def _huge_from_start(p: ProbeFacts) -> bool:
    """The first probe step's gradient (taken before any update) is already huge:
    the learning rate has not acted yet, so it is not the cause."""
    if p.grad_norm.size == 0 or not math.isfinite(float(p.losses[0])):
        return False
    first = p.grad_norm[0]
    if np.any(np.isinf(first)):
        return False
    total = float(np.sqrt(np.nansum(np.where(np.isfinite(first), first, 0.0) ** 2)))
    return total >= EXPLODE_FROM_START


def dead_relu(p: ProbeFacts) -> list[Verdict]:
    found: list[Verdict] = []
    if p.dead.size == 0:
        return found
    # Units behind all-zero weights are "dead" only as a consequence: zero-gradient
    # names that cause.
    zeroed = set(_zero_weight_layers(p))
    with np.errstate(all="ignore"):
        least = np.nanmin(np.where(np.isnan(p.dead), np.inf, p.dead), axis=0)
    for i, name in enumerate(p.layers):
        share = float(least[i])
        if i in zeroed or not math.isfinite(share) or share < DEAD:
            continue
        whole = share >= 1.0
        found.append(
            verdict(
                "dead-relu",
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


def saturated_activation(p: ProbeFacts) -> list[Verdict]:
    found: list[Verdict] = []
    med = _median_over_steps(p.saturated)
    for i, name in enumerate(p.layers):
        if p.activations[i] not in ("sigmoid", "tanh") or name in p.output_layers:
            continue
        share = float(med[i]) if med.size else float("nan")
        if not math.isfinite(share) or share < SATURATED:
            continue
        found.append(
            verdict(
                "saturated-activation",
                name,
                f"{pct(share)} of the {p.activations[i]} outputs of '{name}' sit in the flat "
                "tails, where the derivative is under 4 % of its peak: gradients through it "
                "nearly vanish.",
                "Scale the inputs to unit range, use Glorot initialisation, or switch hidden "
                "layers to ReLU: Dense(n, activation='relu')",
                saturated_fraction=share,
            )
        )
    return found


def regularization_dominates(p: ProbeFacts) -> list[Verdict]:
    if p.data_losses is None or p.reg_losses is None or p.reg_losses.size == 0:
        return []
    data = float(np.nanmedian(p.data_losses))
    reg = float(np.nanmedian(p.reg_losses))
    if not (math.isfinite(data) and math.isfinite(reg)) or reg <= REG_DOMINATES * max(data, 1e-12):
        return []
    return [
        verdict(
            "regularization-dominates",
            "loss",
            f"the regularisation loss ({reg:.4g}) is {reg / max(data, 1e-12):.3g}x the data "
            f"loss ({data:.4g}): the optimiser mostly shrinks weights instead of fitting the data.",
            "Lower the regularisation factor, e.g. kernel_regularizer=keras.regularizers.l2(1e-4)",
            reg_loss=reg,
            data_loss=data,
        )
    ]


def _median_update_ratio(p: ProbeFacts) -> float | None:
    med = _median_over_steps(p.update_ratio)
    vals = med[np.isfinite(med)] if med.size else med
    return float(np.median(vals)) if vals.size else None


def _best_lr(e: ExperimentFacts) -> tuple[float, float] | None:
    finite = [pt for pt in e.sweep if math.isfinite(pt.loss)]
    if not finite:
        return None
    best = min(finite, key=lambda pt: pt.loss)
    return best.lr, best.loss


def _sweep_loss(e: ExperimentFacts, lr: float) -> float | None:
    for pt in e.sweep:
        if pt.lr == lr:
            return pt.loss
    return None


def learning_rate(p: ProbeFacts, e: ExperimentFacts | None) -> list[Verdict]:
    ratio = _median_update_ratio(p)
    if ratio is None or e is None:
        return []
    if e.user_lr == 0.0:
        return [
            verdict(
                "lr-too-low",
                "optimizer",
                "the learning rate is 0: no step can change any weight.",
                "Set a learning rate, e.g. keras.optimizers."
                f"{e.optimizer_name}(learning_rate=1e-3)",
                user_lr=0.0,
            )
        ]
    best = _best_lr(e)
    user_lr = e.user_lr
    sweep_text = ""
    if best is not None and user_lr is not None:
        sweep_text = (
            f"; a {e.sweep_steps}-step sweep on a clone found the loss fell furthest near "
            f"lr={best[0]:.0e} (loss {best[1]:.4g}); you use {user_lr:g}"
        )
    diverged = (
        not math.isfinite(e.overfit_loss_end)
        or e.overfit_loss_end > e.overfit_loss_start * 1.05
        or not np.all(np.isfinite(p.losses))
        or _nonfinite_in_experiments(e) is not None
    )
    user_loss = _sweep_loss(e, user_lr) if user_lr is not None else None
    sweep_says_lower = (
        best is not None
        and user_lr is not None
        and best[0] <= user_lr / 10
        and (user_loss is None or not math.isfinite(user_loss) or best[1] < 0.9 * user_loss)
    )
    # A clearly better loss at a rate 10x lower or more: the user's rate overshoots.
    sweep_strongly_lower = (
        sweep_says_lower
        and best is not None
        and (user_loss is None or not math.isfinite(user_loss) or best[1] < 0.8 * user_loss)
    )
    sweep_says_higher = (
        best is not None
        and user_lr is not None
        and best[0] >= user_lr * 100
        and user_loss is not None
        and best[1] < user_loss - 0.1 * abs(e.init_loss)
    )
    # When the sweep's best rate is the user's own (or higher), the rate is not
    # what goes wrong: an initialisation or input problem makes the steps huge.
    sweep_clears_user = best is not None and user_lr is not None and best[0] >= user_lr
    if not sweep_clears_user and (ratio >= UPDATE_HIGH and (diverged or sweep_says_lower)) or (
        ratio >= UPDATE_HIGH / 10 and sweep_strongly_lower
    ):
        return [
            verdict(
                "lr-too-high",
                "optimizer",
                f"each step changes the weights by {ratio:.2g} of their size (median "
                f"||dW||/||W||; healthy is 1e-4..1e-1) and the loss "
                f"{'diverges' if diverged else 'does not settle'}{sweep_text}.",
                "Lower the learning rate"
                + (f", e.g. keras.optimizers.{e.optimizer_name}(learning_rate={best[0]:.0e})" if best else "")
                + ".",
                update_ratio=ratio,
                best_lr=best[0] if best else None,
                user_lr=user_lr,
            )
        ]
    flat = abs(e.overfit_loss_end - e.overfit_loss_start) <= 1e-3 * max(abs(e.overfit_loss_start), 1e-12)
    # Adam-family steps are lr * m / (sqrt(v) + epsilon): a large epsilon
    # (the TF1 docs' 1.0 or 0.1) shrinks every step as much as a tiny rate.
    eps = e.optimizer_epsilon
    big_eps = eps is not None and eps >= 1e-2
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
    if (ratio <= UPDATE_LOW and (flat or sweep_says_higher)) or (ratio <= 1e-4 and sweep_says_higher):
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
            verdict(
                "lr-too-low",
                "optimizer",
                f"each step changes the weights by only {ratio:.2g} of their size (median "
                f"||dW||/||W||; healthy is 1e-4..1e-1){eps_text}{sweep_text}.",
                fix,
                severity="error" if flat else "warning",
                update_ratio=ratio,
                best_lr=best[0] if best else None,
                user_lr=user_lr,
            )
        ]
    return []


def _label_majority(e: ExperimentFacts) -> float | None:
    """The majority class's share of the labels, from the largest set measured
    (evaluation batch, held-back part, tiny subset); None for regression."""
    for m in (e.eval_majority, e.heldout_majority, e.overfit_majority):
        if m is not None and math.isfinite(m):
            return m
    return None


# Share of predictions that are the majority class from which a model "predicts
# the majority class for everything": a few stray minority predictions (which
# move accuracy by a point or two either way) do not make it a learner.
PREDICTS_MAJORITY = 0.95


def _predicts_majority(e: ExperimentFacts) -> bool:
    """After fitting, the clone predicts the majority class for (nearly) every
    sample of its fitted part and of the held-back part, and held-back accuracy
    is no better than that class's share. Read from the predictions when they
    were counted, else from accuracy equal to the majority share."""
    assert e.heldout_acc is not None and e.heldout_majority is not None
    if e.heldout_acc > e.heldout_majority + 0.01:
        return False
    if e.heldout_pred_majority is not None and e.heldout_train_pred_majority is not None:
        return min(e.heldout_pred_majority, e.heldout_train_pred_majority) >= PREDICTS_MAJORITY
    return (
        e.heldout_train_acc is not None
        and abs(e.heldout_train_acc - e.heldout_majority) <= 0.01
        and abs(e.heldout_acc - e.heldout_majority) <= 0.01
    )


def _enough_minority(majority: float | None, samples: int) -> bool:
    """At least MIN_MINORITY of the samples lie outside the majority class."""
    return majority is not None and round((1.0 - majority) * samples) >= MIN_MINORITY


def collapsed_predictions(e: ExperimentFacts) -> list[Verdict]:
    """The same output for every input: judged on the evaluation batch (256 rows,
    after the probe steps) and, when it ran, on the tiny subset after the overfit
    run; both must agree, so a subset of one class (rare classes) that the model
    rightly answers with one value is no evidence. For probabilities, "the same"
    is relative to the spread the labels need (COLLAPSE_SHARE); for any other
    output, equal to float precision (COLLAPSE_FLOAT)."""
    majority = _label_majority(e)
    if majority is not None and majority >= 1.0:
        return []  # one class: a constant output is what the labels ask for
    if e.probability_output:
        need = math.sqrt(majority * (1 - majority)) if majority is not None else 0.5
        tolerance = COLLAPSE_SHARE * need
    else:
        need = None
        tolerance = COLLAPSE_FLOAT * max(e.pred_scale, 0.0)
    on_eval, on_subset = e.pred_spread_after, e.overfit_spread_end
    if not (math.isfinite(on_eval) and on_eval <= tolerance):
        return []
    if math.isfinite(on_subset) and on_subset > tolerance:
        return []
    trained = (
        f", and by {on_subset:.2g} across the {e.overfit_samples} samples a clone then trained on"
        if math.isfinite(on_subset)
        else ""
    )
    versus = (
        f": under {COLLAPSE_SHARE:.0%} of the spread the labels need ({need:.2g})"
        if need is not None
        else ": equal to float precision"
    )
    return [
        verdict(
            "collapsed-predictions",
            "model",
            f"the model gives the same output for every input: its outputs differ across the "
            f"evaluation batch by {on_eval:.2g} (largest std of an output unit){trained}{versus}.",
            "The inputs do not reach the output: look for saturated or dead layers, "
            "constant inputs or a constant output activation (reported with this verdict).",
            spread=max(on_eval, on_subset) if math.isfinite(on_subset) else on_eval,
            eval_spread=on_eval,
            subset_spread=on_subset if math.isfinite(on_subset) else None,
            tolerance=tolerance,
        )
    ]


def symptoms(p: ProbeFacts, e: ExperimentFacts | None, classification: bool,
             n_classes: int | None, loss_kind: str | None) -> list[Verdict]:
    if e is None:
        return []
    found: list[Verdict] = []
    scale = max(e.pred_scale, 1e-12)
    if e.pred_change <= 1e-7 * max(1.0, scale):
        found.append(
            verdict(
                "predictions-unchanged",
                "model",
                f"after {p.losses.size} training steps the predictions on a fixed batch are "
                f"identical to the initial ones (largest change {e.pred_change:.2g}).",
                "Nothing reaches the output: see the cause reported with this verdict "
                "(a constant output activation, a frozen model, a zero learning rate).",
            )
        )
    found += collapsed_predictions(e)
    start, end = e.overfit_loss_start, e.overfit_loss_end
    acc_rose = (
        e.overfit_acc_end is not None
        and e.overfit_acc_start is not None
        and (e.overfit_acc_end >= 0.9 or e.overfit_acc_end - e.overfit_acc_start >= 0.3)
    )
    # A faster rate that learns clearly (sweep) means the model can learn: not
    # overfitting in time is then the rate's or the budget's doing (lr-too-low /
    # undertrained), not a symptom of a broken model.
    best = _best_lr(e)
    learns_faster = (
        best is not None
        and e.user_lr is not None
        and best[0] > e.user_lr
        and math.isfinite(e.init_loss)
        and best[1] <= 0.7 * e.init_loss
    )
    if e.overfit_steps and math.isfinite(start) and not acc_rose and not learns_faster:
        # A model that learns at all takes a tiny subset's loss down clearly within
        # the budget, even at a modest learning rate; a slow but healthy one at
        # least by OVERFIT_MIN_DROP.
        required = OVERFIT_MIN_DROP * min(1.0, e.overfit_steps / OVERFIT_FULL_STEPS)
        fell = math.isfinite(end) and end <= (1 - required) * start
        if not fell:
            acc = (
                f", accuracy {pct(e.overfit_acc_start)} -> {pct(e.overfit_acc_end)}"
                if e.overfit_acc_end is not None and e.overfit_acc_start is not None
                else ""
            )
            found.append(
                verdict(
                    "cannot-overfit",
                    "model",
                    f"a clone trained {e.overfit_steps} steps on just {e.overfit_samples} samples "
                    f"only took the loss from {start:.4g} to {end:.4g}{acc}: a model that can "
                    f"learn memorises {e.overfit_samples} samples easily.",
                    "Fix the cause reported with this verdict first; then check that the model "
                    "is big enough and the loss matches the labels.",
                    loss_start=start,
                    loss_end=end,
                )
            )
    stuck_on_subset = (
        e.overfit_steps >= HELDOUT_MIN_STEPS
        and e.overfit_acc_end is not None
        and e.overfit_majority is not None
        and e.overfit_acc_end <= e.overfit_majority + 0.02
        and e.overfit_majority < 1.0
        and _enough_minority(e.overfit_majority, e.overfit_samples)
    )
    # Fitting 256 samples for a few epochs leaves train and held-back accuracy
    # both exactly at the majority share: it predicts one class for everything.
    stuck_on_fit = (
        e.heldout_steps >= HELDOUT_MIN_STEPS
        and e.heldout_train_acc is not None
        and e.heldout_acc is not None
        and e.heldout_majority is not None
        and 0.5 <= e.heldout_majority < 1.0
        and _predicts_majority(e)
        and _enough_minority(e.heldout_majority, e.heldout_samples)
        and not _learned_beyond_prior(e)
    )
    if stuck_on_fit and not stuck_on_subset:
        found.append(
            verdict(
                "accuracy-at-baseline",
                "model",
                f"after {e.heldout_steps} steps on {e.heldout_samples} samples the accuracy is "
                f"{pct(e.heldout_train_acc)} on them and {pct(e.heldout_acc)} on held-back "
                f"samples, no better than the share of the majority class "
                f"({pct(e.heldout_majority)})"
                + (
                    f": the model answers that class for {pct(e.heldout_pred_majority)} of the "
                    "held-back samples."
                    if e.heldout_pred_majority is not None
                    else ". The model predicts the majority class for everything."
                ),
                "Weight the rare class (class_weight='balanced'-style weights), check the "
                "features carry signal, and judge by recall / AUC rather than accuracy.",
                accuracy=e.heldout_acc,
                majority=e.heldout_majority,
                predicted_majority=e.heldout_pred_majority,
            )
        )
    if stuck_on_subset:
        found.append(
            verdict(
                "accuracy-at-baseline",
                "model",
                f"accuracy stays at {pct(e.overfit_acc_end)}, no better than always predicting "
                f"the majority class ({pct(e.overfit_majority)}), even when training on a tiny "
                "subset.",
                "The model predicts one class for everything: see the cause reported with "
                "this verdict.",
                accuracy=e.overfit_acc_end,
                majority=e.overfit_majority,
            )
        )
    curve = [c for c in e.overfit_curve if math.isfinite(c)]
    tail = curve[len(curve) // 2 :]
    # Flat from the start, or stuck on a plateau for the second half of the
    # overfit run without having got anywhere (a learning model keeps falling).
    plateau = (
        len(tail) >= 3
        and (max(tail) - min(tail)) <= 1e-3 * max(abs(tail[0]), 1e-12)
        and math.isfinite(end)
        and end > 0.5 * start
        and end > 1e-3
    )
    flat_from_start = (
        math.isfinite(e.loss_after_probe)
        and math.isfinite(e.init_loss)
        and abs(e.loss_after_probe - e.init_loss) <= 1e-6 * max(abs(e.init_loss), 1e-12)
        and math.isfinite(start)
        and abs(end - start) <= 1e-4 * max(abs(start), 1e-12)
    )
    if flat_from_start or plateau:
        found.append(
            verdict(
                "loss-flat",
                "loss",
                f"the loss does not move: {e.init_loss:.6g} before and {e.loss_after_probe:.6g} "
                f"after the probe steps; while overfitting 32 samples it went {start:.6g} -> "
                f"{end:.6g} and then stayed flat.",
                "See the cause reported with this verdict.",
            )
        )
    if classification and n_classes and n_classes >= 2 and loss_kind in (
        "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"
    ):
        expected = math.log(n_classes) if loss_kind != "binary_crossentropy" else math.log(2)
        if math.isfinite(e.init_loss) and e.init_loss > 3 * expected + 1.0:
            found.append(
                verdict(
                    "init-loss-unexpected",
                    "loss",
                    f"the initial loss is {e.init_loss:.4g}, far above ln({n_classes if loss_kind != 'binary_crossentropy' else 2}) "
                    f"= {expected:.3g} expected from an untrained classifier: the model starts "
                    "over-confident (unscaled inputs, a large output initialisation, or the wrong loss).",
                    "Scale the inputs, keep the default initialisers on the output layer, and "
                    "check the loss against the labels.",
                    init_loss=e.init_loss,
                    expected=expected,
                )
            )
    if (
        e.heldout_acc is not None
        and e.heldout_train_acc is not None
        and e.heldout_majority is not None
    ):
        chance = e.heldout_majority
        # The clone learns its own part (train accuracy clearly above held-back)
        # while held-back accuracy stays at chance and does not rise from where it
        # started: what it learned does not carry over, so the labels do not
        # follow the inputs. (Held-back *loss* can still fall by learning the
        # class priors, so it is no evidence either way.)
        start = e.heldout_acc_start if e.heldout_acc_start is not None else 0.0
        if (
            e.heldout_train_acc >= e.heldout_acc + 0.1
            # (chance = the majority share, which shuffled labels rarely even reach)
            and e.heldout_acc <= chance + 0.01
            and e.heldout_acc <= start + 0.05
            # (accuracy at chance means nothing with a handful of rare samples)
            and _enough_minority(chance, e.heldout_samples)
        ):
            found.append(
                verdict(
                    "labels-unpredictable",
                    "labels",
                    f"a clone fitted to {e.heldout_samples} samples reached "
                    f"{pct(e.heldout_train_acc)} on them but only {pct(e.heldout_acc)} on "
                    f"{e.heldout_samples} held-back samples (chance: {pct(chance)}): "
                    "the labels do not follow from the inputs.",
                    "Check that inputs and labels are aligned: shuffle them together, e.g.\n"
                    "    idx = np.random.permutation(len(x)); x, y = x[idx], y[idx]\n"
                    "and that no sort or filter was applied to only one of them.",
                    train_acc=e.heldout_train_acc,
                    heldout_acc=e.heldout_acc,
                    chance=chance,
                )
            )
    return found


def undertrained(e: ExperimentFacts | None) -> list[Verdict]:
    if e is None or len(e.budget_curve) < 3 or not all(math.isfinite(c) for c in e.budget_curve):
        return []
    curve = e.budget_curve
    start, end = curve[0], curve[-1]
    # Still going down at the end, at no less than a quarter of its average pace:
    # the budget ends before the loss levels off.
    average_drop = (start - end) / (len(curve) - 1)
    still_falling = end < 0.995 * start and (curve[-2] - end) >= 0.25 * average_drop > 0
    best = _best_lr(e)
    lower_possible = (best is not None and best[1] <= 0.7 * end) or (
        math.isfinite(e.overfit_loss_end) and e.overfit_loss_end <= 0.3 * e.overfit_loss_start
    )
    if not (still_falling and lower_possible):
        return []
    at_chance = (
        e.budget_acc_end is not None
        and e.eval_majority is not None
        and e.budget_acc_end <= e.eval_majority + 0.05
    )
    trend = " -> ".join(f"{c:.4g}" for c in curve)
    better = f"; at lr={best[0]:.0e} a clone got to {best[1]:.4g} in {e.sweep_steps} steps" if best else ""
    return [
        verdict(
            "undertrained",
            "model",
            f"replaying your budget of {e.budget_steps} steps on a clone, the loss is still "
            f"falling when it ends ({trend}){better}"
            + (f", and accuracy would still be {pct(e.budget_acc_end)} (majority class "
               f"{pct(e.eval_majority)})." if at_chance else "."),
            "Train for more epochs, or raise the learning rate"
            + (f" (e.g. learning_rate={best[0]:.0e})" if best else "")
            + "; an EarlyStopping callback can pick the stopping point for you.",
            severity="warning" if at_chance else "info",
            budget_steps=e.budget_steps,
            curve=list(curve),
        )
    ]


# Gradient clipping at or below this (clipnorm, global_clipnorm or clipvalue)
# shrinks steps like a tiny learning rate; 1.0 and 5.0 are the usual choices.
CLIP_TINY = 1e-3


# A held-back cross-entropy below this share of the prior's (the loss of
# predicting the class shares) shows the inputs are being used.
PRIOR_MARGIN = 0.9


def _learned_beyond_prior(e: ExperimentFacts) -> bool:
    """On imbalanced data a learning model keeps predicting the majority class for
    a while (accuracy at the majority share) while its loss already falls below
    what the class shares alone give: it is learning, not stuck."""
    if e.heldout_loss is None or not e.heldout_prior_loss:
        return False
    end = e.heldout_loss[1]
    return math.isfinite(end) and end < PRIOR_MARGIN * e.heldout_prior_loss


def _rate_and_explosion(p: ProbeFacts, e: ExperimentFacts | None) -> list[Verdict]:
    """lr-too-high/low and exploding-gradient, ordered by checks/arbitration.py."""
    return rate_and_explosion(learning_rate(p, e), exploding_gradient(p))


def run_dynamic(p: ProbeFacts, e: ExperimentFacts | None, classification: bool,
                    n_classes: int | None, loss_kind: str | None) -> list[Verdict]:
    found = nonfinite_loss(p, e)
    if found:
        # What led up to the NaN ranks first: a learning rate far too high, or huge /
        # growing gradients in the finite steps before it.
        before = _rate_and_explosion(p, e)
        return before + found + symptoms(p, e, classification, n_classes, loss_kind)
    found += exploding_gradient(p)
    found += zero_gradient(p)
    if not _zero_weight_layers(p):
        found += vanishing_gradient(p)
    found += dead_relu(p)
    found += saturated_activation(p)
    found += regularization_dominates(p)
    found += learning_rate(p, e)
    found += symptoms(p, e, classification, n_classes, loss_kind)
    if not any(v.severity == "error" for v in found):
        found += undertrained(e)
    return found
