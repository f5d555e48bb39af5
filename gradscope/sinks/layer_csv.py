"""Per-layer, per-step metrics as CSV (`--csv`; stdout by default in headless mode)."""

from __future__ import annotations

import csv
import sys
from typing import TextIO

from gradscope.events import Event, LayerStats
from gradscope.sinks._files import open_output

# The column contract of docs/cli.md: never reorder or rename.
COLUMNS = (
    "phase",
    "step",
    "layer",
    "layer_type",
    "param_count",
    "trainable",
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "act_mean",
    "act_std",
    "act_saturated_frac",
    "act_dead_frac",
)
_METRICS = COLUMNS[6:]


def format_cell(value: object) -> str:
    """One CSV cell: None -> empty (does not apply), bools lower-case, floats in 6 digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".6g")  # nan, inf and -inf come out as such
    return str(value)


class LayerCsvSink:
    """Writes one row per LayerRow of every LayerStats event; `-` means stdout."""

    def __init__(self, target: str) -> None:
        self._owned = target != "-"
        self._stream: TextIO = open_output(target) if self._owned else sys.stdout
        self._writer = csv.writer(self._stream, lineterminator="\n")
        # A file gets its header at once (a complete, empty table); stdout only
        # once there are rows, so a script that never reaches fit() prints
        # exactly what it prints under python.
        self._header_written = False
        if self._owned:
            self._write_header()

    def _write_header(self) -> None:
        self._writer.writerow(COLUMNS)
        self._stream.flush()
        self._header_written = True

    def handle(self, event: Event) -> None:
        if not isinstance(event, LayerStats):
            return
        if not self._header_written:
            self._write_header()
        for row in event.rows:
            self._writer.writerow(
                [
                    event.phase,
                    event.step,
                    row.layer,
                    row.layer_type,
                    row.param_count,
                    format_cell(row.trainable),
                    *(format_cell(getattr(row, name)) for name in _METRICS),
                ]
            )
        # Flushed per event, so an interrupted run keeps every row written so far.
        self._stream.flush()

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()
