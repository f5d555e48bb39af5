"""`gradscope run --headless` on the bundled demo, as a user runs it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradscope.events import from_json

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo_softmax_one_unit.py"
COLUMNS = (
    "phase,step,layer,layer_type,param_count,trainable,grad_norm,weight_norm,"
    "update_ratio,act_mean,act_std,act_saturated_frac,act_dead_frac"
).split(",")


def gradscope(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "gradscope", "run", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )


@pytest.fixture(scope="module")
def probe_only_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("run")
    proc = gradscope(
        "--headless", "--probe-only", "--steps", "4",
        "--csv", "layers.csv", "--verdicts", "verdicts.csv",
        "--json", "report.json", "--record", "run.jsonl",
        str(DEMO), cwd=out,
    )
    return proc, out


def test_probe_only_exits_1_on_an_error_verdict_and_prints_the_cause(probe_only_run) -> None:
    proc, _ = probe_only_run
    assert proc.returncode == 1, proc.stderr
    assert "Most likely cause: [single-unit-softmax]" in proc.stderr
    # the script did not go on to train
    assert "final accuracy" not in proc.stdout


def test_layer_csv_has_the_contract_columns_and_one_row_per_step_and_layer(probe_only_run) -> None:
    _, out = probe_only_run
    with open(out / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == COLUMNS
    assert {r["phase"] for r in rows} == {"probe"}
    assert sorted({int(r["step"]) for r in rows}) == [1, 2, 3, 4]
    assert len(rows) == 4 * 3  # three Dense layers
    out_layer = [r for r in rows if r["layer"] == "dense_2"][0]
    assert out_layer["act_saturated_frac"] == "1"  # softmax over one unit: always 1.0
    assert out_layer["act_dead_frac"] == ""  # not a ReLU: empty, not 0
    assert float(out_layer["grad_norm"]) > 0


def test_verdict_csv_ranks_the_cause_first(probe_only_run) -> None:
    _, out = probe_only_run
    with open(out / "verdicts.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["check"] == "single-unit-softmax"
    assert rows[0]["severity"] == "error" and rows[0]["subject"] == "dense_2"


def test_json_report_and_record_replay(probe_only_run) -> None:
    _, out = probe_only_run
    report = json.loads((out / "report.json").read_text())
    assert report["verdicts"][0]["check"] == "single-unit-softmax"
    assert report["finished"]["exit_code"] == 1
    events = [from_json(line) for line in (out / "run.jsonl").read_text().splitlines()]
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert "ModelDescribed" in kinds and kinds.count("LayerStats") == 4


def test_default_mode_lets_the_users_training_go_on(tmp_path: Path) -> None:
    proc = gradscope("--headless", "--csv", "layers.csv", str(DEMO), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    # the script ran to its end: its own prints are on stdout, as under python
    assert "final accuracy:" in proc.stdout
    assert "distinct predictions: [1.0]" in proc.stdout


def test_the_users_own_training_streams_train_rows(tmp_path: Path) -> None:
    # Given the default mode (probe, then the user's fit goes on)
    proc = gradscope("--headless", "--csv", "layers.csv", str(DEMO), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    with open(tmp_path / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["phase"] == "train"]
    # Then the watched steps of its training (the first, then every 100th global
    # step) add one row per layer, with the step's own gradient, weight norm,
    # update ratio and activations
    steps = sorted({int(r["step"]) for r in train})
    assert steps[0] == 1 and all(b - a == 100 for a, b in zip(steps, steps[1:], strict=False))
    weighted = [r for r in train if r["trainable"] == "true" and int(r["param_count"]) > 0]
    assert weighted and all(float(r["weight_norm"]) > 0 and float(r["grad_norm"]) >= 0
                            for r in weighted)
