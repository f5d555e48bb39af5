"""`?`: the keys and what the columns mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

HELP = """\
gradscope: why is my model not learning?

Keys
  q, Ctrl-C   quit (a run still going is stopped)
  Tab         move between the verdicts and the layer table
  ↑ ↓         on the verdicts: select one
  Enter       open or fold the selected verdict (its message, fix, evidence)
  v           every verdict in full, with evidence and gradscope's notes
  Enter       on the table: open the layer under the cursor; Esc goes back
              on a layer: t its steps, h its histograms, c its config
  ↑ ↓ PgUp PgDn Home End: move in the layer table
  s           sort layers: forward order, grad norm, update ratio, dead %,
              saturated %, verdict severity, name, type, params, trainable
  S           reverse the sort
  f           only the layers a verdict names
  /           filter layers by name; Enter keeps the filter, Esc clears it
  e           export the table as shown: gradscope-export-<time>.csv
  p           pause the view of a live run; events keep arriving, shown on resume
  l           the run's output (prints, progress bars, a traceback); Esc back;
              there, t shows TensorFlow's start-up lines
  ?           this help; Esc closes it

Mouse
  click a layer to select it, double-click to open it; click a column's
  header to sort by it (again: reversed); click a verdict to open or fold
  it; the wheel scrolls the verdicts, the table, the log and this help;
  a fix's code wider than the screen scrolls sideways (Shift+wheel)

Status line: what the run does now (loading TensorFlow, static checks, probe
  step i/N, experiment i/N, training: epoch e/E) and, at the end, the outcome
  in words with the exit code.

Verdicts: the most likely root cause first (the headline).
  ● error   ▲ warning   · info; a layer a verdict names has its mark

Layer table (latest measured figures; the title says from which step)
  T           ✓ trainable, ✗ frozen, – no weights
  grad norm   L2 norm of the layer's gradient
  history     grad norm, last steps, on one log scale shared by all rows
  log upd     log10(|update| / |weights|) per step: about -3 is healthy,
              below -6 barely learns, above -1 is unstable, -∞ no update
  dead        units that output 0 for every sample (ReLU-like layers)
  sat         units stuck at their activation's limits (sigmoid, tanh)
  –           does not apply to this layer
"""


class HelpScreen(ModalScreen[None]):
    """Keys and column meanings; any of Esc, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP, markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    def action_close(self) -> None:
        self.dismiss()
