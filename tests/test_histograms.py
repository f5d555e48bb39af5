"""The drill-down's histograms come from the real model: weights, gradients and
activations, before the first probe step and after the last."""

from __future__ import annotations

import keras
import numpy as np

from gradscope.events import LayerHistograms, ModelDescribed, from_json, to_json
from tests.diagnose import diagnose


def _model(kernel_initializer: str = "glorot_uniform", activation: str = "relu") -> keras.Model:
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(8, activation=activation, kernel_initializer=kernel_initializer,
                           kernel_regularizer="l2", name="hidden"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n)


def test_histograms_come_before_the_first_step_and_after_the_last_and_replay():
    x, y = _data()
    found = diagnose(_model(), x, y, steps=3, budget=0)
    shots = [e for e in found.events if isinstance(e, LayerHistograms)]
    assert [(s.phase, s.step) for s in shots] == [("probe", 0), ("probe", 3)]
    hidden = {item.layer: item for item in shots[-1].layers}["hidden"]
    assert hidden.weights and hidden.grads and hidden.acts
    # The kernel's 48 weights, in 24 bins between their min and max
    assert sum(hidden.weights.counts) == hidden.weights.total == 6 * 8
    assert hidden.weights.lo < 0 < hidden.weights.hi
    assert hidden.grads.lo < hidden.grads.hi
    # ReLU outputs: never negative, the zeros in the first bin (16 samples x 8 units)
    assert hidden.acts.lo == 0.0 and hidden.acts.total == 16 * 8
    assert hidden.acts.counts[0] == max(hidden.acts.counts)
    # A reshaping layer has no weights and no measured output
    flat = {item.layer: item for item in shots[-1].layers}["flat"]
    assert flat.weights is None and flat.grads is None and flat.acts is None
    assert from_json(to_json(shots[-1])) == shots[-1]


def test_a_zero_kernel_shows_as_all_zero_with_no_gradient_spread():
    x, y = _data()
    found = diagnose(_model("zeros"), x, y, steps=2, budget=0)
    first = next(e for e in found.events if isinstance(e, LayerHistograms))
    hidden = {item.layer: item for item in first.layers}["hidden"]
    assert hidden.weights is not None and hidden.weights.lo == hidden.weights.hi == 0.0
    assert hidden.acts is not None and hidden.acts.hi == 0.0  # every unit outputs 0


def test_the_layer_config_shows_initialisers_regularisers_and_shapes():
    x, y = _data()
    found = diagnose(_model("he_normal"), x, y, steps=1, budget=0)
    described = next(e for e in found.events if isinstance(e, ModelDescribed))
    config = {info.name: info.config for info in described.layers}["hidden"]
    assert config["kernel initializer"].startswith("HeNormal(")
    assert config["kernel regularizer"].startswith("L2(l2=0.01")
    assert config["output shape"] == "(None, 8)" and config["activation"] == "relu"
    assert config["weight kernel"] == "(6, 8) trainable"


def test_non_finite_values_are_counted_apart_from_the_bins():
    x, y = _data()
    x[::2, 0] = np.nan  # every other sample poisoned: every unit of theirs is NaN
    # (tanh: this CPU's ReLU turns NaN into 0)
    found = diagnose(_model(activation="tanh"), x, y, steps=1, budget=0)
    first = next(e for e in found.events if isinstance(e, LayerHistograms))
    acts = {item.layer: item for item in first.layers}["hidden"].acts
    assert acts is not None and 0 < acts.nonfinite < acts.total
    assert acts.nonfinite % 8 == 0  # whole samples, all their units
    assert sum(acts.counts) == acts.total - acts.nonfinite
