"""Pieces every compiled step of ours shares (probe step, experiments)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras.src import tree

from gradscope.engine.compiling import step_function
from gradscope.engine.replicas import replica_part


def to_tensors(struct: Any) -> Any:
    """A (nested) batch element as tensors; None stays None."""
    if struct is None:
        return None
    return tree.map_structure(lambda a: None if a is None else tf.convert_to_tensor(a), struct)


def forward_losses(
    model: Any, optimizer: Any, loss_fn: Any, x: Any, y: Any, sw: Any
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(data loss, regularisation loss, total, scaled total) of a training-mode
    forward pass, as Keras's train_step computes them: the user's compiled loss,
    plus the model's added losses, scaled by a LossScaleOptimizer if there is one.
    On one of several replicas, the replica's part of the step's loss (Keras
    divides the mean loss by their number; engine/replicas.py).
    Call inside the GradientTape."""
    y_pred = model(x, training=True)
    data_loss = tf.cast(loss_fn(y, y_pred, sw), tf.float32)
    extra = [tf.cast(tf.reduce_sum(t), tf.float32) for t in model.losses]
    reg_loss = replica_part(tf.add_n(extra)) if extra else tf.constant(0.0)
    total = data_loss + reg_loss
    scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
    return data_loss, reg_loss, total, scaled


def batch_norms(model: Any) -> list[Any]:
    """The BatchNormalization layers that use batch statistics when training
    (a frozen one always uses its moving statistics, in training too)."""
    from keras import layers

    found = []
    stack = [model]
    seen: set[int] = set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, layers.BatchNormalization) and layer.trainable:
            found.append(layer)
        stack.extend(getattr(layer, "_layers", None) or [])
    return found


class BatchNormCalibration:
    """Sets BatchNormalization moving statistics to those of a batch.

    Training uses batch statistics; inference uses moving ones, which a fresh
    model has at mean 0 / variance 1 and which follow the weights only slowly
    (momentum 0.99). Judging a model (its loss at init, its predictions, an
    experiment's result) in inference mode would then judge statistics the
    user's training never sees: unscaled inputs behind a BatchNormalization
    would look like a loss of 100. Every inference of ours on the probe target
    is preceded by this calibration on the same inputs ("precise BN"), so it
    shows what a training step sees, without dropout's noise.
    """

    def __init__(self, model: Any, eager: bool = False) -> None:
        self.model = model
        self.layers = batch_norms(model)
        self._fn = step_function(self._forward, eager)

    def _forward(self, x: Any) -> None:
        self.model(x, training=True)

    def __call__(self, x: Any, compiled: bool = True) -> None:
        if not self.layers:
            return
        saved = [layer.momentum for layer in self.layers]
        # Momentum 0: moving = batch statistics. Set around every call, so that
        # a retrace of the compiled forward captures 0 as well.
        for layer in self.layers:
            layer.momentum = 0.0
        try:
            if compiled:
                self._fn(x)
            else:
                self.model(x, training=True)
        finally:
            for layer, momentum in zip(self.layers, saved, strict=True):
                layer.momentum = momentum
