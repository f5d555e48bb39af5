"""One gradscope run: takes the first fit, diagnoses it, then lets the user's fit go on.

(Placeholder while the engine lands: it only records that fit was seen and
proceeds with the user's own fit.)
"""

from __future__ import annotations

from typing import Any

from gradscope.events import EventBus, RunFinished
from gradscope.options import RunOptions


class Session:
    def __init__(self, options: RunOptions, bus: EventBus) -> None:
        self.options = options
        self.bus = bus
        self.fit_seen = False

    def on_fit(self, call: Any) -> Any:
        """Called by the interceptor with the first FitCall."""
        self.fit_seen = True
        return call.run_original(call.args, call.kwargs)

    def verdict_exit_code(self) -> int:
        return 1 if any(v.severity == "error" for v in self.bus.verdicts()) else 0

    def finish(self, status: str, exit_code: int) -> None:
        self.bus.emit(RunFinished(status=status, exit_code=exit_code))
        self.bus.close()
