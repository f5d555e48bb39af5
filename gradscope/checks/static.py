"""Static checks: model, compile config and a data sample, before any step.

Each check lives in its family module, declared there once (checks/registry.py).
This module imports the families in the order they run, runs them
(`run_static`) and keeps the entry points older code and tests call."""

from __future__ import annotations

from collections.abc import Callable

# Which static findings wait for the experiments' evidence: checks/arbitration.py
from gradscope.checks.arbitration import NEEDS_EVIDENCE as NEEDS_EVIDENCE  # noqa: F401
from gradscope.checks.arbitration import needs_evidence as needs_evidence  # noqa: F401
from gradscope.checks.arbitration import suppress_static
from gradscope.checks.facts import BatchFacts, ModelFacts, OutputFacts
from gradscope.checks.registry import REGISTRY, Check, CheckFn, Facts, in_family_order, run_checks
from gradscope.verdicts import Verdict

# The families register their checks when imported, so this order is the order
# the checks run in, and among verdicts of equal rank the order the user reads
# them in: the pipeline first (sorted batches explain label-side symptoms), then
# the values the model gets, the model, its outputs, its labels; the input
# scale last (checks/input_scale.py says why). Not sorted by name, therefore:
# isort: off
from gradscope.checks import pipeline
from gradscope.checks import inputs
from gradscope.checks import model
from gradscope.checks import outputs
from gradscope.checks import labels
from gradscope.checks import input_scale
# isort: on

FAMILIES = (pipeline, inputs, model, outputs, labels, input_scale)


def run_static(facts: ModelFacts, batches: BatchFacts | None = None,
               on_error: Callable[[Check, Exception], None] | None = None) -> list[Verdict]:
    """Every static check, in the families' order, then the rules between their
    verdicts (checks/arbitration.py, STATIC_SUPPRESSIONS). A check that raises
    costs only its own verdicts when `on_error` is given (it is told)."""
    bundle = Facts(model=facts, batches=batches)
    return suppress_static(run_checks(static_checks(), bundle, on_error), bundle)


def static_checks() -> list[Check]:
    """Every registered static check, in report order (family, then declaration)."""
    return in_family_order("static", FAMILIES)


# --- the per-check entry points of old ----------------------------------------
# Before the registry each check was a function of the facts it read (one output,
# the batch facts, the model facts); tests still call some of them that way.


def _run(fn: CheckFn, facts: Facts) -> list[Verdict]:
    """The verdicts of the check registered with `fn` (its ID comes from the registry)."""
    (entry,) = (c for c in REGISTRY.values() if c.fn is fn)
    return entry.run(facts)


def _with_output(out: OutputFacts) -> ModelFacts:
    """A model that is nothing but `out`: the per-output checks read no more."""
    return ModelFacts(name="model", total_params=0, trainable_params=0, weighted_layers=(),
                      frozen_layers=(), outputs=(out,))


def zero_sample_weights(b: BatchFacts) -> list[Verdict]:
    return _run(pipeline.zero_sample_weights, Facts(model=ModelFacts("model", 0, 0, (), ()), batches=b))


def unnormalized_input(facts: ModelFacts) -> list[Verdict]:
    return _run(input_scale.unnormalized_input, Facts(model=facts))


def regression_target_classification(out: OutputFacts) -> list[Verdict]:
    return _run(labels.regression_target_classification, Facts(model=_with_output(out)))


def class_imbalance(out: OutputFacts, batches: BatchFacts | None = None) -> list[Verdict]:
    return _run(labels.class_imbalance, Facts(model=_with_output(out), batches=batches))


def mse_for_classification(out: OutputFacts) -> list[Verdict]:
    return _run(labels.mse_for_classification, Facts(model=_with_output(out)))
