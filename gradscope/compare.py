"""Two recorded runs side by side (`gradscope diff BEFORE.jsonl AFTER.jsonl`).

`Comparison.of(before, after)` reads two `Report`s (the one fold of an event
stream) and says what changed: the verdicts that went away, the new ones and
those that stayed (matched by check ID and subject), each layer's gradient
norm and update ratio before and after (layers matched by name), the layers
whose gradient changed most, and both loss curves. `text()` is the plain
rendering; the UI (`gradscope.ui.diff_app`) draws the same parts.

Neither Textual nor TensorFlow here: `gradscope diff --text` needs neither.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple

from gradscope.report import LayerTrack, Report, plural
from gradscope.ui import format as fmt
from gradscope.verdict_text import WIDTH, format_verdict, wrap
from gradscope.verdicts import Verdict

Status = Literal["gone", "new", "stayed"]
STATUSES: tuple[Status, ...] = ("gone", "new", "stayed")
STATUS_TITLES = {"gone": "Went away", "new": "New", "stayed": "Stayed"}

# A layer whose gradient changed by at least this factor (either way) is "changed".
CHANGED = 2.0
MOST_CHANGED = 3  # how many of them the summary names and the table marks
LOSS_PHASES = ("probe", "train")  # the loss chart's points (validation is apart)
MARK = "*"  # the table's mark on the layers whose gradient changed most
BEFORE_GLYPH, AFTER_GLYPH, BOTH_GLYPH, LINE_GLYPH = "○", "●", "◉", "·"


# --- verdicts -------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictChange:
    """One verdict of either run: gone (only BEFORE), new (only AFTER) or stayed."""

    status: Status
    before: Verdict | None
    after: Verdict | None

    @property
    def verdict(self) -> Verdict:
        """The verdict as the later run has it (as BEFORE had it, for one that went away)."""
        verdict = self.after or self.before
        assert verdict is not None
        return verdict

    @property
    def key(self) -> tuple[str, str]:
        return (self.verdict.check, self.verdict.subject)

    def severity_change(self) -> str:
        """'was error' when a verdict that stayed changed severity, else ''."""
        if self.before is not None and self.after is not None:
            if self.before.severity != self.after.severity:
                return f"was {self.before.severity}"
        return ""


def match_verdicts(before: Sequence[Verdict], after: Sequence[Verdict]) -> list[VerdictChange]:
    """Pair two runs' ranked verdicts by (check, subject): gone ones first, then
    new ones, then those that stayed, each group in its run's rank order (most
    likely cause first). A check that names the same subject twice pairs in order."""
    waiting: dict[tuple[str, str], list[Verdict]] = {}
    for verdict in before:
        waiting.setdefault((verdict.check, verdict.subject), []).append(verdict)
    new: list[VerdictChange] = []
    stayed: list[VerdictChange] = []
    for verdict in after:
        earlier = waiting.get((verdict.check, verdict.subject))
        if earlier:
            stayed.append(VerdictChange("stayed", earlier.pop(0), verdict))
        else:
            new.append(VerdictChange("new", None, verdict))
    gone = [VerdictChange("gone", v, None) for v in before
            if any(v is w for w in waiting.get((v.check, v.subject), []))]
    return [*gone, *new, *stayed]


def is_problem(verdict: Verdict) -> bool:
    return verdict.severity in ("error", "warning")


# --- layers ---------------------------------------------------------------------------


def probe_value(track: LayerTrack | None, metric: str) -> float | None:
    """A layer's figure for the comparison: the median over its probe steps (the
    figure the checks read: one step is noisy), else its latest measured value.
    Training rows are left out: they come from each run's own training, at
    steps and on batches the two runs need not share."""
    if track is None:
        return None
    column = 2 + ("grad_norm", "weight_norm", "update_ratio").index(metric)
    values = [entry[column] for entry in track.history
              if entry[0] == "probe" and entry[column] is not None]
    if values:
        if any(math.isnan(v) for v in values):
            return math.nan
        return float(statistics.median(values))
    return track.value(metric)


def change_factor(before: float | None, after: float | None) -> float | None:
    """after / before: inf when it grew from 0, 0 when it fell to 0, 1 when both
    are 0, NaN when either is NaN, None when either was not measured."""
    if before is None or after is None:
        return None
    if math.isnan(before) or math.isnan(after):
        return math.nan
    if before == 0:
        return 1.0 if after == 0 else math.inf
    if math.isinf(before):
        return 1.0 if math.isinf(after) else 0.0
    return after / before


def _magnitude(value: float) -> str:
    # Two significant digits, in the UI's one number style (1.9, 35, 1200, 9.7e+05).
    return fmt.number(value, 2)


def factor_text(factor: float | None) -> str:
    """'×1200', '÷35', '×1' (the same), 'from 0', 'to 0', 'nan', '–' (not measured)."""
    if factor is None:
        return fmt.MISSING
    if math.isnan(factor):
        return "nan"
    if math.isinf(factor):
        return "from 0"
    if factor == 0:
        return "to 0"
    if factor >= 1:
        return "×" + _magnitude(factor)
    return "÷" + _magnitude(1 / factor)


def _change_size(factor: float | None) -> float:
    """How far from 'the same' a factor is, in decades (NaN and 0↔nonzero count as most)."""
    if factor is None:
        return -1.0
    if math.isnan(factor) or math.isinf(factor) or factor == 0:
        return math.inf
    return abs(math.log10(factor))


@dataclass(frozen=True)
class LayerChange:
    """One layer name, as each run measured it (None: not in that run, or no figure)."""

    name: str
    where: Literal["both", "before", "after"]
    type_before: str | None
    type_after: str | None
    grad_before: float | None
    grad_after: float | None
    update_before: float | None
    update_after: float | None

    @property
    def layer_type(self) -> str:
        if self.type_before and self.type_after and self.type_before != self.type_after:
            return f"{self.type_before}→{self.type_after}"
        return self.type_after or self.type_before or ""

    @property
    def grad_factor(self) -> float | None:
        return change_factor(self.grad_before, self.grad_after)

    @property
    def update_factor(self) -> float | None:
        return change_factor(self.update_before, self.update_after)

    def grad_change_size(self) -> float:
        return _change_size(self.grad_factor)


def match_layers(before: Report, after: Report) -> list[LayerChange]:
    """Every layer of either run, matched by name: AFTER's forward order, with a
    layer only BEFORE has placed after the layer it followed there."""
    order: list[str] = list(after.layers)
    previous: str | None = None
    for name in before.layers:
        if name not in after.layers:
            at = order.index(previous) + 1 if previous is not None else 0
            order.insert(at, name)
        previous = name
    changes = []
    for name in order:
        old, new = before.layers.get(name), after.layers.get(name)
        where: Literal["both", "before", "after"] = (
            "both" if old is not None and new is not None else "before" if new is None else "after"
        )
        changes.append(LayerChange(
            name, where,
            old.layer_type if old else None, new.layer_type if new else None,
            probe_value(old, "grad_norm"), probe_value(new, "grad_norm"),
            probe_value(old, "update_ratio"), probe_value(new, "update_ratio"),
        ))
    return changes


# --- the comparison -------------------------------------------------------------------


@dataclass
class Comparison:
    """What changed from one recorded run to another."""

    before: Report
    after: Report
    before_label: str = "BEFORE"
    after_label: str = "AFTER"
    verdicts: list[VerdictChange] = field(default_factory=list)
    layers: list[LayerChange] = field(default_factory=list)

    @classmethod
    def of(cls, before: Report, after: Report, before_label: str = "BEFORE",
           after_label: str = "AFTER") -> Comparison:
        return cls(before, after, before_label, after_label,
                   match_verdicts(before.ranked_verdicts(), after.ranked_verdicts()),
                   match_layers(before, after))

    def with_status(self, status: Status) -> list[VerdictChange]:
        return [change for change in self.verdicts if change.status == status]

    @property
    def only_before(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.where == "before"]

    @property
    def only_after(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.where == "after"]

    def most_changed(self, limit: int = MOST_CHANGED) -> list[LayerChange]:
        """The layers (in both runs) whose gradient norm changed most, at least
        ×2 or ÷2, biggest change first (ties: forward order)."""
        changed = [layer for layer in self.layers
                   if layer.where == "both" and layer.grad_change_size() >= math.log10(CHANGED)]
        changed.sort(key=lambda layer: -layer.grad_change_size())
        return changed[:limit]

    def by_change(self) -> list[LayerChange]:
        """Every layer, the biggest gradient change first (unmeasured last)."""
        return sorted(self.layers, key=lambda layer: -layer.grad_change_size())

    def outcome(self) -> str:
        """One word: fixed, better, worse, mixed, changed or no change (what the
        errors and warnings did; an info verdict coming or going decides nothing)."""
        gone = [c for c in self.with_status("gone") if is_problem(c.verdict)]
        new = [c for c in self.with_status("new") if is_problem(c.verdict)]
        if gone and new:
            return "mixed"
        if gone:
            left = any(is_problem(c.verdict) for c in self.with_status("stayed"))
            return "better" if left else "fixed"
        if new:
            return "worse"
        if self.with_status("gone") or self.with_status("new"):
            return "changed"
        return "no change"

    def headline(self) -> str:
        """The one line at the top: 'fixed: vanishing-gradient went away; 0 new verdicts'."""
        gone, new, stayed = (self.with_status(s) for s in STATUSES)
        parts = []
        if gone:
            parts.append(f"{_checks(gone)} went away")
        if new or gone:
            parts.append(plural(len(new), "new verdict") + (f": {_checks(new)}" if new else ""))
        if gone or new:
            if stayed:
                parts.append(f"{len(stayed)} stayed: {_checks(stayed)}")
        elif stayed:
            parts.append(f"the same {plural(len(stayed), 'verdict')}: {_checks(stayed)}")
        else:
            parts.append("no verdicts in either run")
        return f"{self.outcome()}: " + "; ".join(parts)

    def layer_mismatch(self) -> str:
        """'3 layers only in BEFORE: a, b, c; 2 only in AFTER: d, e', or '' when
        both runs have the same layer names."""
        only_before, only_after = self.only_before, self.only_after
        parts = []
        if only_before:
            parts.append(f"{plural(len(only_before), 'layer')} only in {self.before_label}: "
                         + _names(only_before))
        if only_after:
            noun = "only" if only_before else plural(len(only_after), "layer") + " only"
            count = f"{len(only_after)} " if only_before else ""
            parts.append(f"{count}{noun} in {self.after_label}: " + _names(only_after))
        return "; ".join(parts)

    def most_changed_text(self) -> str:
        most = self.most_changed()
        if not any(layer.where == "both" for layer in self.layers):
            return "no layer name in common (layers are matched by name)"
        if not most:
            measured = any(layer.grad_factor is not None for layer in self.layers)
            return (f"no layer's gradient changed by ×{CHANGED:g} or more" if measured
                    else "no layer has a gradient measured in both runs")
        return "gradient changed most: " + ", ".join(
            f"{layer.name} {factor_text(layer.grad_factor)}" for layer in most)

    def run_line(self, which: Literal["before", "after"], path: str) -> str:
        """'BEFORE  path: script, model (N params), status, exit N'."""
        report = self.before if which == "before" else self.after
        label = self.before_label if which == "before" else self.after_label
        return f"{label:<7} {path}: {describe_run(report)}"

    def text(self, before_path: str, after_path: str, width: int = WIDTH) -> str:
        """The whole comparison as plain text (`gradscope diff --text`)."""
        lines = [self.headline(), self.run_line("before", before_path),
                 self.run_line("after", after_path)]
        for status in STATUSES:
            changes = self.with_status(status)
            lines += ["", f"{STATUS_TITLES[status]}: " + (str(len(changes)) if changes else "none")]
            lines.extend(verdict_text(change, width) for change in changes)
        lines += ["", f"Layers: gradient norm and update ratio, median over the probe steps "
                      f"({MARK}: changed most)"]
        lines.append("  " + self.most_changed_text())
        mismatch = self.layer_mismatch()
        if mismatch:
            lines.append(wrap(mismatch, "  ", "    ", width))
        lines.extend("  " + row for row in self.table_rows())
        lines += ["", f"Loss: probe and training steps, {BEFORE_GLYPH} {self.before_label}, "
                      f"{AFTER_GLYPH} {self.after_label}"]
        lines.extend("  " + row for row in loss_chart(self, width - 2, 8))
        lines.extend("  " + row for row in loss_legend(self))
        return "\n".join(lines)

    def table_rows(self) -> list[str]:
        """The layer table as aligned text: a header, then a row per layer (forward order)."""
        marked = {layer.name for layer in self.most_changed()}
        header = ("", "layer", "type", f"grad {self.before_label}", f"grad {self.after_label}",
                  "change", f"upd {self.before_label}", f"upd {self.after_label}", "change")
        rows: list[tuple[str, ...]] = [header]
        for layer in self.layers:
            rows.append(table_cells(layer, layer.name in marked))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                for row in rows]


def table_cells(layer: LayerChange, marked: bool) -> tuple[str, ...]:
    """One row of the layer comparison: mark, name, type, grad before/after/change,
    update ratio before/after/change. A layer one run lacks says so."""
    absent = "(absent)"
    return (
        MARK if marked else "",
        layer.name,
        layer.layer_type,
        absent if layer.where == "after" else fmt.number(layer.grad_before),
        absent if layer.where == "before" else fmt.number(layer.grad_after),
        factor_text(layer.grad_factor),
        absent if layer.where == "after" else fmt.number(layer.update_before),
        absent if layer.where == "before" else fmt.number(layer.update_after),
        factor_text(layer.update_factor),
    )


def verdict_text(change: VerdictChange, width: int = WIDTH) -> str:
    """A verdict change as the summary writes a verdict; a new one keeps its fix
    (the others' fixes are no news), one that stayed says a severity change."""
    verdict = change.verdict
    if change.status != "new":
        verdict = replace(verdict, fix="")
    note = change.severity_change()
    if note:
        verdict = replace(verdict, message=f"{verdict.message} ({note})")
    return format_verdict(verdict, width=width)


def describe_run(report: Report) -> str:
    """'train.py, deep_mlp (7,690 params), probe-only, exit 1'."""
    parts = []
    if report.started is not None:
        parts.append(report.started.script)
    if report.model is not None:
        parts.append(f"{report.model.model_name} ({report.model.param_count:,} params)")
    if report.finished is not None:
        parts.append(f"{report.finished.status}, exit {report.finished.exit_code}")
    else:
        parts.append("unfinished")
    return ", ".join(parts)


def undiagnosed(report: Report) -> str | None:
    """Why a recording holds nothing to compare (the run never reached a
    diagnosis), or None when it can be compared."""
    if report.model is not None or report.verdicts or report.layers:
        return None
    finished = report.finished
    if finished is None:
        return "it holds no diagnosis (the recording stops before fit())"
    if finished.error:
        return f"the script raised before fit() was diagnosed ({finished.error})"
    return f"it holds no diagnosis (the run ended {finished.status}, exit {finished.exit_code})"


def _checks(changes: Sequence[VerdictChange]) -> str:
    return ", ".join(change.verdict.check for change in changes)


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# --- the loss chart -------------------------------------------------------------------


def losses(report: Report) -> list[float | None]:
    """A run's probe and training losses in the order they came (no validation)."""
    return [point.loss for point in report.losses if point.phase in LOSS_PHASES]


def loss_legend(comparison: Comparison) -> list[str]:
    """'○ BEFORE 2.713 → 2.508 (5 steps)' and the same for AFTER."""
    lines = []
    for glyph, label, report in ((BEFORE_GLYPH, comparison.before_label, comparison.before),
                                 (AFTER_GLYPH, comparison.after_label, comparison.after)):
        values = [v for v in losses(report) if v is not None]
        if values:
            lines.append(f"{glyph} {label:<7} {fmt.number(values[0], 4)} → "
                         f"{fmt.number(values[-1], 4)} ({plural(len(values), 'step')})")
        else:
            lines.append(f"{glyph} {label:<7} no steps")
    return lines


class ChartCell(NamedTuple):
    char: str
    owner: str  # "before", "after", "both", "nonfinite" or "" (empty)


def loss_grid(comparison: Comparison, width: int,
              height: int) -> tuple[list[str], list[list[ChartCell]]] | str:
    """Both runs' losses on one grid: (the y axis labels, one per line, and the
    plot's cells), or a sentence when there is nothing to draw.

    One scale for both (log when the losses span decades); step i of both runs
    in the same column (each squeezed by the longer run's step count when it is
    wider than the plot); each run's points joined by dots. NaN/inf is a '!' on
    the top line."""
    series = {"before": losses(comparison.before), "after": losses(comparison.after)}
    finite = [v for values in series.values() for v in values
              if v is not None and math.isfinite(v)]
    if not finite:
        return ("no finite loss in either run" if any(series.values())
                else "no steps in either run")
    low, high = min(finite), max(finite)
    log = low > 0 and high / low > 100
    height = max(2, height)
    if high > low:
        labels = [fmt.number(high)] + [""] * (height - 2) + [fmt.number(low)]
    else:  # one value: drawn at mid height, labelled there
        labels = [""] * height
        labels[round((height - 1) / 2)] = fmt.number(low)
    axis = max(len(label) for label in labels)
    plot_width = max(1, width - axis - 2)
    steps = max(len(values) for values in series.values())
    columns = min(steps, plot_width)

    def scaled(value: float) -> float:
        return math.log10(value) if log else value

    span = scaled(high) - scaled(low)

    def row_of(value: float) -> float:
        level = (scaled(value) - scaled(low)) / span if span > 0 else 0.5
        return (height - 1) * (1 - level)

    empty = ChartCell(" ", "")
    grid = [[empty] * plot_width for _ in range(height)]
    points: list[tuple[int, int, ChartCell]] = []
    for owner, values in series.items():
        if len(values) > columns:
            values = fmt.downsample(values, max(1, round(len(values) * columns / steps)))
        glyph = BEFORE_GLYPH if owner == "before" else AFTER_GLYPH
        previous: tuple[int, float] | None = None
        for index, value in enumerate(values):
            if value is None:
                previous = None
                continue
            x = round(index * (plot_width - 1) / (columns - 1)) if columns > 1 else 0
            if not math.isfinite(value):
                points.append((0, x, ChartCell("!", "nonfinite")))
                previous = None
                continue
            y = row_of(value)
            points.append((round(y), x, ChartCell(glyph, owner)))
            if previous is not None:
                x0, y0 = previous
                for between in range(x0 + 1, x):
                    row = round(y0 + (y - y0) * (between - x0) / (x - x0))
                    if grid[row][between] is empty:
                        grid[row][between] = ChartCell(LINE_GLYPH, owner)
            previous = (x, y)
    for row, x, cell in points:
        current = grid[row][x]
        if current.owner in ("", cell.owner) or current.char == LINE_GLYPH:
            grid[row][x] = cell
        elif "nonfinite" in (cell.owner, current.owner):
            grid[row][x] = ChartCell("!", "nonfinite")
        else:
            grid[row][x] = ChartCell(BOTH_GLYPH, "both")
    return [label.rjust(axis) for label in labels], grid


def loss_chart(comparison: Comparison, width: int, height: int) -> list[str]:
    """The loss grid as text lines: `height` lines of at most `width` columns."""
    drawn = loss_grid(comparison, width, height)
    if isinstance(drawn, str):
        return [drawn]
    labels, grid = drawn
    return [f"{label} {'┤' if label.strip() else '│'}{''.join(c.char for c in row)}".rstrip()
            for label, row in zip(labels, grid, strict=True)]
