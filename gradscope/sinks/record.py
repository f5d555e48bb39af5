"""The event stream as JSON Lines (`--record`), replayable with `gradscope view`."""

from __future__ import annotations

from gradscope.events import Event, to_json
from gradscope.sinks._files import open_output


class RecordSink:
    """One `events.to_json` line per event, flushed per event."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open_output(path)

    def handle(self, event: Event) -> None:
        self._file.write(to_json(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
