"""Dynamic checks: from the probe steps on the user's model (or its clone) and
the experiments on a clone. The checks live by family, each declared once with
@check (checks/registry.py):

- checks/gradients.py: nonfinite-loss, exploding-gradient, zero-gradient,
  vanishing-gradient;
- checks/activations.py: dead-relu, saturated-activation;
- checks/optimizer.py: regularization-dominates, lr-too-high, lr-too-low;
- checks/symptoms.py: the experiment-based symptoms, undertrained last.

Importing this module registers them in that order, the order they are
reported in; the rules between their verdicts (a NaN loss, zero weights,
undertrained after errors) are checks/arbitration.py's "dynamic suppressions".
"""

from __future__ import annotations

from collections.abc import Callable

from gradscope.checks import activations, gradients, optimizer
from gradscope.checks import symptoms as _symptoms
from gradscope.checks.arbitration import confirmed as confirmed  # (its old home)
from gradscope.checks.arbitration import suppress_dynamic
from gradscope.checks.facts import ExperimentFacts, ModelFacts, ProbeFacts
from gradscope.checks.registry import REGISTRY, Check, Facts, in_family_order, run_checks
from gradscope.checks.symptoms import COLLAPSE_FLOAT as COLLAPSE_FLOAT
from gradscope.checks.symptoms import COLLAPSE_SHARE as COLLAPSE_SHARE
from gradscope.checks.symptoms import MIN_MINORITY as MIN_MINORITY
from gradscope.verdicts import Verdict

# The families in report order: a module imported elsewhere first (a test
# importing checks/symptoms.py) registers its checks earlier, so the order is
# fixed here rather than left to import order.
FAMILIES = (gradients, activations, optimizer, _symptoms)

# run_dynamic knows the model only through the task it is told: checks that
# need more of the model are static.
_NO_MODEL = ModelFacts(name="", total_params=0, trainable_params=0, weighted_layers=(),
                       frozen_layers=())


def dynamic_checks() -> list[Check]:
    """Every registered dynamic check, in report order (family, then declaration)."""
    return in_family_order("dynamic", FAMILIES)


def dynamic_facts(p: ProbeFacts | None, e: ExperimentFacts | None, classification: bool = False,
                  n_classes: int | None = None, loss_kind: str | None = None) -> Facts:
    return Facts(model=_NO_MODEL, probe=p, experiments=e,
                 task=(classification, n_classes, loss_kind))


def run_dynamic(p: ProbeFacts, e: ExperimentFacts | None, classification: bool,
                n_classes: int | None, loss_kind: str | None,
                on_error: Callable[[Check, Exception], None] | None = None) -> list[Verdict]:
    """The dynamic verdicts on one probe (and the experiments, when they ran),
    after the dynamic suppressions (checks/arbitration.py). A check that raises
    costs only its own verdicts when `on_error` is given (it is told)."""
    facts = dynamic_facts(p, e, classification, n_classes, loss_kind)
    found = run_checks(dynamic_checks(), facts, on_error)
    return suppress_dynamic(found, facts)


# --- the old entry points, for callers that still use them -------------------


def symptoms(p: ProbeFacts, e: ExperimentFacts | None, classification: bool,
             n_classes: int | None, loss_kind: str | None) -> list[Verdict]:
    """The experiment-based verdicts (checks/symptoms.py) but undertrained."""
    facts = dynamic_facts(p, e, classification, n_classes, loss_kind)
    return [v for entry in dynamic_checks()
            if entry.module == _symptoms.__name__ and entry.id != "undertrained"
            for v in entry.run(facts)]


def collapsed_predictions(e: ExperimentFacts) -> list[Verdict]:
    return REGISTRY["collapsed-predictions"].run(dynamic_facts(None, e))
