"""The loss over the steps seen so far: a sparkline as tall as the widget."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from gradscope.ui import format as fmt
from gradscope.ui.state import LossPoint


def loss_title(points: list[LossPoint]) -> str:
    losses = [p.loss for p in points if p.loss is not None]
    if not losses:
        return "Loss"
    title = f"Loss {fmt.number(losses[0], 4)} → {fmt.number(losses[-1], 4)}"
    finite = [x for x in losses if math.isfinite(x)]
    if finite:
        title += f", min {fmt.number(min(finite), 4)}"
    return f"{title} ({len(points)} steps)"


class LossChart(Widget):
    """StepStats losses, newest on the right (log scale when they span decades)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.points: list[LossPoint] = []
        self.border_title = "Loss"

    def update_from(self, points: list[LossPoint]) -> None:
        self.points = points
        self.border_title = loss_title(points)
        self.refresh()

    def render(self) -> Text:
        width, height = self.content_region.width, self.content_region.height
        if not self.points:
            return Text("no steps yet")
        values = fmt.downsample([p.loss for p in self.points], width)
        return Text("\n".join(fmt.spark(values, width, max(1, height))), no_wrap=True)
