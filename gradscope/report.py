"""The run as its events tell it: one fold of the event stream that every front
end reads (the UI, the JSON report, the stderr summary, `view`, `diff`, the
exit code).

Neither Textual nor TensorFlow here: it runs in the engine's process, in the
UI's, and in `gradscope view` alike. `Report.apply` is the only way in.
Revision counters let each widget redraw only when its part changed.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from gradscope.events import (
    EpochEnded,
    Event,
    LayerHistogram,
    LayerHistograms,
    LayerRow,
    LayerStats,
    ModelDescribed,
    Note,
    OutputLine,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepStats,
    TrainProgress,
    VerdictIssued,
)
from gradscope.verdicts import SEVERITY_ORDER, Verdict, rank

# Per-layer steps kept for sparklines and the drill-down: a shared budget of
# samples (a sample costs about 300 bytes), so a 10-layer model keeps its last
# 1000 steps and a 1000-layer one its last 100 (about 30 MB in all).
HISTORY_BUDGET = 100_000
HISTORY_MIN, HISTORY_MAX = 64, 1000
LOSS_HISTORY = 5000

class Sample(NamedTuple):
    phase: str
    step: int
    row: LayerRow


# A layer's history keeps, per step, a plain tuple (phase, step, *METRICS): no
# LayerRow objects, so 1000 layers' history costs the garbage collector
# nothing (tuples of numbers and strings are not tracked) and never pause the UI.
METRICS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
           "act_saturated_frac", "act_dead_frac")
_COLUMN = {name: index + 2 for index, name in enumerate(METRICS)}
HistoryEntry = tuple  # (phase, step, *METRICS)
RECENT_GRADS = 64


class LossPoint(NamedTuple):
    # "probe" (a probe step), "train" (a watched step of the user's training:
    # that step's own loss), "epoch" (an epoch's mean training loss, at the
    # global step it ended), "validation" (val_loss, at the same step).
    phase: str
    step: int
    loss: float | None


@dataclass(eq=False)
class LayerTrack:
    """One layer: what the model description says and every sample seen of it."""

    name: str
    index: int  # forward order
    layer_type: str
    param_count: int
    trainable: bool
    activation: str | None = None
    output_shape: str = ""
    config: dict[str, str] = field(default_factory=dict)
    # The first histograms seen and the latest ones, with their (phase, step).
    first_histograms: tuple[str, int, LayerHistogram] | None = None
    latest_histograms: tuple[str, int, LayerHistogram] | None = None
    history: deque[HistoryEntry] = field(default_factory=lambda: deque(maxlen=HISTORY_MAX))
    samples: int = 0  # ever seen; the history keeps the newest `history.maxlen`
    latest: Sample | None = None
    # Each metric's latest measured value: training-phase rows carry only what
    # Keras's own steps let us see (weights), so the probe's gradient and
    # activation figures stay on show rather than turning into "does not apply".
    known: dict[str, float] = field(default_factory=dict)
    # The latest measured gradient norms, for the table's sparkline.
    recent_grads: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_GRADS))

    def record(self, phase: str, step: int, row: LayerRow) -> None:
        # Written out metric by metric: a 1000-layer model streams 1000 of these
        # per step into the UI's thread, and a loop over METRICS costs twice as much.
        self.latest = Sample(phase, step, row)
        grad, weight, update = row.grad_norm, row.weight_norm, row.update_ratio
        mean, std = row.act_mean, row.act_std
        saturated, dead = row.act_saturated_frac, row.act_dead_frac
        self.history.append((phase, step, grad, weight, update, mean, std, saturated, dead))
        known = self.known
        if grad is not None:
            known["grad_norm"] = grad
            self.recent_grads.append(grad)
        if weight is not None:
            known["weight_norm"] = weight
        if update is not None:
            known["update_ratio"] = update
        if mean is not None:
            known["act_mean"] = mean
        if std is not None:
            known["act_std"] = std
        if saturated is not None:
            known["act_saturated_frac"] = saturated
        if dead is not None:
            known["act_dead_frac"] = dead
        self.samples += 1

    def value(self, metric: str) -> float | None:
        """The metric's latest measured value (None: never measured for this layer)."""
        return self.known.get(metric)

    def series(self, metric: str, last: int | None = None) -> list[float | None]:
        """The metric over the kept steps, oldest first (only the `last` ones if given)."""
        column = _COLUMN[metric]
        if last is None:
            return [entry[column] for entry in self.history]
        recent = [entry[column] for entry in islice(reversed(self.history), last)]
        recent.reverse()
        return recent


OUTPUT_LINES = 5000  # lines of the run's output kept for the log screen


class Report:
    """The run as the events tell it; `apply` is the only way in."""

    def __init__(self) -> None:
        self.started: RunStarted | None = None
        self.model: ModelDescribed | None = None
        self.phase: str | None = None
        self.step: int | None = None
        self.step_phase: str | None = None  # the phase `step` counts in
        self.finished: RunFinished | None = None
        self.layers: dict[str, LayerTrack] = {}
        self.verdicts: list[Verdict] = []
        self.notes: list[Note] = []
        # What the run printed (live mode captures it so it never draws over the UI).
        self.output: deque[OutputLine] = deque(maxlen=OUTPUT_LINES)
        self.output_total = 0  # lines ever seen; the deque keeps the newest
        self.losses: deque[LossPoint] = deque(maxlen=LOSS_HISTORY)
        # Every StepStats, for the JSON report (a few per probe, one per epoch).
        self.steps: list[StepStats] = []
        self.probe_steps: set[int] = set()
        # The latest PhaseChanged: what the run is doing now (with its step i/N).
        self.phase_event: PhaseChanged | None = None
        self._step_seconds: deque[float] = deque(maxlen=20)
        # The user's training: where it is now, and every epoch that ended.
        self.progress: TrainProgress | None = None
        self.epochs: list[EpochEnded] = []
        self.history_length = HISTORY_MAX  # per layer; set from the model's size
        self.revision = 0  # any change
        self.layer_revision = 0
        self.verdict_revision = 0
        self.histogram_revision = 0
        self._ranked: tuple[int, list[Verdict]] = (-1, [])
        self._flags: tuple[tuple[int, int], dict[str, str]] = ((-1, -1), {})

    def apply_all(self, events: Iterable[Event]) -> bool:
        """Fold events in; True when anything changed."""
        before = self.revision
        for event in events:
            self.apply(event)
        return self.revision != before

    def apply(self, event: Event) -> None:
        self.revision += 1
        if isinstance(event, OutputLine):
            # Partial lines (a stream's line still being drawn: a progress bar)
            # stay at the end of `output`, one per stream at most; the stream's
            # next line, partial or finished, replaces its own. A finished line
            # goes in before the other stream's partial; `output_total` counts
            # finished lines only.
            output = self.output
            kept: list[OutputLine] = []
            while output and output[-1].partial:
                line = output.pop()
                if line.stream != event.stream:
                    kept.append(line)
            if not event.partial:
                output.append(event)
                self.output_total += 1
            output.extend(reversed(kept))
            if event.partial:
                output.append(event)
        elif isinstance(event, LayerStats):
            self._apply_layer_stats(event)
        elif isinstance(event, StepStats):
            self.phase = self.step_phase = event.phase
            self.step = event.step
            self.losses.append(LossPoint(event.phase, event.step, event.loss))
            self.steps.append(event)
            if event.phase == "probe":
                self.probe_steps.add(event.step)
            val_loss = event.extra.get("val_loss")
            if val_loss is not None:
                # Kept apart from the training loss: the chart draws it as its own series.
                self.losses.append(LossPoint("validation", event.step, val_loss))
            if event.seconds is not None and event.seconds > 0:
                self._step_seconds.append(event.seconds)
        elif isinstance(event, TrainProgress):
            self.progress = event
        elif isinstance(event, EpochEnded):
            self.epochs.append(event)
            loss = event.logs.get("loss")
            if loss is not None:
                # The epoch's mean training loss, as Keras reports it.
                self.losses.append(LossPoint("epoch", event.step, loss))
            val_loss = event.logs.get("val_loss")
            if val_loss is not None:
                self.losses.append(LossPoint("validation", event.step, val_loss))
        elif isinstance(event, LayerHistograms):
            for item in event.layers:
                track = self.layers.get(item.layer)
                if track is None:
                    continue
                if track.first_histograms is None:
                    track.first_histograms = (event.phase, event.step, item)
                else:
                    track.latest_histograms = (event.phase, event.step, item)
            self.histogram_revision += 1
        elif isinstance(event, VerdictIssued):
            self.verdicts.append(event.verdict)
            self.verdict_revision += 1
        elif isinstance(event, PhaseChanged):
            self.phase = event.phase
            self.phase_event = event
        elif isinstance(event, ModelDescribed):
            self.model = event
            self.history_length = history_length(len(event.layers))
            for info in event.layers:
                track = self._track(info.name, info.layer_type, info.param_count, info.trainable)
                track.layer_type, track.param_count = info.layer_type, info.param_count
                track.trainable, track.activation = info.trainable, info.activation
                track.output_shape, track.config = info.output_shape, dict(info.config)
            self.layer_revision += 1
        elif isinstance(event, Note):
            self.notes.append(event)
        elif isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, RunFinished):
            self.finished = event

    def _apply_layer_stats(self, event: LayerStats) -> None:
        self.phase = self.step_phase = event.phase
        self.step = event.step
        layers = self.layers
        for row in event.rows:
            track = layers.get(row.layer)
            if track is None:
                track = self._track(row.layer, row.layer_type, row.param_count, row.trainable)
            track.record(event.phase, event.step, row)
        self.layer_revision += 1

    def _track(self, name: str, layer_type: str, param_count: int, trainable: bool) -> LayerTrack:
        track = self.layers.get(name)
        if track is None:
            track = LayerTrack(name, len(self.layers), layer_type, param_count, trainable,
                               history=deque(maxlen=self.history_length))
            self.layers[name] = track
        return track

    # --- derived views ---------------------------------------------------------

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> Report:
        report = cls()
        report.apply_all(events)
        return report

    def headline(self) -> Verdict | None:
        """The most likely cause: the first ranked verdict, if it is a problem."""
        return headline(self.ranked_verdicts())

    def unchecked(self) -> list[str]:
        """Check IDs that could not run (experiments cut short, lost to an error)."""
        return unchecked(self.notes)

    def verdict_exit_code(self) -> int:
        """1 when any verdict is an error, else 0 (docs/cli.md)."""
        return 1 if any(v.severity == "error" for v in self.verdicts) else 0

    def nothing_found(self) -> str:
        """What to say when no verdict came (never "no problems found" while a check
        could not run)."""
        steps = plural(len(self.probe_steps), "probe step") if self.probe_steps else ""
        return nothing_found(self.notes, steps)

    def ranked_verdicts(self) -> list[Verdict]:
        """Most likely root cause first (the order of the summary and the verdict CSV)."""
        if self._ranked[0] != self.verdict_revision:
            self._ranked = (self.verdict_revision, rank(self.verdicts))
        return self._ranked[1]

    def layer_flags(self) -> dict[str, str]:
        """Layer name -> the worst severity of the verdicts that name it."""
        key = (self.verdict_revision, len(self.layers))
        if self._flags[0] != key:
            flags: dict[str, str] = {}
            for verdict in self.verdicts:
                for name in named_layers(verdict, self.layers):
                    if name not in flags or _worse(verdict.severity, flags[name]):
                        flags[name] = verdict.severity
            self._flags = (key, flags)
        return self._flags[1]

    def verdicts_for(self, layer: str) -> list[Verdict]:
        return [v for v in self.ranked_verdicts() if layer in named_layers(v, self.layers)]

    def steps_per_second(self) -> float | None:
        # The median step time ignores the first step's compilation.
        if not self._step_seconds:
            return None
        return 1.0 / statistics.median(self._step_seconds)


def headline(ranked: Sequence[Verdict]) -> Verdict | None:
    """The most likely cause: the first ranked verdict, if it is a problem (error or warning)."""
    if ranked and ranked[0].severity in ("error", "warning"):
        return ranked[0]
    return None


def unchecked(notes: Sequence[Note]) -> list[str]:
    """Check IDs that could not run (experiments cut short, lost to an error)."""
    return sorted({check for note in notes for check in note.unchecked})


def nothing_found(notes: Sequence[Note], steps: str = "") -> str:
    """What to say when no verdict came: never "no problems found" while some
    checks could not run."""
    missing = unchecked(notes)
    if missing:
        return (
            f"no problems found by the checks that ran; {plural(len(missing), 'check')} "
            f"could not run ({', '.join(missing)})"
        )
    return f"no problems found in {steps}" if steps else "no problems found"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def history_length(layers: int) -> int:
    """Steps of history each layer keeps, for a model of `layers` layers."""
    return max(HISTORY_MIN, min(HISTORY_MAX, HISTORY_BUDGET // max(1, layers)))


def named_layers(verdict: Verdict, layers: dict[str, LayerTrack]) -> set[str]:
    """The layers a verdict is about: its subject and any layer its evidence lists."""
    names = {verdict.subject} if verdict.subject in layers else set()
    for value in verdict.evidence.values():
        if isinstance(value, str) and value in layers:
            names.add(value)
        elif isinstance(value, (list, tuple)):
            names.update(item for item in value if isinstance(item, str) and item in layers)
    return names


def _worse(severity: str, than: str) -> bool:
    return SEVERITY_ORDER.get(severity, 3) < SEVERITY_ORDER.get(than, 3)
