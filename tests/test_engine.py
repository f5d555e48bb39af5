"""The probe engine on every kind of Keras model a user writes.

Each model goes through the engine exactly as `Diagnosis.run` (gradscope/diagnosis.py) wires it:
`make_target` -> `probe_layers` -> `describe` -> `ProbeStep.run` -> `layer_figures`,
and the tests read the figures a user would see in a layer row of the CSV.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

from gradscope.engine.layers import LayerMeta, describe, probe_layers  # noqa: E402
from gradscope.engine.probe import LayerFigures, ProbeStep, StepResult  # noqa: E402
from gradscope.engine.rng import preserved_rng  # noqa: E402
from gradscope.engine.target import ProbeTarget, ensure_built, make_target  # noqa: E402

N = 32  # samples per probe batch
WEIGHTED = (L.Dense, L.Conv1D, L.Conv2D)
SATURATING = ("sigmoid", "tanh", "softmax")


# --------------------------------------------------------------------------- the engine, as the session wires it


@dataclass
class Probed:
    """What a user's run would report for one model: one row per layer, per step."""

    target: ProbeTarget
    metas: list[LayerMeta]
    results: list[StepResult]
    steps: list[list[LayerFigures]]

    @property
    def rows(self) -> dict[str, LayerFigures]:
        """The last probe step's figures by layer name (the CSV's `layer` column)."""
        return {m.name: f for m, f in zip(self.metas, self.steps[-1], strict=True)}

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.metas]


def tensors(struct: Any) -> Any:
    return tf.nest.map_structure(lambda a: None if a is None else tf.convert_to_tensor(a), struct)


def run_probe(model: keras.Model, x: Any, y: Any, sw: Any = None, steps: int = 3) -> Probed:
    """make_target, then `steps` compiled probe steps on one batch, then restore."""
    ensure_built(model, x)
    with preserved_rng():
        target = make_target(model, x)
        try:
            layers = probe_layers(target.model)
            metas = describe(layers)
            xt, yt, swt = tensors(x), tensors(y), tensors(sw)
            target.loss_fn(yt, target.model(xt, training=False), swt)  # build the loss eagerly
            probe = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, metas)
            results = [probe.run(xt, yt, swt) for _ in range(steps)]
            figures = [probe.layer_figures(r) for r in results]
        finally:
            target.restore()
    return Probed(target, metas, results, figures)


def weighted_layer_names(model: keras.Model) -> list[str]:
    """Every Dense/Conv layer of the user's model, however deeply nested."""
    return [
        layer.name
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, WEIGHTED)
    ]


# --------------------------------------------------------------------------- the models users write

rng = np.random.default_rng(0)
X4 = rng.normal(size=(N, 4)).astype("float32")
X3 = rng.normal(size=(N, 3)).astype("float32")
Y_REG = rng.normal(size=(N, 1)).astype("float32")
Y_BIN = (Y_REG > 0).astype("float32")
Y_CLS = rng.integers(0, 3, size=(N,)).astype("int32")
IMAGES = rng.normal(size=(N, 8, 8, 1)).astype("float32")


class Regressor(keras.Model):
    """Subclassed, `__init__` args, layers as attributes, no get_config: cannot be cloned."""

    def __init__(self, units: int, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = L.Dense(units, activation="relu")
        self.drop = L.Dropout(rate)
        self.squash = L.Dense(units, activation="tanh")
        self.head = L.Dense(1)

    def call(self, x: Any, training: bool = False) -> Any:
        return self.head(self.squash(self.drop(self.hidden(x), training=training)))


class ConfiguredRegressor(Regressor):
    """The same model with a get_config: Keras can rebuild it, so it is cloned."""

    def __init__(self, units: int, rate: float, **kwargs: Any) -> None:
        super().__init__(units, rate, **kwargs)
        self.units, self.rate = units, rate

    def get_config(self) -> dict[str, Any]:
        return {"units": self.units, "rate": self.rate, "name": self.name}


class Block(L.Layer):
    """A custom layer holding Dense sublayers."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.expand = L.Dense(units, activation="relu", name=f"{self.name}_expand")
        self.project = L.Dense(units, name=f"{self.name}_project")

    def call(self, x: Any) -> Any:
        return self.project(self.expand(x))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


def sequential() -> tuple[keras.Model, Any, Any]:
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3, activation="relu", name="conv"),
            L.BatchNormalization(name="bn"),
            L.Flatten(name="flat"),
            L.Dropout(0.2, name="drop"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="seq",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model, IMAGES, Y_CLS


def functional() -> tuple[keras.Model, Any, Any]:
    inp = keras.Input((4,))
    h = L.Dense(8, activation="relu", name="f_hidden")(inp)
    h = L.Dense(8, activation="tanh", name="f_tanh")(h)
    out = L.Dense(1, activation="sigmoid", name="f_out")(h)
    model = keras.Model(inp, out, name="func")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model, X4, Y_BIN


def subclassed() -> tuple[keras.Model, Any, Any]:
    model = Regressor(8, 0.1, name="sub")
    model.compile(optimizer="adam", loss="mse")
    return model, X4, Y_REG


def subclassed_configured() -> tuple[keras.Model, Any, Any]:
    model = ConfiguredRegressor(8, 0.1, name="subcfg")
    model.compile(optimizer="adam", loss="mse")
    return model, X4, Y_REG


def nested() -> tuple[keras.Model, Any, Any]:
    backbone = keras.Sequential(
        [
            L.Dense(8, activation="tanh", name="bb_first"),
            L.Dense(8, activation="relu", name="bb_second"),
        ],
        name="backbone",
    )
    inp = keras.Input((4,))
    h = backbone(inp)
    h = Block(6, name="block")(h)
    out = L.Dense(1, activation="sigmoid", name="n_out")(h)
    model = keras.Model(inp, out, name="nested")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model, X4, Y_BIN


def _two_inputs() -> tuple[Any, Any, Any]:
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    merged = L.Concatenate(name="merge")(
        [
            L.Dense(5, activation="relu", name="from_a")(a),
            L.Dense(5, activation="relu", name="from_b")(b),
        ]
    )
    return a, b, L.Dense(3, activation="softmax", name="cls")(merged)


def dict_inputs() -> tuple[keras.Model, Any, Any]:
    a, b, out = _two_inputs()
    model = keras.Model({"a": a, "b": b}, out, name="dict_in")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model, {"a": X4, "b": X3}, Y_CLS


def list_inputs() -> tuple[keras.Model, Any, Any]:
    a, b, out = _two_inputs()
    model = keras.Model([a, b], out, name="list_in")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model, [X4, X3], Y_CLS


def _two_outputs() -> tuple[Any, Any, Any]:
    inp = keras.Input((4,))
    trunk = L.Dense(8, activation="relu", name="trunk")(inp)
    return inp, L.Dense(1, name="reg")(trunk), L.Dense(1, activation="sigmoid", name="bin")(trunk)


def list_outputs() -> tuple[keras.Model, Any, Any]:
    inp, reg, binary = _two_outputs()
    model = keras.Model(inp, [reg, binary], name="list_out")
    model.compile(optimizer="sgd", loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5])
    return model, X4, [Y_REG, Y_BIN]


def dict_outputs() -> tuple[keras.Model, Any, Any]:
    inp, reg, binary = _two_outputs()
    model = keras.Model(inp, {"reg": reg, "bin": binary}, name="dict_out")
    model.compile(
        optimizer="sgd",
        loss={"reg": "mse", "bin": "binary_crossentropy"},
        loss_weights={"reg": 0.3, "bin": 2.0},
    )
    return model, X4, {"reg": Y_REG, "bin": Y_BIN}


MODELS: dict[str, Callable[[], tuple[keras.Model, Any, Any]]] = {
    "sequential": sequential,
    "functional": functional,
    "subclassed": subclassed,
    "subclassed-configured": subclassed_configured,
    "nested": nested,
    "dict-inputs": dict_inputs,
    "list-inputs": list_inputs,
    "list-outputs": list_outputs,
    "dict-outputs": dict_outputs,
}


@dataclass
class Case:
    model: keras.Model
    x: Any
    y: Any
    probed: Probed


@pytest.fixture(scope="module", params=list(MODELS))
def case(request: pytest.FixtureRequest) -> Case:
    keras.utils.set_random_seed(1)
    model, x, y = MODELS[request.param]()
    return Case(model, x, y, run_probe(model, x, y))


# --------------------------------------------------------------------------- every model kind


def test_every_dense_and_conv_layer_gets_one_row_with_positive_figures(case: Case) -> None:
    # Given any kind of user model, when it is probed,
    expected = weighted_layer_names(case.model)
    assert expected, "the model under test has weighted layers"
    # then each of its Dense/Conv layers appears exactly once among the layer rows
    assert sorted(n for n in case.probed.names if n in expected) == sorted(expected)
    # with a finite, positive gradient norm, weight norm and update ratio.
    for name in expected:
        row = case.probed.rows[name]
        for figure in (row.grad_norm, row.weight_norm, row.update_ratio):
            assert figure is not None and math.isfinite(figure) and figure > 0, (name, row)


def test_relu_layers_report_a_dead_fraction(case: Case) -> None:
    relu = [m.name for m in case.probed.metas if m.activation == "relu"]
    assert relu
    for name in relu:
        dead = case.probed.rows[name].act_dead_frac
        assert dead is not None and 0.0 <= dead <= 1.0, name


def test_sigmoid_tanh_softmax_layers_report_a_saturated_fraction(case: Case) -> None:
    for meta in case.probed.metas:
        saturated = case.probed.rows[meta.name].act_saturated_frac
        if meta.activation in SATURATING:
            assert saturated is not None and 0.0 <= saturated <= 1.0, meta.name
        else:
            assert saturated is None, meta.name  # empty in the CSV, not 0


def test_layers_without_weights_have_no_gradient_figures(case: Case) -> None:
    weightless = [m.name for m in case.probed.metas if m.param_count == 0]
    for name in weightless:
        row = case.probed.rows[name]
        assert (row.grad_norm, row.weight_norm, row.update_ratio) == (None, None, None), name


def test_every_step_reports_a_finite_loss(case: Case) -> None:
    assert len(case.probed.results) == 3
    assert all(math.isfinite(r.loss) and r.loss > 0 for r in case.probed.results)


# --------------------------------------------------------------------------- model-specific stories


def test_weightless_layers_are_reported_without_gradients() -> None:
    # Given a CNN with Flatten and Dropout (no weights) and BatchNormalization,
    keras.utils.set_random_seed(2)
    model, x, y = sequential()
    # when probed,
    rows = run_probe(model, x, y).rows
    # then the weightless layers show no gradient figures,
    for name in ("flat", "drop"):
        assert rows[name].grad_norm is None and rows[name].update_ratio is None
    # Dropout (which changes values) shows activations; Flatten only reshapes its
    # input's values, so it repeats nothing and its cells stay empty
    assert rows["drop"].act_mean is not None
    assert rows["flat"].act_mean is None
    # and BatchNormalization's trainable gamma/beta give it figures of its own.
    assert rows["bn"].grad_norm is not None and rows["bn"].grad_norm > 0


def test_a_subclassed_model_that_cannot_be_cloned_is_probed_in_place() -> None:
    # Given a subclassed model without get_config,
    keras.utils.set_random_seed(3)
    model, x, y = subclassed()
    # when probed,
    probed = run_probe(model, x, y)
    # then the probe says it worked on the user's own model (and why),
    assert probed.target.mode == "in-place"
    assert probed.target.model is model
    assert any("could not be cloned" in note for note in probed.target.notes)
    # and still reports every layer.
    assert probed.names == [model.hidden.name, model.drop.name, model.squash.name, model.head.name]
    assert all(
        f.grad_norm is not None and f.grad_norm > 0
        for m, f in zip(probed.metas, probed.steps[-1], strict=True)
        if m.param_count
    )


def test_a_subclassed_model_with_get_config_is_cloned() -> None:
    keras.utils.set_random_seed(4)
    model, x, y = subclassed_configured()
    probed = run_probe(model, x, y)
    assert probed.target.mode == "clone"
    assert probed.target.model is not model
    assert [layer.name for layer in probe_layers(model)] == probed.names


def test_nested_layers_are_listed_in_forward_order() -> None:
    # Given a Functional model whose first layer is a Sequential backbone, then a
    # custom Block holding two Dense layers, then the head,
    keras.utils.set_random_seed(5)
    model, x, y = nested()
    # when probed,
    probed = run_probe(model, x, y)
    # then the rows follow the data from input to output (the checks read "the
    # first layer" and "the last layer" off this order),
    assert [n for n in probed.names if n != "block"] == [
        "bb_first",
        "bb_second",
        "block_expand",
        "block_project",
        "n_out",
    ]
    # and each nested layer has its own figures.
    assert probed.rows["bb_first"].act_saturated_frac is not None  # tanh
    assert probed.rows["bb_second"].act_dead_frac is not None  # relu


@pytest.mark.parametrize("build", [list_outputs, dict_outputs], ids=["list", "dict"])
def test_multi_output_loss_is_the_users_weighted_loss(build: Callable[..., Any]) -> None:
    # Given a two-headed model compiled with per-output losses and loss_weights,
    keras.utils.set_random_seed(6)
    model, x, y = build()
    # when probed,
    first_step = run_probe(model, x, y, steps=1).results[0]
    # then the loss of the first probe step is the loss Keras reports for that batch.
    keras_loss = model.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)["loss"]
    assert first_step.loss == pytest.approx(keras_loss, rel=1e-5)


def test_saturated_and_dead_fractions_measure_the_activations() -> None:
    # Given a tanh layer driven far into its tails and a ReLU layer that never fires,
    keras.utils.set_random_seed(7)
    inp = keras.Input((4,))
    squashed = L.Dense(16, activation="tanh", name="saturated")(inp)
    dead = L.Dense(16, activation="relu", name="dead")(squashed)
    out = L.Dense(1, name="out")(L.Concatenate()([squashed, dead]))
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    model.get_layer("saturated").kernel.assign(np.full((4, 16), 50.0, "float32"))
    dead_layer = model.get_layer("dead")
    dead_layer.bias.assign(np.full((16,), -100.0, "float32"))
    # when probed,
    rows = run_probe(model, X4, Y_REG, steps=1).rows
    # then nearly every tanh output is in a flat tail, and every ReLU unit is dead.
    assert rows["saturated"].act_saturated_frac is not None
    assert rows["saturated"].act_saturated_frac > 0.9
    assert rows["dead"].act_dead_frac == 1.0


# --------------------------------------------------------------------------- the update ratio


@pytest.mark.parametrize(
    ("build", "loss"),
    [(functional, "binary_crossentropy"), (subclassed, "mse")],
    ids=["clone", "in-place"],
)
def test_sgd_update_ratio_is_lr_times_gradient_over_weight(
    build: Callable[..., Any], loss: str
) -> None:
    # Given a model trained with plain SGD (no momentum),
    keras.utils.set_random_seed(8)
    model, x, y = build()
    lr = 0.1
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss=loss)
    # when probed,
    probed = run_probe(model, x, y, steps=2)
    # then each layer's update ratio is lr * ||g|| / ||W||, at every step.
    checked = 0
    for figures in probed.steps:
        for meta, row in zip(probed.metas, figures, strict=True):
            if row.grad_norm is None:
                continue
            assert row.update_ratio is not None and row.weight_norm is not None
            expected = lr * row.grad_norm / row.weight_norm
            assert row.update_ratio == pytest.approx(expected, rel=1e-4), meta.name
            checked += 1
    assert checked >= 4


def _adam_model_after(steps: int) -> tuple[keras.Model, Any, Any]:
    keras.utils.set_random_seed(9)
    model, x, y = functional()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    for _ in range(steps):
        model.train_on_batch(x, y)
    return model, x, y


def test_the_clone_carries_the_users_adam_state() -> None:
    # Given a user who trained three steps with Adam,
    model, x, y = _adam_model_after(3)
    # when the probe's target is made,
    with preserved_rng():
        target = make_target(model, x)
    # then it is a clone whose optimizer stands where the user's does:
    assert target.mode == "clone" and target.optimizer is not model.optimizer
    assert target.optimizer_state_copied
    assert int(target.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 3
    ours, theirs = target.optimizer.variables, model.optimizer.variables
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a is not b
        assert a.dtype == b.dtype
        assert np.asarray(a.numpy()).tobytes() == np.asarray(b.numpy()).tobytes(), b.path


def test_the_first_probe_step_is_the_users_next_step() -> None:
    # Given a user who trained three steps with Adam,
    model, x, y = _adam_model_after(3)
    # when the probe takes one step on a batch,
    with preserved_rng():
        target = make_target(model, x)
        layers = probe_layers(target.model)
        metas = describe(layers)
        xt, yt = tensors(x), tensors(y)
        target.loss_fn(yt, target.model(xt), None)
        ProbeStep(target.model, target.optimizer, target.loss_fn, layers, metas).run(xt, yt, None)
    # and the user's own training takes its next step on that batch,
    model.train_on_batch(x, y)
    # then the clone's weights land where the user's did (Adam's moments were carried).
    for ours, theirs in zip(target.model.weights, model.weights, strict=True):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-7)
