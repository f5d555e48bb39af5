"""What a terminal would show of a program's output, one line at a time.

Live mode runs the user's script on a pseudo-terminal, so the script prints
what it would print in a terminal: Keras's progress bar redrawn in place
(`\\b`s and a `\\r`, then the new state), colours, tqdm's bars. `TerminalLines`
plays that terminal for one stream: it is fed the text as it comes (chunks cut
anywhere, even inside an escape sequence) and hands back each finished line as
the terminal showed it when its newline came, plus the line still being drawn.

What it interprets, as a terminal does on one line:
- `\\r` goes back to the line's start; what is written next overwrites;
- `\\b` moves back one column (never before the start); `\\t` goes to the next
  tab stop (every 8 columns);
- `ESC[K`/`ESC[0K` erase to the end of the line, `ESC[1K` from its start to
  the cursor, `ESC[2K` the whole line; `ESC[nC`/`ESC[nD`/`ESC[nG` move the cursor
  along the line;
- SGR (`ESC[...m`: bold, colours, 256 and true colours) is kept: each line
  comes as plain `text` and, when it has colours, as `ansi` (the same line with
  normalised SGR codes, each coloured run closed by `ESC[0m`).
Every other control character and escape sequence (cursor up/down, titles,
hyperlinks, bells) is dropped. One character is one column (wide characters
are not measured), lines do not wrap, and trailing blanks are trimmed.

No TensorFlow, no Textual: the live parent (commands/live.py) and the log
screen (old records written before this module kept the raw codes) use it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A line longer than this is cut (a progress bar never is; a runaway print
# without a newline must not grow without bound).
MAX_COLUMNS = 16_384
# An escape sequence cut by a chunk's end is kept until its end comes, up to
# this length (a title or hyperlink); past it, it is dropped as garbage.
MAX_PENDING = 4_096
TAB = 8

_TOKEN = re.compile(
    r"(?P<csi>\x1b\[[0-?]*[ -/]*[@-~])"  # CSI: ESC [ params intermediates final
    r"|(?P<string>\x1b[\]P^_X][^\x07\x1b]*(?:\x07|\x1b\\))"  # OSC/DCS/PM/APC/SOS, to BEL or ST
    r"|(?P<esc>\x1b(?:[ -/]+[0-~]|(?![\[\]P^_X])[0-~]))"  # two-character (and charset) escapes
    r"|(?P<lone>\x1b)"  # an ESC that is not (yet) a whole sequence
    r"|(?P<ctl>[\x00-\x1a\x1c-\x1f\x7f-\x9f]+)",  # C0 (but ESC), DEL, C1
)
# What an escape sequence cut by the chunk's end can look like so far.
_PREFIX = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*|[\]P^_X][^\x07\x1b]*\x1b?|[ -/]*)\Z"
)


class Style(NamedTuple):
    """The SGR state a character was drawn with (empty: the default)."""

    attrs: tuple[int, ...] = ()  # 1 bold, 2 dim, 3 italic, 4 underline, 5 blink, 7 reverse, 8, 9 strike
    fg: str = ""  # "32", "92", "38;5;208", "38;2;255;0;0"
    bg: str = ""

    def codes(self) -> str:
        parts = [str(a) for a in self.attrs]
        if self.fg:
            parts.append(self.fg)
        if self.bg:
            parts.append(self.bg)
        return ";".join(parts)

    def shows_blank(self) -> bool:
        """Whether a space in this style can be seen (a background, reverse video, a line)."""
        return bool(self.bg) or any(a in (4, 7, 9) for a in self.attrs)


PLAIN = Style()
# SGR codes that turn attributes off: which attributes each clears.
_ATTR_OFF = {21: (1,), 22: (1, 2), 23: (3,), 24: (4,), 25: (5,), 27: (7,), 28: (8,), 29: (9,)}


def apply_sgr(style: Style, params: str) -> Style:
    """`style` after `ESC[<params>m`."""
    if ":" in params:
        return style  # colon sub-parameters (underline styles): not modelled, ignored
    try:
        codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
    except ValueError:
        return style
    attrs, fg, bg = set(style.attrs), style.fg, style.bg
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            attrs, fg, bg = set(), "", ""
        elif code in (1, 2, 3, 4, 5, 7, 8, 9):
            attrs.add(code)
        elif code in _ATTR_OFF:
            attrs.difference_update(_ATTR_OFF[code])
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fg = str(code)
        elif code == 39:
            fg = ""
        elif 40 <= code <= 47 or 100 <= code <= 107:
            bg = str(code)
        elif code == 49:
            bg = ""
        elif code in (38, 48):
            # 38;5;n (256 colours) or 38;2;r;g;b (true colour)
            kind = codes[i + 1] if i + 1 < len(codes) else None
            size = 2 if kind == 5 else 4 if kind == 2 else 0
            if not size or i + 1 + size > len(codes):
                break  # malformed: the rest of the sequence means nothing
            colour = ";".join(str(c) for c in codes[i: i + 1 + size])
            if code == 38:
                fg = colour
            else:
                bg = colour
            i += size
        i += 1
    return Style(tuple(sorted(attrs)), fg, bg)


class Line(NamedTuple):
    """One line as the terminal shows it: `text` without any control
    character; `ansi` the same with its colours (SGR codes), "" when it has none."""

    text: str
    ansi: str = ""


class TerminalLines:
    """One stream's terminal line: feed it text, get back the finished lines.

    `current()` is the line being drawn now (a progress bar between redraws);
    `changed` says whether it changed since `current()` was last read.
    """

    def __init__(self) -> None:
        self._chars: list[str] = []
        self._styles: list[Style] = []
        self._cursor = 0
        self._style = PLAIN  # a terminal's pen outlives the line
        self._pending = ""
        self.changed = False

    def feed(self, text: str) -> list[Line]:
        """Interpret `text` (any piece of the stream); the lines it finished."""
        if self._pending:
            text, self._pending = self._pending + text, ""
        done: list[Line] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            start = match.start()
            if start > pos:
                self._write(text[pos:start])
            pos = match.end()
            kind = match.lastgroup
            if kind == "csi":
                self._csi(match.group())
            elif kind == "ctl":
                self._controls(match.group(), done)
            elif kind == "lone":
                rest = len(text) - start
                if _PREFIX.match(text, start) and rest <= MAX_PENDING:
                    self._pending = text[start:]  # the sequence's end is in the next chunk
                    return done
                # else: an ESC that starts nothing a terminal knows: dropped
            # "string" and "esc": titles, hyperlinks, charsets, cursor saves: dropped
        if pos < len(text):
            self._write(text[pos:])
        return done

    def current(self) -> Line:
        """The unfinished line as it shows now ("" when nothing is on it)."""
        self.changed = False
        return self._render()

    def flush(self) -> Line | None:
        """At the stream's end: the unfinished line, if anything is on it."""
        self._pending = ""
        line = self._render()
        self._chars, self._styles, self._cursor = [], [], 0
        self.changed = False
        return line if line.text or line.ansi else None

    # --- the terminal's line -------------------------------------------------

    def _write(self, run: str) -> None:
        cursor = self._cursor
        if cursor >= MAX_COLUMNS:
            return
        run = run[: MAX_COLUMNS - cursor]
        chars, styles = self._chars, self._styles
        if cursor > len(chars):  # the cursor was moved past the end: blanks between
            gap = cursor - len(chars)
            chars.extend(" " * gap)
            styles.extend([PLAIN] * gap)
        end = cursor + len(run)
        chars[cursor:end] = run
        styles[cursor:end] = [self._style] * len(run)
        self._cursor = end
        self.changed = True

    def _controls(self, run: str, done: list[Line]) -> None:
        for char in run:
            if char == "\n":
                done.append(self._render())
                self._chars, self._styles, self._cursor = [], [], 0
                self.changed = True
            elif char == "\r":
                self._cursor = 0
            elif char == "\b":
                self._cursor = max(0, self._cursor - 1)
            elif char == "\t":
                self._cursor = min(MAX_COLUMNS, (self._cursor // TAB + 1) * TAB)
            # bell, form feed, NUL, C1 codes...: nothing a line shows

    def _csi(self, sequence: str) -> None:
        final = sequence[-1]
        params = sequence[2:-1]
        if params[:1] in ("?", ">", "<", "=") or any(" " <= c <= "/" for c in params):
            return  # private modes (cursor shown, bracketed paste...): nothing on the line
        if final == "m":
            self._style = apply_sgr(self._style, params)
            return
        try:
            number = int(params) if params else 0
        except ValueError:
            return
        if final == "K":
            self._erase(number)
        elif final == "C":
            self._cursor = min(MAX_COLUMNS, self._cursor + max(number, 1))
        elif final == "D":
            self._cursor = max(0, self._cursor - max(number, 1))
        elif final == "G":
            self._cursor = min(MAX_COLUMNS, max(number, 1) - 1)
        # cursor up/down, screen erase, scrolling...: a line cannot show them

    def _erase(self, how: int) -> None:
        chars, styles = self._chars, self._styles
        cursor = self._cursor
        if how == 0:  # to the end of the line
            del chars[cursor:], styles[cursor:]
        elif how == 1:  # from its start to the cursor (included)
            end = min(cursor + 1, len(chars))
            chars[:end] = " " * end
            styles[:end] = [PLAIN] * end
        elif how == 2:  # the whole line; the cursor stays where it is
            chars.clear()
            styles.clear()
        else:
            return
        self.changed = True

    def _render(self) -> Line:
        chars, styles = self._chars, self._styles
        end = len(chars)
        while end and chars[end - 1] == " " and not styles[end - 1].shows_blank():
            end -= 1
        text = "".join(chars[:end])
        if not any(styles[i] != PLAIN for i in range(end)):
            return Line(text)
        parts: list[str] = []
        start = 0
        while start < end:
            style = styles[start]
            stop = start + 1
            while stop < end and styles[stop] == style:
                stop += 1
            run = text[start:stop]
            parts.append(f"\x1b[{style.codes()}m{run}\x1b[0m" if style != PLAIN else run)
            start = stop
        return Line(text, "".join(parts))


def render(text: str) -> Line:
    """One recorded line as a terminal shows it (records made before live mode
    interpreted the codes kept Keras's `\\b`s and colours in their text)."""
    lines = TerminalLines()
    lines.feed(text.replace("\n", " "))  # a recorded line has no newline; be safe
    return lines.flush() or Line("")


def has_controls(text: str) -> bool:
    """Whether `text` holds anything `render` would change."""
    return _CONTROL.search(text) is not None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
