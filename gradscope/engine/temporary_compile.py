"""`diagnose(model, ..., loss=, optimizer=, metrics=)`: the model compiled for the
diagnosis only, then put back as it was.

The engine judges the loss and optimizer a model is compiled with (its compile
config, `model.optimizer`, its own `train_step`...). An uncompiled model (one
trained by a custom `tf.GradientTape` loop) is diagnosed as if
`model.compile(optimizer, loss, metrics)` had been called, and a compiled one
given other `loss=`/`optimizer=`/`metrics=` as if it had been recompiled with
them (its own compile arguments kept for the rest). Then the compile is undone:
every attribute it set on the model goes back to its former value, or away
when it had none, and what it added in place to the model's lists, dicts and
sets (TensorFlow's checkpoint dependencies, a subclass's own trackers) is taken
out; Keras's automatic-name counters and the random streams are kept as they
were (engine/rng.py). Nothing else the diagnosis did to the model is undone
(a subclassed model built on its first batch stays built, as `fit` would
leave it).

Why the user's model and not a compiled copy: the engine already probes a clone
or restores every variable; a copy made here would lose what only the user's
object has (a model that cannot be cloned, its own `train_step` and the
attributes it reads) and would have to carry the optimizer's state twice.

The optimizer instance given is the one judged, with its state: a custom loop's
optimizer that has stepped carries an iteration count and slots that the
update ratios depend on (engine/target.py copies them to the probe's clone, or
probes in place and restores them bit for bit). One not yet built has no state:
a fresh copy of its config is judged instead, so that the diagnosis never
builds the user's instance (which would fix the variables it later accepts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NOT_COMPILED = (
    "the model is not compiled: pass the loss and optimizer your training uses, "
    "gradscope.diagnose(model, x, y, loss=..., optimizer=...), or compile the model "
    "first (model.compile(optimizer=..., loss=...))"
)


def is_compiled(model: Any) -> bool:
    """Whether `fit` could train the model as it is (compiled, with an optimizer)."""
    return getattr(model, "compiled", False) is True and getattr(model, "optimizer", None) is not None


@contextmanager
def compiled_for_diagnosis(
    model: Any, *, loss: Any = None, optimizer: Any = None, metrics: Any = None
) -> Iterator[None]:
    """Inside: `model` compiled with these (see module doc); afterwards its compile
    state as it was. With none of them, a compiled model is left alone and an
    uncompiled one is a ValueError."""
    compiled = is_compiled(model)
    if loss is None and optimizer is None and metrics is None:
        if not compiled:
            raise ValueError(NOT_COMPILED)
        yield
        return
    if not compiled and (loss is None or optimizer is None):
        missing = " and ".join(n for n, v in (("loss=", loss), ("optimizer=", optimizer)) if v is None)
        raise ValueError(f"{NOT_COMPILED} (missing: {missing})")
    from gradscope.engine.rng import preserved_rng

    before = _Attributes(model)
    compile_done: _Attributes | None = None
    try:
        # (Keras's automatic-name counters too: the user's next Adam stays "adam".)
        with preserved_rng():
            model.compile(**_compile_arguments(model, compiled, loss, optimizer, metrics))
        compile_done = _Attributes(model)
        yield
    finally:
        before.undo_changes(model, compile_done)


def _compile_arguments(model: Any, compiled: bool, loss: Any, optimizer: Any, metrics: Any) -> dict[str, Any]:
    """compile()'s arguments: those given; for a compiled model, its own for the rest."""
    if optimizer is not None:
        optimizer = _unbuilt_copy(optimizer)
    if not compiled:
        return {"optimizer": optimizer, "loss": loss, "metrics": metrics}
    config = getattr(model, "_compile_config", None)
    own: dict[str, Any] = dict(config.config) if config is not None else {}
    arguments: dict[str, Any] = {
        # The instance, not the compile argument: it carries the training's state.
        "optimizer": optimizer if optimizer is not None else model.optimizer,
        "loss": loss if loss is not None else own.get("loss", getattr(model, "loss", None)),
        # Loss weights belong to the loss they weighed.
        "loss_weights": own.get("loss_weights") if loss is None else None,
        "metrics": metrics if metrics is not None else own.get("metrics"),
        "weighted_metrics": own.get("weighted_metrics"),
    }
    for name in ("run_eagerly", "steps_per_execution", "jit_compile"):
        if name in own:
            arguments[name] = own[name]
    if optimizer is None and _unscaled_mixed_precision(model):
        arguments["auto_scale_loss"] = False  # it was compiled so
    return arguments


def _unbuilt_copy(optimizer: Any) -> Any:
    """An optimizer instance that has not been built: a fresh one of its class and
    config (the same optimizer: it has no state yet), so that nothing of ours
    builds the user's instance. A built one, a string or a config: as given."""
    from keras.optimizers import Optimizer

    if isinstance(optimizer, Optimizer) and not getattr(optimizer, "built", False):
        return optimizer.__class__.from_config(optimizer.get_config())
    return optimizer


def _unscaled_mixed_precision(model: Any) -> bool:
    """A mixed_float16 model compiled with auto_scale_loss=False (its optimizer
    is not a LossScaleOptimizer): recompiled so as well."""
    from keras.optimizers import LossScaleOptimizer

    policy = getattr(getattr(model, "dtype_policy", None), "name", None)
    return policy == "mixed_float16" and not isinstance(model.optimizer, LossScaleOptimizer)


class _Attributes:
    """A model's attributes one level deep: the object each one holds, and the
    items of each list, dict and set among them (and of a Keras tracker's sets
    of tracked ids)."""

    def __init__(self, model: Any) -> None:
        self.values: dict[str, Any] = dict(vars(model))
        self.items: dict[tuple[str, str], Any] = {}
        for name, value in self.values.items():
            if _is_container(value):
                self.items[(name, "")] = _contents(value)
            for key, inner in _tracker_sets(value).items():
                self.items[(name, key)] = set(inner)

    def undo_changes(self, model: Any, compiled: _Attributes | None) -> None:
        """Undo what happened between this state and `compiled` (compile's work).
        With no `compiled` (compile failed half-way), undo everything since."""
        done = compiled if compiled is not None else _Attributes(model)
        now = vars(model)
        for name in [n for n in done.values if n not in self.values]:
            now.pop(name, None)
        for name, value in self.values.items():
            if name not in done.values or done.values[name] is not value:
                now[name] = value
        for (name, key), items in self.items.items():
            value = self.values[name]
            if done.values.get(name) is not value or (name, key) not in done.items:
                continue  # replaced (and put back above) rather than changed in place
            target = _tracker_sets(value).get(key) if key else value
            if target is not None:
                _undo(target, items, done.items[(name, key)])


def _is_container(value: Any) -> bool:
    return isinstance(value, (list, dict, set))


def _contents(value: Any) -> Any:
    """A copy of a container's items (a TensorFlow wrapper proxies its own)."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value.items())
    return set(value)


def _base(target: Any, kind: type) -> Any:
    """The methods to change `target` with: the base type's for a real subclass
    (a Keras TrackedList would track what it is given), its own otherwise (a
    TensorFlow wrapper only proxies the type)."""
    return kind if kind in type(target).__mro__ else type(target)


def _tracker_sets(value: Any) -> dict[str, set[int]]:
    """A Keras `Tracker`'s sets of tracked ids, by store name ({} for anything else)."""
    stored = getattr(value, "stored_ids", None) if type(value).__name__ == "Tracker" else None
    if not isinstance(stored, dict):
        return {}
    return {str(k): v for k, v in stored.items() if isinstance(v, set)}


def _undo(target: Any, before: Any, compiled: Any) -> None:
    """Take out of `target` what went into it between `before` and `compiled`,
    and put back what went out, leaving any later change."""
    if isinstance(target, list):
        added = {id(x) for x in compiled} - {id(x) for x in before}
        kept_ids = {id(x) for x in compiled}
        removed = [(i, x) for i, x in enumerate(before) if id(x) not in kept_ids]
        if not added and not removed:
            return
        kept = [x for x in target if id(x) not in added]
        for i, x in removed:
            kept.insert(min(i, len(kept)), x)
        methods = _base(target, list)
        methods.clear(target)
        methods.extend(target, kept)
    elif isinstance(target, dict):
        methods = _base(target, dict)
        for key in set(before) | set(compiled):
            if key in before and key in compiled and before[key] is compiled[key]:
                continue
            if key in before:
                methods.__setitem__(target, key, before[key])
            elif key in target:
                methods.__delitem__(target, key)
    elif isinstance(target, set):
        added_items = compiled - before
        removed_items = before - compiled
        if added_items or removed_items:
            methods = _base(target, set)
            methods.difference_update(target, added_items)
            methods.update(target, removed_items)
