"""The event stream as JSON Lines (`--record`), replayable with `gradscope view`."""

from __future__ import annotations

import os
from typing import TextIO

from gradscope.events import Event, to_json
from gradscope.sinks._files import open_output


class RecordSink:
    """One `events.to_json` line per event, flushed per event."""

    def __init__(self, path: str, stream: TextIO | None = None) -> None:
        self.path = path
        self._file = stream if stream is not None else open_output(path)

    @classmethod
    def to_fd(cls, fd: int) -> RecordSink:
        """The live channel to a parent process (a pipe inherited as `fd`)."""
        return cls(f"<fd {fd}>", os.fdopen(fd, "w", encoding="utf-8", buffering=1))

    def handle(self, event: Event) -> None:
        try:
            self._file.write(to_json(event) + "\n")
            self._file.flush()
        except BrokenPipeError:
            pass  # the live UI is gone (user quit): the run itself goes on

    def close(self) -> None:
        self._file.close()
