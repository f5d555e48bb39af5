"""One layer in depth: what it is, what gradscope says about it, every figure per step."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, DataTable, Footer, Static

from gradscope.events import policy_compute_dtype
from gradscope.ui import format as fmt
from gradscope.ui.state import METRICS, LayerTrack, RunState
from gradscope.ui.thresholds import severity
from gradscope.ui.widgets.histograms import HistogramPanel
from gradscope.ui.widgets.verdicts import VerdictPanel

# (label, short label for the steps table, LayerRow field, how it is shown)
SERIES = (
    ("grad norm", "grad", "grad_norm", fmt.number),
    ("weight norm", "weight", "weight_norm", fmt.number),
    ("log10 update", "log upd", "update_ratio", fmt.log10),
    ("act mean", "mean", "act_mean", fmt.number),
    ("act std", "std", "act_std", fmt.number),
    ("dead", "dead", "act_dead_frac", fmt.percent),
    ("saturated", "sat", "act_saturated_frac", fmt.percent),
)
_LABEL, _VALUE = 13, 9


def layer_title(track: LayerTrack) -> str:
    if track.param_count == 0:
        weights = "no weights"  # nothing to train: not "frozen"
    else:
        weights = "trainable" if track.trainable else "frozen (not trainable)"
    parts = [track.name, track.layer_type, f"{fmt.count(track.param_count)} params", weights]
    if track.activation:
        parts.append(f"activation {track.activation}")
    if track.output_shape:
        parts.append(f"output {track.output_shape}")
    dtype = policy_compute_dtype(track.config.get("dtype"))  # the layer's dtype policy
    if dtype:
        parts.append(f"computes in {dtype}")
    return " · ".join(parts)


# Each metric's scale, shared by every layer so one layer's line compares with
# the others': log10 for norms and update ratios (they span decades), linear for
# activation figures, 0..1 for shares.
LOG_METRICS = frozenset({"grad_norm", "weight_norm", "update_ratio"})
SCAN_EVERY = 1.0  # seconds between two scans of every layer's history for the shared scales
FIXED_BOUNDS = {"act_dead_frac": (0.0, 1.0), "act_saturated_frac": (0.0, 1.0)}


def kept_values(track: LayerTrack, metric: str) -> Iterable[float | None]:
    """Every value of `metric` the track keeps: its recent history, and the
    whole run's thinned overview once the history no longer holds every sample."""
    if track.samples <= len(track.history):
        return track.series(metric)
    return chain(track.series(metric), track.whole(metric))


def metric_scale(layers: Iterable[LayerTrack], metric: str) -> tuple[tuple[float, float] | None, bool]:
    """(bounds, log) of `metric` over every kept step of every layer (the recent
    history and the whole run's overview): the shared scale."""
    log = metric in LOG_METRICS
    if metric in FIXED_BOUNDS:
        return FIXED_BOUNDS[metric], False
    values = chain.from_iterable(kept_values(track, metric) for track in layers)
    return fmt.shared_bounds(values, log=log), log


def where(phase: str, step: int, epochs: bool, plural: bool = False) -> str:
    """A sample's place in the run: `probe step 5`, `step 1500`, or `epoch 15` in
    a recording from before the watch (its training samples came one per epoch)."""
    if phase == "probe":
        word = "probe step"
    elif phase == "train":
        word = "epoch" if epochs else "step"
    else:
        word = phase
    return f"{word}{'s' if plural else ''} {step}"


def span_texts(track: LayerTrack, epochs: bool = False) -> list[str]:
    """What the lines span, longest first (the header takes the first that fits):
    `probe step 1 → step 3000, 230 samples`, then without the count."""
    steps = track.whole_steps()
    if not steps:
        return ["no samples yet"]
    (first_phase, first_step), (last_phase, last_step) = steps[0], steps[-1]
    if len(steps) == 1:
        span = where(first_phase, first_step, epochs)
    elif first_phase == last_phase:
        span = f"{where(first_phase, first_step, epochs, plural=True)}–{last_step}"
    else:
        span = f"{where(first_phase, first_step, epochs)} → {where(last_phase, last_step, epochs)}"
    return [f"{span}, {len(steps)} sample{'s' if len(steps) != 1 else ''}", span]


def _finite(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


class SeriesPanel(Widget):
    """One line per metric: its sparkline over the kept steps on the scale shared
    by all layers, then latest, min, max (coloured by `thresholds.severity`)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"series--error", "series--warning", "series--muted"}
    DEFAULT_CSS = """
    SeriesPanel > .series--error { color: $text-error; text-style: bold; }
    SeriesPanel > .series--warning { color: $text-warning; }
    SeriesPanel > .series--muted { color: $text-muted; }
    """

    def __init__(self, track: LayerTrack, layers: Mapping[str, LayerTrack] | None = None,
                 *, epochs: Callable[[], bool] = lambda: False) -> None:
        super().__init__(id="series")
        self.track = track
        self.tracks = layers if layers is not None else {track.name: track}
        # Whether training samples count epochs (a recording from before the watch).
        self.epochs = epochs
        self.border_title = "Over the whole run · each metric on one scale shared by all layers"
        self._scales: tuple[object, dict[str, tuple[tuple[float, float] | None, bool]]] = (None, {})
        self._scanned = 0.0
        self._rescan_due = False

    def severity_style(self, level: str | None) -> Style | str:
        if level is None:
            return ""
        return self.get_component_rich_style(f"series--{level}", partial=True)

    def scales(self) -> dict[str, tuple[tuple[float, float] | None, bool]]:
        """Each metric's shared (bounds, log), recomputed when any layer's history grows."""
        key = (len(self.tracks), sum(track.samples for track in self.tracks.values()))
        now = time.monotonic()
        # A 1000-layer model's history is 700k figures (~0.1 s to scan): at most
        # once a second while a run streams in; values past a stale bound clamp.
        if self._scales[0] != key:
            if not self._scales[1] or now - self._scanned >= SCAN_EVERY:
                tracks = list(self.tracks.values())
                self._scales = (key, {name: metric_scale(tracks, name) for _, _, name, _ in SERIES})
                self._scanned = now
            elif not self._rescan_due and self.is_mounted:
                # Drawn again once the second is up, should no event come to ask for it.
                self._rescan_due = True
                self.set_timer(SCAN_EVERY - (now - self._scanned), self._rescan)
        return self._scales[1]

    def _rescan(self) -> None:
        self._rescan_due = False
        self.refresh()

    def render(self) -> Text:
        width = self.content_region.width
        spark_width = max(4, width - _LABEL - 3 * (_VALUE + 1) - 1)
        scope = "shared scale" if len(self.tracks) > 1 else "own scale"
        text = Text(no_wrap=True, overflow="ellipsis")
        spans = span_texts(self.track, self.epochs())
        choices = [f"{spans[0]} · {scope}", *spans]
        span = next((choice for choice in choices if len(choice) <= spark_width), spans[-1])
        text.append(
            "metric".ljust(_LABEL)
            + span.ljust(spark_width)[:spark_width]
            + " " + "latest".rjust(_VALUE) + " " + "min".rjust(_VALUE) + " " + "max".rjust(_VALUE),
            style=self.severity_style("muted") if self.is_mounted else "",
        )
        scales = self.scales()
        for label, _, name, show in SERIES:
            # The whole run (thinned evenly once the history no longer holds it),
            # one column per span of samples (their mean, NaN kept): its start
            # stays on the left however long the training.
            values = self.track.whole(name)
            finite = _finite(list(kept_values(self.track, name)))
            low, high = (min(finite), max(finite)) if finite else (None, None)
            # The latest measured value: not every sample measures every metric.
            latest = self.track.value(name)
            bounds, log = scales[name]
            line = fmt.spark(fmt.downsample(values, spark_width), spark_width,
                             bounds=bounds, log=log)[0]
            text.append("\n" + label.ljust(_LABEL) + line)
            for value in (latest, low, high):
                text.append(" ")
                text.append(show(value).rjust(_VALUE),
                            style=self.severity_style(severity(name, value)) if self.is_mounted else "")
        return text


def config_text(track: LayerTrack) -> Text:
    """The layer's config as aligned `key  value` lines."""
    if not track.config:
        return Text("no config recorded for this layer", style="italic")
    width = max(len(key) for key in track.config) + 2
    text = Text()
    for index, (key, value) in enumerate(track.config.items()):
        text.append(key.ljust(width), style="bold")
        text.append(value + ("\n" if index < len(track.config) - 1 else ""))
    return text


# The lower part of the screen shows one of these; the key switches to it.
VIEWS = {"steps": "Steps", "histograms": "Histograms", "config": "Config"}


class LayerScreen(Screen[None]):
    """Drill-down for one layer (Esc goes back to the overview)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("t", "show('steps')", "Steps"),
        Binding("h", "show('histograms')", "Histograms"),
        Binding("c", "show('config')", "Config"),
    ]

    def __init__(self, state: RunState, layer: str) -> None:
        super().__init__()
        self.state = state
        self.track = state.layers[layer]
        self._shown_samples = 0
        self._first_row = 0  # key of the oldest row in the steps table
        self._seen: tuple[int, int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(layer_title(self.track), markup=False, id="layer-title")
        yield VerdictPanel(id="layer-verdicts")
        yield SeriesPanel(self.track, self.state.layers, epochs=self.state.legacy_training)
        with ContentSwitcher(initial="steps", id="views"):
            steps: DataTable[str | Text] = DataTable(id="steps", cursor_type="row",
                                                     zebra_stripes=True)
            steps.border_title = "Steps · h histograms · c config"
            yield steps
            yield HistogramPanel(self.track)
            with VerticalScroll(id="config") as config:
                config.border_title = "Config · t steps · h histograms"
                yield Static(config_text(self.track), id="config-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#steps", DataTable)
        table.add_column("step", key="step")
        for _, short, name, _ in SERIES:
            table.add_column(short, key=name)
        table.focus()
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def action_back(self) -> None:
        self.dismiss()

    def action_show(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        focus = {"steps": "#steps", "config": "#config"}.get(view)
        if focus:
            self.query_one(focus).focus()

    def refresh_view(self) -> None:
        key = (self.state.verdict_revision, self.track.samples, self.state.histogram_revision)
        if key == self._seen:
            return
        self._seen = key
        self.query_one(HistogramPanel).refresh()
        self.query_one("#config-text", Static).update(config_text(self.track))
        self.query_one(VerdictPanel).update_from(
            self.state.verdicts_for(self.track.name), (), self.state.finished is not None,
            headline=False, empty="no verdict names this layer",
        )
        self.query_one(SeriesPanel).refresh()
        self._add_new_steps()

    def _add_new_steps(self) -> None:
        table: DataTable[str | Text] = self.query_one("#steps", DataTable)
        panel = self.query_one(SeriesPanel)
        track = self.track
        history = list(track.history)
        new = min(track.samples - self._shown_samples, len(history))
        follow = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        if track.samples - new != self._shown_samples:
            # More arrived than the history keeps (a long pause): start over from what is kept.
            table.clear()
        if table.row_count == 0:
            self._first_row = track.samples - new
        for offset, entry in enumerate(history[len(history) - new :] if new else []):
            values = dict(zip(METRICS, entry[2:], strict=True))
            table.add_row(
                f"{entry[0]} {entry[1]}",
                *(Text(show(values[name]), style=panel.severity_style(severity(name, values[name])),
                       justify="right")
                  for _, _, name, show in SERIES),
                key=str(track.samples - new + offset),
            )
        self._shown_samples = track.samples
        # The table holds what the history holds: the oldest rows go first.
        while table.row_count > len(history):
            table.remove_row(str(self._first_row))
            self._first_row += 1
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        # The table holds the recent steps; the lines above, the whole run.
        kept = "" if track.samples <= len(history) else \
            f" (the latest {len(history)} of {track.samples} samples)"
        table.border_title = f"Steps{kept} · h histograms · c config"
