"""`model.fit(..., callbacks=[gradscope.Callback()])`: the diagnosis at the start
of training on fit's own data, the training watched, and the training itself
exactly the one that runs without the callback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import gradscope  # noqa: E402
from gradscope.events import EpochEnded  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(384, 8)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("float32")


def model_with(output: str, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-2
               ) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                              keras.layers.Dropout(0.1, name="drop"),
                              keras.layers.Dense(1, activation=output, name="out")])
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy", metrics=["accuracy"])
    return model


def state(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in [*model.variables, *model.optimizer.variables]]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def trained(data: str, callback: keras.callbacks.Callback | None) -> tuple[dict, list[np.ndarray], int]:
    """A seeded healthy model fit on `data`; its History, final state, and how
    many batches a generator gave."""
    model = model_with("sigmoid")
    given = [0]

    def generator():
        i = 0
        while True:
            given[0] += 1
            rows = slice(i % 12 * 32, i % 12 * 32 + 32)
            yield X[rows], Y[rows]
            i += 1

    keras.utils.set_random_seed(1)
    callbacks = [callback] if callback is not None else []
    if data == "arrays":
        history = model.fit(X, Y, batch_size=32, epochs=3, validation_split=0.25, shuffle=True,
                            callbacks=callbacks, verbose=0)
    elif data == "dataset":
        # Reshuffled at every pass: gradscope's own passes must not move fit's order.
        dataset = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(384).batch(32)
        history = model.fit(dataset, epochs=3, callbacks=callbacks, verbose=0)
    else:
        history = model.fit(generator(), steps_per_epoch=12, epochs=3, callbacks=callbacks, verbose=0)
    return history.history, state(model), given[0]


@pytest.mark.parametrize("data", ["arrays", "dataset", "generator"])
def test_the_training_is_the_one_that_runs_without_the_callback(data: str) -> None:
    # Given the same seeded training with and without the callback
    plain_history, plain_state, plain_given = trained(data, None)
    callback = gradscope.Callback(show=False, watch_every=4, seed=0)
    history, final, given = trained(data, callback)
    # Then the diagnosis ran on fit's data and the training watched every 4th step
    report = callback.report
    assert {row["phase"] for row in report.layers} == {"probe", "train"}
    assert [e.epoch for e in report.events if isinstance(e, EpochEnded)] == [1, 2, 3]
    assert not any(v.severity == "error" for v in report.verdicts), report
    # and the training lost no batch and is bit for bit the one without the callback
    # (how many batches a generator gives beyond them depends on Keras's prefetch)
    if data == "generator":
        assert given >= 36 and plain_given >= 36
    assert history == plain_history
    assert same(final, plain_state)


def test_an_error_is_shown_and_the_training_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    model = model_with("softmax")
    callback = gradscope.Callback(watch_every=3)
    history = model.fit(X, Y, batch_size=32, epochs=2, callbacks=[callback], verbose=0)
    out = capsys.readouterr().out
    # The summary, most likely cause first, is printed when the training starts
    assert "Most likely cause: [single-unit-softmax]" in out
    assert "fix:" in out
    assert callback.report.headline is not None
    assert callback.report.headline.check == "single-unit-softmax"
    assert not callback.report.ok
    # and the training ran its two epochs
    assert len(history.history["loss"]) == 2


def test_on_error_stop_trains_no_step(capsys: pytest.CaptureFixture[str]) -> None:
    model = model_with("softmax")
    before = state(model)
    history = model.fit(X, Y, batch_size=32, epochs=5, validation_split=0.25,
                        callbacks=[gradscope.Callback(on_error="stop")], verbose=0)
    out = capsys.readouterr().out
    assert "gradscope: stopped the training before its first step: single-unit-softmax (out)" in out
    # Not one step: weights and optimizer state (iterations 0) as they were
    assert same(state(model), before)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert len(history.history["loss"]) == 1
    # and the model trains as usual afterwards
    model.fit(X, Y, batch_size=32, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 12


def test_on_error_raise_fails_the_fit_with_the_cause() -> None:
    model = model_with("softmax")
    before = state(model)
    with pytest.raises(gradscope.DiagnosisError) as raised:
        model.fit(X, Y, batch_size=32, epochs=5,
                  callbacks=[gradscope.Callback(on_error="raise", show=False)], verbose=0)
    assert str(raised.value).startswith("single-unit-softmax (out):")
    assert same(state(model), before)


def test_a_learning_rate_that_vanishes_is_found_during_training(capsys: pytest.CaptureFixture[str]) -> None:
    # Healthy at the start; the schedule takes the rate to nothing within epochs
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.7)
    model = model_with("sigmoid", schedule)
    callback = gradscope.Callback(seed=0)
    model.fit(X, Y, batch_size=32, epochs=8, callbacks=[callback], verbose=0)
    checks = [v.check for v in callback.report.verdicts]
    assert "learning-rate-vanished" in checks
    # The training's findings are printed when the training ends
    assert "more finding" in capsys.readouterr().out
    # and the model's train_function is Keras's again (no watch outside this fit)
    from gradscope.engine.watch import WatchedTrain

    assert not isinstance(model.train_function, WatchedTrain)


def test_a_second_fit_with_the_same_callback_is_watched_not_diagnosed_again() -> None:
    model = model_with("sigmoid")
    callback = gradscope.Callback(show=False, watch_every=6)
    model.fit(X, Y, batch_size=32, epochs=1, callbacks=[callback], verbose=0)
    probed = [row for row in callback.report.layers if row["phase"] == "probe"]
    model.fit(X, Y, batch_size=32, epochs=2, callbacks=[callback], verbose=0)
    epochs = [(e.fit, e.epoch, e.step) for e in callback.report.events if isinstance(e, EpochEnded)]
    assert epochs == [(1, 1, 12), (2, 1, 24), (2, 2, 36)]
    assert [row for row in callback.report.layers if row["phase"] == "probe"] == probed


def test_under_gradscope_run_the_callback_leaves_the_work_to_the_cli(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, keras, gradscope
        x = np.random.default_rng(0).normal(size=(128, 4)).astype("float32")
        y = (x[:, 0] > 0).astype("float32")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="softmax")])
        model.compile("adam", "binary_crossentropy")
        callback = gradscope.Callback()
        model.fit(x, y, epochs=1, callbacks=[callback], verbose=0)
        print("CALLBACK EVENTS", len(callback.report.events))
    """))
    verdicts = tmp_path / "v.csv"
    result = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--csv", os.devnull,
         "--verdicts", str(verdicts), str(script)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "CALLBACK EVENTS 0" in result.stdout
    assert verdicts.read_text().count("single-unit-softmax") == 1


def test_on_error_must_be_a_known_word() -> None:
    with pytest.raises(ValueError, match="on_error must be one of 'continue', 'stop', 'raise'"):
        gradscope.Callback(on_error="halt")


def test_the_same_callback_on_another_model_diagnoses_that_one() -> None:
    callback = gradscope.Callback(show=False, watch_every=6)
    first = model_with("sigmoid")
    first.fit(X, Y, batch_size=32, epochs=1, callbacks=[callback], verbose=0)
    second = model_with("softmax")
    second.fit(X, Y, batch_size=32, epochs=1, callbacks=[callback], verbose=0)
    # The report is the second model's: its own cause, its one epoch
    assert callback.report.headline is not None
    assert callback.report.headline.check == "single-unit-softmax"
    assert [e.fit for e in callback.report.events if isinstance(e, EpochEnded)] == [1]
    # and the first model trains as Keras makes it, unwatched
    from gradscope.engine.watch import WatchedTrain

    assert not isinstance(first.train_function, WatchedTrain)
    assert not isinstance(second.train_function, WatchedTrain)
