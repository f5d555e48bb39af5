"""The terminal-line interpreter (what live mode's log screen shows of a
script's output), the OutputLine fields it fills, and how the report folds a
line still being drawn. Pure Python: no TensorFlow, no Textual, no child."""

from __future__ import annotations

import re

import pytest

from gradscope.events import OutputLine, from_json, to_json
from gradscope.report import Report
from gradscope.terminal_lines import Line, Style, TerminalLines, apply_sgr, has_controls, render

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Two epochs of Keras 3's progress bar as a terminal receives it (captured from
# a real fit() on a pseudo-terminal): "Epoch e/E", then each redraw goes back
# over the previous one with \b's and a \r, colours around the count and bar,
# and the last state padded with blanks over a longer earlier one.
BAR_1 = "\x1b[1m 1/32\x1b[0m \x1b[37m" + "━" * 20 + "\x1b[0m \x1b[1m13s\x1b[0m 440ms/step - loss: 0.8113"
BAR_32 = ("\x1b[1m32/32\x1b[0m \x1b[32m" + "━" * 20 + "\x1b[0m\x1b[37m\x1b[0m \x1b[1m0s\x1b[0m"
          " 2ms/step - loss: 0.7923   ")
KERAS = ("Epoch 1/2\n\r" + BAR_1 + "\b" * 56 + "\r" + BAR_32 + "\n"
         "Epoch 2/2\n\r" + BAR_1 + "\b" * 56 + "\r" + BAR_32.replace("0.7923", "0.7255") + "\n")


def feed_all(text: str, chunk: int) -> tuple[list[Line], TerminalLines]:
    lines = TerminalLines()
    done: list[Line] = []
    for start in range(0, len(text), chunk):
        done += lines.feed(text[start:start + chunk])
    return done, lines


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000], ids=lambda n: f"chunks-of-{n}")
def test_a_keras_progress_bar_ends_as_one_clean_line_per_epoch(chunk: int) -> None:
    # Whichever way the stream is cut (inside a sequence, inside a character's redraw)
    done, lines = feed_all(KERAS, chunk)
    bar = "32/32 " + "━" * 20 + " 0s 2ms/step - loss: "
    # Then each epoch is its title and one line: the bar's last state, ending in the loss
    assert [line.text for line in done] == [
        "Epoch 1/2", bar + "0.7923", "Epoch 2/2", bar + "0.7255"]
    # without a control character left, the padding blanks trimmed
    assert not any(CONTROL.search(line.text) for line in done)
    # and the bar's colours kept: the count bold, the bar green, nothing else coloured
    assert done[1].ansi == ("\x1b[1m32/32\x1b[0m \x1b[32m" + "━" * 20 + "\x1b[0m \x1b[1m0s\x1b[0m"
                            " 2ms/step - loss: 0.7923")
    assert done[0].ansi == ""  # a plain line has no ansi form
    assert lines.flush() is None  # nothing left unfinished


def test_carriage_return_rewrites_the_line_in_place() -> None:
    done, _ = feed_all("downloading 10%\rdownloading 55%\rdone\n", 100)
    # a shorter text overwrites only its own columns, as a terminal does
    assert done == [Line("doneloading 55%")]
    done, _ = feed_all("10%\r55%\r\x1b[Kdone\n", 100)
    assert done == [Line("done")]


def test_backspace_moves_back_and_never_before_the_line_start() -> None:
    assert feed_all("abc\b\bX\n", 100)[0] == [Line("aXc")]
    assert feed_all("ab\b\b\b\b\bX\n", 100)[0] == [Line("Xb")]


@pytest.mark.parametrize(("sequence", "shown"), [
    ("\x1b[K", "abc"),  # to the end of the line
    ("\x1b[0K", "abc"),
    ("\x1b[1K", "    ef"),  # from the start to the cursor, included
    ("\x1b[2K", ""),  # the whole line, the cursor stays
])
def test_erase_line_sequences(sequence: str, shown: str) -> None:
    # Given "abcdef" with the cursor on the "d"
    done, _ = feed_all("abcdef\b\b\b" + sequence + "\n", 100)
    assert done == [Line(shown)]


def test_after_an_erase_of_the_whole_line_text_goes_where_the_cursor_is() -> None:
    done, _ = feed_all("abcdef\b\b\x1b[2KZ\n", 100)
    assert done == [Line("    Z")]


def test_cursor_moves_along_the_line_and_tabs() -> None:
    assert feed_all("abcdef\x1b[3DX\x1b[2CY\n", 100)[0] == [Line("abcXefY")]
    assert feed_all("abcdef\x1b[2GX\n", 100)[0] == [Line("aXcdef")]
    assert feed_all("a\tb\n", 100)[0] == [Line("a       b")]


def test_colours_are_kept_and_normalised() -> None:
    done, _ = feed_all("\x1b[1;31mred\x1b[22m still red\x1b[0m plain\n", 100)
    assert done[0].text == "red still red plain"
    assert done[0].ansi == "\x1b[1;31mred\x1b[0m\x1b[31m still red\x1b[0m plain"
    # 256 colours and true colour
    assert apply_sgr(Style(), "38;5;208") == Style(fg="38;5;208")
    assert apply_sgr(Style(), "48;2;255;0;0;4") == Style(attrs=(4,), bg="48;2;255;0;0")
    assert apply_sgr(Style((1,), "32"), "") == Style()  # ESC[m resets
    # a colour set on one line goes on to the next, as a terminal's pen does
    done, _ = feed_all("\x1b[32mgreen\nstill\x1b[39m\n", 100)
    assert [line.ansi for line in done] == ["\x1b[32mgreen\x1b[0m", "\x1b[32mstill\x1b[0m"]


def test_a_coloured_background_keeps_its_trailing_blanks() -> None:
    done, _ = feed_all("ok\x1b[41m  \x1b[0m  \n", 100)
    assert done == [Line("ok  ", "ok\x1b[41m  \x1b[0m")]


def test_other_control_sequences_are_dropped() -> None:
    text = ("\x1b]0;a window title\x07\x1b]8;;https://example.org\x1b\\link\x1b]8;;\x1b\\"
            "\x1b[?25l\x1b[2A\x1b7\x1b(B ok\x07\x00\x1b[?25h\n")
    for chunk in (1, 5, 1000):
        done, _ = feed_all(text, chunk)
        assert done == [Line("link ok")]


def test_an_escape_that_starts_nothing_is_dropped_and_the_text_after_it_kept() -> None:
    done, _ = feed_all("a\x1b\x01b\n", 100)
    assert done == [Line("ab")]


def test_the_line_being_drawn_and_the_end_of_the_stream() -> None:
    lines = TerminalLines()
    assert lines.feed("Epoch 1/2\n\r 1/32 ━") == [Line("Epoch 1/2")]
    # the unfinished line is what the terminal shows now
    assert lines.changed and lines.current() == Line(" 1/32 ━")
    assert not lines.changed  # until something is drawn again
    lines.feed("\b" * 7 + "\r")
    assert lines.current() == Line(" 1/32 ━")  # moving the cursor changes nothing shown
    lines.feed("32/32 ━━")
    assert lines.changed and lines.current() == Line("32/32 ━━")
    # at the stream's end the unfinished line is finished
    assert lines.flush() == Line("32/32 ━━")
    assert lines.flush() is None


def test_a_runaway_line_is_cut() -> None:
    from gradscope.terminal_lines import MAX_COLUMNS

    done, _ = feed_all("x" * (MAX_COLUMNS + 500) + "\n", 4096)
    assert len(done[0].text) == MAX_COLUMNS


def test_a_recorded_line_with_raw_codes_renders_clean() -> None:
    # Records made before the interpreter kept what followed the last \r, codes and all
    raw = "\x1b[1m32/32\x1b[0m \x1b[32m━━\x1b[0m - loss: 0.5" + "\b" * 3
    assert has_controls(raw) and not has_controls("plain")
    assert render(raw) == Line("32/32 ━━ - loss: 0.5",
                               "\x1b[1m32/32\x1b[0m \x1b[32m━━\x1b[0m - loss: 0.5")


# --- the OutputLine event and its fold -----------------------------------------


def test_output_line_fields_are_written_only_when_set() -> None:
    plain = OutputLine("stdout", "Epoch 1/2")
    # an old record's line reads as before, and a plain line is written as before
    assert to_json(plain) == '{"v":1,"type":"OutputLine","stream":"stdout","text":"Epoch 1/2"}'
    assert from_json(to_json(plain)) == plain
    coloured = OutputLine("stdout", "ok", "\x1b[32mok\x1b[0m")
    assert '"ansi"' in to_json(coloured) and '"partial"' not in to_json(coloured)
    assert from_json(to_json(coloured)) == coloured
    drawing = OutputLine("stdout", "1/32", partial=True)
    assert from_json(to_json(drawing)) == drawing


def shown(report: Report) -> list[tuple[str, str, bool]]:
    return [(line.stream, line.text, line.partial) for line in report.output]


def test_a_line_being_drawn_is_replaced_in_place_then_by_the_finished_line() -> None:
    report = Report()
    report.apply(OutputLine("stdout", "Epoch 1/2"))
    report.apply(OutputLine("stdout", " 1/32", partial=True))
    report.apply(OutputLine("stdout", "16/32", partial=True))
    # the bar is one line, its latest state
    assert shown(report) == [("stdout", "Epoch 1/2", False), ("stdout", "16/32", True)]
    assert report.output_total == 1  # finished lines only
    # a line on stderr meanwhile goes before the bar still being drawn
    report.apply(OutputLine("stderr", "a warning"))
    assert shown(report) == [("stdout", "Epoch 1/2", False), ("stderr", "a warning", False),
                             ("stdout", "16/32", True)]
    report.apply(OutputLine("stdout", "32/32 - loss: 0.5"))
    assert shown(report) == [("stdout", "Epoch 1/2", False), ("stderr", "a warning", False),
                             ("stdout", "32/32 - loss: 0.5", False)]
    assert report.output_total == 3


def test_each_stream_has_its_own_line_being_drawn() -> None:
    report = Report()
    report.apply(OutputLine("stdout", "a", partial=True))
    report.apply(OutputLine("stderr", "b", partial=True))
    report.apply(OutputLine("stdout", "aa", partial=True))
    assert sorted(shown(report)) == [("stderr", "b", True), ("stdout", "aa", True)]
    report.apply(OutputLine("stderr", "bbb"))
    assert shown(report) == [("stderr", "bbb", False), ("stdout", "aa", True)]
