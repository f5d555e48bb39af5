"""Activation taps: capture each layer's output while a step is traced.

Works for Sequential, Functional, subclassed and nested models alike, because
every layer call goes through `Layer.__call__`; building a second
`keras.Model(inputs, [l.output ...])` would not (subclassed models have no
`inputs`). The patch is only in place while Python runs, i.e. while
`tf.function` traces, so it costs nothing per compiled step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tensorflow as tf
from keras.src import tree

from gradscope.engine.layer_calls import around_layer_calls
from gradscope.engine.replicas import replica_peers

# Flat-tail thresholds (docs/checks.md): a sigmoid output below 0.01 or above
# 0.99 has a derivative under 4 % of its peak; tanh beyond +-0.98 likewise.
SIGMOID_TAIL = 0.49  # |y - 0.5| > 0.49
TANH_TAIL = 0.98  # |y| > 0.98
SOFTMAX_CONFIDENT = 0.99  # max probability per sample
MOMENT_SAMPLES = 16  # samples used for mean/std/saturation of large outputs
LARGE = 1 << 16  # elements in MOMENT_SAMPLES samples above which we subsample



class ActivationTaps:
    def __init__(self, layers: list[Any], kinds: list[str | None]) -> None:
        # Layers that only reshape pass their input's values through: their
        # statistics would repeat the previous layer's at a cost per step.
        self._index = {
            id(layer): i
            for i, layer in enumerate(layers)
            if type(layer).__name__ not in _RESHAPING
        }
        self.kinds = kinds
        # Per thread: a strategy with several replicas (MirroredStrategy) traces
        # the step once per replica, each in a thread of its own, taking turns.
        self._local = threading.local()

    @property
    def outputs(self) -> dict[int, tf.Tensor]:
        """The tapped outputs of the trace this thread runs."""
        outputs = getattr(self._local, "outputs", None)
        if outputs is None:
            outputs = self._local.outputs = {}
        return outputs

    def reset(self) -> None:
        """Forget this thread's tapped outputs (a new trace begins)."""
        self._local.outputs = {}

    @contextmanager
    def recording(self) -> Iterator[None]:
        taps = self
        taps.reset()

        def tapped_call(original: Any, layer: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(layer, *args, **kwargs)
            i = taps._index.get(id(layer))
            outputs = taps.outputs
            if i is not None and i not in outputs:
                first = _first_float_tensor(out)
                if first is not None:
                    outputs[i] = first
            return out

        with around_layer_calls(tapped_call):
            yield

    def stats(self) -> tuple[list[int], tf.Tensor, tf.Tensor]:
        """Statistics of the tapped outputs, as few ops as possible (each op costs
        a few microseconds per step, which adds up over hundreds of layers).

        Returns (layer indices, sums [n, 4], counts [n, 2]): sums are sum(y),
        sum(y^2), saturated count, alive-unit count (NaN = does not apply);
        counts are elements and units.
        """
        order = sorted(self.outputs)
        if not order:
            return [], tf.zeros((0, 4), tf.float32), tf.zeros((0, 2), tf.float32)
        nan = tf.constant(float("nan"), tf.float32)
        s1, s2, sat, counts = [], [], [], []
        alive: list[tf.Tensor] = []
        units_alive: list[tuple[int, tf.Tensor]] = []  # (row, 1.0 per unit alive)
        for i in order:
            full = tf.cast(self.outputs[i], tf.float32)
            kind = self.kinds[i]
            # Big outputs (conv maps) are summarised on their first MOMENT_SAMPLES
            # samples: moments and saturation are fractions, well estimated there;
            # a conv unit "dead" over 16 samples x every spatial position is dead
            # (and the dead-relu check asks for it in every probe step).
            t = full[:MOMENT_SAMPLES] if _is_large(full) else full
            s1.append(tf.reduce_sum(t))
            s2.append(2.0 * tf.nn.l2_loss(t))  # one fused op for sum(t^2)
            if kind == "sigmoid":
                sat.append(_count(tf.abs(t - 0.5) > SIGMOID_TAIL))
            elif kind == "tanh":
                sat.append(_count(tf.abs(t) > TANH_TAIL))
            elif kind == "softmax":
                sat.append(_count(tf.reduce_max(t, axis=-1) > SOFTMAX_CONFIDENT))
            else:
                sat.append(nan)
            rank = t.shape.rank
            if kind == "relu" and rank is not None and rank >= 2:
                # A unit (last axis) is alive if positive for at least one sample;
                # ReLU outputs are >= 0, so sign(max) is 1 for alive units, 0 for dead.
                unit_max = tf.reduce_max(t, axis=list(range(rank - 1)))
                units_alive.append((len(alive), tf.sign(unit_max)))
            alive.append(nan)
            units = t.shape[-1] if rank else 1
            counts.append(
                tf.stack(
                    [
                        _element_count(t),
                        tf.constant(float(units if units is not None else "nan")),
                    ]
                )
            )
        for row, count in _alive_counts(units_alive):
            alive[row] = count
        sums = tf.stack([tf.stack(s1), tf.stack(s2), tf.stack(sat), tf.stack(alive)], axis=1)
        return order, sums, tf.stack(counts)


_RESHAPING = {"Flatten", "Reshape", "Permute", "InputLayer"}


def _alive_counts(units_alive: list[tuple[int, tf.Tensor]]) -> list[tuple[int, tf.Tensor]]:
    """Per layer, the units alive in the batch. On one of several replicas (a
    MirroredStrategy's step) a unit is alive if it is on any replica's shard:
    the indicators are all-reduced (one call; every replica makes it), so each
    replica counts the whole batch's alive units."""
    peers = replica_peers()
    indicators = [t for _, t in units_alive]
    if peers is not None and indicators:
        indicators = peers.all_reduce(tf.distribute.ReduceOp.SUM, indicators)
    return [(row, tf.reduce_sum(tf.sign(t))) for (row, _), t in zip(units_alive, indicators, strict=True)]


def _element_count(t: tf.Tensor) -> tf.Tensor:
    """A constant when the shape is static (one op fewer per layer and step)."""
    if t.shape.is_fully_defined():
        return tf.constant(float(t.shape.num_elements()), tf.float32)
    return tf.cast(tf.size(t), tf.float32)


def _is_large(t: tf.Tensor) -> bool:
    """More than LARGE elements per MOMENT_SAMPLES samples (static shape only)."""
    dims = t.shape.as_list() if t.shape.rank else []
    if len(dims) < 2 or any(d is None for d in dims[1:]):
        return False
    per_sample = 1
    for d in dims[1:]:
        per_sample *= int(d)
    return per_sample * MOMENT_SAMPLES > LARGE


def _count(mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(mask, tf.float32))


def _first_float_tensor(out: Any) -> tf.Tensor | None:
    for t in tree.flatten(out):
        if isinstance(t, tf.Tensor) and t.dtype.is_floating:
            return t
    return None
