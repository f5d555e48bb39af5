"""The run as its events tell it: one fold of the event stream that every front
end reads (the UI, the JSON report, the stderr summary, `view`, `diff`, the
exit code).

Neither Textual nor TensorFlow here: it runs in the engine's process, in the
UI's, and in `gradscope view` alike. `Report.apply` is the only way in.
Revision counters let each widget redraw only when its part changed.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice, pairwise
from typing import Generic, NamedTuple, TypeVar

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
# The whole run at a glance (the drill-down's lines over the whole training):
# per layer, at most this many samples thinned evenly over every step seen
# (`Thinned`), from a budget of a quarter of the history's. The samples are the
# history's own tuples (shared while both hold them), so the extra cost is the
# samples that have left the history: 256 per layer up to 100 layers (about
# 25,000 in all, 8 MB), down to 32 per layer (32,000 in all at 1000 layers: 10 MB).
OVERVIEW_BUDGET = HISTORY_BUDGET // 4
OVERVIEW_MIN, OVERVIEW_MAX = 32, 256
# The loss chart's whole training: each phase's points thinned to at most this
# many, so a chart of a 100,000-step training costs what a short one does.
LOSS_OVERVIEW = 512
# TrainProgress events the training's rate is measured over (the latest ones),
# and the paces (steps between two of them) it needs before it says anything:
# the first ones hold a compilation (the watched step's, then the plain one's).
RATE_WINDOW = 32
RATE_MIN_PACES = 3

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


T = TypeVar("T")


class Thinned(Generic[T]):
    """A series of any length, thinned evenly to at most `capacity` items (+2):
    bounded memory for a training of any length.

    Items come in buckets of `stride` consecutive ones; each full bucket keeps
    one item, its first one, or its first *bad* one (a non-finite figure: the
    news) if it had one. When `capacity` buckets are kept, neighbouring pairs
    merge by the same rule (the first's item, unless only the second's is bad)
    and the stride doubles: the kept items are every stride-th one (the first
    item ever among them), stride a power of two, `capacity // 2` to `capacity`
    of them. `items()` then adds the bucket still filling (its pick) and the
    latest item, so the series always runs from the first item to the latest.

    An add costs a few attribute updates (a 1000-layer model adds 1000 a step);
    pairs merge once per `capacity // 2` kept buckets.
    """

    __slots__ = ("_bad", "_last", "_left", "_pick", "_pick_bad", "capacity", "kept", "stride")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(2, capacity + capacity % 2)  # even: pairs merge whole
        self.kept: list[T] = []
        self._bad = bytearray()  # per kept item: 1 if bad
        self.stride = 1
        self._left = 1  # items the bucket now filling still takes
        self._pick: T | None = None  # that bucket's item so far (None: it is empty)
        self._pick_bad = False
        self._last: T | None = None

    @property
    def total(self) -> int:
        """Items ever added: every kept bucket holds `stride` of them."""
        return len(self.kept) * self.stride + (self.stride - self._left)

    def add(self, item: T, bad: bool = False) -> None:
        # The common case (inside a bucket, nothing bad) is three attribute updates.
        self._last = item
        if self._pick is None or (bad and not self._pick_bad):
            self._pick, self._pick_bad = item, bad
        self._left -= 1
        if self._left:
            return
        self.kept.append(self._pick)  # type: ignore[arg-type]
        self._bad.append(self._pick_bad)
        self._pick, self._pick_bad = None, False
        self._left = self.stride
        if len(self.kept) >= self.capacity:
            self._halve()

    def _halve(self) -> None:
        kept, bad = self.kept, self._bad
        self.kept = [kept[i] if bad[i] or not bad[i + 1] else kept[i + 1]
                     for i in range(0, len(kept), 2)]
        self._bad = bytearray(bad[i] | bad[i + 1] for i in range(0, len(bad), 2))
        self.stride *= 2
        self._left = self.stride

    def items(self) -> list[T]:
        """The kept items, oldest first, then the pick of the bucket still filling
        and the latest item (each once)."""
        out = list(self.kept)
        if self._pick is not None:
            out.append(self._pick)
        last = self._last
        if last is not None and (not out or out[-1] is not last):
            out.append(last)
        return out

    def __len__(self) -> int:
        return len(self.items())


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
    # Every sample seen, thinned evenly (the drill-down's lines over the whole
    # training): the history's own tuples, so sharing them costs nothing.
    overview: Thinned[HistoryEntry] = field(default_factory=lambda: Thinned(OVERVIEW_MAX))

    def record(self, phase: str, step: int, row: LayerRow) -> None:
        # Written out metric by metric: a 1000-layer model streams 1000 of these
        # per step into the UI's thread, and a loop over METRICS costs twice as much.
        self.latest = Sample(phase, step, row)
        grad, weight, update = row.grad_norm, row.weight_norm, row.update_ratio
        mean, std = row.act_mean, row.act_std
        saturated, dead = row.act_saturated_frac, row.act_dead_frac
        entry = (phase, step, grad, weight, update, mean, std, saturated, dead)
        self.history.append(entry)
        # A NaN (the watch's "non-finite values seen") is kept by the thinning. Its
        # gradient, weight or activation figures show it (the others derive from
        # them); `x != x` is NaN's own test, and None's is False.
        self.overview.add(entry, grad != grad or weight != weight or mean != mean)
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

    def whole(self, metric: str) -> list[float | None]:
        """The metric over the whole run, oldest first: every kept step while the
        history still holds every sample, else the thinned overview (evenly
        spaced samples, NaN kept)."""
        column = _COLUMN[metric]
        entries = self.history if self.samples <= len(self.history) else self.overview.items()
        return [entry[column] for entry in entries]

    def whole_steps(self) -> list[tuple[str, int]]:
        """(phase, step) of each value `whole` gives."""
        entries = self.history if self.samples <= len(self.history) else self.overview.items()
        return [(entry[0], entry[1]) for entry in entries]

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
        # The same points over the whole run, each phase thinned (the loss chart).
        self.loss_thinned: dict[str, Thinned[LossPoint]] = {}
        # Every StepStats, for the JSON report (a few per probe, one per epoch).
        self.steps: list[StepStats] = []
        self.probe_steps: set[int] = set()
        # The latest PhaseChanged: what the run is doing now (with its step i/N).
        self.phase_event: PhaseChanged | None = None
        self._step_seconds: deque[float] = deque(maxlen=20)
        # The user's training: where it is now, and every epoch that ended.
        self.progress: TrainProgress | None = None
        self._progress_window: deque[TrainProgress] = deque(maxlen=RATE_WINDOW)
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
            self._add_loss(LossPoint(event.phase, event.step, event.loss))
            self.steps.append(event)
            if event.phase == "probe":
                self.probe_steps.add(event.step)
            val_loss = event.extra.get("val_loss")
            if val_loss is not None:
                # Kept apart from the training loss: the chart draws it as its own series.
                self._add_loss(LossPoint("validation", event.step, val_loss))
            if event.seconds is not None and event.seconds > 0:
                self._step_seconds.append(event.seconds)
        elif isinstance(event, TrainProgress):
            if self.progress is not None and self.progress.fit != event.fit:
                self._progress_window.clear()  # a new fit() counts its seconds afresh
            self.progress = event
            self._progress_window.append(event)
        elif isinstance(event, EpochEnded):
            self.epochs.append(event)
            loss = event.logs.get("loss")
            if loss is not None:
                # The epoch's mean training loss, as Keras reports it.
                self._add_loss(LossPoint("epoch", event.step, loss))
            val_loss = event.logs.get("val_loss")
            if val_loss is not None:
                self._add_loss(LossPoint("validation", event.step, val_loss))
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

    def _add_loss(self, point: LossPoint) -> None:
        self.losses.append(point)
        thinned = self.loss_thinned.get(point.phase)
        if thinned is None:
            thinned = self.loss_thinned[point.phase] = Thinned(LOSS_OVERVIEW)
        loss = point.loss
        thinned.add(point, loss is not None and not math.isfinite(loss))

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
                               history=deque(maxlen=self.history_length),
                               overview=Thinned(overview_length(len(self.model.layers)
                                                                if self.model else 1)))
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
        parts = [plural(len(self.probe_steps), "probe step")] if self.probe_steps else []
        if self.progress is not None and self.progress.step > 0:
            # The watch looked at the user's training too (checks/training.py).
            parts.append(plural(self.progress.step, "training step").replace(
                str(self.progress.step), f"{self.progress.step:,}", 1))
        return nothing_found(self.notes, " and ".join(parts))

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

    # --- the user's training (TrainProgress, EpochEnded) ----------------------

    def legacy_training(self) -> bool:
        """True for a recording made before the watch: its training StepStats
        came one per epoch, with `step` the epoch (no TrainProgress, no
        EpochEnded, no "epoch" in their extra)."""
        if self.progress is not None or self.epochs:
            return False
        for stats in reversed(self.steps):
            if stats.phase == "train":
                return "epoch" not in stats.extra
        return False

    def training_epoch(self) -> int | None:
        """The epoch the user's training is in (1-based), None before it is known."""
        if self.progress is not None:
            return self.progress.epoch
        for stats in reversed(self.steps):
            if stats.phase == "train":
                epoch = stats.extra.get("epoch")
                if epoch is None:  # a recording from before the watch: step = epoch
                    return stats.step
                return int(epoch) if math.isfinite(epoch) else None
        event = self.phase_event
        if event is not None and event.phase == "train" and event.step is not None:
            return event.step
        return None

    def training_rate(self) -> float | None:
        """Steps per second of the user's training: the median pace between the
        latest TrainProgress events of this fit (RATE_WINDOW of them), so one slow
        stretch (an epoch's validation, a checkpoint, a compilation) does not move
        it; the first event's time (since the fit began) is never a pace. None
        before RATE_MIN_PACES paces."""
        paces = [
            (later.seconds - earlier.seconds) / (later.step - earlier.step)
            for earlier, later in pairwise(self._progress_window)
            if later.step > earlier.step and later.seconds > earlier.seconds
        ]
        if len(paces) < RATE_MIN_PACES:
            return None
        return 1.0 / statistics.median(paces)

    def training_remaining(self) -> int | None:
        """Steps left in this fit: the epochs to come and the rest of this one.
        None while the epoch's length is unknown (an unsized dataset's first
        epoch) or the fit has no epochs (train_on_batch)."""
        progress = self.progress
        if progress is None or progress.batches is None or progress.epochs is None:
            return None
        later = max(0, progress.epochs - progress.epoch) * progress.batches
        return later + max(0, progress.batches - progress.batch)

    def training_eta(self) -> float | None:
        """Seconds until this fit ends at `training_rate`; None when unknown."""
        remaining, rate = self.training_remaining(), self.training_rate()
        if remaining is None or rate is None:
            return None
        return remaining / rate

    def loss_overview(self) -> list[LossPoint]:
        """Every loss of the run at a bounded cost (each phase thinned to at most
        LOSS_OVERVIEW points): the probe's steps first, then the training's points
        in step order (at one step: in the order their phases first came)."""
        thinned = self.loss_thinned
        probe = thinned["probe"].items() if "probe" in thinned else []
        rest = [point for phase, series in thinned.items() if phase != "probe"
                for point in series.items()]
        rest.sort(key=lambda point: point.step)  # stable
        return probe + rest

    def loss_count(self) -> int:
        """Loss points ever seen (the chart redraws when it changes)."""
        return sum(series.total for series in self.loss_thinned.values())

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


def overview_length(layers: int) -> int:
    """Samples each layer's whole-run overview keeps, for a model of `layers` layers."""
    return max(OVERVIEW_MIN, min(OVERVIEW_MAX, OVERVIEW_BUDGET // max(1, layers)))


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
