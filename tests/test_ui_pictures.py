"""The UI's pictures as a user reads them: the gradient-norm-by-depth chart, the
loss chart, severity colours, shared scales and the number format, on real
recorded runs (tests/data) and scripted events. No TensorFlow anywhere."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.text import Text

from gradscope.checks.activations import DEAD, SATURATED
from gradscope.checks.gradients import ALL_ZERO, EXPLODE_ERROR
from gradscope.checks.optimizer import UPDATE_HIGH, UPDATE_LOW
from gradscope.commands.view import read_events
from gradscope.events import LayerRow, LayerStats
from gradscope.report import LossPoint, Report
from gradscope.ui import ReplaySource
from gradscope.ui import format as fmt
from gradscope.ui.app import GradscopeApp
from gradscope.ui.screens.layer import LayerScreen, SeriesPanel, layer_title
from gradscope.ui.thresholds import severity
from gradscope.ui.widgets.charts import ChartsRow
from gradscope.ui.widgets.depth_chart import DepthChart, depth_layers, render_depth
from gradscope.ui.widgets.loss_chart import LossChart, render_loss
from tests.test_ui import replay_app, screen_text, settle

DATA = Path(__file__).parent / "data"
LEVEL = {char: index + 1 for index, char in enumerate(fmt.BARS)}


def recorded(name: str) -> Report:
    return Report.from_events(read_events(str(DATA / name)))


def gutter_of(lines: list[str]) -> int:
    """Where the plot starts: after the y-axis (`┤` on a labelled row, `│` otherwise)."""
    return next(line.index(mark) for line in lines for mark in "┤│" if mark in line) + 1


def bar_heights(lines: list[str], rows: int) -> dict[int, int]:
    """Column -> height in eighths of a cell, over the first `rows` lines."""
    start = gutter_of(lines)
    heights: dict[int, int] = {}
    for line in lines[:rows]:
        for x, char in enumerate(line[start:], start):
            if char in LEVEL:
                heights[x] = heights.get(x, 0) + LEVEL[char]
    return heights


def bars(heights: dict[int, int]) -> list[list[int]]:
    """Runs of adjacent columns: one list of columns per bar, left to right."""
    runs: list[list[int]] = []
    for x in sorted(heights):
        if runs and runs[-1][-1] == x - 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return runs


def pilot(test):  # type: ignore[no-untyped-def]
    def run() -> None:
        asyncio.run(test())
    run.__name__ = test.__name__
    return run


# --- the gradient norm by depth --------------------------------------------------


def test_depth_chart_shows_the_vanishing_gradient_shrinking_towards_the_input() -> None:
    report = recorded("vanishing-gradient.jsonl")
    picture = render_depth(depth_layers(report), report.layer_flags(), 70, 10)
    lines = picture.plain
    assert picture.title == "grad norm by depth: 6.27e-07 … 1.21"
    heights = bar_heights(lines, 8)
    runs = bars(heights)
    assert len(runs) == 11  # one bar per layer with a gradient, in forward order
    per_bar = [heights[run[0]] for run in runs]
    assert per_bar[0] < per_bar[-1]
    assert per_bar == sorted(per_bar)  # a staircase: each layer deeper gets less
    # The flagged first layer (error) has the error mark under its bar, without colour.
    marks = lines[8]
    assert "●" in "".join(marks[x] for x in runs[0])
    assert report.layer_flags()["hidden_0"] == "error"
    assert lines[9].strip().startswith("layer 1 hidden_0 → 11 out, input → output")


def test_depth_chart_y_axis_is_decades_shared_by_all_bars() -> None:
    report = recorded("vanishing-gradient.jsonl")
    lines = render_depth(depth_layers(report), {}, 70, 10).plain
    start = gutter_of(lines)
    labels = [line[: start - 1].strip() for line in lines[:8]]
    assert labels[0] == "10" and labels[-1] == "1e-07"  # the decades around 6.27e-07 … 1.21
    shown = [label for label in labels if label]
    assert len(shown) >= 4
    for label in shown:
        exponent = math.log10(float(label))
        assert exponent == round(exponent)  # every label is a power of ten
    exponents = [round(math.log10(float(label))) for label in shown]
    assert exponents == sorted(exponents, reverse=True)
    # One scale: a layer with 10x the norm is one decade's height taller, wherever it is.
    heights = [heights for heights in bar_heights(lines, 8).values()]
    assert max(heights) <= 8 * 8


def test_depth_chart_with_1000_layers_keeps_each_columns_minimum() -> None:
    layers = [(i, f"layer_{i:04d}", 1.0) for i in range(1000)]
    layers[537] = (537, "layer_0537", 1e-6)  # one vanished layer among a thousand
    flags = {"layer_0900": "warning"}
    picture = render_depth(layers, flags, 66, 8)
    lines = picture.plain
    heights = bar_heights(lines, 6)
    start = gutter_of(lines)
    plot = 66 - start
    assert len(heights) == plot  # one column each: no gaps, all 1000 layers shown
    low = min(heights, key=lambda x: heights[x])
    assert heights[low] < min(h for x, h in heights.items() if x != low)
    assert low - start == 537 * plot // 1000  # the column that holds layer 538
    assert lines[6][start + 900 * plot // 1000] == "▲"
    assert "layer 1 → 1000" in lines[7] and "min" in lines[7]
    assert picture.title == "grad norm by depth: 1e-06 … 1"
    # A NaN norm wins over any number in its column.
    layers[10] = (10, "layer_0010", math.nan)
    lines = render_depth(layers, {}, 66, 8).plain
    assert [line[start + 10 * plot // 1000] for line in lines[:6]] == ["!"] * 6
    assert "NaN/Inf" in render_depth(layers, {}, 66, 8).title


def test_depth_chart_redraws_only_when_norms_or_flags_change() -> None:
    report = recorded("vanishing-gradient.jsonl")
    chart = DepthChart()
    assert chart.update_from(report, report.layer_flags())
    assert not chart.update_from(report, report.layer_flags())
    report.apply(LayerStats("probe", 6, (LayerRow("hidden_0", "Dense", 4160, True, grad_norm=1e-3),)))
    assert chart.update_from(report, report.layer_flags())
    assert chart.norms[0] == (0, "hidden_0", 1e-3)
    # A training row without a gradient leaves the picture as it was.
    report.apply(LayerStats("train", 1, (LayerRow("hidden_0", "Dense", 4160, True, weight_norm=8.0),)))
    assert not chart.update_from(report, report.layer_flags())


# --- the loss ---------------------------------------------------------------------


def test_a_flat_loss_is_drawn_flat_and_titled_flat() -> None:
    points = [LossPoint("probe", i, 2.302585 + 2e-6 * (-1) ** i) for i in range(1, 6)]
    picture = render_loss(points, 60, 6)
    assert picture.title == "Loss flat at 2.303 (5 steps)"
    plot = picture.plain[:5]
    rows_with_points = [row for row, line in enumerate(plot) if "+" in line]
    assert len(rows_with_points) == 1  # one line, not jumps between min and max
    assert plot[rows_with_points[0]].count("+") == 5
    assert all(set(line[gutter_of(plot):]) <= {" "} for row, line in enumerate(plot)
               if row not in rows_with_points)
    assert "2.303┤" in plot[rows_with_points[0]]
    # A real but small change is drawn small: within the middle rows, not top to bottom.
    moving = [LossPoint("probe", i, 2.30 - 0.001 * i) for i in range(1, 6)]
    rows = [row for row, line in enumerate(render_loss(moving, 60, 9).plain[:8]) if "+" in line]
    assert max(rows) - min(rows) <= 2


def test_loss_axis_labels_show_the_max_at_the_top_and_the_min_at_the_bottom() -> None:
    report = recorded("healthy-training.jsonl")
    points = list(report.losses)
    losses = [p.loss for p in points if p.loss is not None]
    lines = render_loss(points, 90, 8).plain
    assert lines[0].split("┤")[0].strip() == fmt.number(max(losses)) == "2.45"
    assert lines[6].split("┤")[0].strip() == fmt.number(min(losses)) == "0.0664"
    assert "┤" in lines[3]  # the middle of the scale, with 7 rows of plot
    assert render_loss(points, 90, 8).title == (
        "Loss 2.455 → 0.0664, min 0.0664, val 0.3262 (5 steps, 15 epochs)")


def test_probe_training_and_validation_are_drawn_apart_over_the_full_width() -> None:
    report = recorded("healthy-training.jsonl")
    points = list(report.losses)
    width, height = 100, 16
    picture = render_loss(points, width, height)
    lines = picture.plain
    plot = lines[:-1]
    start = gutter_of(plot)

    def columns(glyph: str) -> list[int]:
        return sorted({x for line in plot for x, char in enumerate(line) if char == glyph})

    probe, validation = columns("+"), columns("•")
    assert len(probe) == 5 and len(validation) == 15
    assert probe[0] == start  # the first point on the left edge...
    assert validation[-1] == width - 1  # ...the last on the right edge
    assert max(probe) < min(validation)  # the probe steps come before the epochs
    slots = probe + validation
    gaps = {b - a for a, b in zip(slots, slots[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1  # evenly spread, not packed at the right
    # Training is an area under each epoch; after the first epochs validation sits above it.
    heights = bar_heights(plot, len(plot))
    assert all(x in heights for x in validation)
    for x in validation[3:]:
        marker_row = next(row for row, line in enumerate(plot) if line[x] == "•")
        area_top = min(row for row, line in enumerate(plot) if line[x] in LEVEL)
        assert marker_row < area_top
    key = lines[-1]
    assert "+ probe" in key and "train" in key and "• val" in key
    assert "probe 1" in key and "epoch 1" in key


def test_a_probe_only_run_spreads_its_steps_over_the_width() -> None:
    report = recorded("vanishing-gradient.jsonl")
    lines = render_loss(list(report.losses), 61, 5).plain
    start = gutter_of(lines)
    xs = sorted(x for line in lines[:-1] for x, char in enumerate(line) if char == "+")
    assert xs == [start + round(i * (61 - start - 1) / 4) for i in range(5)]


def test_a_loss_over_decades_is_drawn_on_a_log_scale() -> None:
    points = [LossPoint("train", i, 1000 * 0.5 ** i) for i in range(1, 30)]
    picture = render_loss(points, 50, 6)
    assert picture.title.endswith("· log scale")
    heights = bar_heights(picture.plain, 5)
    ordered = [heights[x] for x in sorted(heights)]
    # Halving each epoch is a straight line on a log scale: even steps down.
    steps = [a - b for a, b in zip(ordered, ordered[1:], strict=False)]
    assert min(steps) >= 0 and max(steps) <= 2


# --- severity colours -----------------------------------------------------------


def test_severity_follows_the_checks_thresholds() -> None:
    assert severity("act_dead_frac", 1.0) == "error"
    assert severity("act_dead_frac", DEAD) == "warning"
    assert severity("act_dead_frac", DEAD - 0.01) is None
    assert severity("act_dead_frac", 0.0) is None
    assert severity("act_saturated_frac", SATURATED) == "warning"
    assert severity("act_saturated_frac", 0.2) is None
    assert severity("grad_norm", math.nan) == "error"
    assert severity("grad_norm", math.inf) == "error"
    assert severity("grad_norm", EXPLODE_ERROR) == "error"
    assert severity("grad_norm", 0.0) == "warning"
    assert severity("grad_norm", ALL_ZERO / 2) == "warning"
    assert severity("grad_norm", 0.3) is None
    assert severity("update_ratio", UPDATE_HIGH) == "warning"
    assert severity("update_ratio", UPDATE_LOW) == "warning"
    assert severity("update_ratio", 1e-3) is None
    assert severity("weight_norm", 1e9) is None
    assert severity("grad_norm", None) is None


def test_thresholds_import_no_tensorflow() -> None:
    code = ("import sys, gradscope.ui.thresholds, gradscope.ui.app; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _spans_for(text: Text, needle: str) -> list[object]:
    plain = text.plain
    at = plain.index(needle)
    return [span.style for span in text.spans if span.start <= at < span.end]


@pilot
async def test_a_dead_layer_is_in_the_error_colour_and_a_healthy_one_in_none() -> None:
    app = replay_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, 0.3)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LayerScreen) and screen.track.name == "hidden"
        panel = screen.query_one(SeriesPanel)
        text = panel.render()
        dead_line = next(line for line in text.split("\n") if line.plain.startswith("dead"))
        error = panel.get_component_rich_style("series--error", partial=True)
        assert error.color is not None
        assert _spans_for(dead_line, "100%") == [error]
        await pilot.press("escape", "up", "up", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LayerScreen) and screen.track.name == "dense_in"
        text = screen.query_one(SeriesPanel).render()
        dead_line = next(line for line in text.split("\n") if line.plain.startswith("dead"))
        assert "10%" in dead_line.plain
        assert all(not style for style in _spans_for(dead_line, "10%"))


# --- shared scales and the layer screen ------------------------------------------


def test_shared_bounds_take_every_layers_values() -> None:
    assert fmt.shared_bounds([0.5, None, 2.0, math.nan, 0.1]) == (0.1, 2.0)
    assert fmt.shared_bounds([0.0, 1e-6, 3.0, -1.0], log=True) == (1e-6, 3.0)
    assert fmt.shared_bounds([None, math.inf]) is None
    # Two layers on one scale: the smaller one's line sits lower.
    bounds = fmt.shared_bounds([1e-6, 2e-6, 1.0, 1.2], log=True)
    small = fmt.spark([1e-6, 2e-6], 2, bounds=bounds, log=True)[0]
    big = fmt.spark([1.0, 1.2], 2, bounds=bounds, log=True)[0]
    assert max(LEVEL[c] for c in small) < min(LEVEL[c] for c in big)


@pilot
async def test_the_layer_screen_draws_each_metric_on_the_scale_shared_by_all_layers() -> None:
    app = GradscopeApp(ReplaySource(list(read_events(str(DATA / "vanishing-gradient.jsonl")))))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, 0.3)
        lines = {}
        for name, moves in (("hidden_0", ()), ("out", ("end",))):
            await pilot.press(*moves, "enter")
            await settle(pilot)
            assert isinstance(app.screen, LayerScreen) and app.screen.track.name == name
            text = screen_text(app)
            assert "shared scale" in text
            lines[name] = next(line for line in text.splitlines() if line.startswith("grad norm"))
            await pilot.press("escape")
            await settle(pilot)

    def heights(line: str) -> list[int]:
        return [LEVEL[c] for c in line if c in LEVEL]

    # On its own scale each line would fill the height; shared, the first layer's
    # gradient sits at the bottom and the output layer's near the top.
    assert max(heights(lines["hidden_0"])) <= 2
    assert min(heights(lines["out"])) >= 6
    assert "6.27e-07" in lines["hidden_0"]


def test_a_layer_without_weights_is_not_called_frozen() -> None:
    report = recorded("healthy-training.jsonl")
    title = layer_title(report.layers["dropout"])
    assert "no weights" in title and "frozen" not in title
    assert "trainable" in layer_title(report.layers["dense"])


# --- one number format ------------------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [
    (6.268424e-07, "6.27e-07"), (0.0123, "0.0123"), (1.2079, "1.21"), (123.4, "123"),
    (1234.5, "1234"), (12345.0, "1.23e+04"), (1.5e8, "1.5e+08"), (0.001, "0.001"),
    (0.00099996, "0.001"), (9999.7, "1e+04"), (2.5, "2.5"), (-0.03456, "-0.0346"),
    (0.0, "0"), (math.nan, "nan"), (-math.inf, "-inf"), (None, fmt.MISSING),
])
def test_number_has_one_style(value: float | None, shown: str) -> None:
    assert fmt.number(value) == shown


def test_numbers_keep_three_significant_digits_and_switch_style_by_size() -> None:
    for exponent in range(-12, 12):
        for mantissa in (1.0, 1.234567, 4.99999, 9.87654):
            value = mantissa * 10.0 ** exponent
            text = fmt.number(value)
            assert math.isclose(float(text), value, rel_tol=5e-3)
            rounded = float(f"{value:.2e}")
            assert ("e" in text) == (rounded < 1e-3 or rounded >= 1e4), text
            digits = re.sub(r"e.*|[-.]", "", text).lstrip("0")
            assert len(digits.rstrip("0")) <= (3 if "e" in text else 4)
    assert fmt.percent(0.996) == ">99%" and fmt.percent(1.0) == "100%"
    assert fmt.percent(0.001) == "<1%" and fmt.percent(0.0) == "0%"
    assert fmt.seconds(0.25) == "0.25 s" and fmt.per_second(123.4) == "123 steps/s"
    assert fmt.with_unit(None, "s") == fmt.MISSING


# --- the overview, as the user sees it --------------------------------------------


@pytest.mark.parametrize(("size", "chart_height"), [((80, 24), 5), ((120, 40), 9)])
def test_the_overview_shows_the_depth_chart(size: tuple[int, int], chart_height: int) -> None:
    async def check() -> None:
        app = GradscopeApp(ReplaySource(list(read_events(str(DATA / "vanishing-gradient.jsonl")))))
        async with app.run_test(size=size) as pilot:
            await settle(pilot, 0.3)
            text = screen_text(app)
            assert "grad norm by depth: 6.27e-07 … 1.21" in text
            assert "1e-07┤" in text and "input → output" in text
            assert "Loss 2.713 → 2.508" in text  # both charts, side by side
            row = app.screen.query_one(ChartsRow)
            assert row.size.height == chart_height
            depth = app.screen.query_one(DepthChart)
            loss = app.screen.query_one(LossChart)
            assert depth.size.width >= 35 and loss.size.width >= 35
            # hidden_0 and out, named by the verdict, marked under their bars.
            assert any(line.count("●") == 2 and "error" not in line for line in text.splitlines())

    asyncio.run(check())


@pilot
async def test_a_narrow_terminal_keeps_the_depth_chart() -> None:
    app = GradscopeApp(ReplaySource(list(read_events(str(DATA / "vanishing-gradient.jsonl")))))
    async with app.run_test(size=(54, 24)) as pilot:
        await settle(pilot, 0.3)
        text = screen_text(app)
        assert "grad norm by depth" in text and "1e-07┤" in text
        assert not app.screen.query_one(LossChart).display
