"""The watch: per-layer figures from the user's own training steps, for the whole run.

After the diagnosis, the user's `fit()` runs Keras's own compiled step on every
batch, except every K-th one (the *watched* steps), which runs the same
`train_step` of the model, traced with gradscope's measures around it:
activation taps on every layer call, the optimizer's update measured
(`probe.measured_apply`: gradient, weight and update norms), the step's own
loss. So the figures come from that step's own forward and backward pass, not
from a second pass, and the step updates the weights exactly as Keras's step
would: the measures only add reads (test_watch_parity.py: the final weights and
the loss history are bit-for-bit those of a plain fit, deterministic ops on).

How it hooks in: Keras's `fit` calls `model.train_function(iterator)` once per
step (per `steps_per_execution` steps) and builds it only when it is None, so
the watch sets `model.train_function` to `WatchedTrain`, which calls Keras's
own function or the watched one (both built by Keras's `_make_function`, so
`jit_compile`, `steps_per_execution`, the distribution strategy and the data
iterator are handled as Keras handles them). A callback added to the fit gives
epochs and the epoch logs. The plain steps cost one Python call more
(scripts/bench_watch.py).

The non-finite loss: Keras's logged loss is the epoch's running mean, which
stays non-finite once one step's loss was. Each step's logged loss tensor is
kept (not read: reading it would wait for the step), and at each watched step
and epoch end the newest is read; if it is non-finite, a bisection over the
kept ones finds the first non-finite step, and the next step is watched to show
where the non-finite values are.
"""

from __future__ import annotations

import inspect
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gradscope.engine import layer_calls, probe, taps
from gradscope.engine.layers import describe, own_variables, probe_layers
from gradscope.engine.probe import (
    StepResult,
    activation_rows,
    half_precision,
    layer_figures,
    loss_scale,
    measured_apply,
    precision_fields,
)
from gradscope.engine.taps import ActivationTaps
from gradscope.engine.to_facts import layer_rows
from gradscope.events import (
    EpochEnded,
    Event,
    Histogram,
    LayerHistogram,
    LayerHistograms,
    LayerStats,
    PhaseChanged,
    StepStats,
    TrainProgress,
    VerdictIssued,
)
from gradscope.internal import lost
from gradscope.runner import pass_through
from gradscope.verdicts import Verdict

# The default cadence: every DEFAULT_EVERY-th step is watched. A watched step
# costs about 1.5-3x a plain one (its measures, reading them, the events and
# their outputs; scripts/bench_watch.py), so 1/100 keeps the watch within 2 % of
# the training's time. The first step of the training is always watched.
DEFAULT_EVERY = 100
# TrainProgress (the header's epoch, step, rate, ETA) this many times per cadence.
PROGRESS_PER_WATCH = 10
# Weight histograms every this many watched steps (and at the training's end).
HISTOGRAM_EVERY = 10
HISTOGRAM_BINS = 24
HISTOGRAM_SAMPLE = 4096
# Logged losses kept unread between two checks, at most.
PENDING_MAX = 256


class Watch:
    """Watches the user's fits of one model (a second fit() goes on counting steps)."""

    def __init__(
        self,
        model: Any,
        emit: Callable[[Event], None],
        every: int | None = None,
        checks: Any = None,
        diagnosed: Sequence[Verdict] = (),
    ) -> None:
        self.model = model
        self.emit = emit
        # The causes the diagnosis found (errors and warnings): a problem the
        # training shows later is most likely theirs (a NaN at epoch 7 after
        # lr-too-high), so it ranks after them, as a symptom.
        self.diagnosed = [v.check for v in diagnosed
                          if v.kind == "cause" and v.severity in ("error", "warning")]
        self.every = max(1, int(every or DEFAULT_EVERY))
        self.progress_every = max(1, self.every // PROGRESS_PER_WATCH)
        self.checks = checks  # a TrainingChecks (checks/training.py), or None
        self.layers = probe_layers(model)
        self.metas = describe(self.layers)
        self.taps = ActivationTaps(self.layers, [m.activation for m in self.metas])
        self._owner = {id(v): i for i, layer in enumerate(self.layers) for v in own_variables(layer)}
        # Mixed precision: per layer, whether it computes in float16.
        self.half = np.array([half_precision(layer) for layer in self.layers], dtype=bool)
        # Filled while the watched step is traced.
        self._traced: dict[str, Any] = {}
        self._first_traced: dict[str, Any] | None = None
        self._local = threading.local()  # the trace this thread runs (hooks)
        self.step = 0  # global step
        self.fit = 0
        self.epoch = 0
        self.epochs: int | None = None
        self.batch = 0
        self.batches: int | None = None
        self.started = time.perf_counter()
        self.next_watch = 1
        self.next_progress = self.progress_every
        self.watched = 0
        self.force_next = False
        self.nonfinite_step: int | None = None
        self._pending: list[tuple[int, int, Any]] = []  # (step, epoch, logged loss tensor)
        self._function: WatchedTrain | None = None
        self._failed = False

    # -- set-up ---------------------------------------------------------------
    def install(self) -> None:
        """Make the model's train_function the watched one (again, after a recompile)."""
        model = self.model
        if self._function is not None and model.train_function is self._function:
            return
        if model.train_function is None:
            model.make_train_function()
        plain = model.train_function
        watched = model._make_function(self._watched_step)  # noqa: SLF001 - Keras's own wrapping
        self._function = WatchedTrain(self, plain, watched)
        model.train_function = self._function

    def begin_fit(self, epochs: int | None, steps: bool = True) -> WatchCallback:
        """A fit() of the model starts: count it, install the watched steps (unless
        `steps` is False: --no-watch keeps the epochs only), return the callback
        to add to it."""
        self.fit += 1
        self.epochs = epochs
        self.epoch = self.batch = 0
        self.batches = None
        self.started = time.perf_counter()
        if steps:
            self.install()
        return WatchCallback(self, counting=not steps)

    # -- the watched step (traced) ----------------------------------------------
    @contextmanager
    def hooks(self) -> Iterator[None]:
        """Around a call of the watched function, in the caller's thread: the taps
        and hooks its step reads while traced. (Entered here, not in the step: a
        strategy with several replicas traces the step once per replica, in
        threads that take turns, and patches entered and left by each would
        unwind out of order. What a trace records is kept per thread.)"""
        model = self.model
        precision = bool(self.half.any())
        self._first_traced = None
        with self.taps.recording(), _measuring_update(model, self._trace_state, precision), \
                _capturing_loss(model, self._trace_state):
            yield

    def _trace_state(self) -> dict[str, Any] | None:
        """What the watched step traced in this thread records (None: no trace here)."""
        return getattr(self._local, "traced", None)

    def _watched_step(self, data: Any) -> tuple[Any, tuple[tf.Tensor, ...]]:
        model = self.model
        traced: dict[str, Any] = {}
        self._local.traced = traced
        self.taps.reset()
        try:
            logs = model.train_step(data)
        finally:
            self._local.traced = None
        tapped, act_sums, act_counts = self.taps.stats()
        variables = traced.get("variables", [])
        traced["tapped"] = tapped
        traced["var_layer"] = np.array([self._owner.get(id(v), -1) for v in variables], dtype=np.int64)
        if self._first_traced is None:
            # Every replica traces the same step; the host reads the first's layout.
            self._first_traced = self._traced = traced
        squares = traced.get("squares")
        if squares is None:  # the step applied no update through the model's optimizer
            squares = tf.zeros((3, 0))
        loss = traced.get("loss")
        if loss is None and isinstance(logs, dict) and logs.get("loss") is not None:
            loss = logs["loss"]  # an own train_step with its own tracker: what it logs
        traced["loss_known"] = loss is not None
        loss = tf.constant(float("nan")) if loss is None else tf.cast(tf.reduce_mean(loss), tf.float32)
        return logs, (loss, squares, act_sums, act_counts)

    # -- per step (host) ----------------------------------------------------------
    def after_plain(self, step: int, logs: Any) -> None:
        loss = logs.get("loss") if isinstance(logs, dict) else None
        if loss is not None:
            pending = self._pending
            pending.append((step, self.epoch, loss))
            if len(pending) > PENDING_MAX:
                self.check_nonfinite()

    def after_watched(self, step: int, outputs: Any) -> Any:
        logs, stats = outputs
        try:
            self.watched += 1
            self.check_nonfinite()
            loss_t, squares, act_sums, act_counts = stats
            loss = float(loss_t.numpy())
            known = self._traced.get("loss_known", True)
            squares = squares.numpy()
            traced = self._traced
            n = len(self.layers)
            if squares.shape[1] == 0:
                squares = np.full((3, len(traced.get("var_layer", ()))), np.nan)
            act = activation_rows(n, traced.get("tapped", []), act_sums.numpy(), act_counts.numpy(),
                                  self.metas)
            result = StepResult(loss=loss, data_loss=loss, reg_loss=0.0, seconds=0.0,
                                grad_sq=squares[0], weight_sq=squares[1], update_sq=squares[2], act=act,
                                **precision_fields(squares))
            var_layer = traced.get("var_layer", np.zeros(0, dtype=np.int64))
            if len(var_layer) != squares.shape[1]:
                var_layer = np.full(squares.shape[1], -1, dtype=np.int64)
            figures = layer_figures(result, n, var_layer, traced.get("tapped", []), self.half)
            if known and not math.isfinite(loss) and self.nonfinite_step is None:
                self._nonfinite_at(step, self.epoch)
            self.send(StepStats("train", step, loss if known else None, extra={"epoch": float(self.epoch)}))
            self.send(LayerStats("train", step, layer_rows(self.metas, figures)))
            if self.watched % HISTOGRAM_EVERY == 1 or HISTOGRAM_EVERY == 1:
                self.send_histograms(step)
        except Exception as exc:  # noqa: BLE001 - the watch must never break the user's training
            self.failed("the per-layer figures of a watched step", exc)
        return logs

    def check_nonfinite(self) -> None:
        """Read the newest logged loss; if non-finite, find the first non-finite step."""
        pending = self._pending
        if not pending:
            return
        if self.nonfinite_step is not None:
            pending.clear()
            return
        if _finite(pending[-1][2]):
            pending.clear()
            return
        lo, hi = 0, len(pending) - 1  # pending[hi] is non-finite; find the first one
        while lo < hi:
            mid = (lo + hi) // 2
            if _finite(pending[mid][2]):
                lo = mid + 1
            else:
                hi = mid
        step, epoch, _ = pending[lo]
        pending.clear()
        self._nonfinite_at(step, epoch)

    def _nonfinite_at(self, step: int, epoch: int) -> None:
        self.nonfinite_step = step
        self.force_next = True  # the next step shows where the non-finite values are
        self.send(StepStats("train", step, float("nan"), extra={"epoch": float(epoch)}))

    def progress(self) -> None:
        self.next_progress = self.step + self.progress_every
        self.send(TrainProgress(step=self.step, epoch=self.epoch, epochs=self.epochs, batch=self.batch,
                                batches=self.batches, seconds=time.perf_counter() - self.started,
                                fit=self.fit))

    def send_histograms(self, step: int) -> None:
        """Weight histograms of every layer (its largest trainable variable), on an
        evenly strided sample: what the drill-down and TensorBoard show over training."""
        items = []
        for meta, layer in zip(self.metas, self.layers, strict=True):
            owned = [v for v in own_variables(layer) if v.trainable]
            biggest = max(owned, key=lambda v: int(np.prod(v.shape)), default=None)
            items.append(LayerHistogram(meta.name, weights=None if biggest is None else _histogram(biggest)))
        self.send(LayerHistograms("train", step, tuple(items)))

    def send(self, event: Event) -> None:
        """Emit, and give the checks on the training their look at it."""
        self.emit(event)
        if self.checks is None:
            return
        try:
            found = self.checks.handle(event)
        except Exception as exc:  # noqa: BLE001 - a broken check must not stop the watch
            self.checks = None
            lost(self.emit, "the checks on your training", exc)
            return
        for verdict in found:
            self.emit(VerdictIssued(self._ranked(verdict)))

    def _ranked(self, verdict: Verdict) -> Verdict:
        if not self.diagnosed or verdict.kind != "cause":
            return verdict
        cause = self.diagnosed[0]
        # (as checks/arbitration.py words a cause that another explains)
        clause = (f" This follows from '{cause}' (reported above): it was found before the "
                  "training began; fix that first.")
        return replace(verdict, kind="symptom", message=verdict.message.rstrip() + clause,
                       evidence={**verdict.evidence, "explained_by": cause})

    def finish_checks(self) -> None:
        """The fit ended: the checks say what waited for a step that never came."""
        if self.checks is not None:
            for verdict in self.checks.finish():
                self.emit(VerdictIssued(self._ranked(verdict)))

    def failed(self, what: str, exc: BaseException) -> None:
        if not self._failed:  # said once
            self._failed = True
            lost(self.emit, what, exc)


class WatchedTrain:
    """`model.train_function` while watched: Keras's own function, or the watched
    one every K-th step. Keras's fit and train_on_batch call it as they would theirs."""

    def __init__(self, watch: Watch, plain: Any, watched: Any) -> None:
        self.watch = watch
        self.plain = plain
        self.watched = watched

    def __call__(self, iterator: Any) -> Any:
        w = self.watch
        # One call runs steps_per_execution steps, fewer at an epoch's end (when
        # the epoch's length is unknown, the epoch's end corrects the count).
        n = w.model.steps_per_execution
        if w.batches and 0 < w.batches - w.batch < n:
            n = w.batches - w.batch
        step = w.step + n
        if (step >= w.next_watch or w.force_next) and self.watched is not None:
            # A Python iterator (train_on_batch's one batch) is read in Python
            # before the step is traced: keep what the watched step takes, so
            # Keras's step gets it back if the watched one fails.
            taken: list[Any] = []
            python_iterator = not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator))
            try:
                with w.hooks():
                    outputs = self.watched(_kept(iterator, taken) if python_iterator else iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                raise  # an epoch's end passes through
            except Exception as exc:  # noqa: BLE001 - decided below: the user's error, or ours
                # Keras's own step decides: if it fails too, the error is the
                # user's (raised as Keras raises it); if not, the watched step
                # could not run this model (ours): the training goes on unwatched.
                logs = self.plain(itertools.chain(taken, iterator) if python_iterator else iterator)
                self.watched = None
                w.failed("the watched steps of your training (it goes on unwatched)", exc)
                w.batch += step - w.step
                w.step = step
                return logs
            w.step, w.batch = step, w.batch + (step - w.step)
            w.force_next = False
            w.next_watch = step + w.every
            logs = w.after_watched(step, outputs)
        else:
            logs = self.plain(iterator)
            w.batch += step - w.step
            w.step = step
            w.after_plain(step, logs)
        if step >= w.next_progress:
            w.progress()
        return logs


def _kept(iterator: Any, taken: list[Any]) -> Iterator[Any]:
    """`iterator`'s items, each also kept in `taken`."""
    for item in iterator:
        taken.append(item)
        yield item


class WatchCallback(keras.callbacks.Callback):
    """Epochs of a watched fit: their logs, the learning rate, progress, the phase line."""

    def __init__(self, watch: Watch, counting: bool = False) -> None:
        super().__init__()
        self.watch = watch
        # No watched steps (--no-watch): the global step is counted per epoch.
        self.counting = counting

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        steps = (self.params or {}).get("steps")
        self.watch.batches = int(steps) if isinstance(steps, int) and steps > 0 else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.watch.epoch = epoch + 1
        self.watch.batch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        w = self.watch
        try:
            w.check_nonfinite()
            if self.counting and w.batches:
                w.step += w.batches
                w.batch = w.batches
            elif w.batches and w.batch > w.batches:
                # steps_per_execution: the epoch's last call ran fewer steps than counted
                w.step -= w.batch - w.batches
                w.batch = w.batches
            if w.batches is None and w.batch > 0:  # an unsized dataset: its first epoch tells
                w.batches = w.batch
            numbers = {key: _number(value) for key, value in (logs or {}).items()}
            w.send(EpochEnded(epoch=epoch + 1, step=w.step, logs=numbers,
                              learning_rate=_learning_rate(self.model),
                              seconds=time.perf_counter() - w.started, fit=w.fit))
            w.progress()
            w.emit(PhaseChanged("train", step=epoch + 1, total=w.epochs))
        except Exception as exc:  # noqa: BLE001 - monitoring must never break the user's training
            w.failed(f"the figures of your training's epoch {epoch + 1}", exc)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        w = self.watch
        try:
            w.check_nonfinite()
            w.send_histograms(w.step)
            w.finish_checks()
        except Exception as exc:  # noqa: BLE001
            w.failed("the figures of your training's end", exc)


@contextmanager
def _measuring_update(model: Any, state: Callable[[], dict[str, Any] | None],
                      precision: bool = False) -> Iterator[None]:
    """While the watched step is traced, the model's optimizer's apply_gradients
    measures the update it applies (the first call only: one update per step).
    With a LossScaleOptimizer the gradient norms are unscaled and a step it
    skips (overflow) is told apart; `precision` also counts the gradients'
    zeros and float16 subnormals (a mixed precision model)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        yield
        return
    original = optimizer.apply_gradients

    def apply_gradients(grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
        traced = state()
        if traced is None or "squares" in traced or args or kwargs:
            return original(grads_and_vars, *args, **kwargs)
        pairs = list(grads_and_vars)
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        traced["variables"] = variables
        # (the scale the loss carried: read before the update may change it)
        scale = loss_scale(optimizer)
        traced["squares"] = measured_apply(original, grads, variables, scale,
                                           precision or scale is not None)
        return None

    with _instance_attribute(optimizer, "apply_gradients", apply_gradients):
        yield


@contextmanager
def _capturing_loss(model: Any, state: Callable[[], dict[str, Any] | None]) -> Iterator[None]:
    """The step's own loss, as train_step gives it to the loss tracker (Keras's
    logged loss is the epoch's running mean of these)."""
    tracker = getattr(model, "_loss_tracker", None)
    if tracker is None:
        yield
        return
    original = tracker.update_state

    def update_state(values: Any, *args: Any, **kwargs: Any) -> Any:
        traced = state()
        if traced is not None:
            traced.setdefault("loss", values)
        return original(values, *args, **kwargs)

    with _instance_attribute(tracker, "update_state", update_state):
        yield


@contextmanager
def _instance_attribute(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Shadow a method on one object only (Keras's attribute tracking bypassed)."""
    had = name in vars(obj)
    saved = vars(obj).get(name)
    object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        if had:
            object.__setattr__(obj, name, saved)
        else:
            object.__delattr__(obj, name)


# The user's training runs through these; an error in the user's step is theirs.
pass_through(__file__, "__call__", "_watched_step", "apply_gradients", "update_state")
pass_through(layer_calls.__file__, "watched")
pass_through(taps.__file__, "tapped_call")
pass_through(probe.__file__, "measured_apply")


def _finite(tensor: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(tensor))))
    except (TypeError, ValueError):
        return True


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):  # a metric that is not one number
        return None


def _learning_rate(model: Any) -> float | None:
    optimizer: Any = getattr(model, "optimizer", None)
    try:
        return float(np.asarray(optimizer.learning_rate))  # a schedule's current value
    except Exception:  # noqa: BLE001 - an optimizer without one number for it
        return None


def _histogram(variable: Any) -> Histogram:
    flat = tf.reshape(variable.value, [-1])
    size = int(flat.shape[0]) if flat.shape[0] is not None else int(tf.size(flat))
    stride = max(1, size // HISTOGRAM_SAMPLE)
    values = np.asarray(flat[::stride], dtype=np.float64)
    finite = values[np.isfinite(values)]
    nonfinite = int(values.size - finite.size)
    if finite.size == 0:
        return Histogram(0.0, 0.0, (0,) * HISTOGRAM_BINS, nonfinite=nonfinite, total=int(values.size))
    lo, hi = float(finite.min()), float(finite.max())
    counts, _ = np.histogram(finite, bins=HISTOGRAM_BINS, range=(lo, hi if hi > lo else lo + 1e-12))
    return Histogram(lo, hi, tuple(int(c) for c in counts), nonfinite=nonfinite, total=int(values.size))


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


def fit_argument(fit: Any, model: Any, args: tuple, kwargs: dict, name: str, default: Any = None) -> Any:
    """One argument of a fit() call as Keras would see it (`default` when not given)."""
    try:
        bound = inspect.signature(fit).bind(model, *args, **kwargs)
    except TypeError:
        return default
    return bound.arguments.get(name, default)


def user_patience(callbacks: Any) -> int | None:
    """The patience of the user's EarlyStopping / ReduceLROnPlateau, if any (the
    smallest): the window over which their own schedule judges a plateau."""
    found = []
    for callback in list(callbacks or []):
        patience = getattr(callback, "patience", None)
        if isinstance(callback, (keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau)) \
                and isinstance(patience, int):
            found.append(patience)
    return min(found) if found else None
