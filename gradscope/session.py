"""One gradscope run: takes the first fit, diagnoses it, then lets the user's fit go on.

Order of work, and why:
1. read probe batches from the fit's data (the user's fit still gets every batch);
2. build the user's model if fit would have (same as Keras would do on the first batch);
3. inside `preserved_rng()`: the diagnosis (gradscope/diagnosis.py: static checks,
   probe steps, experiments, dynamic checks), so a seeded script trains exactly
   as under `python`;
4. hand the fit back to Keras with the same data, or stop (--probe-only).
Any failure of ours becomes a `probe-failed` info verdict: the user's run goes on.
"""

from __future__ import annotations

import gc
import sys
import warnings
from typing import TYPE_CHECKING, Any

from gradscope import workers
from gradscope.diagnosis import Diagnosis, FitInputs
from gradscope.events import EventBus, Note, PhaseChanged, RunFinished
from gradscope.internal import is_our_bug, lost, strict
from gradscope.options import RunOptions

if TYPE_CHECKING:
    from gradscope.intercept import FitCall


class Session:
    """Stands between the interceptor and the diagnosis, for the first fit only."""

    def __init__(self, options: RunOptions, bus: EventBus) -> None:
        self.options = options
        self.bus = bus
        self.fit_seen = False
        self._finished = False
        self.diagnosis = Diagnosis(options, bus)
        self.watch: Any = None  # engine/watch.Watch, from the first fit on
        self.data: Any = None  # engine/fitdata.FitData of the first fit, once read
        self.role = workers.role()  # several workers: only the chief diagnoses and reports
        self._keras_cannot_fit = False  # the user's fit failed as Keras does under several workers

    # -- the interceptor's entry point ------------------------------------
    def on_fit(self, call: FitCall) -> Any:
        """Called by the interceptor with the first FitCall (a fit or a train_on_batch)."""
        from gradscope.intercept import ProbeFinished

        self.fit_seen = True
        if not self.role.chief:
            # Another worker of several: the script's own fit, as under python; it
            # waits in its first all-reduce while the chief diagnoses (the probe
            # makes no collective call: docs/architecture.md). After --probe-only's
            # probe the chief never trains, so this worker must not start either.
            if self.options.probe_only:
                raise ProbeFinished()
            return call.run_original(call.args, call.kwargs)
        if self.role.multi and call.method == "fit" and not self.options.probe_only \
                and workers.keras_cannot_fit(call.model):
            # Keras fails before its first step on every worker: a diagnosis would
            # only delay its error and report on a training that cannot start.
            args, kwargs = call.args, call.kwargs
        elif self.role.multi and workers.in_strategy_scope():
            # The probe's clone would be the strategy's: its steps would all-reduce
            # with workers that never run them (measured: both fail).
            self.bus.emit(Note("warning", workers.NOT_DIAGNOSED_IN_SCOPE))
            args, kwargs = call.args, call.kwargs
        else:
            args, kwargs = self.diagnose_first(call)
        if self.options.probe_only:
            self.bus.emit(PhaseChanged("done"))
            raise ProbeFinished()
        self.bus.emit(PhaseChanged("train", total=fit_epochs(call)))
        args, kwargs = self._watched(call, args, kwargs)
        try:
            return call.run_original(args, kwargs)
        except Exception as error:
            if self.role.multi and workers.is_keras_multiworker_fit_error(error):
                self._keras_cannot_fit = True  # said once, under the traceback (finish)
            raise

    def diagnose_first(self, call: FitCall) -> tuple[tuple, dict]:
        """The diagnosis of the first fit (what `gradscope run`, `gradscope.diagnose`
        and `gradscope.Callback` share); returns the arguments the user's fit
        must be given (a generator's batches replayed). Any failure of ours
        becomes a `probe-failed` verdict and the fit's own arguments."""
        args, kwargs = call.args, call.kwargs
        try:
            args, kwargs = self._diagnose(call)
        except Exception as exc:  # noqa: BLE001 - never let our failure end the user's run
            if strict() and is_our_bug(exc):
                raise
            self.diagnosis.fail(exc)
        # The clone, our compiled steps and the experiments' copies are garbage
        # now (reference cycles): free them before the user's fit needs memory.
        _give_back_memory()
        return args, kwargs

    def on_later_fit(self, call: FitCall) -> Any:
        """A later fit() (or train_on_batch) of the script: a fit of the watched
        model is watched as a new phase; anything else goes straight to Keras."""
        if self.watch is None or call.model is not self.watch.model or call.method != "fit":
            return call.run_original(call.args, call.kwargs)
        self.bus.emit(PhaseChanged("train", detail=f"fit {self.watch.fit + 1}", total=fit_epochs(call)))
        args, kwargs = self._watched(call, call.args, call.kwargs)
        return call.run_original(args, kwargs)

    def _watched(self, call: FitCall, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """The user's fit with the watch on (engine/watch.py): per-layer figures of
        every K-th training step, the epochs' logs, the checks on the training.
        train_on_batch loops get the watched steps without epochs."""
        if self.role.multi:
            # Off: its extra reduces would not match the other workers' collectives,
            # and Keras reduces a watched step's scalar outputs on axis 0 (no such axis).
            self.bus.emit(Note("info", "the watch is off under MultiWorkerMirroredStrategy "
                                       "(several workers): the report is the probe's"))
            return args, kwargs
        try:
            from gradscope.engine.watch import with_callback

            callback = self.start_watch(call, args, kwargs)
            if callback is None:
                return args, kwargs
            return with_callback(call.original, call.model, args, kwargs, callback)
        except Exception as exc:  # noqa: BLE001 - without the watch the user's fit still runs
            if strict() and is_our_bug(exc):
                raise
            lost(self.bus.emit, "the per-layer figures of your own training (phase=train)", exc)
            return args, kwargs

    def start_watch(self, call: FitCall, args: tuple, kwargs: dict) -> Any:
        """Watch this fit of the model: the callback (engine/watch.WatchCallback) the
        fit must call, or None for a train_on_batch (steps only, no epochs)."""
        from gradscope.engine.watch import Watch, fit_argument, user_patience

        if self.watch is None:
            self.watch = Watch(call.model, self.bus.emit, self.options.watch_every,
                               checks=_training_checks(call, args, kwargs, self.bus.emit),
                               diagnosed=self.bus.report.verdicts)
        if call.method != "fit":
            if self.options.watch:
                self.watch.install()
            return None
        callback = self.watch.begin_fit(fit_epochs(call), steps=self.options.watch)
        if self.watch.checks is not None:
            callbacks = fit_argument(call.original, call.model, args, kwargs, "callbacks")
            self.watch.checks.patience = user_patience(callbacks)
        return callback

    def verdict_exit_code(self) -> int:
        """1 with an error verdict, else 0; another worker than the chief takes the chief's code."""
        return workers.chief_exit_code(self.role, self.bus.report.verdict_exit_code())

    def finish(self, status: str, exit_code: int, *, error: str = "", traceback: str = "") -> None:
        if self._finished:
            return
        self._finished = True
        try:
            if self._keras_cannot_fit:
                self.bus.emit(Note("error", workers.cannot_fit_line()))
            self.bus.emit(RunFinished(status=status, exit_code=exit_code, error=error,
                                      traceback=traceback))
            self.bus.close()
        finally:
            # Several workers: the chief's code is every worker's (workers.py).
            if self.role.chief:
                workers.share_exit_code(self.role, exit_code)
            else:
                workers.say_finished(self.role)

    def _diagnose(self, call: FitCall) -> tuple[tuple, dict]:
        """Read the fit's data without costing the user's fit any, then diagnose."""
        from gradscope.engine.fitdata import capture_fit_data
        from gradscope.engine.replicas import outside_strategy
        from gradscope.engine.rng import preserved_rng
        from gradscope.engine.target import ensure_built
        from gradscope.engine.to_facts import budget_steps

        seed = self.options.seed if self.options.seed is not None else 0
        self.bus.emit(PhaseChanged("static"))
        data = self.data = capture_fit_data(call.original, call.args, call.kwargs, seed=seed)
        budget = budget_steps(call, data)
        # Take the probe batches first: a generator's fit_args replays what was taken.
        batches = data.probe_batches(max(1, self.options.steps))
        # (Outside preserved_rng: the generator goes on from where it stops.)
        data.read_for_sample(budget)
        args, kwargs = data.fit_args()
        if not batches:
            raise ValueError("the training data yielded no batch")
        ensure_built(call.model, batches[0][0])
        # Keras's own warnings about the model (e.g. softmax over one unit) would
        # print twice: once for our probe, once for the user's fit. Keep the user's.
        # A fit inside `strategy.scope()`: our clone and steps are made outside
        # it (the probe enters the strategy itself, engine/replicas.py).
        with preserved_rng(), warnings.catch_warnings(), outside_strategy():
            warnings.simplefilter("ignore")
            inputs = FitInputs(
                model=call.model,
                batches=batches,
                sample=data.sample(),
                data_kind=data.kind,
                budget_steps=budget,
                batch_size=data.batch_size or 32,
            )
            self.diagnosis.run(inputs)
        return args, kwargs


def _give_back_memory() -> None:
    """Collect our garbage and hand the freed heap back to the system (glibc
    keeps it otherwise: ~300 MB after a 1000-layer model's diagnosis)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def _training_checks(call: FitCall, args: tuple, kwargs: dict, emit: Any) -> Any:
    """The checks on the training (checks/training.py) for this fit; a check that
    fails is said once and left out, the others go on."""
    from gradscope.checks.training import TrainingChecks
    from gradscope.engine.watch import fit_argument, user_patience

    callbacks = fit_argument(call.original, call.model, args, kwargs, "callbacks")
    return TrainingChecks(
        epochs=fit_epochs(call), batches=None, patience=user_patience(callbacks),
        outputs=_output_layers(call.model),
        on_error=lambda entry, exc: lost(emit, f"the check {entry.id} on your training", exc),
    )


def _output_layers(model: Any) -> list[str] | None:
    """The names of the layers that make the model's outputs (None: unknown, e.g.
    a subclassed model; the checks then take the last layer)."""
    try:
        return [tensor._keras_history[0].name for tensor in model.outputs]
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def fit_epochs(call: FitCall) -> int | None:
    """The fit's epochs (the status line's "epoch e/E"); None for train_on_batch."""
    if call.method != "fit":
        return None
    import inspect

    try:
        bound = inspect.signature(call.original).bind(call.model, *call.args, **call.kwargs)
    except TypeError:
        return None
    epochs = bound.arguments.get("epochs", 1)
    initial = bound.arguments.get("initial_epoch", 0)
    try:
        return max(0, int(epochs) - int(initial or 0))
    except (TypeError, ValueError):
        return None
