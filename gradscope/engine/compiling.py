"""Compiled or eager: how the probe target's steps run.

Every step of ours (the probe step, the histograms, the experiments' train and
predict, the BatchNormalization calibration) is one `tf.function` per call,
except for very deep models. Tracing costs about 60 ms and 1 MB of graph per
layer, while it runs once: a 1000-layer model's probe step is a ~100,000-op
graph that takes a minute and ~1.2 GB to build, against ~30 MiB for the tensors
of a training step. Run eagerly, the same step costs ~2 ms per layer and no
graph. Tracing pays for itself after ~25 steps whatever the depth, but below
EAGER_LAYERS its cost stays in seconds and hundreds of MB, and compiled steps
are what the probe's speed figures are measured on; above it the user would
wait a minute, and hold a gigabyte, before the first figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

# Layers (probe_layers, nested models flattened) from which every step of ours
# runs eagerly (docs/architecture.md, Scale).
EAGER_LAYERS = 400


def runs_eagerly(layers: list[Any]) -> bool:
    """Whether the steps on a model with these layers should run eagerly."""
    return len(layers) >= EAGER_LAYERS


def step_function(fn: Callable[..., Any], eager: bool) -> Callable[..., Any]:
    """`fn` as it should run: traced once (batch sizes may vary), or as it is."""
    return fn if eager else tf.function(fn, reduce_retracing=True)
