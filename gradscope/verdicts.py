"""The Verdict record and how verdicts are ranked (no TensorFlow, no UI)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Verdict:
    """One finding, with an ID from the public catalogue (docs/checks.md).

    `kind` is "cause" or "symptom": symptoms (loss-flat, cannot-overfit...) are
    ranked after the causes that explain them.
    """

    check: str
    severity: Severity
    subject: str
    message: str
    fix: str
    kind: Literal["cause", "symptom"] = "cause"
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "subject": self.subject,
            "message": self.message,
            "fix": self.fix,
            "kind": self.kind,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            check=data["check"],
            severity=data["severity"],
            subject=data["subject"],
            message=data["message"],
            fix=data["fix"],
            kind=data.get("kind", "cause"),
            evidence=dict(data.get("evidence") or {}),
        )


def rank_key(verdict: Verdict, arrival: int = 0) -> tuple[int, int, int]:
    """Most likely root cause first: causes (error, then warning) before the
    symptoms they explain, then symptoms, then `info` notes; ties keep arrival order.
    A warning-level cause outranks an error-level symptom: the symptom says
    *that* it does not learn, the cause says *why*."""
    severity = SEVERITY_ORDER.get(verdict.severity, 3)
    if severity >= SEVERITY_ORDER["info"]:
        tier = 2
    else:
        tier = 0 if verdict.kind == "cause" else 1
    return (tier, severity, arrival)


def rank(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts in the order the UI, the summary and the verdict CSV show them."""
    indexed = list(enumerate(verdicts))
    indexed.sort(key=lambda item: rank_key(item[1], item[0]))
    return [v for _, v in indexed]


def worst_severity(verdicts: Iterable[Verdict]) -> str | None:
    ranked = sorted((SEVERITY_ORDER[v.severity], v.severity) for v in verdicts)
    return ranked[0][1] if ranked else None
