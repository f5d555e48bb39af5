"""The full report as one JSON document (`--json`), written atomically."""

from __future__ import annotations

import json
from typing import Any

from gradscope import __version__
from gradscope.events import Event, LayerStats, RunFinished, VerdictIssued, to_dict
from gradscope.report import Report
from gradscope.sinks._files import (
    check_writable,
    final_path,
    in_place,
    write_atomic,
    write_atomic_at_open,
)

REPORT_SCHEMA = 1


def _body(event: Any) -> dict[str, Any]:
    # events.to_dict already turns nan/inf into strings; drop its envelope keys.
    data = to_dict(event)
    del data["v"], data["type"]
    return data


def report_json(report: Report) -> dict[str, Any]:
    """The `--json` document of a run, as plain JSON-ready data (docs/cli.md)."""
    ranked = report.ranked_verdicts()
    top = report.headline()
    layers = []
    for track in report.layers.values():
        sample = track.latest
        if sample is None:
            continue
        (cleaned,) = _body(LayerStats(sample.phase, sample.step, (sample.row,)))["rows"]
        layers.append({"phase": sample.phase, "step": sample.step, **cleaned})
    return {
        "schema": REPORT_SCHEMA,
        "run": _body(report.started) if report.started else {"gradscope_version": __version__},
        "model": _body(report.model) if report.model else None,
        "verdicts": [_body(VerdictIssued(v))["verdict"] for v in ranked],
        "headline": top.message if top else None,
        "layers": layers,
        "steps": [_body(s) for s in report.steps],
        "notes": [_body(n) for n in report.notes],
        # Checks that did not run (experiments cut short by --budget...):
        # an empty verdict list means "healthy" only when this is empty too.
        "unchecked": report.unchecked(),
        "finished": _body(report.finished) if report.finished else None,
    }


class JsonReportSink:
    """Folds the run into a Report and writes it at start (incomplete), on
    RunFinished and on close.

    The file is replaced in one step each time, so it is always valid JSON;
    `finished` is null until the run has ended.
    """

    def __init__(self, path: str) -> None:
        self.path = final_path(path)
        # A pipe or a device (/dev/stdout) gets the report once, complete, at close.
        self._rewrite = not in_place(path)
        self.run_report = Report()
        if self._rewrite:
            write_atomic_at_open(path, self.render())
        else:
            check_writable(path)

    def handle(self, event: Event) -> None:
        self.run_report.apply(event)
        if isinstance(event, RunFinished) and self._rewrite:
            write_atomic(self.path, self.render())

    def report(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return report_json(self.run_report)

    def render(self) -> str:
        return json.dumps(self.report(), indent=2, allow_nan=False) + "\n"

    def close(self) -> None:
        write_atomic(self.path, self.render())
