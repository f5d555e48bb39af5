"""The overview's bottom row of pictures: the loss chart (and, beside it, what
else shows the run at a glance)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from gradscope.report import Report
from gradscope.ui.widgets.loss_chart import LossChart


class ChartsRow(Horizontal):
    """The charts under the layer table; `update_from` redraws what changed."""

    DEFAULT_CSS = """
    ChartsRow { height: 3; }
    ChartsRow > LossChart { width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._seen: object = None

    def compose(self) -> ComposeResult:
        yield LossChart(id="loss")

    def update_from(self, report: Report, flags: dict[str, str]) -> None:
        key = (len(report.losses), report.losses[-1] if report.losses else None)
        if key != self._seen:
            self._seen = key
            self.query_one(LossChart).update_from(list(report.losses))
