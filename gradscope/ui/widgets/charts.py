"""The overview's bottom row of pictures: the loss chart (left) and the gradient
norm by depth (right), side by side.

Height: it follows the terminal (CSS: 24 % of the screen above the footer, 5 to
9 rows): 5 rows at 24 rows of terminal (a title line and 4 rows of chart: both
charts keep their axes), 6 at 30, 8 at 36, 9 from 39 rows on; the layer table
above keeps the rest.

Width: the two charts split it evenly down to NARROW columns (at 80 columns each
gets 40, enough for an 11-layer depth chart and a 20-point loss). Below NARROW
the depth chart wins and the loss chart is hidden: the depth chart says which
layer does not learn, and the loss's first and last values stay in the header of
any recording (`gradscope view --text`).

`update_from(report, flags)` is called on every refresh of the overview; each
chart redraws only when its data changed.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize

from gradscope.report import Report
from gradscope.ui.widgets.depth_chart import DepthChart
from gradscope.ui.widgets.loss_chart import LossChart

NARROW = 60  # columns under which only the depth chart shows


class ChartsRow(Horizontal):
    """The charts under the layer table; `update_from` redraws what changed."""

    DEFAULT_CSS = """
    ChartsRow { height: 24%; min-height: 5; max-height: 9; }
    ChartsRow > LossChart { width: 1fr; }
    ChartsRow > DepthChart { width: 1fr; margin-left: 1; }
    ChartsRow.-narrow > LossChart { display: none; }
    ChartsRow.-narrow > DepthChart { margin-left: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._seen: object = None

    def compose(self) -> ComposeResult:
        yield LossChart(id="loss")
        yield DepthChart(id="depth")

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW, "-narrow")

    def update_from(self, report: Report, flags: Mapping[str, str]) -> None:
        legacy = report.legacy_training()
        key = (report.loss_count(), report.losses[-1] if report.losses else None, legacy,
               len(report.epochs))
        if key != self._seen:
            self._seen = key
            # The whole run, each phase thinned (a bounded cost for any training's
            # length); a recording from before the watch counts its training in epochs.
            self.query_one(LossChart).update_from(
                report.loss_overview(), unit="epoch" if legacy else "step",
                epochs=len(report.epochs) or None)
        self.query_one(DepthChart).update_from(report, flags)
