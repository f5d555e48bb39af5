"""The experiments are sized in steps from the model's shape; `--budget` is only
a wall-clock safety cap. A big model gets few steps (a short test may miss a
symptom, it must never accuse a healthy model), and a cap that cuts the
experiments short says which checks could not run instead of a clean bill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

from gradscope.events import Note
from tests.diagnose import diagnose

ACCUSATIONS = {"cannot-overfit", "accuracy-at-baseline"}
ROOT = Path(__file__).resolve().parents[1]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target


def _model(optimizer: str, hidden: int = 64, output: keras.layers.Layer | None = None) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hidden, activation="relu"),
        keras.layers.Dense(hidden, activation="relu"),
        output or keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _overfit_steps(found) -> int:  # type: ignore[no-untyped-def]
    notes = [e.text for e in found.events if isinstance(e, Note) and e.text.startswith("overfit")]
    assert notes, "the overfit experiment ran"
    return int(notes[0].split(" for ")[1].split(" steps")[0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_big_healthy_model_gets_few_steps_and_is_not_accused(optimizer: str) -> None:
    # Given hidden layers wide enough that a step is nominally ~0.1 s: the
    # experiments plan only a few overfit steps for it (as for any big model)
    x, y = _digits()
    found = diagnose(_model(optimizer, hidden=4096), x, y, steps=3, epochs=5)
    assert _overfit_steps(found) < 30
    # Then neither symptom fires on a model that learns
    assert not ACCUSATIONS & set(found.ids), found.ids


def test_a_model_that_cannot_learn_is_still_caught_with_few_steps() -> None:
    # Given the same big model with a one-unit softmax output (its loss cannot move)
    x, y = _digits()
    found = diagnose(_model("adam", 4096, keras.layers.Dense(1, activation="softmax")), x, y,
                     steps=3, epochs=5)
    # Then the cause is still named
    assert found.ids[0] == "single-unit-softmax"


def test_a_cap_that_cuts_the_experiments_short_is_a_warning_naming_what_did_not_run() -> None:
    # Given a cap far below what the experiments take
    x, y = _digits()
    found = diagnose(_model("adam"), x, y, steps=3, budget=1e-4, epochs=5)
    # Then no experiment's verdict comes, and a warning says which checks could not run
    warnings = [e for e in found.events if isinstance(e, Note) and e.unchecked]
    assert warnings and warnings[0].level == "warning"
    assert "--budget" in warnings[0].text and "cannot-overfit" in warnings[0].unchecked
    assert not ACCUSATIONS & set(found.ids)


def test_headless_summary_and_json_never_call_a_cut_short_run_healthy(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "demo" / "healthy_mlp_digits.py"
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only",
         "--budget", "0.0001", "--csv", str(tmp_path / "l.csv"), "--json", str(report),
         str(script)],
        capture_output=True, text=True, cwd=script.parent, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no problems found in" not in proc.stderr
    assert "could not run" in proc.stderr and "--budget" in proc.stderr
    data = json.loads(report.read_text())
    assert "cannot-overfit" in data["unchecked"]
