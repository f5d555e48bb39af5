"""Histograms of each layer's weights, gradients and activations, for the drill-down.

One compiled forward/backward pass (no optimizer update) returns every
histogram packed into one tensor. It runs twice per probe (before the first
step and after the last), so it costs about two training steps in all, never
a cost per step. Large tensors are summarised on an evenly strided subsample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from gradscope.engine.compiling import step_function
from gradscope.engine.layers import LayerMeta, own_variables
from gradscope.engine.probe import loss_scale, summed_rows
from gradscope.engine.taps import MOMENT_SAMPLES, ActivationTaps
from gradscope.engine.training import forward_losses
from gradscope.events import Histogram, LayerHistogram, LayerHistograms

BINS = 24
SAMPLE = 4096  # values per tensor summarised: plenty for a 24-bin shape
KINDS = ("weights", "grads", "acts")
# Columns of a packed row: lo, hi, non-finite count, summarised count, then the bins.
_HEAD = 4


class HistogramProbe:
    """Compiled histograms of every reported layer, from one batch."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        layers: list[Any],
        metas: list[LayerMeta],
        eager: bool = False,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.metas = metas
        self.tvars = list(model.trainable_variables)
        index = {id(v): i for i, v in enumerate(self.tvars)}
        # Per layer, its largest trainable variable (the kernel, the embedding
        # table): a bias's zeros would only add a spike at 0 to the kernel's shape.
        self.var_groups = []
        for layer in layers:
            owned = [v for v in own_variables(layer) if id(v) in index]
            biggest = max(owned, key=lambda v: int(np.prod(v.shape)), default=None)
            self.var_groups.append([] if biggest is None else [index[id(biggest)]])
        self.taps = ActivationTaps(layers, [m.activation for m in metas])
        self.slots: list[tuple[int, str]] = []  # (layer, kind) of each packed row
        self._fn = step_function(self._histograms, eager)

    def _histograms(self, x: Any, y: Any, sw: Any) -> tf.Tensor:
        # The scale the loss carries (a LossScaleOptimizer's): the gradients
        # are shown unscaled, in float32.
        scale = loss_scale(self.optimizer)
        with self.taps.recording():
            with tf.GradientTape(persistent=scale is not None) as tape:
                _, _, total, scaled = forward_losses(
                    self.model, self.optimizer, self.loss_fn, x, y, sw
                )
        outputs = dict(self.taps.outputs)
        grads = tape.gradient(scaled, self.tvars) if self.tvars else []
        unscale = 1.0 / tf.cast(scale, tf.float32) if scale is not None else None
        # Where the scaled float16 gradient overflowed (a step the optimizer
        # would skip), the gradient of the unscaled loss shows the shape instead
        # of Inf (its float32 value is finite): no false NaN/Inf in the drill-down.
        plain = tape.gradient(total, self.tvars) if scale is not None and self.tvars else []
        # Every tensor becomes one fixed-length row, so all histograms come out of
        # a handful of vectorised ops: per-tensor ops would make tracing a
        # 1000-layer model take as long as tracing its probe step.
        self.slots = []
        rows, sizes = [], []
        for i, group in enumerate(self.var_groups):
            act = outputs.get(i)
            found = {
                "weights": self.tvars[group[0]].value if group else None,
                "grads": _dense(grads[group[0]]) if group and grads[group[0]] is not None else None,
                "acts": act[:MOMENT_SAMPLES] if act is not None and act.shape.rank else None,
            }
            if found["grads"] is not None and unscale is not None:
                unscaled = tf.cast(found["grads"], tf.float32) * unscale
                other = plain[group[0]]
                if other is not None:
                    other = tf.cast(_dense(other), tf.float32)
                    if other.shape.is_compatible_with(unscaled.shape):
                        unscaled = tf.cond(tf.reduce_all(tf.math.is_finite(unscaled)),
                                           lambda u=unscaled: u, lambda o=other: o)
                found["grads"] = unscaled
            for kind in KINDS:
                tensor = found[kind]
                if tensor is None:
                    continue
                row, size = _fixed_row(tensor)
                rows.append(row)
                sizes.append(size)
                self.slots.append((i, kind))
        if not rows:
            return tf.zeros((0, BINS + _HEAD))
        return _packed_histograms(tf.stack(rows), tf.stack(sizes))

    def run(self, phase: str, step: int, x: Any, y: Any, sw: Any) -> LayerHistograms:
        packed = self._fn(x, y, sw).numpy()
        found: dict[tuple[int, str], Histogram] = {
            slot: _unpack(packed[r]) for r, slot in enumerate(self.slots)
        }
        layers = tuple(
            LayerHistogram(meta.name, *(found.get((i, kind)) for kind in KINDS))
            for i, meta in enumerate(self.metas)
        )
        return LayerHistograms(phase, step, layers)


def _dense(g: Any) -> tf.Tensor:
    # An embedding's gradient: the rows it touched (each token's slices summed)
    # are the ones that tell; the untouched rows would only pile up at 0.
    return summed_rows(g) if isinstance(g, tf.IndexedSlices) else g


def _fixed_row(t: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """`t`'s values as a row of SAMPLE floats (an even subsample if larger, zero
    padded if smaller) and how many of them are real."""
    flat = tf.reshape(tf.cast(t, tf.float32), [-1])
    size = flat.shape.num_elements()
    if size is not None:
        if size > SAMPLE:
            flat = flat[:: -(-size // SAMPLE)]
            size = int(flat.shape.num_elements() or 0)
        if size < SAMPLE:
            flat = tf.pad(flat, [[0, SAMPLE - size]])
        return flat, tf.constant(float(size))
    total = tf.size(flat)
    flat = tf.strided_slice(flat, [0], [total], [tf.maximum(1, (total + SAMPLE - 1) // SAMPLE)])
    real = tf.size(flat)
    flat = tf.pad(flat, [[0, SAMPLE - real]])
    flat.set_shape([SAMPLE])
    return flat, tf.cast(real, tf.float32)


def _packed_histograms(values: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
    """[rows, SAMPLE] values, [rows] real counts -> [rows, _HEAD + BINS] packed rows."""
    n_rows = tf.shape(values)[0]
    real = tf.range(SAMPLE, dtype=tf.float32)[None, :] < sizes[:, None]
    finite = tf.logical_and(real, tf.math.is_finite(values))
    has = tf.reduce_any(finite, axis=1)
    lo = tf.where(has, tf.reduce_min(tf.where(finite, values, np.inf), axis=1), 0.0)
    hi = tf.where(has, tf.reduce_max(tf.where(finite, values, -np.inf), axis=1), 0.0)
    # A constant tensor (zero biases) gets a unit-wide range so the bins exist.
    width = tf.where(hi > lo, hi - lo, 1.0)
    position = (tf.where(finite, values, lo[:, None]) - lo[:, None]) / width[:, None]
    bins = tf.clip_by_value(tf.cast(tf.floor(position * BINS), tf.int32), 0, BINS - 1)
    index = tf.boolean_mask(bins + BINS * tf.range(n_rows)[:, None], finite)
    counts = tf.math.bincount(index, minlength=n_rows * BINS, maxlength=n_rows * BINS,
                              dtype=tf.float32)
    nonfinite = sizes - tf.reduce_sum(tf.cast(finite, tf.float32), axis=1)
    head = tf.stack([lo, hi, nonfinite, sizes], axis=1)
    return tf.concat([head, tf.reshape(counts, [n_rows, BINS])], axis=1)


def _unpack(row: np.ndarray) -> Histogram:
    return Histogram(
        lo=float(row[0]),
        hi=float(row[1]),
        counts=tuple(int(c) for c in row[_HEAD:]),
        nonfinite=int(row[2]),
        total=int(row[3]),
    )
