"""The repository stands on its own: every file path its docs, README and
docstrings name is a file in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path with at least one folder, ending in a file type we ship.
PATH = re.compile(r"(?<![\w./-])((?:\.\./)*[\w.-]+(?:/[\w.-]+)+\.(?:py|md|toml|tcss|svg))\b")


def _repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout:
        return out.stdout.splitlines()
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]


def _texts() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "scripts" / "demo" / "README.md"]
    code = sorted((ROOT / "gradscope").rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
    return docs + code


def test_every_path_the_docs_and_docstrings_name_exists_in_the_repository() -> None:
    files = _repo_files()
    missing = []
    for text in _texts():
        for match in PATH.finditer(text.read_text(encoding="utf-8")):
            named = match.group(1)
            if named.startswith("../"):
                missing.append(f"{text.relative_to(ROOT)}: {named} (outside the repository)")
                continue
            # Named from the repository root, or from the package (checks/facts.py).
            if not any(f == named or f.endswith("/" + named) for f in files):
                missing.append(f"{text.relative_to(ROOT)}: {named}")
    assert not missing, "\n".join(missing)
