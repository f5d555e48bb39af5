"""One place per check: the catalogue is the registry, every registered check
has its section in docs/checks.md, and the page's index is generated from the
registry (no TensorFlow: a fast test)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_checks_index import DOC, render  # noqa: E402

from gradscope.checks.catalogue import CATALOGUE  # noqa: E402
from gradscope.checks.registry import REGISTRY  # noqa: E402


def test_the_catalogue_is_exactly_the_registry() -> None:
    assert sorted(CATALOGUE) == sorted(REGISTRY)
    for check_id, info in CATALOGUE.items():
        entry = REGISTRY[check_id]
        assert (info.severity, info.kind, info.title) == (entry.severity, entry.kind, entry.title)


def test_every_check_but_the_runs_own_has_a_function_and_every_id_a_section_in_the_docs() -> None:
    own = {"probe-failed", "custom-train-step"}  # issued by the run about itself
    assert {c.id for c in REGISTRY.values() if c.fn is None} == own
    sections = set(re.findall(r"^### `([a-z0-9-]+)`", DOC.read_text(encoding="utf-8"), re.M))
    assert set(REGISTRY) - sections == set(), "checks without a section in docs/checks.md"
    assert sections - set(REGISTRY) == set(), "sections in docs/checks.md without a check"


def test_the_docs_index_is_generated_from_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "run: python scripts/gen_checks_index.py"


def test_the_public_ids_of_the_original_catalogue_are_all_still_there() -> None:
    # The contract: IDs are only ever added, never renamed or dropped.
    original = {
        "single-unit-softmax", "loss-output-mismatch", "loss-label-mismatch",
        "logits-mismatch", "output-activation-mismatch", "regression-target-classification",
        "accuracy-on-regression", "unscaled-targets", "mse-for-classification",
        "constant-labels", "class-imbalance", "nonfinite-input", "constant-input",
        "unnormalized-input", "repeated-batch", "ordered-labels", "frozen-model",
        "frozen-layers", "nonfinite-loss", "zero-gradient", "vanishing-gradient",
        "exploding-gradient", "dead-relu", "saturated-activation", "lr-too-high",
        "lr-too-low", "loss-flat", "init-loss-unexpected", "collapsed-predictions",
        "predictions-unchanged", "cannot-overfit", "accuracy-at-baseline",
        "labels-unpredictable", "regularization-dominates", "undertrained",
    }
    assert original <= set(REGISTRY)


def test_the_checks_import_no_tensorflow() -> None:
    code = "import sys, gradscope.checks.catalogue; assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
