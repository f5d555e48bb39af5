"""Pieces every compiled step of ours shares (probe step, experiments)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from keras.src import tree


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
    Call inside the GradientTape."""
    y_pred = model(x, training=True)
    data_loss = tf.cast(loss_fn(y, y_pred, sw), tf.float32)
    extra = [tf.cast(tf.reduce_sum(t), tf.float32) for t in model.losses]
    reg_loss = tf.add_n(extra) if extra else tf.constant(0.0)
    total = data_loss + reg_loss
    scaled = optimizer.scale_loss(total) if hasattr(optimizer, "scale_loss") else total
    return data_loss, reg_loss, total, scaled
