"""Run the real gradscope pipeline in-process on a model and its fit arguments.

Tests call `diagnose(model, x, y, ...)` exactly as a script would call
`model.fit(x, y, ...)`; the fit is intercepted, probed (never faked) and stopped
after the probe, and the events the user would see are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradscope.events import Event, EventBus, LayerRow, LayerStats, Note, StepStats
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


State = list[tuple[str, bytes]]


def weights_and_optimizer(model: Any) -> State:
    """Every variable of the model and its optimizer, bit for bit."""
    import numpy as np

    found = list(model.variables) + list(model.optimizer.variables)
    return [(v.path, np.asarray(v.numpy()).tobytes()) for v in found]


def _state_at_train_begin(state: Callable[[Any], State]) -> Any:
    import keras

    class StateAtTrainBegin(keras.callbacks.Callback):
        """The user's state when their own fit starts, i.e. right after the probe."""

        def __init__(self) -> None:
            super().__init__()
            self.state: State | None = None

        def on_train_begin(self, logs: Any = None) -> None:
            self.state = state(self.model)

    return StateAtTrainBegin()


@dataclass
class Run:
    """A diagnosis followed by the user's own fit."""

    diagnosis: Diagnosis
    history: dict[str, list[float]]
    at_train_begin: State | None

    @property
    def ids(self) -> list[str]:
        return self.diagnosis.ids

    def rows(self, step: int = 1) -> dict[str, LayerRow]:
        """The layer rows of probe step `step` (1-based), by layer name."""
        stats = [s for s in self.diagnosis.layer_stats if s.phase == "probe"]
        return {r.layer: r for r in stats[step - 1].rows}

    def warnings(self) -> list[str]:
        return [e.text for e in self.diagnosis.events if isinstance(e, Note) and e.level == "warning"]

    def notes(self) -> list[str]:
        return [e.text for e in self.diagnosis.events if isinstance(e, Note)]

    def probe_losses(self) -> list[float]:
        return [e.loss for e in self.diagnosis.events
                if isinstance(e, StepStats) and e.phase == "probe" and e.loss is not None]


def diagnose_and_fit(model: Any, *args: Any, steps: int = 3, scale: float = 0.05,
                     state: Callable[[Any], State] = weights_and_optimizer,
                     **fit_kwargs: Any) -> Run:
    """`model.fit(*args, **fit_kwargs)` under gradscope: probe, checks, then the
    user's fit, with `state(model)` taken when that fit starts."""
    bus = EventBus()
    # Short experiments (scale) keep these many runs fast; the default cap never cuts them.
    session = Session(RunOptions(script="<test>", steps=steps, experiment_scale=scale), bus)
    spy = _state_at_train_begin(state)
    fit_kwargs.setdefault("verbose", 0)
    fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", []), spy]
    with intercept_fit(session.on_fit):
        history = model.fit(*args, **fit_kwargs)
    return Run(Diagnosis(list(bus.history)), dict(history.history), spy.state)
