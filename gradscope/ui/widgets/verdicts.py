"""Verdicts, most likely root cause first, coloured by severity through CSS classes.

The overview shows the headline (the most likely cause) whole: its title, its
message wrapped, its fix (prose wrapped, code lines never wrapped: they scroll
sideways). Every other verdict is one line, cut with an ellipsis; Enter (or a
click) on the selected one opens it with its fix and evidence, `v` opens them
all. A layer's screen shows its verdicts whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from gradscope.events import Note
from gradscope.report import nothing_found
from gradscope.ui import format as fmt
from gradscope.verdicts import Verdict

SEVERITY_MARKS = {"error": "●", "warning": "▲", "info": "·"}
PLACEHOLDER = "diagnosing… the most likely cause will show here"
MORE = "▼ more below"


def evidence_value(value: Any) -> str:
    """An evidence value as shown: floats with 3 significant digits (5.87e-07)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return fmt.number(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(
            repr(item) if isinstance(item, str) else evidence_value(item) for item in value
        ) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {evidence_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def evidence_text(verdict: Verdict) -> str:
    return ", ".join(f"{key}={evidence_value(value)}" for key, value in verdict.evidence.items())


def fix_blocks(fix: str) -> list[tuple[str, str]]:
    """The fix as ("prose", text) and ("code", text) blocks, in order.

    Prose (a line that starts at the margin) is wrapped to the panel's width;
    code (an indented line, as fixes write their examples) keeps its lines
    whole, so it reads, and pastes, as it is."""
    blocks: list[tuple[str, list[str]]] = []
    for line in fix.splitlines():
        kind = "code" if line[:1].isspace() else "prose"
        if not line.strip():
            kind = blocks[-1][0] if blocks else "prose"
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    return [(kind, "\n".join(lines).rstrip("\n")) for kind, lines in blocks]


def verdict_key(verdict: Verdict) -> tuple[str, str, str]:
    return (verdict.check, verdict.subject, verdict.message)


class FixCode(ScrollableContainer, can_focus=False):
    """Code lines of a fix, unwrapped: wider than the panel, they scroll sideways."""


class VerdictItem(Vertical):
    """One verdict: a one-line summary (folded) or its title, message, fix and
    evidence (`-full`); the headline shows title, message and fix. Which parts
    show is up to the CSS classes the panel sets."""

    def __init__(self, verdict: Verdict, *, headline: bool = False, full: bool = False) -> None:
        classes = f"verdict -{verdict.severity}" + (" -headline" if headline else "")
        super().__init__(classes=classes + (" -full" if full else ""))
        self.verdict = verdict

    def compose(self) -> ComposeResult:
        v = self.verdict
        mark = SEVERITY_MARKS.get(v.severity, " ")
        cause = "  (most likely cause)" if self.has_class("-headline") else ""
        title = f"{mark} {v.severity} {v.check} · {v.subject}"
        yield Static(title + cause, markup=False, classes="verdict-title")
        yield Static(f"{title}: {v.message}", markup=False, classes="verdict-line")
        yield Static(v.message, markup=False, classes="verdict-message")
        first = True
        for kind, text in fix_blocks(v.fix):
            if kind == "code":
                with FixCode(classes="verdict-code"):
                    yield Static(text, markup=False, expand=False, shrink=False)
            else:
                yield Static(("fix: " if first else "") + text, markup=False, classes="verdict-fix")
            first = False
        if v.evidence:
            yield Static(f"evidence: {evidence_text(v)}", markup=False,
                         classes="verdict-evidence")

    def on_click(self, event: events.Click) -> None:
        panel = next((a for a in self.ancestors if isinstance(a, VerdictPanel)), None)
        if panel is not None:
            panel.clicked(self)


class VerdictPanel(VerticalScroll):
    """Ranked verdicts; the first is the headline, shown whole. The others take a
    line each; focused (Tab), ↑/↓ select one and Enter opens or folds it.
    `-unfolded` (the overview's `v`) shows every verdict whole with its evidence,
    and gradscope's notes. With `headline=False` (a layer's screen) every
    verdict shows whole."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle_selected", "Open/fold"),
        Binding("up", "select(-1)", "Up", show=False),
        Binding("down", "select(1)", "Down", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: tuple[object, ...] | None = None
        self.border_title = "Verdicts"
        self._title = "Verdicts"
        self.selected = 0
        self.expanded: set[tuple[str, str, str]] = set()
        self.unfolded = bool(classes and "-unfolded" in classes.split())
        self._all_full = False

    # --- what is shown -------------------------------------------------------------

    def update_from(self, ranked: Sequence[Verdict], notes: Sequence[Note], finished: bool,
                    *, headline: bool = True, empty: str | None = None,
                    error: str = "", traceback: str = "") -> None:
        """Show `ranked` (the first as the run's headline cause when `headline`).

        `error` (the exception's last line) with no verdict: the script raised
        before anything was diagnosed; that is what shows, as an error, with
        its traceback."""
        key = (tuple(ranked), len(notes), finished, headline, empty, error, traceback)
        if key == self._shown:
            return
        self._shown = key
        self._all_full = not headline
        widgets: list[Widget] = []
        if error and not ranked:
            self._title = "The script raised before fit(): nothing was diagnosed"
            widgets.append(crash_block(error, traceback))
        else:
            self._title = f"Verdicts ({len(ranked)}" + (
                ", most likely cause first)" if headline and ranked else ")"
            )
            widgets.extend(
                VerdictItem(verdict, headline=headline and index == 0,
                            full=self._full(verdict, headline and index == 0))
                for index, verdict in enumerate(ranked)
            )
        if not widgets:
            if finished:
                widgets.append(Static(empty or nothing_found(notes), markup=False,
                                      classes="verdict-empty -done"))
            else:
                widgets.append(Static(empty or PLACEHOLDER, markup=False,
                                      classes="verdict-empty" + (" -reserved" if headline else "")))
        widgets.extend(
            Static(f"note: {note.text}", markup=False, classes=f"note -{note.level}")
            for note in notes
        )
        self.set_class(bool(ranked), "-has-verdicts")
        self.set_class(bool(error) and not ranked, "-crash")
        # Nothing found: what the experiments measured says why (and fills the room).
        self.set_class(finished and not ranked and not error and headline, "-nothing-found")
        self.selected = min(self.selected, max(0, len(ranked) - 1))
        with self.app.batch_update():
            self.remove_children()
            self.mount_all(widgets)
        self._show_selection()
        self.call_after_refresh(self.update_more_mark)

    def _full(self, verdict: Verdict, is_headline: bool) -> bool:
        if self._all_full or self.unfolded:
            return True
        return verdict_key(verdict) in self.expanded

    def items(self) -> list[VerdictItem]:
        return list(self.query(VerdictItem))

    def titles(self) -> list[str]:
        """The verdict lines as shown, in order (for tests and the help text)."""
        return [str(item.query_one(".verdict-title", Static).content) for item in self.items()]

    def set_unfolded(self, unfolded: bool) -> None:
        """`v`: every verdict whole, with its evidence and the notes (or back)."""
        self.unfolded = unfolded
        self.set_class(unfolded, "-unfolded")
        self.set_class(not unfolded, "-folded")
        self._restyle()

    def _restyle(self) -> None:
        for item in self.items():
            item.set_class(self._full(item.verdict, item.has_class("-headline")), "-full")
        self.call_after_refresh(self.update_more_mark)

    # --- selection -----------------------------------------------------------------

    def action_select(self, delta: int) -> None:
        items = self.items()
        if not items or self._all_full:
            # Nothing to select (a layer's screen shows every verdict whole): scroll.
            self.scroll_relative(y=delta, animate=False)
            return
        self.selected = max(0, min(len(items) - 1, self.selected + delta))
        self._show_selection(scroll=True)

    def action_toggle_selected(self) -> None:
        items = self.items()
        if not items:
            return
        self.selected = min(self.selected, len(items) - 1)
        self.toggle(items[self.selected])

    def toggle(self, item: VerdictItem) -> None:
        """Open a verdict (its message, fix and evidence) or fold it back to one line."""
        key = verdict_key(item.verdict)
        if key in self.expanded:
            self.expanded.discard(key)
        else:
            self.expanded.add(key)
        self._restyle()
        self.call_after_refresh(self.scroll_to_widget, item, animate=False)

    def clicked(self, item: VerdictItem) -> None:
        items = self.items()
        if item in items:
            self.selected = items.index(item)
            self._show_selection()
            self.toggle(item)

    def _show_selection(self, scroll: bool = False) -> None:
        for index, item in enumerate(self.items()):
            item.set_class(index == self.selected, "-selected")
            if scroll and index == self.selected:
                self.scroll_to_widget(item, animate=False)

    # --- "there is more" -------------------------------------------------------------

    def update_more_mark(self) -> None:
        """The title says when part of the panel is out of sight below."""
        more = self.max_scroll_y > 0 and self.scroll_y < self.max_scroll_y
        self.set_class(more, "-more")
        self.border_title = f"{self._title} {MORE}" if more else self._title

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.update_more_mark()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self.update_more_mark)


def crash_block(error: str, traceback: str) -> Vertical:
    """The script's exception, where the verdicts would be: never an empty list
    that reads as "no problem found"."""
    tail = traceback.rstrip("\n").splitlines()
    widgets: list[Widget] = [
        Static("● the script raised before fit()", markup=False, classes="verdict-title"),
        Static(error, markup=False, classes="crash-error"),
        Static("l shows the traceback", markup=False, classes="crash-hint"),
    ]
    if tail:
        widgets.append(FixCode(Static("\n".join(tail), markup=False, expand=False,
                                      shrink=False), classes="crash-traceback"))
    return Vertical(*widgets, classes="verdict -error -full crash")
