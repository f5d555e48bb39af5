"""The same verdict on any machine: with --seed, a script's verdicts (IDs,
severities, order) do not depend on how busy the machine is.

The experiments are sized in steps from the model's shape (engine/cost.py), not
in seconds; the run is repeated beside two CPU-bound processes, which slows
every step down 2-3x on a 2-core machine (the load that used to cost
`lr-too-high` and `undertrained` their verdicts).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from demo_corpus import Demo, demos  # noqa: E402

from gradscope.commands.run import run  # noqa: E402
from gradscope.options import RunOptions  # noqa: E402

# Demos whose verdicts come from the experiments (the ones a loaded machine
# used to change), and healthy ones that must stay clean.
EXPERIMENT_DEMOS = (
    "lr-too-high", "undertrained", "lr-too-low", "cannot-overfit", "labels-unpredictable",
    "accuracy-at-baseline", "healthy_mlp_digits", "healthy_cnn_digits",
)


@contextmanager
def cpu_bound_neighbours(count: int = 2) -> Iterator[None]:
    """`count` processes spinning on the CPU for as long as the block runs."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def verdicts_of(demo: Demo, tmp: Path, tag: str) -> list[tuple[str, str]]:
    """(check, severity) in rank order, from `gradscope run --seed 0 --probe-only`."""
    out = tmp / f"{demo.name}-{tag}.csv"
    cwd = os.getcwd()
    os.chdir(demo.path.parent)
    try:
        run(RunOptions(script=str(demo.path), headless=True, probe_only=True, seed=0,
                       csv=os.devnull, verdicts=str(out)))
    finally:
        os.chdir(cwd)
    return [(r["check"], r["severity"]) for r in csv.DictReader(out.open())]


def _same_verdicts_idle_and_loaded(chosen: list[Demo], tmp: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    idle = {d.name: verdicts_of(d, tmp, "idle") for d in chosen}
    with cpu_bound_neighbours():
        loaded = {d.name: verdicts_of(d, tmp, "loaded") for d in chosen}
    capsys.readouterr()
    differ = {name: (idle[name], loaded[name]) for name in idle if idle[name] != loaded[name]}
    assert not differ, differ


def test_experiment_verdicts_are_the_same_idle_and_beside_two_busy_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = [d for d in demos() if d.name in EXPERIMENT_DEMOS]
    assert len(chosen) == len(EXPERIMENT_DEMOS)
    _same_verdicts_idle_and_loaded(chosen, tmp_path, capsys)


@pytest.mark.slow
def test_the_whole_demo_corpus_gets_the_same_verdicts_idle_and_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _same_verdicts_idle_and_loaded(demos(), tmp_path, capsys)
