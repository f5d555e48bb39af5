"""Verdicts as CSV (`--verdicts`), always complete and in rank order."""

from __future__ import annotations

import csv
import io

from gradscope.events import Event, VerdictIssued
from gradscope.sinks._files import (
    check_writable,
    final_path,
    in_place,
    write_atomic,
    write_atomic_at_open,
)
from gradscope.verdicts import Verdict, rank

COLUMNS = ("check", "severity", "subject", "message", "fix")


class VerdictCsvSink:
    """Rewrites the whole file on each verdict (temp file + os.replace).

    A later verdict can outrank earlier ones (a cause found after its symptom),
    so appending would break the rank order; rewriting keeps the file ranked
    and a reader never sees it half-written.
    """

    def __init__(self, path: str) -> None:
        self.path = final_path(path)
        self._verdicts: list[Verdict] = []
        # A pipe or a device (/dev/stdout) gets the table once, complete, at close.
        self._rewrite = not in_place(path)
        if self._rewrite:
            write_atomic_at_open(path, self._render())
        else:
            check_writable(path)

    def _render(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for v in rank(self._verdicts):
            writer.writerow([v.check, v.severity, v.subject, v.message, v.fix])
        return out.getvalue()

    def handle(self, event: Event) -> None:
        if isinstance(event, VerdictIssued):
            self._verdicts.append(event.verdict)
            if self._rewrite:
                write_atomic(self.path, self._render())

    def close(self) -> None:
        """A file is complete after every verdict; a pipe gets the table now."""
        if not self._rewrite:
            write_atomic(self.path, self._render())
