"""The one-line header (what runs, where, how fast) and the status line (how it ended)."""

from __future__ import annotations

from textual.widgets import Static

from gradscope.ui import format as fmt
from gradscope.ui.state import RunState


def header_text(state: RunState) -> str:
    parts: list[str] = []
    if state.started:
        parts.append(state.started.script)
    model = state.model
    if model:
        parts.append(f"{model.model_name} ({model.model_class})")
        params = f"{fmt.count(model.param_count)} params"
        if model.trainable_param_count != model.param_count:
            params += f", {fmt.count(model.trainable_param_count)} trainable"
        parts.append(params)
        parts.append(model.device)
    if state.phase:
        parts.append(state.phase)
    if state.step is not None:
        parts.append(f"{state.step_phase} step {state.step}")
    rate = state.steps_per_second()
    if rate is not None:
        parts.append(f"{rate:.3g} steps/s")
    return " · ".join(parts) or "waiting for the run to start…"


class RunHeader(Static):
    """Script, model, parameter count, device, phase, step, steps/s."""

    def __init__(self) -> None:
        super().__init__("", markup=False, id="run-header")

    def update_from(self, state: RunState, paused: bool) -> None:
        self.update(header_text(state))
        self.set_class(paused, "-paused")


def status_text(state: RunState, paused: bool, held: int, dropped: int) -> str:
    finished = state.finished
    if finished:
        text = f"finished: {finished.status}, exit code {finished.exit_code}"
        if finished.status not in ("ok", "probe-only") and state.output_total:
            text += " · l shows the run's output"
    elif state.started or state.model:
        text = "running…"
    else:
        text = "waiting for events…"
    if state.notes:
        text += f" · {len(state.notes)} note{'s' if len(state.notes) != 1 else ''} (v)"
    if dropped:
        text += f" · {dropped} stale samples skipped"
    if paused:
        text = f"PAUSED ({held} events held, p resumes) · " + text
    return text


class StatusLine(Static):
    """How the run stands or how it ended (RunFinished: status and exit code)."""

    def __init__(self) -> None:
        super().__init__("", markup=False, id="status-line")

    def update_from(self, state: RunState, paused: bool, held: int, dropped: int) -> None:
        self.update(status_text(state, paused, held, dropped))
        finished = state.finished
        self.set_class(finished is not None and finished.exit_code == 0, "-ok")
        self.set_class(finished is not None and finished.exit_code != 0, "-failed")
        self.set_class(paused, "-paused")
