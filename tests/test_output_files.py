"""Output files: never overwritten without --force, replaced only by a complete file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradscope.cli import main


def test_an_existing_output_is_kept_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an earlier run's CSV and a script
    earlier = tmp_path / "layers.csv"
    earlier.write_text("an earlier run\n")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    # When gradscope is asked to write over it without --force
    code = main(["run", "--headless", "--csv", str(earlier), str(script)])
    # Then it refuses in one line before running anything, and the file is untouched
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"gradscope: '{earlier}' already exists: pass --force to overwrite it (--csv)"]
    assert earlier.read_text() == "an earlier run\n"


def test_force_replaces_the_file_with_this_runs_complete_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = tmp_path / "layers.csv"
    earlier.write_text("an earlier run\n")
    record = tmp_path / "run.jsonl"
    record.write_text("old\n")
    script = tmp_path / "s.py"
    script.write_text("print('no fit here')\n")
    code = main(["run", "--headless", "--force", "--csv", str(earlier), "--record", str(record),
                 str(script)])
    capsys.readouterr()
    assert code == 4  # the script never called fit
    assert earlier.read_text().startswith("phase,step,layer,")
    assert record.read_text().splitlines()[-1].startswith('{"v":1,"type":"RunFinished"')
    # and no hidden partial file is left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
