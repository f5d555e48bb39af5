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
    if not (config.getoption("--runslow") or os.environ.get("GRADSCOPE_SLOW_TESTS")):
        skip = pytest.mark.skip(reason="slow: run with --runslow (or GRADSCOPE_SLOW_TESTS=1)")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip)
    if hasattr(config, "workerinput"):  # an xdist worker: -n0 keeps the files' order
        _longest_files_first(config, items)


# --- the files over xdist's workers, longest first ---------------------------------
# `--dist loadfile` keeps a file on one worker, and xdist would hand the files
# out by their number of tests (pyproject.toml turns that off): a file of a few
# minute-long tests could come last and run alone while the other worker idled. The files go out longest first instead, by the seconds their tests took
# when last run (in pytest's cache), else by the figures below. Within a file
# the order is kept. Every worker computes the same order from the same cache.
SECONDS_KEY = "gradscope/test_seconds"
UNMEASURED_TEST_SECONDS = 1.0
# A file's seconds on the 2-core machine (the whole suite at a load average of 5:
# 3271 s of tests in 27:48 on two workers; Dec 2026), for a run without a cache.
MEASURED_FILE_SECONDS = {
    "tests/test_demo_corpus.py": 537,
    "tests/test_training_watch_demos.py": 232,
    "tests/test_api_vs_cli.py": 218,
    "tests/test_catalogue.py": 212,
    "tests/test_api_data_forms.py": 203,
    "tests/test_determinism.py": 137,
    "tests/test_interruptions.py": 111,
    "tests/test_mirrored.py": 108,
    "tests/test_headless_e2e.py": 76,
    "tests/test_untouched.py": 74,
    "tests/test_first_verdicts.py": 74,
    "tests/test_fresh_cases.py": 67,
    "tests/test_ui_snapshots.py": 66,
    "tests/test_bad_scripts.py": 62,
    "tests/test_callback.py": 55,
    "tests/test_ui_layout.py": 52,
    "tests/test_unusual_models.py": 52,
    "tests/test_scale.py": 51,
    "tests/test_false_alarms_static.py": 49,
    "tests/test_mixed_precision.py": 47,
    "tests/test_ui.py": 47,
    "tests/test_multiworker.py": 47,
    "tests/test_train_on_batch.py": 46,
    "tests/test_watch_bad_input.py": 41,
    "tests/test_cli.py": 39,
    "tests/test_ui_table.py": 38,
    "tests/test_api_uncompiled.py": 34,
    "tests/test_arbitration_and_dynamic.py": 34,
    "tests/test_data_properties.py": 32,
    "tests/test_tensorboard.py": 30,
}


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


_measured: dict[str, float] | None = None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """xdist's controller reads the cache once and hands every worker the same
    figures: a run ending beside this one (the cache is shared) cannot give two
    workers two orders (xdist would stop: different collections)."""
    global _measured
    if _measured is None:
        cache = getattr(node.config, "cache", None)  # type: ignore[attr-defined]
        _measured = cache.get(SECONDS_KEY, {}) if cache is not None else {}
    node.workerinput[SECONDS_KEY] = _measured  # type: ignore[attr-defined]


def _longest_files_first(config: pytest.Config, items: list[pytest.Item]) -> None:
    measured: dict[str, float] = config.workerinput.get(SECONDS_KEY, {})  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}
    known: dict[str, float] = {}
    for item in items:
        file = _file_of(item.nodeid)
        if item.get_closest_marker("skip") is not None:
            took = 0.0
        elif item.nodeid in measured:
            took = measured[item.nodeid]
            known[file] = known.get(file, 0.0) + took
        else:
            took = UNMEASURED_TEST_SECONDS
        seconds[file] = seconds.get(file, 0.0) + took
    for file, total in MEASURED_FILE_SECONDS.items():
        if file in seconds and file not in known:  # no cache: the figures above
            seconds[file] = max(seconds[file], total)
    first_seen = {file: i for i, file in reversed(list(enumerate(_file_of(i.nodeid) for i in items)))}
    items.sort(key=lambda item: (-seconds[_file_of(item.nodeid)], first_seen[_file_of(item.nodeid)]))


_took: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # In the process that reports (xdist's controller, or the only one with -n0):
    # setup, call and teardown together; a skipped test keeps its last figure.
    if report.skipped and report.when == "setup":
        _took.pop(report.nodeid, None)
        return
    _took[report.nodeid] = _took.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    cache = getattr(config, "cache", None)
    if hasattr(config, "workerinput") or cache is None or not _took:
        return
    measured = dict(cache.get(SECONDS_KEY, {}))
    measured.update({nodeid: round(took, 2) for nodeid, took in _took.items()})
    cache.set(SECONDS_KEY, measured)


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
