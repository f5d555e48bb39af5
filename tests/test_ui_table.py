"""The overview's layer table as a user meets it: real recorded runs replayed
(tests/data/README.md) or scripted events, keys pressed and headers clicked,
the screen read column by column, the exported file opened.

No TensorFlow: recordings are read with `gradscope.commands.view.read_events`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from gradscope.commands.view import read_events
from gradscope.events import Event, LayerInfo, LayerRow, LayerStats, ModelDescribed, VerdictIssued
from gradscope.sinks.layer_csv import COLUMNS
from gradscope.ui import format as fmt
from gradscope.ui.app import GradscopeApp
from gradscope.ui.widgets.layer_table import LayerTable
from gradscope.verdicts import Verdict
from tests.test_ui import pilot_test, replay_app, screen_text, settle

DATA = Path(__file__).parent / "data"
SMALL, LARGE = (80, 24), (120, 40)
LABELS = ("layer", "type", "params", "T", "grad norm", "history", "log upd", "dead", "sat")
VANISHING = [f"hidden_{i}" for i in range(10)] + ["out"]


def recorded(name: str) -> GradscopeApp:
    return replay_app(read_events(str(DATA / f"{name}.jsonl")))


def table(app: GradscopeApp) -> LayerTable:
    return app.screen.query_one(LayerTable)


def read_table(app: GradscopeApp) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The table as on screen: each column's header text and, per layer on show,
    each column's text (cut at the columns' edges, stripped)."""
    widget = table(app)
    region = widget.content_region
    lines = screen_text(app).splitlines()

    def cells(line: str) -> dict[str, str]:
        out, x = {}, region.x
        for cell in widget.columns():
            out[cell.column.key] = line[x:x + cell.width].strip()
            x += cell.width + 1
        return out

    header = cells(lines[region.y])
    rows = {}
    for line in lines[region.y + 1:region.y + region.height]:
        row = cells(line)
        if row.get("name"):
            rows[row["name"]] = row
    return header, rows


def table_lines(app: GradscopeApp) -> list[str]:
    """The table's header and rows as on screen."""
    region = table(app).content_region
    lines = screen_text(app).splitlines()[region.y:region.y + region.height]
    return [line[region.x:region.x + region.width] for line in lines]


def header_line(app: GradscopeApp) -> str:
    return table_lines(app)[0]


async def click_header(pilot, app: GradscopeApp, key: str) -> None:
    """Click the middle of a column's header (the table's line below its title)."""
    widget = table(app)
    x = 0
    for cell in widget.columns():
        if cell.column.key == key:
            break
        x += cell.width + 1
    else:
        raise AssertionError(f"no column {key!r} on show")
    await pilot.click(LayerTable, offset=(x + cell.width // 2, 1))
    await settle(pilot)


# --- widths -----------------------------------------------------------------------------


def long_names() -> list[Event]:
    """A model with long layer names and types, as a real ResNet has."""
    names = [f"block_{i // 3}_{('conv2d', 'batch_normalization', 'activation_relu')[i % 3]}_{i}"
             for i in range(12)]
    types = ("Conv2D", "BatchNormalization", "Activation")
    infos = tuple(LayerInfo(n, types[i % 3], 0 if i % 3 == 2 else 4608, True)
                  for i, n in enumerate(names))
    rows = tuple(LayerRow(n, types[i % 3], 0 if i % 3 == 2 else 4608, True,
                          grad_norm=0.01 * (i + 1), weight_norm=3.0, update_ratio=1e-3,
                          act_dead_frac=0.25)
                 for i, n in enumerate(names))
    return [ModelDescribed("resnetish", "Functional", 36864, 36864, "CPU", "clone", infos),
            LayerStats("probe", 1, rows)]


@pytest.mark.parametrize("run", ["vanishing-gradient", "healthy-training", "long names"])
@pilot_test
async def test_no_header_is_cut_at_120_columns_whatever_the_sort(run):
    app = replay_app(long_names()) if run == "long names" else recorded(run)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        for _ in range(11):  # every sort order, back to the forward one
            header, _ = read_table(app)
            assert "…" not in header_line(app)
            assert [header[key].rstrip("▲▼") for key in header if key != "mark"] == list(LABELS)
            await pilot.press("s")


@pilot_test
async def test_at_80_columns_long_names_and_types_give_way_before_the_figures():
    app = replay_app(long_names())
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        header, rows = read_table(app)

        # no label is cut: short labels, and the least useful columns made room
        assert "…" not in header_line(app)
        for key in ("name", "grad_norm", "history", "update_ratio", "dead"):
            assert key in header
        # every figure is whole, and a name keeps at least its first 10 characters
        row = rows["block_0_conv2d_0"] if "block_0_conv2d_0" in rows else next(iter(rows.values()))
        assert row["grad_norm"] == "0.01" and row["update_ratio"] == "-3.0" and row["dead"] == "25%"
        assert all(len(row["name"]) >= 10 for row in rows.values())
        narrow = {cell.column.key: cell.width for cell in table(app).columns()}

    # at 120 columns the same model shows every column, every name and type whole
    app = replay_app(long_names())
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        header, rows = read_table(app)
        assert len(rows) == 12 and "block_1_batch_normalization_4" in rows
        assert rows["block_1_batch_normalization_4"]["type"] == "BatchNormalization"
        assert not any("…" in line for line in table_lines(app))
        wide = {cell.column.key: cell.width for cell in table(app).columns()}
        assert wide["name"] > narrow["name"] and wide["type"] > narrow["type"]


# --- sorting ----------------------------------------------------------------------------


@pilot_test
async def test_s_sorts_by_grad_norm_and_shift_s_reverses_it():
    app = recorded("vanishing-gradient")
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        assert table(app).visible_names() == VANISHING

        await pilot.press("s")
        # the gradient shrinks layer by layer towards the input: largest first
        assert table(app).visible_names() == VANISHING[::-1]
        header, _ = read_table(app)
        assert header["grad_norm"] == "grad norm▼"
        assert "sort: grad norm ▼" in str(table(app).border_title)

        await pilot.press("S")
        assert table(app).visible_names() == VANISHING
        assert read_table(app)[0]["grad_norm"] == "grad norm▲"
        assert "sort: grad norm ▲" in str(table(app).border_title)
        # and what is on screen is in that order
        assert list(read_table(app)[1]) == VANISHING


@pilot_test
async def test_a_click_on_a_header_sorts_by_it_and_a_second_click_reverses():
    app = recorded("vanishing-gradient")
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)

        await click_header(pilot, app, "grad_norm")
        assert table(app).visible_names() == VANISHING[::-1]
        assert read_table(app)[0]["grad_norm"] == "grad norm▼"

        await click_header(pilot, app, "grad_norm")
        assert table(app).visible_names() == VANISHING
        assert read_table(app)[0]["grad_norm"] == "grad norm▲"

        # another column: its own order, largest first again
        await click_header(pilot, app, "update_ratio")
        assert table(app).visible_names() == VANISHING[::-1]
        header, _ = read_table(app)
        assert header["update_ratio"] == "log upd▼" and header["grad_norm"] == "grad norm"

        # a text column sorts A to Z; the forward order comes back with s
        await click_header(pilot, app, "params")
        assert table(app).visible_names()[-1] == "out"  # 650 params, the others 4,160
        await click_header(pilot, app, "name")
        assert table(app).visible_names() == sorted(VANISHING)
        assert read_table(app)[0]["name"] == "layer▲"

        # the marks' column: the layers the verdicts name first, then the others in order
        await click_header(pilot, app, "mark")
        assert table(app).visible_names() == ["hidden_0", "out"] + VANISHING[1:-1]
        assert read_table(app)[0]["mark"] == "▼"
        assert "sort: verdict severity ▼" in str(table(app).border_title)


def nan_run() -> list[Event]:
    infos = tuple(LayerInfo(n, "Dense", 10, True) for n in ("a", "b", "c", "d"))
    grads = {"a": 1.0, "b": math.nan, "c": None, "d": 3.0}
    return [ModelDescribed("m", "Sequential", 40, 40, "CPU", "clone", infos),
            LayerStats("probe", 1, tuple(LayerRow(n, "Dense", 10, True, grad_norm=g)
                                         for n, g in grads.items()))]


@pilot_test
async def test_a_nan_sorts_first_both_ways_and_does_not_apply_last():
    app = replay_app(nan_run())
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("s")
        assert table(app).visible_names() == ["b", "d", "a", "c"]
        await pilot.press("S")
        assert table(app).visible_names() == ["b", "a", "d", "c"]
        _, rows = read_table(app)
        assert rows["b"]["grad_norm"] == "nan" and rows["c"]["grad_norm"] == fmt.MISSING


# --- filtering ----------------------------------------------------------------------------


@pilot_test
async def test_f_keeps_only_the_layers_a_verdict_names_and_escape_clears_both_filters():
    app = recorded("vanishing-gradient")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        flagged = set(app.state.layer_flags())
        assert flagged == {"hidden_0", "out"}  # vanishing-gradient names its first and last

        await pilot.press("f")
        assert table(app).visible_names() == ["hidden_0", "out"]
        assert set(read_table(app)[1]) == flagged
        assert "Layers (2 of 11, flagged)" in str(table(app).border_title)

        # the name filter narrows it further
        await pilot.press("slash", "o", "u", "t", "enter")
        assert table(app).visible_names() == ["out"]
        assert "flagged, matching 'out'" in str(table(app).border_title)

        await pilot.press("escape")
        assert table(app).visible_names() == VANISHING
        assert "flagged" not in str(table(app).border_title)

        # f again toggles it off
        await pilot.press("f", "f")
        assert table(app).visible_names() == VANISHING


# --- export -------------------------------------------------------------------------------


def exported(folder: Path) -> list[dict[str, str]]:
    [path] = list(folder.glob("gradscope-export-*.csv"))
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


@pilot_test
async def test_export_holds_the_figures_shown_in_the_order_shown(tmp_path, monkeypatch):
    # given a run whose epochs measure weights only: the table shows the probe's
    # gradient norms next to the last epoch's update ratios
    monkeypatch.chdir(tmp_path)
    app = recorded("healthy-training")
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        await pilot.press("s", "S")  # grad norm, smallest first
        _, shown = read_table(app)
        await pilot.press("e")
        await settle(pilot)

    rows = exported(tmp_path)
    assert [row["layer"] for row in rows] == list(shown) == ["dense_2", "dense_1", "dense",
                                                             "dropout"]
    with (next(tmp_path.glob("*.csv"))).open() as stream:
        header = next(csv.reader(stream))
    assert tuple(header[:len(COLUMNS)]) == COLUMNS  # the --csv columns, then the sources
    for row in rows:
        cells = shown[row["layer"]]
        # the same figures as on screen, in the --csv format
        grad = float(row["grad_norm"]) if row["grad_norm"] else None
        assert fmt.number(grad) == cells["grad_norm"]
        ratio = float(row["update_ratio"]) if row["update_ratio"] else None
        assert fmt.log10(ratio) == cells["update_ratio"]
        dead = float(row["act_dead_frac"]) if row["act_dead_frac"] else None
        assert fmt.percent(dead) == cells["dead"]
    dense = rows[2]
    assert dense["grad_norm"] and dense["act_dead_frac"]  # not emptied by the epochs
    assert (dense["phase"], dense["step"]) == ("train", "15")
    assert dense["grad_norm_from"] == dense["act_dead_frac_from"] == "probe:5"
    assert dense["update_ratio_from"] == dense["weight_norm_from"] == "train:15"
    assert rows[3]["grad_norm"] == rows[3]["grad_norm_from"] == ""  # dropout: no weights


@pilot_test
async def test_export_follows_the_filter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = recorded("vanishing-gradient")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("f", "e")
        await settle(pilot)
    assert [row["layer"] for row in exported(tmp_path)] == ["hidden_0", "out"]


# --- what each figure is ------------------------------------------------------------------


@pilot_test
async def test_layers_without_weights_are_not_marked_frozen():
    # the healthy run's Dropout reports trainable=False, as Keras does for it
    app = recorded("healthy-training")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        _, rows = read_table(app)
        assert rows["dropout"]["trainable"] == fmt.MISSING
        assert rows["dense"]["trainable"] == "✓"
        assert "✗" not in screen_text(app)

    # a layer with weights that are frozen keeps its ✗
    frozen = LayerInfo("head", "Dense", 650, False)
    flat = LayerInfo("flatten", "Flatten", 0, True)
    app = replay_app([ModelDescribed("m", "Sequential", 650, 0, "CPU", "clone", (flat, frozen))])
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        _, rows = read_table(app)
        assert rows["head"]["trainable"] == "✗" and rows["flatten"]["trainable"] == fmt.MISSING


@pilot_test
async def test_the_title_says_which_step_the_figures_come_from():
    app = recorded("healthy-training")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert str(table(app).border_title).endswith(
            "figures: probe step 5, log upd: epoch 15")
    app = recorded("vanishing-gradient")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert str(table(app).border_title).endswith("figures: probe step 5")


def bar_heights(spark: str) -> list[int]:
    return [fmt.BARS.index(c) for c in spark if c in fmt.BARS]


@pilot_test
async def test_the_history_sparklines_share_one_scale():
    app = recorded("vanishing-gradient")
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        _, rows = read_table(app)
        heights = {name: bar_heights(row["history"]) for name, row in rows.items()}

        # hidden_0's gradient is a millionth of out's: its line sits at the bottom
        assert max(heights["hidden_0"]) < min(heights["out"])
        assert heights["hidden_0"] == [0] * 5 and heights["out"] == [7] * 5
        # and the line rises with depth, layer by layer
        means = [sum(heights[name]) / len(heights[name]) for name in VANISHING]
        assert means == sorted(means)


@pilot_test
async def test_figures_past_a_threshold_are_coloured_by_their_severity():
    # given hidden_0 with an update ratio of 1e-9 (below lr-too-low's 1e-6) and a
    # layer whose units are all dead
    dead = Verdict("dead-relu", "error", "dead", "all dead", "he_normal")
    infos = (LayerInfo("ok", "Dense", 10, True), LayerInfo("dead", "Dense", 10, True))
    rows = (LayerRow("ok", "Dense", 10, True, grad_norm=0.5, update_ratio=1e-3, act_dead_frac=0.1),
            LayerRow("dead", "Dense", 10, True, grad_norm=0.5, update_ratio=1e-9,
                     act_dead_frac=1.0))
    app = replay_app([ModelDescribed("m", "Sequential", 20, 20, "CPU", "clone", infos),
                      LayerStats("probe", 1, rows), VerdictIssued(dead)])
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        widget = table(app)
        error = widget.get_component_rich_style("layer-table--error").color
        warning = widget.get_component_rich_style("layer-table--warning").color

        def colour(line: int, text: str):
            [segment] = [s for s in widget.render_line(line) if s.text.strip() == text]
            return segment.style.color if segment.style else None

        assert colour(2, "100%") == error and colour(2, "-9.0") == warning
        assert colour(1, "10%") not in (error, warning) and colour(1, "-3.0") not in (error, warning)


# --- cost ---------------------------------------------------------------------------------


@pilot_test
async def test_a_1000_layer_table_formats_only_the_rows_on_screen(monkeypatch):
    names = [f"layer_{i:04d}" for i in range(1000)]
    model = ModelDescribed("big", "Functional", 1000, 1000, "CPU", "clone",
                           tuple(LayerInfo(n, "Dense", 1, True) for n in names))
    app = replay_app([model] + [LayerStats("probe", step, tuple(
        LayerRow(n, "Dense", 1, True, grad_norm=float(i + step)) for i, n in enumerate(names)))
        for step in (1, 2)])
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        calls: list[int] = []
        spark = fmt.spark

        def counted(*args, **kwargs):
            calls.append(1)
            return spark(*args, **kwargs)

        monkeypatch.setattr(fmt, "spark", counted)
        await pilot.press("s")
        assert table(app).visible_names()[0] == "layer_0999"
        assert 0 < len(calls) <= 2 * table(app).size.height


def test_the_shared_scale_follows_the_window_of_recent_gradients():
    # given a stream where the extremes come and go out of each layer's recent
    # window (64 norms), with zeros, NaNs, infinities and training rows without any
    import random

    from gradscope.report import Report
    from gradscope.ui.state import TableFigures

    rng = random.Random(1)
    report, figures = Report(), TableFigures()
    names = ("a", "b", "c")
    for step in range(1, 400):
        rows = []
        for name in names:
            grad = rng.choice([None, 0.0, math.nan, math.inf, 10 ** rng.uniform(-9, 3)])
            rows.append(LayerRow(name, "Dense", 1, True, grad_norm=grad))
        report.apply(LayerStats("probe", step, tuple(rows)))
        if rng.random() < 0.3:  # the table refreshes now and then, not every step
            continue
        shown = [v for track in report.layers.values() for v in track.recent_grads
                 if 0 < v < math.inf]
        # then the scale is exactly the smallest and largest positive norm kept
        assert figures.grad_bounds(report.layers.values()) == (
            (min(shown), max(shown)) if shown else None)
