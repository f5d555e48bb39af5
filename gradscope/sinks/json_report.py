"""The full report as one JSON document (`--json`), written atomically."""

from __future__ import annotations

import json
import math
from typing import Any

from gradscope import __version__
from gradscope.events import (
    EpochEnded,
    Event,
    LayerRow,
    LayerStats,
    RunFinished,
    StepStats,
    TrainProgress,
    VerdictIssued,
    to_dict,
)
from gradscope.report import Report, Thinned
from gradscope.sinks._files import (
    check_writable,
    final_path,
    in_place,
    write_atomic,
    write_atomic_at_open,
)

REPORT_SCHEMA = 1

# The training's series are thinned to a bounded size (report.Thinned: evenly,
# the first non-finite item kept), so a long run's report stays small
# (docs/cli.md): at most this many watched-step losses and epochs, and per
# layer a share of LAYER_BUDGET watched steps (10 layers: 500 each; 1000
# layers: 50 each).
LOSS_POINTS = 1000
EPOCH_POINTS = 1000
LAYER_BUDGET = 50_000
LAYER_POINTS_MIN, LAYER_POINTS_MAX = 20, 500
METRICS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
           "act_saturated_frac", "act_dead_frac")


def _nonfinite(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


class TrainingSeries:
    """The user's training as the report carries it: the epochs, the watched
    steps' own losses and each layer's figures at the watched steps, thinned."""

    def __init__(self) -> None:
        self.progress: TrainProgress | None = None
        self.epochs: Thinned[EpochEnded] = Thinned(EPOCH_POINTS)
        self.losses: Thinned[StepStats] = Thinned(LOSS_POINTS)
        self.layers: Thinned[LayerStats] | None = None  # sized by the first step's layers
        self.first_nonfinite_loss: int | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, StepStats) and event.phase == "train":
            bad = _nonfinite(event.loss)
            if bad and self.first_nonfinite_loss is None:
                self.first_nonfinite_loss = event.step
            self.losses.add(event, bad=bad)
        elif isinstance(event, LayerStats) and event.phase == "train":
            if self.layers is None:
                share = LAYER_BUDGET // max(1, len(event.rows))
                self.layers = Thinned(max(LAYER_POINTS_MIN, min(LAYER_POINTS_MAX, share)))
            # A watched step with a non-finite figure shows where it started: the
            # thinning keeps the first one.
            bad = any(_nonfinite(getattr(row, name)) for row in event.rows for name in METRICS)
            self.layers.add(event, bad=bad)
        elif isinstance(event, EpochEnded):
            self.epochs.add(event)
        elif isinstance(event, TrainProgress):
            self.progress = event

    def to_json(self) -> dict[str, Any]:
        return {
            "progress": _body(self.progress) if self.progress is not None else None,
            "epochs": [_body(e) for e in self.epochs.items()],
            "epochs_seen": self.epochs.total,
            "losses": [_loss_point(s) for s in self.losses.items()],
            "losses_seen": self.losses.total,
            "first_nonfinite_loss_step": self.first_nonfinite_loss,
            "layers": _layer_series(self.layers) if self.layers is not None else [],
            "watched_steps": self.layers.total if self.layers is not None else 0,
        }


def _loss_point(step: StepStats) -> dict[str, Any]:
    epoch = step.extra.get("epoch")
    return _clean_numbers({
        "step": step.step,
        "epoch": int(epoch) if epoch is not None and math.isfinite(epoch) else None,
        "loss": step.loss,
    })


def _layer_series(kept: Thinned[LayerStats]) -> list[dict[str, Any]]:
    """One entry per layer, in the model's forward order: the watched steps it was
    measured at and each metric at those steps (columns, not rows: compact)."""
    series: dict[str, dict[str, Any]] = {}
    for event in kept.items():
        for row in event.rows:
            entry = series.get(row.layer)
            if entry is None:
                entry = series[row.layer] = _new_series(row)
            entry["steps"].append(event.step)
            for name in METRICS:
                entry[name].append(getattr(row, name))
    return [_clean_numbers(entry) for entry in series.values()]


def _new_series(row: LayerRow) -> dict[str, Any]:
    return {"layer": row.layer, "layer_type": row.layer_type, "steps": [],
            **{name: [] for name in METRICS}}


def _clean_numbers(data: dict[str, Any]) -> dict[str, Any]:
    # The same NaN/Inf strings as the events (events.to_dict).
    return {key: _cleaned(value) for key, value in data.items()}


def _cleaned(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    return value


def _body(event: Any) -> dict[str, Any]:
    # events.to_dict already turns nan/inf into strings; drop its envelope keys.
    data = to_dict(event)
    del data["v"], data["type"]
    return data


def report_json(report: Report, training: TrainingSeries | None = None) -> dict[str, Any]:
    """The `--json` document of a run, as plain JSON-ready data (docs/cli.md).

    `training`: the training's series, folded from the same events; without
    it the report has an empty `training` and every StepStats in `steps`.
    """
    ranked = report.ranked_verdicts()
    top = report.headline()
    layers = []
    for track in report.layers.values():
        sample = track.latest
        if sample is None:
            continue
        (cleaned,) = _body(LayerStats(sample.phase, sample.step, (sample.row,)))["rows"]
        layers.append({"phase": sample.phase, "step": sample.step, **cleaned})
    return {
        "schema": REPORT_SCHEMA,
        "run": _body(report.started) if report.started else {"gradscope_version": __version__},
        "model": _body(report.model) if report.model else None,
        "verdicts": [_body(VerdictIssued(v))["verdict"] for v in ranked],
        "headline": top.message if top else None,
        "layers": layers,
        "steps": [_body(s) for s in _steps(report, training)],
        "notes": [_body(n) for n in report.notes],
        # Checks that did not run (experiments cut short by --budget...):
        # an empty verdict list means "healthy" only when this is empty too.
        "unchecked": report.unchecked(),
        "finished": _body(report.finished) if report.finished else None,
        "training": (training or TrainingSeries()).to_json(),
    }


def _steps(report: Report, training: TrainingSeries | None) -> list[StepStats]:
    """Every probe step; the training's watched steps as thinned in `training.losses`."""
    if training is None:
        return list(report.steps)
    return [s for s in report.steps if s.phase != "train"] + training.losses.items()


class JsonReportSink:
    """Folds the run into a Report and writes it at start (incomplete), on
    RunFinished and on close.

    The file is replaced in one step each time, so it is always valid JSON;
    `finished` is null until the run has ended.
    """

    def __init__(self, path: str) -> None:
        self.path = final_path(path)
        # A pipe or a device (/dev/stdout) gets the report once, complete, at close.
        self._rewrite = not in_place(path)
        self.run_report = Report()
        self.training = TrainingSeries()
        if self._rewrite:
            write_atomic_at_open(path, self.render())
        else:
            check_writable(path)

    def handle(self, event: Event) -> None:
        self.run_report.apply(event)
        self.training.apply(event)
        if isinstance(event, RunFinished) and self._rewrite:
            write_atomic(self.path, self.render())

    def report(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return report_json(self.run_report, self.training)

    def render(self) -> str:
        return json.dumps(self.report(), indent=2, allow_nan=False) + "\n"

    def close(self) -> None:
        write_atomic(self.path, self.render())
