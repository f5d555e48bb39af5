"""Turning engine output (live Keras objects, probe results, fit arguments) into
the plain facts and events the checks and sinks read. No decisions are made
here: the checks judge, the diagnosis orders the phases."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from keras.src import tree

from gradscope.checks.facts import BatchFacts, ModelFacts, ProbeFacts, batch_facts
from gradscope.checks.gradients import MixedPrecisionProbe
from gradscope.events import LayerRow

if TYPE_CHECKING:
    from gradscope.engine.fitdata import Batch, FitData
    from gradscope.engine.layers import LayerMeta
    from gradscope.engine.probe import LayerFigures, ProbeStep, StepResult
    from gradscope.intercept import FitCall

# One probe step as the diagnosis keeps it: what the step returned, and its
# per-layer figures in the order of the layer metas.
Step = tuple["StepResult", list["LayerFigures"]]


def head(struct: Any, n: int) -> Any:
    """The first `n` samples of every leaf of a (nested) batch."""
    return tree.map_structure(lambda a: a[:n], struct)


def with_user_trainable(facts: ModelFacts, model: Any) -> ModelFacts:
    """Trainable state as the user's fit will see it (the clone may differ in flags)."""
    from gradscope.engine.layers import own_variables, probe_layers

    weighted = [layer for layer in probe_layers(model) if own_variables(layer)]
    return replace(
        facts,
        total_params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        trainable_params=int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
        weighted_layers=tuple(layer.name for layer in weighted),
        frozen_layers=tuple(layer.name for layer in weighted if not layer.trainable),
    )


def budget_steps(call: FitCall, data: FitData) -> int | None:
    """Training steps the user's fit will run (epochs x steps per epoch), if known."""
    try:
        bound = inspect.signature(call.original).bind(call.model, *call.args, **call.kwargs)
    except TypeError:
        return None
    args = bound.arguments
    epochs = int(args.get("epochs", 1) or 1) - int(args.get("initial_epoch", 0) or 0)
    per_epoch = args.get("steps_per_epoch")
    if per_epoch is None and data.kind == "arrays" and data.num_samples and data.batch_size:
        per_epoch = -(-int(data.num_samples) // int(data.batch_size))
    x: Any = args.get("x")
    if per_epoch is None and data.kind == "pydataset":
        try:
            per_epoch = len(x)
        except TypeError:
            per_epoch = None
    elif per_epoch is None and data.kind == "dataset":
        try:
            card = int(x.cardinality())
            per_epoch = card if card > 0 else None
        except Exception:  # noqa: BLE001 - an unknown cardinality: no budget to replay
            per_epoch = None
    if not per_epoch or epochs <= 0:
        return None
    return int(per_epoch) * epochs


def optimizer_clipping(optimizer: Any) -> tuple[str, float] | None:
    """The tightest gradient clipping the optimizer applies, if any."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    found = []
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        value = getattr(inner, name, None)
        try:
            if value is not None and float(value) > 0:
                found.append((name, float(value)))
        except (TypeError, ValueError):
            continue
    return min(found, key=lambda item: item[1]) if found else None


def optimizer_epsilon(optimizer: Any) -> float | None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    value = getattr(inner, "epsilon", None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def optimizer_name(optimizer: Any) -> str:
    return type(getattr(optimizer, "inner_optimizer", optimizer)).__name__


def pipeline_facts(kind: str, batches: Sequence[Batch]) -> BatchFacts:
    """BatchFacts from the first input and label leaf of each probe batch."""

    def first(struct: Any) -> Any:
        leaves = tree.flatten(struct) if struct is not None else []
        return np.asarray(leaves[0]) if leaves else None

    xs = [first(b[0]) for b in batches]
    ys = [first(b[1]) for b in batches]
    weights = [w for b in batches if b[2] is not None for w in tree.flatten(b[2])]
    return batch_facts(kind, [x for x in xs if x is not None], ys, weights=weights)


def disconnected_variables(probe: ProbeStep) -> list[str]:
    """'layer/variable' for each trainable variable the loss gives no gradient."""

    def owner(index: int) -> str:
        layer = int(probe.var_layer[index])
        return probe.metas[layer].name if layer >= 0 else "model"

    return [f"{owner(i)}/{probe.tvars[i].name}" for i in probe.disconnected]



def layer_rows(metas: Sequence[LayerMeta], figures: Sequence[LayerFigures]) -> tuple[LayerRow, ...]:
    """One CSV/UI row per layer from one step's figures."""
    return tuple(
        LayerRow(
            layer=m.name,
            layer_type=m.layer_type,
            param_count=m.param_count,
            trainable=m.trainable,
            grad_norm=f.grad_norm,
            weight_norm=f.weight_norm,
            update_ratio=f.update_ratio,
            act_mean=f.act_mean,
            act_std=f.act_std,
            act_saturated_frac=f.act_saturated_frac,
            act_dead_frac=f.act_dead_frac,
        )
        for m, f in zip(metas, figures, strict=True)
    )


def probe_facts(
    metas: Sequence[LayerMeta],
    series: Sequence[Step],
    disconnected: Sequence[str] = (),
    output_layers: Sequence[str] = (),
) -> ProbeFacts:
    """The probe steps as [steps, layers] arrays (NaN where a figure does not apply)."""

    def grid(attr: str) -> np.ndarray:
        return np.array(
            [[np.nan if getattr(f, attr) is None else getattr(f, attr) for f in figs]
             for _, figs in series],
            dtype=np.float64,
        )

    act_mean = grid("act_mean")
    tapped = np.array([[f.act_mean is not None for f in figs] for _, figs in series])
    mixed = any(r.loss_scale is not None or r.grad_zeros is not None for r, _ in series)
    extra: dict[str, Any] = {}
    if mixed:
        extra = {
            "skipped": np.array([r.skipped for r, _ in series], dtype=bool),
            "loss_scales": np.array([np.nan if r.loss_scale is None else r.loss_scale for r, _ in series],
                                    dtype=np.float64),
            "grad_zero_frac": grid("grad_zero_frac"),
            "grad_tiny_frac": grid("grad_tiny_frac"),
        }
    facts_type = MixedPrecisionProbe if mixed else ProbeFacts
    return facts_type(
        layers=tuple(m.name for m in metas),
        layer_types=tuple(m.layer_type for m in metas),
        activations=tuple(m.activation for m in metas),
        losses=np.array([r.loss for r, _ in series], dtype=np.float64),
        grad_norm=grid("grad_norm"),
        weight_norm=grid("weight_norm"),
        update_ratio=grid("update_ratio"),
        act_mean=act_mean,
        act_finite=~tapped | np.isfinite(act_mean),
        saturated=grid("act_saturated_frac"),
        dead=grid("act_dead_frac"),
        data_losses=np.array([r.data_loss for r, _ in series], dtype=np.float64),
        reg_losses=np.array([r.reg_loss for r, _ in series], dtype=np.float64),
        disconnected=tuple(disconnected),
        output_layers=tuple(output_layers),
        **extra,
    )


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        details = tf.config.experimental.get_device_details(gpus[0])
        return str(details.get("device_name") or "GPU")
    except Exception:  # noqa: BLE001 - a name for display only
        return "GPU"
