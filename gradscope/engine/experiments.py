"""Small experiments on the probe target (never the user's model): predictions
before/after, overfitting a tiny subset, a learning-rate sweep and a held-back
subset. Each starts from the user's weights and optimizer state and stays within
a number of steps planned from the model's nominal step cost (engine/cost.py),
so the same script gets the same experiments on any machine."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from keras.src import tree

from gradscope.checks.facts import ExperimentFacts, SweepPoint
from gradscope.engine.compiling import step_function
from gradscope.engine.cost import StepCost
from gradscope.engine.snapshot import VariableSnapshot
from gradscope.engine.training import BatchNormCalibration, forward_losses, to_tensors

OVERFIT_SAMPLES = 32
OVERFIT_STEPS = 150
SWEEP_STEPS = 50
HELDOUT_STEPS = 200
HELDOUT_MIN_SAMPLES = 128
BUDGET_REPLAY_MAX = 400  # replay the user's whole budget only when it is this short


def _take(struct: Any, idx: np.ndarray) -> Any:
    return tree.map_structure(lambda a: None if a is None else np.asarray(a)[idx], struct)


def _first(struct: Any) -> Any:
    return tree.flatten(struct)[0] if struct is not None else None


class Trainer:
    """A plain compiled train step and an inference call on the probe target,
    with the start state (the user's weights and optimizer state) kept to reset to."""

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss_fn: Any,
        start: VariableSnapshot | None = None,
        eager: bool = False,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.tvars = list(model.trainable_variables)
        # The start state: `start` when the caller holds one of these variables
        # (the in-place target's snapshot), else our own copy (on disk when large).
        self._own_start = start is None
        self._start = start or VariableSnapshot(list(model.variables) + list(optimizer.variables))
        self.eager = eager
        self._train = step_function(self._train_step, eager)
        self._predict = step_function(self._predict_step, eager)
        self._calibrate = BatchNormCalibration(model, eager)
        self._traced: set[tuple[int, str]] = set()
        self._lr_settable = _lr_variable(optimizer) is not None

    def _train_step(self, x: Any, y: Any, sw: Any) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss, _, _, scaled = forward_losses(self.model, self.optimizer, self.loss_fn, x, y, sw)
        if self.tvars:
            grads = tape.gradient(scaled, self.tvars)
            pairs = [(g, v) for g, v in zip(grads, self.tvars, strict=True) if g is not None]
            if pairs:
                self.optimizer.apply_gradients(pairs)
        return loss

    def _predict_step(self, x: Any, y: Any, sw: Any) -> tuple[Any, tf.Tensor]:
        y_pred = self.model(x, training=False)
        return y_pred, tf.cast(self.loss_fn(y, y_pred, sw), tf.float32)

    def reset(self, lr: float | None = None) -> None:
        """Back to the user's weights and optimizer state (optionally another lr)."""
        self._start.restore()
        if lr is not None:
            var = _lr_variable(self.optimizer)
            if var is not None:
                var.assign(lr)

    def close(self) -> None:
        """Drop the start state (if ours); the trainer is not used afterwards."""
        if self._own_start:
            self._start.close()

    def train(self, x: Any, y: Any, sw: Any) -> float:
        return float(self._train(*self._traced_for_any_batch(self._train, x, y, sw)).numpy())

    def evaluate(self, x: Any, y: Any, sw: Any = None) -> tuple[np.ndarray, float]:
        self._calibrate(x)
        y_pred, loss = self._predict(*self._traced_for_any_batch(self._predict, x, y, sw))
        return np.asarray(_first(y_pred)), float(loss.numpy())

    def _traced_for_any_batch(self, fn: Any, *args: Any) -> tuple[Any, ...]:
        """`args` as tensors, `fn` traced once for them with the batch size left
        open: the experiments use several batch sizes, and each trace of a deep
        model costs as much as Keras's own first step (a minute for 1000 layers)."""
        args = tuple(to_tensors(a) for a in args)
        if self.eager:
            return args
        specs = tree.map_structure(
            lambda t: None if t is None else tf.TensorSpec([None, *t.shape[1:]] if t.shape.rank else [], t.dtype),
            args,
        )
        key = (id(fn), repr(specs))
        if key not in self._traced:
            self._traced.add(key)
            try:
                fn.get_concrete_function(*specs)
            except Exception:  # noqa: BLE001 - a model that needs a static batch size: traced per call
                pass
        return args


def _lr_variable(optimizer: Any) -> Any:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = getattr(inner, "_learning_rate", None)
    return lr if hasattr(lr, "assign") else None


def user_learning_rate(optimizer: Any) -> float | None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        lr = inner.learning_rate
        return float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
    except Exception:  # noqa: BLE001 - callables and exotic schedules
        return None


def accuracy(pred: np.ndarray, y: Any, logits: bool | None) -> float | None:
    """Training-style accuracy for class labels; None for regression targets."""
    if y is None:
        return None
    y = np.asarray(y)
    pred = np.asarray(pred)
    if pred.ndim == 0 or y.size == 0:
        return None
    if pred.shape[-1] == 1 or pred.ndim == 1:
        threshold = 0.0 if logits else 0.5
        p = (pred.reshape(len(pred), -1)[:, 0] > threshold).astype(np.int64)
        t = y.reshape(len(y), -1)[:, 0]
        if not np.all((t == 0) | (t == 1)):
            return None
        return float(np.mean(p == t))
    if _multi_hot(y, pred.shape[-1]):
        # Multi-label (sigmoid units, several 1s per row): each unit is a yes/no
        # answer, as Keras's binary_accuracy counts them.
        threshold = 0.0 if logits else 0.5
        return float(np.mean((pred.reshape(y.shape) > threshold) == (y > 0.5)))
    p = pred.reshape(len(pred), -1, pred.shape[-1]).argmax(-1).ravel()
    if y.ndim == pred.ndim and y.shape[-1] == pred.shape[-1]:
        t = y.reshape(len(y), -1, y.shape[-1]).argmax(-1).ravel()
    else:
        t = y.reshape(-1)
        if not np.all(t == np.round(t)) or len(t) != len(p):
            return None
    return float(np.mean(p == t.astype(np.int64)))


def _multi_hot(y: np.ndarray, n_units: int) -> bool:
    """0/1 rows of n_units > 1 where some row has several 1s (or none)."""
    if n_units <= 1 or y.ndim < 2 or y.shape[-1] != n_units or y.size == 0:
        return False
    if not np.all((y == 0) | (y == 1)):
        return False
    return bool(np.any(y.reshape(-1, n_units).sum(-1) != 1))


def prior_loss(y: Any, n_units: int) -> float | None:
    """Cross-entropy (nats) of predicting each class's share for every sample:
    the loss a model reaches from the labels alone, without using the inputs."""
    if y is None:
        return None
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return None

    def entropy(shares: np.ndarray) -> float:
        shares = shares[shares > 0]
        return float(-(shares * np.log(shares)).sum())

    if _multi_hot(y, n_units):
        ones = y.reshape(-1, n_units).mean(0)
        return float(np.mean([entropy(np.array([p, 1 - p])) for p in ones]))
    shares = _class_shares(y, n_units)
    return None if shares is None else entropy(shares)


def _class_ids(y: np.ndarray, n_units: int) -> np.ndarray | None:
    """The class of each single-label target (one-hot rows or class ids), or None."""
    if n_units > 1 and y.ndim >= 2 and y.shape[-1] == n_units:
        return y.reshape(-1, n_units).argmax(-1)
    labels = y.reshape(-1)
    return labels if np.all(labels == np.round(labels)) else None


def _class_shares(y: np.ndarray, n_units: int) -> np.ndarray | None:
    """Each class's share of single-label targets (one-hot rows or class ids)."""
    labels = _class_ids(y, n_units)
    if labels is None:
        return None
    _, counts = np.unique(labels, return_counts=True)
    return counts / counts.sum()


def majority_prediction_share(pred: np.ndarray, y: Any, n_units: int,
                              logits: bool | None) -> float | None:
    """Share of the predictions that are the labels' most common class (single-label
    classes only): near 1, the model answers that class whatever the input."""
    y = np.asarray(y)
    pred = np.asarray(pred)
    if y.size == 0 or pred.ndim == 0 or _multi_hot(y, n_units):
        return None
    labels = _class_ids(y, n_units)
    if labels is None:
        return None
    if n_units > 1:
        predicted = pred.reshape(-1, pred.shape[-1]).argmax(-1)
    else:
        predicted = (pred.reshape(-1) > (0.0 if logits else 0.5)).astype(np.int64)
    if predicted.size != labels.size:
        return None
    values, counts = np.unique(labels, return_counts=True)
    return float(np.mean(predicted == values[counts.argmax()]))


def majority_rate(y: Any, n_units: int) -> float | None:
    if y is None:
        return None
    y = np.asarray(y)
    if _multi_hot(y, n_units):
        # Per unit, the share of its more common answer: what always answering
        # each unit's majority scores.
        rows = y.reshape(-1, n_units)
        ones = rows.mean(0)
        return float(np.mean(np.maximum(ones, 1 - ones)))
    shares = _class_shares(y, n_units)
    return None if shares is None else float(shares.max())


# The experiments are sized to take about this long on the CPU the step cost
# model was fitted on (engine/cost.py), whatever machine they run on: their
# step counts depend on the model's shape only, so the verdicts do too.
NOMINAL_SECONDS = 6.0
OVERFIT_SHARE = 0.35
SWEEP_SHARE = 0.3
HELDOUT_SHARE = 0.3
REPLAY_SHARE = 0.5
OVERFIT_MIN_STEPS = 10
SWEEP_MIN_STEPS = 3
HELDOUT_MIN_STEPS = 20
HELDOUT_BATCH = 32
LR_GRID = tuple(10.0**k for k in range(-5, 1))

# Which checks read which experiment: what a cut-short experiment costs the user.
EXPERIMENT_CHECKS: dict[str, tuple[str, ...]] = {
    "overfit": (
        "cannot-overfit", "collapsed-predictions", "loss-flat", "accuracy-at-baseline",
        "lr-too-high", "lr-too-low",
    ),
    "sweep": ("lr-too-high", "lr-too-low", "undertrained"),
    "heldout": ("labels-unpredictable", "accuracy-at-baseline"),
    "replay": ("undertrained",),
}


class _CutShort(Exception):
    """The wall-clock cap (--budget) ran out during an experiment."""


class _Clock:
    """The safety cap: experiments never depend on it, they are only stopped by it."""

    def __init__(self, cap_seconds: float) -> None:
        self.cap = cap_seconds
        self.start = time.perf_counter()

    def check(self) -> None:
        if time.perf_counter() - self.start > self.cap:
            raise _CutShort()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def planned_steps(
    cost: StepCost, eager: bool, n: int, probe_batch: int, lr_count: int, scale: float = 1.0
) -> dict[str, int]:
    """Steps per experiment from the model's nominal step cost (engine/cost.py):
    the same on every machine, fewer for big models."""

    def fit(share: float, batch: int) -> float:
        nominal = share * NOMINAL_SECONDS * scale
        return nominal / max(cost.step_seconds(max(1, batch), eager), 1e-6)

    overfit = int(min(OVERFIT_STEPS, max(OVERFIT_MIN_STEPS, fit(OVERFIT_SHARE, min(OVERFIT_SAMPLES, n)))))
    sweep = int(min(SWEEP_STEPS, fit(SWEEP_SHARE, probe_batch) / max(1, lr_count)))
    heldout = int(min(HELDOUT_STEPS, fit(HELDOUT_SHARE, HELDOUT_BATCH)))
    return {
        "overfit": overfit,
        "sweep": sweep if sweep >= SWEEP_MIN_STEPS else 0,
        "heldout": heldout if heldout >= HELDOUT_MIN_STEPS else 0,
    }


def replay_affordable(cost: StepCost, eager: bool, budget_steps: int, batch: int) -> bool:
    """The user's whole budget is replayed only when short (BUDGET_REPLAY_MAX) and
    nominally cheap (REPLAY_SHARE of NOMINAL_SECONDS)."""
    nominal = budget_steps * cost.step_seconds(batch, eager)
    return budget_steps <= BUDGET_REPLAY_MAX and nominal <= REPLAY_SHARE * NOMINAL_SECONDS


def run_experiments(
    trainer: Trainer,
    sample: tuple[Any, Any, Any],
    batches: list[Any],
    eval_before: tuple[np.ndarray, float],
    eval_set: tuple[Any, Any],
    cost: StepCost,
    logits_output: bool,
    classification: bool,
    budget_seconds: float = 60.0,
    seed: int = 0,
    budget_steps: int | None = None,
    batch_size: int = 32,
    scale: float = 1.0,
    on_start: Callable[[str, int, int], None] | None = None,
) -> ExperimentFacts:
    """Run each experiment for its planned steps (`planned_steps`); the probe
    steps have already moved the target, so every experiment starts with
    `trainer.reset()`. `on_start(name, i, n)` is told as experiment i of n
    starts (the UI's status line). `budget_seconds` is a safety cap only: an experiment it
    cuts is dropped whole (a half-run experiment would make the verdicts depend
    on the machine's speed) and named, with those after it, in `cut_short`."""
    clock = _Clock(budget_seconds)
    rng = np.random.default_rng(seed)
    xe, ye = eval_set
    xe_t, ye_t = to_tensors(xe), to_tensors(ye)
    pred_before, loss_before = eval_before
    pred_after, loss_after = trainer.evaluate(xe_t, ye_t)
    facts: dict[str, Any] = {
        "init_loss": loss_before,
        "loss_after_probe": loss_after,
        "pred_change": float(np.nanmax(np.abs(pred_after - pred_before))) if pred_before.size else 0.0,
        "pred_scale": float(np.nanmax(np.abs(pred_before))) if pred_before.size else 0.0,
        "pred_spread_after": _spread(pred_after),
        "n_units": int(pred_before.shape[-1]) if pred_before.ndim >= 2 else 1,
    }
    sx, sy, ssw = sample
    n = len(tree.flatten(sx)[0])
    user_lr = user_learning_rate(trainer.optimizer)
    facts["user_lr"] = user_lr
    grid: list[float] = []
    if trainer._lr_settable and user_lr is not None and user_lr > 0:
        grid = sorted(
            {lr for lr in LR_GRID if not math.isclose(lr, user_lr, rel_tol=1e-3)} | {user_lr}
        )
    probe_batch = len(tree.flatten(batches[0][0])[0]) if batches else batch_size
    plan = planned_steps(cost, trainer.eager, n, probe_batch, len(grid) or 1, scale)
    replay_bs = max(1, min(batch_size, n))
    experiments: list[tuple[str, Any]] = [("overfit", None)]
    if grid and plan["sweep"]:
        experiments.append(("sweep", None))
    if classification and n >= HELDOUT_MIN_SAMPLES and plan["heldout"]:
        experiments.append(("heldout", None))
    if budget_steps and replay_affordable(cost, trainer.eager, budget_steps, replay_bs):
        experiments.append(("replay", None))
    cut: list[str] = []
    for index, (name, _) in enumerate(experiments, start=1):
        if cut:
            cut.append(name)
            continue
        if on_start is not None:
            on_start(name, index, len(experiments))
        try:
            if name == "overfit":
                facts.update(_overfit(trainer, sx, sy, ssw, rng, n, plan["overfit"], clock,
                                      logits_output, classification, facts["n_units"]))
            elif name == "sweep":
                facts.update(_sweep(trainer, batches, grid, plan["sweep"], xe_t, ye_t, clock))
            elif name == "heldout":
                facts.update(_heldout(trainer, sx, sy, rng, n, plan["heldout"], clock,
                                      logits_output, facts["n_units"]))
            else:
                facts.update(_replay(trainer, sx, sy, rng, n, budget_steps or 0, replay_bs,
                                     loss_before, xe_t, ye_t, ye, clock, logits_output,
                                     classification, facts["n_units"]))
        except _CutShort:
            cut.append(name)
    trainer.reset()
    facts["cut_short"] = tuple(cut)
    facts["budget_cap"] = budget_seconds
    facts["seconds"] = clock.elapsed()
    return ExperimentFacts(**facts)


def _overfit(trainer: Trainer, sx: Any, sy: Any, ssw: Any, rng: np.random.Generator, n: int,
             steps: int, clock: _Clock, logits_output: bool, classification: bool,
             n_units: int) -> dict[str, Any]:
    """Overfit a tiny subset: a model that cannot fit 32 samples cannot learn."""
    idx = rng.permutation(n)[: min(OVERFIT_SAMPLES, n)]
    ox, oy = to_tensors(_take(sx, idx)), to_tensors(_take(sy, idx))
    osw = to_tensors(_take(ssw, idx)) if ssw is not None else None
    trainer.reset()
    pred0, loss0 = trainer.evaluate(ox, oy, osw)
    curve = [loss0]
    for i in range(steps):
        trainer.train(ox, oy, osw)
        if (i + 1) % max(1, steps // 10) == 0 or i == steps - 1:
            curve.append(trainer.evaluate(ox, oy, osw)[1])
        clock.check()
    pred_end, loss_end = trainer.evaluate(ox, oy, osw)
    oy_np = np.asarray(_first(_take(sy, idx)))
    return dict(
        overfit_samples=len(idx),
        overfit_steps=steps,
        overfit_loss_start=loss0,
        overfit_loss_end=loss_end,
        overfit_curve=tuple(float(c) for c in curve),
        overfit_acc_start=accuracy(pred0, oy_np, logits_output) if classification else None,
        overfit_acc_end=accuracy(pred_end, oy_np, logits_output) if classification else None,
        overfit_majority=majority_rate(oy_np, n_units) if classification else None,
        overfit_spread_end=_spread(pred_end),
    )


def _sweep(trainer: Trainer, batches: list[Any], grid: list[float], per_lr: int, xe_t: Any,
           ye_t: Any, clock: _Clock) -> dict[str, Any]:
    """Learning-rate sweep: same start, same optimizer state, only the lr differs."""
    probe_batches = [(to_tensors(b[0]), to_tensors(b[1]), to_tensors(b[2])) for b in batches]
    points: list[SweepPoint] = []
    for lr in grid:
        trainer.reset(lr=lr)
        for i in range(per_lr):
            x, y, sw = probe_batches[i % len(probe_batches)]
            trainer.train(x, y, sw)
            clock.check()
        _, loss = trainer.evaluate(xe_t, ye_t)
        points.append(SweepPoint(lr=lr, loss=loss if math.isfinite(loss) else float("inf")))
    return {"sweep": tuple(points), "sweep_steps": per_lr}


def _heldout(trainer: Trainer, sx: Any, sy: Any, rng: np.random.Generator, n: int, steps: int,
             clock: _Clock, logits_output: bool, n_units: int) -> dict[str, Any]:
    """Held-back subset: fit one part, evaluate on the other."""
    perm = rng.permutation(n)
    half = min(n // 2, 256)
    tr, ho = perm[:half], perm[half : 2 * half]
    tx, ty = to_tensors(_take(sx, tr)), to_tensors(_take(sy, tr))
    hx, hy = to_tensors(_take(sx, ho)), to_tensors(_take(sy, ho))
    ty_np, hy_np = np.asarray(_first(_take(sy, tr))), np.asarray(_first(_take(sy, ho)))
    bs = HELDOUT_BATCH
    trainer.reset()
    h_pred0, h_loss0 = trainer.evaluate(hx, hy)
    _, t_loss0 = trainer.evaluate(tx, ty)
    for i in range(steps):
        lo = (i * bs) % half
        sl = np.arange(lo, min(lo + bs, half))
        trainer.train(_take(tx, sl), _take(ty, sl), None)
        clock.check()
    t_pred, t_loss = trainer.evaluate(tx, ty)
    h_pred, h_loss = trainer.evaluate(hx, hy)
    return dict(
        heldout_samples=half,
        heldout_steps=steps,
        heldout_train_acc=accuracy(t_pred, ty_np, logits_output),
        heldout_acc_start=accuracy(h_pred0, hy_np, logits_output),
        heldout_acc=accuracy(h_pred, hy_np, logits_output),
        heldout_majority=majority_rate(hy_np, n_units),
        heldout_train_loss=(t_loss0, t_loss),
        heldout_loss=(h_loss0, h_loss),
        heldout_prior_loss=prior_loss(hy_np, n_units),
        heldout_pred_majority=majority_prediction_share(h_pred, hy_np, n_units, logits_output),
        heldout_train_pred_majority=majority_prediction_share(
            t_pred, ty_np, n_units, logits_output
        ),
    )


def _replay(trainer: Trainer, sx: Any, sy: Any, rng: np.random.Generator, n: int,
            budget_steps: int, bs: int, loss_before: float, xe_t: Any, ye_t: Any, ye: Any,
            clock: _Clock, logits_output: bool, classification: bool,
            n_units: int) -> dict[str, Any]:
    """The user's own budget (epochs x steps), replayed on the sample at their
    learning rate: is it over before the model has learned?"""
    trainer.reset()
    checkpoints = sorted({max(1, round(budget_steps * f)) for f in (0.25, 0.5, 0.75, 1.0)})
    curve = [loss_before]
    perm = rng.permutation(n)
    for i in range(1, budget_steps + 1):
        lo = ((i - 1) * bs) % n
        sl = perm[np.arange(lo, lo + bs) % n]
        trainer.train(to_tensors(_take(sx, sl)), to_tensors(_take(sy, sl)), None)
        if i in checkpoints:
            curve.append(trainer.evaluate(xe_t, ye_t)[1])
        clock.check()
    pred_end, _ = trainer.evaluate(xe_t, ye_t)
    ye_np = np.asarray(_first(ye))
    return dict(
        budget_steps=budget_steps,
        budget_curve=tuple(float(c) for c in curve),
        budget_acc_end=accuracy(pred_end, ye_np, logits_output) if classification else None,
        eval_majority=majority_rate(ye_np, n_units) if classification else None,
    )


def _spread(pred: np.ndarray) -> float:
    """Largest standard deviation across samples of any output unit."""
    if pred.ndim == 0 or len(pred) < 2:
        return float("nan")
    flat = pred.reshape(len(pred), -1).astype(np.float64)
    return float(np.nanmax(flat.std(axis=0)))
