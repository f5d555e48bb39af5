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
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    if isinstance(act, keras.layers.Layer):
        return activation_kind(act) or "other"
    if isinstance(act, str):
        return _ACTIVATION_KINDS.get(act, "other")
    name = getattr(act, "__name__", None) or type(act).__name__
    return _ACTIVATION_KINDS.get(str(name), "other")


def own_variables(layer: Any) -> list[Any]:
    """Variables a layer owns directly (not through sub-layers)."""
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
