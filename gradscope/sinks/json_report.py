"""The full report as one JSON document (`--json`), written atomically."""

from __future__ import annotations

import json
from typing import Any

from gradscope import __version__
from gradscope.events import (
    Event,
    LayerRow,
    LayerStats,
    ModelDescribed,
    Note,
    RunFinished,
    RunStarted,
    StepStats,
    VerdictIssued,
    to_dict,
)
from gradscope.sinks._files import (
    check_writable,
    final_path,
    in_place,
    write_atomic,
    write_atomic_at_open,
)
from gradscope.sinks.summary import headline, unchecked
from gradscope.verdicts import Verdict, rank

REPORT_SCHEMA = 1


def _body(event: Event) -> dict[str, Any]:
    # events.to_dict already turns nan/inf into strings; drop its envelope keys.
    data = to_dict(event)
    del data["v"], data["type"]
    return data


class JsonReportSink:
    """Collects the run and writes the report at start (incomplete), on RunFinished and on close.

    The file is replaced in one step each time, so it is always valid JSON;
    `finished` is null until the run has ended.
    """

    def __init__(self, path: str) -> None:
        self.path = final_path(path)
        # A pipe or a device (/dev/stdout) gets the report once, complete, at close.
        self._rewrite = not in_place(path)
        self._run: RunStarted | None = None
        self._model: ModelDescribed | None = None
        self._verdicts: list[Verdict] = []
        # Last row seen per layer, with the phase and step it came from (insertion = layer order).
        self._layers: dict[str, tuple[str, int, LayerRow]] = {}
        self._steps: list[StepStats] = []
        self._notes: list[Note] = []
        self._finished: RunFinished | None = None
        if self._rewrite:
            write_atomic_at_open(path, self.render())
        else:
            check_writable(path)

    def handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run = event
        elif isinstance(event, ModelDescribed):
            self._model = event
        elif isinstance(event, VerdictIssued):
            self._verdicts.append(event.verdict)
        elif isinstance(event, LayerStats):
            for row in event.rows:
                self._layers[row.layer] = (event.phase, event.step, row)
        elif isinstance(event, StepStats):
            self._steps.append(event)
        elif isinstance(event, Note):
            self._notes.append(event)
        elif isinstance(event, RunFinished):
            self._finished = event
            if self._rewrite:
                write_atomic(self.path, self.render())

    def report(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        ranked = rank(self._verdicts)
        top = headline(ranked)
        layers = []
        for phase, step, row in self._layers.values():
            # Converted here, not per event: training streams many LayerStats.
            (cleaned,) = _body(LayerStats(phase, step, (row,)))["rows"]
            layers.append({"phase": phase, "step": step, **cleaned})
        return {
            "schema": REPORT_SCHEMA,
            "run": _body(self._run) if self._run else {"gradscope_version": __version__},
            "model": _body(self._model) if self._model else None,
            "verdicts": [_body(VerdictIssued(v))["verdict"] for v in ranked],
            "headline": top.message if top else None,
            "layers": layers,
            "steps": [_body(s) for s in self._steps],
            "notes": [_body(n) for n in self._notes],
            # Checks that did not run (experiments cut short by --budget...):
            # an empty verdict list means "healthy" only when this is empty too.
            "unchecked": unchecked(self._notes),
            "finished": _body(self._finished) if self._finished else None,
        }

    def render(self) -> str:
        return json.dumps(self.report(), indent=2, allow_nan=False) + "\n"

    def close(self) -> None:
        write_atomic(self.path, self.render())
