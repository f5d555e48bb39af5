"""Per-layer figures from the user's own training, after the probe.

A Keras callback added to the user's fit that, at each epoch end, reads the
weights (never writes them) and reports per-layer weight norm and the update
ratio over the epoch (||W_end - W_start|| / ||W_start||), plus the epoch's loss.
Only epoch ends: a per-batch hook would make Keras synchronise every batch.
Callbacks never see gradients, so `grad_norm` and activation cells stay empty.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import keras

from gradscope.engine.layers import LayerMeta, own_variables
from gradscope.engine.snapshot import VariableSnapshot
from gradscope.events import Event, LayerRow, LayerStats, StepStats
from gradscope.internal import lost


class TrainMonitor(keras.callbacks.Callback):
    def __init__(self, layers: list[Any], metas: list[LayerMeta], emit: Callable[[Event], None]) -> None:
        super().__init__()
        self._layers = layers
        self._metas = metas
        self._emit = emit
        self._failed = False
        # Each layer's trainable variables, as indices into one flat snapshot: the
        # epoch's starting weights, on disk when large (a 100 M-parameter model's
        # 400 MB would otherwise sit in memory through the user's whole fit).
        self._owned: list[list[int]] = []
        self._variables: list[Any] = []
        for layer in layers:
            mine = [v for v in own_variables(layer) if v.trainable]
            self._owned.append(list(range(len(self._variables), len(self._variables) + len(mine))))
            self._variables += mine
        self._previous = VariableSnapshot(self._variables)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        try:
            norms = [self._previous.square_norms(i) for i in range(len(self._variables))]
            self._previous.close()
            self._previous = VariableSnapshot(self._variables)
            rows = []
            for meta, owned in zip(self._metas, self._owned, strict=True):
                weight = update = None
                if owned:
                    w2 = sum(norms[i][0] for i in owned)
                    d2 = sum(norms[i][2] for i in owned)
                    weight = math.sqrt(sum(norms[i][1] for i in owned))
                    update = math.sqrt(d2) / math.sqrt(w2) if w2 > 0 else None
                rows.append(
                    LayerRow(
                        layer=meta.name, layer_type=meta.layer_type, param_count=meta.param_count,
                        trainable=meta.trainable, weight_norm=weight, update_ratio=update,
                    )
                )
            logs = logs or {}
            loss = logs.get("loss")
            # The epoch's other figures (val_loss, accuracy...): the loss chart
            # draws val_loss as its own series.
            extra = {key: _number(value) for key, value in logs.items() if key != "loss"}
            self._emit(StepStats("train", epoch + 1, float(loss) if loss is not None else None,
                                 extra=extra))
            self._emit(LayerStats("train", epoch + 1, tuple(rows)))
        except Exception as exc:  # noqa: BLE001 - monitoring must never break the user's training
            if not self._failed:  # said once, not every epoch
                self._failed = True
                lost(self._emit, f"the per-layer figures of your training from epoch {epoch + 1}",
                     exc)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):  # a metric that is not one number
        return None


def with_callback(fit: Any, model: Any, args: tuple, kwargs: dict, callback: Any) -> tuple[tuple, dict]:
    """fit's (args, kwargs) with `callback` appended to the user's callbacks."""
    try:
        bound = inspect.signature(fit).bind(model, *args, **kwargs)
    except TypeError:
        return args, kwargs
    callbacks = bound.arguments.get("callbacks")
    if callbacks is None:
        merged: Any = [callback]
    elif isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks.append(callback)
        merged = callbacks
    else:
        merged = [*list(callbacks), callback]
    bound.arguments["callbacks"] = merged
    new_args = bound.args[1:]  # drop the model
    return tuple(new_args), dict(bound.kwargs)
