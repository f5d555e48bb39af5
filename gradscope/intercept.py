"""Takes over the first `fit()` a script makes on any Keras model.

Importing this module is cheap: Keras (and so TensorFlow, ~2.4 s) is imported
only when `intercept_fit` is entered, i.e. when a script is actually run.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gradscope.errors import GradscopeError


@dataclass
class FitCall:
    """One `model.fit(*args, **kwargs)` call, held back until gradscope lets it run."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    original: Callable[..., Any]  # the unpatched Keras fit, taking the model first

    def run_original(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run Keras' own fit on this model (with these, possibly adjusted, arguments)."""
        return self.original(self.model, *args, **kwargs)


class ProbeFinished(BaseException):
    """Raised by the session in --probe-only mode to end the script after the probe.

    A BaseException, so a user's `except Exception:` around fit cannot swallow it.
    """


@contextmanager
def intercept_fit(on_first_fit: Callable[[FitCall], Any]) -> Iterator[None]:
    """Patch `keras.Model.fit` so the first fit call anywhere goes to `on_first_fit`.

    Whatever `on_first_fit` returns is what the script's `fit()` returns. Every
    later call, and any fit made while the first is being handled (a probe on a
    clone, the user's own fit run by the session), goes straight to Keras.
    """
    try:
        import keras
    except ImportError as error:
        raise GradscopeError(f"cannot import Keras: {error}", exit_code=2) from error

    # Keras 3's Model inherits fit from the backend trainer, so patching Model
    # covers tf.keras, keras, Sequential, functional and subclassed models alike.
    model_class = keras.Model
    had_own = "fit" in model_class.__dict__
    saved = model_class.__dict__.get("fit")
    original = model_class.fit
    lock = threading.Lock()
    claimed = False

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal claimed
        with lock:  # a script may fit from several threads: exactly one is first
            first = not claimed
            claimed = True
        if not first:
            return original(self, *args, **kwargs)
        return on_first_fit(FitCall(model=self, args=args, kwargs=kwargs, original=original))

    model_class.fit = fit
    try:
        yield
    finally:
        if had_own:
            model_class.fit = saved
        else:
            del model_class.fit
