"""A problem the training shows later is ranked after the cause the diagnosis
found at the start: the NaN at epoch 3 of a ReLU-output classifier is that
output's doing, so `output-activation-mismatch` stays the headline and
`nonfinite-during-training` comes as a symptom of it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_late_nan_ranks_after_the_cause_the_diagnosis_found(tmp_path: Path) -> None:
    record, verdicts = tmp_path / "run.jsonl", tmp_path / "v.csv"
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--csv", os.devnull, "--seed", "0",
         "--record", str(record), "--verdicts", str(verdicts),
         str(REPO / "scripts" / "demo" / "output-activation-mismatch.py")],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    with open(verdicts, newline="") as f:
        ranked = [row["check"] for row in csv.DictReader(f)]
    assert ranked[0] == "output-activation-mismatch"
    late = next(json.loads(line)["verdict"] for line in record.read_text().splitlines()
                if '"nonfinite-during-training"' in line)
    assert late["kind"] == "symptom" and late["evidence"]["explained_by"] == "output-activation-mismatch"
    assert "This follows from 'output-activation-mismatch'" in late["message"]
    assert late["evidence"]["epoch"] >= 3
    assert ranked.index("nonfinite-during-training") > ranked.index("output-activation-mismatch")
