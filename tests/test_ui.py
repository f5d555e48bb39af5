"""The Textual UI as a user meets it: scripted events in, keys pressed, the screen read.

No TensorFlow anywhere: every run here is built from the event dataclasses.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Footer

from gradscope.commands.view import read_events
from gradscope.events import (
    Event,
    Histogram,
    LayerHistogram,
    LayerHistograms,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    Note,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepStats,
    VerdictIssued,
    to_json,
)
from gradscope.sinks.layer_csv import COLUMNS
from gradscope.ui import QueueSource, ReplaySource
from gradscope.ui.app import GradscopeApp
from gradscope.ui.screens.help import HelpScreen
from gradscope.ui.screens.layer import LayerScreen
from gradscope.ui.screens.overview import OverviewScreen
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.ui.widgets.verdicts import VerdictItem, VerdictPanel
from gradscope.verdicts import Verdict

SMALL = (80, 24)


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs an async pilot test in its own event loop (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run

# --- a scripted run -------------------------------------------------------------

LAYERS = (
    LayerInfo("dense_in", "Dense", 50240, True, activation="relu", output_shape="(None, 64)"),
    LayerInfo("dropout", "Dropout", 0, True),
    LayerInfo("hidden", "Dense", 4160, True, activation="relu",
              config={"units": "64", "kernel initializer": "Zeros()", "trainable": "yes"}),
    LayerInfo("frozen_head", "Dense", 650, False, activation="softmax"),
)

DEAD_RELU = Verdict("dead-relu", "error", "hidden",
                    "100% of the ReLU units in 'hidden' output 0: the whole layer is dead.",
                    "Use He initialisation: Dense(n, kernel_initializer='he_normal')",
                    evidence={"dead_fraction": 1.0})
FROZEN = Verdict("frozen-layers", "warning", "model", "1 layer is frozen: frozen_head.",
                 "Set layer.trainable = True before compile().",
                 evidence={"frozen_layers": ["frozen_head"]})
LOSS_FLAT = Verdict("loss-flat", "warning", "model", "the loss did not move in 5 steps.",
                    "See the cause reported with this verdict.", kind="symptom")
ADVICE = Verdict("lr-schedule", "info", "optimizer", "a schedule could help.", "")


def rows(step: int, grad_in: float = 0.5) -> tuple[LayerRow, ...]:
    return (
        LayerRow("dense_in", "Dense", 50240, True, grad_norm=grad_in * step, weight_norm=8.0,
                 update_ratio=1e-3, act_mean=0.3, act_std=0.5, act_dead_frac=0.1),
        LayerRow("hidden", "Dense", 4160, True, grad_norm=0.0, weight_norm=4.0,
                 update_ratio=0.0, act_mean=0.0, act_std=0.0, act_dead_frac=1.0),
        LayerRow("frozen_head", "Dense", 650, False, grad_norm=None, weight_norm=2.0,
                 update_ratio=None, act_mean=0.1, act_std=0.01, act_saturated_frac=0.0),
    )


def step_events(step: int, phase: str = "probe", grad_in: float = 0.5) -> list[Event]:
    return [
        StepStats(phase, step, loss=2.30 - 0.01 * step, seconds=0.01),
        LayerStats(phase, step, rows(step, grad_in)),
    ]


def histograms(step: int) -> LayerHistograms:
    """`hidden` has zero weights: no gradient reaches it and every unit outputs 0."""
    bell = (1, 3, 8, 12, 8, 3, 1, 0)
    return LayerHistograms("probe", step, (
        LayerHistogram("dense_in", Histogram(-0.3, 0.3, bell, total=36), Histogram(
            -0.01 * step, 0.01 * step, bell, total=36), Histogram(0.0, 2.5, bell, total=36)),
        LayerHistogram("dropout", None, None, Histogram(0.0, 2.5, bell, total=36)),
        LayerHistogram("hidden", Histogram(0.0, 0.0, (0, 0, 0, 0, 36, 0, 0, 0), total=36),
                       Histogram(0.0, 0.0, (0, 0, 0, 0, 36, 0, 0, 0), total=36),
                       Histogram(0.0, 0.0, (36, 0, 0, 0, 0, 0, 0, 0), nonfinite=step,
                                 total=36)),
    ))


def run_start() -> list[Event]:
    return [
        RunStarted("train.py", ("train.py",), "0.1.0", 0.0),
        PhaseChanged("static"),
        ModelDescribed("mnist_mlp", "Sequential", 55050, 54400, "CPU", "clone", LAYERS),
        PhaseChanged("probe"),
    ]


def scripted_run() -> list[Event]:
    """A finished probe-only run: 5 steps, verdicts arriving symptom first."""
    events = run_start() + [histograms(0)]
    for step in range(1, 6):
        events += step_events(step)
    events += [
        histograms(5),
        PhaseChanged("experiments"),
        Note("info", "overfit 32 samples for 150 steps: loss 2.303 -> 2.301"),
        VerdictIssued(LOSS_FLAT),
        VerdictIssued(ADVICE),
        VerdictIssued(FROZEN),
        VerdictIssued(DEAD_RELU),
        PhaseChanged("done"),
        RunFinished("probe-only", 1),
    ]
    return events


def replay_app(events: list[Event] | None = None) -> GradscopeApp:
    return GradscopeApp(ReplaySource(scripted_run() if events is None else events))


def screen_text(app: GradscopeApp) -> str:
    """The terminal as the user sees it, as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      color_system=None, force_terminal=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True))
    return console.export_text()


def footer_text(app: GradscopeApp) -> str:
    """The footer: the screen's last line."""
    return screen_text(app).splitlines()[-1]


def table(app: GradscopeApp) -> LayerTable:
    return app.screen.query_one(LayerTable)


# How many times settle() pauses at most while the app catches up: a count of
# pauses, not seconds, so a slow or loaded machine only makes it take longer.
# (Idle, the app has caught up after one or two.)
SETTLE_PAUSES = 200


def caught_up(app: GradscopeApp) -> bool:
    """The app has taken in everything its source holds, and the screen shows
    its footer's keys: the footer is filled in asynchronously (Textual recomposes
    it after a refresh), one pause may not be enough on a loaded machine."""
    pending = getattr(app.source, "pending", None)
    if pending is not None and pending():
        return False  # not drained yet: the drain timer has not ticked
    if app._folding or app._backlog.pending():
        return False  # a large drain still being folded in slices
    footers = list(app.screen.query(Footer))
    return all(footer.children for footer in footers) and (
        not footers or bool(screen_text(app).splitlines()[-1].strip()))


async def settle(pilot, seconds: float = 0.0, until: Callable[[], bool] | None = None) -> None:
    """Let the app catch up before the test reads the screen: past `seconds`
    when asked (a drain tick is 0.1 s), then pause until the screen is idle,
    the app has caught up (above) and `until()` holds, if given; at most
    SETTLE_PAUSES pauses. It never fails itself: the test's asserts say what
    is not there."""
    if seconds:
        await pilot.pause(seconds)
    await pilot.pause()
    for _ in range(SETTLE_PAUSES):
        if caught_up(pilot.app) and (until is None or until()):
            break
        await pilot.pause()
    else:
        return
    await pilot.pause()  # what was just taken in is drawn


# --- the overview -----------------------------------------------------------------


@pilot_test
async def test_the_headline_is_the_most_likely_cause_and_verdicts_are_ranked():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        items = list(app.screen.query(VerdictItem))

        # causes (error, then warning) before the symptom, the info note last
        assert [item.verdict.check for item in items] == [
            "dead-relu", "frozen-layers", "loss-flat", "lr-schedule"]
        assert items[0].has_class("-headline") and items[0].has_class("-error")
        assert [item.has_class("-warning") for item in items] == [False, True, True, False]
        assert items[3].has_class("-info")
        text = screen_text(app)
        assert "error dead-relu · hidden  (most likely cause)" in text
        assert "fix: Use He initialisation" in text


@pilot_test
async def test_header_table_loss_and_status_show_the_run():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        text = screen_text(app)

        assert "train.py · mnist_mlp (Sequential) · 55,050 params, 54,400 trainable · CPU" in text
        assert "steps/s" not in text  # the rate shows only while probe steps run
        assert table(app).visible_names() == ["dense_in", "dropout", "hidden", "frozen_head"]
        # a layer a verdict names is marked with the verdict's severity
        assert table(app).flags == {"hidden": "error", "frozen_head": "warning"}
        lines = text.splitlines()
        hidden = next(line for line in lines if " hidden " in line and "Dense" in line)
        assert hidden.startswith("● hidden") and "-∞" in hidden and "100%" in hidden
        frozen = next(line for line in lines if "frozen_head" in line and "Dense" in line)
        assert frozen.startswith("▲ frozen_head") and "✗" in frozen
        dropout = next(line for line in lines if "dropout" in line and "Dropout" in line)
        # never measured: nothing applies, not even trainable (it has no weights)
        assert dropout.count("–") == 5
        assert "Loss 2.29 → 2.25, min 2.25 (5 steps)" in text
        assert "finished · 1 error verdict, 2 warnings · exit 1 · 1 note (v)" in text


@pilot_test
async def test_the_footer_lists_every_key_with_a_description_at_80x24():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        footer = footer_text(app)

        for words in ("⏎ Open", "s Sort", "/ Filter", "e Export", "v Verdicts",
                      "q Quit", "? Help", "l Log"):
            assert words in footer
        assert "Pause" not in footer  # a recording: nothing to pause


@pilot_test
async def test_s_cycles_the_sort_order():
    # given a run where dense_in's gradient is the largest and frozen_head has none
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        orders = []
        for _ in range(4):
            await pilot.press("s")
            orders.append((table(app).sort, table(app).visible_names()))

        # the figures first, largest first; a layer a figure does not apply to last
        assert orders == [
            ("grad_norm", ["dense_in", "hidden", "dropout", "frozen_head"]),
            ("update_ratio", ["dense_in", "hidden", "dropout", "frozen_head"]),
            ("dead", ["hidden", "dense_in", "dropout", "frozen_head"]),
            ("saturated", ["frozen_head", "dense_in", "dropout", "hidden"]),
        ]
        # then the other columns, and back to the forward order
        for _ in range(6):
            await pilot.press("s")
        assert table(app).sort == "forward"
        assert table(app).visible_names() == ["dense_in", "dropout", "hidden", "frozen_head"]


@pilot_test
async def test_slash_filters_layers_by_name_and_escape_clears_it():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("slash", "d", "e", "n")
        assert table(app).visible_names() == ["dense_in", "hidden"]

        # Enter keeps the filter and goes back to the table
        await pilot.press("enter")
        assert app.focused is table(app)
        assert table(app).visible_names() == ["dense_in", "hidden"]
        assert "matching 'den'" in str(table(app).border_title)
        await settle(pilot, until=lambda: "esc All layers" in footer_text(app))
        assert "esc All layers" in footer_text(app)

        # typing a key that is bound elsewhere (q quits) only types it in the filter
        await pilot.press("slash", "q")
        assert app.is_running and table(app).visible_names() == []

        await pilot.press("escape")
        assert table(app).visible_names() == ["dense_in", "dropout", "hidden", "frozen_head"]
        assert app.focused is table(app)

        # what the user types is text, never markup
        await pilot.press("slash", "left_square_bracket", "b", "right_square_bracket")
        assert "matching '[b]'" in screen_text(app)


@pilot_test
async def test_a_big_model_scrolls_with_the_cursor():
    # given a model with more layers than the terminal has lines
    names = [f"layer_{i:03d}" for i in range(300)]
    model = ModelDescribed("big", "Functional", 300, 300, "CPU", "clone",
                           tuple(LayerInfo(n, "Dense", 1, True) for n in names))
    app = replay_app([model, LayerStats("probe", 1, tuple(
        LayerRow(n, "Dense", 1, True, grad_norm=float(i)) for i, n in enumerate(names)))])
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("end")
        assert table(app).cursor_layer == "layer_299"
        assert "layer_299" in screen_text(app) and "layer_000" not in screen_text(app)

        await pilot.press("home", "pagedown")
        assert table(app).cursor_layer == f"layer_{table(app).size.height - 1:03d}"

        # a click picks a row (below the table's title and header), a double click opens it
        await pilot.press("home")
        await pilot.click(LayerTable, offset=(5, 3))
        assert table(app).cursor_layer == "layer_001"
        await pilot.click(LayerTable, offset=(5, 3), times=2)
        assert isinstance(app.screen, LayerScreen) and app.screen.track.name == "layer_001"


@pilot_test
async def test_enter_opens_the_layer_and_escape_comes_back():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")

        screen = app.screen
        assert isinstance(screen, LayerScreen) and screen.track.name == "hidden"
        text = screen_text(app)
        assert "hidden · Dense · 4,160 params · trainable · activation relu" in text
        assert [item.verdict.check for item in screen.query(VerdictItem)] == ["dead-relu"]
        assert "evidence: dead_fraction=1" in text
        assert "grad norm" in text and "Steps · h histograms · c config" in text
        steps = screen.query_one("#steps")
        assert steps.row_count == 5  # type: ignore[attr-defined]

        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
        assert table(app).cursor_layer == "hidden"


@pilot_test
async def test_h_shows_the_layers_histograms_first_and_latest_and_c_its_config():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot, until=lambda: "h Histograms" in footer_text(app))
        assert "h Histograms" in footer_text(app)

        await pilot.press("h")
        lines = screen_text(app).splitlines()
        weights = next(i for i, line in enumerate(lines) if line.startswith("weights"))
        # Weights, gradients and activations, each before the first step and after the last
        assert "probe 0" in lines[weights] and "all 0" in lines[weights]
        assert "probe 5" in lines[weights + 1]
        assert lines[weights + 2].startswith("gradients")
        assert lines[weights + 4].startswith("activations")
        assert "5 NaN/Inf" in lines[weights + 5]
        assert "█" in lines[weights + 4]  # every unit's output in one bin: the dead layer

        await pilot.press("c")
        text = screen_text(app)
        assert "kernel initializer  Zeros()" in text and "units" in text

        await pilot.press("t")
        assert app.screen.query_one("#steps").has_focus
        await pilot.press("escape")
        await pilot.press("up", "enter", "h")  # dropout: no weights, but an output
        text = screen_text(app)
        assert "no trainable weights" in text and "activations" in text


@pilot_test
async def test_the_layer_screen_names_verdicts_through_their_evidence():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("end", "enter")

        assert [v.verdict.check for v in app.screen.query(VerdictItem)] == ["frozen-layers"]
        assert "frozen (not trainable)" in screen_text(app)


@pilot_test
async def test_training_rows_keep_the_probes_gradient_and_activation_figures_on_show():
    # Given a run whose user fit goes on: epoch rows measure weights only
    train = [
        PhaseChanged("train"),
        LayerStats("train", 1, tuple(
            LayerRow(r.layer, r.layer_type, r.param_count, r.trainable, weight_norm=r.weight_norm,
                     update_ratio=r.update_ratio) for r in rows(5)
        )),
    ]
    app = replay_app(scripted_run()[:-2] + train)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        line = next(ln for ln in screen_text(app).splitlines() if " dense_in " in ln)
        # Then the table still shows the probe's gradient norm (5 x 0.5) and dead share
        assert " 2.5 " in line and "10%" in line
        await pilot.press("enter")
        grad = next(ln for ln in screen_text(app).splitlines() if ln.startswith("grad norm"))
        assert grad.split()[-3] == "2.5"  # latest measured, then min and max


@pilot_test
async def test_v_unfolds_every_verdict_with_evidence_and_notes():
    app = replay_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        assert "frozen_layers=['frozen_head']" not in screen_text(app)

        await pilot.press("v")
        text = screen_text(app)
        assert "evidence: frozen_layers=['frozen_head']" in text
        assert "note: overfit 32 samples" in text

        await pilot.press("v")
        assert app.screen.query_one(VerdictPanel).has_class("-folded")


@pilot_test
async def test_question_mark_shows_help_and_escape_closes_it():
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "sort layers: forward order, grad norm, update ratio, dead %" in screen_text(app)

        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
@pilot_test
async def test_q_or_ctrl_c_quits_at_once(key):
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press(key)
        assert not app.is_running


@pilot_test
async def test_e_exports_the_table_as_shown_with_the_csv_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = replay_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("s")  # sorted by grad norm
        await pilot.press("e")
        await settle(pilot)

        [export] = list(tmp_path.glob("gradscope-export-*.csv"))
        with export.open() as stream:
            table_rows = list(csv.reader(stream))
        # the --csv columns first, then the step each figure came from
        assert tuple(table_rows[0][:len(COLUMNS)]) == COLUMNS
        # every row in the order shown; the dropout layer was never measured
        assert [(r[0], r[1], r[2]) for r in table_rows[1:]] == [
            ("probe", "5", "dense_in"), ("probe", "5", "hidden"), ("", "", "dropout"),
            ("probe", "5", "frozen_head")]
        frozen = dict(zip(table_rows[0], table_rows[4], strict=True))
        assert frozen["trainable"] == "false" and frozen["grad_norm"] == ""
        dense_in = dict(zip(table_rows[0], table_rows[1], strict=True))
        assert dense_in["grad_norm"] == "2.5" and dense_in["grad_norm_from"] == "probe:5"
        assert any(str(export) in str(n.message) for n in app._notifications)

        # a second export in the same second gets its own file
        await pilot.press("e")
        assert len(list(tmp_path.glob("gradscope-export-*.csv"))) == 2


# --- live: a queue fed from another thread ---------------------------------------------


@pilot_test
async def test_events_from_a_producer_thread_show_up_live():
    source = QueueSource()
    app = GradscopeApp(source)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert "waiting for" in screen_text(app)

        def produce() -> None:
            for event in run_start():
                source.put(event)
            for step in range(1, 4):
                for event in step_events(step):
                    source.put(event)

        producer = threading.Thread(target=produce)
        producer.start()
        producer.join()
        await settle(pilot, 0.25)
        assert app.state.step == 3
        assert "probe step 3 · 100 steps/s" in screen_text(app)

        source.put(VerdictIssued(DEAD_RELU))
        source.put(RunFinished("ok", 0))
        await settle(pilot, 0.25)
        assert "finished · 1 error verdict · exit 0" in screen_text(app)
        assert [i.verdict.check for i in app.screen.query(VerdictItem)] == ["dead-relu"]


@pilot_test
async def test_events_from_a_child_process_show_up_live(tmp_path):
    # given a child that writes the event stream as JSON Lines on its stdout, as the
    # live runner's child will, and a reader thread that decodes it into the queue
    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in scripted_run()))
    child = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys, time\nfor line in open({str(recording)!r}):\n"
         "    sys.stdout.write(line); sys.stdout.flush(); time.sleep(0.005)"],
        stdout=subprocess.PIPE, text=True)
    source = QueueSource()

    def read() -> None:
        from gradscope.events import from_json

        assert child.stdout is not None
        for line in child.stdout:
            source.put(from_json(line))

    reader = threading.Thread(target=read, daemon=True)
    app = GradscopeApp(source)
    async with app.run_test(size=SMALL) as pilot:
        reader.start()
        while reader.is_alive():
            await pilot.pause(0.05)
        await settle(pilot, 0.15)

        assert child.wait(timeout=10) == 0
        assert "finished · 1 error verdict, 2 warnings · exit 1" in screen_text(app)
        assert app.state.layers["dense_in"].series("grad_norm") == [0.5, 1.0, 1.5, 2.0, 2.5]


def live_app(events: list[Event]) -> tuple[QueueSource, GradscopeApp]:
    """An app on a live channel that already holds `events`."""
    source = QueueSource()
    source.put_many(events)
    return source, GradscopeApp(source)


@pilot_test
async def test_a_live_run_that_has_ended_offers_no_pause():
    # Given a live run still going: p Pause is in the footer
    source, app = live_app(run_start() + step_events(1))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, 0.15)
        assert "p Pause" in footer_text(app)
        # When the run ends, there is nothing more to pause (the footer is redrawn
        # after the event is taken in)
        source.put(RunFinished("ok", 0))
        await settle(pilot, 0.15, until=lambda: "Pause" not in footer_text(app))
        assert "Pause" not in footer_text(app)
        await pilot.press("p")
        assert not app.paused


@pilot_test
async def test_p_freezes_the_view_while_events_keep_being_buffered():
    source, app = live_app(run_start() + step_events(1))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, 0.15)
        assert app.state.step == 1

        await pilot.press("p")
        for step in range(2, 5):
            for event in step_events(step):
                source.put(event)
        source.put(VerdictIssued(DEAD_RELU))
        await settle(pilot, 0.3)

        # frozen: nothing new is shown, the header and status say so
        assert app.state.step == 1 and not app.state.verdicts
        text = screen_text(app)
        assert "probe step 1" in text
        assert "PAUSED (7 events held, p resumes)" in text
        assert source.pending() == 0  # drained and held by the app: the producer never fills up

        await pilot.press("p")
        await settle(pilot)
        assert app.state.step == 4
        assert "probe step 4" in screen_text(app)
        assert [i.verdict.check for i in app.screen.query(VerdictItem)] == ["dead-relu"]


@pilot_test
async def test_the_drill_down_follows_new_steps():
    source, app = live_app(run_start() + step_events(1))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, 0.15)
        await pilot.press("enter")
        steps = app.screen.query_one("#steps")
        assert steps.row_count == 1  # type: ignore[attr-defined]

        for step in (2, 3):
            for event in step_events(step):
                source.put(event)
        await settle(pilot, 0.25)
        assert steps.row_count == 3  # type: ignore[attr-defined]
        assert "probe 3" in screen_text(app)


# --- replay ---------------------------------------------------------------------------------


@pilot_test
async def test_a_recording_replays_as_it_was_recorded(tmp_path):
    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in scripted_run()))

    app = GradscopeApp(ReplaySource(read_events(str(recording))))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert [i.verdict.check for i in app.screen.query(VerdictItem)] == [
            "dead-relu", "frozen-layers", "loss-flat", "lr-schedule"]
        assert app.state.layers["dense_in"].series("grad_norm") == [0.5, 1.0, 1.5, 2.0, 2.5]
        assert "finished · 1 error verdict, 2 warnings · exit 1" in screen_text(app)


def test_gradscope_view_opens_the_app_in_a_terminal(tmp_path, monkeypatch):
    from gradscope.cli import main

    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in scripted_run()))
    opened: list[list[Event]] = []

    def fake_run(self: GradscopeApp) -> None:
        opened.append(self.source.drain())

    monkeypatch.setattr(GradscopeApp, "run", fake_run)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    assert main(["view", str(recording)]) == 0
    assert opened == [scripted_run()]


def test_gradscope_view_text_keeps_the_plain_listing(tmp_path, monkeypatch, capsys):
    from gradscope.cli import main

    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in scripted_run()))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(GradscopeApp, "run", lambda self: pytest.fail("the app opened"))

    assert main(["view", "--text", str(recording)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "run of train.py (probe-only, exit 1)"
    assert lines[1].startswith("gradscope: ")
    assert any(line.startswith("  ERROR   dead-relu (hidden):") for line in lines)


def test_gradscope_view_of_a_missing_file_stays_one_line_and_exit_2(tmp_path, capsys):
    from gradscope.cli import main

    assert main(["view", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err == f"gradscope: cannot view '{tmp_path / 'nope.jsonl'}': no such file\n"


# --- no TensorFlow -----------------------------------------------------------------------


def test_the_ui_and_view_never_import_tensorflow_or_keras(tmp_path):
    recording = tmp_path / "run.jsonl"
    recording.write_text("".join(to_json(event) + "\n" for event in scripted_run()))
    program = f"""
import asyncio, sys
import gradscope.ui
assert "textual" not in sys.modules, "gradscope.ui alone must not load Textual"
from gradscope.cli import main
from gradscope.ui.app import GradscopeApp
from gradscope.ui import ReplaySource
from gradscope.commands.view import read_events

async def drive():
    app = GradscopeApp(ReplaySource(read_events({str(recording)!r})))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s", "enter", "escape", "question_mark", "escape", "q")

asyncio.run(drive())
assert main(["view", "--text", {str(recording)!r}]) == 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("LOADED", loaded)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


# --- the state and the sources, without a screen ------------------------------------------


def test_a_bigger_model_keeps_fewer_steps_per_layer():
    from gradscope.ui.state import RunState

    def kept(layers: int) -> int:
        state = RunState()
        names = [f"l{i}" for i in range(layers)]
        state.apply(ModelDescribed("m", "Functional", 0, 0, "CPU", "clone",
                                   tuple(LayerInfo(n, "Dense", 0, True) for n in names)))
        for step in range(1200):
            state.apply(LayerStats("train", step, (LayerRow(names[0], "Dense", 0, True, 1.0),)))
        return len(state.layers[names[0]].history)

    assert (kept(10), kept(1000), kept(5000)) == (1000, 100, 64)


def test_replay_source_gives_everything_once():
    source = ReplaySource(scripted_run())
    assert source.drain() == scripted_run()
    assert source.drain() == []


def test_queue_source_never_blocks_and_keeps_what_matters_when_full():
    # given a small queue and a producer far faster than the UI
    source = QueueSource(max_rows=30)
    source.put(RunStarted("train.py", ("train.py",), "0.1.0", 0.0))
    for step in range(1, 101):
        source.put(StepStats("train", step, loss=float(step)))
        source.put(LayerStats("train", step, rows(step)))
        if step == 50:
            source.put(VerdictIssued(DEAD_RELU))
    source.put(RunFinished("ok", 0))

    events = source.drain()

    # then nothing that is not a sample was lost, and the newest samples won
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert [e for e in events if isinstance(e, VerdictIssued)] == [VerdictIssued(DEAD_RELU)]
    steps = [e.step for e in events if isinstance(e, LayerStats)]
    assert steps[-1] == 100 and steps == sorted(steps) and len(steps) < 20
    assert [e.step for e in events if isinstance(e, StepStats)][-1] == 100
    assert source.dropped > 0
    # the sample rows kept stay within the budget (3 rows per LayerStats here)
    assert sum(3 if isinstance(e, LayerStats) else 1 for e in events
               if isinstance(e, (LayerStats, StepStats))) <= 30
    assert source.drain() == []


def test_queue_source_keeps_the_newest_sample_even_when_it_alone_is_over_budget():
    source = QueueSource(max_rows=2)
    source.put(LayerStats("train", 1, rows(1)))
    source.put(LayerStats("train", 2, rows(2)))
    assert [e.step for e in source.drain() if isinstance(e, LayerStats)] == [2]


def test_queue_source_takes_events_from_many_threads():
    source = QueueSource()

    def produce(offset: int) -> None:
        for index in range(500):
            source.put(Note("info", f"{offset}-{index}"))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    seen: list[Event] = []
    while any(t.is_alive() for t in threads):
        seen += source.drain()
        time.sleep(0.001)
    seen += source.drain()

    assert len(seen) == 2000  # notes are never dropped
    for offset in range(4):
        mine = [e.text for e in seen if isinstance(e, Note) and e.text.startswith(f"{offset}-")]
        assert mine == [f"{offset}-{i}" for i in range(500)]


def test_queue_source_rejects_a_useless_budget():
    with pytest.raises(ValueError, match="Received: max_rows=0"):
        QueueSource(max_rows=0)


def test_queue_source_is_an_event_bus_sink():
    from gradscope.events import EventBus

    source = QueueSource()
    bus = EventBus([source])
    bus.emit(Note("info", "hello"))
    bus.close()
    assert source.drain() == [Note("info", "hello")]


def test_export_path_is_new_each_time(tmp_path):
    from gradscope.ui.screens.overview import export_path

    first = export_path(str(tmp_path))
    Path(first).write_text("")
    second = export_path(str(tmp_path))
    assert first != second and Path(second).name.startswith("gradscope-export-")


@pilot_test
async def test_l_shows_what_the_run_printed_and_escape_returns():
    # given a live run whose script printed lines and then crashed
    from gradscope.events import OutputLine
    from gradscope.ui.screens.log import LogScreen

    events = run_start() + [
        OutputLine("stdout", "Epoch 1/5"),
        OutputLine("stderr", "Traceback (most recent call last):"),
        OutputLine("stderr", "ValueError: shapes (32, 10) and (32, 1) are incompatible"),
        RunFinished("script-error", 3,
                    error="ValueError: shapes (32, 10) and (32, 1) are incompatible"),
    ]
    app = replay_app(events)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        # the status line says how it ended and where the traceback is
        status = screen_text(app).splitlines()[-2]
        assert status.strip().startswith("finished · the script raised ValueError: sha")
        assert status.strip().endswith("· exit 3 · l shows the traceback")
        # when the user presses l
        await pilot.press("l")
        await settle(pilot)
        # then the log screen shows every line, and the run's exit status
        assert isinstance(app.screen, LogScreen)
        text = screen_text(app)
        assert "Epoch 1/5" in text and "ValueError: shapes" in text
        assert "finished · exit 3" in text
        # and Esc goes back to the overview
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
