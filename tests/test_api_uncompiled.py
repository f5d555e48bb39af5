"""`gradscope.diagnose(model, x, y, loss=..., optimizer=...)`: an uncompiled model,
or one trained by a custom `tf.GradientTape` loop, diagnosed as if compiled with
them; a compiled model judged with another loss. Afterwards the model's compile
state is as it was, and training goes on exactly as without the diagnosis."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import gradscope  # noqa: E402
import gradscope.engine.target as engine_target  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(128, 8)).astype("float32")
CLASSES = ((X[:, 0] > 0).astype("int64") + (X[:, 1] > 0).astype("int64"))
ONE_HOT = np.eye(3, dtype="float32")[CLASSES]
BINARY = (X[:, 0] + X[:, 1] > 0).astype("float32")


def three_classes() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                             keras.layers.Dense(3, activation="softmax", name="out")], name="three")


def binary_functional() -> keras.Model:
    keras.utils.set_random_seed(0)
    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    return keras.Model(x, keras.layers.Dense(1, activation="sigmoid", name="out")(h), name="binary")


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="subclassed")
        self.hidden = keras.layers.Dense(16, activation="relu", name="hidden")
        self.out = keras.layers.Dense(1, activation="sigmoid", name="out")

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))


def subclassed() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = Subclassed()
    model(X[:2])
    return model


def attributes(model: keras.Model) -> dict[str, Any]:
    """Every attribute of the model: the object it holds, and the objects in it
    when it is a list, dict or set (TensorFlow's checkpoint dependencies...)."""
    found: dict[str, Any] = {}
    for name, value in vars(model).items():
        items: Any = None
        if isinstance(value, (list, set)):
            items = [id(v) for v in value]
        elif isinstance(value, dict):
            items = {str(k): id(v) for k, v in value.items()}
        found[name] = (id(value), items)
    return found


def values(variables: list[Any]) -> list[np.ndarray]:
    return [np.array(v.numpy(), copy=True) for v in variables]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def loop_steps(model: keras.Model, optimizer: Any, start: int, steps: int) -> None:
    """The user's own training loop: `steps` batches of 32 from batch `start` on."""
    loss = keras.losses.BinaryCrossentropy()
    for i in range(start, start + steps):
        rows = slice(32 * (i % 4), 32 * (i % 4) + 32)
        with tf.GradientTape() as tape:
            value = loss(BINARY[rows, None], model(X[rows], training=True))
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))


def update_ratios(report: gradscope.Report) -> list[tuple[str, int, float]]:
    return [(r["layer"], r["step"], r["update_ratio"]) for r in report.layers]


def test_an_uncompiled_sequential_is_judged_with_the_loss_given_and_stays_uncompiled() -> None:
    # Given an uncompiled model and one-hot labels
    model = three_classes()
    before = attributes(model)
    # When it is diagnosed with the sparse loss (which wants class ids)
    report = gradscope.diagnose(model, X, ONE_HOT, loss="sparse_categorical_crossentropy",
                                optimizer="adam", batch_size=32, seed=0, budget=0)
    # Then the mismatch is the most likely cause
    assert report.headline is not None and report.headline.check == "loss-label-mismatch", repr(report)
    # and the model is exactly as it was: not compiled, no optimizer, loss or metrics
    assert model.compiled is False and getattr(model, "optimizer", None) is None
    assert model.loss is None and model.metrics == [] and model.train_function is None
    assert attributes(model) == before
    # and compiled and trained now, it trains bit for bit as a model never diagnosed
    histories, weights = [], []
    for trained in (model, three_classes()):
        keras.utils.set_random_seed(1)
        trained.compile(keras.optimizers.Adam(1e-2), "categorical_crossentropy", metrics=["accuracy"])
        histories.append(trained.fit(X, ONE_HOT, batch_size=32, epochs=2, verbose=0).history)
        weights.append(values(trained.weights))
    assert histories[0] == histories[1] and same(weights[0], weights[1])
    assert set(histories[0]) == {"loss", "accuracy"}


@pytest.mark.parametrize("probed", ["clone", "in-place"])
def test_a_custom_training_loop_is_judged_with_its_optimizer_state_and_goes_on_unchanged(
    probed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if probed == "in-place":  # as a model too large to clone is probed
        monkeypatch.setattr(engine_target, "CLONE_MAX_BYTES", 0)
    # Given a subclassed model trained three steps by the user's own loop
    model, optimizer = subclassed(), keras.optimizers.Adam(1e-2)
    loop_steps(model, optimizer, 0, 3)
    state = values([*model.variables, *optimizer.variables])
    before = attributes(model)
    # When it is diagnosed with the loop's loss and optimizer
    report = gradscope.diagnose(model, X, BINARY, loss=keras.losses.BinaryCrossentropy(),
                                optimizer=optimizer, batch_size=32, seed=0, budget=0)
    # Then the probe measured it as a compile with that optimizer would: its
    # state (3 iterations, Adam's moments) shapes the update ratios
    assert {r["layer"] for r in report.layers} == {"hidden", "out"}
    twin, twin_optimizer = subclassed(), keras.optimizers.Adam(1e-2)
    loop_steps(twin, twin_optimizer, 0, 3)
    twin.compile(twin_optimizer, keras.losses.BinaryCrossentropy())
    compiled = gradscope.diagnose(twin, X, BINARY, batch_size=32, seed=0, budget=0)
    assert update_ratios(report) == update_ratios(compiled)
    if probed == "clone":  # (a fresh Adam would have measured other ratios)
        fresh = gradscope.diagnose(subclassed(), X, BINARY, loss="binary_crossentropy",
                                   optimizer=keras.optimizers.Adam(1e-2), batch_size=32, seed=0,
                                   budget=0)
        assert update_ratios(fresh) != update_ratios(report)
    # and the model, the optimizer's iteration count and slots are bit-identical
    assert same(values([*model.variables, *optimizer.variables]), state)
    assert int(optimizer.iterations.numpy()) == 3
    assert attributes(model) == before and model.compiled is False
    # and the loop goes on as it would have without the diagnosis
    untouched, untouched_optimizer = subclassed(), keras.optimizers.Adam(1e-2)
    loop_steps(untouched, untouched_optimizer, 0, 3)
    loop_steps(model, optimizer, 3, 2)
    loop_steps(untouched, untouched_optimizer, 3, 2)
    assert same(values([*model.variables, *optimizer.variables]),
                values([*untouched.variables, *untouched_optimizer.variables]))


def test_an_optimizer_not_yet_built_stays_unbuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    # (In place, the probe would otherwise build the optimizer it is given.)
    monkeypatch.setattr(engine_target, "CLONE_MAX_BYTES", 0)
    # Given a functional model and an optimizer its loop has not used yet,
    # and the loss as a plain function
    model, optimizer = binary_functional(), keras.optimizers.SGD(0.1, momentum=0.9)
    variables = list(optimizer.variables)

    def bce(y_true: Any, y_pred: Any) -> Any:
        return keras.losses.binary_crossentropy(y_true, y_pred)

    # When it is diagnosed with them
    report = gradscope.diagnose(model, X, BINARY, loss=bce, optimizer=optimizer, batch_size=32,
                                seed=0, budget=0)
    # Then it was probed, and the optimizer is as the user left it: not built
    assert {r["layer"] for r in report.layers} == {"hidden", "out"}
    assert optimizer.built is False and list(optimizer.variables) == variables
    # and the loop trains as it would have
    untouched, untouched_optimizer = binary_functional(), keras.optimizers.SGD(0.1, momentum=0.9)
    loop_steps(model, optimizer, 0, 2)
    loop_steps(untouched, untouched_optimizer, 0, 2)
    assert same(values([*model.variables, *optimizer.variables]),
                values([*untouched.variables, *untouched_optimizer.variables]))


def compiled_binary() -> keras.Model:
    model = binary_functional()
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    model.fit(X, BINARY, batch_size=32, epochs=1, verbose=0, shuffle=False)
    return model


def test_a_compiled_model_is_judged_with_the_loss_given_then_fits_as_compiled() -> None:
    # Given a compiled model that has trained an epoch
    model = compiled_binary()
    own = (model.loss, model.optimizer, model._compile_loss, model.train_function)
    metrics = list(model.metrics)
    before, state = attributes(model), values([*model.variables, *model.optimizer.variables])
    # When it is diagnosed as it is, then with a squared error instead
    as_compiled = gradscope.diagnose(model, X, BINARY, batch_size=32, seed=0, budget=0)
    with_mse = gradscope.diagnose(model, X, BINARY, loss="mse", batch_size=32, seed=0, budget=0)
    # Then the verdict follows the loss given
    assert "mse-for-classification" not in [v.check for v in as_compiled.verdicts]
    assert with_mse.headline is not None and with_mse.headline.check == "mse-for-classification", repr(with_mse)
    # and its own compile state is back: the same loss, optimizer, metrics, step
    now = (model.loss, model.optimizer, model._compile_loss, model.train_function)
    assert all(a is b for a, b in zip(own, now, strict=True)) and model.metrics == metrics
    assert attributes(model) == before
    assert same(values([*model.variables, *model.optimizer.variables]), state)
    # and its next fit is bit for bit the fit of a model never diagnosed
    twin = compiled_binary()
    histories = [m.fit(X, BINARY, batch_size=32, epochs=2, verbose=0).history for m in (model, twin)]
    assert histories[0] == histories[1] and set(histories[0]) == {"loss", "accuracy"}
    assert same(values(model.weights), values(twin.weights))


def test_a_compiled_model_is_judged_with_the_optimizer_given() -> None:
    # Given a compiled model that trains well with its own Adam
    model = compiled_binary()
    own, state = model.optimizer, values([*model.variables, *model.optimizer.variables])
    # When it is diagnosed with a learning rate far too low instead
    report = gradscope.diagnose(model, X, BINARY, optimizer=keras.optimizers.SGD(1e-9),
                                batch_size=32, seed=0)
    # Then that is what is judged
    assert report.headline is not None and report.headline.check == "lr-too-low", repr(report)
    # and its own optimizer is back, with its state
    assert model.optimizer is own and model._compile_config.config["loss"] == "binary_crossentropy"
    assert same(values([*model.variables, *model.optimizer.variables]), state)


def test_an_uncompiled_model_without_a_loss_is_one_clear_error() -> None:
    model = binary_functional()
    with pytest.raises(ValueError) as raised:
        gradscope.diagnose(model, X, BINARY)
    message = str(raised.value)
    assert "pass the loss and optimizer your training uses" in message
    assert "loss=..., optimizer=..." in message and "compile the model first" in message
    with pytest.raises(ValueError, match=r"\(missing: optimizer=\)$"):
        gradscope.diagnose(model, X, BINARY, loss="binary_crossentropy")
    assert model.compiled is False and getattr(model, "optimizer", None) is None
