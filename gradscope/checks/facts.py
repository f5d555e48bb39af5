"""Facts the checks read: plain data the engine fills in from the model, its
compile config and a data sample. Numpy only, so checks are unit-testable
without building a model."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

MAX_UNIQUE = 50  # label values quoted / counted exactly up to this many


@dataclass(frozen=True)
class ArrayFacts:
    """Summary of one label or input array (first axis = samples)."""

    shape: tuple[int, ...]
    dtype: str
    n: int
    finite: bool
    nonfinite_count: int
    integer_valued: bool
    min: float
    max: float
    mean: float
    std: float
    unique: tuple[float, ...]  # sorted, at most MAX_UNIQUE values
    n_unique: int  # exact up to MAX_UNIQUE + 1 (more means "many")
    one_hot: bool  # rank >= 2, last axis > 1, values in {0,1}, every row sums to 1
    multi_hot: bool  # values in {0,1}, last axis > 1, some row sums to more than 1
    numeric: bool = True
    absmax: float = 0.0  # largest |value|
    # max/min over features of each feature's root mean square (0 excluded): RMS,
    # not max |x|, so standardised data with a rare outlier in a near-constant
    # column (digits through StandardScaler: 30 vs 0.02) is not "unscaled".
    feature_scale_ratio: float = 1.0
    constant_features: bool = False  # every feature is constant across samples
    majority_fraction: float = float("nan")  # share of the most common class (class labels)
    row_sums_one: bool = False  # rank >= 2, last axis > 1, every row sums to ~1 (soft labels)


def summarize(array: object) -> ArrayFacts | None:
    """Facts of a label or input array (numeric=False for strings, objects,
    empty arrays); None when it cannot even be read as an array (ragged lists)."""
    # Huge values (1e30) overflow mean/std to inf: that is the evidence, not an error.
    with np.errstate(all="ignore"):
        return _summarize(array)


def _summarize(array: object) -> ArrayFacts | None:
    try:
        original = np.asarray(array)
    except (ValueError, TypeError):
        return None
    shape = tuple(int(d) for d in original.shape)
    a = np.atleast_1d(original)  # a scalar counts as one sample
    if a.dtype == bool:
        a = a.astype(np.int64)
    if a.dtype.kind not in "iuf" or a.size == 0:
        return ArrayFacts(
            shape=shape, dtype=str(a.dtype), n=int(a.shape[0]),
            finite=True, nonfinite_count=0, integer_valued=False, min=float("nan"),
            max=float("nan"), mean=float("nan"), std=float("nan"), unique=(), n_unique=0,
            one_hot=False, multi_hot=False, numeric=False,
        )
    f = a.astype(np.float64, copy=False)
    finite_mask = np.isfinite(f)
    nonfinite = int(f.size - np.count_nonzero(finite_mask))
    vals = f[finite_mask] if nonfinite else f.ravel()
    if vals.size == 0:
        vals = np.zeros(1)
    integer_valued = bool(np.all(vals == np.round(vals)))
    uniq = np.unique(vals[: 200_000])
    binary_values = bool(np.all((vals == 0) | (vals == 1)))
    one_hot = multi_hot = False
    if a.ndim >= 2 and a.shape[-1] > 1 and binary_values and not nonfinite:
        row_sums = f.reshape(-1, a.shape[-1]).sum(axis=1)
        one_hot = bool(np.all(row_sums == 1))
        multi_hot = bool(np.any(row_sums > 1))
    absmax = float(np.abs(vals).max())
    ratio = 1.0
    constant_features = False
    if a.ndim >= 1 and a.shape[0] > 0:
        per_sample = f.reshape(a.shape[0], -1)
        if a.ndim >= 2:
            cols = np.nan_to_num(f, posinf=0, neginf=0).reshape(-1, a.shape[-1])
            with np.errstate(over="ignore"):
                feats = np.sqrt(np.mean(cols * cols, axis=0))
            nonzero = feats[feats > 0]
            if nonzero.size >= 2:
                with np.errstate(over="ignore"):
                    ratio = float(nonzero.max() / nonzero.min())
        if a.shape[0] > 1:
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                constant_features = bool(
                    np.all(np.nanmax(per_sample, 0) == np.nanmin(per_sample, 0))
                )
    majority = float("nan")
    if one_hot:
        counts = np.bincount(f.reshape(-1, a.shape[-1]).argmax(axis=1))
        majority = float(counts.max() / counts.sum())
    elif integer_valued and (a.ndim == 1 or a.shape[-1] == 1) and uniq.size <= MAX_UNIQUE:
        _, counts = np.unique(vals, return_counts=True)
        majority = float(counts.max() / counts.sum())
    row_sums_one = False
    if a.ndim >= 2 and a.shape[-1] > 1 and not nonfinite and vals.min() >= 0:
        row_sums_one = bool(np.allclose(f.reshape(-1, a.shape[-1]).sum(axis=1), 1.0, atol=1e-3))
    return ArrayFacts(
        absmax=absmax,
        feature_scale_ratio=ratio,
        constant_features=constant_features,
        majority_fraction=majority,
        row_sums_one=row_sums_one,
        shape=shape,
        dtype=str(a.dtype),
        n=int(a.shape[0]) if a.ndim else 1,
        finite=nonfinite == 0,
        nonfinite_count=nonfinite,
        integer_valued=integer_valued,
        min=float(vals.min()),
        max=float(vals.max()),
        mean=float(vals.mean()),
        std=float(vals.std()),
        unique=tuple(float(u) for u in uniq[:MAX_UNIQUE]),
        n_unique=int(min(uniq.size, MAX_UNIQUE + 1)),
        one_hot=one_hot,
        multi_hot=multi_hot,
    )


@dataclass(frozen=True)
class OutputFacts:
    """One model output, the layer that produces it, its loss and its labels."""

    name: str
    layer: str  # name of the layer whose output this is
    units: int | None  # size of the last axis
    activation: str | None  # "softmax" | "sigmoid" | "relu" | "tanh" | "linear" | "other" | None
    loss: str | None  # canonical loss kind, see engine.facts.canonical_loss
    loss_display: str  # as the user wrote it, for messages
    from_logits: bool | None
    labels: ArrayFacts | None
    label_smoothing: float = 0.0
    metrics: tuple[str, ...] = ()  # metric names compiled for this output, lower case


@dataclass(frozen=True)
class EmbeddingIds:
    """The ids an Embedding layer received in the static checks' forward pass."""

    layer: str
    input_dim: int
    min_id: int
    max_id: int
    outside: int  # ids outside [0, input_dim)
    total: int


@dataclass(frozen=True)
class ModelFacts:
    name: str
    total_params: int
    trainable_params: int
    weighted_layers: tuple[str, ...]  # layers that own weights
    frozen_layers: tuple[str, ...]  # weighted layers with trainable=False
    outputs: tuple[OutputFacts, ...] = ()
    inputs: tuple[ArrayFacts, ...] = ()
    # Each input's name, aligned with `inputs`: its dict key, or the name given
    # to its keras.Input; "" when it has none (a single array, unnamed Inputs).
    input_names: tuple[str, ...] = ()
    # What the first layer with weights actually receives (after any Rescaling,
    # Normalization or in-call preprocessing), and that layer's type and name.
    first_layer_input: ArrayFacts | None = None
    first_layer_type: str = ""
    first_layer_name: str = ""
    metrics: tuple[str, ...] = ()  # metric names as compiled, lower case
    notes: tuple[str, ...] = field(default_factory=tuple)
    dropout_rates: tuple[tuple[str, float], ...] = ()  # (layer, rate) of each Dropout-like layer
    batch_norm_layers: tuple[str, ...] = ()  # trainable BatchNormalization layers
    embedding_ids: tuple[EmbeddingIds, ...] = ()  # per Embedding layer, in call order


@dataclass(frozen=True)
class ProbeFacts:
    """What the compiled probe steps measured, in forward layer order.

    Arrays are [steps, layers]; NaN where a figure does not apply (a layer
    without trainable weights has no gradient norm)."""

    layers: tuple[str, ...]
    layer_types: tuple[str, ...]
    activations: tuple[str | None, ...]
    losses: np.ndarray  # [steps] total loss per step
    grad_norm: np.ndarray
    weight_norm: np.ndarray
    update_ratio: np.ndarray
    act_mean: np.ndarray  # NaN also when activations were non-finite: see act_finite
    act_finite: np.ndarray  # bool [steps, layers]; True where not tapped
    saturated: np.ndarray
    dead: np.ndarray
    data_losses: np.ndarray | None = None  # [steps]
    reg_losses: np.ndarray | None = None  # [steps]
    disconnected: tuple[str, ...] = ()  # "layer/variable" with no gradient at all
    output_layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepPoint:
    lr: float
    loss: float  # loss on the evaluation batch after the sweep steps (inf if diverged)


@dataclass(frozen=True)
class ExperimentFacts:
    """Results of the small experiments on the clone (see engine.experiments)."""

    init_loss: float  # data loss on the evaluation batch before any step
    loss_after_probe: float
    pred_change: float  # largest |prediction after probe - before| on the evaluation batch
    pred_scale: float  # largest |prediction| before
    pred_spread_after: float  # largest std across samples of an output unit
    n_units: int
    probability_output: bool = False  # the output is softmax/sigmoid probabilities
    overfit_steps: int = 0
    overfit_samples: int = 32
    heldout_samples: int = 256
    overfit_loss_start: float = float("nan")
    overfit_loss_end: float = float("nan")
    overfit_curve: tuple[float, ...] = ()
    overfit_acc_start: float | None = None
    overfit_acc_end: float | None = None
    overfit_majority: float | None = None
    overfit_spread_end: float = float("nan")
    sweep: tuple[SweepPoint, ...] = ()
    sweep_steps: int = 0
    user_lr: float | None = None
    optimizer_name: str = "Adam"
    optimizer_epsilon: float | None = None  # Adam-family epsilon, when the optimizer has one
    # The optimizer's gradient clipping, e.g. ("clipnorm", 1e-05), when it clips.
    optimizer_clip: tuple[str, float] | None = None
    heldout_steps: int = 0
    heldout_train_acc: float | None = None
    heldout_acc_start: float | None = None
    heldout_acc: float | None = None
    heldout_majority: float | None = None
    heldout_train_loss: tuple[float, float] | None = None  # (start, end) on the fitted part
    heldout_loss: tuple[float, float] | None = None  # (start, end) on the held-back part
    # Cross-entropy of always predicting the held-back part's class shares: a
    # model below it has learned something from the inputs, whatever argmax says.
    heldout_prior_loss: float | None = None
    # Share of the predictions that are the labels' majority class, on the
    # held-back part and on the fitted part (None: not single-label classes).
    heldout_pred_majority: float | None = None
    heldout_train_pred_majority: float | None = None
    budget_steps: int = 0  # the user's epochs x steps, when replayed
    budget_curve: tuple[float, ...] = ()  # evaluation loss at 0, 25, 50, 75, 100 % of it
    budget_acc_end: float | None = None
    eval_majority: float | None = None
    seconds: float = 0.0
    # Experiments the wall-clock cap (--budget) stopped, in order: they count as
    # not run (engine.experiments.EXPERIMENT_CHECKS says which checks they feed).
    cut_short: tuple[str, ...] = ()
    budget_cap: float = 0.0


@dataclass(frozen=True)
class BatchFacts:
    """How the pipeline's first batches look, in the order it yielded them."""

    kind: str  # "arrays" | "dataset" | "generator" | "pydataset"
    n_batches: int
    identical_pairs: int  # consecutive batches with identical inputs
    batch_majority: tuple[float, ...] = ()  # share of the most common class per batch
    batch_class: tuple[int, ...] = ()  # the most common class per batch
    shuffle: bool = True
    batch_sizes: tuple[int, ...] = ()  # samples per probe batch
    zero_weight_share: float | None = None  # share of samples weighted 0 (None: no weights)
    # The fit weights its samples (sample_weight, or class_weight turned into
    # sample weights) and the weights differ between samples.
    sample_weighted: bool = False
    # Share of the summed sample weight on the probe batches' most common class
    # (None without weights or class labels): below its count share when the
    # weights rebalance the classes.
    weighted_majority: float | None = None


def batch_facts(
    kind: str,
    xs: list[np.ndarray],
    ys: list[np.ndarray | None],
    shuffle: bool = True,
    weights: list[np.ndarray] | None = None,
) -> BatchFacts:
    """Facts from the first input and label leaf of each probe batch."""
    identical = sum(1 for a, b in zip(xs, xs[1:], strict=False) if _same_batch(a, b))
    majority: list[float] = []
    classes: list[int] = []
    for y in ys:
        ids = _class_ids(y)
        if ids is None or ids.size == 0:
            majority, classes = [], []
            break
        values, counts = np.unique(ids, return_counts=True)
        majority.append(float(counts.max() / counts.sum()))
        classes.append(int(values[counts.argmax()]))
    return BatchFacts(
        kind=kind,
        n_batches=len(xs),
        identical_pairs=identical,
        batch_majority=tuple(majority),
        batch_class=tuple(classes),
        shuffle=shuffle,
        batch_sizes=tuple(int(x.shape[0]) if x.ndim else 1 for x in xs),
        zero_weight_share=_zero_share(weights),
        sample_weighted=_weights_vary(weights),
        weighted_majority=_weighted_majority(ys, weights),
    )


def _per_sample(w: np.ndarray | None) -> np.ndarray | None:
    """One weight per sample (temporal weights averaged over their steps); None
    when the weights are no numbers."""
    try:
        a = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if a.ndim == 0:
        return a.reshape(1)
    return a.reshape(a.shape[0], -1).mean(axis=1) if a.size else a.reshape(0)


def _weights_vary(weights: list[np.ndarray] | None) -> bool:
    values = [p for p in (_per_sample(w) for w in weights or []) if p is not None and p.size]
    if not values:
        return False
    flat = np.concatenate(values)
    finite = flat[np.isfinite(flat)]
    return bool(finite.size and finite.max() > finite.min())


def _weighted_majority(ys: list[np.ndarray | None], weights: list[np.ndarray] | None) -> float | None:
    """Share of the summed weight held by the most common class (by count) of
    the batches; None unless every batch has class labels and one weight per
    sample (several outputs' weights cannot be told apart here)."""
    if not weights or len(weights) != len(ys):
        return None
    ids_all, w_all = [], []
    for y, w in zip(ys, weights, strict=True):
        ids, per = _class_ids(y), _per_sample(w)
        if ids is None or per is None or ids.shape[0] != per.shape[0]:
            return None
        ids_all.append(ids)
        w_all.append(per)
    if not ids_all:
        return None
    ids, w = np.concatenate(ids_all), np.concatenate(w_all)
    if ids.size == 0 or not np.all(np.isfinite(w)) or w.sum() <= 0:
        return None
    values, counts = np.unique(ids, return_counts=True)
    majority = values[counts.argmax()]
    return float(w[ids == majority].sum() / w.sum())


def _zero_share(weights: list[np.ndarray] | None) -> float | None:
    """Share of the samples whose weights are all exactly 0 (None without
    numeric weights). Per sample: temporal weights that zero a sequence's
    padding leave the sample itself weighted."""
    zero = total = 0
    for w in weights or []:
        try:
            a = np.asarray(w, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if a.size == 0:
            continue
        per_sample = np.all(a.reshape(a.shape[0], -1) == 0, axis=1) if a.ndim else a.reshape(1) == 0
        zero += int(np.count_nonzero(per_sample))
        total += int(per_sample.size)
    return zero / total if total else None


def _same_batch(a: np.ndarray, b: np.ndarray) -> bool:
    """Two batches hold the same values (NaN equal to NaN); batches that cannot be
    compared (objects, text against numbers) count as different."""
    if a.shape != b.shape or a.size == 0:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f" and b.dtype.kind == "f"))
    except (TypeError, ValueError):
        return False


def _class_ids(y: np.ndarray | None) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.dtype.kind not in "iufb" or y.size == 0:
        return None
    if y.ndim >= 2 and y.shape[-1] > 1:
        return y.reshape(-1, y.shape[-1]).argmax(axis=1)
    flat = y.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        return None
    if np.unique(flat).size > MAX_UNIQUE or np.abs(flat).max() > 2**62:
        return None
    return flat.astype(np.int64)
