"""The JSON report's `training`: epochs, watched steps' losses and each layer's
series over the user's training, thinned to a bounded size on long runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradscope.events import (
    EpochEnded,
    Event,
    LayerRow,
    LayerStats,
    RunFinished,
    StepStats,
    TrainProgress,
    from_json,
)
from gradscope.sinks.json_report import (
    LAYER_POINTS_MAX,
    LOSS_POINTS,
    METRICS,
    JsonReportSink,
)


def _reject(token: str) -> None:
    raise AssertionError(f"non-standard JSON token {token}")


def rows(grad: float = 0.5) -> tuple[LayerRow, ...]:
    return (
        LayerRow("dense", "Dense", 72, True, grad_norm=grad, weight_norm=2.0, update_ratio=1e-3,
                 act_mean=0.1, act_std=0.9, act_saturated_frac=None, act_dead_frac=0.25),
        LayerRow("dropout", "Dropout", 0, False),
    )


def watched(step: int, epoch: int, loss: float = 0.5, grad: float = 0.5) -> list[Event]:
    return [StepStats("train", step, loss, extra={"epoch": float(epoch)}),
            LayerStats("train", step, rows(grad))]


def report_of(tmp_path: Path, events: list[Event]) -> dict:
    path = tmp_path / "report.json"
    sink = JsonReportSink(str(path))
    for event in events:
        sink.handle(event)
    sink.close()
    return json.loads(path.read_text(), parse_constant=_reject)


def test_the_training_series_are_in_the_report(tmp_path: Path) -> None:
    # Given a probe step, two watched steps, an epoch end and the progress
    report = report_of(tmp_path, [
        StepStats("probe", 1, 0.7), LayerStats("probe", 1, rows(0.9)),
        *watched(1, 1, loss=0.69, grad=0.4),
        *watched(5, 1, loss=0.6, grad=0.3),
        EpochEnded(1, 8, {"loss": 0.62, "val_loss": 0.7, "accuracy": 0.75},
                   learning_rate=0.01, seconds=1.5),
        TrainProgress(step=8, epoch=1, epochs=3, batch=8, batches=8, seconds=1.5),
        RunFinished("ok", 0),
    ])
    training = report["training"]
    # Then the epochs are there with their global step, logs and learning rate
    assert training["epochs"] == [{"epoch": 1, "step": 8, "logs": {"loss": 0.62, "val_loss": 0.7,
                                   "accuracy": 0.75}, "learning_rate": 0.01, "seconds": 1.5,
                                   "fit": 1}]
    # And the watched steps' own losses, with the epoch each was in
    assert training["losses"] == [{"step": 1, "epoch": 1, "loss": 0.69},
                                  {"step": 5, "epoch": 1, "loss": 0.6}]
    # And each layer's figures at the watched steps, in forward order, as columns
    dense, dropout = training["layers"]
    assert dense["layer"] == "dense" and dense["layer_type"] == "Dense"
    assert dense["steps"] == [1, 5] and dense["grad_norm"] == [0.4, 0.3]
    assert dense["act_saturated_frac"] == [None, None]  # does not apply
    assert dropout["steps"] == [1, 5] and dropout["grad_norm"] == [None, None]
    assert set(METRICS) <= set(dense)
    # And where the training is, and how much was seen (nothing thinned here)
    assert training["progress"]["step"] == 8 and training["progress"]["epochs"] == 3
    assert (training["watched_steps"], training["losses_seen"], training["epochs_seen"]) == (2, 2, 1)
    assert training["first_nonfinite_loss_step"] is None
    # And `steps` still lists the probe step, then the watched steps
    assert [(s["phase"], s["step"]) for s in report["steps"]] == [
        ("probe", 1), ("train", 1), ("train", 5)]
    # And the final per-layer stats are from the training's last watched step
    assert report["layers"][0]["step"] == 5 and report["layers"][0]["phase"] == "train"


def test_a_run_without_training_has_an_empty_training(tmp_path: Path) -> None:
    report = report_of(tmp_path, [StepStats("probe", 1, 0.7), LayerStats("probe", 1, rows()),
                                  RunFinished("probe-only", 0)])
    assert report["training"] == {
        "progress": None, "epochs": [], "epochs_seen": 0, "losses": [], "losses_seen": 0,
        "first_nonfinite_loss_step": None, "layers": [], "watched_steps": 0,
    }


def test_a_long_run_is_thinned_evenly_keeping_the_ends_and_the_first_nan(tmp_path: Path) -> None:
    # Given 5000 watched steps (every 10th step), the loss turning NaN at step 33_337
    events: list[Event] = []
    for n in range(5000):
        step = 1 + 10 * n
        events += watched(step, 1 + n // 100, grad=float(n))
        if step == 33_331:
            events.append(StepStats("train", 33_337, float("nan"), extra={"epoch": 34.0}))
            events += watched(33_338, 34, loss=float("nan"), grad=float("nan"))
    every = [e.step for e in events if isinstance(e, LayerStats)]
    events.append(RunFinished("ok", 0))
    report = report_of(tmp_path, events)
    training = report["training"]
    losses, dense = training["losses"], training["layers"][0]

    # Then the series are bounded
    assert training["losses_seen"] == 5002 and training["watched_steps"] == 5001
    assert len(losses) <= LOSS_POINTS + 2
    assert len(dense["steps"]) <= LAYER_POINTS_MAX + 2
    # And evenly spread over the whole run: every k-th watched step, the first and the last
    assert dense["steps"][0] == 1 and dense["steps"][-1] == 1 + 10 * 4999
    # (5001 watched steps in at most 500: the first of every 16; the one with
    # the NaN figures stands for its 16)
    regular = [every.index(s) for s in dense["steps"] if s not in (33_338, 1 + 10 * 4999)]
    nan_bucket = every.index(33_338) // 16 * 16
    assert sorted([*regular, nan_bucket]) == list(range(0, regular[-1] + 1, 16))
    # And the first non-finite loss and the first step with non-finite figures are kept
    assert training["first_nonfinite_loss_step"] == 33_337
    assert {"step": 33_337, "epoch": 34, "loss": "nan"} in losses
    assert 33_338 in dense["steps"]
    assert dense["grad_norm"][dense["steps"].index(33_338)] == "nan"
    assert dense["steps"] == sorted(dense["steps"])
    # And `steps` carries the same thinned watched steps as `losses`
    assert [s["step"] for s in report["steps"] if s["phase"] == "train"] == [
        p["step"] for p in losses]


def test_the_same_events_give_the_same_report(tmp_path: Path) -> None:
    events: list[Event] = []
    for n in range(3000):
        events += watched(n + 1, 1)
    first = report_of(tmp_path, events)
    second = report_of(tmp_path, events)
    assert first == second


# --- a real run ----------------------------------------------------------------------------

SCRIPT = """
import numpy as np
import keras
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 6)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="sgd", loss="binary_crossentropy")
model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
"""


def test_a_real_run_reports_its_training(tmp_path: Path) -> None:
    # Given a tiny script run with its training watched every 2nd step
    (tmp_path / "tiny.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--json", "r.json",
         "--record", "run.jsonl", "--seed", "0", "--budget", "0", "--watch-every", "2",
         "tiny.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "r.json").read_text(), parse_constant=_reject)
    events = [from_json(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    training = report["training"]
    # Then its epochs are the record's: 96 training rows in batches of 32, 3 steps each
    assert [(e["epoch"], e["step"]) for e in training["epochs"]] == [(1, 3), (2, 6)]
    recorded = [e for e in events if isinstance(e, EpochEnded)]
    assert [e["logs"]["val_loss"] for e in training["epochs"]] == pytest.approx(
        [e.logs["val_loss"] for e in recorded])
    # And every watched step is in each layer's series, with measured gradients
    watched_steps = [e.step for e in events if isinstance(e, LayerStats) and e.phase == "train"]
    assert [layer["layer"] for layer in training["layers"]] == ["dense", "dense_1"]
    for layer in training["layers"]:
        assert layer["steps"] == watched_steps
        assert all(isinstance(g, float) and g > 0 for g in layer["grad_norm"])
    assert [p["step"] for p in training["losses"]] == watched_steps
    assert training["progress"]["step"] == 6
