"""A slow model's experiment budget buys few steps: a short test may miss a
symptom, it must never accuse a healthy model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.diagnose import diagnose

ACCUSATIONS = {"cannot-overfit", "accuracy-at-baseline"}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target


def _model(optimizer: str, output: keras.layers.Layer | None = None) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64, activation="relu"),
        output or keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_healthy_model_with_a_tiny_budget_is_not_accused(optimizer: str) -> None:
    # Given a budget that buys only ~10 overfit steps (as a big model's would)
    x, y = _digits()
    found = diagnose(_model(optimizer), x, y, steps=3, budget=0.02, epochs=5)
    # Then neither symptom fires on a model that learns
    assert not ACCUSATIONS & set(found.ids), found.ids


def test_a_model_that_cannot_learn_is_still_caught_with_a_tiny_budget() -> None:
    # Given the same budget and a one-unit softmax output (its loss cannot move)
    x, y = _digits()
    found = diagnose(_model("adam", keras.layers.Dense(1, activation="softmax")), x, y,
                     steps=3, budget=0.02, epochs=5)
    # Then the cause is still named
    assert found.ids[0] == "single-unit-softmax"
