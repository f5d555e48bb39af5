"""The first fit() anywhere is handed to gradscope, whatever way the script spells Keras."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradscope.intercept import FitCall, ProbeFinished, intercept_fit

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

X = np.arange(24, dtype="float32").reshape(8, 3) / 24
Y = np.ones((8, 1), dtype="float32")
HELD = object()  # what our stand-in for the session hands back to the script


def tf_keras_sequential() -> Any:
    return tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])


def keras_sequential() -> Any:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])


def imported_sequential() -> Any:
    from tensorflow.keras import Sequential  # the spelling under test

    return Sequential([keras.Input((3,)), keras.layers.Dense(1)])


def functional() -> Any:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


class WrappedFit(keras.Sequential):
    """A user's subclass whose own fit defers to Keras."""

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        return super().fit(*args, **kwargs)


def subclass_calling_super() -> Any:
    return WrappedFit([keras.Input((3,)), keras.layers.Dense(1)])


class TinyModel(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, inputs: Any) -> Any:
        return self.dense(inputs)


def subclassed_model() -> Any:
    return TinyModel()


SPELLINGS: list[Callable[[], Any]] = [
    tf_keras_sequential,
    keras_sequential,
    imported_sequential,
    functional,
    subclass_calling_super,
    subclassed_model,
]


def compiled(build: Callable[[], Any]) -> Any:
    model = build()
    # No XLA: compiling it costs seconds per model on a small CPU and proves nothing here.
    model.compile(optimizer="sgd", loss="mse", jit_compile=False)
    return model


class Recorder:
    """Stands in for the session: records what it was handed."""

    def __init__(self, then: Callable[[FitCall], Any] = lambda call: HELD) -> None:
        self.calls: list[FitCall] = []
        self.then = then

    def __call__(self, call: FitCall) -> Any:
        self.calls.append(call)
        return self.then(call)


@pytest.mark.parametrize("build", SPELLINGS, ids=lambda build: build.__name__)
def test_each_spelling_hands_its_first_fit_over_once(build):
    # given a compiled model, built the way some user writes it
    model = compiled(build)
    original = keras.Model.fit
    handler = Recorder()

    # when the script fits twice under gradscope
    with intercept_fit(handler):
        first = model.fit(X, Y, epochs=1, verbose=0)
        second = model.fit(X, Y, epochs=2, verbose=0)

    # then the first call, exactly as the script made it, went to gradscope
    assert len(handler.calls) == 1
    call = handler.calls[0]
    assert call.model is model
    assert call.args[0] is X and call.args[1] is Y
    assert call.kwargs == {"epochs": 1, "verbose": 0}
    assert first is HELD
    # and the second trained for real
    assert len(second.history["loss"]) == 2
    # and the patch is gone
    assert "fit" not in keras.Model.__dict__
    assert keras.Model.fit is original


def test_run_original_trains_and_its_result_reaches_the_script():
    # given a handler that runs the user's fit itself, as the session does
    model = compiled(keras_sequential)
    before = [w.copy() for w in model.get_weights()]
    handler = Recorder(then=lambda call: call.run_original(call.args, call.kwargs))

    with intercept_fit(handler):
        history = model.fit(X, Y, epochs=3, verbose=0)

    assert len(handler.calls) == 1
    assert len(history.history["loss"]) == 3
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_fit_made_while_the_first_is_handled_runs_untouched():
    # given a handler that fits another model (a probe clone) before answering
    model, clone = compiled(keras_sequential), compiled(keras_sequential)

    def probe_then_hold(call: FitCall) -> Any:
        probe_history = clone.fit(X, Y, epochs=1, verbose=0)
        assert len(probe_history.history["loss"]) == 1
        return HELD

    handler = Recorder(then=probe_then_hold)
    with intercept_fit(handler):
        result = model.fit(X, Y, verbose=0)

    assert result is HELD
    assert [call.model for call in handler.calls] == [model]


def test_the_first_model_fitted_is_the_one_handed_over():
    # Fit only hands over the first model: a second model's fit runs normally.
    # (The held first fit returns at once, so only `other` pays for training.)
    first, other = compiled(keras_sequential), compiled(functional)
    handler = Recorder()

    with intercept_fit(handler):
        first.fit(X, Y, verbose=0)
        history = other.fit(X, Y, verbose=0)

    assert [call.model for call in handler.calls] == [first]
    assert "loss" in history.history


def test_patch_is_removed_when_the_handler_ends_the_script():
    # given the session ends the script after the probe (--probe-only)
    model = compiled(keras_sequential)

    def finish(call: FitCall) -> Any:
        raise ProbeFinished()

    # when the script guards its fit with `except Exception`, the probe still ends it
    with pytest.raises(ProbeFinished), intercept_fit(Recorder(then=finish)):
        try:
            model.fit(X, Y, verbose=0)
        except Exception:  # the user's guard
            pytest.fail("ProbeFinished was swallowed by `except Exception`")

    assert "fit" not in keras.Model.__dict__


def test_intercepting_twice_in_a_row_starts_afresh():
    # Each run gets its own "first fit".
    model = compiled(keras_sequential)
    handlers = [Recorder(), Recorder()]

    for handler in handlers:
        with intercept_fit(handler):
            model.fit(X, Y, verbose=0)

    assert [len(handler.calls) for handler in handlers] == [1, 1]


# --------------------------------------------------------------------------- train_on_batch


class WrappedTrainOnBatch(keras.Sequential):
    """A user's subclass whose own train_on_batch defers to Keras."""

    def train_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        return super().train_on_batch(*args, **kwargs)


SPELLINGS_ON_BATCH: list[Callable[[], Any]] = [
    *SPELLINGS,
    lambda: WrappedTrainOnBatch([keras.Input((3,)), keras.layers.Dense(1)]),
]


@pytest.mark.parametrize(
    "build", SPELLINGS_ON_BATCH, ids=[*(b.__name__ for b in SPELLINGS), "subclass_train_on_batch"]
)
def test_each_spelling_hands_its_first_train_on_batch_over_once(build):
    # given a compiled model, trained by a train_on_batch loop (no fit at all)
    model = compiled(build)
    originals = keras.Model.fit, keras.Model.train_on_batch
    handler = Recorder()

    with intercept_fit(handler):
        first = model.train_on_batch(X, Y, sample_weight=None)
        second = model.train_on_batch(X, Y)

    # then the first call, as the script made it, went to gradscope, marked as such
    assert len(handler.calls) == 1
    call = handler.calls[0]
    assert call.method == "train_on_batch" and call.model is model
    assert call.args[0] is X and call.args[1] is Y and call.kwargs == {"sample_weight": None}
    assert first is HELD
    # the second trained for real and returned Keras's own answer
    assert isinstance(second, float)
    # and both patches are gone
    assert "fit" not in keras.Model.__dict__ and "train_on_batch" not in keras.Model.__dict__
    assert (keras.Model.fit, keras.Model.train_on_batch) == originals


def test_run_original_train_on_batch_returns_what_keras_returns():
    model = compiled(keras_sequential)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"], jit_compile=False)
    handler = Recorder(then=lambda call: call.run_original(call.args, call.kwargs))
    with intercept_fit(handler):
        logs = model.train_on_batch(X, Y, return_dict=True)
    assert handler.calls[0].method == "train_on_batch"
    assert set(logs) == {"loss", "mae"}


@pytest.mark.parametrize("first", ["fit", "train_on_batch"])
def test_whichever_of_fit_and_train_on_batch_comes_first_is_the_one(first):
    model = compiled(keras_sequential)
    handler = Recorder()
    with intercept_fit(handler):
        if first == "fit":
            model.fit(X, Y, verbose=0)
            later = model.train_on_batch(X, Y)
            assert isinstance(later, float)
        else:
            model.train_on_batch(X, Y)
            later = model.fit(X, Y, verbose=0)
            assert "loss" in later.history
    assert [call.method for call in handler.calls] == [first]


def test_a_fit_method_calls_into_is_not_taken_twice():
    # A train_on_batch made while the first fit is handled (a probe) goes to Keras.
    model, clone = compiled(keras_sequential), compiled(keras_sequential)

    def probe_then_hold(call: FitCall) -> Any:
        assert isinstance(clone.train_on_batch(X, Y), float)
        return HELD

    handler = Recorder(then=probe_then_hold)
    with intercept_fit(handler):
        assert model.fit(X, Y, verbose=0) is HELD
    assert [call.method for call in handler.calls] == ["fit"]
