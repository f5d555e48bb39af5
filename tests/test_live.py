"""Live mode's plumbing: the run in a child process, its events and output
streamed to the parent (the UI is replaced by a consumer that waits for the end)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gradscope.commands.live import run_live
from gradscope.events import Event, ModelDescribed, OutputLine, RunFinished, VerdictIssued
from gradscope.options import RunOptions

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo_softmax_one_unit.py"


class WaitForTheEnd:
    """Stands where the Textual app would: drains the source until RunFinished."""

    seen: list[Event] = []

    def __init__(self, source: object) -> None:
        self.source = source

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            events = self.source.drain()  # type: ignore[attr-defined]
            WaitForTheEnd.seen.extend(events)
            if any(isinstance(e, RunFinished) for e in events):
                return
            time.sleep(0.05)


def test_the_child_streams_events_and_output_and_its_exit_code_is_ours(tmp_path: Path) -> None:
    # Given the demo, run live with --probe-only
    os.chdir(tmp_path)
    options = RunOptions(script=str(DEMO), headless=False, probe_only=True)
    code = run_live(options, ["--probe-only", str(DEMO)], app_factory=WaitForTheEnd)
    seen = WaitForTheEnd.seen
    # Then the parent saw the model, the verdict and the end, in order
    kinds = [type(e) for e in seen]
    assert ModelDescribed in kinds and RunFinished in kinds
    assert kinds.index(ModelDescribed) < kinds.index(RunFinished)
    first = next(e.verdict for e in seen if isinstance(e, VerdictIssued))
    assert first.check == "single-unit-softmax"
    # and the child's own output came as OutputLine events, not onto the terminal
    assert any(isinstance(e, OutputLine) for e in seen)
    # and gradscope exits with the run's code (1: an error verdict)
    assert code == 1


def test_a_missing_script_is_one_line_and_exit_2_before_any_ui() -> None:
    proc = subprocess.run(
        [sys.executable, "-c",
         "import sys; from gradscope.cli import main; sys.exit(main(['run', 'missing.py']))"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.py" in proc.stderr


class QuitAtTheFirstVerdict:
    """Stands where the Textual app would: folds the events into a Report (as the
    app does) and returns, as `q` does, once the first verdict has arrived."""

    def __init__(self, source: object) -> None:
        from gradscope.report import Report

        self.source = source
        self.state = Report()

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            self.state.apply_all(self.source.drain())  # type: ignore[attr-defined]
            if self.state.verdicts:
                return
            time.sleep(0.05)


def test_quitting_early_records_the_exit_code_gradscope_gives_and_leaves_the_cause(
    tmp_path: Path, capsys
) -> None:
    import json

    # Given the demo run live with a record, its training going on after the probe
    os.chdir(tmp_path)
    options = RunOptions(script=str(DEMO), headless=False, record="run.jsonl")
    code = run_live(options, ["--record", "run.jsonl", str(DEMO)],
                    app_factory=QuitAtTheFirstVerdict)
    # When the user quits at the first verdict, gradscope exits 130 (interrupted)
    assert code == 130
    # and the record, written by this process, ends with that same exit code
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert (events[-1]["type"], events[-1]["exit_code"]) == ("RunFinished", 130)
    # and holds what the run printed (TensorFlow's start-up lines at least)
    assert any(e["type"] == "OutputLine" for e in events)
    # and the terminal keeps the cause, its fix and the record's path
    out = capsys.readouterr().out
    assert "single-unit-softmax" in out
    assert "fix:" in out
    assert "gradscope view run.jsonl" in out
