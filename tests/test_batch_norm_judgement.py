"""A model is judged as its training steps see it: BatchNormalization with
batch statistics, not the untrained moving statistics of inference mode."""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_wine

from tests.diagnose import diagnose


def test_unscaled_inputs_behind_batch_norm_are_a_healthy_model() -> None:
    # Given wine's raw features (up to ~1700) normalised by a first BatchNormalization:
    # this model trains to ~99% under python, but inference with fresh moving
    # statistics (mean 0, variance 1) sees raw inputs and a loss over 100
    x, y = load_wine(return_X_y=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((13,)),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy")
    moving = [v.numpy().copy() for v in model.non_trainable_weights]
    found = diagnose(model, x.astype("float32"), y, steps=5, epochs=40, batch_size=16)
    # Then no verdict accuses it (init loss, learning rate, accuracy)
    assert not [v for v in found.verdicts if v.severity in ("error", "warning")], found.ids
    # and the user's own moving statistics are untouched
    for before, after in zip(moving, model.non_trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
