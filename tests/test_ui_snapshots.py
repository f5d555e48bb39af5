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
