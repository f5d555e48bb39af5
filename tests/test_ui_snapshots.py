"""SVG snapshots of the UI at 80x24 and 120x40 (pytest-textual-snapshot's renderer).

The accepted pictures live in tests/snapshots/test_ui_snapshots/. After a
deliberate change of look, look at the new ones and accept them with
`pytest tests/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytest_textual_snapshot")

from pytest_textual_snapshot import SVGImageExtension  # noqa: E402
from textual._doc import take_svg_screenshot  # noqa: E402

from gradscope.ui.app import GradscopeApp  # noqa: E402
from gradscope.ui.sources import ReplaySource  # noqa: E402
from tests.test_ui import replay_app  # noqa: E402


class SnapshotsFolder(SVGImageExtension):
    """Keeps the SVGs in tests/snapshots/ rather than syrupy's __snapshots__."""

    @classmethod
    def dirname(cls, *, test_location) -> str:  # type: ignore[no-untyped-def]
        return str(Path(test_location.filepath).parent / "snapshots" / test_location.basename)


@pytest.fixture
def svg(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(SnapshotsFolder)


SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.mark.parametrize("size", SIZES)
def test_overview(svg, size):
    assert svg == take_svg_screenshot(replay_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_overview_sorted_by_dead_share_with_verdicts_unfolded(svg, size):
    assert svg == take_svg_screenshot(replay_app(), press=["s", "s", "s", "v"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_layer_drill_down(svg, size):
    assert svg == take_svg_screenshot(replay_app(), press=["down", "down", "enter"],
                                      terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_layer_histograms(svg, size):
    assert svg == take_svg_screenshot(replay_app(), press=["enter", "h"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help(svg, size):
    assert svg == take_svg_screenshot(replay_app(), press=["question_mark"], terminal_size=size)


def test_filtering_at_80x24(svg):
    assert svg == take_svg_screenshot(replay_app(), press=["slash", "d", "e"], terminal_size=(80, 24))


# --- real recorded runs (tests/data) ---------------------------------------------------

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> list:
    from gradscope.commands.view import read_events

    return read_events(str(DATA / name))


def recorded_app(name: str, events: list | None = None):  # type: ignore[no-untyped-def]
    from gradscope.ui import ReplaySource
    from gradscope.ui.app import GradscopeApp

    return GradscopeApp(ReplaySource(recorded(name) if events is None else events))


@pytest.mark.parametrize("size", SIZES)
def test_vanishing_gradient_after_verdicts(svg, size):
    assert svg == take_svg_screenshot(recorded_app("vanishing-gradient.jsonl"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_vanishing_gradient_first_layer_drill_down(svg, size):
    assert svg == take_svg_screenshot(recorded_app("vanishing-gradient.jsonl"), press=["enter"],
                                      terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_crash_before_fit(svg, size):
    assert svg == take_svg_screenshot(recorded_app("crash-before-fit.jsonl"), terminal_size=size)


def _until(events: list, stop) -> list:  # type: ignore[no-untyped-def]
    """The events of a recording up to and including the first one `stop` accepts."""
    for index, event in enumerate(events):
        if stop(event, events[: index + 1]):
            return events[: index + 1]
    raise AssertionError("the recording never reached that point")


def _phase_events(phase: str) -> list:
    """The healthy training's recording cut where the run is in `phase`."""
    from gradscope.events import PhaseChanged, RunStarted, StepStats

    events = recorded("healthy-training.jsonl")
    if phase == "finished":
        return events

    def count(kind, where, seen) -> int:  # type: ignore[no-untyped-def]
        return sum(1 for e in seen if isinstance(e, kind) and where(e))

    stops = {
        "loading": lambda e, seen: isinstance(e, RunStarted),
        "script": lambda e, seen: isinstance(e, PhaseChanged) and e.phase == "script",
        "static": lambda e, seen: isinstance(e, PhaseChanged) and e.phase == "static",
        "probe": lambda e, seen: count(StepStats, lambda s: s.phase == "probe", seen) == 3,
        "experiments": lambda e, seen: count(
            PhaseChanged, lambda p: p.phase == "experiments", seen) == 2,
        "train": lambda e, seen: count(StepStats, lambda s: s.phase == "train", seen) == 3,
    }
    return _until(events, stops[phase])


PHASES = ["loading", "script", "static", "probe", "experiments", "train", "finished"]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("phase", PHASES)
def test_status_line_in_each_phase(svg, phase, size):
    app = recorded_app("healthy-training.jsonl", _phase_events(phase))
    assert svg == take_svg_screenshot(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_diff_of_the_vanishing_gradient_fix(svg, size):
    from gradscope.compare import Comparison
    from gradscope.report import Report
    from gradscope.ui.diff_app import DiffApp

    before = Report.from_events(recorded("vanishing-gradient.jsonl"))
    after = Report.from_events(recorded("vanishing-gradient-fixed.jsonl"))
    app = DiffApp(Comparison.of(before, after), "before.jsonl", "after.jsonl")
    assert svg == take_svg_screenshot(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_a_watched_training(svg, size):
    # A recorded run whose training was watched (tests/data/watched-training.jsonl):
    # the loss chart over global steps with the probe apart, the layer table
    # at the latest watched step, sparklines over the whole training.
    from tests.test_ui_training import recorded

    app = GradscopeApp(ReplaySource(recorded("watched-training")))
    assert svg == take_svg_screenshot(app, terminal_size=size)
