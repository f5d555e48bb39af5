"""The compiled probe step: forward, the user's loss, backward and the real
optimizer update in one `tf.function`, with every per-layer statistic packed
into three tensors (fetching hundreds of scalars costs more than the step)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from gradscope.engine.compiling import step_function
from gradscope.engine.layers import LayerMeta, own_variables
from gradscope.engine.replicas import distribute, replica_peers, whole_step
from gradscope.engine.taps import ActivationTaps
from gradscope.engine.training import forward_losses

LossFn = Callable[[Any, Any, Any], Any]


@dataclass
class StepResult:
    """Host-side figures of one probe step."""

    loss: float
    data_loss: float
    reg_loss: float
    seconds: float
    grad_sq: np.ndarray  # per trainable variable
    weight_sq: np.ndarray
    update_sq: np.ndarray
    act: np.ndarray  # [n_layers, 4]: mean, mean_sq, saturated, alive (NaN = n/a)
    # Mixed precision (empty / None otherwise), per trainable variable: entries
    # of its gradient exactly zero, entries in float16's subnormal range (both
    # as computed, i.e. loss-scaled), its entries counted; and the step itself:
    # skipped by a LossScaleOptimizer (non-finite scaled gradients) and the
    # loss scale the gradients carried.
    grad_zeros: np.ndarray | None = None
    grad_tiny: np.ndarray | None = None
    grad_nonfinite: np.ndarray | None = None
    grad_size: np.ndarray | None = None
    skipped: bool = False
    loss_scale: float | None = None


@dataclass(frozen=True)
class LayerFigures:
    grad_norm: float | None
    weight_norm: float | None
    update_ratio: float | None
    act_mean: float | None
    act_std: float | None
    act_saturated_frac: float | None
    act_dead_frac: float | None
    # Mixed precision: the share of the layer's gradient entries exactly zero /
    # in float16's subnormal range (layers computing in float16 only).
    grad_zero_frac: float | None = None
    grad_tiny_frac: float | None = None


def summed_rows(g: tf.IndexedSlices) -> tf.Tensor:
    """The non-zero rows of a sparse gradient, one per index: a token that occurs
    twice in the batch has two slices whose sum is its row of the dense gradient."""
    unique, position = tf.unique(g.indices)
    return tf.math.unsorted_segment_sum(g.values, position, tf.shape(unique)[0])


# Ops that write a resource variable by adding a tensor to it (Keras's
# optimizers' assign_add / assign_sub), and ops that only read one.
_ADDS = {"AssignAddVariableOp", "AssignSubVariableOp"}
_READS = {"ReadVariableOp", "VarIsInitializedOp", "VariableShape", "ResourceGather", "ResourceGatherNd"}

# float16's smallest normal number: a (loss-scaled) gradient entry below it in
# magnitude has lost precision, one below half its smallest subnormal (2**-25)
# is flushed to exactly 0.
FLOAT16_MIN_NORMAL = 2.0**-14
# Rows of measured_apply's result: the three squared norms, then (precision=True)
# zeros, subnormals, non-finite entries and entries per variable (rows 3-6), and
# the scale (row 7).
ROWS_PLAIN = 3
ROWS_PRECISION = 8


def loss_scale(optimizer: Any) -> Any:
    """The scale a LossScaleOptimizer multiplies the loss by now (as its
    `scale_loss` reads it: the initial scale until it is built), or None."""
    if optimizer is None or not hasattr(optimizer, "scale_loss") or not hasattr(optimizer, "initial_scale"):
        return None
    scale = getattr(optimizer, "dynamic_scale", None) if getattr(optimizer, "built", False) else None
    if scale is None:
        scale = getattr(optimizer, "initial_scale", None)
    if scale is None:
        return None
    return tf.convert_to_tensor(getattr(scale, "value", scale))


def half_precision(layer: Any) -> bool:
    """The layer computes in float16 (mixed_float16): its gradients can overflow
    or underflow float16's range (bfloat16 has float32's range: they cannot)."""
    return compute_dtype(layer) == "float16"


def compute_dtype(layer: Any) -> str | None:
    dtype = getattr(layer, "compute_dtype", None)
    return str(dtype) if dtype is not None else None


def _applied_updates(first_op: int, variables: list[Any]) -> dict[int, tf.Tensor]:
    """{variable index: the tensor apply_gradients moved it by}, read off the ops
    added to the graph being traced since op number `first_op`.

    Only for a variable written exactly once, by an assign_add/assign_sub of the
    outer graph: its update is that tensor (up to the rounding of the addition).
    A variable written twice (weight decay, a constraint), by an assign, a
    scatter, or inside a cond (a loss-scale skip, gradient accumulation) is left
    out: the caller then measures the difference of the weights.
    """
    graph = tf.compat.v1.get_default_graph()
    index = {}
    for i, v in enumerate(variables):
        handle = getattr(getattr(v, "value", v), "handle", None)
        if handle is not None:
            index[id(handle)] = i
    captured = {inner.op.name: index[id(outer)] for outer, inner in graph.captures if id(outer) in index}
    writes: dict[int, list[tf.Tensor | None]] = {}
    for op in graph.get_operations()[first_op:]:
        if op.type in _READS:
            continue
        for k, t in enumerate(op.inputs):
            owner = captured.get(t.op.name) if t.dtype == tf.resource else None
            if owner is not None:
                writes.setdefault(owner, []).append(op.inputs[1] if op.type in _ADDS and k == 0 else None)
    return {i: found[0] for i, found in writes.items() if len(found) == 1 and found[0] is not None}


def measured_apply(
    apply_gradients: Callable[[list[tuple[Any, Any]]], Any],
    grads: list[Any],
    variables: list[Any],
    scale: Any = None,
    precision: bool = False,
) -> tf.Tensor:
    """Apply `grads` to `variables` with `apply_gradients` (an optimizer's, given
    (gradient, variable) pairs), exactly as it would alone, and measure the step:
    returns [3, n] squared norms per variable: gradient, weights before the
    update, and the update itself. `scale` is a LossScaleOptimizer's dynamic
    scale, which the gradients carry (their norms are reported unscaled).
    With `precision` (a mixed precision model), [8, n]: then per variable the
    gradient's entries exactly 0, in float16's subnormal range, non-finite (as
    computed: loss-scaled), its entries counted, and the scale (NaN if none).

    The values applied are the gradients given: the measures only add reads,
    and an identity that orders each update after its variable's two norms.
    """
    # Per-variable reductions beat one concat + segment_sum on CPU (measured:
    # segment_sum over all parameters costs more than the whole step).
    # (l2_loss is sum(t^2) / 2: the stacked vectors are doubled once.)
    w_sq, g_sq, gated, before = [], [], [], []
    counts: list[tf.Tensor] = []  # [zeros, tiny, non-finite, size] per variable (precision)
    zero = tf.constant(0.0)
    # Under a strategy with several replicas each holds its shard's part of
    # the gradient (the loss is divided by their number): the step's gradient
    # is their sum, which the optimizer all-reduces after us. One all-reduce
    # for the norms (every replica makes the same call: its peers wait for it).
    peers = replica_peers()
    present = [i for i, g in enumerate(grads) if g is not None]
    wholes: dict[int, Any] = {}
    if peers is not None and present:
        reduced = peers.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        wholes = dict(zip(present, reduced, strict=True))
    for i, (g, v) in enumerate(zip(grads, variables, strict=True)):
        # One read of each variable, ordered before its update: for its norm,
        # and for its update as a difference of weights where the update
        # cannot be read off the optimizer's ops (see _applied_updates; the
        # old values of those variables are then held through the update).
        before.append(tf.convert_to_tensor(v.value))
        w_sq.append(tf.nn.l2_loss(tf.cast(before[-1], tf.float32)))
        if g is None:
            g_sq.append(zero)
            if precision:
                counts.append(tf.zeros(4))
            continue
        whole = wholes.get(i, g)
        rows = summed_rows(whole) if isinstance(whole, tf.IndexedSlices) else whole
        g_sq.append(tf.nn.l2_loss(tf.cast(rows, tf.float32)))
        if precision:
            counts.append(precision_counts(rows))
        # The variable's update waits for its two norms: by then nothing but
        # the optimizer holds its gradient or its old weights, so the update
        # reuses their buffers in place, as in Keras's own step (otherwise
        # copies: measured +40 % peak memory on a 100 M-parameter model).
        # Per variable, not one barrier: updates still start as soon as
        # their own gradient is ready.
        with tf.control_dependencies([w_sq[-1], g_sq[-1], *counts[-1:]]):
            if isinstance(g, tf.IndexedSlices):
                g = tf.IndexedSlices(tf.identity(g.values), g.indices, g.dense_shape)
            else:
                g = tf.identity(g)
        gated.append((g, v))
    if not variables:
        return tf.zeros((ROWS_PRECISION if precision else ROWS_PLAIN, 0))
    # The loss scale these gradients carry, read before apply_gradients may
    # halve it (non-finite gradients) or double it (growth interval).
    scale_now = tf.identity(tf.cast(scale, tf.float32)) if scale is not None else None
    unscale = 1.0 / tf.square(scale_now) if scale_now is not None else None
    inside = tf.inside_function()
    first_op = len(tf.compat.v1.get_default_graph().get_operations()) if inside else 0
    if gated:
        apply_gradients(gated)
    applied = _applied_updates(first_op, variables) if inside else {}
    d_sq = []
    for i, (v, b) in enumerate(zip(variables, before, strict=True)):
        delta = applied.get(i)
        d_sq.append(tf.nn.l2_loss(tf.cast(delta if delta is not None else v.value - b, tf.float32)))
    g_vec = tf.stack(g_sq)
    if unscale is not None:
        # Report the gradient of the real loss, not of the scaled one.
        g_vec = g_vec * unscale
    squares = 2.0 * tf.stack([g_vec, tf.stack(w_sq), tf.stack(d_sq)])
    if not precision:
        return squares
    scale_row = tf.fill([len(variables)], scale_now if scale_now is not None else tf.constant(np.nan, tf.float32))
    return tf.concat([squares, tf.transpose(tf.stack(counts)), scale_row[None, :]], axis=0)


def precision_counts(g: Any) -> tf.Tensor:
    """[zeros, float16 subnormals, non-finite entries, entries] of a gradient (as
    computed: with a LossScaleOptimizer, scaled), one pass over its entries."""
    flat = tf.abs(tf.reshape(tf.cast(g, tf.float32), [-1]))
    zeros = tf.reduce_sum(tf.cast(tf.equal(flat, 0.0), tf.float32))
    tiny = tf.reduce_sum(tf.cast(tf.logical_and(flat > 0.0, flat < FLOAT16_MIN_NORMAL), tf.float32))
    bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(flat)), tf.float32))
    return tf.stack([zeros, tiny, bad, tf.cast(tf.size(flat), tf.float32)])


def precision_fields(rows: np.ndarray) -> dict[str, Any]:
    """StepResult's mixed-precision fields from measured_apply's [8, n] rows
    (nothing from the plain [3, n] ones)."""
    if rows.shape[0] < ROWS_PRECISION:
        return {}
    nonfinite = rows[5]
    scale = float(rows[7][0]) if rows.shape[1] and np.isfinite(rows[7][0]) else None
    return {
        "grad_zeros": rows[3], "grad_tiny": rows[4], "grad_nonfinite": nonfinite, "grad_size": rows[6],
        # A LossScaleOptimizer skips the whole update when any gradient is non-finite.
        "skipped": scale is not None and bool(np.any(nonfinite > 0)),
        "loss_scale": scale,
    }


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


class ProbeStep:
    """One compiled training step on `model` with `optimizer` that reports stats.

    `model` and `optimizer` are the probe's own (a clone, or the user's objects
    inside a snapshot/restore when the model cannot be cloned). With `strategy`
    (the user's MirroredStrategy, which `model` and `optimizer` were made under)
    each replica steps on its shard of the batch and the figures are the whole
    step's (engine/replicas.py).
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: LossFn,
        layers: list[Any],
        metas: list[LayerMeta],
        eager: bool = False,
        strategy: Any = None,
    ) -> None:
        self.model = model
        self.strategy = strategy
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.layers = layers
        self.metas = metas
        self.tvars = list(model.trainable_variables)
        owner = {}
        for i, layer in enumerate(layers):
            for v in own_variables(layer):
                owner[id(v)] = i
        # Variables owned by a layer we do not list (rare containers) count as -1.
        self.var_layer = np.array([owner.get(id(v), -1) for v in self.tvars], dtype=np.int64)
        sizes = [int(np.prod(v.shape)) for v in self.tvars]
        self.var_sizes = sizes
        self.taps = ActivationTaps(layers, [m.activation for m in metas])
        self.tapped: list[int] = []
        self.disconnected: list[int] = []  # trainable variables with no gradient (None)
        # Mixed precision: the zeros and subnormals of the gradients of the layers
        # computing in float16 are counted (gradient-underflow).
        self.half = np.array([half_precision(layer) for layer in layers], dtype=bool)
        self.precision = bool(self.half.any()) or loss_scale(optimizer) is not None
        self._fn: Any = step_function(self._step if strategy is None else self._replicated, eager)

    def _replicated(self, x: Any, y: Any, sw: Any) -> tuple[tf.Tensor, ...]:
        return whole_step(self.strategy, self.strategy.run(self._step, args=(x, y, sw)))

    def _step(self, x: Any, y: Any, sw: Any) -> tuple[tf.Tensor, ...]:
        with self.taps.recording():
            with tf.GradientTape() as tape:
                data_loss, reg_loss, total, scaled = forward_losses(
                    self.model, self.optimizer, self.loss_fn, x, y, sw
                )
        self.tapped, act_sums, act_counts = self.taps.stats()
        losses = tf.stack([total, data_loss, reg_loss])
        if not self.tvars:
            return losses, tf.zeros((3, 0)), act_sums, act_counts
        grads = tape.gradient(scaled, self.tvars)
        self.disconnected = [i for i, g in enumerate(grads) if g is None]
        # (read while tracing, after scale_loss: a LossScaleOptimizer built by
        # this step's apply_gradients starts from the scale the loss carried)
        squares = measured_apply(self.optimizer.apply_gradients, grads, self.tvars,
                                 loss_scale(self.optimizer), self.precision)
        return losses, squares, act_sums, act_counts

    def release(self) -> None:
        """Drop the compiled step (its graph: ~1 GB for a 1000-layer model); the
        step's bookkeeping (tapped, disconnected, var_layer) stays readable."""
        self._fn = None

    def run(self, x: Any, y: Any, sw: Any) -> StepResult:
        start = time.perf_counter()
        if self.strategy is not None:
            x, y, sw = (distribute(self.strategy, part) for part in (x, y, sw))
        losses, squares, act_sums, act_counts = self._fn(x, y, sw)
        losses_np = losses.numpy()
        squares_np = squares.numpy()
        sums = act_sums.numpy()
        counts = act_counts.numpy()
        seconds = time.perf_counter() - start
        full_act = activation_rows(len(self.layers), self.tapped, sums, counts, self.metas)
        return StepResult(
            loss=float(losses_np[0]),
            data_loss=float(losses_np[1]),
            reg_loss=float(losses_np[2]),
            seconds=seconds,
            grad_sq=squares_np[0],
            weight_sq=squares_np[1],
            update_sq=squares_np[2],
            act=full_act,
            **precision_fields(squares_np),
        )

    def layer_figures(self, result: StepResult) -> list[LayerFigures]:
        return layer_figures(result, len(self.layers), self.var_layer, self.tapped, self.half)


def activation_rows(
    n_layers: int, tapped: list[int], sums: np.ndarray, counts: np.ndarray, metas: list[LayerMeta]
) -> np.ndarray:
    """[n_layers, 4] activation figures (mean, mean of squares, saturated and alive
    fractions; NaN where not tapped) from the sums and counts of `ActivationTaps.stats`."""
    full_act = np.full((n_layers, 4), np.nan)
    for row, i in enumerate(tapped):
        elements, units = counts[row]
        s1, s2, saturated, alive = sums[row]
        per_saturation = elements / units if metas[i].activation == "softmax" else elements
        with np.errstate(invalid="ignore", divide="ignore"):
            full_act[i] = (s1 / elements, s2 / elements, saturated / per_saturation, alive / units)
    return full_act


def layer_figures(
    result: StepResult, n: int, var_layer: np.ndarray, tapped_layers: list[int],
    half: np.ndarray | None = None,
) -> list[LayerFigures]:
    """Per-layer figures of one step: the squares of each trainable variable
    (`var_layer`: its layer's index, -1 for none) summed over the layer's variables.

    A step a LossScaleOptimizer skipped (its scaled gradients overflowed float16)
    has no gradient norm where the gradient overflowed (the real loss's gradient
    is finite; only its scaled float16 copy is not) and no update ratio (no update).
    `half`: per layer, whether it computes in float16 (zero shares are
    given for those)."""
    per = np.zeros((3, n))
    known = var_layer >= 0
    for row, values in enumerate((result.grad_sq, result.weight_sq, result.update_sq)):
        np.add.at(per[row], var_layer[known], values[known])
    counts = np.zeros((4, n))
    with_counts = result.grad_zeros is not None and len(result.grad_zeros) == len(var_layer)
    if with_counts:
        for row, extra in enumerate((result.grad_zeros, result.grad_tiny, result.grad_nonfinite,
                                     result.grad_size)):
            np.add.at(counts[row], var_layer[known], np.asarray(extra)[known])
    has_trainable = np.zeros(n, dtype=bool)
    has_trainable[var_layer[known]] = True
    tapped = set(tapped_layers)
    figures = []
    for i in range(n):
        mean, mean_sq, saturated, alive = result.act[i]
        grad: float | None
        weight: float | None
        update: float | None
        act_mean: float | None
        std: float | None
        if has_trainable[i]:
            grad = math.sqrt(per[0, i])
            weight = math.sqrt(per[1, i])
            # (NaN: the step did not update this layer, e.g. an own train_step
            # that accumulates gradients and applies them every few steps.)
            update = math.sqrt(per[2, i]) / weight if weight and not math.isnan(per[2, i]) else None
        else:
            grad = weight = update = None
        if result.skipped:
            update = None
            if counts[2, i] > 0 or (grad is not None and not math.isfinite(grad)):
                grad = None
        zero_frac = tiny_frac = None
        if with_counts and has_trainable[i] and counts[3, i] > 0 and (half is None or half[i]):
            zero_frac = float(counts[0, i] / counts[3, i])
            tiny_frac = float(counts[1, i] / counts[3, i])
        if i not in tapped:
            act_mean = std = None
        elif math.isfinite(mean) and math.isfinite(mean_sq):
            act_mean, std = float(mean), math.sqrt(max(mean_sq - mean * mean, 0.0))
        else:
            act_mean = std = float("nan")  # non-finite activations: shown as nan
        figures.append(
            LayerFigures(
                grad_norm=grad,
                weight_norm=weight,
                update_ratio=update,
                act_mean=act_mean,
                act_std=std,
                act_saturated_frac=_none_if_nan(saturated),
                act_dead_frac=None if math.isnan(alive) else 1.0 - float(alive),
                grad_zero_frac=zero_frac,
                grad_tiny_frac=tiny_frac,
            )
        )
    return figures
