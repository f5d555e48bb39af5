"""The checks on the user's training (checks/training.py), on event sequences
built here as the watch sends them: watched steps (StepStats + LayerStats),
TrainProgress, EpochEnded. No TensorFlow: each test is a few milliseconds."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from gradscope.checks import training
from gradscope.checks.catalogue import CATALOGUE
from gradscope.checks.registry import REGISTRY
from gradscope.checks.training import TrainingChecks
from gradscope.events import (
    EpochEnded,
    Event,
    LayerHistograms,
    LayerRow,
    LayerStats,
    StepStats,
    TrainProgress,
)
from gradscope.verdicts import Verdict

NAN = float("nan")
NEW_IDS = {
    "nonfinite-during-training", "gradient-exploding-late", "loss-diverging",
    "dead-units-growing", "saturation-growing", "gradient-vanishing-late",
    "learning-rate-vanished", "overfitting", "loss-plateau",
}
LAYERS = ("dense", "dense_1", "out")

def falling(step: int) -> float:
    """A loss falling steadily (2.5 % an epoch of 50 steps): no plateau, no climb."""
    return 2.0 - step / 1000


# One layer's figures at one watched step: keyword arguments of LayerRow.
Figures = dict[str, float | None]


def row(layer: str, **figures: float | None) -> LayerRow:
    base: Figures = {"grad_norm": 1.0, "weight_norm": 5.0, "update_ratio": 1e-3,
                     "act_mean": 0.3, "act_std": 0.5}
    if layer != "out":
        base["act_dead_frac"] = 0.1
    else:
        base["act_saturated_frac"] = 0.2
    base.update(figures)
    return LayerRow(layer=layer, layer_type="Dense", param_count=100, trainable=True, **base)


def rows(per_layer: dict[str, Figures] | None = None) -> tuple[LayerRow, ...]:
    per_layer = per_layer or {}
    return tuple(row(name, **per_layer.get(name, {})) for name in LAYERS)


def watched(step: int, epoch: int, loss: float,
            per_layer: dict[str, Figures] | None = None) -> list[Event]:
    """A watched step as the watch sends it: its own loss, then its layers' figures."""
    return [StepStats("train", step, loss, extra={"epoch": float(epoch)}),
            LayerStats("train", step, rows(per_layer))]


def epoch_end(epoch: int, step: int, loss: float, lr: float | None = 1e-3,
              fit: int = 1, **logs: float) -> EpochEnded:
    return EpochEnded(epoch=epoch, step=step, logs={"loss": loss, **logs}, learning_rate=lr,
                      seconds=float(epoch), fit=fit)


def run(
    epochs: int,
    batches: int = 50,
    every: int = 10,
    loss: Callable[[int], float] = lambda step: 2.3 / (1 + step / 50),
    layers: Callable[[int], dict[str, Figures]] = lambda step: {},
    logs: Callable[[int], dict[str, float]] = lambda epoch: {},
    lr: Callable[[int], float | None] = lambda epoch: 1e-3,
    fit: int = 1,
    first_step: int = 0,
    total: int | None = None,
) -> list[Event]:
    """A whole fit as the watch reports it: `epochs` x `batches` steps, every
    `every`-th watched (the first always), progress at each watched step and
    each epoch end; `loss(step)`, `layers(step)`, `logs(epoch)` and `lr(epoch)`
    give the figures. The epoch's loss is the mean of its steps' losses;
    `total`: the fit's epochs as TrainProgress says them (default `epochs`)."""
    events: list[Event] = []
    step = first_step
    for epoch in range(1, epochs + 1):
        losses = []
        for batch in range(1, batches + 1):
            step += 1
            losses.append(loss(step))
            if (step - first_step - 1) % every == 0:
                events += watched(step, epoch, loss(step), layers(step))
                events.append(TrainProgress(step, epoch, total or epochs, batch, batches,
                                            0.1 * step, fit))
        events.append(epoch_end(epoch, step, float(np.mean(losses)), lr(epoch), fit,
                                **logs(epoch)))
        events.append(TrainProgress(step, epoch, total or epochs, batches, batches, 0.1 * step,
                                    fit))
    return events


def feed(events: Sequence[Event], checks: TrainingChecks | None = None,
         epochs: int | None = None, patience: int | None = None) -> list[Verdict]:
    checks = checks or TrainingChecks(epochs=epochs, batches=None, patience=patience)
    found: list[Verdict] = []
    for event in events:
        found += checks.handle(event)
    return found


def by_id(verdicts: list[Verdict]) -> dict[str, Verdict]:
    ids = [v.check for v in verdicts]
    assert len(ids) == len(set(ids)), f"an ID fired twice: {ids}"
    return {v.check: v for v in verdicts}


def epochs_of(losses: Sequence[float], batches: int = 50, **logs: Sequence[float]) -> list[Event]:
    """A fit whose epoch losses are `losses` (and other logs per epoch), with a
    watched first step at 2.3 (the untrained loss)."""
    events: list[Event] = watched(1, 1, 2.3)
    for i, value in enumerate(losses):
        epoch = i + 1
        extra = {key: float(series[i]) for key, series in logs.items()}
        events.append(epoch_end(epoch, epoch * batches, value, **extra))
    return events


# ------------------------------------------------------------------ catalogue


def test_the_ids_are_catalogued_as_training_checks_with_a_default_severity() -> None:
    assert NEW_IDS <= set(CATALOGUE)
    assert {c.id for c in training.training_checks()} == NEW_IDS
    for check_id in NEW_IDS:
        assert REGISTRY[check_id].phase == "training"
        assert CATALOGUE[check_id].severity in ("error", "warning")
    # the probe-time ID keeps its meaning: a check of the probe, not of the training
    assert REGISTRY["nonfinite-loss"].phase == "dynamic"


# ------------------------------------------------------------------ healthy runs


def _healthy(epochs: int = 12) -> list[Event]:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.08, size=epochs * 50 + 1)

    def loss(step: int) -> float:
        return max(0.05, 2.3 * math.exp(-step / 150) + 0.15 + noise[step] * 2.3 * math.exp(-step / 300))

    def layers(step: int) -> dict[str, Figures]:
        # gradients shrinking as the loss falls; 30 % of the ReLU units dead
        # from the start, steady; the output saturating as it grows confident
        jitter = 1 + 0.3 * noise[step]
        return {"dense": {"grad_norm": 0.8 * jitter * math.exp(-step / 400), "act_dead_frac": 0.3},
                "dense_1": {"grad_norm": 1.1 * jitter * math.exp(-step / 400),
                            "act_dead_frac": 0.3 + 0.05 * noise[step]},
                "out": {"grad_norm": 1.5 * jitter, "act_saturated_frac": min(0.95, step / 400)}}

    def logs(epoch: int) -> dict[str, float]:
        # val_loss a little above the training loss, the gap steady
        train = 2.3 * math.exp(-epoch * 50 / 150) + 0.15
        return {"val_loss": train * 1.15 + 0.05 * noise[epoch], "accuracy": min(0.97, 0.5 + epoch / 20),
                "val_accuracy": min(0.94, 0.45 + epoch / 20)}

    return run(epochs, loss=loss, layers=layers, logs=logs,
               lr=lambda epoch: 1e-3 * 0.5 ** ((epoch - 1) // 4))  # a step decay


def test_a_healthy_training_gets_no_verdict() -> None:
    assert feed(_healthy(), epochs=12) == []
    assert feed(_healthy(40), epochs=40) == []


def test_a_converged_training_gets_no_plateau_and_its_rate_may_go() -> None:
    # accuracy 1.0 and a loss at 1 % of its start, flat for 15 epochs, while
    # ReduceLROnPlateau took the rate down 10000x: the training is done
    losses = [0.5, 0.1, 0.05, 0.03] + [0.02] * 16
    events = epochs_of(losses, accuracy=[0.9, 0.97, 0.99] + [1.0] * 17)
    events = [replace_lr(e, 1e-3 * 0.1 ** min(4, i // 4)) for i, e in enumerate(events)]
    assert feed(events, epochs=20) == []


def replace_lr(event: Event, lr: float) -> Event:
    if isinstance(event, EpochEnded):
        return EpochEnded(event.epoch, event.step, event.logs, lr, event.seconds, event.fit)
    return event


def test_probe_events_are_not_the_training() -> None:
    checks = TrainingChecks(epochs=10, batches=None)
    # a NaN probe step (the probe's own nonfinite-loss says so) is no training step
    assert checks.handle(StepStats("probe", 3, NAN)) == []
    assert checks.handle(LayerStats("probe", 3, rows({"dense": {"weight_norm": NAN}}))) == []
    assert feed(_healthy(), checks) == []


# ------------------------------------------------------------------ nonfinite-during-training


def _until_nan(nan_step: int, epochs_done: int = 4, batches: int = 50) -> list[Event]:
    events = run(epochs_done, batches=batches, lr=lambda e: 1e-2 * 3 ** max(0, e - 2), total=10)
    epoch = epochs_done + 1
    return events + [StepStats("train", nan_step, NAN, extra={"epoch": float(epoch)})]


def test_nonfinite_names_the_first_nan_step_and_the_first_layer_at_the_next_watched_step() -> None:
    checks = TrainingChecks(epochs=10, batches=50)
    assert feed(_until_nan(212), checks) == []  # waits for the watched step that shows where
    # the forced watched step after it: a NaN update went through every layer
    nan_weights: dict[str, Figures] = {name: {"weight_norm": NAN, "grad_norm": NAN}
                                       for name in LAYERS}
    nan_weights["dense"]["act_mean"] = 0.0  # (ReLU(NaN) reads 0: no culprit there)
    nan_weights["out"].update(act_mean=NAN, act_std=NAN)
    [v] = feed(watched(213, 5, NAN, nan_weights), checks)
    assert v.check == "nonfinite-during-training" and v.severity == "error"
    assert (v.evidence["step"], v.evidence["epoch"]) == (212, 5)
    assert (v.evidence["layer"], v.evidence["figure"]) == ("dense", "weights")
    assert v.evidence["watched_step"] == 213 and v.evidence["layers_nonfinite"] == 3
    assert v.subject == "dense"
    assert "step 212 (epoch 5 of 10)" in v.message
    # the schedule had raised the rate 9x since the first epoch: the message says so
    assert v.evidence["learning_rate"] == pytest.approx(0.09)
    assert "risen to 0.09" in v.message
    json.dumps(v.to_dict(), allow_nan=False)  # no NaN in the evidence: "nan"
    assert v.evidence["loss"] == "nan"
    # once: the NaN steps after it say nothing new, and nothing else speaks
    assert feed(watched(263, 6, NAN, nan_weights) + [epoch_end(6, 300, NAN)], checks) == []


def test_nonfinite_activations_with_finite_weights_show_where_the_forward_pass_overflowed() -> None:
    events = _until_nan(212) + watched(212, 5, NAN, {"dense_1": {"act_mean": math.inf,
                                                               "act_std": NAN},
                                                    "out": {"act_mean": NAN, "grad_norm": NAN}})
    [v] = by_id(feed(events, epochs=10)).values()
    assert (v.evidence["layer"], v.evidence["figure"]) == ("dense_1", "activations")
    assert "overflows there" in v.message


def test_a_nonfinite_gradient_with_a_finite_loss_counts() -> None:
    events = run(3) + watched(151, 4, 0.4, {"dense_1": {"grad_norm": NAN}})
    v = by_id(feed(events, epochs=10))["nonfinite-during-training"]
    assert (v.evidence["step"], v.evidence["epoch"], v.evidence["layer"]) == (151, 4, "dense_1")
    assert v.evidence["loss"] is None and "a gradient became NaN/Inf" in v.message


def test_nonfinite_on_the_last_step_comes_without_a_layer() -> None:
    # the training ended on the NaN step: the watch sends its end-of-training
    # histograms and no watched step follows
    events = _until_nan(250) + [epoch_end(5, 250, NAN), LayerHistograms("train", 250, ())]
    [v] = feed(events, epochs=5)
    assert (v.evidence["step"], v.evidence["epoch"], v.evidence["layer"]) == (250, 5, None)
    # finish() says the same when nothing else will come
    checks = TrainingChecks(epochs=5, batches=None)
    assert feed(_until_nan(250), checks) == []
    [v] = checks.finish()
    assert v.evidence["step"] == 250
    assert checks.finish() == []


def test_after_a_nan_only_the_nan_speaks() -> None:
    # a loss that climbed (it would be loss-diverging) and then went NaN
    losses = [1.0, 0.4, 0.3, 0.9, 1.8, 2.5]
    events = epochs_of(losses[:3]) + [StepStats("train", 160, NAN, extra={"epoch": 4.0})]
    events += watched(161, 4, NAN, {n: {"weight_norm": NAN} for n in LAYERS})
    events += [epoch_end(i + 1, (i + 1) * 50, NAN) for i in range(3, 6)]
    assert [v.check for v in feed(events, epochs=6)] == ["nonfinite-during-training"]


# ------------------------------------------------------------------ loss-diverging


def test_divergence_on_the_epoch_losses_names_its_best_epoch_and_where_it_was_seen() -> None:
    events = epochs_of([1.2, 0.5, 0.35, 0.9, 1.6, 2.6, 3.0])
    found = by_id(feed(events, epochs=10))
    v = found["loss-diverging"]
    assert (v.evidence["step"], v.evidence["epoch"]) == (300, 6)
    assert (v.evidence["best_epoch"], v.evidence["best_loss"]) == (3, 0.35)
    assert v.evidence["series"] == "epochs" and v.evidence["curve"] == [0.9, 1.6, 2.6]
    # back above the untrained model's loss (2.3): everything learned is lost
    assert v.severity == "error" and "what was learned is lost" in v.message
    assert "loss-plateau" not in found


def test_a_climb_that_stays_below_the_start_is_a_warning() -> None:
    v = by_id(feed(epochs_of([1.2, 0.5, 0.3, 1.0, 1.2, 1.4]), epochs=10))["loss-diverging"]
    assert v.severity == "warning" and v.evidence["epoch"] == 6


def test_a_noisy_loss_at_its_floor_or_one_that_recovers_is_no_divergence() -> None:
    assert feed(epochs_of([1.0, 0.3, 0.1, 0.12, 0.15, 0.2, 0.18, 0.25]), epochs=20) == []
    # a spike it comes back from
    assert feed(epochs_of([1.0, 0.3, 0.2, 1.5, 1.3, 1.0, 0.4]), epochs=20) == []


def test_divergence_within_one_long_epoch_shows_in_the_watched_steps() -> None:
    def loss(step: int) -> float:
        return 2.3 * math.exp(-step / 100) + 0.1 if step < 500 else 0.12 + (step - 500) / 150

    v = by_id(feed(run(1, batches=1200, loss=loss), epochs=1))["loss-diverging"]
    assert v.evidence["series"] == "watched steps"
    assert v.evidence["epoch"] == 1 and 700 < v.evidence["step"] < 1000
    assert 400 < v.evidence["best_step"] <= 600


# ------------------------------------------------------------------ loss-plateau


def test_a_training_stalled_at_a_high_loss_is_a_plateau() -> None:
    losses = [2.1, 1.9, 1.85, 1.84, 1.845, 1.84, 1.842, 1.841, 1.84, 1.84]
    found = by_id(feed(epochs_of(losses), epochs=20))
    v = found["loss-plateau"]
    # window: a quarter of 20 epochs = 5; best (by 1 %) at epoch 3
    assert (v.evidence["best_epoch"], v.evidence["epoch"], v.evidence["step"]) == (3, 8, 400)
    assert v.evidence["window"] == 5 and v.evidence["epochs_without_improvement"] == 5
    assert v.severity == "warning" and "stalled" in v.message
    assert v.evidence["start_loss"] == 2.3


def test_a_plateau_after_learning_or_a_solved_one_is_no_stall() -> None:
    # learned more than half of its starting loss away, then flat: its floor
    assert feed(epochs_of([1.0, 0.5, 0.4] + [0.4] * 6), epochs=20) == []
    # label smoothing keeps a loss high at accuracy 1.0: done, not stalled
    stalled = [2.1, 1.9, 1.85] + [1.85] * 6
    assert feed(epochs_of(stalled, accuracy=[0.99] * 9), epochs=20) == []


def test_the_plateau_window_follows_the_users_patience() -> None:
    assert training.plateau_window(100, None) == 25
    assert training.plateau_window(10, None) == training.PLATEAU_MIN_EPOCHS
    assert training.plateau_window(100, 3) == 6
    losses = [2.1, 1.9, 1.85] + [1.85] * 5  # 5 epochs flat after epoch 3
    assert "loss-plateau" in by_id(feed(epochs_of(losses), epochs=20))
    # ReduceLROnPlateau(patience=3) acts at 3 epochs: give it its chance (6)
    assert feed(epochs_of(losses), epochs=20, patience=3) == []
    checks = TrainingChecks(epochs=20, batches=None)
    checks.patience = 3  # (the watch sets it per fit)
    assert feed(epochs_of(losses + [1.85]), checks) != []


# ------------------------------------------------------------------ dead units, saturation


def _layers_over_time(change_at: int, before: dict[str, Figures],
                      after: dict[str, Figures]) -> Callable[[int], dict[str, Figures]]:
    return lambda step: after if step > change_at else before


def test_dead_units_growing_names_the_layer_step_and_epoch() -> None:
    layers = _layers_over_time(160, {"dense_1": {"act_dead_frac": 0.1}},
                               {"dense_1": {"act_dead_frac": 0.7}})
    # a loss that stopped falling: the dead units cost
    events = run(6, layers=layers, loss=lambda s: 2.3 if s < 100 else 1.6)
    v = by_id(feed(events, epochs=6))["dead-units-growing"]
    assert v.subject == "dense_1" and v.severity == "warning"
    # the second watched step after the change (medians of three): step 171, epoch 4
    assert (v.evidence["step"], v.evidence["epoch"]) == (171, 4)
    assert (v.evidence["share_at_start"], v.evidence["share"]) == (0.1, 0.7)
    assert "10%" in v.message and "70%" in v.message


def test_a_whole_dead_layer_is_an_error_and_explains_its_vanished_gradient() -> None:
    layers = _layers_over_time(160, {},
                               {"dense": {"act_dead_frac": 1.0, "grad_norm": 0.0},
                                "dense_1": {"grad_norm": 0.0}})
    found = by_id(feed(run(6, layers=layers, loss=lambda s: 2.3), epochs=6))
    v = found["dead-units-growing"]
    assert v.severity == "error" and "the whole of 'dense' is dead" in v.message
    assert "gradient-vanishing-late" not in found


def test_relu_units_dead_from_the_start_or_one_odd_batch_are_not_flagged() -> None:
    steady = run(6, layers=lambda s: {"dense": {"act_dead_frac": 0.3}}, loss=falling)
    assert feed(steady, epochs=6) == []
    # one batch with 90 % dead among the latest three: the median holds
    odd = run(6, layers=lambda s: {"dense": {"act_dead_frac": 0.9 if s == 281 else 0.3}},
              loss=falling)
    assert feed(odd, epochs=6) == []


def test_dead_units_while_the_loss_keeps_falling_are_info() -> None:
    layers = _layers_over_time(160, {}, {"dense": {"act_dead_frac": 0.6}})
    events = run(6, layers=layers, loss=lambda s: 2.3 * math.exp(-s / 40) + 0.01)
    assert by_id(feed(events, epochs=6))["dead-units-growing"].severity == "info"


def test_saturation_growing_in_a_hidden_layer_but_never_the_output() -> None:
    saturating = _layers_over_time(
        100, {"dense": {"act_saturated_frac": 0.05}, "out": {"act_saturated_frac": 0.05}},
        {"dense": {"act_saturated_frac": 0.8}, "out": {"act_saturated_frac": 0.99}})
    v = by_id(feed(run(5, layers=saturating, loss=lambda s: 1.5), epochs=5))["saturation-growing"]
    assert v.subject == "dense" and v.evidence["layers"] == ["dense"]
    assert v.evidence["epoch"] == 3
    only_output = _layers_over_time(100, {"out": {"act_saturated_frac": 0.05}},
                                    {"out": {"act_saturated_frac": 0.99}})
    assert feed(run(5, layers=only_output, loss=falling), epochs=5) == []
    # told the outputs, it reads them
    checks = TrainingChecks(epochs=5, batches=None, outputs=["dense"])
    assert feed(run(5, layers=only_output, loss=falling), checks) != []


# ------------------------------------------------------------------ gradients


def test_gradient_exploding_late_on_the_global_norm() -> None:
    layers = _layers_over_time(300, {}, {"dense": {"grad_norm": 50.0}, "dense_1": {"grad_norm": 400.0},
                                         "out": {"grad_norm": 30.0}})
    v = by_id(feed(run(8, layers=layers, loss=lambda s: 1.0), epochs=8))["gradient-exploding-late"]
    assert v.severity == "error" and v.subject == "dense_1"
    assert (v.evidence["step"], v.evidence["epoch"]) == (311, 7)
    assert v.evidence["grad_norm_at_start"] == pytest.approx(math.sqrt(3))
    assert v.evidence["growth"] > 100


def test_a_layer_whose_gradient_starts_near_zero_grows_harmlessly() -> None:
    # behind a zero-initialised layer: 1e-9 at first, then a normal 0.5
    layers = _layers_over_time(50, {"dense": {"grad_norm": 1e-9}}, {"dense": {"grad_norm": 0.5}})
    assert feed(run(6, layers=layers, loss=lambda s: 2.0 - s / 400), epochs=6) == []


def test_gradient_vanishing_late_while_the_loss_stays_high() -> None:
    layers = _layers_over_time(200, {}, {"dense": {"grad_norm": 1e-5}, "dense_1": {"grad_norm": 1e-4}})
    v = by_id(feed(run(8, layers=layers, loss=lambda s: 2.2), epochs=8))["gradient-vanishing-late"]
    assert v.subject == "dense" and v.evidence["layers"] == ["dense", "dense_1"]
    assert v.evidence["epoch"] == 5 and v.evidence["ratio"] == pytest.approx(1e-5)


def test_gradients_shrinking_as_the_loss_goes_to_zero_are_healthy() -> None:
    layers = _layers_over_time(200, {}, {"dense": {"grad_norm": 1e-5}, "dense_1": {"grad_norm": 1e-4}})
    solved = run(8, layers=layers, loss=lambda s: 2.2 if s < 200 else 1e-4)
    assert "gradient-vanishing-late" not in by_id(feed(solved, epochs=8))


# ------------------------------------------------------------------ overfitting


def test_overfitting_names_the_best_epoch_and_where_it_was_seen() -> None:
    train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05]
    val = [1.0, 0.7, 0.55, 0.5, 0.52, 0.56, 0.6, 0.65, 0.7]
    acc = [0.6, 0.75, 0.82, 0.86, 0.85, 0.83, 0.8, 0.79, 0.78]
    v = by_id(feed(epochs_of(train, val_loss=val, val_accuracy=acc), epochs=20))["overfitting"]
    # above 1.1 x 0.5 in epochs 6, 7, 8 while the training loss fell: seen at epoch 8
    assert (v.evidence["epoch"], v.evidence["step"], v.evidence["best_epoch"]) == (8, 400, 4)
    assert v.evidence["best_val_loss"] == 0.5 and v.evidence["epochs_since_best"] == 4
    assert v.severity == "warning" and "0.860 then, 0.790 now" in v.message


def test_overfitting_while_the_validation_accuracy_holds_is_info() -> None:
    train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07]
    val = [1.0, 0.7, 0.55, 0.5, 0.6, 0.6, 0.62, 0.65]
    v = by_id(feed(epochs_of(train, val_loss=val, val_accuracy=[0.9] * 8), epochs=20))["overfitting"]
    assert v.severity == "info" and "it holds" in v.message


def test_a_steady_gap_noise_or_the_users_early_stopping_is_no_overfitting() -> None:
    train = [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.19, 0.18]
    gap = [t * 1.3 + 0.05 for t in train]  # always above, never rising
    assert feed(epochs_of(train, val_loss=gap), epochs=20) == []
    noisy = [1.0, 0.7, 0.5, 0.53, 0.49, 0.54, 0.52, 0.5, 0.56]  # +-10 % around its best
    assert feed(epochs_of(train, val_loss=noisy), epochs=20) == []
    # val rising while the training loss does not fall: no memorising
    val = [1.0, 0.7, 0.55, 0.5, 0.6, 0.6, 0.62, 0.65]
    assert "overfitting" not in by_id(feed(epochs_of([0.5] * 8, val_loss=val), epochs=20))
    # EarlyStopping(patience=4) stops at 4 epochs past the best: it needs 5
    train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05]
    val = [1.0, 0.7, 0.55, 0.5, 0.6, 0.6, 0.62, 0.65]
    assert feed(epochs_of(train[:8], val_loss=val), epochs=20, patience=4) == []


# ------------------------------------------------------------------ learning-rate-vanished


def test_a_rate_decayed_per_step_by_mistake_vanishes_with_epochs_to_run() -> None:
    # ExponentialDecay(decay_steps=1): 1000x down by epoch 4 of 20, loss still falling
    rates = [1e-4 * 0.1 ** e for e in range(20)]
    losses = [2.2, 2.1, 2.08, 2.05] + [2.05] * 16
    events = [replace_lr(e, rates[e.epoch - 1]) if isinstance(e, EpochEnded) else e
              for e in epochs_of(losses)]
    found = by_id(feed(events, epochs=20))
    v = found["learning-rate-vanished"]
    assert (v.evidence["epoch"], v.evidence["step"], v.evidence["epochs_left"]) == (5, 250, 15)
    assert v.evidence["first_learning_rate"] == 1e-4 and v.subject == "optimizer"
    assert v.severity == "warning"
    # and the stall it causes, later
    assert found["loss-plateau"].evidence["epoch"] > 5


def test_usual_schedules_do_not_vanish() -> None:
    losses = [2.0 * 0.8 ** e for e in range(20)]
    # step decay 0.1 -> 1e-4 (float32: exactly 1000x) for the last quarter
    steps = [float(np.float32(0.1 * 0.1 ** (e // 5))) for e in range(20)]
    # cosine to 0 at the very end
    cosine = [1e-3 * 0.5 * (1 + math.cos(math.pi * (e + 1) / 20)) for e in range(20)]
    for rates in (steps, cosine):
        events = [replace_lr(e, rates[e.epoch - 1]) if isinstance(e, EpochEnded) else e
                  for e in epochs_of(losses)]
        assert feed(events, epochs=20) == [], rates


# ------------------------------------------------------------------ a second fit, robustness


def test_a_second_fit_starts_its_own_references() -> None:
    # fine-tuning: fit 2 unfreezes 'dense', whose gradient goes from ~0 to 1
    first = run(4, layers=lambda s: {"dense": {"grad_norm": 1e-4}, "dense_1": {"grad_norm": 0.01},
                                     "out": {"grad_norm": 0.01}}, loss=lambda s: 0.5)
    second = run(4, layers=lambda s: {}, loss=lambda s: 0.45, fit=2, first_step=200)
    assert feed(first + second, epochs=4) == []


def test_a_second_fit_is_seen_even_before_its_first_progress() -> None:
    checks = TrainingChecks(epochs=4, batches=None)
    feed(epochs_of([1.0, 0.5, 0.4, 0.35]), checks)
    # fit 2's first watched step (epoch 1 again) comes before its TrainProgress
    feed(watched(201, 1, 0.6), checks)
    assert checks.facts.fit == 2 and checks.facts.epoch_ends == []


def test_a_broken_check_is_reported_once_and_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    def broken(facts: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setitem(REGISTRY, "overfitting", replace(REGISTRY["overfitting"], fn=broken))
    told: list[str] = []
    checks = TrainingChecks(epochs=12, batches=None,
                            on_error=lambda entry, exc: told.append(f"{entry.id}: {exc}"))
    assert feed(_healthy(), checks) == []
    assert told == ["overfitting: boom"]
    with pytest.raises(RuntimeError):
        feed(_healthy(), TrainingChecks(epochs=12, batches=None))
