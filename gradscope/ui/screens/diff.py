"""`gradscope diff`'s screen: the outcome line, the verdict changes, the layer
comparison table and both loss curves on one chart.

It draws a `gradscope.compare.Comparison` (the same one `diff --text` prints)
and nothing else: no TensorFlow, no events.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static

from gradscope import compare
from gradscope.compare import AFTER_GLYPH, BEFORE_GLYPH, Comparison, VerdictChange
from gradscope.ui import format as fmt

# How each part is coloured (Rich styles: the chart and the table draw Text).
STATUS_MARKS = {"gone": "− gone  ", "new": "+ new   ", "stayed": "= stayed"}
BEFORE_STYLE, AFTER_STYLE, BOTH_STYLE = "#e5a04f", "bold #4fb8e5", "bold #b58be5"
SORT_LABELS = {"forward": "forward order", "change": "biggest gradient change first"}

DIFF_HELP = """\
gradscope diff: what changed from BEFORE to AFTER

Keys
  q, Ctrl-C   quit
  ↑ ↓ PgUp PgDn Home End: move in the layer table
  Tab         move between the layer table and the verdicts
  s           sort layers: forward order / biggest gradient change first
  v           verdicts in full (wrapped) / one line each
  ?           this help; Esc closes it

Top line: fixed (problems went away, none left), better (some left),
  worse (new problems), mixed (both), changed (only info verdicts),
  no change. Errors and warnings decide it; info verdicts do not.

Verdicts, matched by check ID and subject:
  − gone      in BEFORE only: it went away
  + new       in AFTER only
  = stayed    in both ("was error": its severity changed)

Layer table, layers matched by name (a layer one run lacks: absent)
  grad        gradient norm, median over the probe steps
  upd         update ratio |update| / |weights| per step, same median
  change      AFTER / BEFORE: ×N grew N-fold, ÷N shrank N-fold,
              from 0 / to 0, nan where a run measured NaN, – not measured
  *           the layers whose gradient changed most (×2 or ÷2 at least)

Loss chart: both runs' probe and training losses on one scale
  (log when they span decades), step i of both in the same column:
  ○ BEFORE   ● AFTER   ◉ both   ! NaN or inf
"""


class DiffHelpScreen(ModalScreen[None]):
    """Keys and what the columns mean; Esc, ? or q closes it."""

    DEFAULT_CSS = """
    DiffHelpScreen { align: center middle; }
    #diff-help {
        width: 80;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="diff-help"):
            yield Static(DIFF_HELP, markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#diff-help").focus()

    def action_close(self) -> None:
        self.dismiss()


def verdict_line(change: VerdictChange) -> Text:
    """'− gone   error vanishing-gradient (hidden_0): message'."""
    verdict = change.verdict
    text = Text(STATUS_MARKS[change.status] + " ", style="bold")
    text.append(f"{verdict.severity} {verdict.check}", style="bold")
    text.append(f" ({verdict.subject}): {verdict.message}")
    note = change.severity_change()
    if note:
        text.append(f" ({note})", style="italic")
    return text


class VerdictChanges(VerticalScroll, can_focus=True):
    """Gone, new, stayed: one line each (v: in full)."""

    DEFAULT_CSS = """
    VerdictChanges {
        height: auto;
        max-height: 30%;
        border-top: solid $primary;
        border-title-color: $text;
        border-title-style: bold;
        scrollbar-size-vertical: 1;
    }
    VerdictChanges:focus { border-top: heavy $accent; }
    VerdictChanges > Static {
        height: auto;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    VerdictChanges.-unfolded { max-height: 60%; }
    VerdictChanges.-unfolded > Static { text-wrap: wrap; }
    VerdictChanges > .-gone { color: $text-success; }
    VerdictChanges > .-new { color: $text-error; }
    VerdictChanges > .-stayed { color: $text-warning; }
    VerdictChanges > .-none { color: $text-muted; }
    """

    def __init__(self, comparison: Comparison, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.comparison = comparison
        counts = [f"{len(comparison.with_status(s))} {s}" for s in compare.STATUSES]
        self.border_title = "Verdicts: " + ", ".join(counts)

    def compose(self) -> ComposeResult:
        if not self.comparison.verdicts:
            yield Static("no verdicts in either run", classes="-none")
        for change in self.comparison.verdicts:
            yield Static(verdict_line(change), classes=f"-{change.status}")


def legend(comparison: Comparison) -> str:
    """'Loss · ○ BEFORE 2.71 → 2.51 · ● AFTER 2.56 → 2.48' (probe and training steps)."""
    parts = ["Loss"]
    for glyph, label, report in ((BEFORE_GLYPH, comparison.before_label, comparison.before),
                                 (AFTER_GLYPH, comparison.after_label, comparison.after)):
        values = [v for v in compare.losses(report) if v is not None]
        span = (f"{fmt.number(values[0])} → {fmt.number(values[-1])}" if values
                else "no steps")
        parts.append(f"{glyph} {label} {span}")
    return " · ".join(parts)


class DiffLossChart(Widget):
    """Both runs' losses on one chart (compare.loss_chart), each in its colour."""

    DEFAULT_CSS = """
    DiffLossChart {
        height: 30%;
        min-height: 5;
        max-height: 14;
        border-top: solid $primary;
        border-title-color: $text;
        border-title-style: bold;
    }
    """

    def __init__(self, comparison: Comparison, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.comparison = comparison
        self.border_title = legend(comparison)

    OWNER_STYLES: ClassVar[dict[str, str]] = {
        "before": BEFORE_STYLE, "after": AFTER_STYLE, "both": BOTH_STYLE, "nonfinite": "bold red",
    }

    def render(self) -> Text:
        width, height = self.content_region.width, self.content_region.height
        drawn = compare.loss_grid(self.comparison, max(4, width), max(2, height))
        if isinstance(drawn, str):
            return Text(drawn, style="dim")
        labels, grid = drawn
        text = Text(no_wrap=True)
        for number, (label, row) in enumerate(zip(labels, grid, strict=True)):
            if number:
                text.append("\n")
            text.append(f"{label} {'┤' if label.strip() else '│'}", style="dim")
            for cell in row:
                style = self.OWNER_STYLES.get(cell.owner, "")
                if cell.char == compare.LINE_GLYPH:
                    style += " dim"
                text.append(cell.char, style=style.strip())
        return text


COLUMN_KEYS = ("mark", "layer", "grad_before", "grad_after", "grad_change",
               "update_before", "update_after", "update_change", "type")
# Short, so the table fits 80 columns: the title says B is BEFORE and A is AFTER.
COLUMN_LABELS = ("", "layer", "grad B", "grad A", "change", "upd B", "upd A", "change", "type")
NUMERIC = frozenset(range(2, 8))


class DiffScreen(Screen[None]):
    """The comparison on one screen."""

    DEFAULT_CSS = """
    DiffScreen { overflow: hidden; }
    #diff-headline {
        height: auto;
        max-height: 2;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    #diff-headline.-fixed, #diff-headline.-better { background: $success-muted; }
    #diff-headline.-worse { background: $error-muted; }
    #diff-headline.-mixed, #diff-headline.-changed { background: $warning-muted; }
    #diff-runs {
        height: 2;
        padding: 0 1;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #diff-layer-summary {
        height: auto;
        max-height: 4;
        padding: 0 1;
        border-top: solid $primary;
        border-title-color: $text;
        border-title-style: bold;
    }
    #diff-layers { height: 1fr; min-height: 3; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("v", "toggle_verdicts", "Verdicts"),
    ]

    def __init__(self, comparison: Comparison, before_path: str, after_path: str) -> None:
        super().__init__()
        self.comparison = comparison
        self.before_path, self.after_path = before_path, after_path
        self.sort = "forward"

    def compose(self) -> ComposeResult:
        comparison = self.comparison
        outcome = comparison.outcome().replace(" ", "-")
        yield Static(comparison.headline(), id="diff-headline", classes=f"-{outcome}",
                     markup=False)
        runs = "\n".join([comparison.run_line("before", self.before_path),
                          comparison.run_line("after", self.after_path)])
        yield Static(runs, id="diff-runs", markup=False)
        yield VerdictChanges(comparison, id="diff-verdicts")
        yield Static(self.layer_summary(), id="diff-layer-summary", markup=False)
        yield DataTable(id="diff-layers", cursor_type="row")
        yield DiffLossChart(comparison, id="diff-loss")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in zip(COLUMN_KEYS, COLUMN_LABELS, strict=True):
            table.add_column(label, key=key)
        self.fill_table()
        self.query_one("#diff-layer-summary").border_title = self.layers_title()
        table.focus()

    def layers_title(self) -> str:
        comparison = self.comparison
        return (f"Layers · B {comparison.before_label}, A {comparison.after_label} · "
                f"{SORT_LABELS[self.sort]}")

    def layer_summary(self) -> str:
        lines = [self.comparison.most_changed_text()]
        mismatch = self.comparison.layer_mismatch()
        if mismatch:
            lines.append(mismatch)
        return "\n".join(lines)

    def fill_table(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        comparison = self.comparison
        marked = {layer.name for layer in comparison.most_changed()}
        layers = comparison.layers if self.sort == "forward" else comparison.by_change()
        for layer in layers:
            mark, name, layer_type, *figures = compare.table_cells(layer, layer.name in marked)
            cells = (mark, name, *figures, layer_type)
            style = "bold" if layer.name in marked else ("dim" if layer.where != "both" else "")
            row = [Text(cell, style=style, justify="right" if index in NUMERIC else "left")
                   for index, cell in enumerate(cells)]
            table.add_row(*row, key=layer.name)

    def table_names(self) -> list[str]:
        """The layer names in the table's order (tests, and whoever reads the screen)."""
        table = self.query_one(DataTable)
        return [str(row.key.value) for row in table.ordered_rows]

    def action_cycle_sort(self) -> None:
        self.sort = "change" if self.sort == "forward" else "forward"
        self.fill_table()
        self.query_one("#diff-layer-summary").border_title = self.layers_title()

    def action_toggle_verdicts(self) -> None:
        panel = self.query_one(VerdictChanges)
        panel.toggle_class("-unfolded")
        for line in panel.query(Static):
            line.refresh(layout=True)
