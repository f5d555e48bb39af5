"""Checks on the user's own training, as the watch sees it (engine/watch.py):
problems that start after the probe, while the user's fit() runs.

The watch feeds a `TrainingChecks` every event it emits during the training
(TrainProgress, the watched steps' StepStats and LayerStats, EpochEnded,
LayerHistograms); `TrainingChecks.handle` folds each into `TrainingFacts`
and runs the training checks on them, each declared once below with @check
(phase "training", checks/registry.py) like every other check. Each ID fires
at most once per run, and its evidence names the global `step` and the
`epoch` where it was seen.

Pure Python: no TensorFlow, no Textual. The folded state stays small whatever
the run's length (the first and the latest watched steps, one smoothed loss
point per few watched steps, one record per epoch), and a check reads it in
time linear in the layers or the epochs.

The references: the first watched steps of each fit (the watch always watches
the first step of the training), never the probe (it ran on a clone, on other
batches); a second fit() (fine-tuning after unfreezing, a new schedule) starts
its own references.
"""

from __future__ import annotations

import math
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import median

from gradscope.checks.facts import ModelFacts
from gradscope.checks.registry import Check, Facts, Finding, check, finding, in_family_order
from gradscope.checks.wording import share as pct
from gradscope.events import (
    EpochEnded,
    Event,
    LayerHistograms,
    LayerRow,
    LayerStats,
    StepStats,
    TrainProgress,
)
from gradscope.verdicts import Severity, Verdict

# --- how the watched steps are read -------------------------------------------
# The reference of a fit: the median over its first BASELINE_STEPS watched
# steps; what is judged: the median over the latest RECENT_STEPS. Medians of
# three, so that one odd batch is no trend (a step's figures come from one
# batch). The layer checks judge only once the two sets do not overlap.
BASELINE_STEPS = 3
RECENT_STEPS = 3
# The watched steps' own losses are noisy (one batch each): the divergence
# check reads the median of each run of LOSS_WINDOW of them.
LOSS_WINDOW = 5

# --- loss-diverging -------------------------------------------------------------
# The loss (epoch means, or the watched steps' smoothed loss) has stayed well
# above its best for DIVERGE_POINTS points in a row, not falling back: at least
# DIVERGE_RISE of its scale above the best, the scale being the larger of the
# best itself and the drop from the start to the best. A run that fell from 2.3
# to 0.3 must climb back above 1.3; a noisy loss at its floor never does. An
# error when the loss is back above where it started (all learning lost).
DIVERGE_POINTS = 3
DIVERGE_RISE = 0.5

# --- loss-plateau -----------------------------------------------------------------
# "Improved": the epoch loss beat its best by at least PLATEAU_MIN_DELTA (1 %,
# relative). The window: twice the patience of the user's EarlyStopping /
# ReduceLROnPlateau when there is one (at its patience their callback acts: a
# plateau is news only if it outlasts what the callback did), else
# PLATEAU_SHARE of the fit's epochs; never fewer than PLATEAU_MIN_EPOCHS.
PLATEAU_MIN_DELTA = 0.01
PLATEAU_MIN_EPOCHS = 4
PLATEAU_SHARE = 0.25
# Only a plateau at or above PLATEAU_STUCK of the loss at the first watched step
# (the untrained model's loss) is a stalled training. Below it the model learned
# more than half of what it started with and flattened: a training at its floor
# (where that is, only the data knows), which is no news.
PLATEAU_STUCK = 0.5
# A training that reached these is done, not stalled (no plateau verdict, no
# learning-rate-vanished): a training accuracy of SOLVED_ACCURACY, or a loss
# under SOLVED_LOSS_SHARE of its starting loss.
SOLVED_ACCURACY = 0.99
SOLVED_LOSS_SHARE = 0.02

# --- dead-units-growing / saturation-growing --------------------------------------
# The same shares as the probe's dead-relu and saturated-activation (SageMaker
# Debugger's 50 %), reached during training and at least GROWN_RISE (25 points)
# above the layer's own share at its first watched steps: a ReLU layer with
# 30 % of its units dead from the start, a steady state, is not flagged.
GROWN_SHARE = 0.5
GROWN_RISE = 0.25
# While the watched steps' loss is below GROWN_LOSS_LEFT of its start, the
# training goes well despite them: info, not a warning (a whole dead layer
# stays an error).
GROWN_LOSS_LEFT = 0.25

# --- gradient-exploding-late / gradient-vanishing-late ------------------------------
# The global gradient norm (all layers) grown EXPLODE_LATE times over its
# value at the first watched steps: two orders of magnitude, never a healthy
# training's drift (its norms move within ~10x). The global norm, not one
# layer's: a layer whose gradient starts near 0 (behind a zero-initialised
# layer) grows a million times, harmlessly.
EXPLODE_LATE = 1e2
# A layer's gradient norm fallen to VANISH_LATE of its value at the first
# watched steps (three orders of magnitude) while the loss is still at least
# VANISH_LOSS_LEFT of where it started: gradients shrink as a loss goes to 0,
# so a model that learned is not flagged.
VANISH_LATE = 1e-3
VANISH_LOSS_LEFT = 0.5

# --- overfitting -----------------------------------------------------------------------
# val_loss above its best by OVERFIT_RISE (10 %: Prechelt's generalization loss
# GL > 10, "Early Stopping - But When?") in each of the last OVERFIT_EPOCHS
# epochs (at least the user's patience + 1: their EarlyStopping stops first),
# while the training loss fell at least OVERFIT_TRAIN_FALL since the best
# epoch. A warning when the validation accuracy fell by OVERFIT_ACC_DROP or
# more since then (or there is none to read); otherwise the model only grows
# overconfident on the samples it gets wrong: info.
OVERFIT_EPOCHS = 3
OVERFIT_RISE = 0.1
OVERFIT_TRAIN_FALL = 0.05
OVERFIT_ACC_DROP = 0.05

# --- learning-rate-vanished ----------------------------------------------------------------
# The learning rate at an epoch's end below LR_VANISHED of the first one read
# (a 1000x cut: nothing learns at that rate) with at least LR_LEFT_SHARE of the
# fit's epochs (and LR_LEFT_MIN) still to run. A 0.1 -> 1e-4 step schedule
# read back in float32 is exactly 1000x: LR_MARGIN keeps it out.
LR_VANISHED = 1e-3
LR_MARGIN = 0.99
LR_LEFT_SHARE = 0.2
LR_LEFT_MIN = 2
# "Still learning when the rate went": the loss fell by PLATEAU_MIN_DELTA over
# the last LR_IMPROVING_EPOCHS epochs.
LR_IMPROVING_EPOCHS = 2

# --- nonfinite-during-training ----------------------------------------------------
# Its message quotes the learning rate when a schedule or callback had raised
# it at least LR_RAISED times over the first one read.
LR_RAISED = 2.0

# The folded figures of one layer at one watched step: (gradient norm, dead
# share, saturated share), None where it does not apply.
_Figures = tuple[float | None, float | None, float | None]


@dataclass
class NonFinite:
    """Where the training's loss or figures first went NaN/Inf."""

    step: int
    epoch: int
    loss: float | None  # the loss at that step (None: it was a figure, not the loss)
    # From the first watched step at or after it: the first layer in forward
    # order with non-finite figures, which figure, and how many layers had any.
    layer: str | None = None
    figure: str | None = None
    layers_nonfinite: int = 0
    watched_step: int | None = None
    settled: bool = False  # the layers are known (or will never be)
    # The learning rate at the latest epoch end by then (None: none ended yet).
    learning_rate: float | None = None


@dataclass
class Point:
    """One point of a loss series: an epoch's mean, or the median of a few watched steps."""

    step: int
    epoch: int
    loss: float


@dataclass
class TrainingFacts:
    """The user's training as folded so far: what the training checks read."""

    epochs: int | None = None
    batches: int | None = None
    patience: int | None = None
    outputs: frozenset[str] | None = None  # None: the last layer is the output
    fit: int = 1
    step: int = 0
    epoch: int = 0
    # This fit's watched steps: their own losses (the first few, and the
    # smoothed series), and their layer figures (the first few, the latest).
    start_losses: list[float] = field(default_factory=list)
    recent_losses: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_STEPS))
    window: list[float] = field(default_factory=list)
    smoothed: list[Point] = field(default_factory=list)
    baseline: list[dict[str, _Figures]] = field(default_factory=list)
    recent: deque[tuple[int, int, dict[str, _Figures]]] = field(
        default_factory=lambda: deque(maxlen=RECENT_STEPS))
    layer_order: tuple[str, ...] = ()
    layer_types: dict[str, str] = field(default_factory=dict)
    watched: int = 0  # watched LayerStats in this fit
    last_layer_step: int | None = None
    # This fit's epochs, as Keras logged them.
    epoch_ends: list[EpochEnded] = field(default_factory=list)
    first_lr: float | None = None
    nonfinite: NonFinite | None = None
    # The IDs already issued (each fires once per run): later checks read it.
    fired: set[str] = field(default_factory=set)
    # layer_medians' latest answers: figure index -> (watched count, start, now).
    _medians: dict[int, tuple[int, dict[str, float], dict[str, float]]] = field(
        default_factory=dict)

    # -- folding --------------------------------------------------------------
    def fold(self, event: Event) -> None:
        if isinstance(event, TrainProgress):
            if event.fit != self.fit:
                self._new_fit(event.fit)
            self.step, self.epoch = max(self.step, event.step), event.epoch
            if event.epochs is not None:
                self.epochs = event.epochs
            if event.batches is not None:
                self.batches = event.batches
        elif isinstance(event, StepStats) and event.phase == "train":
            self._fold_loss(event)
        elif isinstance(event, LayerStats) and event.phase == "train":
            self._fold_layers(event)
        elif isinstance(event, EpochEnded):
            if event.fit != self.fit:
                self._new_fit(event.fit)
            self.epoch_ends.append(event)
            self.step = max(self.step, event.step)
            self.epoch = event.epoch
            lr = event.learning_rate
            if self.first_lr is None and lr is not None and math.isfinite(lr) and lr > 0:
                self.first_lr = lr
        elif isinstance(event, LayerHistograms) and event.phase == "train":
            # The watch sends histograms after a watched step's LayerStats, and on
            # its own at the training's end: then no watched step will follow a
            # non-finite loss to show where it is.
            if event.step != self.last_layer_step:
                self.settle()

    def settle(self) -> None:
        """No watched step will come to show where the non-finite values are."""
        if self.nonfinite is not None and not self.nonfinite.settled:
            self._settled(self.nonfinite)

    def _settled(self, bad: NonFinite) -> None:
        bad.settled = True
        if self.epoch_ends:
            bad.learning_rate = self.epoch_ends[-1].learning_rate

    def _new_fit(self, fit: int) -> None:
        """A later fit() of the model: its own references (the facts of the
        run, the non-finite step and the issued IDs, stay)."""
        fresh = TrainingFacts(epochs=self.epochs, batches=None, patience=self.patience,
                              outputs=self.outputs, fit=fit, step=self.step,
                              nonfinite=self.nonfinite, fired=self.fired)
        self.__dict__.update(fresh.__dict__)

    def _fold_loss(self, event: StepStats) -> None:
        epoch = _epoch_of(event, self.epoch)
        if self.epoch_ends and epoch <= self.epoch_ends[-1].epoch and event.loss is not None \
                and math.isfinite(event.loss):
            # A step of an epoch that already ended: a new fit() began (its
            # first watched step comes before its first TrainProgress).
            self._new_fit(self.fit + 1)
        self.step, self.epoch = max(self.step, event.step), epoch
        loss = event.loss
        if loss is None:
            return
        if not math.isfinite(loss):
            if self.nonfinite is None:
                self.nonfinite = NonFinite(event.step, epoch, loss)
            return
        if len(self.start_losses) < BASELINE_STEPS:
            self.start_losses.append(loss)
        self.recent_losses.append(loss)
        self.window.append(loss)
        if len(self.window) == LOSS_WINDOW:
            self.smoothed.append(Point(event.step, epoch, median(self.window)))
            self.window = []

    def _fold_layers(self, event: LayerStats) -> None:
        self.last_layer_step = event.step
        rows = event.rows
        self._look_for_nonfinite(event.step, rows)
        if self.nonfinite is not None:
            return  # figures after a NaN say nothing about a trend
        if len(rows) != len(self.layer_order):
            self.layer_order = tuple(r.layer for r in rows)
            self.layer_types = {r.layer: r.layer_type for r in rows}
        figures = {r.layer: (r.grad_norm, r.act_dead_frac, r.act_saturated_frac) for r in rows}
        self.watched += 1
        if len(self.baseline) < BASELINE_STEPS:
            self.baseline.append(figures)
        else:
            self.recent.append((event.step, self.epoch, figures))

    def _look_for_nonfinite(self, step: int, rows: Sequence[LayerRow]) -> None:
        pending = self.nonfinite
        if pending is not None and (pending.settled or step < pending.step):
            return
        found = _first_nonfinite(rows)
        if found is None:
            if pending is not None:  # a watched step at or after the NaN, all finite
                pending.watched_step = step
                self._settled(pending)
            return
        layer, figure, count = found
        if pending is None:  # a gradient went non-finite at a step whose loss was finite
            pending = self.nonfinite = NonFinite(step, self.epoch, None)
        pending.layer, pending.figure, pending.layers_nonfinite = layer, figure, count
        pending.watched_step = step
        self._settled(pending)

    # -- what the checks read ----------------------------------------------------
    def start_loss(self) -> float | None:
        """The loss at the fit's first watched step (the untrained model's, in a
        first fit), else its first epoch's mean."""
        if self.start_losses:
            return self.start_losses[0]
        losses = self.epoch_losses()
        return losses[0].loss if losses else None

    def epoch_losses(self) -> list[Point]:
        return [Point(e.step, e.epoch, loss) for e in self.epoch_ends
                if (loss := e.logs.get("loss")) is not None and math.isfinite(loss)]

    def solved(self) -> str | None:
        """Why the training counts as done (a plateau there is its floor), or None."""
        if self.epoch_ends:
            logs = self.epoch_ends[-1].logs
            for key, value in logs.items():
                if "acc" in key and not key.startswith("val_") and value is not None \
                        and value >= SOLVED_ACCURACY:
                    return f"{key} {value:.3f}"
        losses = self.epoch_losses()
        start = self.start_loss()
        if losses and start is not None and start > 0:
            best = min(p.loss for p in losses)
            if best <= SOLVED_LOSS_SHARE * start:
                return f"loss {best:.3g} from {start:.3g}"
        return None

    def is_output(self, layer: str) -> bool:
        if self.outputs is not None:
            return layer in self.outputs
        return bool(self.layer_order) and layer == self.layer_order[-1]

    def layer_medians(self, index: int) -> tuple[dict[str, float], dict[str, float]] | None:
        """Per layer, figure `index` (0 gradient, 1 dead, 2 saturated): its median
        over the first watched steps and over the latest; None until both are in.
        Kept until the next watched step: the checks run at every event (a
        TrainProgress ten times per watched step), the figures change less often."""
        if len(self.baseline) < BASELINE_STEPS or len(self.recent) < RECENT_STEPS:
            return None
        cached = self._medians.get(index)
        if cached is None or cached[0] != self.watched:
            start = _medians(self.baseline, index)  # (small next to the latest: not kept apart)
            now = _medians([figures for _, _, figures in self.recent], index)
            cached = self._medians[index] = (self.watched, start, now)
        return cached[1], cached[2]


def _epoch_of(event: StepStats, current: int) -> int:
    value = event.extra.get("epoch")
    return int(value) if value is not None and math.isfinite(value) else current


def _bad(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


def _first_nonfinite(rows: Sequence[LayerRow]) -> tuple[str, str, int] | None:
    """(layer, figure, how many layers show that figure non-finite) for the
    first layer in forward order with non-finite weights, else activations,
    else gradient. Weights first: once a non-finite update went through, every
    layer it reached is NaN, and an activation after a ReLU reads 0 (max(NaN, 0)),
    so the layer whose activations are NaN is no culprit. With finite weights,
    a non-finite activation shows where the forward pass overflowed."""
    first: dict[str, str] = {}
    count: dict[str, int] = {}
    for r in rows:
        for kind, bad in (("weights", _bad(r.weight_norm)),
                          ("activations", _bad(r.act_mean) or _bad(r.act_std)),
                          ("gradient", _bad(r.grad_norm))):
            if bad:
                first.setdefault(kind, r.layer)
                count[kind] = count.get(kind, 0) + 1
    for kind in ("weights", "activations", "gradient"):
        if kind in first:
            return first[kind], kind, count[kind]
    return None


def _medians(steps: Iterable[dict[str, _Figures]], index: int) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for figures in steps:
        for layer, figs in figures.items():
            value = figs[index]
            if value is not None and math.isfinite(value):
                values.setdefault(layer, []).append(value)
    return {layer: median(v) for layer, v in values.items()}


def _learning_well(t: TrainingFacts) -> bool:
    """The watched steps' loss now is below GROWN_LOSS_LEFT of the fit's start."""
    if not t.start_losses or not t.recent_losses:
        return False
    start, now = median(t.start_losses), median(t.recent_losses)
    return start > 0 and now < GROWN_LOSS_LEFT * start


def training_of(facts: Facts) -> TrainingFacts:
    assert facts.training is not None, "a training check must declare needs=('training',)"
    return facts.training


def _live(facts: Facts) -> TrainingFacts | None:
    """The training's facts while its figures still mean something (None after
    a NaN/Inf: every figure after it is NaN, and the NaN is the verdict)."""
    t = training_of(facts)
    return None if t.nonfinite is not None else t


def _number(value: float | None) -> str | float | None:
    """A loss for the evidence: JSON has no NaN/Inf, so those are written as words."""
    if value is None or math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _epoch_text(t: TrainingFacts, epoch: int) -> str:
    return f"epoch {epoch}" + (f" of {t.epochs}" if t.epochs else "")


# --- the checks, in report order ---------------------------------------------------

_NONFINITE_FIX = (
    "Lower the learning rate (or the schedule's peak, or what a callback raises it to), "
    "clip gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0), and look for NaN/Inf or "
    "huge values in the batches of that epoch; keras.callbacks.TerminateOnNaN() stops "
    "the training there instead of running on with NaN weights"
)


@check("nonfinite-during-training", "error", "cause",
       "the loss or a gradient became NaN/Inf during your training",
       phase="training", needs=("training",))
def nonfinite_during_training(facts: Facts) -> list[Finding]:
    t = training_of(facts)
    bad = t.nonfinite
    if bad is None or not bad.settled:
        return []
    what = (f"the training loss became {_number(bad.loss)}" if bad.loss is not None
            else "a gradient became NaN/Inf (the loss was still finite)")
    where = ""
    if bad.figure == "weights":
        where = (f" At step {bad.watched_step}, the weights of {bad.layers_nonfinite} "
                 f"layer{'s' if bad.layers_nonfinite > 1 else ''} are non-finite, from "
                 f"'{bad.layer}' on: a non-finite update went through.")
    elif bad.layer is not None:
        where = (f" At step {bad.watched_step}, the first layer in forward order with "
                 f"non-finite {bad.figure} is '{bad.layer}'"
                 + (": the forward pass overflows there." if bad.figure == "activations" else "."))
    rate = ""
    if bad.learning_rate is not None and t.first_lr is not None \
            and bad.learning_rate >= LR_RAISED * t.first_lr:
        rate = (f" The learning rate had risen to {bad.learning_rate:.3g} by then "
                f"({t.first_lr:.3g} after the first epoch).")
    return [
        finding(
            bad.layer or "loss",
            f"{what} at step {bad.step} ({_epoch_text(t, bad.epoch)}); the probe at the start "
            f"was finite, so it appeared as training went on.{where}{rate} From then on "
            "every update writes NaN into the weights.",
            _NONFINITE_FIX,
            step=bad.step, epoch=bad.epoch,
            loss=_number(bad.loss),
            layer=bad.layer,
            figure=bad.figure,
            watched_step=bad.watched_step,
            layers_nonfinite=bad.layers_nonfinite,
            learning_rate=bad.learning_rate,
        )
    ]


@check("gradient-exploding-late", "error", "cause",
       "the gradient grew by orders of magnitude during your training",
       phase="training", needs=("training",))
def gradient_exploding_late(facts: Facts) -> list[Finding]:
    t = _live(facts)
    medians = t.layer_medians(0) if t is not None else None
    if t is None or medians is None:
        return []
    start, now = medians
    shared = [name for name in t.layer_order if name in start and name in now]
    before = math.sqrt(sum(start[n] ** 2 for n in shared))
    after = math.sqrt(sum(now[n] ** 2 for n in shared))
    if before <= 0 or after < EXPLODE_LATE * before:
        return []
    growth = {n: now[n] / start[n] for n in shared if start[n] > 0}
    layer = max(growth, key=lambda n: growth[n]) if growth else "model"
    step, epoch, _ = t.recent[-1]
    return [
        finding(
            layer,
            f"the global gradient norm grew {after / before:.3g}x during your training: "
            f"{before:.3g} at the first watched steps, {after:.3g} at step {step} "
            f"({_epoch_text(t, epoch)})"
            + (f"; most in '{layer}' ({growth[layer]:.3g}x)." if growth else ".")
            + " It was fine at the start: something that changes as the training goes on "
            "makes it grow (a learning rate a schedule raises, weights growing, a loss weight).",
            "Lower the learning rate (or the schedule's peak) and clip gradients: "
            "keras.optimizers.Adam(1e-3, clipnorm=1.0); normalisation layers "
            "(BatchNormalization, LayerNormalization) keep activations in range",
            step=step, epoch=epoch,
            grad_norm=after,
            grad_norm_at_start=before,
            growth=after / before,
            layer=layer if growth else None,
            layer_growth=growth.get(layer),
        )
    ]


@check("loss-diverging", "warning", "symptom", "the training loss climbs back up",
       phase="training", needs=("training",))
def loss_diverging(facts: Facts) -> list[Finding]:
    t = _live(facts)
    if t is None:
        return []
    for series, points in (("epochs", t.epoch_losses()), ("watched steps", t.smoothed)):
        found = _climbing(points)
        if found is None:
            continue
        best, climb = found
        # (The fit's first watched step: the untrained model's loss.)
        start = t.start_loss() if t.start_losses else points[0].loss
        now = climb[-1]
        lost_all = start is not None and now.loss >= start
        severity: Severity = "error" if lost_all else "warning"
        curve = ", ".join(f"{p.loss:.4g}" for p in climb[-8:])
        unit = "epoch losses" if series == "epochs" else "training losses (medians of watched steps)"
        return [
            finding(
                "loss",
                f"the training loss is climbing: its best was {best.loss:.4g} at step {best.step} "
                f"({_epoch_text(t, best.epoch)}); the {unit} since are {curve} (step "
                f"{now.step}, {_epoch_text(t, now.epoch)})"
                + (f", back above the {start:.4g} it started from: what was learned is lost."
                   if lost_all else "."),
                "Lower the learning rate (a schedule or callback that raises it: cap its peak) "
                "and clip gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0); with a high "
                "rate, a warm-up then decay: keras.optimizers.schedules.CosineDecay(1e-3, "
                "decay_steps, warmup_steps=...)",
                severity=severity,
                step=now.step, epoch=now.epoch,
                loss=now.loss,
                best_loss=best.loss,
                best_step=best.step,
                best_epoch=best.epoch,
                start_loss=start,
                series=series,
                curve=[p.loss for p in climb[-8:]],
            )
        ]
    return []


def _climbing(points: Sequence[Point]) -> tuple[Point, list[Point]] | None:
    """(best point, the points since it) when the last DIVERGE_POINTS points all
    sit well above the best before them and the last is not falling back."""
    if len(points) < DIVERGE_POINTS + 1:
        return None
    earlier, last = points[:-DIVERGE_POINTS], points[-DIVERGE_POINTS:]
    best = min(earlier, key=lambda p: p.loss)
    scale = max(abs(best.loss), points[0].loss - best.loss)
    if scale <= 0:
        return None
    bar = best.loss + DIVERGE_RISE * scale
    if all(p.loss >= bar for p in last) and last[-1].loss >= last[0].loss:
        return best, list(points[points.index(best) + 1:])
    return None


_DEAD_FIX = (
    "Lower the learning rate (large updates push ReLU units where they never fire again), "
    "clip gradients: keras.optimizers.Adam(1e-3, clipnorm=1.0), or use a leaky variant: "
    "Dense(n, activation='leaky_relu', kernel_initializer='he_normal')"
)


@check("dead-units-growing", "warning", "cause", "ReLU units die during your training",
       phase="training", needs=("training",))
def dead_units_growing(facts: Facts) -> list[Finding]:
    return _growing(facts, 1, "ReLU units that output 0 for every sample", _DEAD_FIX,
                    dead=True)


@check("saturation-growing", "warning", "cause",
       "sigmoid/tanh outputs drift into the flat tails during your training",
       phase="training", needs=("training",))
def saturation_growing(facts: Facts) -> list[Finding]:
    return _growing(
        facts, 2, "outputs in the flat tails (derivative under 4 % of its peak)",
        "Lower the learning rate, keep the activations in range with BatchNormalization or "
        "LayerNormalization before the activation, add weight decay "
        "(kernel_regularizer=keras.regularizers.l2(1e-4)), or use ReLU in hidden layers",
        dead=False,
    )


def _growing(facts: Facts, index: int, what: str, fix: str, dead: bool) -> list[Finding]:
    t = _live(facts)
    medians = t.layer_medians(index) if t is not None else None
    if t is None or medians is None:
        return []
    start, now = medians
    grown = [n for n in t.layer_order
             if n in start and n in now and now[n] >= GROWN_SHARE and now[n] - start[n] >= GROWN_RISE
             # (an output's sigmoid or softmax is meant to reach its tails: confidence)
             and (dead or not t.is_output(n))]
    if not grown:
        return []
    layer = grown[0]
    step, epoch, _ = t.recent[-1]
    whole = [n for n in grown if dead and now[n] >= 1.0]
    others = f" (also: {', '.join(grown[1:6])})" if len(grown) > 1 else ""
    # A loss that went on falling well below its start: the units cost little so far.
    learning = _learning_well(t)
    severity: Severity | None = "error" if whole else ("info" if learning else None)
    return [
        finding(
            layer,
            f"in '{layer}', the share of {what} grew from {pct(start[layer])} at the first "
            f"watched steps to {pct(now[layer])} by step {step} ({_epoch_text(t, epoch)})"
            f"{others}"
            + (f"; the whole of '{whole[0]}' is dead: nothing passes it" if whole else "")
            + ". The probe at the start saw it healthy: the training itself "
            + ("killed them; a dead unit gets no gradient and never comes back."
               if dead else "drove them there; gradients through them nearly vanish.")
            + (" The loss is still falling well below its start: it costs little so far."
               if learning and not whole else ""),
            fix,
            severity=severity,
            step=step, epoch=epoch,
            share=now[layer],
            share_at_start=start[layer],
            layers=grown[:20],
        )
    ]


@check("gradient-vanishing-late", "warning", "cause",
       "a layer's gradient fell by orders of magnitude while the loss stayed high",
       phase="training", needs=("training",))
def gradient_vanishing_late(facts: Facts) -> list[Finding]:
    t = _live(facts)
    medians = t.layer_medians(0) if t is not None else None
    if t is None or medians is None or "dead-units-growing" in t.fired:
        return []  # (dead units explain a vanished gradient: that verdict names the cause)
    if len(t.start_losses) < BASELINE_STEPS or not t.recent_losses:
        return []
    loss_start, loss_now = median(t.start_losses), median(t.recent_losses)
    if loss_start <= 0 or loss_now < VANISH_LOSS_LEFT * loss_start:
        return []  # the loss fell: gradients shrink with it
    start, now = medians
    vanished = [n for n in t.layer_order
                if start.get(n, 0.0) > 0 and n in now and now[n] <= VANISH_LATE * start[n]
                # (an Embedding's gradient touches only its batch's rows: small by nature)
                and t.layer_types.get(n) != "Embedding"]
    if not vanished:
        return []
    layer = vanished[0]
    step, epoch, _ = t.recent[-1]
    ratio = now[layer] / start[layer]
    return [
        finding(
            layer,
            f"the gradient norm of '{layer}' fell from {start[layer]:.3g} at the first watched "
            f"steps to {now[layer]:.3g} by step {step} ({_epoch_text(t, epoch)}), "
            f"{1 / ratio if ratio > 0 else math.inf:.3g}x smaller, while the loss is still "
            f"{loss_now:.4g} (from {loss_start:.4g}): that layer stopped learning."
            + (f" Also: {', '.join(vanished[1:6])}." if len(vanished) > 1 else ""),
            "Look for saturating activations or normalisation collapsing during training; "
            "lower the learning rate, use ReLU-family activations with He initialisation and "
            "BatchNormalization in deep stacks, e.g. "
            "Dense(128, activation='relu', kernel_initializer='he_normal')",
            step=step, epoch=epoch,
            grad_norm=now[layer],
            grad_norm_at_start=start[layer],
            ratio=ratio,
            loss=loss_now,
            start_loss=loss_start,
            layers=vanished[:20],
        )
    ]


@check("learning-rate-vanished", "warning", "cause",
       "a schedule took the learning rate to ~0 with epochs still to run",
       phase="training", needs=("training",))
def learning_rate_vanished(facts: Facts) -> list[Finding]:
    t = _live(facts)
    if t is None or not t.epoch_ends or t.first_lr is None or not t.epochs:
        return []
    last = t.epoch_ends[-1]
    lr = last.learning_rate
    left = t.epochs - last.epoch
    if lr is None or not math.isfinite(lr) or lr >= LR_VANISHED * LR_MARGIN * t.first_lr:
        return []
    if left < max(LR_LEFT_MIN, math.ceil(LR_LEFT_SHARE * t.epochs)) or t.solved():
        return []
    # Still learning when the rate went (or stuck high): the schedule cuts off
    # training that had more to give. Flat and well below its start: the rate
    # going costs only time.
    losses = t.epoch_losses()
    start = t.start_loss()
    recent = losses[-LR_IMPROVING_EPOCHS - 1:]
    improving = (len(recent) == LR_IMPROVING_EPOCHS + 1
                 and recent[-1].loss < (1 - PLATEAU_MIN_DELTA) * recent[0].loss)
    high = start is not None and start > 0 and bool(losses) and losses[-1].loss >= PLATEAU_STUCK * start
    severity: Severity = "warning" if improving or high or not losses else "info"
    return [
        finding(
            "optimizer",
            f"the learning rate is {lr:.3g} at the end of {_epoch_text(t, last.epoch)}, "
            f"{t.first_lr / lr if lr > 0 else math.inf:.3g}x below the {t.first_lr:.3g} "
            f"it started at, with {left} epochs still to run: at that rate they change "
            "almost nothing"
            + (" - and the loss was still falling when it went." if improving else "."),
            "Keep the schedule's floor at a useful rate: ReduceLROnPlateau(factor=0.5, "
            "patience=5, min_lr=1e-5) (min_lr near 1/100 of the start), or a decay spread "
            "over the whole fit: keras.optimizers.schedules.CosineDecay(lr, decay_steps="
            "epochs * steps_per_epoch, alpha=0.01)",
            severity=severity,
            step=last.step, epoch=last.epoch,
            learning_rate=lr,
            first_learning_rate=t.first_lr,
            epochs_left=left,
        )
    ]


@check("overfitting", "warning", "symptom",
       "validation loss rises while the training loss falls",
       phase="training", needs=("training",))
def overfitting(facts: Facts) -> list[Finding]:
    t = _live(facts)
    if t is None:
        return []
    ends = [e for e in t.epoch_ends if _finite(e.logs.get("val_loss")) and _finite(e.logs.get("loss"))]
    need = max(OVERFIT_EPOCHS, (t.patience or 0) + 1)
    if len(ends) < need + 1:
        return []
    best = min(ends[:-need], key=lambda e: _val(e))
    best_val = _val(best)
    last = ends[-need:]
    if best_val <= 0 or any(_val(e) < (1 + OVERFIT_RISE) * best_val for e in last):
        return []
    now = ends[-1]
    train_best, train_now = float(best.logs["loss"] or 0.0), float(now.logs["loss"] or 0.0)
    if not train_now <= (1 - OVERFIT_TRAIN_FALL) * train_best:
        return []
    acc_key = next((k for k in now.logs if k.startswith("val_") and "acc" in k), None)
    acc_best = best.logs.get(acc_key) if acc_key else None
    acc_now = now.logs.get(acc_key) if acc_key else None
    held = (_finite(acc_best) and _finite(acc_now)
            and float(acc_now or 0.0) > float(acc_best or 0.0) - OVERFIT_ACC_DROP)
    accuracy = (f" {acc_key} {acc_best:.3f} then, {acc_now:.3f} now"
                + (" (it holds: the model grows overconfident on the samples it gets wrong)."
                   if held else ".")) if acc_key and _finite(acc_best) and _finite(acc_now) else ""
    return [
        finding(
            "model",
            f"val_loss is rising while the training loss falls: best {best_val:.4g} at "
            f"{_epoch_text(t, best.epoch)}, {_val(now):.4g} at epoch {now.epoch} (above "
            f"{1 + OVERFIT_RISE:.2g}x the best for {need} epochs), while the training loss "
            f"went {train_best:.4g} -> {train_now:.4g}: the model memorises its training "
            f"samples.{accuracy}",
            "Keep the best epoch: keras.callbacks.EarlyStopping(monitor='val_loss', "
            "patience=3, restore_best_weights=True); and regularise: more data or "
            "augmentation, Dropout(0.3), kernel_regularizer=keras.regularizers.l2(1e-4), or "
            "a smaller model",
            severity="info" if held else None,
            step=now.step, epoch=now.epoch,
            val_loss=_val(now),
            best_val_loss=best_val,
            best_epoch=best.epoch,
            loss=train_now,
            loss_at_best=train_best,
            epochs_since_best=now.epoch - best.epoch,
        )
    ]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _val(e: EpochEnded) -> float:
    return float(e.logs["val_loss"] or 0.0)


@check("loss-plateau", "warning", "symptom",
       "the training loss stopped improving long before the end",
       phase="training", needs=("training",))
def loss_plateau(facts: Facts) -> list[Finding]:
    t = _live(facts)
    if t is None or "loss-diverging" in t.fired:
        return []
    losses = t.epoch_losses()
    window = plateau_window(t.epochs, t.patience)
    if len(losses) < window + 1:
        return []
    best = losses[0]
    for p in losses[1:]:
        if p.loss < best.loss - PLATEAU_MIN_DELTA * abs(best.loss):
            best = p
    now = losses[-1]
    since = now.epoch - best.epoch
    start = t.start_loss()
    if since < window or start is None or start <= 0 or t.solved():
        return []
    # A loss well above its best since is climbing, no plateau (loss-diverging's
    # bar, so that the two never describe the same epochs).
    bar = best.loss + DIVERGE_RISE * max(abs(best.loss), losses[0].loss - best.loss)
    if any(p.loss >= bar for p in losses if p.epoch > best.epoch):
        return []
    if best.loss < PLATEAU_STUCK * start:
        return []
    return [
        finding(
            "loss",
            f"the training loss has not improved by {pct(PLATEAU_MIN_DELTA)} for {since} epochs: "
            f"best {best.loss:.4g} at epoch {best.epoch}, {now.loss:.4g} at "
            f"{_epoch_text(t, now.epoch)}, still {pct(best.loss / start)} of the "
            f"{start:.4g} it started at: the training has stalled.",
            "Look at the verdicts above for a cause (dead units, saturation, a learning rate "
            "too high or too low, one a schedule took to ~0); lower the rate when it stalls: "
            "keras.callbacks.ReduceLROnPlateau(monitor='loss', factor=0.5, patience=3); a "
            "model too small for the task stalls too: try more units or layers; if the data "
            "holds no more signal than this, stop there: keras.callbacks.EarlyStopping("
            "monitor='val_loss', patience=5, restore_best_weights=True)",
            step=now.step, epoch=now.epoch,
            loss=now.loss,
            best_loss=best.loss,
            best_epoch=best.epoch,
            start_loss=start,
            epochs_without_improvement=since,
            window=window,
        )
    ]


def plateau_window(epochs: int | None, patience: int | None) -> int:
    """Epochs without improvement that make a plateau (see PLATEAU_* above)."""
    if patience is not None and patience > 0:
        return max(PLATEAU_MIN_EPOCHS, 2 * patience)
    return max(PLATEAU_MIN_EPOCHS, math.ceil(PLATEAU_SHARE * (epochs or 0)))


# --- running them ---------------------------------------------------------------------

# The training checks know the model only through the watched rows.
_NO_MODEL = ModelFacts(name="", total_params=0, trainable_params=0, weighted_layers=(),
                       frozen_layers=())


def training_checks() -> list[Check]:
    """Every registered training check, in report order (declaration order)."""
    return in_family_order("training", (sys.modules[__name__],))


class TrainingChecks:
    """The checks on one run's training: the watch hands it every event it emits
    during the user's fits and emits each returned verdict (VerdictIssued).

    `epochs`: the fit's epochs; `batches`: steps per epoch, if known;
    `patience`: the patience of the user's EarlyStopping / ReduceLROnPlateau
    (None without one; the watch sets it again for a later fit); `outputs`: the
    model's output layers (None: the last layer of the watched rows).
    `on_error`: told when a check raises (that check is then dropped for the
    run); without it, the exception propagates.
    """

    def __init__(self, *, epochs: int | None, batches: int | None, patience: int | None = None,
                 outputs: Sequence[str] | None = None,
                 on_error: Callable[[Check, Exception], None] | None = None) -> None:
        self.facts = TrainingFacts(epochs=epochs, batches=batches, patience=patience,
                                   outputs=frozenset(outputs) if outputs is not None else None)
        self.on_error = on_error
        self._checks = training_checks()
        self._bundle = Facts(model=_NO_MODEL, training=self.facts)

    @property
    def patience(self) -> int | None:
        return self.facts.patience

    @patience.setter
    def patience(self, value: int | None) -> None:
        self.facts.patience = value

    def handle(self, event: Event) -> list[Verdict]:
        """Fold `event` in; the verdicts it completes (each ID once per run)."""
        if not isinstance(event, (TrainProgress, StepStats, LayerStats, EpochEnded,
                                  LayerHistograms)):
            return []
        if getattr(event, "phase", "train") != "train":
            return []  # (the probe's steps ran on a clone, on other batches)
        self.facts.fold(event)
        return self._run()

    def finish(self) -> list[Verdict]:
        """The training ended: what waited for a watched step that never came."""
        self.facts.settle()
        return self._run()

    def _run(self) -> list[Verdict]:
        found: list[Verdict] = []
        fired = self.facts.fired
        for entry in self._checks:
            if entry.id in fired:
                continue
            try:
                verdicts = entry.run(self._bundle)
            except Exception as exc:
                if self.on_error is None:
                    raise
                fired.add(entry.id)  # said once, then left out for the run
                self.on_error(entry, exc)
                continue
            if verdicts:
                fired.add(entry.id)
                found.append(verdicts[0])
        return found
