"""Read the facts the checks need from live Keras objects (model, loss, data)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from keras.src import tree

from gradscope.checks.facts import EmbeddingIds, ModelFacts, OutputFacts, summarize
from gradscope.engine.layer_calls import around_layer_calls
from gradscope.engine.layers import activation_kind, is_recurrent, own_variables, probe_layers
from gradscope.engine.training import batch_norms

_LOSS_KINDS = {
    "categoricalcrossentropy": "categorical_crossentropy",
    "categoricalfocalcrossentropy": "categorical_crossentropy",
    "sparsecategoricalcrossentropy": "sparse_categorical_crossentropy",
    "binarycrossentropy": "binary_crossentropy",
    "binaryfocalcrossentropy": "binary_crossentropy",
    "meansquarederror": "mse",
    "mse": "mse",
    "meanabsoluteerror": "mae",
    "mae": "mae",
    "huber": "huber",
    "huberloss": "huber",
    "logcosh": "logcosh",
    "meansquaredlogarithmicerror": "msle",
    "msle": "msle",
    "meanabsolutepercentageerror": "mape",
    "mape": "mape",
    "hinge": "hinge",
    "squaredhinge": "hinge",
    "categoricalhinge": "hinge",
    "kldivergence": "kld",
    "kld": "kld",
    "poisson": "poisson",
}


def canonical_loss(loss: Any) -> tuple[str | None, str, bool | None]:
    """(kind, name as written, from_logits) for a loss given as a string, a
    Loss object or a function."""
    if loss is None:
        return None, "None", None
    from_logits: bool | None = None
    if isinstance(loss, str):
        name = loss
    else:
        fn = getattr(loss, "fn", None)  # LossFunctionWrapper
        name = type(loss).__name__
        if name == "LossFunctionWrapper" and fn is not None:
            name = getattr(fn, "__name__", name)
        elif not hasattr(loss, "get_config"):
            name = getattr(loss, "__name__", name)
        try:
            config = loss.get_config() if hasattr(loss, "get_config") else {}
            if isinstance(config, dict) and "from_logits" in config:
                from_logits = bool(config["from_logits"])
        except Exception:  # noqa: BLE001 - a custom loss's config is optional
            pass
    key = name.lower().replace("_", "")
    kind = _LOSS_KINDS.get(key, "other")
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"):
        from_logits = bool(from_logits)
    return kind, name, from_logits


def _label_smoothing(loss: Any) -> float:
    try:
        config = loss.get_config() if hasattr(loss, "get_config") else {}
        return float(config.get("label_smoothing") or 0.0) if isinstance(config, dict) else 0.0
    except Exception:  # noqa: BLE001 - custom losses need not have a config
        return 0.0


def _metrics_per_output(metrics: Any, output_names: list[str]) -> list[tuple[str, ...]]:
    if metrics is None:
        return [()] * len(output_names)
    if isinstance(metrics, dict):
        return [_metric_names(metrics.get(name)) for name in output_names]
    if (
        isinstance(metrics, (list, tuple))
        and len(metrics) == len(output_names)
        and len(output_names) > 1
        and all(isinstance(m, (list, tuple)) or m is None for m in metrics)
    ):
        return [_metric_names(m) for m in metrics]
    return [_metric_names(metrics)] * len(output_names)


def _losses_per_output(loss: Any, output_names: list[str]) -> list[Any]:
    if isinstance(loss, dict):
        return [loss.get(name) for name in output_names]
    if isinstance(loss, (list, tuple)):
        return list(loss) + [None] * (len(output_names) - len(loss))
    return [loss] * len(output_names)


def _labels_per_output(y: Any, output_names: list[str]) -> list[Any]:
    if y is None:
        return [None] * len(output_names)
    if isinstance(y, dict):
        return [y.get(name) for name in output_names]
    if isinstance(y, (list, tuple)) and len(output_names) > 1:
        return list(y) + [None] * (len(output_names) - len(y))
    return [y] + [None] * (len(output_names) - 1)


@contextmanager
def embedding_ids_in_range(found: list[EmbeddingIds]) -> Iterator[None]:
    """During eager calls: record the ids each Embedding layer receives and clip
    those outside [0, input_dim) into it. On CPU such an id stops the call
    (InvalidArgumentError: every static check would be lost with it); on a GPU
    its lookup silently gives zeros. Recorded, it is a verdict of its own."""
    from keras.layers import Embedding

    def checked_call(original: Any, layer: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(layer, Embedding) and args:
            try:
                ids = np.asarray(args[0])
            except Exception:  # noqa: BLE001 - symbolic or exotic inputs: nothing to check
                ids = None
            if ids is not None and ids.dtype.kind in "iuf":
                # (NaN ids are nonfinite-input's; they are left as they are here.)
                valid = ids[np.isfinite(ids)] if ids.dtype.kind == "f" else ids.ravel()
                if valid.size:
                    dim = int(layer.input_dim)
                    outside = int(np.count_nonzero((valid < 0) | (valid >= dim)))
                    found.append(EmbeddingIds(
                        layer.name, dim, int(valid.min()), int(valid.max()), outside, int(valid.size)
                    ))
                    if outside:
                        args = (np.clip(ids, 0, dim - 1).astype(ids.dtype), *args[1:])
        return original(layer, *args, **kwargs)

    with around_layer_calls(checked_call):
        yield


def _opaque(layer: Any) -> bool:
    """A layer whose output is its own even though sub-layers compute it: a
    wrapper (TimeDistributed, Bidirectional) reshapes or joins what its inner
    layer returns, a recurrent layer loops its cell over the time steps."""
    from keras import layers

    return is_recurrent(layer) or isinstance(layer, (layers.Wrapper, layers.Bidirectional))


@contextmanager
def _record_layer_outputs(calls: list[tuple[Any, Any]], first: list[Any]) -> Iterator[None]:
    """Record (layer, output) in call order during one eager call, for leaf
    layers and wrappers / recurrent layers (not the layers they run inside:
    their outputs are not the model's); `first` gets (layer, input) of the
    first leaf layer with weights to run."""
    inside = [0]  # depth inside wrappers and recurrent layers

    def recording_call(original: Any, layer: Any, *args: Any, **kwargs: Any) -> Any:
        leaf = not getattr(layer, "_layers", None)
        opaque = _opaque(layer)
        if leaf and not first and own_variables(layer) and args:
            leaves = [t for t in tree.flatten(args[0]) if hasattr(t, "shape")]
            if leaves:
                first.append((layer, leaves[0]))
        outer = inside[0] == 0
        inside[0] += opaque
        try:
            out = original(layer, *args, **kwargs)
        finally:
            inside[0] -= opaque
        if outer and (leaf or opaque):
            for t in tree.flatten(out):
                calls.append((layer, t))
        return out

    with around_layer_calls(recording_call):
        yield


def _reported_layer(layer: Any) -> Any:
    """The layer the user wrote for an output: TimeDistributed(Dense(...)) is its
    Dense (which owns the weights, the activation and the probe's row); a
    Bidirectional or recurrent layer is itself."""
    from keras import layers

    inner = getattr(layer, "layer", None)
    if isinstance(layer, layers.Wrapper) and inner is not None and not getattr(inner, "_layers", None):
        return inner
    return layer


def output_layers(model: Any, x: Any) -> tuple[list[Any], list[Any], list[Any], list[str] | None]:
    """(predictions per output, the layer that produced each, [(first weighted
    layer, its input)], the outputs' dict keys or None) from one eager inference
    call; the innermost producing layer wins for nested models, wrappers are
    seen through."""
    calls: list[tuple[Any, Any]] = []
    first: list[Any] = []
    with _record_layer_outputs(calls, first):
        y_pred = model(x, training=False)
    outputs = tree.flatten(y_pred)
    keys = _dict_keys(y_pred)
    by_id: dict[int, Any] = {}
    for layer, t in calls:
        by_id.setdefault(id(t), layer)  # the first to finish is the innermost
    producers = []
    for t in outputs:
        layer = by_id.get(id(t))
        if layer is None:
            # The model re-wrapped its output (subclassed models do): take the
            # last layer whose output has the same shape.
            same = [lyr for lyr, o in calls if tuple(o.shape) == tuple(t.shape)]
            layer = same[-1] if same else (calls[-1][0] if calls else None)
        producers.append(_reported_layer(layer) if layer is not None else None)
    return outputs, producers, first, keys


def _dict_keys(structure: Any) -> list[str] | None:
    """Each leaf's key when the structure is a flat dict (a model with named
    outputs, inputs given by name), in tree.flatten's order; else None."""
    if not isinstance(structure, dict):
        return None
    paths = [path for path, _ in tree.flatten_with_path(structure)]
    if not all(len(path) == 1 for path in paths):
        return None
    return [str(path[0]) for path in paths]


def _looks_like_softmax(pred: np.ndarray) -> bool:
    """Rows of non-negative values summing to 1: probabilities, whatever layer made them
    (e.g. an Average of softmax heads)."""
    if pred.ndim < 2 or pred.shape[-1] < 2 or pred.size == 0 or not np.all(np.isfinite(pred)):
        return False
    rows = pred.reshape(-1, pred.shape[-1]).astype(np.float64)
    return bool(rows.min() >= 0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3))


def _metric_names(metrics: Any) -> tuple[str, ...]:
    names: list[str] = []
    for m in tree.flatten(metrics) if metrics is not None else []:
        if m is None:
            continue
        if isinstance(m, str):
            names.append(m.lower())
        else:
            names.append(str(getattr(m, "name", None) or getattr(m, "__name__", type(m).__name__)).lower())
    return tuple(names)


def model_facts(model: Any, x: Any, y: Any) -> tuple[ModelFacts, list[np.ndarray]]:
    """Static facts and the predictions at initialisation (one eager call on `x`)."""
    outputs, producers, first, keys = output_layers(model, x)
    # A dict of outputs is named by its keys (labels and losses are keyed the
    # same way); a subclassed model's output_names may not know them.
    names = keys or list(getattr(model, "output_names", None) or [])
    if len(names) != len(outputs):
        names = [f"output_{i}" for i in range(len(outputs))]
    config = getattr(model, "_compile_config", None)
    loss = config.config.get("loss") if config is not None else getattr(model, "loss", None)
    per_loss = _losses_per_output(loss, names)
    per_labels = _labels_per_output(y, names)
    per_metrics = _metrics_per_output(
        config.config.get("metrics") if config is not None else None, names
    )
    outs = []
    for name, t, layer, out_loss, labels, out_metrics in zip(
        names, outputs, producers, per_loss, per_labels, per_metrics, strict=True
    ):
        kind, display, from_logits = canonical_loss(out_loss)
        shape = tuple(t.shape)
        activation = activation_kind(layer) if layer is not None else None
        if activation in (None, "linear") and _looks_like_softmax(np.asarray(t)):
            activation = "softmax"
        outs.append(
            OutputFacts(
                name=name,
                layer=layer.name if layer is not None else name,
                units=int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else 1,
                activation=activation,
                loss=kind,
                loss_display=display,
                from_logits=from_logits,
                labels=summarize(labels) if labels is not None else None,
                label_smoothing=_label_smoothing(out_loss),
                metrics=out_metrics,
            )
        )
    weighted = [layer for layer in probe_layers(model) if own_variables(layer)]
    frozen = [layer.name for layer in weighted if not layer.trainable and layer.weights]
    leaves = tree.flatten(x)
    named = list(zip(_input_names(model, x, len(leaves)), (summarize(leaf) for leaf in leaves), strict=True))
    first_input = first_type = first_name = None
    if first:
        first_type = type(first[0][0]).__name__
        first_name = first[0][0].name
        try:
            first_input = summarize(np.asarray(first[0][1]))
        except Exception:  # noqa: BLE001 - symbolic or exotic tensors: judge raw inputs
            first_input = None
    facts = ModelFacts(
        name=model.name,
        total_params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        trainable_params=int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
        weighted_layers=tuple(layer.name for layer in weighted),
        frozen_layers=tuple(frozen),
        outputs=tuple(outs),
        inputs=tuple(i for _, i in named if i is not None),
        input_names=tuple(n for n, i in named if i is not None),
        first_layer_input=first_input,
        first_layer_type=first_type or "",
        first_layer_name=first_name or "",
        metrics=_metric_names(config.config.get("metrics") if config is not None else None),
        dropout_rates=tuple(_dropout_rates(model)),
        batch_norm_layers=tuple(layer.name for layer in batch_norms(model)),
    )
    return facts, [np.asarray(t) for t in outputs]


def _input_names(model: Any, x: Any, n: int) -> list[str]:
    """Each input leaf's name: its dict key, else (several inputs) the name of
    the model's keras.Input in the same place; "" when it has none."""
    keys = _dict_keys(x)
    if keys is not None and len(keys) == n:
        return keys
    if n > 1:
        try:
            tensors = list(getattr(model, "inputs", None) or [])
        except Exception:  # noqa: BLE001 - a subclassed model has no symbolic inputs
            tensors = []
        if len(tensors) == n:
            names = [str(getattr(t, "name", "") or "") for t in tensors]
            # Keras names an unnamed Input's tensor "keras_tensor_<n>": no name to quote.
            return ["" if name.startswith("keras_tensor") else name for name in names]
    return [""] * n


def _dropout_rates(model: Any) -> list[tuple[str, float]]:
    """(name, rate) of every Dropout-family layer (SpatialDropout, AlphaDropout...)."""
    found = []
    for layer in probe_layers(model):
        rate = getattr(layer, "rate", None)
        if "Dropout" in type(layer).__name__ and isinstance(rate, (int, float)):
            found.append((layer.name, float(rate)))
    return found


def facts_without_forward(model: Any, x: Any, y: Any) -> ModelFacts:
    """Static facts of a model that cannot run a forward pass (no call(): a GAN
    or VAE built of sub-models and trained by its own train_step): inputs,
    layers, and one output per compiled loss read off the loss and the labels
    alone; the output's units and activation are unknown (None / "other"), so
    only the checks that need neither judge it."""
    config = getattr(model, "_compile_config", None)
    loss = config.config.get("loss") if config is not None else getattr(model, "loss", None)
    names: list[str] = []
    if isinstance(loss, dict):
        names = [str(k) for k in loss]
    elif isinstance(loss, (list, tuple)):
        names = [f"output_{i}" for i in range(len(loss))]
    elif loss is not None:
        names = ["output_0"]
    if isinstance(y, dict) and isinstance(loss, dict):
        per_labels = [y.get(name) for name in names]
    else:
        per_labels = _labels_per_output(y, names)
    per_metrics = _metrics_per_output(
        config.config.get("metrics") if config is not None else None, names
    )
    outs = []
    for name, out_loss, labels, out_metrics in zip(
        names, _losses_per_output(loss, names), per_labels, per_metrics, strict=True
    ):
        kind, display, from_logits = canonical_loss(out_loss)
        outs.append(
            OutputFacts(
                name=name, layer=name, units=None, activation="other", loss=kind,
                loss_display=display, from_logits=from_logits,
                labels=summarize(labels) if labels is not None else None,
                label_smoothing=_label_smoothing(out_loss), metrics=out_metrics,
            )
        )
    weighted = [layer for layer in probe_layers(model) if own_variables(layer)]
    inputs = [summarize(leaf) for leaf in tree.flatten(x)]
    return ModelFacts(
        name=model.name,
        total_params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        trainable_params=int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
        weighted_layers=tuple(layer.name for layer in weighted),
        frozen_layers=tuple(layer.name for layer in weighted if not layer.trainable and layer.weights),
        outputs=tuple(outs),
        inputs=tuple(i for i in inputs if i is not None),
        first_layer_input=None,
        first_layer_type="",
        metrics=_metric_names(config.config.get("metrics") if config is not None else None),
        dropout_rates=tuple(_dropout_rates(model)),
        batch_norm_layers=tuple(layer.name for layer in batch_norms(model)),
    )
