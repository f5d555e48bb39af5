"""Internal errors are never silent: a check that raises costs only its own
verdicts and is named in a warning (with GRADSCOPE_DEBUG=1, its traceback);
under GRADSCOPE_STRICT (the suite's setting) a bug of ours fails the run."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest

from gradscope.checks import all as _registered  # noqa: F401 - every check registered
from gradscope.checks import wording
from gradscope.checks.registry import REGISTRY, Facts, Finding
from gradscope.events import Note
from tests.diagnose import diagnose


def _broken(facts: Facts) -> list[Finding]:
    """A check with a bug in gradscope's code under it (a str where a float goes)."""
    wording.share("one half")  # type: ignore[arg-type]
    return []


def _one_unit_softmax() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="softmax")])
    model.compile("adam", "binary_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return model, x, (x[:, 0] > 0).astype("float32")


def test_a_check_that_raises_costs_only_its_own_verdicts_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a user's run (not the suite: no GRADSCOPE_STRICT) and a broken check
    monkeypatch.delenv("GRADSCOPE_STRICT", raising=False)
    monkeypatch.setenv("GRADSCOPE_DEBUG", "1")
    monkeypatch.setitem(REGISTRY, "class-imbalance",
                        replace(REGISTRY["class-imbalance"], fn=_broken))
    model, x, y = _one_unit_softmax()
    found = diagnose(model, x, y, steps=2, budget=0)
    # Then the other checks' verdicts stand
    assert found.ids[0] == "single-unit-softmax"
    # and a warning names the lost check, as unchecked, with the traceback on stderr
    notes = [e for e in found.events if isinstance(e, Note) and "class-imbalance" in e.text]
    assert notes and notes[0].level == "warning" and notes[0].unchecked == ("class-imbalance",)
    assert "TypeError" in notes[0].text
    assert "Traceback" in capsys.readouterr().err


def test_under_strict_a_bug_of_ours_fails_instead_of_becoming_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRADSCOPE_STRICT", "1")
    monkeypatch.setitem(REGISTRY, "class-imbalance",
                        replace(REGISTRY["class-imbalance"], fn=_broken))
    model, x, y = _one_unit_softmax()
    with pytest.raises(TypeError):
        diagnose(model, x, y, steps=2, budget=0)
