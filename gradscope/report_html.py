"""The run as one self-contained HTML fragment: what a notebook shows for a
`gradscope.api.Report` (`_repr_html_`).

Plain HTML and inline SVG with inline styles only: no script, no stylesheet
to load, no font, no network. So it renders alike in JupyterLab, the classic
Notebook, VS Code and Colab, whose sanitisers keep inline styles and SVG. Every
colour is explicit (the fragment draws its own light panel), so it reads the
same under a dark theme and a light one. Every text from the run is escaped.

No TensorFlow, no Textual: the fold of the events (`gradscope.report.Report`) in,
a string out.
"""

from __future__ import annotations

import math
import statistics
from html import escape

from gradscope.report import LayerTrack, Report, plural
from gradscope.verdicts import Verdict

# Severity -> (card background, accent, label). Explicit colours: the card must
# read the same on a dark notebook and a light one.
CARD = {
    "error": ("#fdecea", "#c62828", "ERROR"),
    "warning": ("#fff4d6", "#b26a00", "WARNING"),
    "info": ("#eef0f3", "#5f6b7a", "INFO"),
}
OK_CARD = ("#e7f5ea", "#1e7b34", "OK")
BAR_PLAIN = "#5b7fb5"
TEXT = "#1f2328"
MUTED = "#57606a"
GRID = "#d0d7de"
PANEL = "#ffffff"
CODE_BG = "#f6f8fa"
FONT = ("-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif")
MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"

# The depth chart's geometry (SVG user units = CSS pixels at 100%).
CHART_WIDTH = 640
CHART_HEIGHT = 180
CHART_LEFT = 48  # the decade labels
CHART_TOP = 10
NAME_ROWS = 30  # at most this many layers get their name under the bar
EVIDENCE_ITEMS = 8
# Verdicts that say the predictions stay put: a falling probe loss beside them
# is no sign of learning (see _loss_line).
STILL_PREDICTIONS = ("predictions-unchanged", "collapsed-predictions")


def report_html(run: Report) -> str:
    """The whole run as an HTML fragment: title, verdict cards (most likely cause
    first), the gradient norm by depth, the probe's loss."""
    parts = [f'<div class="gsr-report" style="font-family:{FONT};font-size:13px;line-height:1.4;'
             f"color:{TEXT};background:{PANEL};padding:12px 14px;border:1px solid {GRID};"
             'border-radius:6px;max-width:760px;box-sizing:border-box">',
             _title(run), _cards(run), _depth_chart(run), _loss_line(run), "</div>"]
    return "\n".join(part for part in parts if part)


# --- the title ----------------------------------------------------------------

def _title(run: Report) -> str:
    model = run.model
    if model is None:
        name = "gradscope report"
        detail = ""
    else:
        name = f"{model.model_name} ({model.model_class})"
        detail = (f"{model.param_count:,} params, {model.trainable_param_count:,} trainable"
                  f" &middot; {len(run.layers)} layers")
    counts = _counts(run.ranked_verdicts())
    if run.probe_steps:
        detail += (" &middot; " if detail else "") + escape(plural(len(run.probe_steps), "probe step"))
    return (f'<div class="gsr-title" style="margin:0 0 10px 0">'
            f'<span style="font-size:15px;font-weight:600;color:{TEXT}">gradscope: {escape(name)}</span>'
            f'<br><span style="color:{MUTED}">{detail}</span>'
            f'{(" &middot; " if detail else "") + counts if counts else ""}</div>')


def _counts(verdicts: list[Verdict]) -> str:
    out = []
    for severity in ("error", "warning", "info"):
        count = sum(1 for v in verdicts if v.severity == severity)
        if count:
            word = {"error": "error", "warning": "warning", "info": "note"}[severity]
            out.append(f'<span style="color:{CARD[severity][1]};font-weight:600">'
                       f"{escape(plural(count, word))}</span>")
    return ", ".join(out)


# --- the verdict cards --------------------------------------------------------

def _cards(run: Report) -> str:
    ranked = run.ranked_verdicts()
    if not ranked:
        background, accent, label = OK_CARD
        return (f'<div class="gsr-card gsr-ok" style="{_card_style(background, accent)}">'
                f'<span style="{_badge_style(accent)}">{label}</span> '
                f'<b style="color:{TEXT}">{escape(run.nothing_found())}</b></div>')
    top = run.headline()
    return "\n".join(_card(verdict, likely=verdict is top) for verdict in ranked)


def _card(verdict: Verdict, *, likely: bool) -> str:
    background, accent, label = CARD.get(verdict.severity, CARD["info"])
    marker = ""
    if likely:
        marker = (f' <span class="gsr-likely" style="{_badge_style(TEXT)}">'
                  "&#9733; most likely cause</span>")
    kind = ""
    if verdict.kind == "symptom":
        kind = (f' <span style="display:inline-block;border:1px solid {MUTED};color:{MUTED};'
                'font-size:11px;padding:0 5px;border-radius:3px">symptom</span>')
    head = (f'<div><span style="{_badge_style(accent)}">{label}</span> '
            f'<code style="font-family:{MONO};font-weight:600;color:{TEXT};background:none">'
            f"{escape(verdict.check)}</code>"
            f' <span style="color:{MUTED}">({escape(verdict.subject)})</span>{kind}{marker}</div>')
    message = f'<div style="margin:4px 0 0 0;color:{TEXT}">{escape(verdict.message)}</div>'
    fix = ""
    if verdict.fix:
        fix = (f'<div style="margin:6px 0 0 0;color:{MUTED};font-size:12px">fix:</div>'
               f'<pre class="gsr-fix" style="margin:2px 0 0 0;padding:6px 8px;background:{CODE_BG};'
               f"color:{TEXT};border:1px solid {GRID};border-radius:4px;overflow-x:auto;"
               # pre-wrap: a long line of prose wraps on screen, and copies as one line
               f'white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;line-height:1.35">'
               f'<code style="font-family:{MONO};color:{TEXT};background:none">'
               f"{escape(verdict.fix)}</code></pre>")
    return (f'<div class="gsr-card gsr-{escape(verdict.severity)}" '
            f'style="{_card_style(background, accent)}">{head}{message}{fix}'
            f"{_evidence(verdict)}</div>")


def _evidence(verdict: Verdict) -> str:
    items = list(verdict.evidence.items())
    if not items:
        return ""
    lines = [f"{escape(str(key))}: {escape(_short(value))}" for key, value in items[:EVIDENCE_ITEMS]]
    if len(items) > EVIDENCE_ITEMS:
        lines.append(f"... {len(items) - EVIDENCE_ITEMS} more")
    return (f'<details style="margin:6px 0 0 0;color:{MUTED};font-size:12px">'
            f'<summary style="cursor:pointer">evidence</summary>'
            f'<div style="font-family:{MONO};white-space:pre-wrap;color:{MUTED}">'
            + "<br>".join(lines) + "</div></details>")


def _short(value: object, limit: int = 120) -> str:
    if isinstance(value, float):
        text = _number(value)
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_number(item) if isinstance(item, float) else str(item)
                               for item in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _card_style(background: str, accent: str) -> str:
    return (f"background:{background};color:{TEXT};border-left:4px solid {accent};"
            "border-radius:4px;padding:8px 10px;margin:0 0 8px 0")


def _badge_style(colour: str) -> str:
    return (f"display:inline-block;background:{colour};color:#ffffff;font-size:11px;"
            "font-weight:700;padding:0 6px;border-radius:3px;letter-spacing:0.03em")


# --- the gradient norm by depth ----------------------------------------------

def layer_grad_norm(track: LayerTrack) -> float | None:
    """A layer's gradient norm for the chart: the median over the probe's steps,
    else its latest measured one (None: never measured, no trainable weights)."""
    probe = [value for phase, value in zip(
        (entry[0] for entry in track.history), track.series("grad_norm"), strict=True)
        if phase == "probe" and value is not None]
    finite = [value for value in probe if math.isfinite(value)]
    if probe and len(finite) == len(probe):
        return float(statistics.median(finite))
    if probe:  # a non-finite gradient on some probe step: that is the news
        return next(value for value in probe if not math.isfinite(value))
    return track.value("grad_norm")


def _depth_chart(run: Report) -> str:
    tracks = sorted(run.layers.values(), key=lambda track: track.index)
    measured = [(track, layer_grad_norm(track)) for track in tracks]
    norms = [(track, value) for track, value in measured if value is not None]
    if not norms:
        return ""
    flags = run.layer_flags()
    positive = [value for _, value in norms if math.isfinite(value) and value > 0]
    low = math.floor(math.log10(min(positive))) if positive else -3
    high = math.ceil(math.log10(max(positive))) if positive else 0
    if high <= low:
        high = low + 1
    named = len(norms) <= NAME_ROWS
    longest = max(min(len(track.name), 16) for track, _ in norms)
    # names are drawn at 40 degrees: about 6.5 * sin(40) = 4.2 units down per character
    name_space = int(16 + 4.2 * longest) if named else 18
    plot_w = CHART_WIDTH - CHART_LEFT - 8
    plot_h = CHART_HEIGHT
    height = CHART_TOP + plot_h + name_space
    bottom = CHART_TOP + plot_h

    def y_of(value: float) -> float:
        return bottom - (math.log10(value) - low) / (high - low) * plot_h

    out = [f'<svg class="gsr-depth" width="{CHART_WIDTH}" '
           f'height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" role="img" '
           f'style="display:block;max-width:100%;height:auto;background:{PANEL}" '
           f'font-family="{FONT}" font-size="10">',
           "<title>gradient norm by depth (log scale)</title>"]
    for decade in range(low, high + 1):
        y = y_of(10.0 ** decade)
        out.append(f'<line x1="{CHART_LEFT}" y1="{y:.1f}" x2="{CHART_LEFT + plot_w}" y2="{y:.1f}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(f'<text class="gsr-decade" x="{CHART_LEFT - 4}" y="{y + 3:.1f}" '
                   f'text-anchor="end" fill="{MUTED}">{_decade(decade)}</text>')
    if high - low <= 2:  # a narrow range: 2x and 5x lines too, so the bars can be read
        for decade in range(low, high):
            for factor in (2, 5):
                y = y_of(factor * 10.0 ** decade)
                out.append(f'<line x1="{CHART_LEFT}" y1="{y:.1f}" x2="{CHART_LEFT + plot_w}" '
                           f'y2="{y:.1f}" stroke="{GRID}" stroke-width="1" stroke-dasharray="2 3"/>')
                out.append(f'<text class="gsr-minor" x="{CHART_LEFT - 4}" y="{y + 3:.1f}" '
                           f'text-anchor="end" fill="{MUTED}" font-size="9">'
                           f"{_number(factor * 10.0 ** decade)}</text>")
    slot = plot_w / len(norms)
    bar_w = max(1.0, min(36.0, slot * 0.7))
    for position, (track, value) in enumerate(norms):
        x = CHART_LEFT + position * slot + (slot - bar_w) / 2
        flag = flags.get(track.name)
        colour = CARD[flag][1] if flag in CARD else BAR_PLAIN
        top: float
        if not math.isfinite(value):
            top, colour = CHART_TOP, CARD["error"][1]
        elif value <= 0:
            top = bottom - 2
        else:
            top = max(CHART_TOP, min(bottom - 1, y_of(value)))
        tip = f"{track.name} ({track.layer_type}): grad norm {_number(value)}"
        if flag:
            tip += f" [{flag}]"
        out.append(f'<rect class="gsr-bar" x="{x:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
                   f'height="{bottom - top:.1f}" fill="{colour}">'
                   f"<title>{escape(tip)}</title></rect>")
        if not math.isfinite(value) or value <= 0:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top - 2:.1f}" text-anchor="middle" '
                       f'fill="{colour}">{escape(_number(value))}</text>')
        if named:
            cx, cy = x + bar_w / 2, bottom + 6
            label = track.name if len(track.name) <= 16 else track.name[:15] + "\u2026"
            weight = ' font-weight="700"' if flag else ""
            out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" fill="{TEXT if flag else MUTED}"'
                       f'{weight} transform="rotate(-40 {cx:.1f} {cy:.1f})">{escape(label)}</text>')
    out.append(f'<line x1="{CHART_LEFT}" y1="{bottom}" x2="{CHART_LEFT + plot_w}" y2="{bottom}" '
               f'stroke="{MUTED}" stroke-width="1"/>')
    if not named:
        out.append(f'<text x="{CHART_LEFT}" y="{bottom + 13}" fill="{MUTED}">input</text>'
                   f'<text x="{CHART_LEFT + plot_w}" y="{bottom + 13}" text-anchor="end" '
                   f'fill="{MUTED}">output ({len(norms)} layers)</text>')
    out.append("</svg>")
    note = "log scale, median over the probe steps, input on the left"
    if flags:
        note += "; layers a verdict names in its colour"
    return (f'<div class="gsr-depth-block" style="margin:12px 0 0 0">'
            f'<div style="color:{TEXT}"><b>Gradient norm by depth</b> '
            f'<span style="color:{MUTED};font-size:12px">({note})</span></div>'
            + "\n".join(out) + "</div>")


def _decade(exponent: int) -> str:
    if -2 <= exponent <= 3:
        return f"{10.0 ** exponent:g}"
    return f"1e{exponent}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3g}"


# --- the probe's loss ---------------------------------------------------------

def _loss_line(run: Report) -> str:
    points = [point for point in run.losses if point.phase == "probe" and point.loss is not None]
    if not points:
        return ""
    finite = [point for point in points if math.isfinite(point.loss or 0.0)]
    bad = len(points) - len(finite)
    width, height, left, pad = 300, 64, 44, 8
    text = (f"<b>Probe loss</b> {_number(points[0].loss or 0.0)} &rarr; "
            f"{_number(points[-1].loss or 0.0)} over {plural(len(points), 'step')}")
    if bad:
        text += f' <span style="color:{CARD["error"][1]}">({plural(bad, "non-finite loss")})</span>'
    still = [v.check for v in run.ranked_verdicts() if v.check in STILL_PREDICTIONS]
    if still and finite and finite[-1].loss is not None and finite[0].loss is not None \
            and finite[-1].loss < finite[0].loss:
        # Keras's cross-entropy reads the logits behind a softmax/sigmoid output:
        # its loss can fall while the predictions cannot move. Say so by the line.
        text += (f'<div style="color:{MUTED}">the loss moves, the predictions do not '
                 f"({escape(still[0])}): judge this model by its predictions</div>")
    svg = ""
    if len(finite) >= 2:
        losses = [point.loss or 0.0 for point in finite]
        steps = [point.step for point in finite]
        lo, hi = min(losses), max(losses)
        span = hi - lo or 1.0
        first, last = min(steps), max(steps)
        xspan = (last - first) or 1
        plot_w, plot_h = width - left - pad, height - 2 * pad
        coords = " ".join(
            f"{left + (step - first) / xspan * plot_w:.1f},{pad + (hi - loss) / span * plot_h:.1f}"
            for step, loss in zip(steps, losses, strict=True))
        dots = "".join(
            f'<circle cx="{left + (step - first) / xspan * plot_w:.1f}" '
            f'cy="{pad + (hi - loss) / span * plot_h:.1f}" r="2.5" fill="{BAR_PLAIN}">'
            f"<title>step {step}: {_number(loss)}</title></circle>"
            for step, loss in zip(steps, losses, strict=True))
        svg = (f'<svg class="gsr-loss" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" role="img" font-family="{FONT}" font-size="10" '
               f'style="display:block;max-width:100%;height:auto;background:{PANEL}">'
               "<title>probe loss by step</title>"
               f'<line x1="{left}" y1="{pad}" x2="{left + plot_w}" y2="{pad}" stroke="{GRID}"/>'
               f'<line x1="{left}" y1="{pad + plot_h}" x2="{left + plot_w}" y2="{pad + plot_h}" '
               f'stroke="{GRID}"/>'
               f'<text x="{left - 4}" y="{pad + 3}" text-anchor="end" fill="{MUTED}">{_number(hi)}</text>'
               f'<text x="{left - 4}" y="{pad + plot_h + 3}" text-anchor="end" fill="{MUTED}">'
               f"{_number(lo)}</text>"
               f'<polyline points="{coords}" fill="none" stroke="{BAR_PLAIN}" stroke-width="2" '
               f'stroke-linejoin="round"/>{dots}</svg>')
    return (f'<div class="gsr-loss-block" style="margin:10px 0 0 0">'
            f'<div style="color:{TEXT}">{text}</div>{svg}</div>')
