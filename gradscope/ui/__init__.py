"""The Textual UI. `GradscopeApp(source)` shows a run from any event source:
`ReplaySource` (a recording) or `QueueSource` (a live run, fed from any thread).

Only `sources` is imported here, so a producer can use `QueueSource` without Textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradscope.ui.sources import EventSource, QueueSource, ReplaySource

if TYPE_CHECKING:
    from gradscope.ui.app import GradscopeApp

__all__ = ["EventSource", "GradscopeApp", "QueueSource", "ReplaySource"]


def __getattr__(name: str) -> Any:
    if name == "GradscopeApp":
        from gradscope.ui.app import GradscopeApp

        return GradscopeApp
    raise AttributeError(name)
