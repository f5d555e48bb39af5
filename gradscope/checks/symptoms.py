"""Experiment-based checks: what the small experiments on the clone show (a
tiny subset it cannot overfit, predictions that do not move or do not differ,
accuracy stuck at the majority share, a flat loss, an initial loss far above
ln(C), labels that do not generalise, a budget that ends too early).
Registered in report order; `undertrained` last."""

from __future__ import annotations

import math

from gradscope.checks.facts import ExperimentFacts
from gradscope.checks.measures import (
    accuracy_rose,
    best_lr,
    experiments_of,
    learns_held_back,
    probe_of,
)
from gradscope.checks.registry import CLASSIFICATION_LOSSES, Facts, Finding, check, finding
from gradscope.checks.wording import share as pct

# predictions-unchanged: the largest change of a prediction after the probe
# steps, relative to max(1, largest |prediction|): float32 round-off, nothing more.
UNCHANGED = 1e-7
# collapsed-predictions: probabilities whose spread across samples (std of an
# output unit) is under this share of the spread the labels ask for (the std
# of a class's 0/1 indicator, sqrt(m (1 - m)) for a majority share m) sit
# within 1 % of one value where the labels span 0..1: the same output for
# every input, to any metric.
COLLAPSE_SHARE = 1e-2
# Outputs without a probability scale (logits, regression) count as the same
# only when equal to float32 precision relative to their size: 1e-6 is ~10
# float32 ulps (eps 1.2e-7), what reordered sums leave on identical outputs.
# (Relative, not floored at 1: small regression targets give small outputs
# that differ by far less than 1e-6 and still differ.)
COLLAPSE_FLOAT = 1e-6
OVERFIT_MIN_DROP = 0.15  # share of the tiny subset's loss a learning model removes
# ... in this many steps; a slow model's budget buys fewer, and the drop asked for
# shrinks in proportion (10 steps of plain SGD take a healthy model's loss down
# by a few percent only): a short test may miss, it must not accuse.
OVERFIT_FULL_STEPS = 100
# A higher rate in the sweep that takes the evaluation loss to this share of
# its initial value shows the model can learn: not overfitting in time is then
# the rate's or the budget's doing (lr-too-low / undertrained).
LEARNS_FASTER = 0.7
# Accuracy stuck at the majority share (on the tiny subset or held back) means
# something only after enough steps for a healthy model to leave it.
HELDOUT_MIN_STEPS = 40
# ... and only on a subset holding at least this many samples outside the
# majority class: accuracy moves only through them. A model that has learned to
# find even 30 % of them shows it on 10 with probability 1 - 0.7**10 = 97 %; on
# 2 (a 256-sample held-back part of 99/1 data) it looks exactly like one
# predicting the majority for everything half the time (0.7**2 = 49 %).
# Applies to accuracy-at-baseline and labels-unpredictable alike.
MIN_MINORITY = 10
# "No better than always predicting the majority class", allowing for one
# sample of the 32 (subset) or two or three of 256 (held back, where the
# predictions are counted when they can be).
SUBSET_BASELINE_MARGIN = 0.02
HELDOUT_BASELINE_MARGIN = 0.01
# Share of predictions that are the majority class from which a model "predicts
# the majority class for everything": a few stray minority predictions (which
# move accuracy by a point or two either way) do not make it a learner.
PREDICTS_MAJORITY = 0.95
# A held-back cross-entropy below this share of the prior's (the loss of
# predicting the class shares) shows the inputs are being used.
PRIOR_MARGIN = 0.9
# loss-flat: "does not move at all" is round-off: the evaluation loss within
# FLAT_EVAL of itself over the probe steps and the overfit run within
# FLAT_OVERFIT of its start. A plateau is the overfit curve's second half
# (PLATEAU_POINTS at least) within PLATEAU of its value, reached without
# having got anywhere: above half the start and above PLATEAU_FLOOR (a
# learning model keeps falling, or has halved its loss already).
FLAT_EVAL = 1e-6
FLAT_OVERFIT = 1e-4
PLATEAU = 1e-3
PLATEAU_POINTS = 3
PLATEAU_FLOOR = 1e-3
# init-loss-unexpected: an untrained classifier starts near ln(C) (Karpathy,
# "A Recipe for Training Neural Networks"); flagged above 3 x ln(C) + 1, wide
# enough for random initialisation and mild class imbalance (gradscope's own).
INIT_LOSS_FACTOR = 3.0
INIT_LOSS_MARGIN = 1.0
# labels-unpredictable: the clone clearly learned its own part (train accuracy
# FIT_GAP above held-back), and held-back accuracy stays within CHANCE_MARGIN
# of chance and within HELDOUT_NOISE of where it started (accuracy on 256
# samples at chance moves by a few points between runs). gradscope's own.
FIT_GAP = 0.1
CHANCE_MARGIN = 0.01
HELDOUT_NOISE = 0.05
# undertrained: the replayed loss still falls at the end (below STILL_FALLING
# of its start, its last drop at least LAST_PACE of its average drop), and a
# clearly lower loss is reachable: the sweep's best under LOWER_REACHABLE x
# the end, or the overfit run down to OVERFIT_REACHED x its start. A warning
# when the accuracy is still within AT_CHANCE of the majority share.
# gradscope's own.
STILL_FALLING = 0.995
LAST_PACE = 0.25
LOWER_REACHABLE = 0.7
OVERFIT_REACHED = 0.3
AT_CHANCE = 0.05


@check("predictions-unchanged", "error", "symptom", "predictions do not move",
       phase="dynamic", needs=("probe", "experiments"))
def predictions_unchanged(facts: Facts) -> list[Finding]:
    p, e = probe_of(facts), experiments_of(facts)
    scale = max(e.pred_scale, 1e-12)
    if not e.pred_change <= UNCHANGED * max(1.0, scale):  # (NaN: not measured)
        return []
    return [
        finding(
            "model",
            f"after {p.losses.size} training steps the predictions on a fixed batch are "
            f"identical to the initial ones (largest change {e.pred_change:.2g}).",
            "Nothing reaches the output: see the cause reported with this verdict "
            "(a constant output activation, a frozen model, a zero learning rate).",
        )
    ]


@check("collapsed-predictions", "error", "symptom", "the same output for every input",
       phase="dynamic", needs=("experiments",))
def collapsed_predictions(facts: Facts) -> list[Finding]:
    """The same output for every input: judged on the evaluation batch (256 rows,
    after the probe steps) and, when it ran, on the tiny subset after the overfit
    run; both must agree, so a subset of one class (rare classes) that the model
    rightly answers with one value is no evidence. For probabilities, "the same"
    is relative to the spread the labels need (COLLAPSE_SHARE); for any other
    output, equal to float precision (COLLAPSE_FLOAT)."""
    e = experiments_of(facts)
    majority = _label_majority(e)
    if majority is not None and majority >= 1.0:
        return []  # one class: a constant output is what the labels ask for
    if e.probability_output:
        need = math.sqrt(majority * (1 - majority)) if majority is not None else 0.5
        tolerance = COLLAPSE_SHARE * need
    else:
        need = None
        tolerance = COLLAPSE_FLOAT * max(e.pred_scale, 0.0)
    on_eval, on_subset = e.pred_spread_after, e.overfit_spread_end
    if not (math.isfinite(on_eval) and on_eval <= tolerance):
        return []
    if math.isfinite(on_subset) and on_subset > tolerance:
        return []
    trained = (
        f", and by {on_subset:.2g} across the {e.overfit_samples} samples a clone then trained on"
        if math.isfinite(on_subset)
        else ""
    )
    versus = (
        f": under {COLLAPSE_SHARE:.0%} of the spread the labels need ({need:.2g})"
        if need is not None
        else ": equal to float precision"
    )
    return [
        finding(
            "model",
            f"the model gives the same output for every input: its outputs differ across the "
            f"evaluation batch by {on_eval:.2g} (largest std of an output unit){trained}{versus}.",
            "The inputs do not reach the output: look for saturated or dead layers, "
            "constant inputs or a constant output activation (reported with this verdict).",
            spread=max(on_eval, on_subset) if math.isfinite(on_subset) else on_eval,
            eval_spread=on_eval,
            subset_spread=on_subset if math.isfinite(on_subset) else None,
            tolerance=tolerance,
        )
    ]


def _label_majority(e: ExperimentFacts) -> float | None:
    """The majority class's share of the labels, from the largest set measured
    (evaluation batch, held-back part, tiny subset); None for regression."""
    for m in (e.eval_majority, e.heldout_majority, e.overfit_majority):
        if m is not None and math.isfinite(m):
            return m
    return None


@check("cannot-overfit", "error", "symptom", "cannot overfit a tiny subset",
       phase="dynamic", needs=("experiments",))
def cannot_overfit(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    start, end = e.overfit_loss_start, e.overfit_loss_end
    # (A model that generalises to held-back rows can learn, whatever the tiny
    # subset showed: see measures.learns_held_back.)
    if (not e.overfit_steps or not math.isfinite(start) or accuracy_rose(e) or _learns_faster(e)
            or learns_held_back(e)):
        return []
    # A model that learns at all takes a tiny subset's loss down clearly within
    # the budget, even at a modest learning rate; a slow but healthy one at
    # least by OVERFIT_MIN_DROP.
    required = OVERFIT_MIN_DROP * min(1.0, e.overfit_steps / OVERFIT_FULL_STEPS)
    if math.isfinite(end) and end <= (1 - required) * start:
        return []
    acc = (
        f", accuracy {pct(e.overfit_acc_start)} -> {pct(e.overfit_acc_end)}"
        if e.overfit_acc_end is not None and e.overfit_acc_start is not None
        else ""
    )
    return [
        finding(
            "model",
            f"a clone trained {e.overfit_steps} steps on just {e.overfit_samples} samples "
            f"only took the loss from {start:.4g} to {end:.4g}{acc}: a model that can "
            f"learn memorises {e.overfit_samples} samples easily.",
            "Fix the cause reported with this verdict first; then check that the model "
            "is big enough and the loss matches the labels.",
            loss_start=start,
            loss_end=end,
        )
    ]


def _learns_faster(e: ExperimentFacts) -> bool:
    """A faster rate than the user's learns clearly in the sweep (LEARNS_FASTER)."""
    best = best_lr(e)
    return (
        best is not None
        and e.user_lr is not None
        and best[0] > e.user_lr
        and math.isfinite(e.init_loss)
        and best[1] <= LEARNS_FASTER * e.init_loss
    )


@check("accuracy-at-baseline", "warning", "symptom", "accuracy stays at the majority-class rate",
       phase="dynamic", needs=("experiments",))
def accuracy_at_baseline(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    if _stuck_on_subset(e):
        return [
            finding(
                "model",
                f"accuracy stays at {pct(e.overfit_acc_end)}, no better than always predicting "
                f"the majority class ({pct(e.overfit_majority)}), even when training on a tiny "
                "subset.",
                "The model predicts one class for everything: see the cause reported with "
                "this verdict.",
                accuracy=e.overfit_acc_end,
                majority=e.overfit_majority,
            )
        ]
    if not _stuck_on_fit(e):
        return []
    return [
        finding(
            "model",
            f"after {e.heldout_steps} steps on {e.heldout_samples} samples the accuracy is "
            f"{pct(e.heldout_train_acc)} on them and {pct(e.heldout_acc)} on held-back "
            f"samples, no better than the share of the majority class "
            f"({pct(e.heldout_majority)})"
            + (
                f": the model answers that class for {pct(e.heldout_pred_majority)} of the "
                "held-back samples."
                if e.heldout_pred_majority is not None
                else ". The model predicts the majority class for everything."
            ),
            "Weight the rare class (class_weight='balanced'-style weights), check the "
            "features carry signal, and judge by recall / AUC rather than accuracy.",
            accuracy=e.heldout_acc,
            majority=e.heldout_majority,
            predicted_majority=e.heldout_pred_majority,
        )
    ]


def _stuck_on_subset(e: ExperimentFacts) -> bool:
    """Even on the tiny subset the accuracy stays at the majority share (and the
    held-back part does not show the model beating it: measures.learns_held_back)."""
    return (
        not learns_held_back(e)
        and e.overfit_steps >= HELDOUT_MIN_STEPS
        and e.overfit_acc_end is not None
        and e.overfit_majority is not None
        and e.overfit_acc_end <= e.overfit_majority + SUBSET_BASELINE_MARGIN
        and e.overfit_majority < 1.0
        and _enough_minority(e.overfit_majority, e.overfit_samples)
    )


def _stuck_on_fit(e: ExperimentFacts) -> bool:
    """Fitting 256 samples for a few epochs leaves train and held-back accuracy
    both exactly at the majority share: it predicts one class for everything."""
    return (
        e.heldout_steps >= HELDOUT_MIN_STEPS
        and e.heldout_train_acc is not None
        and e.heldout_acc is not None
        and e.heldout_majority is not None
        and 0.5 <= e.heldout_majority < 1.0
        and _predicts_majority(e)
        and _enough_minority(e.heldout_majority, e.heldout_samples)
        and not _learned_beyond_prior(e)
    )


def _predicts_majority(e: ExperimentFacts) -> bool:
    """After fitting, the clone predicts the majority class for (nearly) every
    sample of its fitted part and of the held-back part, and held-back accuracy
    is no better than that class's share. Read from the predictions when they
    were counted, else from accuracy equal to the majority share."""
    assert e.heldout_acc is not None and e.heldout_majority is not None
    if e.heldout_acc > e.heldout_majority + HELDOUT_BASELINE_MARGIN:
        return False
    if e.heldout_pred_majority is not None and e.heldout_train_pred_majority is not None:
        return min(e.heldout_pred_majority, e.heldout_train_pred_majority) >= PREDICTS_MAJORITY
    return (
        e.heldout_train_acc is not None
        and abs(e.heldout_train_acc - e.heldout_majority) <= HELDOUT_BASELINE_MARGIN
        and abs(e.heldout_acc - e.heldout_majority) <= HELDOUT_BASELINE_MARGIN
    )


def _learned_beyond_prior(e: ExperimentFacts) -> bool:
    """On imbalanced data a learning model keeps predicting the majority class for
    a while (accuracy at the majority share) while its loss already falls below
    what the class shares alone give: it is learning, not stuck."""
    if e.heldout_loss is None or not e.heldout_prior_loss:
        return False
    end = e.heldout_loss[1]
    return math.isfinite(end) and end < PRIOR_MARGIN * e.heldout_prior_loss


def _enough_minority(majority: float | None, samples: int) -> bool:
    """At least MIN_MINORITY of the samples lie outside the majority class."""
    return majority is not None and round((1.0 - majority) * samples) >= MIN_MINORITY


@check("loss-flat", "error", "symptom", "the loss does not change",
       phase="dynamic", needs=("experiments",))
def loss_flat(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    start, end = e.overfit_loss_start, e.overfit_loss_end
    curve = [c for c in e.overfit_curve if math.isfinite(c)]
    tail = curve[len(curve) // 2 :]
    # Flat from the start, or stuck on a plateau for the second half of the
    # overfit run without having got anywhere (a learning model keeps falling).
    plateau = (
        len(tail) >= PLATEAU_POINTS
        and (max(tail) - min(tail)) <= PLATEAU * max(abs(tail[0]), 1e-12)
        and math.isfinite(end)
        and end > 0.5 * start
        and end > PLATEAU_FLOOR
    )
    flat_from_start = (
        math.isfinite(e.loss_after_probe)
        and math.isfinite(e.init_loss)
        and abs(e.loss_after_probe - e.init_loss) <= FLAT_EVAL * max(abs(e.init_loss), 1e-12)
        and math.isfinite(start)
        and abs(end - start) <= FLAT_OVERFIT * max(abs(start), 1e-12)
    )
    if not (flat_from_start or plateau):
        return []
    return [
        finding(
            "loss",
            f"the loss does not move: {e.init_loss:.6g} before and {e.loss_after_probe:.6g} "
            f"after the probe steps; while overfitting 32 samples it went {start:.6g} -> "
            f"{end:.6g} and then stayed flat.",
            "See the cause reported with this verdict.",
        )
    ]


def _task(facts: Facts) -> tuple[bool, int | None, str | None]:
    """(classification, number of classes, loss kind): as the caller stated them
    (Facts.task, run_dynamic's arguments), else derived from the first output."""
    if facts.task is not None:
        return facts.task
    return facts.classification, facts.n_classes, facts.loss_kind


@check("init-loss-unexpected", "warning", "symptom", "initial loss far from ln(C)",
       phase="dynamic", needs=("experiments",))
def init_loss_unexpected(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    classification, n_classes, loss_kind = _task(facts)
    if not (classification and n_classes and n_classes >= 2 and loss_kind in CLASSIFICATION_LOSSES):
        return []
    classes = n_classes if loss_kind != "binary_crossentropy" else 2
    expected = math.log(classes)
    if not (math.isfinite(e.init_loss) and e.init_loss > INIT_LOSS_FACTOR * expected + INIT_LOSS_MARGIN):
        return []
    return [
        finding(
            "loss",
            f"the initial loss is {e.init_loss:.4g}, far above ln({classes}) "
            f"= {expected:.3g} expected from an untrained classifier: the model starts "
            "over-confident (unscaled inputs, a large output initialisation, or the wrong loss).",
            "Scale the inputs, keep the default initialisers on the output layer, and "
            "check the loss against the labels.",
            init_loss=e.init_loss,
            expected=expected,
        )
    ]


@check("labels-unpredictable", "warning", "cause", "held-back subset stays at chance",
       phase="dynamic", needs=("experiments",))
def labels_unpredictable(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    if e.heldout_acc is None or e.heldout_train_acc is None or e.heldout_majority is None:
        return []
    chance = e.heldout_majority
    # The clone learns its own part (train accuracy clearly above held-back)
    # while held-back accuracy stays at chance and does not rise from where it
    # started: what it learned does not carry over, so the labels do not
    # follow the inputs. (Held-back *loss* can still fall by learning the
    # class priors, so it is no evidence either way.)
    start = e.heldout_acc_start if e.heldout_acc_start is not None else 0.0
    if not (
        e.heldout_train_acc >= e.heldout_acc + FIT_GAP
        # (chance = the majority share, which shuffled labels rarely even reach)
        and e.heldout_acc <= chance + CHANCE_MARGIN
        and e.heldout_acc <= start + HELDOUT_NOISE
        # (accuracy at chance means nothing with a handful of rare samples)
        and _enough_minority(chance, e.heldout_samples)
    ):
        return []
    return [
        finding(
            "labels",
            f"a clone fitted to {e.heldout_samples} samples reached "
            f"{pct(e.heldout_train_acc)} on them but only {pct(e.heldout_acc)} on "
            f"{e.heldout_samples} held-back samples (chance: {pct(chance)}): "
            "the labels do not follow from the inputs.",
            "Check that inputs and labels are aligned: shuffle them together, e.g.\n"
            "    idx = np.random.permutation(len(x)); x, y = x[idx], y[idx]\n"
            "and that no sort or filter was applied to only one of them.",
            train_acc=e.heldout_train_acc,
            heldout_acc=e.heldout_acc,
            chance=chance,
        )
    ]


@check("undertrained", "info", "symptom", "the budget ends while the loss still falls",
       phase="dynamic", needs=("experiments",))
def undertrained(facts: Facts) -> list[Finding]:
    e = experiments_of(facts)
    if len(e.budget_curve) < 3 or not all(math.isfinite(c) for c in e.budget_curve):
        return []
    curve = e.budget_curve
    start, end = curve[0], curve[-1]
    # Still going down at the end, at no less than a quarter of its average pace:
    # the budget ends before the loss levels off.
    average_drop = (start - end) / (len(curve) - 1)
    still_falling = end < STILL_FALLING * start and (curve[-2] - end) >= LAST_PACE * average_drop > 0
    best = best_lr(e)
    lower_possible = (best is not None and best[1] <= LOWER_REACHABLE * end) or (
        math.isfinite(e.overfit_loss_end) and e.overfit_loss_end <= OVERFIT_REACHED * e.overfit_loss_start
    )
    if not (still_falling and lower_possible):
        return []
    at_chance = (
        e.budget_acc_end is not None
        and e.eval_majority is not None
        and e.budget_acc_end <= e.eval_majority + AT_CHANCE
    )
    trend = " -> ".join(f"{c:.4g}" for c in curve)
    better = f"; at lr={best[0]:.0e} a clone got to {best[1]:.4g} in {e.sweep_steps} steps" if best else ""
    return [
        finding(
            "model",
            f"replaying your budget of {e.budget_steps} steps on a clone, the loss is still "
            f"falling when it ends ({trend}){better}"
            + (f", and accuracy would still be {pct(e.budget_acc_end)} (majority class "
               f"{pct(e.eval_majority)})." if at_chance else "."),
            "Train for more epochs, or raise the learning rate"
            + (f" (e.g. learning_rate={best[0]:.0e})" if best else "")
            + "; an EarlyStopping callback can pick the stopping point for you.",
            severity="warning" if at_chance else "info",
            budget_steps=e.budget_steps,
            curve=list(curve),
        )
    ]
