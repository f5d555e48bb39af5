"""Static checks on how the pipeline feeds the model: its sample weights, the
batches it yields and their sizes (BatchFacts: the first probe batches)."""

from __future__ import annotations

from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.checks.wording import share as pct

# Shares of samples with weight 0 from which the weights leave too little to
# learn from (warning); every sample weighted 0 leaves nothing at all (error).
ZERO_WEIGHTS_WARN = 0.9

# A batch whose most common class holds this share of it counts as single-class.
PURE_BATCH = 0.95

# Batches this small are single-class by chance (a batch of 1 always is).
ORDERED_MIN_BATCH = 8

# With the whole label sample this mixed (majority below it), single-class
# batches can only come from sorting, even when they all show the same class.
MIXED_LABELS = 0.8


@check("zero-sample-weights", "error", "cause",
       "sample weights are 0 for (nearly) every sample", phase="static", needs=("batches",))
def zero_sample_weights(facts: Facts) -> list[Finding]:
    """sample_weight (or class_weight) of 0 for (nearly) every sample: those
    samples add nothing to the loss or its gradient."""
    assert facts.batches is not None
    share = facts.batches.zero_weight_share
    if share is None or share < ZERO_WEIGHTS_WARN:
        return []
    every = share >= 1.0
    return [
        finding(
            "sample_weight",
            f"{'every sample' if every else f'{pct(share)} of the samples'} in the probe "
            f"batches {'has' if every else 'have'} weight 0 (sample_weight or class_weight): "
            + ("the loss is 0 whatever the model predicts, so no step changes anything."
               if every else "the model learns from the few samples left."),
            "Check how the weights are computed (integer division, a mask inverted, a "
            "class_weight of 0): e.g. w = age / len(x), not age // len(x); weights should "
            "average about 1.",
            severity="error" if every else "warning",
            zero_share=share,
        )
    ]


@check("repeated-batch", "error", "cause", "the pipeline yields the same batch again",
       phase="static", needs=("batches",))
def repeated_batch(facts: Facts) -> list[Finding]:
    b = facts.batches
    assert b is not None
    # Arrays are sliced by gradscope itself: batches cannot repeat unless rows do.
    if b.kind == "arrays" or b.n_batches < 2 or b.identical_pairs < b.n_batches - 1:
        return []
    return [
        finding(
            "data",
            f"the {b.kind} yielded the same batch {b.n_batches} times in a row: the model sees "
            "one batch over and over, not the data set.",
            "Advance through the data in the generator, e.g.\n"
            "    def batches(x, y, bs):\n"
            "        while True:\n"
            "            idx = np.random.permutation(len(x))\n"
            "            for i in range(0, len(x), bs):\n"
            "                j = idx[i:i + bs]\n"
            "                yield x[j], y[j]",
            batches=b.n_batches,
        )
    ]


@check("ordered-labels", "warning", "cause", "batches are nearly single-class",
       phase="static", needs=("batches",))
def ordered_labels(facts: Facts) -> list[Finding]:
    b = facts.batches
    assert b is not None
    if len(b.batch_majority) < 2 or min(b.batch_majority) < PURE_BATCH:
        return []
    if b.batch_sizes and min(b.batch_sizes) < ORDERED_MIN_BATCH:
        return []
    distinct = len(set(b.batch_class))
    out = facts.first_output
    labels = out.labels if out is not None else None
    mixed_overall = labels is not None and labels.majority_fraction < MIXED_LABELS
    # A generator shows us only its first batches: all one class there is
    # "sorted" far more often than "constant".
    if distinct < 2 and not mixed_overall and b.kind != "generator":
        return []
    return [
        finding(
            "data",
            f"each of the first {len(b.batch_majority)} batches is (nearly) a single class "
            f"(classes {', '.join(str(c) for c in b.batch_class)}): the data is sorted by label "
            "and not shuffled, so each step pulls the model towards one class.",
            "Shuffle before batching: model.fit(x, y, shuffle=True), "
            "dataset.shuffle(len(x)).batch(bs), or shuffle the index in your generator.",
            batch_classes=list(b.batch_class),
        )
    ]


@check("batch-norm-single-sample", "error", "cause",
       "BatchNormalization on batches of one sample", phase="static", needs=("batches",))
def batch_norm_single_sample(facts: Facts) -> list[Finding]:
    """A batch of one: BatchNormalization subtracts the batch mean, i.e. the sample
    itself, so in training every unit outputs its beta whatever the input."""
    b = facts.batches
    names = facts.model.batch_norm_layers
    if not names or b is None or not b.batch_sizes or max(b.batch_sizes) != 1:
        return []
    return [
        finding(
            names[0],
            f"the batches hold one sample each and the model has BatchNormalization "
            f"({', '.join(names)}): normalising a batch of one subtracts the sample from "
            "itself, so in training these layers output a constant and the input cannot "
            "reach the output.",
            "Use batches of 16 or more: model.fit(x, y, batch_size=32); for batch size 1 "
            "use keras.layers.LayerNormalization instead.",
            layers=list(names),
        )
    ]
