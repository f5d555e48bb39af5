"""What a training step of the model costs, estimated from its shape alone.

The experiments are sized in steps, not seconds, so that a script gives the
same verdicts on a busy machine as on an idle one (and on a GPU as on a CPU).
Their step counts still have to shrink for big models, or a convolutional net
would take minutes: they are sized by a *nominal* step time computed from the
layers, kernels and input shapes, never by a measured one.

The constants were fitted on a 2-core x86 CPU (scripts/bench_step_cost.py
prints the nominal and the measured time side by side), so that the nominal
time is within about 1.5x of what a compiled step costs there: the experiments
then take about as long as the 6-second wall-clock budget used to allow, and
exactly as many steps everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from keras.src import tree

from gradscope.engine.layer_calls import around_layer_calls

# Fixed cost of one compiled step call (dispatch, reading the loss back).
STEP_OVERHEAD_S = 0.3e-3
# Per layer with weights: its kernels' launch and the optimizer's update ops.
LAYER_OVERHEAD_S = 0.12e-3
# Run eagerly (engine/compiling.EAGER_LAYERS), each layer costs Python dispatch.
EAGER_LAYER_OVERHEAD_S = 2.3e-3
# Multiply-accumulates per second of a training step (forward + backward is
# counted as 3x the forward MACs): small dense matmuls run far below the
# machine's peak, convolutions (oneDNN, cuDNN) near it.
DENSE_MACS_PER_S = 15e9
CONV_MACS_PER_S = 60e9
# A recurrent layer steps through time one kernel launch at a time.
RNN_TIMESTEP_S = 0.1e-3


@dataclass
class StepCost:
    """Per-sample work and per-step fixed costs of the layers seen in one call."""

    dense_macs: float = 0.0  # multiply-accumulates per sample, forward pass
    conv_macs: float = 0.0
    weighted_layers: int = 0
    rnn_timesteps: int = 0
    seen: set[int] = field(default_factory=set)

    def step_seconds(self, batch: int, eager: bool = False) -> float:
        """Nominal seconds of one training step on `batch` samples."""
        per_layer = EAGER_LAYER_OVERHEAD_S if eager else LAYER_OVERHEAD_S
        work = 3 * batch * (self.dense_macs / DENSE_MACS_PER_S + self.conv_macs / CONV_MACS_PER_S)
        return (
            STEP_OVERHEAD_S
            + per_layer * self.weighted_layers
            + RNN_TIMESTEP_S * self.rnn_timesteps
            + work
        )

    def _add(self, layer: Any, inputs: Any) -> None:
        kernels = [v for v in getattr(layer, "weights", ()) if len(v.shape) >= 2]
        if not kernels or id(layer) in self.seen:
            return
        self.seen.add(id(layer))
        self.weighted_layers += 1
        if type(layer).__name__ == "Embedding":
            return  # a lookup: no multiply-accumulates
        leaves = [t for t in tree.flatten(inputs) if hasattr(t, "shape")]
        shape = tuple(int(d or 1) for d in leaves[0].shape) if leaves else ()
        # Positions a kernel is applied at: every spatial/time position of the input.
        positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        macs = float(sum(int(np.prod(v.shape)) for v in kernels)) * positions
        if hasattr(layer, "cell"):  # RNN, LSTM, GRU: one launch per time step
            self.seen.add(id(layer.cell))
            self.rnn_timesteps += shape[1] if len(shape) > 2 else 1
            self.dense_macs += macs
        elif "Conv" in type(layer).__name__:
            self.conv_macs += macs
        else:
            self.dense_macs += macs


@contextmanager
def measuring_cost(cost: StepCost) -> Iterator[None]:
    """During one eager call: add each leaf layer with kernels to `cost`."""
    def counting_call(original: Any, layer: Any, *args: Any, **kwargs: Any) -> Any:
        # Leaves only (a nested model's layers count themselves), but a
        # recurrent layer counts as one: its cell runs inside it.
        if args and (hasattr(layer, "cell") or not getattr(layer, "_layers", None)):
            try:
                cost._add(layer, args[0])
            except Exception:  # noqa: BLE001 - an estimate: an odd layer counts as overhead only
                pass
        return original(layer, *args, **kwargs)

    with around_layer_calls(counting_call):
        yield
