"""What the engine needs to know about a model's layers, read from the objects themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

# Activation functions by the name of the function object: `keras.activations.relu`,
# `tf.nn.relu` and `"relu"` all resolve to a function called "relu".
_ACTIVATION_KINDS = {
    "relu": "relu",
    "relu6": "relu",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "linear": "linear",
    "identity": "linear",
}


def activation_kind(layer: Any) -> str | None:
    """'relu' | 'sigmoid' | 'tanh' | 'softmax' | 'linear' | 'other' | None (no activation)."""
    from keras import layers

    if isinstance(layer, layers.ReLU):
        slope = float(getattr(layer, "negative_slope", 0.0) or 0.0)
        threshold = float(getattr(layer, "threshold", 0.0) or 0.0)
        return "relu" if slope == 0.0 and threshold >= 0.0 else "other"
    if isinstance(layer, layers.Softmax):
        return "softmax"
    if isinstance(layer, (layers.LeakyReLU, layers.PReLU, layers.ELU)):
        return "other"
    # Wrappers have no activation of their own: their output is the wrapped
    # layer's, reshaped (TimeDistributed) or joined (Bidirectional).
    if isinstance(layer, layers.Bidirectional):
        return activation_kind(layer.forward_layer)
    if isinstance(layer, layers.Wrapper) and getattr(layer, "layer", None) is not None:
        return activation_kind(layer.layer)
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    if isinstance(act, keras.layers.Layer):
        return activation_kind(act) or "other"
    if isinstance(act, str):
        return _ACTIVATION_KINDS.get(act, "other")
    name = getattr(act, "__name__", None) or type(act).__name__
    return _ACTIVATION_KINDS.get(str(name), "other")


def is_recurrent(layer: Any) -> bool:
    """LSTM, GRU, SimpleRNN, ConvLSTM, RNN(cell): one row each, cell included.

    The cell is called once per time step inside a loop, and its name
    (`lstm_cell`) is not one the user wrote: the layer's row owns the cell's
    variables and its activations are the layer's output sequence.
    """
    from keras import layers

    return isinstance(layer, layers.RNN)


def own_variables(layer: Any) -> list[Any]:
    """Variables a layer owns directly (not through sub-layers); a recurrent
    layer also owns its cell's."""
    if is_recurrent(layer):
        return list(layer.weights)  # every variable, whatever the trainable flags
    return list(getattr(layer, "_trainable_variables", [])) + list(
        getattr(layer, "_non_trainable_variables", [])
    )


def _walk(root: Any) -> list[Any]:
    """Every sub-layer of `root` once, depth first, children in their own order.

    Not `Layer._flatten_layers`: it pushes each container's children with
    `deque.extendleft`, which reverses them, so a nested model's layers would
    come out last-to-first and "the first layer" of the checks would be wrong.
    """
    out: list[Any] = []
    seen: set[int] = set()
    stack = list(reversed(getattr(root, "_layers", None) or []))
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        if not is_recurrent(layer):  # a recurrent layer's cell is part of its row
            stack.extend(reversed(getattr(layer, "_layers", None) or []))
    return out


def probe_layers(model: Any) -> list[Any]:
    """The layers gradscope reports on, in forward order: every leaf layer, plus
    any container that owns variables of its own; nested models are flattened."""
    from keras import layers

    found = []
    for layer in _walk(model):
        if isinstance(layer, layers.InputLayer):
            continue
        has_children = bool(getattr(layer, "_layers", None))
        if not has_children or own_variables(layer):
            found.append(layer)
    return found


def param_count(layer: Any) -> int:
    total = 0
    for v in own_variables(layer):
        n = 1
        for d in v.shape:
            n *= int(d)
        total += n
    return total


def is_trainable(layer: Any) -> bool:
    """A layer trains only if it and every container above it are trainable;
    Keras propagates `trainable=False` down, so the leaf's flag is enough."""
    return bool(layer.trainable)


@dataclass(frozen=True)
class LayerMeta:
    name: str
    layer_type: str
    param_count: int
    trainable: bool
    activation: str | None


def describe(layers: list[Any]) -> list[LayerMeta]:
    """Names made unique (nested models may repeat a name) and static facts per layer."""
    seen: dict[str, int] = {}
    metas = []
    for layer in layers:
        name = layer.name
        if name in seen:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        else:
            seen[name] = 0
        metas.append(
            LayerMeta(
                name=name,
                layer_type=type(layer).__name__,
                param_count=param_count(layer),
                trainable=is_trainable(layer) and bool(layer.trainable_weights),
                activation=activation_kind(layer),
            )
        )
    return metas


# Config keys the drill-down shows, in this order, when the layer has them.
_CONFIG_KEYS = (
    "units", "filters", "kernel_size", "strides", "padding", "pool_size", "rate",
    "input_dim", "output_dim", "axis", "momentum", "epsilon", "return_sequences",
    "use_bias", "kernel_initializer", "bias_initializer", "embeddings_initializer",
    "recurrent_initializer", "kernel_regularizer", "bias_regularizer",
    "activity_regularizer", "recurrent_regularizer", "embeddings_regularizer",
    "kernel_constraint", "bias_constraint", "recurrent_activation", "dropout",
    "recurrent_dropout",
)


def _show(value: Any) -> str:
    """A config value as one short line: `GlorotUniform(seed=None)`, `L2(l2=0.01)`."""
    if isinstance(value, dict) and "class_name" in value:
        inner = value.get("config") or {}
        args = ", ".join(
            f"{k}={_show(v)}" for k, v in inner.items()
            if k not in ("name", "dtype") and v is not None
        ) if isinstance(inner, dict) else ""
        return f"{value['class_name']}({args})"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _shape(layer: Any, attribute: str) -> str:
    try:
        tensor = getattr(layer, attribute)
    except Exception:  # noqa: BLE001 - subclassed layers have no symbolic input/output
        return ""
    shapes = [getattr(t, "shape", None) for t in (tensor if isinstance(tensor, list) else [tensor])]
    return ", ".join(str(tuple(s)) for s in shapes if s is not None)


def layer_config(layer: Any) -> tuple[str, dict[str, str]]:
    """(output shape, readable config) of a layer, for the drill-down; never raises."""
    shown: dict[str, str] = {}
    output_shape = _shape(layer, "output")
    input_shape = _shape(layer, "input")
    if input_shape:
        shown["input shape"] = input_shape
    if output_shape:
        shown["output shape"] = output_shape
    activation = getattr(layer, "activation", None)
    if activation is not None and not isinstance(activation, str):
        activation = getattr(activation, "__name__", None) or type(activation).__name__
    if activation:
        shown["activation"] = str(activation)
    try:
        config = layer.get_config()
    except Exception:  # noqa: BLE001 - custom layers without get_config
        config = {}
    for key in _CONFIG_KEYS:
        value = config.get(key) if isinstance(config, dict) else None
        if value is not None:
            shown[key.replace("_", " ")] = _show(value)
    shown["trainable"] = "yes" if layer.trainable else "no (frozen)"
    policy = getattr(layer, "dtype_policy", None)
    if policy is not None:
        shown["dtype"] = str(getattr(policy, "name", policy))
    for v in own_variables(layer):
        shown[f"weight {v.name}"] = (
            f"{tuple(v.shape)} {'trainable' if v.trainable else 'not trainable'}"
        )
    return output_shape, shown
