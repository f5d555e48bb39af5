"""A layer's weight, gradient and activation histograms: first seen above latest."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gradscope.events import Histogram, LayerHistogram
from gradscope.ui import format as fmt
from gradscope.ui.state import LayerTrack

KINDS = (
    ("weights", "weights", "no trainable weights"),
    ("grads", "gradients", "no gradient (no trainable weights)"),
    ("acts", "activations", "output not measured"),
)
_LABEL, _WHEN, _RANGE = 12, 9, 22


def bars(counts: tuple[int, ...], width: int) -> str:
    """Counts as a row of block characters, each bin stretched to fill `width`."""
    if not counts:
        return ""
    top = max(counts)
    per_bin = max(1, width // len(counts))
    cells = []
    for count in counts:
        if top == 0 or count == 0:
            cell = " "
        else:
            # Any non-zero bin shows at least the lowest bar: a few outliers stay visible.
            cell = fmt.BARS[min(len(fmt.BARS) - 1, max(0, round(count / top * 8) - 1))]
        cells.append(cell * per_bin)
    return "".join(cells)


def value_range(hist: Histogram) -> str:
    if hist.lo == hist.hi:
        return f"all {fmt.number(hist.lo)}"
    return f"{fmt.number(hist.lo)} … {fmt.number(hist.hi)}"


class HistogramPanel(Widget):
    """Per kind, the histogram before the first probe step and after the last."""

    def __init__(self, track: LayerTrack) -> None:
        super().__init__(id="histograms")
        self.track = track
        self.border_title = "Histograms · t steps · c config"

    def render(self) -> Text:
        track = self.track
        shots = [shot for shot in (track.first_histograms, track.latest_histograms) if shot]
        if not shots:
            return Text("no histograms yet (they come before the first probe step and after "
                        "the last)", style="italic")
        width = self.content_region.width
        bar_width = max(8, width - _LABEL - _WHEN - _RANGE - 2)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("".ljust(_LABEL + _WHEN) + "shape (bins from min to max)".ljust(bar_width + 1)
                    + "range\n", style="dim")
        for index, (kind, label, missing) in enumerate(KINDS):
            for row, (phase, step, item) in enumerate(shots):
                hist = _pick(item, kind)
                text.append((label if row == 0 else "").ljust(_LABEL), style="bold")
                text.append(f"{phase} {step}".ljust(_WHEN), style="dim")
                if hist is None:
                    text.append(missing, style="dim italic")
                else:
                    text.append(bars(hist.counts, bar_width).ljust(bar_width) + " ",
                                style="bold" if row else "")
                    text.append(value_range(hist))
                    if hist.nonfinite:
                        text.append(f"  {hist.nonfinite} NaN/Inf", style="bold red")
                last = index == len(KINDS) - 1 and row == len(shots) - 1
                if not last:
                    text.append("\n")
        return text


def _pick(item: LayerHistogram, kind: str) -> Histogram | None:
    hist: Histogram | None = getattr(item, kind)
    return hist
