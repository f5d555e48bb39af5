"""Where the UI's events come from: a recording (replay) or a live, bounded queue.

The app only ever calls `drain()` on its own timer, so a producer never waits
for the UI and never touches a widget. Nothing here imports Textual, so the
producing side (the live runner's reader thread) can use it on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from gradscope.events import Event, LayerStats, StepStats

# Samples a slow UI may skip: a newer one says more than an older one.
# Everything else (verdicts, notes, phases, RunFinished...) is never dropped.
STALE_TYPES = (LayerStats, StepStats)


class EventSource(Protocol):
    """What GradscopeApp reads from: `drain()` returns at once with what arrived
    since the last call (possibly nothing), oldest first. A source may say
    whether it is `live` (a run going on: the view can pause) or a recording;
    one that does not say counts as live."""

    def drain(self) -> list[Event]: ...


class ReplaySource:
    """A recorded run: the whole recording on the first drain, then nothing."""

    live = False  # nothing more will come: no pause, no "running"

    def __init__(self, events: Iterable[Event]) -> None:
        self._events: list[Event] = list(events)

    def drain(self) -> list[Event]:
        events, self._events = self._events, []
        return events


def weight(event: Event) -> int:
    # A 1000-layer LayerStats costs the UI 1000 times what a StepStats does.
    return max(1, len(event.rows)) if isinstance(event, LayerStats) else 1


class QueueSource:
    """A thread-safe, bounded live channel: `put` (or `handle`, as an EventBus
    sink) from any thread, `drain` from the UI.

    `put` never blocks. When the stale samples waiting (LayerStats rows and
    StepStats, counted by row) exceed `max_rows`, the oldest of them are
    dropped until half the budget is left; the newest LayerStats and StepStats
    are always kept (latest wins). Verdicts, notes, phase changes and
    RunFinished are never dropped. `dropped` counts the events skipped.
    """

    live = True

    def __init__(self, max_rows: int = 20_000) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be 1 or more. Received: max_rows={max_rows}")
        self.max_rows = max_rows
        self.dropped = 0
        self._lock = threading.Lock()
        self._items: list[Event] = []
        self._stale_weight = 0

    def put(self, event: Event) -> None:
        with self._lock:
            self._items.append(event)
            if isinstance(event, STALE_TYPES):
                self._stale_weight += weight(event)
                if self._stale_weight > self.max_rows:
                    self._compact()

    def put_many(self, events: Iterable[Event]) -> None:
        for event in events:
            self.put(event)

    def drain(self) -> list[Event]:
        with self._lock:
            items, self._items = self._items, []
            self._stale_weight = 0
        return items

    def pending(self) -> int:
        """How many events wait to be drained."""
        with self._lock:
            return len(self._items)

    # The EventBus Sink protocol, so the queue can be one of a run's outputs.
    def handle(self, event: Event) -> None:
        self.put(event)

    def close(self) -> None:
        pass

    def _compact(self) -> None:
        budget = self.max_rows // 2
        kept: list[Event] = []
        newest_seen: set[type] = set()
        used = 0
        full = False
        for event in reversed(self._items):
            if isinstance(event, STALE_TYPES):
                cost = weight(event)
                kind = type(event)
                # Keep an unbroken window of the newest samples, and always the newest of each kind.
                full = full or (kind in newest_seen and used + cost > budget)
                if full and kind in newest_seen:
                    self.dropped += 1
                    continue
                newest_seen.add(kind)
                used += cost
            kept.append(event)
        kept.reverse()
        self._items = kept
        self._stale_weight = used
