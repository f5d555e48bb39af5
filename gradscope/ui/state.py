"""The UI's own views of the run: the layer table's sort orders, filter and export.

The run itself is `gradscope.report.Report` (one fold shared by every front end);
`RunState` is its name on the UI side.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence

from gradscope.report import METRICS, LayerTrack, LossPoint, Report, named_layers
from gradscope.sinks.layer_csv import COLUMNS, format_cell

RunState = Report

__all__ = ["METRICS", "SORTS", "SORT_LABELS", "LayerTrack", "LossPoint", "RunState",
           "export_csv", "named_layers", "ordered_layers"]

# The table's sort orders, in the order `s` cycles through them.
SORTS = ("forward", "grad_norm", "update_ratio", "dead")
SORT_LABELS = {
    "forward": "forward order",
    "grad_norm": "grad norm ↓",
    "update_ratio": "update ratio ↓",
    "dead": "dead % ↓",
}
_SORT_FIELDS = {"grad_norm": "grad_norm", "update_ratio": "update_ratio", "dead": "act_dead_frac"}


def ordered_layers(report: Report, sort: str = "forward", needle: str = "") -> list[LayerTrack]:
    """The table's rows: layers whose name holds `needle`, in `sort` order."""
    tracks: Iterable[LayerTrack] = report.layers.values()
    if needle:
        lowered = needle.lower()
        tracks = [t for t in tracks if lowered in t.name.lower()]
    if sort == "forward":
        return list(tracks)
    name = _SORT_FIELDS[sort]

    def key(track: LayerTrack) -> tuple[int, float, int]:
        value = track.value(name)
        if value is None:
            return (2, 0.0, track.index)
        if math.isnan(value):
            return (0, 0.0, track.index)  # a NaN is the news: on top
        return (1, -value, track.index)

    return sorted(tracks, key=key)


def export_csv(path: str, tracks: Sequence[LayerTrack]) -> int:
    """Write each track's latest sample with the `--csv` columns; return the row count.

    Layers never measured (reshaping layers have no statistics) have no row.
    """
    count = 0
    with open(path, "x", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for track in tracks:
            sample = track.latest
            if sample is None:
                continue
            row = sample.row
            writer.writerow([
                sample.phase,
                sample.step,
                row.layer,
                row.layer_type,
                row.param_count,
                format_cell(row.trainable),
                *(format_cell(getattr(row, name)) for name in COLUMNS[6:]),
            ])
            count += 1
    return count
