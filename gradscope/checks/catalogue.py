"""Every check ID gradscope can emit, with its default severity and whether it
is a cause or a symptom. The IDs are a public contract (docs/checks.md).

Generated from the registry (checks/registry.py), where each check is
declared once beside its code; the two IDs the run issues about itself
(`probe-failed`, `custom-train-step`, built in session_verdicts.py) are
declared here. docs/checks.md's index is generated from the same registry
(scripts/gen_checks_index.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradscope.checks.dynamic import dynamic_checks
from gradscope.checks.registry import REGISTRY, Kind, declare, finding
from gradscope.checks.static import static_checks
from gradscope.checks.training import training_checks
from gradscope.verdicts import Severity, Verdict

declare("probe-failed", "info", "cause", "gradscope could not probe this model",
        module="gradscope.session_verdicts")
declare("custom-train-step", "info", "cause",
        "the model trains by its own code: probed through its train_step, or a standard "
        "step on the compiled loss", module="gradscope.session_verdicts")


@dataclass(frozen=True)
class CheckInfo:
    id: str
    severity: Severity
    kind: Kind
    title: str


# In the order the checks run (and the docs' index lists them): static, then
# dynamic, family by family, then those on the user's training, then the run's own.
_ORDER = [
    *static_checks(), *dynamic_checks(), *training_checks(),
    *(c for c in REGISTRY.values() if c.phase == "session"),
]
CATALOGUE: dict[str, CheckInfo] = {
    c.id: CheckInfo(c.id, c.severity, c.kind, c.title) for c in _ORDER
}


def verdict(
    check: str,
    subject: str,
    message: str,
    fix: str,
    severity: Severity | None = None,
    **evidence: Any,
) -> Verdict:
    """A Verdict for a catalogued ID (kind and default severity from the registry):
    for the verdicts the run issues itself; checks return findings instead."""
    return REGISTRY[check].verdict(finding(subject, message, fix, severity, **evidence))
