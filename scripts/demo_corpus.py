"""The demo corpus in scripts/demo/: each script's expected verdict, read from
its docstring (`gradscope-expect: <id>` or `healthy`, `gradscope-also: <id>, ...`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo"


@dataclass(frozen=True)
class Demo:
    path: Path
    expect: str  # a check ID, or "healthy"
    also: tuple[str, ...]

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
        also = re.search(r"gradscope-also:\s*([\w\-, ]+)", text)
        extra = tuple(a.strip() for a in also.group(1).split(",") if a.strip()) if also else ()
        found.append(Demo(path, expect.group(1), extra))
    return found


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
