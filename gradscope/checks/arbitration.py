"""Arbitration between verdicts: which static findings wait for evidence, which
the experiments clear, and which verdict a cause present explains.

The checks each judge one thing; when two of them see the same trouble from
different ends (huge inputs *and* the huge gradients they cause), these rules
decide what the user reads first. They live in one place so that a new rule is
one table entry, and so that "a cause always ranks above a symptom it explains"
is applied the same way to every verdict (no TensorFlow: verdicts and facts only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from typing import TYPE_CHECKING

from gradscope.checks.facts import ExperimentFacts
from gradscope.checks.measures import accuracy_rose, learns_held_back, zero_weight_layers
from gradscope.verdicts import Verdict

if TYPE_CHECKING:
    from gradscope.checks.registry import Facts

# --- deferred static findings ------------------------------------------------

# Static findings issued only if the experiments do not show the model learning
# anyway (`confirmed`): large targets are a problem when they stall the
# optimizer, not when a normalisation layer or a large learning rate copes
# with them.
NEEDS_EVIDENCE = frozenset({"unscaled-targets"})

# A model whose tiny-subset MSE falls below this share of the targets' variance
# explains most of them (more than their mean: with large targets, learning
# the bias alone removes most of the initial loss) and so copes with their
# scale: `unscaled-targets` would then be advice, not the reason it fails.
TARGET_SCALE_COPES = 0.5


def needs_evidence(v: Verdict) -> bool:
    """Whether a static verdict waits for the experiments (see NEEDS_EVIDENCE);
    tiny inputs too: Adam copes with them, plain SGD does not."""
    return v.check in NEEDS_EVIDENCE or (v.check == "unnormalized-input" and bool(v.evidence.get("tiny")))


def confirmed(deferred: list[Verdict], e: ExperimentFacts | None) -> list[Verdict]:
    """Deferred static verdicts the experiments do not clear (all, without experiments)."""
    kept = []
    for v in deferred:
        std = v.evidence.get("std")
        if v.check == "unscaled-targets" and e is not None and e.overfit_steps and std:
            end = e.overfit_loss_end
            if math.isfinite(end) and end <= TARGET_SCALE_COPES * float(std) ** 2:
                continue
        if v.check == "unnormalized-input" and e is not None and _learns(e):
            continue
        kept.append(v)
    return kept


def _learns(e: ExperimentFacts) -> bool:
    """The clone overfits the tiny subset (its loss halves or its accuracy rises),
    or generalises to the held-back part (measures.learns_held_back)."""
    if learns_held_back(e):
        return True
    start, end = e.overfit_loss_start, e.overfit_loss_end
    if not e.overfit_steps or not (math.isfinite(start) and math.isfinite(end)):
        return False
    return accuracy_rose(e) or end <= 0.5 * start


# --- static suppressions -----------------------------------------------------
#
# Rules between the static checks' verdicts (checks/static.run_static applies
# STATIC_SUPPRESSIONS, in order, to what the static checks found): a verdict
# another one says better, or one the data sample cannot support.

# What one train_on_batch batch cannot tell (see one_batch_is_no_label_sample).
LABEL_DISTRIBUTION_CHECKS = ("constant-labels", "class-imbalance")


def sorted_generator_is_not_constant(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """A generator shows only its first batches: all of one class there is sorted
    data far more often than constant labels. When ordered-labels says so, the
    constant-labels verdict on those same batches is left out: it is said once."""
    b = facts.batches
    if b is None or b.kind != "generator" or not any(v.check == "ordered-labels" for v in found):
        return found
    return [v for v in found if v.check != "constant-labels"]


def one_batch_is_no_label_sample(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """A train_on_batch diagnosis (BatchFacts.kind "batch") sees the labels of the
    one intercepted call, and a loop picks each batch's labels for its purpose (a
    GAN's discriminator gets all ones for real images, all zeros for fakes): one
    such batch says nothing of the label distribution, so neither constant labels
    nor a majority class in it is reported."""
    if facts.batches is None or facts.batches.kind != "batch":
        return found
    return [v for v in found if v.check not in LABEL_DISTRIBUTION_CHECKS]


StaticRule = Callable[[list[Verdict], "Facts"], list[Verdict]]
STATIC_SUPPRESSIONS: tuple[StaticRule, ...] = (
    sorted_generator_is_not_constant,
    one_batch_is_no_label_sample,
)


def suppress_static(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """The static verdicts the user reads (STATIC_SUPPRESSIONS, in order)."""
    for rule in STATIC_SUPPRESSIONS:
        found = rule(found, facts)
    return found


# --- dynamic suppressions ----------------------------------------------------
#
# Rules between the dynamic checks' verdicts (checks/dynamic.run_dynamic applies
# DYNAMIC_SUPPRESSIONS, in order, to what the checks found in registration
# order): which verdicts a NaN loss, zero-initialised weights or an error
# leave out, and the one reordering, the rate against the explosion.

RATE_CHECKS = ("lr-too-high", "lr-too-low")
# What is still reported once the loss went NaN/Inf, after the NaN itself: the
# experiments' symptoms, which ran on a fresh clone. (undertrained is not
# among them: a budget too short is moot when training breaks.)
AFTER_NONFINITE = (
    "predictions-unchanged", "collapsed-predictions", "cannot-overfit", "accuracy-at-baseline",
    "loss-flat", "init-loss-unexpected", "labels-unpredictable",
)


def rate_and_explosion(rate: list[Verdict], explosion: list[Verdict]) -> list[Verdict]:
    """lr-too-high/low and exploding-gradient, in the order of their likelihood: a
    gradient huge before any update ranks ahead of the rate (it explains the huge
    steps); otherwise the rate is the usual reason the gradient explodes."""
    if explosion and explosion[0].evidence.get("from_start"):
        return explosion + rate
    return rate + explosion


def nonfinite_loss_first(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """Once the loss or a gradient is NaN/Inf, every later per-layer figure is NaN
    and says nothing: only what led up to it is reported first (a rate far too
    high, huge or growing gradients in the finite steps before it, ordered by
    `rate_and_explosion`), then the NaN, then the symptoms (AFTER_NONFINITE)."""
    nan = [v for v in found if v.check == "nonfinite-loss"]
    if not nan:
        return found
    rate = [v for v in found if v.check in RATE_CHECKS]
    explosion = [v for v in found if v.check == "exploding-gradient"]
    return rate_and_explosion(rate, explosion) + nan + [v for v in found if v.check in AFTER_NONFINITE]


def zero_weights_explain_vanishing(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """Hidden layers whose weights start at exactly 0 (zero-gradient names them)
    pass no gradient back to the layers before them: a vanishing-gradient verdict
    would only restate that, with the wrong fix (initialisation, not depth)."""
    if facts.probe is None or not zero_weight_layers(facts.probe):
        return found
    return [v for v in found if v.check != "vanishing-gradient"]


def undertrained_only_without_errors(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """"Train longer" is advice for a model that works: with any dynamic error
    verdict, more of the same training would not help, so undertrained is left out."""
    if not any(v.severity == "error" for v in found if v.check != "undertrained"):
        return found
    return [v for v in found if v.check != "undertrained"]


DynamicRule = Callable[[list[Verdict], "Facts"], list[Verdict]]
DYNAMIC_SUPPRESSIONS: tuple[DynamicRule, ...] = (
    nonfinite_loss_first,
    # (before the next: a vanishing-gradient error it drops must not count)
    zero_weights_explain_vanishing,
    undertrained_only_without_errors,
)


def suppress_dynamic(found: list[Verdict], facts: Facts) -> list[Verdict]:
    """The dynamic verdicts the user reads, in order (DYNAMIC_SUPPRESSIONS)."""
    return reduce(lambda kept, rule: rule(kept, facts), DYNAMIC_SUPPRESSIONS, found)


# --- a cause ranks above the symptom it explains -----------------------------


def _large_inputs(v: Verdict) -> bool:
    """unnormalized-input for values far *above* unit scale (|x| or a feature's
    scale), the kind that makes gradients huge; tiny inputs make them small."""
    return not v.evidence.get("tiny")


def _any(check: str, test: Callable[[Verdict], bool] = lambda v: True) -> Callable[[Sequence[Verdict]], bool]:
    def present(verdicts: Sequence[Verdict]) -> bool:
        return any(v.check == check and test(v) for v in verdicts)

    return present


def _always(verdicts: Sequence[Verdict]) -> bool:
    return True


@dataclass(frozen=True)
class Explains:
    """`cause` (a verdict of that check, for which `cause_is` holds) explains
    `effect` when `given` holds of all verdicts: the effect is then issued as
    a symptom of it, with `because` in its message."""

    cause: str
    effect: str
    because: str
    cause_is: Callable[[Verdict], bool] = lambda v: True
    given: Callable[[Sequence[Verdict]], bool] = _always


_SCALE_GRADIENTS = "values that large make the loss and its gradients huge from the first step"
_ORDERED = (
    "with one class per batch each step pulls the model towards that class, so the loss "
    "jumps from batch to batch at any rate, and the sweep (run on the same sorted batches) "
    "favours the rate that moves least"
)

_UNDERFLOW = ("float16 flushes gradients below its range to zero, so the gradients read "
              "small or zero because of the compute dtype")

# The rules, cause -> effect. No check is both a cause and an effect here
# (tests/test_arbitration_and_dynamic.py checks it), so the order in which
# verdicts arrive cannot change the outcome and no chain needs following.
EXPLAINS: tuple[Explains, ...] = (
    # Huge inputs or targets make huge gradients: the data's scale is the cause
    # and the explosion its symptom (scaling the data removes both; clipping
    # the gradient would only hide it).
    Explains("unnormalized-input", "exploding-gradient", _SCALE_GRADIENTS, cause_is=_large_inputs),
    Explains("unscaled-targets", "exploding-gradient", _SCALE_GRADIENTS),
    # ... and the NaN that follows a gradient explosion: only with the
    # explosion seen too (a NaN from log(0) in a custom loss is no scale issue).
    Explains("unnormalized-input", "nonfinite-loss", _SCALE_GRADIENTS, cause_is=_large_inputs,
             given=_any("exploding-gradient")),
    Explains("unscaled-targets", "nonfinite-loss", _SCALE_GRADIENTS,
             given=_any("exploding-gradient")),
    # ... and the huge update ratio, when the gradient was huge before any
    # update (from_start): the rate multiplies a gradient the data made huge.
    Explains("unnormalized-input", "lr-too-high", _SCALE_GRADIENTS, cause_is=_large_inputs,
             given=_any("exploding-gradient", lambda v: bool(v.evidence.get("from_start")))),
    Explains("unscaled-targets", "lr-too-high", _SCALE_GRADIENTS,
             given=_any("exploding-gradient", lambda v: bool(v.evidence.get("from_start")))),
    # NaN/Inf in the data make the loss NaN whatever the model does.
    Explains("nonfinite-input", "nonfinite-loss", "NaN/Inf in the data make the loss NaN"),
    # Batches sorted by label: the loss jumps because each batch is one class,
    # not because of the rate. lr-too-high is demoted, not dropped: its
    # evidence (a jumping loss, a sweep that prefers small steps) is what
    # sorted batches produce, but a rate can be too high as well; once the
    # data is shuffled a new run tells, and until then it ranks after the cause.
    Explains("ordered-labels", "lr-too-high", _ORDERED),
    # float16 flushes gradients below its range to zero: the layer's gradient
    # is small or zero because of the compute dtype, not the network's depth
    # (keeping loss scaling on, or bfloat16, removes both).
    Explains("gradient-underflow", "vanishing-gradient", _UNDERFLOW),
    Explains("gradient-underflow", "zero-gradient", _UNDERFLOW),
)


def explained(verdicts_so_far: Iterable[Verdict], new_verdicts: Iterable[Verdict]) -> list[Verdict]:
    """`new_verdicts`, each cause that another cause present explains (EXPLAINS)
    turned into a symptom of it: kind="symptom", evidence `explained_by=<check
    id>` and a clause saying so, so that `verdicts.rank` puts it after its cause.

    Causes are looked for among `verdicts_so_far` (already issued) and
    `new_verdicts` alike; verdicts already issued are not changed."""
    new = list(new_verdicts)
    everything = [*verdicts_so_far, *new]
    out = []
    for v in new:
        rule, cause = _explaining(v, everything)
        out.append(v if rule is None or cause is None else _as_symptom(v, cause, rule))
    return out


def _explaining(v: Verdict, everything: Sequence[Verdict]) -> tuple[Explains | None, Verdict | None]:
    if v.kind != "cause":
        return None, None
    for rule in EXPLAINS:
        if rule.effect != v.check or not rule.given(everything):
            continue
        for c in everything:
            if c is not v and c.check == rule.cause and c.kind == "cause" and rule.cause_is(c):
                return rule, c
    return None, None


def _as_symptom(v: Verdict, cause: Verdict, rule: Explains) -> Verdict:
    clause = (
        f" This follows from '{cause.check}' (reported above): {rule.because}; fix that first."
    )
    return replace(
        v,
        kind="symptom",
        message=v.message.rstrip() + clause,
        evidence={**v.evidence, "explained_by": cause.check},
    )
