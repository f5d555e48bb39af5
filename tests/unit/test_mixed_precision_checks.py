"""The mixed-precision checks on hand-built facts (numpy only, no TensorFlow):
loss-scale-overflow and gradient-underflow just past and just short of their
thresholds, skipped steps left out of nonfinite-loss and exploding-gradient,
and gradient-underflow explaining vanishing-gradient (checks/arbitration.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradscope.checks import gradients
from gradscope.checks.arbitration import explained
from gradscope.checks.gradients import MixedPrecisionProbe
from gradscope.checks.registry import REGISTRY, Facts
from gradscope.verdicts import Verdict
from tests.unit.test_dynamic_checks import MODEL  # the same 10-class softmax MLP

NAN, INF = float("nan"), float("inf")


def probe(*, steps: int = 4, skipped: Any = False, scales: Any = None, grad_norm: Any = 0.1,
          losses: Any = None, zeros: Any = 0.05, tiny: Any = 0.001, dead: Any = 0.0) -> MixedPrecisionProbe:
    layers = ("hidden", "out")

    def grid(value: Any, dtype: type = float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (steps, 2)).copy()

    return MixedPrecisionProbe(
        layers=layers, layer_types=("Dense", "Dense"), activations=("relu", "softmax"),
        losses=np.asarray(losses if losses is not None else [2.3 - 0.1 * i for i in range(steps)]),
        grad_norm=grid(grad_norm), weight_norm=grid(1.0), update_ratio=grid(1e-3),
        act_mean=grid(0.5), act_finite=grid(True, bool), saturated=grid(0.0), dead=grid(dead),
        output_layers=("out",),
        skipped=np.broadcast_to(np.asarray(skipped, dtype=bool), (steps,)).copy(),
        loss_scales=np.asarray(scales if scales is not None else [NAN] * steps, dtype=float),
        grad_zero_frac=grid(zeros), grad_tiny_frac=grid(tiny),
    )


def run(check: str, p: MixedPrecisionProbe) -> list[Verdict]:
    return REGISTRY[check].run(Facts(model=MODEL, probe=p))


def only(found: list[Verdict], severity: str | None) -> Verdict | None:
    """The one verdict found, of that severity (None: none found, as expected)."""
    if severity is None:
        assert found == []
        return None
    assert [v.severity for v in found] == [severity]
    return found[0]


HALVING = [32768.0, 16384.0, 8192.0, 4096.0]


@pytest.mark.parametrize(("skipped", "expect"), [
    ([False] * 4, None),
    ([True, False, False, False], "info"),
    ([True, True, False, False], "info"),  # half, but settled: the last step was applied
    ([True, True, True, False], "info"),
    ([False, True, True, True], "warning"),  # half or more, the last one skipped
    ([True, True, True, True], "warning"),
    ([False, False, False, True], "info"),  # one skip late: the scale grew and came back
])
def test_loss_scale_overflow(skipped: list[bool], expect: str | None) -> None:
    v = only(run("loss-scale-overflow", probe(skipped=skipped, scales=HALVING, grad_norm=NAN)), expect)
    if v is None:
        return
    assert v.evidence["skipped"] == sum(skipped)
    assert v.evidence["skipped_steps"] == [i + 1 for i, s in enumerate(skipped) if s]
    assert v.evidence["loss_scales"] == HALVING
    assert "32768 -> 16384" in v.message and "no exploding gradient" in v.message


def test_a_skipped_step_with_a_nan_loss_is_nonfinite_losss() -> None:
    p = probe(skipped=[True, False, False, False], losses=[NAN, 2.0, 1.9, 1.8], scales=HALVING)
    assert run("loss-scale-overflow", p) == []
    assert [v.check for v in run("nonfinite-loss", p)] == ["nonfinite-loss"]


def test_skipped_steps_are_no_nan_gradient_nor_an_explosion() -> None:
    # A skipped step's gradient norms are empty (NaN) where the gradient overflowed
    grads = [[NAN, NAN], [NAN, 0.5], [0.1, 0.1], [0.1, 0.1]]
    p = probe(skipped=[True, True, False, False], grad_norm=grads, scales=HALVING)
    assert run("nonfinite-loss", p) == []
    assert run("exploding-gradient", p) == []
    # ... the same NaN on a step that was applied is a NaN gradient
    p = probe(skipped=[True, False, False, False], grad_norm=grads, scales=HALVING)
    assert [v.evidence["step"] for v in run("nonfinite-loss", p)] == [2]
    # ... and a growth measured over the applied steps only is still an explosion
    grads = [[NAN, NAN], [1.0, 1.0], [10.0, 10.0], [100.0, 100.0]]
    p = probe(skipped=[True, False, False, False], grad_norm=grads, scales=HALVING)
    assert [v.check for v in run("exploding-gradient", p)] == ["exploding-gradient"]


LOST, TINY = gradients.UNDERFLOW_LOST, gradients.UNDERFLOW_TINY


@pytest.mark.parametrize(("zeros", "tiny", "dead", "expect"), [
    (0.05, 0.001, 0.0, None),  # a healthy loss-scaled model
    (LOST - TINY, TINY, 0.5, "warning"),  # just at both thresholds, dead units or not
    (LOST - TINY - 0.01, TINY, 0.0, None),  # just short of the share lost
    (0.1, 0.7, 0.0, "warning"),  # mostly subnormals (measured without loss scaling: 70-90 %)
    (0.3, 0.62, 0.0, "error"),  # nearly all lost (>= UNDERFLOW_ERROR)
    # Only zeros: flushed entirely, unless dead units (of the layer and the one
    # before: 2 x dead for 'out') account for them within UNDERFLOW_UNEXPLAINED
    (1.0, 0.0, 0.0, "error"),
    (LOST, 0.0, 0.12, "warning"),  # 'hidden': 0.5 > 0.12 + 0.25
    (LOST, 0.0, 0.25, None),  # 'hidden': 0.5 = 0.25 + 0.25
    (0.95, 0.0, 0.8, None),
    (NAN, NAN, 0.0, None),  # layers not computing in float16
])
def test_gradient_underflow(zeros: float, tiny: float, dead: float, expect: str | None) -> None:
    v = only(run("gradient-underflow", probe(zeros=zeros, tiny=tiny, dead=dead)), expect)
    if v is None:
        return
    assert "hidden" in v.evidence["layers"]
    assert v.evidence["zero_frac"]["hidden"] == pytest.approx(zeros, abs=1e-4)
    assert v.evidence["subnormal_frac"]["hidden"] == pytest.approx(tiny, abs=1e-4)
    assert v.evidence["loss_scale"] is None
    assert "auto_scale_loss=True" in v.fix and "mixed_bfloat16" in v.fix and "dtype='float32'" in v.fix


def test_gradient_underflow_with_a_loss_scale_names_it_and_skips_skipped_steps() -> None:
    zeros = [[0.0, 0.0], [0.3, 0.3], [0.3, 0.3], [0.3, 0.3]]
    p = probe(skipped=[True, False, False, False], scales=[2.0, 1.0, 1.0, 1.0], zeros=zeros, tiny=0.4)
    (v,) = run("gradient-underflow", p)
    assert v.evidence["loss_scale"] == 1.0
    assert "even with the loss scaled by 1" in v.message
    assert "initial_scale" in v.fix
    assert v.evidence["zero_frac"]["hidden"] == pytest.approx(0.3)  # the skipped step left out


def test_gradient_underflow_explains_vanishing_gradient() -> None:
    underflow = run("gradient-underflow", probe(zeros=0.3, tiny=0.4))
    vanishing = Verdict("vanishing-gradient", "warning", "hidden", "tiny early gradients", "fix",
                        "cause", {})
    (after,) = explained(underflow, [vanishing])
    assert after.kind == "symptom" and after.evidence["explained_by"] == "gradient-underflow"
