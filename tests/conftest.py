"""Suite-wide settings."""

from __future__ import annotations

import os

import pytest

# A programming error in gradscope's own code (a TypeError in a check, an
# experiment...) fails the test instead of becoming a user-facing note
# (gradscope/internal.py). Child processes of the tests inherit it.
os.environ.setdefault("GRADSCOPE_STRICT", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true",
                     help="also run the tests marked slow (the whole corpus, twice)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow") or os.environ.get("GRADSCOPE_SLOW_TESTS"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (or GRADSCOPE_SLOW_TESTS=1)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _keras_dtype_policy_restored() -> object:
    """Every test ends with Keras's global dtype policy as it found it: a demo
    script run in-process (the corpus) sets mixed_float16 for good, as a user's
    script may, and the models of the tests after it in that process would be
    built in float16. (Only when Keras is loaded: tests/unit never imports it.)"""
    import sys

    keras = sys.modules.get("keras")
    saved = keras.config.dtype_policy() if keras is not None else None
    yield
    keras = sys.modules.get("keras")
    if keras is None:
        return
    if saved is None:
        saved = "float32"
    if keras.config.dtype_policy() != saved:
        keras.config.set_dtype_policy(saved)
