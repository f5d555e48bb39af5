"""`model.fit(x, y, callbacks=[gradscope.Callback()])`: the diagnosis at the start
of training, on the data fit was given, then the watch of the training.

At `on_train_begin` the fit's own arguments are read from the running `fit`
(after Keras split off `validation_split`, so the data is what fit trains on)
and handed to the same `Session` that `gradscope run` and `gradscope.diagnose`
use: the same verdicts, in the same order. The diagnosis reads that data
itself, never fit's iterator, so fit still gets every batch: arrays and
PyDatasets are read by index, a Dataset is iterated afresh, and of a Python
generator only the batches Keras already set aside (it looks at the first
two to learn their shapes) are read. Random streams, weights and optimizer
state are left as they were, so the training that follows is the one that
would have run without the callback.
"""

from __future__ import annotations

import inspect
import sys
import time
from types import FrameType
from typing import Any

from gradscope import __version__
from gradscope.api import DEFAULT_BUDGET, Report
from gradscope.backend_check import require_tensorflow_backend
from gradscope.events import EventBus, PhaseChanged, RunStarted
from gradscope.internal import is_our_bug, lost, strict
from gradscope.verdict_text import format_verdict

require_tensorflow_backend()  # another Keras backend: one RuntimeError, not Keras's import error

import keras  # noqa: E402

ON_ERROR = ("continue", "stop", "raise")


class Callback(keras.callbacks.Callback):
    """Diagnoses the model at the start of `fit()`, then watches its training.

    - `on_error`: what an error verdict does to the training. "continue" (the
      default): the summary is shown and the training goes on. "stop": no step
      is trained; fit returns at once (Keras still evaluates `validation_data`
      at the end of that epoch, as it does at every epoch's end). "raise": fit
      raises `gradscope.DiagnosisError` (an AssertionError: a test fails).
    - `watch`: measure every `watch_every`-th training step (default 100) and
      run the checks on the training (docs/checks.md, "Checks on the
      training"), as `gradscope run` does; False keeps only the diagnosis.
    - `steps`, `seed`, `budget`: as for `gradscope.diagnose`.
    - `show`: print the summary (in a notebook: display the report) when the
      diagnosis ends, and the verdicts the training adds when it ends.

    `callback.report` is the `gradscope.Report` so far: the diagnosis, then the
    training's figures and verdicts. One callback diagnoses the first fit it
    is given; a later fit of the same model with it is watched as the next
    phase, and a fit of another model starts over (diagnosed afresh).
    """

    def __init__(
        self,
        *,
        on_error: str = "continue",
        watch: bool = True,
        watch_every: int | None = None,
        steps: int = 5,
        seed: int | None = None,
        budget: float = DEFAULT_BUDGET,
        show: bool = True,
    ) -> None:
        super().__init__()
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(map(repr, ON_ERROR))}, not {on_error!r}")
        from gradscope.options import RunOptions

        self.on_error = on_error
        self.show = show
        self.options = RunOptions(script="<callback>", steps=max(1, int(steps)), seed=seed,
                                  budget=float(budget), watch=bool(watch), watch_every=watch_every)
        self.bus = EventBus()
        self._session: Any = None
        self._diagnosed: Any = None  # the model the session diagnosed
        self._watching: Any = None  # this fit's engine/watch.WatchCallback
        self._stopped: Any = None  # the train_function put aside while a stopped fit winds down
        self._shown = 0  # verdicts shown so far

    @property
    def report(self) -> Report:
        """What was found so far: the diagnosis, then the training's figures and verdicts."""
        return Report(self.bus.history)

    # -- Keras's hooks ----------------------------------------------------------
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        from gradscope.intercept import intercepting

        self._watching = None
        if intercepting():
            # `gradscope run` has taken this script's fits over: it diagnoses and
            # watches this one already.
            return
        call = self._fit_call()
        if call is None:
            return
        if self._session is not None and self._diagnosed is not self.model:
            # The same callback given to another model's fit: that model is
            # diagnosed afresh (callback.report is about it from now on).
            self.bus = EventBus()
            self._session = None
            self._shown = 0
        if self._session is None:
            if not self._diagnose(call):
                return
        else:
            fit = self._session.watch.fit + 1 if self._session.watch is not None else 2
            self.bus.emit(PhaseChanged("train", detail=f"fit {fit}"))
        self._start_watch(call)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._watching is not None:
            self._watching.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._watching is not None:
            self._watching.on_epoch_end(epoch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model
        if self._stopped is not None:
            model.train_function = self._stopped
            self._stopped = None
        if self._watching is None:
            return
        self._watching.on_train_end(logs)
        self._watching = None
        # The model trains as Keras makes it to outside this fit (a later fit
        # without the callback, predict, evaluate): the watched steps go.
        watch = self._session.watch
        function = getattr(watch, "_function", None)
        if function is not None and model.train_function is function:
            model.train_function = function.plain
        if self.show:
            self._show_new("during training")

    # -- the work -----------------------------------------------------------------
    def _fit_call(self) -> Any:
        """The running fit as a FitCall (its arguments as fit now holds them), or
        None when no fit of this model is found on the stack (said once)."""
        from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

        from gradscope.intercept import FitCall

        fit = TensorFlowTrainer.fit
        code = inspect.unwrap(fit).__code__
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and not (frame.f_code is code and frame.f_locals.get("self") is self.model):
            frame = frame.f_back
        if frame is None:
            lost(self.bus.emit, "the diagnosis (gradscope.Callback is made for model.fit; "
                 "use gradscope.diagnose for other loops)",
                 RuntimeError("no model.fit() of this model is running"))
            self._show_new("")
            return None
        local = frame.f_locals
        names = [n for n in inspect.signature(fit).parameters if n != "self"]
        kwargs = {n: local[n] for n in names if n in local}
        # fit has split `validation_split` off x and y already (its locals hold the rest).
        kwargs["validation_split"] = 0.0
        kwargs["verbose"] = 0
        callbacks = local.get("callbacks")
        kwargs["callbacks"] = [c for c in getattr(callbacks, "callbacks", callbacks or []) if c is not self]
        adapter = getattr(local.get("epoch_iterator"), "data_adapter", None)
        first = getattr(adapter, "_first_batches", None)
        if inspect.isgenerator(kwargs.get("x")) and first:
            # What is read from a generator is gone from it: take only the
            # batches Keras set aside when it looked at their shapes.
            kwargs["x"] = (batch for batch in list(first))
        return FitCall(model=self.model, args=(), kwargs=kwargs, original=fit, method="fit")

    def _diagnose(self, call: Any) -> bool:
        """The diagnosis; False when the training must not start (on_error="stop")."""
        from gradscope.session import Session

        self.bus.emit(RunStarted(script="<callback>", argv=(), gradscope_version=__version__,
                                 started_at=time.time()))
        self._session = Session(self.options, self.bus)
        self._diagnosed = self.model
        self._session.diagnose_first(call)
        report = self.report
        if self.show:
            self._show(report)
        self._shown = len(self.bus.verdicts())
        if report.ok or self.on_error == "continue":
            from gradscope.session import fit_epochs

            self.bus.emit(PhaseChanged("train", total=fit_epochs(call)))
            return True
        if self.on_error == "raise":
            report.raise_for_errors()
        # "stop": fit calls train_function once more before it reads stop_training;
        # that call evaluates instead (Keras reads the metrics after it, so they
        # must have seen a batch): the epoch's figures are the untrained model's.
        self.model.stop_training = True
        self._stopped = self.model.train_function
        self.model.make_test_function()
        self.model.train_function = self.model.test_function
        worst = next(v for v in report.verdicts if v.severity == "error")
        print(f"gradscope: stopped the training before its first step: {worst.check} "
              f"({worst.subject})", flush=True)
        return False

    def _start_watch(self, call: Any) -> None:
        try:
            self._watching = self._session.start_watch(call, call.args, call.kwargs)
            if self._watching is not None:
                self._watching.set_model(self.model)
                self._watching.set_params(self.params)
                self._watching.on_train_begin()
        except Exception as exc:  # noqa: BLE001 - without the watch the user's fit still runs
            if strict() and is_our_bug(exc):
                raise
            self._watching = None
            lost(self.bus.emit, "the per-layer figures of your own training (phase=train)", exc)

    # -- what the user sees -------------------------------------------------------
    def _show(self, report: Report) -> None:
        shell = _notebook_shell()
        if shell is not None:
            from IPython.display import display

            display(report)
        else:
            print(repr(report), flush=True)

    def _show_new(self, when: str) -> None:
        """The verdicts issued since the last shown (the training's), if any."""
        verdicts = self.bus.verdicts()[self._shown:]
        self._shown += len(verdicts)
        if not verdicts:
            return
        head = f"gradscope: {len(verdicts)} more finding{'s' if len(verdicts) != 1 else ''}"
        print(f"{head} {when}:".replace("  ", " ") if when else f"{head}:", flush=True)
        for verdict in verdicts:
            print(format_verdict(verdict, colour=False), flush=True)


def _notebook_shell() -> Any:
    """The IPython shell of a notebook kernel (Jupyter, VS Code, Colab), else None."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython: print instead
        return None
    if shell is None or "IPKernelApp" not in getattr(shell, "config", {}):
        return None
    return shell
