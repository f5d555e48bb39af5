"""Run the real gradscope pipeline in-process on a model and its fit arguments.

Tests call `diagnose(model, x, y, ...)` exactly as a script would call
`model.fit(x, y, ...)`; the fit is intercepted, probed (never faked) and stopped
after the probe, and the events the user would see are returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradscope.events import Event, EventBus, LayerStats, StepStats
from gradscope.intercept import ProbeFinished, intercept_fit
from gradscope.options import RunOptions
from gradscope.session import Session
from gradscope.verdicts import Verdict, rank


@dataclass
class Diagnosis:
    events: list[Event] = field(default_factory=list)

    @property
    def verdicts(self) -> list[Verdict]:
        return rank(e.verdict for e in self.events if hasattr(e, "verdict"))  # type: ignore[attr-defined]

    @property
    def ids(self) -> list[str]:
        return [v.check for v in self.verdicts]

    def find(self, check: str) -> Verdict:
        for v in self.verdicts:
            if v.check == check:
                return v
        raise AssertionError(f"no {check!r} verdict; got {self.ids}")

    @property
    def layer_stats(self) -> list[LayerStats]:
        return [e for e in self.events if isinstance(e, LayerStats)]

    @property
    def losses(self) -> list[float | None]:
        return [e.loss for e in self.events if isinstance(e, StepStats)]


def diagnose(
    model: Any, *fit_args: Any, steps: int = 5, budget: float = 60.0, **fit_kwargs: Any
) -> Diagnosis:
    bus = EventBus()
    options = RunOptions(script="<test>", steps=steps, probe_only=True, budget=budget)
    session = Session(options, bus)
    fit_kwargs.setdefault("verbose", 0)
    with intercept_fit(session.on_fit):
        try:
            model.fit(*fit_args, **fit_kwargs)
        except ProbeFinished:
            pass
    return Diagnosis(list(bus.history))
