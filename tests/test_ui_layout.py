"""The overview as a user reads it at 80x24 and 120x40: the headline whole, the
other verdicts one line each and opened on demand, the status line saying what
happens in words, a crash before fit() shown as a crash, the log without
TensorFlow's start-up lines, a replay without a pause.

Real recorded runs (tests/data) and scripted events; no TensorFlow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradscope.commands.view import read_events
from gradscope.events import (
    Event,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    OutputLine,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepStats,
    VerdictIssued,
)
from gradscope.output_noise import tf_noise
from gradscope.ui import QueueSource, ReplaySource
from gradscope.ui.app import GradscopeApp
from gradscope.ui.screens.log import LogScreen
from gradscope.ui.screens.overview import OverviewScreen
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.ui.widgets.verdicts import FixCode, VerdictPanel, fix_blocks
from gradscope.verdicts import Verdict
from tests.test_ui import (
    DEAD_RELU,
    FROZEN,
    pilot_test,
    run_start,
    screen_text,
    scripted_run,
    settle,
    step_events,
)

DATA = Path(__file__).parent / "data"
SIZES = [(80, 24), (120, 40)]


def recorded(name: str) -> list[Event]:
    return read_events(str(DATA / f"{name}.jsonl"))


def replay(events: list[Event]) -> GradscopeApp:
    return GradscopeApp(ReplaySource(events))


def lines(app: GradscopeApp) -> list[str]:
    """The screen's lines without the verdicts' severity bar, right-stripped."""
    return [line.replace("▌", " ").rstrip() for line in screen_text(app).splitlines()]


def words(text: str) -> str:
    return " ".join(text.split())


def on_screen_as_text(app: GradscopeApp) -> str:
    """The screen's words in reading order: text wrapped over lines reads whole."""
    return words(" ".join(lines(app)))


def status_line(app: GradscopeApp) -> str:
    return screen_text(app).splitlines()[-2].strip()


def footer(app: GradscopeApp) -> str:
    return screen_text(app).splitlines()[-1]


def headline_of(events: list[Event]) -> Verdict:
    from gradscope.report import Report

    top = Report.from_events(events).headline()
    assert top is not None
    return top


def layer_rows_shown(app: GradscopeApp) -> list[str]:
    names = set(app.state.layers)
    return [line for line in lines(app) if line[2:].split(" ", 1)[0] in names]


# --- the headline is never cut ------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pilot_test
async def test_the_headlines_whole_message_and_every_fix_line_are_on_screen(size):
    # Given the real vanishing-gradient run, whose headline has a long message
    # and a fix of prose and two lines of code
    events = recorded("vanishing-gradient")
    top = headline_of(events)
    assert top.check == "vanishing-gradient" and "BatchNormalization()" in top.fix
    app = replay(events)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = on_screen_as_text(app)
        shown = lines(app)

        # Then its whole message is there, and its whole fix
        assert words(top.message) in text
        for kind, block in fix_blocks(top.fix):
            if kind == "prose":
                assert words(block) in text
            else:
                # code lines are shown whole, each on a line of its own
                for code in block.splitlines():
                    assert any(line.strip() == code.strip() for line in shown), code
        assert "BatchNormalization()" in text
        # and nothing of the headline is scrolled out of sight
        panel = app.screen.query_one(VerdictPanel)
        headline = panel.items()[0]
        assert headline.has_class("-headline")
        assert panel.scroll_y == 0
        assert headline.region.bottom <= panel.content_region.bottom
        assert "more below" not in text
        # while the layer table keeps at least three layers in view
        assert len(layer_rows_shown(app)) >= 3
        # and the other verdicts are one line each, cut with an ellipsis
        others = [line for line in shown if "collapsed-predictions" in line
                  or "accuracy-at-baseline" in line]
        assert len(others) == 2
        if size == (80, 24):
            assert all(line.endswith("…") for line in others)


@pilot_test
async def test_a_resized_terminal_gives_the_room_back_to_the_table():
    app = replay(recorded("vanishing-gradient"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert len(layer_rows_shown(app)) == 3
        await pilot.resize_terminal(120, 40)
        await settle(pilot, 0.1)
        # every layer in view, and the headline still whole
        assert len(layer_rows_shown(app)) == 11
        assert "BatchNormalization()" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await settle(pilot, 0.1)
        assert len(layer_rows_shown(app)) == 3
        assert "BatchNormalization()" in screen_text(app)


@pilot_test
async def test_fix_code_is_never_wrapped_it_scrolls_sideways():
    # Given a headline whose fix has a code line wider than an 80-column terminal
    code = ("    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), "
            "loss='sparse_categorical_crossentropy')")
    verdict = Verdict("lr-too-high", "error", "optimizer", "the loss diverges at once.",
                      "Lower the learning rate:\n" + code)
    app = replay(run_start() + step_events(1) + [VerdictIssued(verdict)])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = lines(app)
        # Then the code line starts whole on one line, and its tail is not wrapped below
        start = next(i for i, line in enumerate(shown) if "model.compile(optimizer=" in line)
        assert "sparse_categorical_crossentropy" not in " ".join(shown)
        assert not shown[start + 1].strip().startswith("loss=")
        # and it scrolls sideways to show the rest
        block = app.screen.query_one(FixCode)
        assert block.max_scroll_x > 0
        block.scroll_end(animate=False)
        block.scroll_to(x=block.max_scroll_x, animate=False)
        await settle(pilot)
        assert "loss='sparse_categorical_crossentropy')" in screen_text(app)


@pilot_test
async def test_a_headline_taller_than_the_room_scrolls_with_a_mark_and_the_table_keeps_three_rows():
    long_message = " ".join(f"word{i}" for i in range(400))
    verdict = Verdict("dead-relu", "error", "hidden", long_message, "Use He initialisation.")
    events = run_start() + [e for step in range(1, 6) for e in step_events(step)]
    app = replay(events + [VerdictIssued(verdict), VerdictIssued(FROZEN)])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        panel = app.screen.query_one(VerdictPanel)
        assert panel.items()[0].verdict is verdict
        # Then the panel says there is more below, and the table still shows three layers
        assert "▼ more below" in str(panel.border_title)
        assert "more below" in screen_text(app)
        assert len(layer_rows_shown(app)) >= 3

        # When the user scrolls the verdicts to their end, the mark goes
        panel.scroll_end(animate=False)
        await settle(pilot)
        assert "more below" not in str(panel.border_title)
        assert "word399" in screen_text(app)


@pilot_test
async def test_the_table_does_not_move_when_the_first_verdict_lands():
    source = QueueSource()
    for event in run_start() + step_events(1) + step_events(2):
        source.put(event)
    app = GradscopeApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.15)
        assert "diagnosing… the most likely cause will show here" in screen_text(app)
        before = app.screen.query_one(LayerTable).region

        source.put(VerdictIssued(DEAD_RELU))
        await settle(pilot, 0.15)
        assert "dead-relu · hidden  (most likely cause)" in screen_text(app)
        assert app.screen.query_one(LayerTable).region == before


# --- the other verdicts: one line each, opened on demand --------------------------------


@pilot_test
async def test_enter_opens_the_selected_verdict_and_folds_it_back():
    app = replay(recorded("vanishing-gradient"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        full = "under 1% of the spread the labels need (0.34)"
        assert full not in on_screen_as_text(app)

        # When the user moves to the verdicts (Tab), selects the second and presses Enter
        await pilot.press("tab")
        panel = app.screen.query_one(VerdictPanel)
        assert app.focused is panel
        await pilot.press("down", "enter")
        # (the footer is redrawn for the focused panel's keys after the key is handled)
        await settle(pilot, until=lambda: "Open/fold" in footer(app))
        # Then it shows whole: message, fix and evidence with readable numbers
        text = on_screen_as_text(app)
        assert full in text
        assert "fix: The inputs do not reach the output" in text
        assert "evidence: spread=4.18e-08" in text
        assert "4.175141019082103e-08" not in text
        assert "Enter Open/fold" in footer(app) or "⏎ Open/fold" in footer(app)

        # and Enter folds it back to one line
        await pilot.press("enter")
        await settle(pilot)
        assert full not in on_screen_as_text(app)
        assert any(line.strip().startswith("● error collapsed-predictions · model: the model")
                   for line in lines(app))


@pilot_test
async def test_a_click_on_a_verdict_opens_it():
    app = replay(recorded("vanishing-gradient"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        item = app.screen.query_one(VerdictPanel).items()[2]
        assert item.verdict.check == "accuracy-at-baseline"
        await pilot.click(item)
        await settle(pilot)
        assert "evidence: accuracy=0.156, majority=0.156" in on_screen_as_text(app)


@pilot_test
async def test_v_shows_every_verdict_whole_with_evidence_formatted():
    app = replay(recorded("vanishing-gradient"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        text = on_screen_as_text(app)
        assert "ratio=5.87e-07, first_layer=hidden_0, last_layer=out" in text
        assert "5.873289863978032e-07" not in text
        assert "note: overfit 32 samples for 150 steps" in text


# --- the status line, phase by phase ---------------------------------------------------------


def model() -> ModelDescribed:
    return ModelDescribed("mnist_mlp", "Sequential", 55050, 55050, "CPU", "clone", (
        LayerInfo("dense_in", "Dense", 50240, True), LayerInfo("hidden", "Dense", 4160, True)))


def train_step(epoch: int) -> list[Event]:
    return [StepStats("train", epoch, loss=1.0 / epoch),
            LayerStats("train", epoch, (LayerRow("dense_in", "Dense", 50240, True,
                                                 weight_norm=8.0, update_ratio=1e-3),))]


@pilot_test
async def test_the_status_line_says_what_happens_in_each_phase():
    source = QueueSource()
    app = GradscopeApp(source)
    seen: list[tuple[str, str, str]] = []
    steps: list[list[Event]] = [
        [RunStarted("a_rather_long_training_script_name.py", ("x.py",), "0.1.0", 0.0)],
        [PhaseChanged("script")],
        [PhaseChanged("static"), model()],
        [PhaseChanged("probe", total=5), *step_events(1), *step_events(2), *step_events(3)],
        [PhaseChanged("experiments")],
        [PhaseChanged("experiments", "learning-rate sweep", step=2, total=3)],
        [PhaseChanged("train", total=15), *train_step(1), *train_step(2), *train_step(4)],
        [PhaseChanged("train"), *train_step(5)],
        [VerdictIssued(DEAD_RELU), VerdictIssued(FROZEN), RunFinished("ok", 1)],
    ]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.15)
        seen.append((status_line(app), *screen_text(app).splitlines()[:2]))
        for events in steps:
            for event in events:
                source.put(event)
            await settle(pilot, 0.15)
            seen.append((status_line(app), *screen_text(app).splitlines()[:2]))

    statuses = [status for status, _, _ in seen]
    assert statuses[0] == "starting Python…"
    assert statuses[1] == "loading TensorFlow…"
    assert statuses[2] == "running the script, waiting for fit()"
    assert statuses[3] == "static checks (model, loss, labels, data)"
    # the probe counts its steps, with their rate while they are the steps running
    assert re.fullmatch(r"probe step 3/5 · [\d.]+ steps/s", statuses[4]), statuses[4]
    assert statuses[5] == "experiments: starting"
    assert statuses[6] == "experiment 2/3: learning-rate sweep"
    # training counts epochs; the probe's steps/s is not shown as if it were training's
    assert statuses[7] == "training: epoch 4/15"
    assert statuses[8] == "training: epoch 5"
    assert statuses[9] == "finished · 1 error verdict, 1 warning · exit 1"
    assert not any("finished:" in s or "exit code" in s for s in statuses)
    # and the header stays one line, without a frozen rate
    for _, header, below in seen:
        assert "steps/s" not in header
        assert below.lstrip("─━ ").startswith("Verdicts") or "Verdicts" in below
    # (cut with an ellipsis where the terminal is too narrow)
    assert seen[-1][1].strip().startswith(
        "a_rather_long_training_script_name.py · mnist_mlp (Sequential) · 55,050 param")
    assert seen[-1][1].strip().endswith("…")


@pytest.mark.parametrize(("finished", "model_seen", "words_shown"), [
    (RunFinished("ok", 0), True, "finished · no problems found · exit 0"),
    (RunFinished("interrupted", 130), True, "finished · interrupted · exit 130"),
    (RunFinished("interrupted", 130), False, "finished · interrupted before fit() · exit 130"),
    (RunFinished("no-fit", 4), False,
     "finished · stopped before fit(): the script never called it · exit 4"),
    (RunFinished("script-exit", 7), True, "finished · the script exited with code 7 · exit 7"),
])
@pilot_test
async def test_the_status_line_says_how_the_run_ended_in_words(finished, model_seen, words_shown):
    events: list[Event] = [RunStarted("train.py", ("train.py",), "0.1.0", 0.0),
                           PhaseChanged("script")]
    if model_seen:
        events += [PhaseChanged("static"), model(), PhaseChanged("probe", total=5)]
    app = replay([*events, finished])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert status_line(app) == words_shown
        if not model_seen:
            # the verdicts never say "no problems found" when nothing was diagnosed
            text = on_screen_as_text(app)
            assert "no problems found" not in text and "nothing was diagnosed" in text


@pilot_test
async def test_a_recording_that_stops_short_says_so():
    app = replay(recorded("healthy-training")[:-6])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert status_line(app).startswith("the recording ends here · training: epoch ")


# --- a crash before fit() ------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pilot_test
async def test_a_crash_before_fit_shows_the_exception_and_l_the_traceback(size):
    app = replay(recorded("crash-before-fit"))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = on_screen_as_text(app)
        # Then the verdicts area shows the exception as an error, never an empty list
        assert "FileNotFoundError: [Errno 2] No such file or directory: 'weights.npy'" in text
        assert "l shows the traceback" in text
        assert "Verdicts (0)" not in text and "no problems found" not in text
        assert app.screen.has_class("-crashed")
        status = status_line(app)
        assert status.startswith("finished · the script raised FileNotFound")
        assert status.endswith("· exit 3 · l shows the traceback")

        # When the user presses l, the traceback shows (the record has no output lines)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        text = screen_text(app)
        assert "Traceback (most recent call last):" in text
        assert 'weights = np.load("weights.npy")' in text
        assert "this recording holds no output of the run" in text


# --- the log screen -----------------------------------------------------------------------

TF_STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1712345678.123456   12345 cpu_feature_guard.cc:210] This TensorFlow binary "
    "is optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1712345679.000000   12345 cuda_dnn.cc:8310] Unable to register cuDNN factory",
    "2024-01-02 10:11:12.345678: I tensorflow/core/util/port.cc:113] oneDNN custom "
    "operations are on.",
]


def test_tf_noise_knows_tensorflows_start_up_lines_and_nothing_else():
    assert all(tf_noise(line) for line in TF_STARTUP)
    for line in ("Epoch 1/5", "I0000 is my favourite number", "WARNING: my own warning",
                 "Traceback (most recent call last):", "E1234: custom error code"):
        assert not tf_noise(line), line


@pilot_test
async def test_the_log_folds_tensorflows_start_up_lines_into_one_and_t_shows_them():
    events = run_start() + [OutputLine("stderr", line) for line in TF_STARTUP] + [
        OutputLine("stdout", "Epoch 1/5"),
        OutputLine("stdout", "157/157 - 1s - loss: 2.30"),
    ]
    app = GradscopeApp(ReplaySource(events))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        shown = [line.strip() for line in screen_text(app).splitlines()]
        # Then the log's top is the run's own output, under one muted line
        assert shown[0].startswith("output of the run · 2 lines")  # its own, not TF's
        assert shown[1] == "5 TensorFlow start-up lines hidden · t shows them"
        assert shown[2:4] == ["Epoch 1/5", "157/157 - 1s - loss: 2.30"]
        assert "I0000" not in screen_text(app) and "absl" not in screen_text(app)
        # and the lines stay in the record
        assert sum(tf_noise(line.text) for line in app.state.output) == 5

        # When the user presses t, they show
        await pilot.press("t")
        await settle(pilot)
        text = screen_text(app)
        assert "I0000 00:00:1712345678.123456" in text and "Epoch 1/5" in text


@pilot_test
async def test_l_in_a_headless_recording_says_it_holds_no_output():
    app = replay(recorded("vanishing-gradient"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert "this recording holds no output of the run" in screen_text(app)


@pilot_test
async def test_l_in_a_live_record_shows_the_runs_output():
    # Given a live run's record: the output lines are in it, the traceback among them
    events = [
        *run_start()[:1], PhaseChanged("script"),
        OutputLine("stderr", TF_STARTUP[1]),
        OutputLine("stdout", "loading data"),
        OutputLine("stderr", "Traceback (most recent call last):"),
        OutputLine("stderr", "FileNotFoundError: no such file: 'weights.npy'"),
        RunFinished("script-error", 3, error="FileNotFoundError: no such file: 'weights.npy'",
                    traceback="Traceback (most recent call last):\nFileNotFoundError: ...\n"),
    ]
    app = replay(events)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        text = screen_text(app)
        assert "loading data" in text and "FileNotFoundError: no such file" in text
        assert text.count("Traceback (most recent call last):") == 1
        assert "1 TensorFlow start-up line hidden" in text


# --- replay and live ------------------------------------------------------------------------


@pilot_test
async def test_a_replay_offers_no_pause_and_p_does_nothing():
    app = replay(recorded("healthy-training"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Pause" not in footer(app)
        assert "? Help" in footer(app) and "l Log" in footer(app)
        await pilot.press("p")
        await settle(pilot)
        assert not app.paused and "PAUSED" not in screen_text(app)


@pilot_test
async def test_a_live_run_offers_pause():
    app = GradscopeApp(QueueSource())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "p Pause" in footer(app)
        await pilot.press("p")
        await settle(pilot)
        assert app.paused and "PAUSED" in status_line(app)


# --- help and docs --------------------------------------------------------------------------


@pilot_test
async def test_help_says_the_mouse_works():
    app = replay(scripted_run())
    async with app.run_test(size=(100, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        text = screen_text(app)
        assert "keyboard only" not in text.lower()
        assert "Mouse" in text and "Enter       open or fold the selected verdict" in text
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


def test_the_ui_doc_does_not_say_keyboard_only():
    doc = (Path(__file__).parents[1] / "docs" / "ui.md").read_text()
    assert "keyboard only" not in doc.lower()
    assert "finished: " not in doc  # the old status wording

