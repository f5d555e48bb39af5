"""Dynamic checks: from the compiled probe steps on the clone."""

from __future__ import annotations

import math

import numpy as np

from gradscope.checks.catalogue import verdict
from gradscope.checks.facts import ProbeFacts
from gradscope.verdicts import Verdict

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


def nonfinite_loss(p: ProbeFacts) -> list[Verdict]:
    bad_steps = [i for i, v in enumerate(p.losses) if not math.isfinite(float(v))]
    bad_steps += [int(i) for i in np.where(np.any(_bad_gradients(p), axis=1))[0]]
    if not bad_steps:
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
            "Look for NaN/Inf or huge values in the inputs and labels, lower the learning rate, "
            "and avoid log(0): use the loss with from_logits=True on a linear output, or "
            "clip gradients: optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)",
            step=step + 1,
            layer=culprit,
        )
    ]


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
    # Layers with an exactly-zero gradient are the zero-gradient check's business.
    flowing = [i for i in trainable if med[i] > 0]
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
    severity = "error" if ratio < VANISH_ERROR else "warning"
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


def run_dynamic(p: ProbeFacts) -> list[Verdict]:
    found: list[Verdict] = []
    found += nonfinite_loss(p)
    if not found:
        found += vanishing_gradient(p)
    return found
