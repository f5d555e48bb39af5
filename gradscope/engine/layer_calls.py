"""Watching every Keras layer call for the length of a block (activation taps,
output and embedding-id recording, the step cost): one way to patch
`Layer.__call__`, so each watcher only says what it does around a call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from keras.src.layers.layer import Layer

# (the call being wrapped, the layer, its args, its kwargs) -> the call's result
Around = Callable[..., Any]


@contextmanager
def around_layer_calls(around: Around) -> Iterator[None]:
    """Inside the block, `layer(*args, **kwargs)` runs as
    `around(call, layer, *args, **kwargs)`, where `call` is the call as it was
    (watchers nest: the inner one wraps the outer's)."""
    original = Layer.__call__

    def watched(layer: Any, *args: Any, **kwargs: Any) -> Any:
        return around(original, layer, *args, **kwargs)

    Layer.__call__ = watched  # type: ignore[method-assign]
    try:
        yield
    finally:
        Layer.__call__ = original  # type: ignore[method-assign]
