"""Benchmark: wall time of a whole diagnosis per demo script, as a user runs it.

Runs `gradscope run --headless --probe-only` on every script of scripts/demo/ in a
fresh process (TensorFlow import, the script's own data loading and model
building included), prints per-script wall time, the first verdict against the
expected one, and the median. Target: median <= 15 s on a 2-core machine.

With `--baseline DIR` (a checkout of another gradscope version, e.g. made with
`git worktree add /tmp/base <commit>`), each script also runs under that
version, alternating which goes first, and the median of the per-script time
ratios (this / baseline) is printed: on a shared, noisy machine only paired
figures compare.

    python scripts/bench_diagnose.py [--filter SUBSTRING] [--baseline DIR]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_corpus import demos, first_verdict_matches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="")
    parser.add_argument("--baseline", metavar="DIR", help="a checkout to compare with, paired")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    here = str(Path(__file__).resolve().parents[1])
    times, ratios, hits, total = [], [], 0, 0
    for index, demo in enumerate(demos()):
        if args.filter not in demo.name:
            continue
        order = [here, args.baseline] if args.baseline else [here]
        if index % 2:
            order.reverse()
        walls: dict[str, float] = {}
        for root in order:
            wall, rows, proc = _one_run(demo.path, dict(env, PYTHONPATH=root))
            walls[root] = wall
            if root == here:
                mine = (wall, rows, proc)
        wall, rows, proc = mine
        if args.baseline:
            ratios.append(walls[here] / walls[args.baseline])
        serious = [r["check"] for r in rows if r["severity"] in ("error", "warning")]
        first = serious[0] if serious else "healthy"
        ok = first_verdict_matches(demo, [(r["check"], r["severity"]) for r in rows])
        hits += ok
        total += 1
        times.append(wall)
        paired = f"  x{ratios[-1]:.2f} of baseline" if args.baseline else ""
        print(f"{wall:6.1f} s  exit {proc.returncode}  {'ok  ' if ok else 'MISS'} "
              f"{demo.name:50s} first={first}{paired}", flush=True)
    if times:
        print(f"median {statistics.median(times):.1f} s over {len(times)} scripts "
              f"(max {max(times):.1f} s); first verdict as expected: {hits}/{total}")
    if ratios:
        print(f"paired with {args.baseline}: median time ratio {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


def _one_run(script: Path, env: dict[str, str]) -> tuple[float, list[dict[str, str]], Any]:
    """Wall time, verdict rows and the process of one `gradscope run --probe-only`."""
    with tempfile.TemporaryDirectory() as tmp:
        verdicts = Path(tmp) / "v.csv"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only",
             "--csv", str(Path(tmp) / "l.csv"), "--verdicts", str(verdicts), str(script)],
            capture_output=True, text=True, env=env, cwd=script.parent,
        )
        wall = time.perf_counter() - start
        rows = list(csv.DictReader(verdicts.open())) if verdicts.exists() else []
    return wall, rows, proc


if __name__ == "__main__":
    main()
