"""Probing a model through its own `train_step`.

A model that overrides `train_step` (a GAN with two optimizers, a VAE with its
own loss trackers, gradient accumulation) trains by code gradscope cannot
rewrite as "forward, compiled loss, backward": the probe runs that code itself,
on the user's model, and reads what it does from the outside:

* the gradients where the step hands them to an optimizer (`apply` of every
  Keras optimizer, which `apply_gradients` goes through), or, for a variable no
  optimizer got in that step (gradients being accumulated), what
  `tf.GradientTape.gradient` returned for it;
* the updates as the difference of the weights before and after the step;
* the activations through the usual `Layer.__call__` taps;
* the loss from the logs the step returns.

It runs eagerly, not as a `tf.function`: a user's step may branch in Python on
tensors, build an optimizer on first use or update metric trackers, all of
which eager execution runs as written, and hooks see concrete values.

It runs in place, never on a clone: what the step depends on is more than a
clone carries (a custom `compile()` and the optimizers it stores, attributes
the script set after construction, sub-models passed to `__init__`). Every
variable the step can change is put back bit for bit afterwards (see
`_State`): the model's, its metrics', every optimizer's, those created while
the step ran (an optimizer built on its first `apply`: reset to their
just-built values), and plain Python attributes of the model.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from keras.src import tree
from keras.src.optimizers.base_optimizer import BaseOptimizer

from gradscope.engine.layers import LayerMeta, describe, own_variables, probe_layers
from gradscope.engine.probe import (
    ROWS_PRECISION,
    LayerFigures,
    StepResult,
    activation_rows,
    half_precision,
    layer_figures,
    loss_scale,
    precision_counts,
    precision_fields,
    summed_rows,
)
from gradscope.engine.replicas import distribute
from gradscope.engine.snapshot import VariableSnapshot
from gradscope.engine.taps import ActivationTaps
from gradscope.engine.training import to_tensors


def overrides_train_step(model: Any) -> bool:
    """Whether the user's model class defines its own `train_step`."""
    owner = next((c for c in type(model).__mro__ if "train_step" in c.__dict__), None)
    return owner is not None and not owner.__module__.startswith(("keras.", "tf_keras."))


def optimizers_of(model: Any) -> list[Any]:
    """model.optimizer and every Keras optimizer the model holds as an attribute
    (directly or in a list/dict: `self.d_optimizer`, `self.optimizers[1]`)."""
    found: list[Any] = []

    def add(obj: Any) -> None:
        if isinstance(obj, BaseOptimizer) and all(obj is not o for o in found):
            found.append(obj)
            inner = getattr(obj, "inner_optimizer", None)  # LossScaleOptimizer
            if inner is not None:
                add(inner)

    add(getattr(model, "optimizer", None))
    for value in list(vars(model).values()):
        for leaf in _leaves(value):
            add(leaf)
    return found


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _key(v: Any) -> int:
    """One identity for a Keras variable and the tf.Variable inside it."""
    inner = getattr(v, "_value", None)
    return id(inner) if isinstance(inner, tf.Variable) else id(v)


# Plain Python values a train_step may change on the model (a step counter, a
# flag): put back too. Keras's own bookkeeping (private names) is left alone.
_PLAIN = (bool, int, float, str, type(None))
_KERAS_FLAGS = {"built", "trainable", "name", "stop_training"}


class _State:
    """Everything the user's train_step can change, restorable bit for bit."""

    def __init__(self, model: Any, optimizers: list[Any]) -> None:
        self.model = model
        found: dict[int, Any] = {}
        sources: list[Any] = [model.variables, getattr(model, "metrics_variables", [])]
        sources += [opt.variables for opt in optimizers]
        # Variables the model holds outside Keras's tracking (a raw tf.Variable
        # counter): model.variables does not list them.
        sources += [
            [leaf for leaf in _leaves(value) if isinstance(leaf, (tf.Variable, _keras_variable()))]
            for value in list(vars(model).values())
        ]
        for group in sources:
            for v in group:
                found.setdefault(_key(v), v)
        self.known = set(found)
        self.snapshot = VariableSnapshot(list(found.values()))
        # Variables created while the step runs, with their values at creation.
        self.created: list[tuple[Any, np.ndarray]] = []
        self.attributes = {
            k: v for k, v in vars(model).items()
            if not k.startswith("_") and k not in _KERAS_FLAGS and isinstance(v, _PLAIN)
        }
        # Lists and dicts of plain data the step may append to (a record of
        # the batches or losses seen): their contents, put back in place.
        self.containers = [
            # (Copied as plain list / dict: Keras wraps them in tracking types.)
            (v, copy.deepcopy(list(v) if isinstance(v, list) else dict(v)))
            for k, v in vars(model).items()
            if not k.startswith("_") and isinstance(v, (list, dict)) and _plain_data(v)
        ]

    def creator(self, next_creator: Callable[..., Any], **kwargs: Any) -> Any:
        v = next_creator(**kwargs)
        if tf.executing_eagerly():
            self.created.append((v, np.array(v.numpy(), copy=True)))
        return v

    def restore(self) -> None:
        self.snapshot.restore()
        for v, initial in self.created:
            if _key(v) not in self.known:
                v.assign(initial)
        for k, plain in self.attributes.items():
            if getattr(self.model, k, plain) is not plain:
                setattr(self.model, k, plain)
        for container, contents in self.containers:
            if isinstance(container, list):
                container[:] = contents
            else:
                container.clear()
                container.update(contents)

    def close(self) -> None:
        self.snapshot.close()


def _plain_data(value: Any, depth: int = 0) -> bool:
    """Numbers, strings, None and NumPy arrays, in lists, tuples and dicts."""
    if isinstance(value, _PLAIN) or isinstance(value, (np.ndarray, np.generic)):
        return True
    if depth > 3:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain_data(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_plain_data(v, depth + 1) for v in value.values())
    return False


def _keras_variable() -> type:
    from keras.src.backend.common.variables import Variable

    return Variable


class TrainStepFailed(Exception):
    """The user's own train_step raised (not gradscope's code around it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


@dataclass
class _Record:
    """What one run of the user's step handed to its optimizers and tapes.

    Under a strategy with several replicas each replica (a thread of its own)
    hands over its part of the gradient: the parts are kept per thread and
    `finish` adds them up (the step's gradient, which the optimizer applies
    all-reduced)."""

    applied: dict[int, Any] = field(default_factory=dict)  # var index -> gradient
    applied_by: dict[int, int] = field(default_factory=dict)  # var index -> id of the optimizer
    taped: dict[int, Any] = field(default_factory=dict)
    targets: list[Any] = field(default_factory=list)  # the losses it differentiated
    calls: dict[int, int] = field(default_factory=dict)  # optimizer id -> its applies
    optimizers: set[int] = field(default_factory=set)  # ids of the optimizers that applied
    applied_parts: dict[int, dict[int, Any]] = field(default_factory=dict)  # var -> {thread: part}
    taped_parts: dict[int, dict[int, Any]] = field(default_factory=dict)

    def finish(self) -> None:
        self.applied = {i: _summed(list(parts.values())) for i, parts in self.applied_parts.items()}
        self.taped = {i: _summed(list(parts.values())) for i, parts in self.taped_parts.items()}


def _summed(parts: list[Any]) -> Any:
    """The replicas' parts of one gradient added up (one part: itself)."""
    if len(parts) == 1:
        return parts[0]
    if any(isinstance(p, tf.IndexedSlices) for p in parts):
        slices = [p if isinstance(p, tf.IndexedSlices) else tf.IndexedSlices(
            p, tf.range(tf.shape(p)[0]), tf.shape(p, out_type=tf.int64)) for p in parts]
        return tf.IndexedSlices(tf.concat([p.values for p in slices], 0),
                                tf.concat([tf.cast(p.indices, tf.int64) for p in slices], 0),
                                slices[0].dense_shape)
    return tf.add_n([tf.convert_to_tensor(p) for p in parts])


@contextmanager
def _reading_gradients(record: _Record, index: dict[int, int]) -> Iterator[None]:
    """Record the (gradient, variable) pairs every optimizer applies, and the
    gradients every GradientTape returns, for the model's trainable variables."""
    original_apply = BaseOptimizer.apply
    original_gradient = tf.GradientTape.gradient

    def apply(opt: Any, grads: Any, trainable_variables: Any = None) -> Any:
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
        variables = trainable_variables
        if variables is None:
            variables = list(getattr(opt, "_trainable_variables", []) or [])
        # A wrapper (LossScaleOptimizer) applies through its inner optimizer: the
        # innermost call's gradients are the unscaled ones. (Counted per
        # optimizer, not per call: replicas' applies overlap in time, and under
        # a strategy the inner applies run in threads of their own.)
        inner = getattr(opt, "inner_optimizer", None)
        before = record.calls.get(id(inner), 0)
        try:
            return original_apply(opt, grads, trainable_variables)
        finally:
            record.calls[id(opt)] = record.calls.get(id(opt), 0) + 1
            if inner is None or record.calls.get(id(inner), 0) == before:
                record.optimizers.add(id(opt))
                thread = threading.get_ident()
                for g, v in zip(grads, variables, strict=False):
                    i = index.get(_key(v))
                    if i is not None and g is not None:
                        record.applied_parts.setdefault(i, {})[thread] = g
                        record.applied_by[i] = id(opt)

    def gradient(tape: Any, target: Any, sources: Any, *args: Any, **kwargs: Any) -> Any:
        result = original_gradient(tape, target, sources, *args, **kwargs)
        try:
            flat_sources, flat_grads = tree.flatten(sources), tree.flatten(result)
        except Exception:  # noqa: BLE001 - an exotic structure: nothing recorded
            return result
        if len(flat_sources) == len(flat_grads):
            hit = False
            for v, g in zip(flat_sources, flat_grads, strict=True):
                i = index.get(_key(v))
                if i is not None:
                    hit = True
                    if g is not None:
                        record.taped_parts.setdefault(i, {})[threading.get_ident()] = g
            if hit:
                record.targets.append(target)
        return result

    BaseOptimizer.apply = apply  # type: ignore[method-assign]
    tf.GradientTape.gradient = gradient  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseOptimizer.apply = original_apply  # type: ignore[method-assign]
        tf.GradientTape.gradient = original_gradient  # type: ignore[method-assign]


def _float(value: Any) -> float | None:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(a.mean()) if a.size else None


def loss_from_logs(logs: Any) -> tuple[float | None, str]:
    """(loss, which log it is): "loss", else the sum of the logs whose name
    contains "loss" (a GAN's d_loss + g_loss); None when there is none."""
    if not isinstance(logs, dict):
        return None, ""
    if "loss" in logs:
        value = _float(logs["loss"])
        if value is not None:
            return value, "loss"
    keys = [k for k in logs if "loss" in str(k).lower()]
    values = [(k, _float(logs[k])) for k in keys]
    used = [(k, v) for k, v in values if v is not None]
    if not used:
        return None, ""
    return float(sum(v for _, v in used)), " + ".join(str(k) for k, _ in used)


def _sum_of_squares(g: Any) -> float:
    rows = summed_rows(g) if isinstance(g, tf.IndexedSlices) else g
    return 2.0 * float(tf.nn.l2_loss(tf.cast(rows, tf.float32)))


def _times(g: Any, factor: float) -> Any:
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(g.values * factor, g.indices, g.dense_shape)
    return g * factor


@dataclass
class OwnStepRun:
    """What probing through the model's own train_step measured."""

    metas: list[LayerMeta]
    series: list[tuple[StepResult, list[LayerFigures]]]
    disconnected: list[str]  # "layer/variable": no gradient and no update in any step
    loss_log: str  # the log the loss was read from (see loss_from_logs)
    notes: list[str]


class OwnStepProbe:
    """Runs the user's own train_step on the user's model, reading figures off it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.layers = probe_layers(model)
        self.metas = describe(self.layers)
        self.tvars = list(model.trainable_variables)
        self.index = {_key(v): i for i, v in enumerate(self.tvars)}
        owner: dict[int, int] = {}
        for i, layer in enumerate(self.layers):
            for v in own_variables(layer):
                owner[_key(v)] = i
        self.var_layer = np.array([owner.get(_key(v), -1) for v in self.tvars], dtype=np.int64)
        self.taps = ActivationTaps(self.layers, [m.activation for m in self.metas])
        self.optimizers = optimizers_of(model)
        self.never_moved = set(range(len(self.tvars)))  # no gradient, no update so far
        self.loss_logs: set[str] = set()
        self.tapped: list[int] = []
        self.used_optimizers: set[int] = set()  # ids of those that applied gradients
        # Mixed precision: the layers computing in float16 and the loss-scale
        # optimizer, if any (its gradients are reported unscaled, its skipped
        # steps as such: loss-scale-overflow; zeros as gradient-underflow).
        self.half = np.array([half_precision(layer) for layer in self.layers], dtype=bool)
        self.scaler = next((o for o in self.optimizers if loss_scale(o) is not None), None)
        self.precision = bool(self.half.any()) or self.scaler is not None
        # The strategy the model was built under (its step runs on its replicas).
        self.strategy: Any = getattr(model, "_distribute_strategy", None)

    def step(self, x: Any, y: Any, sw: Any, state: _State, triple: bool = False) -> StepResult:
        import keras

        # What Keras hands train_step: fit packs (x, y, sample_weight) without
        # the Nones (x alone when there is no y); train_on_batch always passes
        # the triple, Nones included.
        xt, yt, swt = to_tensors(x), to_tensors(y), to_tensors(sw)
        data = (xt, yt, swt) if triple else keras.utils.pack_x_y_sample_weight(xt, yt, swt)
        # Per-step losses, not running means since the first step: trackers
        # start each step afresh (they are restored with everything else).
        for metric in getattr(self.model, "metrics", []):
            try:
                metric.reset_state()
            except Exception:  # noqa: BLE001 - a metric that cannot reset keeps its mean
                pass
        before = [tf.identity(v.value) for v in self.tvars]
        # The scale this step's gradients carry (read before the step may change it).
        scale = float(loss_scale(self.scaler)) if self.scaler is not None else None
        record = _Record()
        start = time.perf_counter()
        with ExitStack() as stack:
            stack.enter_context(tf.variable_creator_scope(state.creator))
            stack.enter_context(self.taps.recording())
            stack.enter_context(_reading_gradients(record, self.index))
            try:
                if self.strategy is None:
                    logs = self.model.train_step(data)
                    tapped, sums, act_counts = self.taps.stats()
                    sums, act_counts = sums.numpy(), act_counts.numpy()
                else:
                    logs, (tapped, sums, act_counts) = self._replicated(data, stack)
            except Exception as exc:
                raise TrainStepFailed(exc) from exc
        record.finish()
        seconds = time.perf_counter() - start
        self.used_optimizers |= record.optimizers
        act = activation_rows(len(self.layers), tapped, sums, act_counts, self.metas)
        self.tapped = tapped
        n = len(self.tvars)
        grad_sq, weight_sq, update_sq = np.zeros(n), np.zeros(n), np.zeros(n)
        counts = np.zeros((4, n))  # zeros, float16 subnormals, non-finite, entries (precision)
        for i, (v, b) in enumerate(zip(self.tvars, before, strict=True)):
            weight_sq[i] = 2.0 * float(tf.nn.l2_loss(tf.cast(b, tf.float32)))
            g, computed = self._gradient(i, record, scale)
            if g is not None:
                grad_sq[i] = _sum_of_squares(g)
            if self.precision and computed is not None:
                counts[:, i] = precision_counts(
                    summed_rows(computed) if isinstance(computed, tf.IndexedSlices) else computed).numpy()
            update_sq[i] = 2.0 * float(tf.nn.l2_loss(tf.cast(v.value - b, tf.float32)))
            if g is not None or update_sq[i] > 0:
                self.never_moved.discard(i)
            if i not in record.applied and update_sq[i] == 0:
                update_sq[i] = np.nan  # not updated in this step: no ratio to report
        loss, used = loss_from_logs(logs)
        if loss is None and record.targets:
            loss = float(sum(float(tf.reduce_sum(tf.cast(t, tf.float32))) for t in record.targets))
            used = "what train_step() differentiated"
        if loss is None:
            loss, used = 0.0, ""
        self.loss_logs.add(used)
        precision: dict[str, Any] = {}
        if self.precision:
            rows = np.zeros((ROWS_PRECISION, n))
            rows[3:7] = counts
            rows[7] = np.nan if scale is None else scale
            precision = precision_fields(rows)
        return StepResult(
            loss=loss, data_loss=loss, reg_loss=0.0, seconds=seconds,
            grad_sq=grad_sq, weight_sq=weight_sq, update_sq=update_sq, act=act, **precision,
        )

    def _replicated(self, data: Any, stack: ExitStack) -> tuple[Any, tuple[list[int], np.ndarray, np.ndarray]]:
        """The step run as the user's fit runs it under its strategy: on every
        replica, each on its shard of the batch, inside the strategy's scope
        (an optimizer the step builds must be the strategy's). Returns the logs
        (averaged over the replicas, as Keras reports them) and the activation
        statistics of the whole batch (engine/replicas.py)."""
        strategy = self.strategy
        stats: list[tuple[list[int], np.ndarray, np.ndarray]] = []

        def replica_step(shard: Any) -> Any:
            self.taps.reset()  # (this replica's thread)
            logs = self.model.train_step(shard)
            tapped, sums, counts = self.taps.stats()
            stats.append((tapped, sums.numpy(), counts.numpy()))
            return logs

        stack.enter_context(strategy.scope())
        if strategy.num_replicas_in_sync > 1:
            data = distribute(strategy, data)
        logs = strategy.run(replica_step, args=(data,))
        logs = tree.map_structure(
            lambda v: np.mean([np.asarray(t) for t in strategy.experimental_local_results(v)], axis=0),
            logs)
        tapped = stats[0][0]
        sums = stats[0][1].copy()
        counts = stats[0][2].copy()
        for _, more_sums, more_counts in stats[1:]:
            sums[:, :3] += more_sums[:, :3]  # sums add up; alive units are the batch's already
            counts[:, 0] += more_counts[:, 0]  # elements add up; units do not
        return logs, (tapped, sums, counts)

    def _gradient(self, i: int, record: _Record, scale: float | None) -> tuple[Any, Any]:
        """(the gradient of variable i as the step's loss has it, the gradient as
        computed): they differ under a loss-scale optimizer, which hands its
        inner optimizer the unscaled gradients and, when they are not finite,
        skips the step (its inner optimizer then gets nothing)."""
        applied, taped = record.applied.get(i), record.taped.get(i)
        if applied is None or self.scaler is None or scale is None:
            g = applied if applied is not None else taped
            return g, g
        if record.applied_by.get(i) == id(self.scaler):  # skipped: the scaled gradients
            return _times(applied, 1.0 / scale), applied
        return applied, taped if taped is not None else _times(applied, scale)

    def figures(self, result: StepResult) -> list[LayerFigures]:
        return layer_figures(result, len(self.layers), self.var_layer, self.tapped, self.half)

    def disconnected(self) -> list[str]:
        names = []
        for i in sorted(self.never_moved):
            layer = int(self.var_layer[i])
            owner = self.metas[layer].name if layer >= 0 else "model"
            names.append(f"{owner}/{self.tvars[i].name}")
        return names


def probe_own_step(
    model: Any,
    batches: list[Any],
    steps: int,
    on_step: Callable[[int, StepResult, list[LayerFigures]], None] | None = None,
    triple: bool = False,
) -> OwnStepRun:
    """Run `steps` of the model's own train_step on the probe batches, in
    place, and put every variable back afterwards (also when a step fails).
    `triple`: the data comes from train_on_batch, which passes (x, y, sample_weight)."""
    probe = OwnStepProbe(model)
    state = _State(model, probe.optimizers)
    series: list[tuple[StepResult, list[LayerFigures]]] = []
    try:
        for step in range(steps):
            x, y, sw = batches[step % len(batches)]
            result = probe.step(x, y, sw, state, triple)
            figures = probe.figures(result)
            series.append((result, figures))
            if on_step is not None:
                on_step(step + 1, result, figures)
    finally:
        state.restore()
        state.close()
    logs = sorted(probe.loss_logs - {""})
    if logs:
        loss_log = logs[0] if len(logs) == 1 else ", ".join(logs)
        where = "" if loss_log.startswith("what") else "the log "
        note = f"loss per probe step: {where}{loss_log} returned by {type(model).__name__}.train_step()"
        if loss_log.startswith("what"):
            note = (
                f"loss per probe step: {loss_log} ({type(model).__name__}.train_step() "
                "returned no log named loss)"
            )
    else:
        loss_log = ""
        note = (
            f"{type(model).__name__}.train_step() returned no loss and took no gradient: "
            "the probe's losses are shown as 0"
        )
    used = len(probe.used_optimizers)
    notes = [
        f"probed through {type(model).__name__}.train_step(), run eagerly on your model "
        f"(gradients as handed to its {used} optimizer{'s' if used != 1 else ''}); every "
        "variable restored afterwards",
        note,
    ]
    if not all(math.isfinite(r.loss) for r, _ in series):
        notes.append("the step's loss was not finite in some probe steps")
    return OwnStepRun(probe.metas, series, probe.disconnected(), loss_log, notes)
