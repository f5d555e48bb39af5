"""Arbitration between verdicts (checks/arbitration.py) and the experiment-based
symptoms it ranks: pure rules over hand-built verdicts and facts (no TF), then
realistic models through the real pipeline, healthy ones that must get no false
alarm and buggy ones whose real cause must come first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradscope.checks import arbitration
from gradscope.checks.arbitration import (
    EXPLAINS,
    confirmed,
    explained,
    needs_evidence,
    rate_and_explosion,
)
from gradscope.checks.catalogue import verdict
from gradscope.checks.facts import ExperimentFacts
from gradscope.verdicts import Verdict, rank

# ---------------------------------------------------------------- helpers (no TF)


def _v(check: str, **evidence: Any) -> Verdict:
    return verdict(check, "model", f"{check} happened.", "fix it", **evidence)


def _facts(**kw: Any) -> ExperimentFacts:
    base: dict[str, Any] = dict(
        init_loss=2.3, loss_after_probe=2.2, pred_change=0.1, pred_scale=0.5,
        pred_spread_after=0.2, n_units=10, probability_output=True,
    )
    base.update(kw)
    return ExperimentFacts(**base)


LARGE_INPUT = dict(absmax=997.0)
FROM_START = dict(from_start=True)

# ------------------------------------------------- 1. arbitration rules (no TF)


def test_old_import_paths_still_work() -> None:
    from gradscope.checks.dynamic import confirmed as old_confirmed
    from gradscope.checks.static import NEEDS_EVIDENCE
    from gradscope.checks.static import needs_evidence as old_needs

    assert old_confirmed is confirmed and old_needs is needs_evidence
    assert NEEDS_EVIDENCE is arbitration.NEEDS_EVIDENCE


def test_which_static_findings_wait_for_evidence() -> None:
    assert needs_evidence(_v("unscaled-targets", std=1e3))
    assert needs_evidence(_v("unnormalized-input", absmax=0.004, tiny=True))
    assert not needs_evidence(_v("unnormalized-input", **LARGE_INPUT))
    assert not needs_evidence(_v("ordered-labels"))


def test_large_targets_are_cleared_only_when_the_model_fits_most_of_their_variance() -> None:
    targets = _v("unscaled-targets", std=100.0)  # variance 1e4
    at_edge = _facts(overfit_steps=150, overfit_loss_start=1e6, overfit_loss_end=0.5e4)
    above = _facts(overfit_steps=150, overfit_loss_start=1e6, overfit_loss_end=0.51e4)
    assert confirmed([targets], at_edge) == []
    assert confirmed([targets], above) == [targets]
    assert confirmed([targets], None) == [targets]  # no experiments: it stands


def test_tiny_inputs_are_cleared_when_the_model_learns_anyway() -> None:
    tiny = _v("unnormalized-input", absmax=0.004, tiny=True)
    halves = _facts(overfit_steps=150, overfit_loss_start=2.0, overfit_loss_end=1.0)
    stalls = _facts(overfit_steps=150, overfit_loss_start=2.0, overfit_loss_end=1.9)
    assert confirmed([tiny], halves) == []
    assert confirmed([tiny], stalls) == [tiny]


def test_a_gradient_huge_from_the_start_ranks_before_the_rate_otherwise_after() -> None:
    rate = [_v("lr-too-high")]
    assert rate_and_explosion(rate, [_v("exploding-gradient", **FROM_START)])[0].check == "exploding-gradient"
    assert rate_and_explosion(rate, [_v("exploding-gradient")])[0].check == "lr-too-high"


def test_no_check_both_explains_and_is_explained() -> None:
    # (so the rules need no chain-following and arrival order cannot matter)
    assert not {r.cause for r in EXPLAINS} & {r.effect for r in EXPLAINS}


@pytest.mark.parametrize("cause", [_v("unnormalized-input", **LARGE_INPUT), _v("unscaled-targets", std=1e3)])
def test_unscaled_data_explains_the_exploding_gradient(cause: Verdict) -> None:
    boom = _v("exploding-gradient", **FROM_START)
    [after] = explained([cause], [boom])
    assert after.kind == "symptom" and after.evidence["explained_by"] == cause.check
    assert f"follows from '{cause.check}'" in after.message
    assert after.severity == "error"  # still an error, ranked as a symptom
    assert [v.check for v in rank([cause, after])] == [cause.check, "exploding-gradient"]


def test_tiny_inputs_do_not_explain_an_exploding_gradient() -> None:
    tiny = _v("unnormalized-input", absmax=0.004, tiny=True)
    boom = _v("exploding-gradient", **FROM_START)
    assert explained([tiny], [boom]) == [boom]


def test_without_the_data_cause_the_explosion_stays_a_cause() -> None:
    boom = _v("exploding-gradient", **FROM_START)
    assert explained([_v("class-imbalance")], [boom]) == [boom]
    assert rank([_v("unnormalized-input", **LARGE_INPUT), boom])[0] is boom  # error cause first


def test_the_nan_is_explained_by_the_data_scale_only_with_the_explosion_seen() -> None:
    inputs = _v("unnormalized-input", **LARGE_INPUT)
    nan = _v("nonfinite-loss")
    assert explained([inputs], [nan]) == [nan]  # a log(0) in a custom loss is no scale issue
    boom = _v("exploding-gradient")
    out = explained([inputs], [boom, nan])
    assert [v.kind for v in out] == ["symptom", "symptom"]


def test_the_rate_is_explained_by_the_data_scale_only_when_the_gradient_was_huge_before_any_update() -> None:
    targets = _v("unscaled-targets", std=1e3)
    rate = _v("lr-too-high")
    grew = explained([targets], [rate, _v("exploding-gradient")])
    assert grew[0] is rate  # huge because of the steps: the rate may well be it
    huge = explained([targets], [rate, _v("exploding-gradient", **FROM_START)])
    assert huge[0].kind == "symptom" and huge[0].evidence["explained_by"] == "unscaled-targets"


def test_nan_in_the_data_explains_the_nan_loss() -> None:
    [after] = explained([_v("nonfinite-input")], [_v("nonfinite-loss")])
    assert after.evidence["explained_by"] == "nonfinite-input"


def test_labels_sorted_by_class_explain_the_jumping_loss_not_the_rate() -> None:
    ordered = _v("ordered-labels", batch_classes=[0, 0, 1])
    rate = _v("lr-too-high", update_ratio=0.3)
    [after] = explained([ordered], [rate])
    assert after.kind == "symptom" and after.evidence["explained_by"] == "ordered-labels"
    assert after.evidence["update_ratio"] == 0.3  # its own evidence is kept
    assert rank([rate, ordered]) == [rate, ordered]  # before arbitration the error led
    assert [v.check for v in rank([after, ordered])] == ["ordered-labels", "lr-too-high"]
    assert explained([], [rate]) == [rate]  # shuffled data: the rate stands


def test_a_cause_among_the_new_verdicts_explains_too_and_issued_ones_are_left_alone() -> None:
    issued = [_v("exploding-gradient", **FROM_START)]
    out = explained(issued, [_v("ordered-labels"), _v("lr-too-high")])
    assert [v.kind for v in out] == ["cause", "symptom"]
    assert issued[0].kind == "cause"


def test_symptoms_and_unrelated_causes_pass_through_unchanged() -> None:
    new = [_v("loss-flat"), _v("dead-relu"), _v("cannot-overfit")]
    assert explained([_v("ordered-labels"), _v("unnormalized-input", **LARGE_INPUT)], new) == new


# ------------------------------------------- through the real pipeline (tiny TF)

# A safety cap only: the experiments run planned step counts, so a loaded
# machine must not cut them short and change the verdicts.
BUDGET = 30.0


def _keras() -> Any:
    return pytest.importorskip("keras")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype("float32"), d.target.astype("int64")


def _digits_mlp(optimizer: Any) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _diagnose(model: Any, *args: Any, **kwargs: Any) -> Any:
    from tests.diagnose import diagnose

    kwargs.setdefault("steps", 5)
    return diagnose(model, *args, budget=BUDGET, **kwargs)


def test_raw_features_and_huge_targets_under_sgd_are_named_before_the_explosion() -> None:
    # Given raw features up to 1000 and targets in the thousands, plain SGD(1e-3):
    # the loss is 2e6 at once and inf by the third step
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1000, size=(1000, 3)).astype("float32")
    y = (3 * x[:, 0] - 2 * x[:, 1] + x[:, 2] + rng.normal(0, 10, 1000)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    found = _diagnose(model, x, y, epochs=5)
    # Then the data's scale comes first, and the explosion (and what follows from
    # it) after, as its symptoms
    assert found.ids[0] in ("unnormalized-input", "unscaled-targets"), found.ids
    assert {"unnormalized-input", "unscaled-targets"} <= set(found.ids[:2])
    boom = found.find("exploding-gradient")
    assert boom.kind == "symptom" and boom.evidence["explained_by"] in found.ids[:2]
    for v in found.verdicts:
        if v.check in ("lr-too-high", "nonfinite-loss"):
            assert v.kind == "symptom", v


@pytest.mark.parametrize("pipeline", ["shuffle=False", "tf.data"])
def test_data_sorted_by_label_is_named_before_the_learning_rate(pipeline: str) -> None:
    # Given digits sorted by class, fed in that order, and a rate on the high side
    keras = _keras()
    x, y = _digits()
    order = np.argsort(y, kind="stable")
    if pipeline == "tf.data":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(32)
        found = _diagnose(_digits_mlp(keras.optimizers.SGD(0.1)), data, epochs=5)
    else:
        found = _diagnose(_digits_mlp(keras.optimizers.Adam(0.01)), x[order], y[order],
                          shuffle=False, epochs=5)
    # Then the ordering is the headline; the jumping loss is not blamed on the rate first
    assert found.ids[0] == "ordered-labels", found.ids
    assert "lr-too-high" in found.ids  # (it fired here, ranked first, before the rule)
    for v in found.verdicts:
        if v.check == "lr-too-high":
            assert v.kind == "symptom" and v.evidence["explained_by"] == "ordered-labels"
