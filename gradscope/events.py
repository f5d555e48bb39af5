"""Typed, versioned events: the only thing front ends (UI, CSV, replay) ever read.

The engine emits these; sinks consume them. They serialise to JSON Lines with a
schema version so a recorded run can be replayed by `gradscope view` without
TensorFlow.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from gradscope.verdicts import Verdict

SCHEMA_VERSION = 1

# Phases, in the order a run goes through them: "script" from the moment the
# script runs (Keras imported) until its first fit().
PHASES = ("script", "static", "probe", "experiments", "train", "done")


@dataclass(frozen=True)
class RunStarted:
    script: str
    argv: tuple[str, ...]
    gradscope_version: str
    started_at: float


@dataclass(frozen=True)
class LayerInfo:
    name: str
    layer_type: str
    param_count: int
    trainable: bool
    activation: str | None = None
    output_shape: str = ""
    # What the drill-down shows as the layer's config: shapes, initialisers,
    # regularisers, dtype... as readable strings (key -> value).
    config: dict[str, str] = field(default_factory=dict)
    # The dtype the layer computes in ("float16" under mixed_float16, whose
    # variables stay float32); read off the config's dtype policy when not given
    # (records written before this field load with it filled in).
    compute_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.compute_dtype is None:
            object.__setattr__(self, "compute_dtype", policy_compute_dtype(self.config.get("dtype")))


def policy_compute_dtype(policy: str | None) -> str | None:
    """The compute dtype of a Keras dtype policy name: "mixed_float16" ->
    "float16", "float32" -> "float32"; None when unknown (a quantized policy)."""
    if not policy:
        return None
    name = policy.removeprefix("mixed_")
    return name if name in ("float16", "bfloat16", "float32", "float64") else None


@dataclass(frozen=True)
class ModelDescribed:
    model_name: str
    model_class: str
    param_count: int
    trainable_param_count: int
    device: str
    probe_mode: str  # "clone" or "in-place"
    layers: tuple[LayerInfo, ...] = ()


@dataclass(frozen=True)
class PhaseChanged:
    """What the run does now. `phase` is one of PHASES; `detail` says more in
    words (the experiment running); `step`/`total` count within the phase
    (probe step i of N, experiment i of N, epoch e of E) where known."""

    phase: str
    detail: str = ""
    step: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class StepStats:
    """Whole-model figures for one step. Phase "probe": a probe step. Phase
    "train": a watched step of the user's training; `step` is the global step
    (TrainProgress.step), `loss` that step's own loss (not Keras's running mean),
    `extra` has its "epoch" (1-based). (Records before the watch sent one
    train StepStats per epoch, with `step` the epoch.)"""

    phase: str
    step: int
    loss: float | None
    seconds: float | None = None
    extra: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerRow:
    """One layer's figures at one step; None = does not apply (written as an empty CSV cell)."""

    layer: str
    layer_type: str
    param_count: int
    trainable: bool
    grad_norm: float | None = None
    weight_norm: float | None = None
    update_ratio: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    act_saturated_frac: float | None = None
    act_dead_frac: float | None = None


@dataclass(frozen=True)
class LayerStats:
    phase: str
    step: int
    rows: tuple[LayerRow, ...]


@dataclass(frozen=True)
class Histogram:
    """Values binned evenly between lo and hi (the finite minimum and maximum)."""

    lo: float
    hi: float
    counts: tuple[int, ...]
    nonfinite: int = 0  # NaN/Inf values, not in any bin
    total: int = 0  # values summarised (large tensors: an even subsample)


@dataclass(frozen=True)
class LayerHistogram:
    layer: str
    weights: Histogram | None = None  # None = the layer has no trainable weights
    grads: Histogram | None = None
    acts: Histogram | None = None  # None = output not tapped (reshaping layers)


@dataclass(frozen=True)
class LayerHistograms:
    """Histograms of every layer at one step (sent before the first probe step and
    after the last: a shape to compare, at the cost of about two steps)."""

    phase: str
    step: int
    layers: tuple[LayerHistogram, ...]


@dataclass(frozen=True)
class VerdictIssued:
    verdict: Verdict


@dataclass(frozen=True)
class Note:
    """A line for the user that is not a verdict (what gradscope did or could not do)."""

    level: str  # "info" | "warning" | "error"
    text: str
    # Check IDs that could not run for the reason this note gives (experiments
    # cut short by --budget, or lost to an error): "no problems found" must
    # never be said while this is non-empty.
    unchecked: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutputLine:
    """A line the user's script (or TensorFlow) printed, captured by live mode's
    parent so it never draws over the UI; shown in the log pane.

    Live mode runs the script on a pseudo-terminal and sends each line as the
    terminal showed it when it was finished (`gradscope/terminal_lines.py`):
    `text` has no control character; `ansi` is the same line with its colours
    (SGR codes), "" when it has none. A `partial` line is the stream's line
    still being drawn (a progress bar between redraws): it replaces that
    stream's previous partial line, the stream's next finished line replaces
    it, and it is never recorded. `ansi` and `partial` are written only when set
    (records without them read as before)."""

    stream: str  # "stdout" | "stderr"
    text: str
    ansi: str = ""
    partial: bool = False


@dataclass(frozen=True)
class TrainProgress:
    """Where the user's own training is (phase "train"): sent every few steps
    and at each epoch's end. Counts are in steps, never in seconds."""

    step: int  # global step: batches trained by the user's fits so far (a second fit goes on counting)
    epoch: int  # 1-based
    epochs: int | None  # the fit's epochs (None: train_on_batch)
    batch: int  # steps done within this epoch
    batches: int | None  # steps per epoch; None while unknown (an unsized dataset's first epoch)
    seconds: float  # wall clock since this fit()'s training began
    fit: int = 1  # which fit() of the script (2: a second fit, watched as a new phase)


@dataclass(frozen=True)
class EpochEnded:
    """An epoch of the user's training ended: its figures as Keras logs them
    (loss, val_loss, metrics), the learning rate it ended with, and the global
    step it ended at."""

    epoch: int  # 1-based
    step: int
    logs: dict[str, float | None] = field(default_factory=dict)
    learning_rate: float | None = None
    seconds: float = 0.0  # wall clock since this fit()'s training began
    fit: int = 1


@dataclass(frozen=True)
class RunFinished:
    status: str  # "ok" | "probe-only" | "script-error" | "no-fit" | "interrupted" | ...
    exit_code: int
    # status "script-error": the exception's last line ("ValueError: ...") and
    # its traceback as python prints it (the record keeps what stderr showed).
    error: str = ""
    traceback: str = ""


Event = (
    RunStarted
    | ModelDescribed
    | PhaseChanged
    | StepStats
    | LayerStats
    | LayerHistograms
    | VerdictIssued
    | Note
    | OutputLine
    | TrainProgress
    | EpochEnded
    | RunFinished
)

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        RunStarted,
        ModelDescribed,
        PhaseChanged,
        StepStats,
        LayerStats,
        LayerHistograms,
        VerdictIssued,
        Note,
        OutputLine,
        TrainProgress,
        EpochEnded,
        RunFinished,
    )
}


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class EventBus:
    """Fans events out to sinks. A failing sink is reported once and dropped,
    so one bad output never stops the diagnosis or the user's training."""

    def __init__(self, sinks: list[Sink] | None = None) -> None:
        from gradscope.report import Report  # report imports this module

        self.sinks: list[Sink] = list(sinks or [])
        self.history: list[Event] = []
        # The run as folded so far: what the exit code and the session read.
        self.report = Report()

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, event: Event) -> None:
        self.history.append(event)
        self.report.apply(event)
        for sink in list(self.sinks):
            try:
                sink.handle(event)
            except Exception as exc:  # noqa: BLE001 - e.g. disk full: drop this output only
                self._drop(sink, exc)

    def _drop(self, sink: Sink, exc: Exception) -> None:
        import sys

        self.sinks.remove(sink)
        print(
            f"gradscope: stopped writing {type(sink).__name__} output: {exc}",
            file=sys.stderr,
        )

    def verdicts(self) -> list[Verdict]:
        return [e.verdict for e in self.history if isinstance(e, VerdictIssued)]

    def close(self) -> None:
        for sink in list(self.sinks):
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                self._drop(sink, exc)


def _clean(value: Any) -> Any:
    # JSON has no NaN/Inf: keep them readable as strings so a replay shows them.
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _unclean(value: Any) -> Any:
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def to_dict(event: Event) -> dict[str, Any]:
    if isinstance(event, VerdictIssued):
        body: dict[str, Any] = {"verdict": event.verdict.to_dict()}
    else:
        body = asdict(event)
        if isinstance(event, RunFinished):
            # Only a script that raised has these: other runs' records stay as they were.
            body = {k: v for k, v in body.items() if k not in ("error", "traceback") or v}
        elif isinstance(event, OutputLine):
            body = {k: v for k, v in body.items() if k not in ("ansi", "partial") or v}
    return {"v": SCHEMA_VERSION, "type": type(event).__name__, **_clean(body)}


def to_json(event: Event) -> str:
    return json.dumps(to_dict(event), separators=(",", ":"))


def from_dict(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event type: {kind!r}")
    if cls is VerdictIssued:
        return VerdictIssued(Verdict.from_dict(data["verdict"]))
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is LayerStats:
        kwargs["rows"] = tuple(
            LayerRow(**{k: _unclean(v) for k, v in row.items()}) for row in kwargs["rows"]
        )
    elif cls is LayerHistograms:
        kwargs["layers"] = tuple(
            LayerHistogram(
                layer=item["layer"],
                **{kind: _histogram(item.get(kind)) for kind in ("weights", "grads", "acts")},
            )
            for item in kwargs["layers"]
        )
    elif cls is ModelDescribed:
        known = {f.name for f in fields(LayerInfo)}
        kwargs["layers"] = tuple(
            LayerInfo(**{k: v for k, v in layer.items() if k in known})
            for layer in kwargs.get("layers", ())
        )
    elif cls is RunStarted:
        kwargs["argv"] = tuple(kwargs["argv"])
    elif cls is Note:
        kwargs["unchecked"] = tuple(kwargs.get("unchecked") or ())
    elif cls is EpochEnded:
        kwargs["logs"] = {k: _unclean(v) for k, v in (kwargs.get("logs") or {}).items()}
        kwargs["learning_rate"] = _unclean(kwargs.get("learning_rate"))
    elif cls is StepStats:
        kwargs["loss"] = _unclean(kwargs.get("loss"))
        kwargs["extra"] = {k: _unclean(v) for k, v in (kwargs.get("extra") or {}).items()}
    return cls(**kwargs)


def _histogram(data: dict[str, Any] | None) -> Histogram | None:
    if data is None:
        return None
    return Histogram(
        lo=float(_unclean(data["lo"])),
        hi=float(_unclean(data["hi"])),
        counts=tuple(int(c) for c in data["counts"]),
        nonfinite=int(data.get("nonfinite", 0)),
        total=int(data.get("total", 0)),
    )


def from_json(line: str) -> Event:
    return from_dict(json.loads(line))
