"""Benchmark: wall time of a whole diagnosis per demo script, as a user runs it.

Runs `gradscope run --headless --probe-only` on every script of scripts/demo/ in a
fresh process (TensorFlow import, the script's own data loading and model
building included), prints per-script wall time, the first verdict against the
expected one, and the median. Target: median <= 15 s on a 2-core machine.

    python scripts/bench_diagnose.py [--filter SUBSTRING]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_corpus import demos, first_verdict_matches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    times, hits, total = [], 0, 0
    for demo in demos():
        if args.filter not in demo.name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            verdicts = Path(tmp) / "v.csv"
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only",
                 "--csv", str(Path(tmp) / "l.csv"), "--verdicts", str(verdicts), str(demo.path)],
                capture_output=True, text=True, env=env, cwd=demo.path.parent,
            )
            wall = time.perf_counter() - start
            rows = list(csv.DictReader(verdicts.open())) if verdicts.exists() else []
        serious = [r["check"] for r in rows if r["severity"] in ("error", "warning")]
        first = serious[0] if serious else "healthy"
        ok = first_verdict_matches(demo, [(r["check"], r["severity"]) for r in rows])
        hits += ok
        total += 1
        times.append(wall)
        print(f"{wall:6.1f} s  exit {proc.returncode}  {'ok  ' if ok else 'MISS'} "
              f"{demo.name:50s} first={first}", flush=True)
    if times:
        print(f"median {statistics.median(times):.1f} s over {len(times)} scripts "
              f"(max {max(times):.1f} s); first verdict as expected: {hits}/{total}")


if __name__ == "__main__":
    main()
