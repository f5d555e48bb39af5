"""Small experiments on the probe target (never the user's model): predictions
before/after, overfitting a tiny subset, a learning-rate sweep and a held-back
subset. Each starts from the user's weights and optimizer state and stays within
a wall-clock budget scaled by the measured step time."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import tensorflow as tf
from keras.src import tree

from gradscope.checks.facts import ExperimentFacts, SweepPoint
from gradscope.engine.compiling import step_function
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


def _class_shares(y: np.ndarray, n_units: int) -> np.ndarray | None:
    """Each class's share of single-label targets (one-hot rows or class ids)."""
    if n_units > 1 and y.ndim >= 2 and y.shape[-1] == n_units:
        labels = y.reshape(-1, n_units).argmax(-1)
    else:
        labels = y.reshape(-1)
        if not np.all(labels == np.round(labels)):
            return None
    _, counts = np.unique(labels, return_counts=True)
    return counts / counts.sum()


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


def run_experiments(
    trainer: Trainer,
    sample: tuple[Any, Any, Any],
    batches: list[Any],
    eval_before: tuple[np.ndarray, float],
    eval_set: tuple[Any, Any],
    step_seconds: float,
    logits_output: bool,
    classification: bool,
    budget_seconds: float = 6.0,
    seed: int = 0,
    budget_steps: int | None = None,
    batch_size: int = 32,
) -> ExperimentFacts:
    """Run what fits in `budget_seconds`; the probe steps have already moved the
    target, so every experiment starts with `trainer.reset()`."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    xe, ye = eval_set
    xe_t, ye_t = to_tensors(xe), to_tensors(ye)
    pred_before, loss_before = eval_before
    pred_after, loss_after = trainer.evaluate(xe_t, ye_t)
    step = max(step_seconds, 1e-4)
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

    def left() -> float:
        return budget_seconds - (time.perf_counter() - start)

    # 1. Overfit a tiny subset: a model that cannot fit 32 samples cannot learn.
    idx = rng.permutation(n)[: min(OVERFIT_SAMPLES, n)]
    ox, oy = to_tensors(_take(sx, idx)), to_tensors(_take(sy, idx))
    osw = to_tensors(_take(ssw, idx)) if ssw is not None else None
    steps = int(min(OVERFIT_STEPS, max(10, 0.35 * budget_seconds / step)))
    trainer.reset()
    pred0, loss0 = trainer.evaluate(ox, oy, osw)
    curve = [loss0]
    for i in range(steps):
        trainer.train(ox, oy, osw)
        if (i + 1) % max(1, steps // 10) == 0 or i == steps - 1:
            curve.append(trainer.evaluate(ox, oy, osw)[1])
        if left() < 0.5 * budget_seconds and i >= 20:
            break
    pred_end, loss_end = trainer.evaluate(ox, oy, osw)
    oy_np = np.asarray(_first(_take(sy, idx)))
    facts.update(
        overfit_samples=len(idx),
        overfit_steps=i + 1,
        overfit_loss_start=loss0,
        overfit_loss_end=loss_end,
        overfit_curve=tuple(float(c) for c in curve),
        overfit_acc_start=accuracy(pred0, oy_np, logits_output) if classification else None,
        overfit_acc_end=accuracy(pred_end, oy_np, logits_output) if classification else None,
        overfit_majority=majority_rate(oy_np, facts["n_units"]) if classification else None,
        overfit_spread_end=_spread(pred_end),
    )

    # 2. Learning-rate sweep: same start, same optimizer state, only the lr differs.
    user_lr = user_learning_rate(trainer.optimizer)
    points: list[SweepPoint] = []
    if trainer._lr_settable and user_lr is not None and user_lr > 0 and left() > 0.25 * budget_seconds:
        grid = sorted({10.0**k for k in range(-5, 1) if not math.isclose(10.0**k, user_lr, rel_tol=1e-3)} | {user_lr})
        per_lr = min(SWEEP_STEPS, int(0.3 * budget_seconds / step / len(grid)))
        if per_lr >= 3:
            probe_batches = [(to_tensors(b[0]), to_tensors(b[1]), to_tensors(b[2])) for b in batches]
            for lr in grid:
                trainer.reset(lr=lr)
                for i in range(per_lr):
                    x, y, sw = probe_batches[i % len(probe_batches)]
                    trainer.train(x, y, sw)
                _, loss = trainer.evaluate(xe_t, ye_t)
                points.append(SweepPoint(lr=lr, loss=loss if math.isfinite(loss) else float("inf")))
            facts["sweep_steps"] = per_lr
    facts["sweep"] = tuple(points)
    facts["user_lr"] = user_lr

    # 3. Held-back subset: fit one part, evaluate on the other.
    if classification and n >= HELDOUT_MIN_SAMPLES and left() > 0.2 * budget_seconds:
        perm = rng.permutation(n)
        half = min(n // 2, 256)
        tr, ho = perm[:half], perm[half : 2 * half]
        tx, ty = to_tensors(_take(sx, tr)), to_tensors(_take(sy, tr))
        hx, hy = to_tensors(_take(sx, ho)), to_tensors(_take(sy, ho))
        ty_np, hy_np = np.asarray(_first(_take(sy, tr))), np.asarray(_first(_take(sy, ho)))
        bs = 32
        trainer.reset()
        steps = int(min(HELDOUT_STEPS, max(20, 0.9 * left() / step)))
        h_pred0, h_loss0 = trainer.evaluate(hx, hy)
        _, t_loss0 = trainer.evaluate(tx, ty)
        for i in range(steps):
            lo = (i * bs) % half
            sl = np.arange(lo, min(lo + bs, half))
            trainer.train(_take(tx, sl), _take(ty, sl), None)
            if left() < 0.05 * budget_seconds:
                break
        t_pred, t_loss = trainer.evaluate(tx, ty)
        h_pred, h_loss = trainer.evaluate(hx, hy)
        facts.update(
            heldout_samples=half,
            heldout_steps=i + 1,
            heldout_train_acc=accuracy(t_pred, ty_np, logits_output),
            heldout_acc_start=accuracy(h_pred0, hy_np, logits_output),
            heldout_acc=accuracy(h_pred, hy_np, logits_output),
            heldout_majority=majority_rate(hy_np, facts["n_units"]),
            heldout_train_loss=(t_loss0, t_loss),
            heldout_loss=(h_loss0, h_loss),
            heldout_prior_loss=prior_loss(hy_np, facts["n_units"]),
        )
    # 4. The user's own budget (epochs x steps), replayed on the sample at their
    # learning rate, when it is short enough to afford: is it over before the
    # model has learned?
    if budget_steps and budget_steps <= BUDGET_REPLAY_MAX and budget_steps * step < left():
        bs = max(1, min(batch_size, n))
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
        pred_end, _ = trainer.evaluate(xe_t, ye_t)
        ye_np = np.asarray(_first(ye))
        facts.update(
            budget_steps=budget_steps,
            budget_curve=tuple(float(c) for c in curve),
            budget_acc_end=accuracy(pred_end, ye_np, logits_output) if classification else None,
            eval_majority=majority_rate(ye_np, facts["n_units"]) if classification else None,
        )
    trainer.reset()
    facts["seconds"] = time.perf_counter() - start
    return ExperimentFacts(**facts)


def _spread(pred: np.ndarray) -> float:
    """Largest standard deviation across samples of any output unit."""
    if pred.ndim == 0 or len(pred) < 2:
        return float("nan")
    flat = pred.reshape(len(pred), -1).astype(np.float64)
    return float(np.nanmax(flat.std(axis=0)))
