"""The UI's own views of the run: the layer table's sort orders, filter, shared
scale, where its figures come from, and its export.

The run itself is `gradscope.report.Report` (one fold shared by every front end);
`RunState` is its name on the UI side.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import NamedTuple

from gradscope.report import METRICS, LayerTrack, LossPoint, Report, named_layers
from gradscope.sinks.layer_csv import COLUMNS, format_cell
from gradscope.verdicts import SEVERITY_ORDER

RunState = Report

__all__ = ["EXPORT_COLUMNS", "METRICS", "SORTS", "SORT_LABELS", "FigureSource", "LayerTrack",
           "LossPoint", "RunState", "TableFigures", "export_csv", "has_weights", "named_layers",
           "ordered_layers", "sort_label"]

# The table's sort orders, in the order `s` cycles through them: the figures
# that say what is wrong first, then the verdicts' marks, then the description.
SORTS = ("forward", "grad_norm", "update_ratio", "dead", "saturated", "flag", "name", "type",
         "params", "trainable")
SORT_LABELS = {
    "forward": "forward order",
    "grad_norm": "grad norm",
    "update_ratio": "update ratio",
    "dead": "dead %",
    "saturated": "saturated %",
    "flag": "verdict severity",
    "name": "name",
    "type": "type",
    "params": "params",
    "trainable": "trainable",
}
# Sorts whose first (not reversed) order is largest first: the figures (a NaN
# always first: it is the news), the worst verdict, the biggest layer.
# Name and type sort A to Z, trainable frozen first, forward in forward order.
DESCENDING = frozenset({"grad_norm", "update_ratio", "dead", "saturated", "flag", "params"})
# The report's metric each figure sort reads.
SORT_METRICS = {"grad_norm": "grad_norm", "update_ratio": "update_ratio",
                "dead": "act_dead_frac", "saturated": "act_saturated_frac"}


def has_weights(track: LayerTrack) -> bool:
    """Whether "trainable" means anything for the layer: Flatten, Dropout,
    MaxPooling... have no weights, so they are neither trainable nor frozen."""
    return track.param_count > 0


def _sort_value(sort: str) -> Callable[[LayerTrack], float | str | None]:
    """The value a sort compares (None: does not apply, always last)."""
    metric = SORT_METRICS.get(sort)
    if metric is not None:
        return lambda track: track.value(metric)
    if sort == "name":
        return lambda track: track.name.lower()
    if sort == "type":
        return lambda track: track.layer_type.lower()
    if sort == "params":
        return lambda track: float(track.param_count)
    if sort == "trainable":  # frozen (0) before trainable (1); no weights: does not apply
        return lambda track: float(track.trainable) if has_weights(track) else None
    raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(SORTS)}")


def _flag_value(flags: dict[str, str]) -> Callable[[LayerTrack], float | str | None]:
    # error 3, warning 2, info 1: largest first is worst first.
    def value(track: LayerTrack) -> float | str | None:
        flag = flags.get(track.name)
        return None if flag is None else float(3 - SEVERITY_ORDER.get(flag, 2))

    return value


def sort_label(sort: str, reverse: bool = False) -> str:
    """What the table's title says of its order: `grad norm ▼` (largest first),
    `name ▲` (A to Z), `forward order` / `backward order`."""
    if sort == "forward":
        return "backward order" if reverse else "forward order"
    descending = (sort in DESCENDING) != reverse
    return f"{SORT_LABELS[sort]} {'▼' if descending else '▲'}"


def ordered_layers(report: Report, sort: str = "forward", needle: str = "", *,
                   reverse: bool = False, flagged_only: bool = False) -> list[LayerTrack]:
    """The table's rows: layers whose name holds `needle` (and that a verdict
    names, with `flagged_only`), in `sort` order (`reverse`d on demand).

    A NaN comes first and "does not apply" last whatever the direction; ties
    keep the forward order.
    """
    tracks: Iterable[LayerTrack] = report.layers.values()
    if flagged_only:
        flags = report.layer_flags()
        tracks = [t for t in tracks if t.name in flags]
    if needle:
        lowered = needle.lower()
        tracks = [t for t in tracks if lowered in t.name.lower()]
    if sort == "forward":
        ordered = list(tracks)
        if reverse:
            ordered.reverse()
        return ordered
    value = _flag_value(report.layer_flags()) if sort == "flag" else _sort_value(sort)
    news: list[LayerTrack] = []
    absent: list[LayerTrack] = []
    keyed: list[tuple[float | str, LayerTrack]] = []
    for track in tracks:  # forward order: the sort is stable, ties stay in it
        figure = value(track)
        if figure is None:
            absent.append(track)
        elif isinstance(figure, float) and math.isnan(figure):
            news.append(track)
        else:
            keyed.append((figure, track))
    keyed.sort(key=lambda pair: pair[0], reverse=(sort in DESCENDING) != reverse)
    return news + [track for _, track in keyed] + absent


# --- per refresh: the history's shared scale, where each figure comes from ---------------


class FigureSource(NamedTuple):
    phase: str
    step: int

    def __str__(self) -> str:  # the export's `<metric>_from` cell
        return f"{self.phase}:{self.step}"


class _Range:
    """One track's smallest and largest positive finite recent gradient norm, with
    how many samples ago each was recorded (an upper bound: not every sample has
    a gradient), so that one leaving the kept window is noticed."""

    __slots__ = ("high", "high_age", "low", "low_age", "samples")

    def __init__(self) -> None:
        self.samples = 0
        self.low: float | None = None
        self.high: float | None = None
        self.low_age = self.high_age = 0

    def rescan(self, grads: Sequence[float]) -> None:
        self.low = self.high = None
        count = len(grads)
        for index, value in enumerate(grads):
            self.take(value, count - 1 - index)

    def take(self, value: float, age: int) -> None:
        if not 0 < value < math.inf:  # NaN, 0 and inf have no place on a log scale
            return
        if self.low is None or value < self.low or (value == self.low and age < self.low_age):
            self.low, self.low_age = value, age
        if self.high is None or value > self.high or (value == self.high and age < self.high_age):
            self.high, self.high_age = value, age


class _Sources:
    __slots__ = ("at", "samples")

    def __init__(self) -> None:
        self.samples = 0
        self.at: dict[str, tuple[str, int, float]] = {}


_METRIC_COLUMN = {name: index + 2 for index, name in enumerate(METRICS)}
# What the table's columns show, by the metrics they read (the title's wording).
_SHOWN = (("grad norm", ("grad_norm",)), ("log upd", ("update_ratio",)),
          ("dead/sat", ("act_dead_frac", "act_saturated_frac")))
_PHASE_ORDER = {"probe": 0, "train": 1}


class TableFigures:
    """What the table derives from every layer at each refresh, kept per track
    between refreshes so that a refresh reads only the samples that arrived
    since the last one (a 1000-layer model refreshes ten times a second):
    the history column's shared scale and where each figure comes from.

    One per table (tracks are held until the table goes)."""

    def __init__(self) -> None:
        self._ranges: dict[LayerTrack, _Range] = {}
        self._sources: dict[LayerTrack, _Sources] = {}

    def grad_bounds(self, tracks: Iterable[LayerTrack]) -> tuple[float, float] | None:
        """The smallest and largest positive finite gradient norm among the
        tracks' recent ones (`recent_grads`): the history column's shared (log)
        scale, so that rows compare with each other. None when there is none."""
        low: float | None = None
        high: float | None = None
        ranges = self._ranges
        for track in tracks:
            span = ranges.get(track)
            if span is None:
                span = ranges[track] = _Range()
                span.rescan(track.recent_grads)
            elif span.samples != track.samples:
                grads = track.recent_grads
                new = track.samples - span.samples
                span.low_age += new
                span.high_age += new
                if span.low is not None and max(span.low_age, span.high_age) >= len(grads):
                    span.rescan(grads)  # an extreme may have left the window
                else:  # the newest `new` values hold every one that came in
                    for age, value in enumerate(islice(reversed(grads), min(new, len(grads)))):
                        span.take(value, age)
            span.samples = track.samples
            if span.low is not None and (low is None or span.low < low):
                low = span.low
            if span.high is not None and (high is None or span.high > high):
                high = span.high
        return None if low is None or high is None else (low, high)

    def sources(self, track: LayerTrack) -> dict[str, FigureSource]:
        """For each metric the table shows of the layer (`track.value`, its latest
        measured figure), the (phase, step) it was measured at. During the user's
        own training the rows measure weights only, so a layer's gradient and
        activation figures come from the probe's last step.

        Only the samples that arrived since the last call are read (newest first,
        stopping once every metric the layer ever had is found). A figure whose
        step fell out of the kept history is left out.
        """
        found = self._sources.get(track)
        if found is None:
            found = self._sources[track] = _Sources()
        new = track.samples - found.samples
        if new > 0:
            wanted = list(track.known)  # the metrics the layer ever had
            for entry in islice(reversed(track.history), min(new, len(track.history))):
                still: list[str] = []
                for name in wanted:
                    figure = entry[_METRIC_COLUMN[name]]
                    if figure is None:
                        still.append(name)
                    else:
                        found.at[name] = (entry[0], entry[1], figure)
                wanted = still
                if not wanted:
                    break
            found.samples = track.samples
        sources: dict[str, FigureSource] = {}
        for name, (phase, step, figure) in found.at.items():
            shown = track.known.get(name)
            # The figure on show is the one found (a sample lost from the history
            # since the last call could have replaced it: then the step is unknown).
            if shown is figure or shown == figure or (
                    shown is not None and math.isnan(shown) and math.isnan(figure)):
                sources[name] = FigureSource(phase, step)
        return sources

    def title(self, tracks: Iterable[LayerTrack], *, epochs: bool = True) -> str:
        """Where the table's figures come from, for its title: `figures: probe
        step 5` when every figure is from one step, else the step most columns
        share first, then the others by column: `figures: probe step 5, log upd:
        epoch 15`. Empty before any figure. `epochs`: training samples count
        epochs (a recording from before the watch), else global steps (`step 1500`)."""
        per_column: dict[str, set[tuple[str, int]]] = {label: set() for label, _ in _SHOWN}
        for track in tracks:
            sample = track.latest
            if sample is None:
                continue
            row, here = sample.row, (sample.phase, sample.step)
            earlier: dict[str, FigureSource] | None = None
            for label, metrics in _SHOWN:
                for metric in metrics:
                    if getattr(row, metric) is not None:  # measured by the latest sample
                        per_column[label].add(here)
                    elif metric in track.known:  # measured before: find when
                        if earlier is None:
                            earlier = self.sources(track)
                        source = earlier.get(metric)
                        if source is not None:
                            per_column[label].add(source)
        groups: dict[str, list[str]] = {}
        for label, seen in per_column.items():
            if seen:
                groups.setdefault(_where(seen, epochs), []).append(label)
        if not groups:
            return ""
        ranked = sorted(groups.items(), key=lambda group: -len(group[1]))  # stable
        first = f"figures: {ranked[0][0]}"
        return ", ".join([first, *(f"{'/'.join(labels)}: {where}" for where, labels in ranked[1:])])


def _where(sources: set[tuple[str, int]], epochs: bool = True) -> str:
    ordered = sorted(sources, key=lambda s: (_PHASE_ORDER.get(s[0], 2), s[0], s[1]))
    (first_phase, first_step), (last_phase, last_step) = ordered[0], ordered[-1]

    def one(phase: str, step: int, steps: bool = False) -> str:
        if phase == "train":
            return f"{'epoch' if epochs else 'step'}{'s' if steps else ''} {step}"
        return f"{phase} step{'s' if steps else ''} {step}"

    if ordered[0] == ordered[-1]:
        return one(first_phase, first_step)
    if first_phase == last_phase:
        return f"{one(first_phase, first_step, steps=True)}–{last_step}"
    return f"{one(first_phase, first_step)} to {one(last_phase, last_step)}"


# --- export -------------------------------------------------------------------------------

_METRIC_COLUMNS = COLUMNS[6:]
# The `--csv` columns, then where each figure comes from (`probe:5`, `train:15`).
EXPORT_COLUMNS = COLUMNS + tuple(f"{name}_from" for name in _METRIC_COLUMNS)


def export_csv(path: str, tracks: Sequence[LayerTrack],
               figures: TableFigures | None = None) -> int:
    """Write the table as shown: one row per track, in the order given, with the
    figures the table shows (each metric's latest measured value) under the
    `--csv` columns, then `<metric>_from` (the `phase:step` each came from).
    `phase` and `step` are the layer's latest sample; a layer never measured has
    them empty, as its figures. Returns the row count; never overwrites a file.
    `figures`: the table's own (it has read the history already).
    """
    known = figures or TableFigures()
    count = 0
    with open(path, "x", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for track in tracks:
            sample = track.latest
            sources = known.sources(track) if sample is not None else {}
            writer.writerow([
                sample.phase if sample else "",
                sample.step if sample else "",
                track.name,
                track.layer_type,
                track.param_count,
                format_cell(track.trainable),
                *(format_cell(track.value(name)) for name in _METRIC_COLUMNS),
                *(str(sources[name]) if name in sources else "" for name in _METRIC_COLUMNS),
            ])
            count += 1
    return count
