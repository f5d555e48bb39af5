"""Verdicts, most likely root cause first, coloured by severity through CSS classes."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from gradscope.events import Note
from gradscope.sinks.summary import nothing_found
from gradscope.verdicts import Verdict

SEVERITY_MARKS = {"error": "●", "warning": "▲", "info": "·"}


def _evidence(verdict: Verdict) -> str:
    return ", ".join(f"{key}={value}" for key, value in verdict.evidence.items())


class VerdictItem(Vertical):
    """One verdict: its title (severity, ID, subject), message, fix and evidence, or,
    folded, one line of title and message (which parts show is up to the CSS)."""

    def __init__(self, verdict: Verdict, *, headline: bool = False) -> None:
        classes = f"verdict -{verdict.severity}" + (" -headline" if headline else "")
        super().__init__(classes=classes)
        self.verdict = verdict

    def compose(self) -> ComposeResult:
        v = self.verdict
        mark = SEVERITY_MARKS.get(v.severity, " ")
        cause = "  (most likely cause)" if self.has_class("-headline") else ""
        title = f"{mark} {v.severity} {v.check} · {v.subject}"
        yield Static(title + cause, markup=False, classes="verdict-title")
        yield Static(f"{title}: {v.message}", markup=False, classes="verdict-line")
        yield Static(v.message, markup=False, classes="verdict-message")
        if v.fix:
            yield Static(f"fix: {v.fix}", markup=False, classes="verdict-fix")
        if v.evidence:
            yield Static(f"evidence: {_evidence(v)}", markup=False, classes="verdict-evidence")


class VerdictPanel(VerticalScroll):
    """Ranked verdicts; the first is the headline. `-folded`, the others take a line
    each; `-unfolded` shows every fix,
    the evidence and gradscope's notes."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: tuple[tuple[Verdict, ...], int, bool] | None = None
        self.border_title = "Verdicts"

    def update_from(self, ranked: Sequence[Verdict], notes: Sequence[Note], finished: bool,
                    *, headline: bool = True, empty: str | None = None) -> None:
        """Show `ranked` (the first as the run's headline cause when `headline`)."""
        key = (tuple(ranked), len(notes), finished)
        if key == self._shown:
            return
        self._shown = key
        self.border_title = f"Verdicts ({len(ranked)}" + (
            ", most likely cause first)" if headline and ranked else ")"
        )
        self.set_class(bool(ranked), "-has-verdicts")
        widgets: list[Static | VerdictItem] = [
            VerdictItem(verdict, headline=headline and index == 0) for index, verdict in enumerate(ranked)
        ]
        if not ranked:
            empty = empty or (nothing_found(notes) if finished else "no verdicts yet")
            widgets.append(Static(empty, classes="verdict-empty"))
        widgets.extend(
            Static(f"note: {note.text}", markup=False, classes=f"note -{note.level}")
            for note in notes
        )
        with self.app.batch_update():
            self.remove_children()
            self.mount_all(widgets)

    def titles(self) -> list[str]:
        """The verdict lines as shown, in order (for tests and the help text)."""
        return [str(item.query_one(".verdict-title", Static).content)
                for item in self.query(VerdictItem)]
