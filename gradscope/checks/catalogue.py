"""Every check ID gradscope can emit, its default severity and whether it is a
cause or a symptom. The IDs are a public contract (docs/checks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gradscope.verdicts import Severity, Verdict


@dataclass(frozen=True)
class CheckInfo:
    id: str
    severity: Severity
    kind: Literal["cause", "symptom"]
    title: str


_ENTRIES = [
    # static
    ("single-unit-softmax", "error", "cause", "softmax over a single unit"),
    ("loss-output-mismatch", "error", "cause", "the loss cannot fit the output layer"),
    ("loss-label-mismatch", "error", "cause", "the label encoding does not fit the loss"),
    ("logits-mismatch", "error", "cause", "from_logits does not match the output activation"),
    ("output-activation-mismatch", "error", "cause", "the output activation cannot produce the targets"),
    ("regression-target-classification", "error", "cause", "continuous targets with a classification loss"),
    ("accuracy-on-regression", "warning", "cause", "accuracy metric on a regression task"),
    ("unscaled-targets", "warning", "cause", "regression targets far from unit scale"),
    ("mse-for-classification", "warning", "cause", "squared/absolute error on class labels"),
    ("constant-labels", "error", "cause", "every label is the same"),
    ("class-imbalance", "warning", "cause", "one class holds >= 90 % of the labels"),
    ("nonfinite-input", "error", "cause", "NaN or Inf in inputs or labels"),
    ("constant-input", "error", "cause", "inputs are constant"),
    ("unnormalized-input", "warning", "cause", "inputs far from unit scale"),
    ("repeated-batch", "error", "cause", "the pipeline yields the same batch again"),
    ("ordered-labels", "warning", "cause", "batches are nearly single-class"),
    ("frozen-model", "error", "cause", "nothing in the model can train"),
    ("frozen-layers", "info", "cause", "some layers are frozen"),
    # dynamic
    ("nonfinite-loss", "error", "cause", "the loss or a gradient is NaN/Inf"),
    ("zero-gradient", "error", "cause", "a variable gets no or zero gradient"),
    ("vanishing-gradient", "error", "cause", "early layers get orders of magnitude less gradient"),
    ("exploding-gradient", "error", "cause", "gradients are huge or growing"),
    ("dead-relu", "warning", "cause", "ReLU units output 0 for every sample"),
    ("saturated-activation", "warning", "cause", "sigmoid/tanh outputs sit in the flat tails"),
    ("lr-too-high", "error", "cause", "learning rate too high"),
    ("lr-too-low", "error", "cause", "learning rate too low"),
    ("loss-flat", "error", "symptom", "the loss does not change"),
    ("init-loss-unexpected", "warning", "symptom", "initial loss far from ln(C)"),
    ("collapsed-predictions", "error", "symptom", "the same output for every input"),
    ("predictions-unchanged", "error", "symptom", "predictions do not move"),
    ("cannot-overfit", "error", "symptom", "cannot overfit a tiny subset"),
    ("accuracy-at-baseline", "warning", "symptom", "accuracy stays at the majority-class rate"),
    ("labels-unpredictable", "warning", "cause", "held-back subset stays at chance"),
    ("regularization-dominates", "warning", "cause", "regularisation dwarfs the data loss"),
    ("undertrained", "info", "symptom", "the budget ends while the loss still falls"),
    # gradscope's own (extensions of the catalogue)
    ("label-smoothing-too-high", "error", "cause", "label smoothing blends the targets towards uniform"),
    ("probe-failed", "info", "cause", "gradscope could not probe this model"),
    ("custom-train-step", "info", "cause", "probed through the compiled loss, not the model's own train_step"),
    ("dropout-too-high", "error", "cause", "dropout drops nearly every unit"),
    ("batch-norm-single-sample", "error", "cause", "BatchNormalization on batches of one sample"),
    ("embedding-out-of-range", "error", "cause", "Embedding ids outside its input_dim"),
    ("zero-sample-weights", "error", "cause", "sample weights are 0 for (nearly) every sample"),
]

CATALOGUE: dict[str, CheckInfo] = {
    e[0]: CheckInfo(e[0], e[1], e[2], e[3]) for e in _ENTRIES  # type: ignore[arg-type]
}


def verdict(
    check: str,
    subject: str,
    message: str,
    fix: str,
    severity: Severity | None = None,
    **evidence: Any,
) -> Verdict:
    """A Verdict for a catalogued ID: kind and default severity come from the catalogue."""
    info = CATALOGUE[check]
    return Verdict(
        check=check,
        severity=severity or info.severity,
        subject=subject,
        message=message,
        fix=fix,
        kind=info.kind,
        evidence={k: _plain(v) for k, v in evidence.items()},
    )


def _plain(value: Any) -> Any:
    """Evidence must serialise to JSON: numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
