"""The one-line header (what runs, where, how fast) and the status line (what is
happening now, in words; how it ended)."""

from __future__ import annotations

import os
import signal

from textual.widgets import Static

from gradscope.report import plural
from gradscope.ui import format as fmt
from gradscope.ui.state import RunState

SEPARATOR = " · "


def header_text(state: RunState, *, live: bool = True) -> str:
    """Script, model, parameters, device: one line that does not change as the run goes."""
    parts: list[str] = []
    if state.started:
        parts.append(os.path.basename(state.started.script) or state.started.script)
    model = state.model
    if model:
        parts.append(f"{model.model_name} ({model.model_class})")
        params = f"{fmt.count(model.param_count)} params"
        if model.trainable_param_count != model.param_count:
            params += f", {fmt.count(model.trainable_param_count)} trainable"
        parts.append(params)
        parts.append(model.device)
    if not parts:
        return "waiting for the run to start…" if live else "an empty recording"
    return SEPARATOR.join(parts)


def current_rate(state: RunState) -> float | None:
    """Steps per second while the steps now running are timed (the probe's);
    never a figure left over from an earlier phase (training's epochs are not
    timed per step), and none once the run is over (the status line shows it
    next to the step it counts)."""
    if state.finished is not None or not state.steps:
        return None
    last = state.steps[-1]
    if last.seconds is None or last.phase != state.phase:
        return None
    return state.steps_per_second()


class RunHeader(Static):
    """Script, model, parameter count, device: one line."""

    def __init__(self) -> None:
        super().__init__("", markup=False, id="run-header")
        self._text: object = None

    def update_from(self, state: RunState, paused: bool, *, live: bool = True) -> None:
        text = header_text(state, live=live)
        if text != self._text:
            self._text = text
            # One line whatever it says (CSS height 1): a repaint, never a layout
            # of the whole screen ten times a second.
            self.update(text, layout=False)
        self.set_class(paused, "-paused")


# --- the status line --------------------------------------------------------------


def phase_text(state: RunState) -> str:
    """What the run is doing now, in words."""
    event = state.phase_event
    if event is None:
        return "loading TensorFlow…" if state.started else "starting Python…"
    phase = event.phase
    if phase == "script":
        return "running the script, waiting for fit()"
    if phase == "static":
        return "static checks (model, loss, labels, data)"
    if phase == "probe":
        step = state.step if state.step_phase == "probe" and state.step is not None else 0
        rate = current_rate(state)
        speed = f" · {rate:.3g} steps/s" if rate is not None else ""
        return f"probe step {_of(step, event.total)}{speed}"
    if phase == "experiments":
        if event.step is None and not event.detail:
            return "experiments: starting"
        counted = f"experiment {_of(event.step, event.total)}" if event.step is not None \
            else "experiment"
        return f"{counted}: {event.detail}" if event.detail else counted
    if phase == "train":
        return training_text(state)
    if phase == "done":
        return "diagnosis done, finishing…"
    return phase


def training_text(state: RunState) -> str:
    """The user's training: `training: epoch 3/10 · step 40/100 · 250 steps/s ·
    ETA 29 s` from its TrainProgress (the step within the epoch, `step 40` while
    the epoch's length is unknown; `ETA –` then). A recording from before the
    watch (no TrainProgress: one training step per epoch) says `training: epoch 4/15`."""
    event = state.phase_event
    progress = state.progress
    # A second fit() starts with PhaseChanged("train", "fit 2"); its epochs' ends
    # then say nothing of the fit, its TrainProgress does.
    starting = _fit_number(event.detail if event else "")
    if progress is not None and starting is not None and progress.fit < starting:
        progress = None  # the last progress was the previous fit's
    fit = progress.fit if progress is not None else (starting or 1)
    head = f"training (fit {fit})" if fit > 1 else "training"
    total = progress.epochs if progress is not None else (event.total if event else None)
    epoch = progress.epoch if progress is not None else state.training_epoch()
    if progress is None and fit > 1:
        epoch = None  # the figures at hand are the previous fit's
    if not epoch:
        return f"{head}: starting" + (f", {plural(total, 'epoch')}" if total else "")
    parts = [f"{head}: epoch {_of(epoch, total)}"]
    if progress is not None:
        parts.append(f"step {_of(progress.batch, progress.batches)}")
        rate = state.training_rate()
        if rate is not None:
            parts.append(fmt.per_second(rate))
        parts.append(f"ETA {fmt.duration(state.training_eta())}")
    return SEPARATOR.join(parts)


def _fit_number(detail: str) -> int | None:
    """`fit 2` (PhaseChanged's detail for a second fit()) -> 2."""
    words = detail.split()
    if len(words) == 2 and words[0] == "fit" and words[1].isdigit():
        return int(words[1])
    return None


def _of(step: int | None, total: int | None) -> str:
    return f"{step}/{total}" if total else str(step)


def outcome_text(state: RunState) -> str:
    """How the run ended, in words: what the user needs to know first."""
    finished = state.finished
    if finished is None:
        return ""
    status = finished.status
    if status == "script-error":
        return f"the script raised {finished.error}" if finished.error else "the script raised"
    if status == "interrupted":
        name = _signal_name(finished.exit_code)
        said = "interrupted" if name in (None, "SIGINT") else f"stopped by {name}"
        return said if state.model is not None else f"{said} before fit()"
    if status == "no-fit":
        return "stopped before fit(): the script never called it"
    if status == "script-exit":
        return f"the script exited with code {finished.exit_code}"
    if status == "gradscope-error":
        return "gradscope stopped on an error of its own"
    if status in ("ok", "probe-only"):
        return verdict_counts(state)
    return status


def verdict_counts(state: RunState) -> str:
    """"2 error verdicts, 1 warning", or what the checks found when nothing."""
    errors = sum(1 for v in state.verdicts if v.severity == "error")
    warnings = sum(1 for v in state.verdicts if v.severity == "warning")
    parts = []
    if errors:
        parts.append(plural(errors, "error verdict"))
    if warnings:
        parts.append(plural(warnings, "warning"))
    return ", ".join(parts) or state.nothing_found()


def _signal_name(exit_code: int) -> str | None:
    try:
        return signal.Signals(exit_code - 128).name if exit_code > 128 else None
    except ValueError:
        return None


def status_text(state: RunState, paused: bool, held: int, dropped: int, *,
                live: bool = True, width: int | None = None) -> str:
    """The status line: what is happening (or how it ended), then notes and
    skipped samples; cut to `width` in the middle of the outcome, never at
    the exit code."""
    finished = state.finished
    tail: list[str] = []
    if finished:
        head = "finished"
        middle = outcome_text(state)
        tail.append(f"exit {finished.exit_code}")
        if finished.status == "script-error":
            tail.append("l shows the traceback")
        elif finished.status not in ("ok", "probe-only") and state.output_total:
            tail.append("l shows the run's output")
    elif not live and state.revision == 0:
        head, middle = "", "this recording holds no events"
    else:
        head = "" if live else "the recording ends here"
        middle = phase_text(state)
    if state.notes:
        tail.append(f"{plural(len(state.notes), 'note')} (v)")
    if dropped:
        tail.append(f"{dropped} stale samples skipped")
    if paused:
        head = f"PAUSED ({held} events held, p resumes)" + (SEPARATOR + head if head else "")
    prefix = head + SEPARATOR if head else ""
    suffix = "".join(SEPARATOR + part for part in tail)
    if width is not None and len(prefix) + len(middle) + len(suffix) > width:
        room = width - len(prefix) - len(suffix)
        if room >= 12:
            middle = middle[: room - 1].rstrip() + "…"
    return prefix + middle + suffix


class StatusLine(Static):
    """What the run is doing now, or how it ended (RunFinished: outcome and exit code)."""

    def __init__(self) -> None:
        super().__init__("", markup=False, id="status-line")
        self._args: tuple[RunState, bool, int, int, bool] | None = None
        self._text: object = None

    def update_from(self, state: RunState, paused: bool, held: int, dropped: int, *,
                    live: bool = True) -> None:
        self._args = (state, paused, held, dropped, live)
        self._draw()
        finished = state.finished
        self.set_class(finished is not None and finished.exit_code == 0, "-ok")
        self.set_class(finished is not None and finished.exit_code != 0, "-failed")
        self.set_class(paused, "-paused")

    def _draw(self) -> None:
        if self._args is None:
            return
        state, paused, held, dropped, live = self._args
        width = self.content_region.width or None
        text = status_text(state, paused, held, dropped, live=live, width=width)
        if text != self._text:
            self._text = text
            self.update(text, layout=False)  # one line (CSS height 1): no layout

    def on_resize(self) -> None:
        self._draw()
