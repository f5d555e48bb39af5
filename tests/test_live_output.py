"""Live mode shows the script's output as a terminal would: the script runs on
a pseudo-terminal (it prints what it prints in a terminal: Keras's bar redrawn
in place, colours), the log screen (`l`) shows each line as the terminal
showed it, a bar still being drawn as one line updated in place, and the
record keeps the finished lines only."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import sys
import threading
import time

from gradscope.commands.live import PARTIAL_EVERY, read_output
from gradscope.events import OutputLine, RunFinished
from gradscope.ui.app import GradscopeApp
from gradscope.ui.screens.log import LogScreen, OutputLog
from gradscope.ui.sources import QueueSource, ReplaySource
from tests.test_terminal_e2e import Terminal, at_prompt, terminal  # noqa: F401 - the fixture
from tests.test_ui import pilot_test, run_start, screen_text, settle

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# A real tiny Keras script: 2 epochs of 4 steps, Keras's own progress bar
# (verbose=1), a line on stderr, and whether it believes it prints to a terminal.
SCRIPT = """\
import sys

import keras
import numpy as np

print("stdout is a terminal:", sys.stdout.isatty())
print("a line on stderr", file=sys.stderr)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(8, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, epochs=2, batch_size=16, verbose=1)
"""
# Keras's last state of an epoch's bar: "4/4 ━━━━ 0s 6ms/step - loss: 0.6707"
BAR_DONE = re.compile(r"^4/4 ━{20} \d+s \d+m?s/step - loss: \d\.\d{4}$")


def test_the_log_screen_and_the_record_show_each_epoch_as_a_terminal_would(
    terminal: Terminal,  # noqa: F811 - the fixture
) -> None:
    # Given a tiny 2-epoch Keras script run live in a real terminal, with a record
    (terminal.cwd / "train.py").write_text(SCRIPT)
    terminal.type(f"{shlex.quote(sys.executable)} -m gradscope run --record run.jsonl train.py;"
                  " echo EXIT\"=\"$?")
    terminal.wait_for(lambda text: "finished ·" in text, timeout=240)

    # When the user opens the log screen
    terminal.press("l")
    screen = terminal.wait_for(lambda text: "Epoch 2/2" in text)
    rows = [row.rstrip() for row in screen.splitlines()]
    # Then each epoch is its title and one line: the bar's last state, ending in the loss
    for epoch in (1, 2):
        at = rows.index(f"Epoch {epoch}/2")
        assert BAR_DONE.match(rows[at + 1]), screen
    assert sum(bool(BAR_DONE.match(row)) for row in rows) == 2, screen
    # no redraw left behind, no escape code shown as text
    assert not any(re.match(r"^[1-3]/4 ", row) for row in rows), screen
    assert "[1m" not in screen and "[0m" not in screen and "\b" not in screen
    # and the script printed as it does in a terminal; its stderr line is there too
    assert "stdout is a terminal: True" in screen and "a line on stderr" in screen
    # with the bar's colours: its done part green, its count bold
    coloured = terminal.tmux("capture-pane", "-p", "-e", "-t", "e2e")
    bar_row = next(row for row in coloured.splitlines() if "━" in row)
    assert "\x1b[1m" in bar_row, repr(bar_row)
    assert re.search(r"\x1b\[[0-9;]*m━", bar_row), repr(bar_row)  # a colour of its own

    # When the user quits
    terminal.press("Escape")
    terminal.press("q")
    terminal.wait_for(at_prompt, timeout=60)

    # Then the record holds each line as the terminal showed it when it was finished:
    # no redraws, no control characters, the colours apart, the stream said
    lines = [event for event in map(json.loads, (terminal.cwd / "run.jsonl").read_text()
                                    .splitlines()) if event["type"] == "OutputLine"]
    assert not any(event.get("partial") for event in lines)
    assert not any(CONTROL.search(event["text"]) for event in lines)
    texts = [event["text"] for event in lines if event["stream"] == "stdout"]
    assert texts[texts.index("Epoch 1/2") + 1] == next(t for t in texts if BAR_DONE.match(t))
    assert [bool(BAR_DONE.match(t)) for t in texts].count(True) == 2, texts
    assert "Epoch 2/2" in texts and "stdout is a terminal: True" in texts
    bars = [event for event in lines if BAR_DONE.match(event["text"])]
    assert all(event["ansi"].startswith("\x1b[1m4/4\x1b[0m \x1b[32m━") for event in bars)
    assert {"stream": "stderr", "text": "a line on stderr"}.items() <= next(
        event for event in lines if event["text"] == "a line on stderr").items()


# --- reading a stream: a flood of redraws, a bar that stops, the end --------


def read_in_background(fd: int) -> tuple[list[OutputLine], threading.Thread]:
    got: list[OutputLine] = []
    reader = threading.Thread(target=read_output, args=(fd, "stdout", got.append), daemon=True)
    reader.start()
    return got, reader


def test_a_bar_redrawn_thousands_of_times_sends_few_updates_and_one_line() -> None:
    # Given a pseudo-terminal read as live mode reads the child's stdout
    primary, secondary = pty.openpty()
    got, reader = read_in_background(primary)
    # When a bar is redrawn 20,000 times as fast as the machine goes, then finished
    started = time.monotonic()
    with os.fdopen(secondary, "w", encoding="utf-8", buffering=1) as out:
        for step in range(1, 20_001):
            out.write(f"\r{step}/20000 " + "━" * (step // 1000))
            out.flush()
        out.write(" - loss: 0.5\n")
    elapsed = time.monotonic() - started
    reader.join(timeout=10)
    assert not reader.is_alive()  # the terminal closed: EIO ends the reading
    # Then the UI got at most one update per PARTIAL_EVERY, each the bar's state then
    partial = [line for line in got if line.partial]
    assert len(partial) <= elapsed / PARTIAL_EVERY + 2, (len(partial), elapsed)
    # (before step 1000 the bar has no ━ yet: the line is "416/20000", its trailing
    # space not shown; a loaded machine reads the stream late enough to send one)
    assert all(re.fullmatch(r"\d+/20000( ━*)?", line.text) for line in partial), [
        line.text for line in partial]
    # and one finished line: the bar's last state
    assert [line.text for line in got if not line.partial] == [
        "20000/20000 " + "━" * 20 + " - loss: 0.5"]


def test_a_bar_that_stops_shows_its_last_state_and_the_end_finishes_it() -> None:
    primary, secondary = pty.openpty()
    got, reader = read_in_background(primary)
    # When a bar is drawn, then nothing comes for a while
    os.write(secondary, b"\r 1/4 \xe2\x94")  # cut inside a character
    os.write(secondary, b"\x81\r 2/4 \xe2\x94\x81\xe2\x94\x81")
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    # Then its last state is shown, once
    time.sleep(3 * PARTIAL_EVERY)
    assert got == [OutputLine("stdout", " 2/4 ━━", partial=True)]
    # and when the stream ends without a newline, that line is finished
    os.close(secondary)
    reader.join(timeout=10)
    assert got[-1] == OutputLine("stdout", " 2/4 ━━")


# --- the log screen ------------------------------------------------------------


def log_rows(app: GradscopeApp) -> list[str]:
    return [row.strip() for row in screen_text(app).splitlines()]


@pilot_test
async def test_the_log_screen_redraws_the_line_being_drawn_in_place():
    # Given a live run whose script has printed a title and started a bar
    source = QueueSource()
    source.put_many([*run_start(), OutputLine("stdout", "Epoch 1/2"),
                     OutputLine("stdout", "1/4 ━━", partial=True)])
    app = GradscopeApp(source)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.15)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        rows = log_rows(app)
        assert rows[1:3] == ["Epoch 1/2", "1/4 ━━"]
        # When the bar moves on, it is the same line
        source.put(OutputLine("stdout", "3/4 ━━━━", partial=True))
        await settle(pilot, 0.15)
        rows = log_rows(app)
        assert rows[1:4] == ["Epoch 1/2", "3/4 ━━━━", ""]
        # and a line on stderr meanwhile goes above the bar still being drawn
        source.put(OutputLine("stderr", "a warning"))
        await settle(pilot, 0.15)
        assert log_rows(app)[1:4] == ["Epoch 1/2", "a warning", "3/4 ━━━━"]
        # When the bar is finished, it stays, coloured as the terminal showed it
        source.put(OutputLine("stdout", "4/4 ━━━━ - loss: 0.5",
                              "\x1b[1m4/4\x1b[0m \x1b[32m━━━━\x1b[0m - loss: 0.5"))
        await settle(pilot, 0.15)
        assert log_rows(app)[1:4] == ["Epoch 1/2", "a warning", "4/4 ━━━━ - loss: 0.5"]
        assert log_rows(app)[0].startswith("output of the run · 3 lines")
        log = app.screen.query_one(OutputLog)
        last = log.lines[-1]
        styles = {segment.text: segment.style for segment in last if segment.text.strip()}
        assert styles["4/4"].bold and styles["━━━━"].color.number == 2  # green
        # and the next bar starts on a line of its own
        source.put(OutputLine("stdout", "1/4 ━", partial=True))
        await settle(pilot, 0.15)
        assert log_rows(app)[3:5] == ["4/4 ━━━━ - loss: 0.5", "1/4 ━"]
        # When that line is erased before the end, nothing of it is left
        source.put_many([OutputLine("stdout", "", partial=True), RunFinished("ok", 0)])
        await settle(pilot, 0.15)
        assert log_rows(app)[3:5] == ["4/4 ━━━━ - loss: 0.5", ""]


@pilot_test
async def test_an_older_record_with_raw_terminal_codes_shows_clean_lines():
    # Given a record made before the terminal was interpreted: Keras's codes in the text
    raw = "\x1b[1m4/4\x1b[0m \x1b[32m━━━━\x1b[0m\x1b[37m\x1b[0m - loss: 0.5" + "\b" * 40
    app = GradscopeApp(ReplaySource([*run_start(), OutputLine("stdout", "Epoch 1/2"),
                                     OutputLine("stdout", raw), RunFinished("ok", 0)]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert log_rows(app)[1:3] == ["Epoch 1/2", "4/4 ━━━━ - loss: 0.5"]
