"""The demo corpus in scripts/demo/: each script's expected verdict, read from
its docstring (`gradscope-expect: <id>` or `healthy`, `gradscope-also: <id>, ...`).

A script whose problem starts only as its training goes on (a schedule that
raises the learning rate at epoch 3, val_loss turning around at epoch 11)
says so with `gradscope-late: <id>, ...`: the verdicts the checks on the
training (checks/training.py) give in a full run, the one ranked first
first. Its `gradscope-expect` is what the probe at the start sees (`healthy`:
nothing wrong yet). tests/test_training_watch_demos.py runs these in full."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo"


@dataclass(frozen=True)
class Demo:
    path: Path
    expect: str  # a check ID, or "healthy"
    also: tuple[str, ...]  # further verdicts that apply, the late ones included
    late: tuple[str, ...] = ()  # what only the watched training shows, first-ranked first

    @property
    def name(self) -> str:
        return self.path.stem


def demos() -> list[Demo]:
    found = []
    for path in sorted(DEMO_DIR.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        expect = re.search(r"gradscope-expect:\s*([\w-]+)", text)
        if not expect:
            continue
        extra, late = _ids(text, "also"), _ids(text, "late")
        found.append(Demo(path, expect.group(1), extra + late, late))
    return found


def _ids(text: str, header: str) -> tuple[str, ...]:
    found = re.search(rf"gradscope-{header}:\s*([\w\-, ]+)", text)
    return tuple(a.strip() for a in found.group(1).split(",") if a.strip()) if found else ()


def late_demos() -> list[Demo]:
    """The scripts whose problem starts during the training (`gradscope-late`),
    and the healthy ones that train for several epochs (no late verdict at all)."""
    return [d for d in demos() if d.late or d.expect == "healthy"]


def first_verdict_matches(demo: Demo, ranked: list[tuple[str, str]]) -> bool:
    """`ranked`: (check, severity) in rank order. A buggy demo's first error/warning
    must be its expected check (for an `info`-level expectation: present, and no
    error/warning at all); a healthy demo must get no error/warning."""
    serious = [c for c, sev in ranked if sev in ("error", "warning")]
    if demo.expect == "healthy":
        return not serious
    if serious:
        return serious[0] == demo.expect
    return any(c == demo.expect for c, _ in ranked)
