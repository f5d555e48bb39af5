"""The probe inside the user's MirroredStrategy: each replica steps on its shard
of the global batch, on a clone whose variables are mirrored on the strategy's
devices, so that a device holds what one replica's step holds (not the whole
global batch's activations), and the figures are those of the whole step.

How the figures become the whole batch's (docs/architecture.md, "Several
devices and workers"):
- each replica's loss is its shard's divided by the number of replicas, as in
  Keras's own step (its mean losses divide so; the model's added losses are
  divided here), so the replicas' gradients add up to the step's: the global
  batch's mean gradient when the shards are even (they differ by a row at most);
- the measured gradient is that sum (`probe.measured_apply` all-reduces it),
  and the optimizer applies it as in the user's distributed step;
- activation sums and element counts add up over the replicas; a ReLU unit is
  alive if it is alive on any shard (`taps.ActivationTaps.stats` all-reduces
  the units' indicators).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf
from keras.src import tree
from tensorflow.python.framework import ops


def replica_peers() -> Any:
    """The replica context when the step runs on several replicas (a
    MirroredStrategy's step on N devices), else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context


def local_strategy(model: Any) -> Any:
    """The strategy the model was built under when it has several replicas in
    this process (MirroredStrategy on N devices), else None.

    Not a multi-worker strategy: its collectives would wait for the other
    workers, which do not run our probe (docs/architecture.md)."""
    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None or getattr(strategy, "num_replicas_in_sync", 1) <= 1 or multi_worker(strategy):
        return None
    return strategy


def multi_worker(strategy: Any) -> bool:
    """A strategy whose collectives span several processes (workers)."""
    extended = getattr(strategy, "extended", None)
    return getattr(extended, "_num_workers", 1) > 1 or "MultiWorker" in type(strategy).__name__


def rows_of(struct: Any) -> int | None:
    """The batch's rows (its first tensor's leading dimension)."""
    for leaf in tree.flatten(struct):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape):
            return int(shape[0])
    return None


def shard_bounds(rows: int, replicas: int) -> list[int]:
    """Where each replica's shard starts (and the last ends): shards differ by at
    most one row, the first ones larger, as `np.array_split` cuts."""
    base, extra = divmod(rows, replicas)
    bounds = [0]
    for i in range(replicas):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return bounds


def distribute(strategy: Any, struct: Any) -> Any:
    """`struct` (a batch's x, y or sample weights; None stays None) cut into one
    shard per replica, each made on its replica's device."""
    if struct is None:
        return None
    rows = rows_of(struct)
    if rows is None:
        raise ValueError("a batch without a leading dimension cannot be sharded")
    bounds = shard_bounds(rows, strategy.num_replicas_in_sync)

    def shard(context: Any) -> Any:
        i = context.replica_id_in_sync_group
        return tree.map_structure(
            lambda a: None if a is None else tf.convert_to_tensor(a[bounds[i]:bounds[i + 1]]), struct
        )

    return strategy.experimental_distribute_values_from_function(shard)


def replica_part(loss: tf.Tensor) -> tf.Tensor:
    """A loss added by the model (a regulariser), as one of several replicas adds
    it to its step's loss: divided by their number, as Keras does (its compiled
    loss's mean is divided so already), so that the replicas' gradients add up
    to the step's."""
    peers = replica_peers()
    return loss if peers is None else loss / float(peers.num_replicas_in_sync)


def whole_step(strategy: Any, outputs: tuple[Any, ...]) -> tuple[tf.Tensor, ...]:
    """The probe step's outputs (losses, squares, activation sums, counts) from its
    replicas' (see ProbeStep._step): losses (each replica's part) and activation sums
    and element counts add up; the squares (of the all-reduced gradient, of the
    mirrored weights and updates), the alive units (all-reduced) and the units
    are the same on every replica."""
    losses, squares, sums, counts = outputs
    first = strategy.experimental_local_results
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
    summed = strategy.reduce(tf.distribute.ReduceOp.SUM, sums, axis=None)
    sums_whole = tf.concat([summed[:, :3], first(sums)[0][:, 3:]], axis=1)
    elements = strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
    counts_whole = tf.concat([elements[:, :1], first(counts)[0][:, 1:]], axis=1)
    return total, first(squares)[0], sums_whole, counts_whole


def smallest_batch(batches: list[Any]) -> int:
    """The fewest rows among the batches' inputs (0 when none can be read)."""
    found = [rows_of(batch[0]) for batch in batches]
    return int(np.min([r for r in found if r is not None] or [0]))


@contextmanager
def outside_strategy() -> Iterator[None]:
    """Run the block as outside any `strategy.scope()` of this thread.

    A script that calls fit() inside `with strategy.scope():` has the strategy
    current while gradscope diagnoses: the probe target's clone, the
    experiments' steps and every variable of ours would be the strategy's
    (mirrored, all-reducing), and steps of ours made outside `strategy.run`
    fail on them. TensorFlow keeps the current strategy and the variable
    creators that its scope entered in per-thread stacks of the default graph
    (scopes cannot be nested, nor left early): the block runs with both
    empty, and gets them back as they were."""
    graph = ops.get_default_graph()
    strategies = graph._distribution_strategy_stack
    creators = graph._variable_creator_stack
    if not strategies:
        yield
        return
    graph._distribution_strategy_stack = []
    graph._variable_creator_stack = []
    try:
        yield
    finally:
        graph._distribution_strategy_stack = strategies
        graph._variable_creator_stack = creators
