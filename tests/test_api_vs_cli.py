"""One engine behind both front ends: a demo script's first fit() diagnosed by
`gradscope run --probe-only --seed 0` and by `gradscope.diagnose(model,
**the same fit arguments, seed=0)` gives the same verdicts, in the same order."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMOS = ["single-unit-softmax", "repeated-batch", "healthy_tfdata"]

# Runs a script with its first fit() replaced by gradscope.diagnose on the same
# arguments, seeded as --seed seeds a script.
VIA_API = textwrap.dedent("""
    import inspect, json, runpy, sys
    import keras
    import gradscope

    script = sys.argv[1]
    original = keras.Model.fit

    def fit(self, *args, **kwargs):
        given = dict(inspect.signature(original).bind(self, *args, **kwargs).arguments)
        given.pop("self")
        report = gradscope.diagnose(self, seed=0, **given)
        print("VERDICTS " + json.dumps([v.check for v in report.verdicts]), flush=True)
        raise SystemExit(0)

    keras.Model.fit = fit
    keras.utils.set_random_seed(0)
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")
""")

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.mark.parametrize("demo", DEMOS)
def test_the_api_and_the_cli_give_the_same_verdicts(tmp_path: Path, demo: str) -> None:
    script = REPO / "scripts" / "demo" / f"{demo}.py"
    runner = tmp_path / "via_api.py"
    runner.write_text(VIA_API)
    api = subprocess.run([sys.executable, str(runner), str(script)], capture_output=True, text=True,
                         env=ENV, timeout=300, cwd=tmp_path)
    line = next((x for x in api.stdout.splitlines() if x.startswith("VERDICTS ")), None)
    assert line is not None, api.stderr[-3000:]
    verdicts = tmp_path / "v.csv"
    cli = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only", "--seed", "0",
         "--csv", os.devnull, "--verdicts", str(verdicts), str(script)],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path,
    )
    assert cli.returncode in (0, 1), cli.stderr[-3000:]
    with open(verdicts, newline="") as f:
        from_cli = [row["check"] for row in csv.DictReader(f)]
    assert json.loads(line[len("VERDICTS "):]) == from_cli
