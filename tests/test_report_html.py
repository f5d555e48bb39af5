"""The notebook's HTML report (`gradscope.report_html`, `Report._repr_html_`):
self-contained HTML with inline SVG, verdicts most likely cause first, the fix
ready to copy and escaped."""

from __future__ import annotations

import os
import re
from html import unescape

from gradscope.events import (
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    StepStats,
    VerdictIssued,
)
from gradscope.report import Report
from gradscope.report_html import report_html
from gradscope.verdicts import Verdict

LAYERS = [("dense", "Dense", 144, 0.5), ("flatten", "Flatten", 0, None),
          ("dense_1", "Dense", 17, 3e-4), ("dense_2", "Dense", 9, 2e-7)]
FIX = 'model.add(Dense(1, activation="sigmoid"))  # if y < 0.5 & logits: <b>not bold</b>'


def synthetic(verdicts: list[Verdict], steps: int = 3) -> Report:
    events: list[object] = [ModelDescribed(
        model_name="sequential", model_class="Sequential", param_count=170,
        trainable_param_count=170, device="cpu", probe_mode="clone",
        layers=tuple(LayerInfo(name, kind, params, True) for name, kind, params, _ in LAYERS))]
    for step in range(1, steps + 1):
        events.append(LayerStats("probe", step, tuple(
            LayerRow(name, kind, params, True,
                     grad_norm=None if grad is None else grad * step)
            for name, kind, params, grad in LAYERS)))
        events.append(StepStats("probe", step, 0.7 - 0.05 * step))
    events += [VerdictIssued(v) for v in verdicts]
    return Report.from_events(events)  # type: ignore[arg-type]


def verdict(check: str, severity: str, subject: str, fix: str = "do it") -> Verdict:
    return Verdict(check, severity, subject, f"{check} found on {subject}", fix)  # type: ignore[arg-type]


def test_verdicts_in_rank_order_with_the_escaped_fix_in_a_pre_block() -> None:
    # Given a run whose verdicts arrived worst last
    run = synthetic([verdict("a-note", "info", "model"),
                     verdict("a-warning", "warning", "dense_1"),
                     verdict("an-error", "error", "dense_2", FIX)])
    # When it is drawn
    html = report_html(run)
    # Then the verdict IDs come in severity order, the error marked as most likely
    positions = [html.index(check) for check in ("an-error", "a-warning", "a-note")]
    assert positions == sorted(positions)
    assert html.index("most likely cause") < html.index("a-warning")
    assert html.count("most likely cause") == 1
    # and the fix is inside a <pre>, escaped, and reads back as it was
    pres = re.findall(r"<pre[^>]*>(.*?)</pre>", html, re.S)
    assert len(pres) == 3
    fix = next(p for p in pres if "sigmoid" in p)
    assert "&lt;" in fix and "&amp;" in fix and "<b>" not in fix
    assert unescape(re.sub(r"</?code[^>]*>", "", fix)) == FIX
    assert "<b>not bold</b>" not in html
    # and each card has its severity's colour
    assert 'class="gsr-card gsr-error"' in html and "#c62828" in html
    assert 'class="gsr-card gsr-warning"' in html and 'class="gsr-card gsr-info"' in html


def test_one_bar_per_layer_with_a_gradient_on_a_log_scale() -> None:
    run = synthetic([verdict("an-error", "error", "dense_2")])
    html = report_html(run)
    depth = re.search(r'<svg class="gsr-depth".*?</svg>', html, re.S)
    assert depth is not None
    chart = depth.group(0)
    # One bar for each layer that has a gradient (the Flatten has none), in forward order
    bars = re.findall(r'<rect class="gsr-bar"[^>]*fill="([^"]+)"><title>([^<]*)</title>', chart)
    assert [tip.split(" ")[0] for _, tip in bars] == ["dense", "dense_1", "dense_2"]
    assert chart.count("<rect") == 3
    # the median over the probe steps (grad * 1, 2, 3 -> grad * 2)
    assert "grad norm 1 " in unescape(bars[0][1]) + " "
    # the layer a verdict names is in its colour, the others plain
    assert bars[2][0] == "#c62828" and bars[0][0] != "#c62828"
    # decade gridlines from 1e-7 up to 1 (the bars span 4e-7 .. 1)
    decades = re.findall(r'<text class="gsr-decade"[^>]*>([^<]+)</text>', chart)
    assert decades[0] == "1e-7" and decades[-1] == "1"
    assert "0.01" in decades and len(decades) == 8
    # and the probe's loss as a line
    assert '<svg class="gsr-loss"' in html and "<polyline" in html


def test_self_contained_no_script_no_network() -> None:
    html = report_html(synthetic([verdict("an-error", "error", "dense_2", FIX)]))
    lowered = html.lower()
    assert "<script" not in lowered and "http" not in lowered
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    assert "on" + "click" not in lowered and "<iframe" not in lowered


def test_no_verdict_is_a_green_card_with_what_was_checked() -> None:
    run = synthetic([])
    html = report_html(run)
    assert 'class="gsr-card gsr-ok"' in html
    assert run.nothing_found() == "no problems found in 3 probe steps"
    assert run.nothing_found() in html
    assert "most likely cause" not in html and "<pre" not in html


def test_an_empty_run_still_draws() -> None:
    html = report_html(Report())
    assert "no problems found" in html and "<svg" not in html


def test_a_non_finite_gradient_is_a_full_red_bar() -> None:
    run = synthetic([])
    run.apply(LayerStats("probe", 9, (LayerRow("dense", "Dense", 144, True,
                                               grad_norm=float("nan")),)))
    chart = report_html(run)
    assert "grad norm nan" in chart and ">nan</text>" in chart


def test_through_the_api_on_a_one_unit_softmax() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import gradscope

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    report = gradscope.diagnose(model, x, y, batch_size=32, seed=0, budget=0)
    html = report._repr_html_()
    assert "single-unit-softmax" in html and "<svg" in html
    assert html.index("single-unit-softmax") < html.index("<svg")
    if os.environ.get("GRADSCOPE_HTML_OUT"):  # a page to look at in a browser
        with open(os.environ["GRADSCOPE_HTML_OUT"], "w", encoding="utf-8") as f:
            f.write(f"<!doctype html><html><body>{html}</body></html>")


def test_a_falling_loss_beside_still_predictions_is_called_out() -> None:
    # A one-unit softmax: Keras's loss (from the logits) falls, the predictions stay
    still = report_html(synthetic([verdict("predictions-unchanged", "error", "model")]))
    assert "the loss moves, the predictions do not (predictions-unchanged)" in still
    # and a falling loss with moving predictions gets no such line
    assert "the predictions do not" not in report_html(synthetic([verdict("lr-too-low", "warning", "model")]))
