"""gradscope from Python: `gradscope.diagnose(model, x, y)` gives the CLI's
verdicts on real models, and leaves the model exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import gradscope  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 8)).astype("float32")
Y = (X[:, 0] + X[:, 1] > 0).astype("float32")


def classifier(output: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                              keras.layers.Dense(1, activation=output, name="out")])
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    return model


def state(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in [*model.variables, *model.optimizer.variables]]


def test_a_one_unit_softmax_is_the_headline_and_the_model_is_untouched(tmp_path: Path) -> None:
    # Given a compiled model that has trained a little (its optimizer has state)
    model = classifier("softmax")
    model.fit(X[:64], Y[:64], epochs=1, verbose=0)
    before = state(model)
    # When it is diagnosed from Python
    report = gradscope.diagnose(model, X, Y, batch_size=32, seed=0)
    # Then the cause is the headline, with the CLI's words and fix
    assert report.headline is not None and report.headline.check == "single-unit-softmax"
    assert report.verdicts[0] is report.headline and not report.ok
    assert "single-unit-softmax" in repr(report) and "Most likely cause" in repr(report)
    with pytest.raises(gradscope.DiagnosisError) as raised:
        report.raise_for_errors()
    assert str(raised.value).startswith("single-unit-softmax (out):")
    assert "\nfix: " in str(raised.value)
    # and the weights, the optimizer's slots and its iteration count are bit-identical
    after = state(model)
    assert len(after) == len(before)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # and the per-layer figures come out as the CLI writes them
    assert {row["phase"] for row in report.layers} == {"probe"}
    report.to_csv(str(tmp_path / "layers.csv"))
    lines = (tmp_path / "layers.csv").read_text().splitlines()
    assert lines[0].startswith("phase,step,layer,") and lines[1].startswith("probe,1,hidden,Dense,")
    report.to_json(str(tmp_path / "report.json"))
    document = json.loads((tmp_path / "report.json").read_text())
    assert document["verdicts"][0]["check"] == "single-unit-softmax"


def test_a_healthy_model_fed_a_dataset_is_ok() -> None:
    # Given a healthy classifier and its data as a tf.data pipeline
    model = classifier("sigmoid")
    data = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(256, seed=0).batch(32)
    # When it is diagnosed
    report = gradscope.diagnose(model, data, epochs=20, seed=0)
    # Then nothing is wrong, and a test suite's check passes
    assert report.ok and report.headline is None, repr(report)
    report.raise_for_errors()
    # and the dataset still yields all of its batches for the user's fit
    assert sum(1 for _ in data) == 8


def test_an_uncompiled_model_is_refused_in_one_clear_line() -> None:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compile the model first"):
        gradscope.diagnose(model, X, Y)


def test_importing_gradscope_stays_light() -> None:
    code = "import sys, gradscope; gradscope.__version__; print('tensorflow' in sys.modules, 'textual' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
