"""The demos whose problem starts late (scripts/demo, `gradscope-late` header),
run as a user runs them: `gradscope run --headless` on the whole training, the
watch on. The probe at the start finds nothing; the checks on the training
(checks/training.py) name the problem, with the step and the epoch where it
was seen. A healthy multi-epoch training gets none of their IDs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from demo_corpus import DEMO_DIR, Demo, demos  # noqa: E402

from gradscope.checks.training import training_checks  # noqa: E402

TRAINING_IDS = {c.id for c in training_checks()}
LATE = [d for d in demos() if d.late]
HEALTHY = [d for d in demos() if d.name == "healthy_long_training"]


def test_every_training_check_has_a_late_demo() -> None:
    assert {i for d in LATE for i in d.late} == TRAINING_IDS
    assert all(d.expect == "healthy" for d in LATE)  # what the probe at the start sees
    assert HEALTHY


Run = tuple[int, list[dict[str, str]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Each demo run once for the module's tests (as the tests ask for them)."""
    return {}


def ran(runs: dict[str, Run], demo: Demo, factory: pytest.TempPathFactory) -> Run:
    if demo.name not in runs:
        runs[demo.name] = gradscope_run(demo, factory.mktemp(demo.name))
    return runs[demo.name]


def gradscope_run(demo: Demo, out: Path) -> Run:
    """Exit code, verdict CSV rows (ranked), and the record's events."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--verdicts", str(out / "v.csv"),
         "--record", str(out / "r.jsonl"), "--seed", "0", str(demo.path)],
        cwd=DEMO_DIR, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    rows = list(csv.DictReader((out / "v.csv").open(encoding="utf-8")))
    events = [json.loads(line) for line in (out / "r.jsonl").open(encoding="utf-8")]
    return proc.returncode, rows, events


def verdict_evidence(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["verdict"]["check"]: e["verdict"]["evidence"]
            for e in events if e["type"] == "VerdictIssued"}


def epoch_steps(events: list[dict[str, Any]]) -> dict[int, int]:
    """Each epoch's last global step, from the record's EpochEnded events."""
    return {e["epoch"]: e["step"] for e in events if e["type"] == "EpochEnded"}


@pytest.mark.parametrize("demo", LATE, ids=[d.name for d in LATE])
def test_a_late_problem_is_named_with_its_step_and_epoch(
    demo: Demo, runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, rows, events = ran(runs, demo, tmp_path_factory)
    ranked = [r["check"] for r in rows if r["severity"] in ("error", "warning")]
    # the probe found nothing; the training's first-ranked verdict is the demo's
    assert ranked and ranked[0] == demo.late[0], ranked
    assert set(demo.late) <= {r["check"] for r in rows}
    assert code == (1 if any(r["severity"] == "error" for r in rows) else 0)
    evidence = verdict_evidence(events)
    ends = epoch_steps(events)
    for check in demo.late:
        e = evidence[check]
        # seen from the third epoch on, and its step lies within that epoch
        assert e["epoch"] >= 3, (check, e)
        assert ends.get(e["epoch"] - 1, 0) < e["step"] <= ends.get(e["epoch"], e["step"]), (check, e)


def test_the_nan_demo_names_epoch_5_and_the_raised_learning_rate(
    runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
) -> None:
    (demo,) = (d for d in LATE if d.name == "nonfinite-during-training")
    _, rows, events = ran(runs, demo, tmp_path_factory)
    e = verdict_evidence(events)["nonfinite-during-training"]
    # the schedule multiplies the rate by e from epoch 3: 0.2 in epoch 5, where it goes NaN
    assert e["epoch"] == 5 and 200 < e["step"] <= 250
    assert e["layer"] == "dense" and e["figure"] == "weights" and e["loss"] == "nan"
    assert e["watched_step"] > e["step"] and e["learning_rate"] == pytest.approx(0.2009, rel=1e-3)
    # after the NaN, nothing else is said about the training
    assert [r["check"] for r in rows if r["check"] in TRAINING_IDS] == ["nonfinite-during-training"]


def test_the_overfitting_demo_names_its_best_epoch(
    runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
) -> None:
    (demo,) = (d for d in LATE if d.name == "overfitting")
    _, rows, events = ran(runs, demo, tmp_path_factory)
    e = verdict_evidence(events)["overfitting"]
    (row,) = (r for r in rows if r["check"] == "overfitting")
    assert row["severity"] == "warning"  # val accuracy 0.86 -> 0.79: it costs
    assert 5 <= e["best_epoch"] < e["epoch"] - 3 and e["val_loss"] > 1.1 * e["best_val_loss"]
    assert f"best {e['best_val_loss']:.4g} at epoch {e['best_epoch']} of 40" in row["message"]


@pytest.mark.parametrize("demo", HEALTHY, ids=[d.name for d in HEALTHY])
def test_a_healthy_multi_epoch_training_gets_none_of_them(
    demo: Demo, runs: dict[str, Run], tmp_path_factory: pytest.TempPathFactory
) -> None:
    code, rows, events = ran(runs, demo, tmp_path_factory)
    assert [r["check"] for r in rows if r["check"] in TRAINING_IDS] == []
    assert code == 0 and not [r for r in rows if r["severity"] in ("error", "warning")]
    # the watch did watch it: every epoch, and the layers' figures of its steps
    assert len(epoch_steps(events)) == 20
    watched = [e for e in events if e["type"] == "LayerStats" and e["phase"] == "train"]
    assert len(watched) >= 2 * 3  # enough for the layer checks to have judged
