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

from gradscope.engine.layers import LayerMeta, own_variables
from gradscope.engine.taps import MOMENT_SAMPLES, ActivationTaps
from gradscope.engine.training import forward_losses
from gradscope.events import Histogram, LayerHistogram, LayerHistograms

BINS = 24
SAMPLE = 1 << 15  # elements per tensor summarised: plenty for a 24-bin shape
KINDS = ("weights", "grads", "acts")
# Columns of a packed row: lo, hi, non-finite count, summarised count, then the bins.
_HEAD = 4


class HistogramProbe:
    """Compiled histograms of every reported layer, from one batch."""

    def __init__(
        self, model: Any, optimizer: Any, loss_fn: Any, layers: list[Any], metas: list[LayerMeta]
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
        self._scale = getattr(optimizer, "dynamic_scale", None)  # LossScaleOptimizer
        self._fn = tf.function(self._histograms, reduce_retracing=True)

    def _histograms(self, x: Any, y: Any, sw: Any) -> tf.Tensor:
        with self.taps.recording():
            with tf.GradientTape() as tape:
                _, _, _, scaled = forward_losses(
                    self.model, self.optimizer, self.loss_fn, x, y, sw
                )
        outputs = dict(self.taps.outputs)
        grads = tape.gradient(scaled, self.tvars) if self.tvars else []
        unscale = (
            1.0 / tf.cast(self._scale, tf.float32) if self._scale is not None else None
        )
        empty = tf.fill([BINS + _HEAD], float("nan"))
        rows = []
        for i, group in enumerate(self.var_groups):
            weights = [self.tvars[j].value for j in group]
            layer_grads = [_dense(grads[j]) for j in group if grads[j] is not None]
            if unscale is not None:
                layer_grads = [tf.cast(g, tf.float32) * unscale for g in layer_grads]
            rows.append(_histogram(weights) if weights else empty)
            rows.append(_histogram(layer_grads) if layer_grads else empty)
            act = outputs.get(i)
            if act is not None and act.shape.rank:
                rows.append(_histogram([act[:MOMENT_SAMPLES]]))
            else:
                rows.append(empty)
        if not rows:
            return tf.zeros((0, BINS + _HEAD))
        return tf.stack(rows)

    def run(self, phase: str, step: int, x: Any, y: Any, sw: Any) -> LayerHistograms:
        packed = self._fn(x, y, sw).numpy()
        layers = []
        for i, meta in enumerate(self.metas):
            weights, grads, acts = (_unpack(packed[3 * i + k]) for k in range(len(KINDS)))
            layers.append(LayerHistogram(meta.name, weights, grads, acts))
        return LayerHistograms(phase, step, tuple(layers))


def _dense(g: Any) -> tf.Tensor:
    # An embedding's gradient: the rows it touched are the ones that tell.
    return g.values if isinstance(g, tf.IndexedSlices) else g


def _histogram(tensors: list[Any]) -> tf.Tensor:
    """One packed row for the values of `tensors` together (an even subsample if large)."""
    parts = []
    for t in tensors:
        flat = tf.reshape(tf.cast(t, tf.float32), [-1])
        size = flat.shape.num_elements()
        share = max(1, SAMPLE // max(1, len(tensors)))
        if size is not None:
            if size > share:
                flat = flat[:: -(-size // share)]
        else:
            stride = tf.maximum(1, tf.size(flat) // share + 1)
            flat = tf.strided_slice(flat, [0], [tf.size(flat)], [stride])
        parts.append(flat)
    values = tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]
    finite_mask = tf.math.is_finite(values)
    finite = tf.boolean_mask(values, finite_mask)
    total = tf.cast(tf.size(values), tf.float32)
    count = tf.cast(tf.size(finite), tf.float32)
    has = count > 0
    lo = tf.where(has, tf.reduce_min(finite), 0.0)
    hi = tf.where(has, tf.reduce_max(finite), 0.0)
    # A constant tensor (zero biases) gets a unit-wide range so the bins exist.
    top = tf.where(hi > lo, hi, lo + 1.0)
    bins = tf.cast(tf.histogram_fixed_width(finite, tf.stack([lo, top]), nbins=BINS), tf.float32)
    return tf.concat([tf.stack([lo, hi, total - count, total]), bins], axis=0)


def _unpack(row: np.ndarray) -> Histogram | None:
    if np.isnan(row[0]):
        return None
    return Histogram(
        lo=float(row[0]),
        hi=float(row[1]),
        counts=tuple(int(c) for c in row[_HEAD:]),
        nonfinite=int(row[2]),
        total=int(row[3]),
    )
