"""The UI while the user's own training runs (the watch's events): the status
line's epoch, step, rate and ETA; the loss chart over the whole training with
the probe kept apart; a layer's lines over the whole training. Scripted events
and the recorded runs of tests/data (one watched, one from before the watch);
no TensorFlow."""

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
    RunFinished,
    RunStarted,
    StepStats,
    TrainProgress,
)
from gradscope.report import LOSS_OVERVIEW
from gradscope.ui import QueueSource, ReplaySource
from gradscope.ui import format as fmt
from gradscope.ui.app import GradscopeApp
from gradscope.ui.screens.layer import LayerScreen
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.ui.widgets.loss_chart import LossChart
from tests.test_ui import pilot_test, screen_text, settle

DATA = Path(__file__).parent / "data"
SIZES = [(80, 24), (120, 40)]
NAN = float("nan")


def recorded(name: str) -> list[Event]:
    return read_events(str(DATA / f"{name}.jsonl"))


def status_line(app: GradscopeApp) -> str:
    return screen_text(app).splitlines()[-2].strip()


def start(layers: int = 1) -> list[Event]:
    infos = tuple(LayerInfo(f"dense_{i}", "Dense", 10, True) for i in range(layers))
    return [RunStarted("train.py", ("train.py",), "0.1.0", 0.0),
            ModelDescribed("m", "Sequential", 10 * layers, 10 * layers, "CPU", "clone", infos),
            PhaseChanged("probe", total=5),
            *(StepStats("probe", i, 2.3 - 0.01 * i, seconds=0.01) for i in range(1, 6))]


def progress(step: int, rate: float, *, epochs: int | None = 10, batches: int | None = 100,
             fit: int = 1, first: int = 0) -> TrainProgress:
    """Global step `step` of a fit that began after step `first`, at `rate` steps/s."""
    within = step - first
    per_epoch = batches or 10**9
    return TrainProgress(step=step, epoch=(within - 1) // per_epoch + 1, epochs=epochs,
                         batch=(within - 1) % per_epoch + 1, batches=batches,
                         seconds=0.8 + within / rate, fit=fit)


def training(steps: int, *, every: int = 10, batches: int = 100, grad=lambda step: 0.5,
             loss=lambda step: 2.0 / math.sqrt(step)) -> list[Event]:
    """A watched training of a one-layer model: a watched step every `every`
    steps (and the first), progress every 10, an epoch every `batches` steps."""
    epochs = steps // batches
    events: list[Event] = [PhaseChanged("train", total=epochs)]
    for step in range(1, steps + 1):
        epoch = (step - 1) // batches + 1
        if step % every == 0 or step == 1:
            events.append(StepStats("train", step, loss(step), extra={"epoch": float(epoch)}))
            events.append(LayerStats("train", step, (LayerRow(
                "dense_0", "Dense", 10, True, grad_norm=grad(step), weight_norm=1.0,
                update_ratio=1e-3, act_mean=0.1, act_std=0.2, act_dead_frac=0.0),)))
        if step % 10 == 0:
            events.append(progress(step, 250, epochs=epochs, batches=batches))
        if step % batches == 0:
            events.append(EpochEnded(epoch, step, {"loss": loss(step), "val_loss": 1.2 * loss(step)},
                                     seconds=step / 250))
            events.append(PhaseChanged("train", step=epoch, total=epochs))
    return events


# --- the status line ------------------------------------------------------------------------


@pilot_test
async def test_the_status_line_follows_the_training_epoch_step_rate_and_eta():
    source = QueueSource()
    app = GradscopeApp(source)
    seen: list[str] = []
    batches: list[list[Event]] = [
        start() + [PhaseChanged("train", total=10)],
        # epoch 3 of 10, 40 of 100 steps done, 26 steps/s: 760 steps to go
        [progress(step, 26) for step in range(200, 241, 10)],
        [progress(step, 26) for step in range(250, 301, 10)],
        [RunFinished("ok", 0)],
    ]
    async with app.run_test(size=(80, 24)) as pilot:
        for events in batches:
            source.put_many(events)
            await settle(pilot, 0.15)
            seen.append(status_line(app))

    assert seen[0] == "training: starting, 10 epochs"
    assert seen[1] == "training: epoch 3/10 · step 40/100 · 26 steps/s · ETA 29 s"
    assert seen[2] == "training: epoch 3/10 · step 100/100 · 26 steps/s · ETA 27 s"
    # (the watch's checks looked at the training too: its steps are counted)
    assert seen[3] == "finished · no problems found in 5 probe steps and 300 training steps · exit 0"


@pilot_test
async def test_an_unsized_dataset_s_first_epoch_counts_its_steps_without_an_eta():
    events = start() + [PhaseChanged("train", total=10),
                        *(progress(step, 250, batches=None) for step in range(10, 41, 10))]
    source = QueueSource()
    source.put_many(events)
    app = GradscopeApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.15)
        assert status_line(app) == "training: epoch 1/10 · step 40 · 250 steps/s · ETA –"


@pilot_test
async def test_a_second_fit_says_so_and_times_itself_afresh():
    first = [progress(step, 1000, epochs=2) for step in range(10, 201, 10)]
    source = QueueSource()
    source.put_many(start() + [PhaseChanged("train", total=2), *first,
                               PhaseChanged("train", "fit 2", total=5)])
    app = GradscopeApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.15)
        # nothing of the first fit's figures
        assert status_line(app) == "training (fit 2): starting, 5 epochs"
        source.put_many([progress(step, 50, epochs=5, fit=2, first=200)
                         for step in range(210, 260, 10)])
        await settle(pilot, 0.15)
        assert status_line(app) == (
            "training (fit 2): epoch 1/5 · step 50/100 · 50 steps/s · ETA 9 s")


@pilot_test
async def test_a_recording_from_before_the_watch_still_counts_epochs():
    events = recorded("healthy-training")
    cut = [i for i, e in enumerate(events) if isinstance(e, StepStats) and e.phase == "train"][2]
    app = GradscopeApp(ReplaySource(events[: cut + 1]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert status_line(app) == "the recording ends here · training: epoch 3/15 · 3 notes (v)"
        # its training rows are epochs: the table says so
        assert "log upd: epoch 2" in app.screen.query_one(LayerTable).border_title


@pilot_test
async def test_a_watched_recording_names_global_steps_never_epochs():
    events = recorded("watched-training")
    cut = next(i for i, e in enumerate(events)
               if isinstance(e, TrainProgress) and e.epoch == 7 and e.batch == 25)
    app = GradscopeApp(ReplaySource(events[: cut + 1]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        status = status_line(app)
        assert status.startswith("the recording ends here · training: epoch 7/15 · step 25/45 · ")
        assert "steps/s · ETA " in status
        title = app.screen.query_one(LayerTable).border_title
        assert "figures: step " in title and "epoch" not in title


def test_durations_read_at_a_glance():
    assert [fmt.duration(s) for s in (None, NAN, 0.2, 29.2, 59.6, 245, 3599, 7620)] == [
        "–", "–", "0 s", "29 s", "1 min 00 s", "4 min 05 s", "59 min 59 s", "2 h 07 min"]


# --- the loss chart -------------------------------------------------------------------------


def chart_lines(app: GradscopeApp) -> list[str]:
    """The loss chart's rows (plot and axis) as they are on screen."""
    chart = app.screen.query_one(LossChart)
    region = chart.content_region
    screen = screen_text(app).splitlines()
    return [screen[y][region.x:region.x + region.width] for y in range(region.y, region.bottom)]


@pytest.mark.parametrize("size", SIZES)
@pilot_test
async def test_the_loss_chart_s_key_names_probe_training_epochs_and_validation(size):
    app = GradscopeApp(ReplaySource(recorded("watched-training")))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        lines = chart_lines(app)
        key = lines[-1]
        for entry in ("+ probe", "▇ train", "× epoch", "• val"):
            assert entry in key
        plot = lines[:-1]
        # the probe's own panel at the left, apart from the training's steps
        separator = {line.index("┊") for line in plot}
        assert len(separator) == 1
        column = separator.pop()
        assert all("+" not in line[column:] for line in plot)
        assert any("+" in line[:column] for line in plot)
        assert any("█" in line[column:] for line in plot)
        title = app.screen.query_one(LossChart).border_title
        assert "(5 probe steps, 675 steps, 15 epochs)" in title
        assert title.startswith("Loss 2.455 → 0.0664, min 0.0664, val 0.3262")


@pilot_test
async def test_a_recording_from_before_the_watch_keeps_its_epoch_chart():
    app = GradscopeApp(ReplaySource(recorded("healthy-training")))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        lines = chart_lines(app)
        assert "probe 1" in lines[-1] and "epoch 1" in lines[-1]
        assert not any("┊" in line for line in lines)
        assert app.screen.query_one(LossChart).border_title.endswith("(5 steps, 15 epochs)")


@pilot_test
async def test_a_100000_step_training_draws_from_its_first_step_at_a_bounded_cost():
    events = start() + training(100_000, every=100, batches=1000)
    app = GradscopeApp(ReplaySource(events))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one(LossChart)
        # what the chart draws from is bounded whatever the training's length
        assert len(chart.points) <= 3 * (LOSS_OVERVIEW + 2) + 5
        assert "100000 steps, 100 epochs" in chart.border_title
        lines = chart_lines(app)
        assert "step 1" in lines[-1]
        # the start of the training (its highest loss) is on the chart's left
        plot = lines[:-1]
        column = plot[0].index("┊")
        top = next(row for row, line in enumerate(plot) if line[column + 1:].strip())
        assert plot[top][column + 1] != " "


# --- a layer over the whole training --------------------------------------------------------


def series_line(app: GradscopeApp, label: str) -> str:
    return next(line for line in screen_text(app).splitlines() if line.startswith(label))


@pytest.mark.parametrize("size", SIZES)
@pilot_test
async def test_the_drill_down_shows_a_layer_over_the_whole_training(size):
    # Its gradient was large for the first 300 steps, small after: by step 1500
    # the kept history (the latest 1000 samples) holds only the small ones.
    events = start() + training(1500, every=1, grad=lambda step: 10.0 if step <= 300 else 1e-3)
    app = GradscopeApp(ReplaySource(events))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LayerScreen)
        text = screen_text(app)
        assert "steps 1–1500, " in text
        assert "(the latest 1000 of 1500 samples)" in text
        line = series_line(app, "grad norm")
        spark = line[13:].split()[0]
        # the large start on the left, the small rest after it
        assert spark[0] == "█" and spark[-1] == "▁"
        high = sum(1 for char in spark if char == "█")
        assert 0.1 < high / len(spark) < 0.35
        assert line.split()[-2:] == ["0.001", "10"]  # min and max over the whole run


@pilot_test
async def test_a_nan_in_one_watched_step_stays_on_the_whole_run_line():
    events = start() + training(4000, every=1, grad=lambda step: NAN if step == 123 else 0.5)
    app = GradscopeApp(ReplaySource(events))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "!" in series_line(app, "grad norm")


@pilot_test
async def test_an_old_recording_s_drill_down_spans_probe_and_epochs():
    app = GradscopeApp(ReplaySource(recorded("healthy-training")))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(app)
        assert "probe step 1 → epoch 15, 20 samples" in text
        # the probe's gradient norms, then its epochs (which measured weights only)
        assert len(series_line(app, "weight norm")[13:].split()[0]) == 20
