"""Every check, declared once: its ID, default severity, kind, title, the phase
it runs in and the facts it needs. The catalogue (checks/catalogue.py) and the
index of docs/checks.md are generated from this registry.

A check is a function of the diagnosis' facts that returns findings; it never
names its own ID (the registry stamps it on), so an ID is written exactly once:

    @check("single-unit-softmax", "error", "cause", "softmax over a single unit",
           phase="static", needs=("outputs",))
    def single_unit_softmax(facts: Facts) -> list[Finding]:
        return [finding(out.layer, "...", "...", units=1)
                for out in facts.outputs if out.activation == "softmax" and out.units == 1]

Checks are grouped by family in their own modules (checks/labels.py, ...);
importing `gradscope.checks.all` registers them all, in the order they run.
Rules *between* verdicts (a cause explains a symptom, a finding waits for the
experiments' evidence, one verdict suppresses another) live in
checks/arbitration.py, not in the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gradscope.checks.facts import (
    BatchFacts,
    ExperimentFacts,
    ModelFacts,
    OutputFacts,
    ProbeFacts,
)
from gradscope.verdicts import Severity, Verdict

if TYPE_CHECKING:
    from gradscope.checks.training import TrainingFacts

Kind = Literal["cause", "symptom"]
# "training": on the user's own training, as the watch sees it (checks/training.py).
Phase = Literal["static", "dynamic", "training", "session"]
# What a check can need; it runs only when each is there.
Need = Literal["model", "outputs", "batches", "probe", "experiments", "training"]

CLASSIFICATION_LOSSES = (
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
)


@dataclass(frozen=True)
class Facts:
    """Everything a check may read (numpy and plain data only: no TensorFlow)."""

    model: ModelFacts
    batches: BatchFacts | None = None
    probe: ProbeFacts | None = None
    experiments: ExperimentFacts | None = None
    # (classification, n_classes, loss_kind) as a caller states them without a
    # ModelFacts to derive them from (checks/dynamic.run_dynamic): checks that
    # read the task prefer it to the properties below when it is set.
    task: tuple[bool, int | None, str | None] | None = None
    # The user's training as the watch has seen it so far (checks/training.py).
    training: TrainingFacts | None = None

    @property
    def outputs(self) -> tuple[OutputFacts, ...]:
        return self.model.outputs

    @property
    def first_output(self) -> OutputFacts | None:
        return self.model.outputs[0] if self.model.outputs else None

    @property
    def loss_kind(self) -> str | None:
        out = self.first_output
        return out.loss if out is not None else None

    @property
    def classification(self) -> bool:
        return self.loss_kind in CLASSIFICATION_LOSSES

    @property
    def n_classes(self) -> int | None:
        out = self.first_output
        if out is None or not self.classification:
            return None
        return out.units if out.units and out.units > 1 else 2

    def has(self, need: str) -> bool:
        if need == "outputs":
            return bool(self.model.outputs)
        if need == "model":
            return True
        return getattr(self, need) is not None


@dataclass(frozen=True)
class Finding:
    """What a check found, without its ID (the registry adds it)."""

    subject: str
    message: str
    fix: str
    severity: Severity | None = None  # None: the check's default
    evidence: dict[str, Any] = field(default_factory=dict)


def finding(subject: str, message: str, fix: str, severity: Severity | None = None,
            **evidence: Any) -> Finding:
    return Finding(subject, message, fix, severity, evidence)


CheckFn = Callable[[Facts], list[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    kind: Kind
    title: str
    phase: Phase
    needs: tuple[str, ...]
    fn: CheckFn | None  # None: issued by the session itself (probe-failed, ...)
    module: str = ""

    def applies(self, facts: Facts) -> bool:
        return self.fn is not None and all(facts.has(n) for n in self.needs)

    def run(self, facts: Facts) -> list[Verdict]:
        """This check's verdicts on `facts` ([] when a needed fact is missing)."""
        if not self.applies(facts):
            return []
        assert self.fn is not None
        return [self.verdict(f) for f in self.fn(facts)]

    def verdict(self, f: Finding) -> Verdict:
        return Verdict(
            check=self.id,
            severity=f.severity or self.severity,
            subject=f.subject,
            message=f.message,
            fix=f.fix,
            kind=self.kind,
            evidence={k: plain(v) for k, v in f.evidence.items()},
        )


REGISTRY: dict[str, Check] = {}


def check(id: str, severity: Severity, kind: Kind, title: str, *, phase: Phase,
          needs: tuple[str, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as the check `id` (declared exactly once)."""

    def register(fn: CheckFn) -> CheckFn:
        _add(Check(id, severity, kind, title, phase, needs, fn, fn.__module__))
        return fn

    return register


def declare(id: str, severity: Severity, kind: Kind, title: str, *, phase: Phase = "session",
            module: str = "") -> None:
    """An ID the session issues itself (no check function: e.g. probe-failed)."""
    _add(Check(id, severity, kind, title, phase, (), None, module))


def _add(entry: Check) -> None:
    if entry.id in REGISTRY:
        raise ValueError(f"check {entry.id!r} is declared twice")
    REGISTRY[entry.id] = entry


def plain(value: Any) -> Any:
    """Evidence must serialise to JSON: numpy scalars become Python numbers."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def in_family_order(phase: Phase, families: tuple[Any, ...]) -> list[Check]:
    """The checks of `phase`, family by family in the order given, each family's
    in declaration order: not registration order, which depends on which module
    a process happened to import first."""
    order = {family.__name__: i for i, family in enumerate(families)}
    entries = [c for c in REGISTRY.values() if c.phase == phase]
    return sorted(entries, key=lambda c: order.get(c.module, len(order)))


def run_phase(phase: Phase, facts: Facts,
              on_error: Callable[[Check, Exception], None] | None = None) -> list[Verdict]:
    """Every registered check of `phase` whose facts are there, in registration
    order. A check that raises costs only its own verdicts: `on_error` is told
    (the session turns it into a note naming the check); without it, it raises."""
    return run_checks([c for c in REGISTRY.values() if c.phase == phase], facts, on_error)


def run_checks(entries: list[Check], facts: Facts,
               on_error: Callable[[Check, Exception], None] | None = None) -> list[Verdict]:
    """These checks' verdicts on `facts`, in order; see `run_phase` for `on_error`."""
    found: list[Verdict] = []
    for entry in entries:
        try:
            found += entry.run(facts)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(entry, exc)
    return found
