"""The watch in-process (engine/watch.py), on Keras set-ups that change how
fit() calls its train function: steps_per_execution, run_eagerly, mixed
precision. The global step stays exact and the figures are the step's own."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradscope.engine.watch import Watch  # noqa: E402
from gradscope.events import EpochEnded, Event, LayerStats, StepStats  # noqa: E402

X = np.random.default_rng(0).normal(size=(400, 8)).astype("float32")
Y = (X[:, 0] > 0).astype("float32")


def watched_fit(every: int, **compile_args: object) -> list[Event]:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid", dtype="float32")])
    model.compile("adam", "binary_crossentropy", **compile_args)  # type: ignore[arg-type]
    events: list[Event] = []
    watch = Watch(model, events.append, every)
    # 400 samples in batches of 32: 13 steps per epoch, the last one of 16
    model.fit(X, Y, batch_size=32, epochs=2, verbose=0, callbacks=[watch.begin_fit(2)])
    return events


@pytest.mark.parametrize("compile_args", [{"steps_per_execution": 4}, {"run_eagerly": True}],
                         ids=["steps_per_execution", "run_eagerly"])
def test_the_global_step_is_exact(compile_args: dict) -> None:
    events = watched_fit(3, **compile_args)
    assert [(e.epoch, e.step) for e in events if isinstance(e, EpochEnded)] == [(1, 13), (2, 26)]
    watched = [e.step for e in events if isinstance(e, LayerStats)]
    assert watched[0] in (1, 4) and all(1 <= s <= 26 for s in watched)
    losses = [e.loss for e in events if isinstance(e, StepStats)]
    assert losses and all(loss is not None and 0 < loss < 2 for loss in losses)


def test_mixed_precision_gradients_are_reported_unscaled() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        events = watched_fit(1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    plain = watched_fit(1)
    first = next(e for e in events if isinstance(e, LayerStats)).rows[0]
    reference = next(e for e in plain if isinstance(e, LayerStats)).rows[0]
    # the loss scale (32768 at the start) is divided out: the same order as in float32
    assert first.grad_norm is not None and reference.grad_norm is not None
    assert 0.5 < first.grad_norm / reference.grad_norm < 2


def test_a_watched_step_that_fails_gives_train_on_batch_its_batch_back() -> None:
    # A train_on_batch loop whose watched step cannot run (it fails after reading
    # the one batch Keras hands it, as a step that fails while tracing does)
    def model() -> keras.Model:
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu", name="h"),
                              keras.layers.Dense(1, activation="sigmoid", name="o")])
        m.compile("adam", "binary_crossentropy")
        return m

    plain, watched = model(), model()
    events: list[Event] = []
    watch = Watch(watched, events.append, 1)
    watch.install()
    function = watched.train_function

    def failing(iterator: object) -> object:
        next(iter(iterator))  # type: ignore[call-overload]
        raise ValueError("this model cannot be watched")

    function.watched = failing  # type: ignore[union-attr]
    for i in range(3):
        rows = slice(i * 32, i * 32 + 32)
        expected = plain.train_on_batch(X[rows], Y[rows])
        # Then Keras's own step trains that very batch: the same loss, the same weights
        assert watched.train_on_batch(X[rows], Y[rows]) == expected
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(plain.variables, watched.variables, strict=True))
    assert int(watched.optimizer.iterations.numpy()) == 3
