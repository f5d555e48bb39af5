"""The Report's views of the user's own training (no TensorFlow, no UI): its
rate and ETA from TrainProgress, the epoch it is in, whether a recording
predates the watch, the whole run's losses and each layer's figures kept at a
bounded cost for a training of any length (`Thinned`)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gradscope.commands.view import read_events
from gradscope.events import (
    EpochEnded,
    Event,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    PhaseChanged,
    StepStats,
    TrainProgress,
)
from gradscope.report import (
    HISTORY_BUDGET,
    LOSS_OVERVIEW,
    OVERVIEW_MAX,
    OVERVIEW_MIN,
    LossPoint,
    Report,
    Thinned,
    history_length,
    overview_length,
)

DATA = Path(__file__).parent.parent / "data"
NAN = float("nan")


def progress(step: int, seconds: float, *, epochs: int | None = 10, batches: int | None = 100,
             fit: int = 1) -> TrainProgress:
    """Where a fit of `epochs` epochs of `batches` steps is at global step `step`."""
    per_epoch = batches or 100
    epoch = (step - 1) // per_epoch + 1
    return TrainProgress(step=step, epoch=epoch, epochs=epochs, batch=(step - 1) % per_epoch + 1,
                         batches=batches, seconds=seconds, fit=fit)


def model(layers: int = 1) -> ModelDescribed:
    infos = tuple(LayerInfo(f"dense_{i}", "Dense", 10, True) for i in range(layers))
    return ModelDescribed("m", "Sequential", 10 * layers, 10 * layers, "CPU", "clone", infos)


def row(grad: float, name: str = "dense_0") -> LayerRow:
    return LayerRow(name, "Dense", 10, True, grad_norm=grad, weight_norm=1.0, update_ratio=1e-3,
                    act_mean=0.1, act_std=0.2, act_dead_frac=0.0)


def watched(step: int, loss: float, grad: float, epoch: int = 1) -> list[Event]:
    return [StepStats("train", step, loss, extra={"epoch": float(epoch)}),
            LayerStats("train", step, (row(grad),))]


# --- Thinned: bounded, even, from the first item to the latest, NaN kept -------------------


@pytest.mark.parametrize("count", [1, 7, 8, 9, 100, 1000, 100_000])
def test_thinned_keeps_at_most_its_capacity_from_the_first_item_to_the_latest(count):
    series: Thinned[int] = Thinned(8)
    for item in range(count):
        series.add(item)
    items = series.items()
    assert len(items) <= 8 + 2
    assert items[0] == 0 and items[-1] == count - 1
    assert items == sorted(set(items))  # oldest first, each once
    assert series.total == count


def test_thinned_keeps_every_stride_th_item_stride_a_power_of_two():
    series: Thinned[int] = Thinned(8)
    for item in range(100):
        series.add(item)
    # 100 items in buckets of 16: the first of each full one, then the latest.
    assert series.stride == 16
    assert series.items() == [0, 16, 32, 48, 64, 80, 96, 99]
    # Evenly spaced (but for the latest): a line over them is the series' shape.
    assert {b - a for a, b in zip(series.kept, series.kept[1:], strict=False)} == {16}


def test_thinned_never_grows_for_any_length():
    series: Thinned[int] = Thinned(256)
    sizes = set()
    for item in range(200_000):
        series.add(item)
        if item % 997 == 0:
            sizes.add(len(series))
    assert max(sizes) <= 258 and min(s for s in sizes if s > 1) >= 128 // 2


def test_a_single_bad_item_survives_any_thinning():
    # A NaN at one step of 100,000 is the news: it is kept whatever the stride.
    series: Thinned[int] = Thinned(16)
    for item in range(100_000):
        series.add(item, bad=item == 31_337)
    assert 31_337 in series.items()
    assert series.stride >= 4096


def test_a_bad_item_in_the_bucket_still_filling_shows():
    series: Thinned[int] = Thinned(4)
    for item in range(20):
        series.add(item, bad=item == 17)
    assert 17 in series.items() and series.items()[-1] == 19


# --- the training's rate and ETA ------------------------------------------------------------


def test_rate_is_the_median_pace_so_one_slow_stretch_does_not_move_it():
    # 250 steps/s, progress every 10 steps; one stretch of 10 steps took 2 s (a
    # validation pass, a checkpoint): the rate stays 250.
    events: list[Event] = []
    seconds = 1.5  # the first event's time holds the compilation: never a pace
    for step in range(10, 250, 10):
        events.append(progress(step, seconds))
        seconds += 2.0 if step == 120 else 10 / 250
    report = Report.from_events(events)
    assert report.training_rate() == pytest.approx(250)


def test_no_rate_until_enough_paces_then_it_needs_no_wall_clock():
    report = Report()
    assert report.training_rate() is None and report.training_eta() is None
    report.apply(progress(1, 0.75))  # compilation
    report.apply(progress(2, 0.97))  # the plain step's compilation
    report.apply(progress(3, 0.972))
    assert report.training_rate() is None  # two paces: one of them a compilation
    report.apply(progress(4, 0.974))
    report.apply(progress(5, 0.976))
    assert report.training_rate() == pytest.approx(500)


def test_remaining_steps_and_eta_count_epochs_left_and_the_rest_of_this_one():
    # Epoch 3 of 10, 40 of 100 steps done: 7 epochs and 60 steps to go.
    events = [progress(step, step / 26) for step in range(200, 241, 10)]
    report = Report.from_events(events)
    assert (report.progress.epoch, report.progress.batch) == (3, 40)
    assert report.training_remaining() == 7 * 100 + 60
    assert report.training_rate() == pytest.approx(26)
    assert report.training_eta() == pytest.approx(760 / 26)


def test_no_eta_while_the_epochs_length_is_unknown_or_there_are_no_epochs():
    unsized = Report.from_events([progress(step, step / 100, batches=None)
                                  for step in range(10, 60, 10)])
    assert unsized.training_rate() == pytest.approx(100)
    assert unsized.training_remaining() is None and unsized.training_eta() is None
    on_batch = Report.from_events([progress(step, step / 100, epochs=None)
                                   for step in range(10, 60, 10)])
    assert on_batch.training_eta() is None


def test_a_second_fit_measures_its_own_pace():
    # The second fit's seconds start again from 0: never a negative pace, and
    # none of the first fit's pace.
    first = [progress(step, step / 1000) for step in range(10, 110, 10)]
    second = [progress(step, (step - 100) / 50, fit=2) for step in range(110, 130, 5)]
    report = Report.from_events(first + second[:2])
    assert report.training_rate() is None
    report.apply_all(second[2:])
    assert report.training_rate() == pytest.approx(50)


# --- which epoch, and recordings from before the watch -----------------------------------


def test_a_recording_from_before_the_watch_counts_its_training_in_epochs():
    old = Report.from_events(read_events(str(DATA / "healthy-training.jsonl")))
    assert old.legacy_training()
    assert old.training_epoch() == 15  # its train StepStats' step is the epoch
    assert old.training_eta() is None
    watched_run = Report.from_events(read_events(str(DATA / "watched-training.jsonl")))
    assert not watched_run.legacy_training()
    assert watched_run.training_epoch() == 15
    probe_only = Report.from_events(read_events(str(DATA / "vanishing-gradient.jsonl")))
    assert not probe_only.legacy_training() and probe_only.training_epoch() is None


def test_the_epoch_comes_from_progress_else_the_watched_steps_else_the_phase():
    report = Report.from_events([PhaseChanged("train", total=10)])
    assert report.training_epoch() is None
    report.apply_all(watched(1, 2.3, 1.0, epoch=1))
    assert report.training_epoch() == 1 and not report.legacy_training()
    report.apply(progress(150, 1.0))
    assert report.training_epoch() == 2


def test_a_recorded_watched_training_has_its_rate_and_ends_with_nothing_left():
    report = Report.from_events(read_events(str(DATA / "watched-training.jsonl")))
    assert report.progress is not None and report.progress.step == 675
    assert report.training_remaining() == 0
    assert report.training_rate() is not None and report.training_rate() > 0
    assert len(report.epochs) == 15


# --- the whole run's losses, bounded --------------------------------------------------------


def long_training(steps: int, every: int = 1, batches: int = 100) -> list[Event]:
    events: list[Event] = [StepStats("probe", i, 2.3) for i in range(1, 6)]
    for step in range(1, steps + 1):
        epoch = (step - 1) // batches + 1
        if step % every == 0 or step == 1:
            events.append(StepStats("train", step, 2.0 / math.sqrt(step),
                                    extra={"epoch": float(epoch)}))
        if step % batches == 0:
            events.append(EpochEnded(epoch, step, {"loss": 2.0 / math.sqrt(step),
                                                   "val_loss": 2.5 / math.sqrt(step)}))
    return events


def test_the_loss_overview_of_100000_steps_is_bounded_and_spans_the_whole_training():
    report = Report.from_events(long_training(100_000))
    points = report.loss_overview()
    assert len(points) <= 3 * (LOSS_OVERVIEW + 2) + 5
    # the probe first, then the training from its first step to its last
    assert [p.phase for p in points[:5]] == ["probe"] * 5
    training = points[5:]
    assert training[0] == LossPoint("train", 1, 2.0)
    assert max(p.step for p in training) == 100_000
    assert [p.step for p in training] == sorted(p.step for p in training)
    assert {p.phase for p in training} == {"train", "epoch", "validation"}
    # the bounded deque alone would have lost the start
    assert min(p.step for p in report.losses) > 90_000
    assert report.loss_count() == 5 + 100_000 + 2 * 1000


def test_a_non_finite_loss_is_kept_in_the_overview():
    events = long_training(50_000, every=10)
    events.insert(2000, StepStats("train", 12_345, NAN, extra={"epoch": 124.0}))
    points = Report.from_events(events).loss_overview()
    assert any(p.step == 12_345 and math.isnan(p.loss) for p in points)


def test_a_short_run_s_overview_is_every_point():
    report = Report.from_events(read_events(str(DATA / "healthy-training.jsonl")))
    assert report.loss_overview() == sorted(report.losses,
                                            key=lambda p: (p.phase != "probe", p.step))


# --- each layer over the whole run ----------------------------------------------------------


def test_a_layer_keeps_the_whole_run_thinned_once_its_history_is_full():
    report = Report.from_events([model(), *(e for step in range(1, 3001)
                                            for e in watched(step, 1.0, 1.0 / step))])
    track = report.layers["dense_0"]
    assert len(track.history) == 1000 and track.samples == 3000
    whole = track.whole("grad_norm")
    steps = track.whole_steps()
    assert len(whole) == len(steps) <= OVERVIEW_MAX + 2
    assert steps[0] == ("train", 1) and steps[-1] == ("train", 3000)
    assert whole[0] == 1.0 and whole[-1] == pytest.approx(1 / 3000)
    # the history alone starts at step 2001
    assert track.history[0][1] == 2001


def test_while_the_history_holds_every_sample_the_whole_run_is_the_history():
    report = Report.from_events([model(), *(e for step in range(1, 101)
                                            for e in watched(step, 1.0, 1.0 / step))])
    track = report.layers["dense_0"]
    assert track.whole("grad_norm") == track.series("grad_norm")
    assert len(track.whole_steps()) == 100


def test_a_layer_s_nan_is_kept_in_its_whole_run():
    events: list[Event] = [model()]
    for step in range(1, 5001):
        events += watched(step, 1.0, NAN if step == 777 else 0.5)
    track = Report.from_events(events).layers["dense_0"]
    assert any(math.isnan(v) for v in track.whole("grad_norm") if v is not None)


def test_the_whole_run_budget_shrinks_with_the_model_and_stays_bounded():
    assert overview_length(1) == OVERVIEW_MAX
    assert overview_length(10_000) == OVERVIEW_MIN
    for layers in (1, 10, 100, 1000):
        # a quarter of the history's budget, or at most OVERVIEW_MIN per layer
        assert overview_length(layers) * layers <= max(HISTORY_BUDGET // 4, OVERVIEW_MIN * layers)
        assert overview_length(layers) <= history_length(layers) or layers > 1000
    report = Report.from_events([model(1000)])
    assert report.layers["dense_0"].overview.capacity == overview_length(1000)
