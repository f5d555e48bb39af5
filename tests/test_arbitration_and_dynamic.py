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


# --------------------------------- 2. collapsed-predictions, 3. baseline (no TF)


def _ids(found: list[Verdict]) -> list[str]:
    return [v.check for v in found]


def test_collapsed_needs_both_the_evaluation_batch_and_the_trained_subset_to_agree() -> None:
    from gradscope.checks.dynamic import collapsed_predictions

    # a rare-class subset trained to one value (8e-4) while 256 inputs differ by 0.09
    one_class_subset = _facts(pred_spread_after=0.087, overfit_spread_end=8.3e-4,
                              overfit_majority=1.0, heldout_majority=0.996, n_units=1)
    assert collapsed_predictions(one_class_subset) == []
    # eval batch identical, but training made them differ: not collapsed either
    assert collapsed_predictions(_facts(pred_spread_after=0.0, overfit_spread_end=0.3)) == []
    # both identical: it is
    [v] = collapsed_predictions(_facts(pred_spread_after=0.0, overfit_spread_end=0.0))
    assert v.check == "collapsed-predictions" and "same output" in v.message


def test_collapsed_probabilities_are_judged_against_the_spread_the_labels_need() -> None:
    from gradscope.checks.dynamic import COLLAPSE_SHARE, collapsed_predictions

    # balanced two classes: the labels' indicator std is 0.5
    edge = COLLAPSE_SHARE * 0.5
    at = _facts(pred_spread_after=edge, overfit_spread_end=edge, heldout_majority=0.5)
    above = _facts(pred_spread_after=edge * 1.01, overfit_spread_end=edge, heldout_majority=0.5)
    assert _ids(collapsed_predictions(at)) == ["collapsed-predictions"]
    assert collapsed_predictions(above) == []
    # 99/1: the labels need a spread of ~0.1 only, so 0.002 already differs
    rare = _facts(pred_spread_after=2e-3, overfit_spread_end=2e-3, heldout_majority=0.99)
    assert collapsed_predictions(rare) == []
    # one class only: a constant output is right
    assert collapsed_predictions(_facts(pred_spread_after=0.0, overfit_spread_end=0.0,
                                        eval_majority=1.0)) == []


def test_collapsed_logits_or_regression_outputs_must_be_equal_to_float_precision() -> None:
    from gradscope.checks.dynamic import COLLAPSE_FLOAT, collapsed_predictions

    # small regression targets: outputs of 1e-7 that differ by 1e-8 do differ
    small = _facts(probability_output=False, pred_scale=1e-7, pred_spread_after=1e-8,
                   overfit_spread_end=1e-8, n_units=1)
    assert collapsed_predictions(small) == []
    edge = COLLAPSE_FLOAT * 3.0
    same = _facts(probability_output=False, pred_scale=3.0, pred_spread_after=edge,
                  overfit_spread_end=0.0, n_units=1)
    assert _ids(collapsed_predictions(same)) == ["collapsed-predictions"]
    differ = _facts(probability_output=False, pred_scale=3.0, pred_spread_after=edge * 1.01,
                    overfit_spread_end=0.0, n_units=1)
    assert collapsed_predictions(differ) == []


def _stuck_on_heldout(majority: float, samples: int = 256) -> ExperimentFacts:
    # fitted and held-back accuracy exactly at the majority share, no learning beyond it
    return _facts(heldout_steps=200, heldout_samples=samples, heldout_majority=majority,
                  heldout_train_acc=majority, heldout_acc=majority, heldout_acc_start=majority,
                  n_units=1)


def _symptoms(e: ExperimentFacts) -> list[str]:
    from gradscope.checks.dynamic import symptoms
    from gradscope.checks.facts import ProbeFacts

    empty = np.zeros((1, 0))
    p = ProbeFacts(layers=(), layer_types=(), activations=(), losses=np.array([1.0]),
                   grad_norm=empty, weight_norm=empty, update_ratio=empty, act_mean=empty,
                   act_finite=empty.astype(bool), saturated=empty, dead=empty)
    return _ids(symptoms(p, e, True, 2, "binary_crossentropy"))


def test_accuracy_at_baseline_needs_enough_rare_samples_held_back() -> None:
    from gradscope.checks.dynamic import MIN_MINORITY

    # 256 held back: 10 outside the majority is the edge (1 - 246/256 = 10/256)
    assert "accuracy-at-baseline" in _symptoms(_stuck_on_heldout(1 - MIN_MINORITY / 256))
    assert "accuracy-at-baseline" not in _symptoms(_stuck_on_heldout(1 - (MIN_MINORITY - 1) / 256))
    # one rare sample among 256 (99.6 %): accuracy cannot tell learning from guessing
    assert "accuracy-at-baseline" not in _symptoms(_stuck_on_heldout(255 / 256))
    assert "accuracy-at-baseline" in _symptoms(_stuck_on_heldout(0.8))


def test_accuracy_at_baseline_on_the_tiny_subset_needs_enough_rare_samples_too() -> None:
    def stuck(majority: float) -> ExperimentFacts:
        return _facts(overfit_steps=150, overfit_samples=32, overfit_loss_start=0.7,
                      overfit_loss_end=0.69, overfit_acc_start=majority, overfit_acc_end=majority,
                      overfit_majority=majority, n_units=1)

    assert "accuracy-at-baseline" in _symptoms(stuck(22 / 32))  # 10 of the rare class
    assert "accuracy-at-baseline" not in _symptoms(stuck(23 / 32))  # 9
    assert "accuracy-at-baseline" not in _symptoms(stuck(30 / 32))  # 2


def test_labels_unpredictable_needs_enough_samples_outside_the_majority() -> None:
    def shuffled(majority: float, samples: int) -> ExperimentFacts:
        return _facts(heldout_steps=200, heldout_samples=samples, heldout_majority=majority,
                      heldout_train_acc=0.9, heldout_acc=majority, heldout_acc_start=majority,
                      n_units=10)

    assert "labels-unpredictable" in _symptoms(shuffled(0.13, 256))  # digits, 10 classes
    # 40 held back, 80 % one class: 8 others, too few to call the rest chance
    assert "labels-unpredictable" not in _symptoms(shuffled(0.8, 40))
    assert "labels-unpredictable" in _symptoms(shuffled(0.75, 40))  # 10 others


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


def _binary_mlp(n_features: int, learning_rate: float) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((n_features,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy", metrics=["accuracy"])
    return model


def test_a_sigmoid_on_rare_positives_is_not_called_collapsed_or_stuck_at_baseline() -> None:
    # Given 0.5 % positives (a tiny subset holds none, 256 held back hold one) and Adam(1e-2):
    # the subset's outputs all go to ~0 together, the evaluation batch's still differ by ~0.09
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=4000, n_features=10, weights=[0.995, 0.005],
                               class_sep=1.0, random_state=0)
    found = _diagnose(_binary_mlp(10, 1e-2), x.astype("float32"), y, epochs=5)
    assert "collapsed-predictions" not in found.ids, found.ids
    assert "accuracy-at-baseline" not in found.ids, found.ids
    assert not [v for v in found.verdicts if v.severity == "error"], found.ids


def test_a_healthy_binary_classifier_on_easy_data_gets_no_alarm() -> None:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    found = _diagnose(_binary_mlp(30, 1e-2), x, y, epochs=5)
    assert not [v for v in found.verdicts if v.severity in ("error", "warning")], found.ids


def test_a_regression_onto_small_targets_is_not_called_collapsed() -> None:
    # Given targets of order 1e-6 (a physical quantity in SI units)
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8)).astype("float32")
    y = (1e-6 * (x[:, 0] + 0.5 * x[:, 1])).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile("adam", "mse")
    found = _diagnose(model, x, y, epochs=5)
    assert "collapsed-predictions" not in found.ids, found.ids


@pytest.mark.parametrize("bug", ["dead ReLU before the output", "frozen, zero weights"])
def test_a_constant_output_is_still_called_collapsed(bug: str) -> None:
    keras = _keras()
    x, y = _digits()
    keras.utils.set_random_seed(0)
    if bug == "frozen, zero weights":
        hidden = keras.layers.Dense(32, activation="relu", kernel_initializer="zeros")
        out = keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros")
    else:
        hidden = keras.layers.Dense(32, activation="relu",
                                    bias_initializer=keras.initializers.Constant(-10.0))
        out = keras.layers.Dense(10, activation="softmax")
    model = keras.Sequential([keras.Input((64,)), hidden, out])
    model.trainable = bug != "frozen, zero weights"
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    found = _diagnose(model, x, y, epochs=5)
    v = found.find("collapsed-predictions")
    assert v.kind == "symptom" and v.evidence["eval_spread"] == 0.0
    assert found.verdicts[0].kind == "cause"  # its cause comes first
