"""The Verdict record and how verdicts are ranked (no TensorFlow, no UI)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Verdict:
    """One finding, with an ID from the public catalogue (shared/spec/checks.md).

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
    """Most likely root cause first: severity, then causes before symptoms, then arrival."""
    return (SEVERITY_ORDER.get(verdict.severity, 3), 0 if verdict.kind == "cause" else 1, arrival)


def rank(verdicts: Iterable[Verdict]) -> list[Verdict]:
    """Verdicts in the order the UI, the summary and the verdict CSV show them."""
    indexed = list(enumerate(verdicts))
    indexed.sort(key=lambda item: rank_key(item[1], item[0]))
    return [v for _, v in indexed]


def worst_severity(verdicts: Iterable[Verdict]) -> str | None:
    ranked = sorted((SEVERITY_ORDER[v.severity], v.severity) for v in verdicts)
    return ranked[0][1] if ranked else None
