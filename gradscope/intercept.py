"""Takes over the first `fit()` or `train_on_batch()` a script makes on any Keras model.

Scripts that train with a `train_on_batch` loop (older tutorials, GANs) never
call fit: the first of the two, whichever comes first, is the one diagnosed.

Importing this module is cheap: Keras (and so TensorFlow, ~2.4 s) is imported
only when `intercept_fit` is entered, i.e. when a script is actually run.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gradscope.errors import BackendError, GradscopeError

# The training entry points taken over; the first call to any of them is the one.
METHODS = ("fit", "train_on_batch")

# How many intercept_fit blocks are open (gradscope run holds one): a
# gradscope.Callback in a script run by `gradscope run` leaves the work to it.
_open = 0


def intercepting() -> bool:
    """True inside `gradscope run` (the script's fits are taken over already)."""
    return _open > 0


@dataclass
class FitCall:
    """One `model.fit(*args, **kwargs)` (or `train_on_batch`) call, held back until gradscope lets it run."""

    model: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    original: Callable[..., Any]  # the unpatched Keras method, taking the model first
    method: str = "fit"  # "fit" | "train_on_batch": which of METHODS was called

    def run_original(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run Keras' own method on this model (with these, possibly adjusted, arguments)."""
        return self.original(self.model, *args, **kwargs)


class ProbeFinished(BaseException):
    """Raised by the session in --probe-only mode to end the script after the probe.

    A BaseException, so a user's `except Exception:` around fit cannot swallow it.
    """


@contextmanager
def intercept_fit(
    on_first_fit: Callable[[FitCall], Any],
    on_later_fit: Callable[[FitCall], Any] | None = None,
) -> Iterator[None]:
    """Patch `keras.Model.fit` and `keras.Model.train_on_batch` so the first call
    of either, anywhere, goes to `on_first_fit` (`FitCall.method` says which).

    Whatever `on_first_fit` returns is what the script's call returns. Every
    later call, and any call made while the first is being handled (a probe on
    a clone, the user's own call run by the session), goes straight to Keras,
    or to `on_later_fit` when given (once the first call has been handled: the
    watch takes a second fit of the same model).
    """
    from gradscope import backend_check

    try:
        import keras
    except ImportError as error:
        backend = backend_check.configured_backend()
        if not backend.ok:  # `No module named 'jax'` says less than this
            raise BackendError(backend_check.message(backend)) from None
        raise GradscopeError(f"cannot import Keras: {error}", exit_code=2) from error
    loaded = backend_check.loaded_backend()
    if loaded is not None and not loaded.ok:
        raise BackendError(backend_check.message(loaded))
    # What KERAS_BACKEND was when Keras was loaded: a script that sets another
    # backend later (before its own `import keras`, which is then a no-op, or
    # with keras.config.set_backend) is stopped at its first fit, or at its end.
    variable_before = os.environ.get(backend_check.VARIABLE)
    wrong_backend: BackendError | None = None

    def check_backend() -> None:
        nonlocal wrong_backend
        if wrong_backend is None:
            line = backend_check.changed_by_script(variable_before)
            if line is not None:
                wrong_backend = BackendError(line)
        if wrong_backend is not None:
            raise wrong_backend

    # Keras 3's Model inherits both from the backend trainer, so patching Model
    # covers tf.keras, keras, Sequential, functional and subclassed models alike.
    model_class = keras.Model
    lock = threading.Lock()
    claimed = False
    handled = False  # the first call is over (it returned or raised)

    def first_call() -> bool:
        nonlocal claimed
        with lock:  # a script may train from several threads: exactly one is first
            first = not claimed
            claimed = True
        return first

    def patched(name: str) -> Callable[..., Any]:
        original = getattr(model_class, name)

        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal handled
            if not claimed or wrong_backend is not None:
                check_backend()
            if not first_call():
                if on_later_fit is None or not handled:
                    return original(self, *args, **kwargs)
                return on_later_fit(
                    FitCall(model=self, args=args, kwargs=kwargs, original=original, method=name)
                )
            try:
                return on_first_fit(
                    FitCall(model=self, args=args, kwargs=kwargs, original=original, method=name)
                )
            finally:
                handled = True

        return method

    # What Model itself held (an own attribute, or nothing: inherited), to put back.
    saved = {name: (name in model_class.__dict__, model_class.__dict__.get(name)) for name in METHODS}
    global _open
    _open += 1
    try:
        for name in METHODS:
            setattr(model_class, name, patched(name))
        yield
        if not claimed or wrong_backend is not None:  # a fit would have said it already
            check_backend()
    finally:
        _open -= 1
        for name, (had_own, value) in saved.items():
            if had_own:
                setattr(model_class, name, value)
            elif name in model_class.__dict__:
                delattr(model_class, name)
