"""gradscope from Python: `gradscope.diagnose(model, x, y)` returns a `Report`.

The same engine, the same verdicts and the same guarantees as `gradscope run`
(which takes over the script's first `fit()` the same way): the model is
diagnosed as `fit(x, y, ...)` would train it, on a clone, inside preserved
random streams, and its weights, optimizer state and random streams are left
exactly as they were. Nothing trains the user's model here: `diagnose` is
`gradscope run --probe-only` on one fit call.

Light to import (no TensorFlow until `diagnose` runs).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

from gradscope import __version__
from gradscope.events import Event, LayerRow, LayerStats, PhaseChanged, RunFinished, RunStarted
from gradscope.report import Report as RunReport
from gradscope.verdict_text import format_verdict, verdicts_block
from gradscope.verdicts import Verdict

DEFAULT_BUDGET = 60.0


class DiagnosisError(AssertionError):
    """`Report.raise_for_errors()`: the model has an error verdict. The message
    is the most likely cause and its fix. (An AssertionError, so a test
    framework reports it as a failed check.)"""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


class Report:
    """What gradscope found about one model: verdicts, most likely cause first,
    and the per-layer figures of every step it measured."""

    def __init__(self, events: list[Event], fit_arguments: dict[str, Any] | None = None) -> None:
        self.events = list(events)
        self.run = RunReport.from_events(self.events)
        # The arguments diagnose judged, for `model.fit(**report.fit_arguments)`:
        # what you passed, except a generator, which is replayed (what was read
        # from it, then the rest).
        self.fit_arguments: dict[str, Any] = dict(fit_arguments or {})

    @property
    def verdicts(self) -> list[Verdict]:
        """Every verdict, ranked: the most likely root cause first."""
        return self.run.ranked_verdicts()

    @property
    def headline(self) -> Verdict | None:
        """The most likely cause (an error or a warning), or None."""
        return self.run.headline()

    @property
    def ok(self) -> bool:
        """No error verdict (warnings and notes may remain)."""
        return self.run.verdict_exit_code() == 0

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The per-layer table: one row per layer and measured step, as the CLI's
        `--csv` has them (phase, step, layer, ..., act_dead_frac)."""
        return [{"phase": e.phase, "step": e.step, **_row(r)}
                for e in self.events if isinstance(e, LayerStats) for r in e.rows]

    def raise_for_errors(self) -> None:
        """Raise DiagnosisError when any verdict is an error (for test suites)."""
        if self.ok:
            return
        worst = next(v for v in self.verdicts if v.severity == "error")
        raise DiagnosisError(f"{worst.check} ({worst.subject}): {worst.message}\nfix: {worst.fix}", self)

    def to_csv(self, path: str) -> None:
        """The per-layer table as CSV (the file `gradscope run --csv` writes)."""
        from gradscope.sinks.layer_csv import LayerCsvSink

        sink = LayerCsvSink(path)
        for event in self.events:
            sink.handle(event)
        sink.close()

    def to_json(self, path: str) -> None:
        """The full report as JSON (the document of `gradscope run --json`)."""
        from gradscope.sinks.json_report import TrainingSeries, report_json

        training = TrainingSeries()
        for event in self.events:
            training.apply(event)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report_json(self.run, training), f, indent=2, allow_nan=False, default=str)
            f.write("\n")

    def to_dataframe(self) -> Any:
        """The per-layer table as a pandas DataFrame (pandas is not a dependency)."""
        try:
            import pandas as pd
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("Report.to_dataframe() needs pandas: pip install pandas") from error
        return pd.DataFrame(self.layers)

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.verdicts)

    def __repr__(self) -> str:
        """The headless summary: the verdict count, the most likely cause, each verdict and its fix."""
        return verdicts_block(self.run, colour=False)

    def _repr_markdown_(self) -> str:
        lines = []
        for v in self.verdicts:
            # A fix is prose and code mixed: a plain fence (no language, no highlighting).
            lines += [f"**{v.severity.upper()} `{v.check}`** ({v.subject}): {v.message}", "",
                      "```", v.fix, "```", ""]
        return "\n".join(lines) if lines else self.run.nothing_found()

    def _repr_html_(self) -> str:
        """The notebook's picture: verdict cards, the gradient norm by depth, the probe's loss."""
        from gradscope.report_html import report_html

        return report_html(self.run)

    def describe(self, verdict: Verdict) -> str:
        """One verdict as the summary writes it."""
        return format_verdict(verdict, colour=False)


def diagnose(
    model: Any,
    x: Any = None,
    y: Any = None,
    *,
    batch_size: int | None = None,
    sample_weight: Any = None,
    class_weight: Any = None,
    validation_data: Any = None,
    steps_per_epoch: int | None = None,
    epochs: int = 1,
    steps: int = 5,
    seed: int | None = None,
    budget: float = DEFAULT_BUDGET,
    loss: Any = None,
    optimizer: Any = None,
    metrics: Any = None,
    **fit_kwargs: Any,
) -> Report:
    """Diagnose `model` as `model.fit(x, y, batch_size=..., ...)` would train it.

    A compiled `model` is judged with the loss and optimizer it was compiled
    with. `loss`, `optimizer` and `metrics` take what `compile` takes (a string,
    an instance, a loss function): an uncompiled model (trained by your own
    `tf.GradientTape` loop) is diagnosed as if `model.compile(optimizer, loss,
    metrics)` had been called, and a compiled one with these instead of its own.
    Either way the model is left as it was: still uncompiled, or compiled as
    before. An optimizer that has stepped is judged with its state (iteration
    count, slots), which is left bit for bit as it was.

    `x`, `y` take what `fit` takes: arrays, dicts of arrays, a `tf.data.Dataset`,
    a `keras.utils.PyDataset`. A Python generator is read from (the batches
    gradscope takes are gone from it afterwards: pass arrays or a Dataset to
    train on the same data next). `epochs` and `steps_per_epoch` are your
    training's: the checks that judge the budget read them. `steps`: probe
    steps; `seed`: gradscope's own sampling (the same verdicts on every run);
    `budget`: a safety cap, in seconds, on the experiments (0 skips them).
    Any other argument of `fit` (`validation_split`, `shuffle`, ...) is taken
    as `fit` takes it, so `diagnose(model, **your_fit_arguments)` judges
    exactly the training you would start.
    """
    from gradscope.backend_check import require_tensorflow_backend

    require_tensorflow_backend()  # another Keras backend: one RuntimeError (BackendError)
    import keras

    from gradscope.engine.temporary_compile import compiled_for_diagnosis
    from gradscope.events import EventBus
    from gradscope.intercept import FitCall
    from gradscope.options import RunOptions
    from gradscope.session import Session

    if not isinstance(model, keras.Model):
        raise TypeError(f"gradscope.diagnose() takes a keras.Model, not {type(model).__name__}")
    kwargs: dict[str, Any] = {"x": x, "y": y, "batch_size": batch_size, "epochs": epochs,
                              "sample_weight": sample_weight, "class_weight": class_weight,
                              "validation_data": validation_data, "steps_per_epoch": steps_per_epoch,
                              "verbose": 0}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    import inspect

    # Keras's own fit, not keras.Model.fit: that one may be patched (under
    # `gradscope run`, or by the user's tools).
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    keras_fit = TensorFlowTrainer.fit
    accepted = set(inspect.signature(keras_fit).parameters) - {"self"}
    unknown = sorted(set(fit_kwargs) - accepted)
    if unknown:
        raise TypeError(f"gradscope.diagnose() got arguments fit() does not take: {', '.join(unknown)}")
    kwargs.update(fit_kwargs)
    kwargs["verbose"] = 0
    options = RunOptions(script="<python>", steps=max(1, int(steps)), probe_only=True, seed=seed,
                         budget=float(budget), watch=False)
    bus = EventBus()
    # An uncompiled model (a ValueError without loss= and optimizer=), or other
    # compile arguments than the model's own: compiled for the diagnosis only.
    with compiled_for_diagnosis(model, loss=loss, optimizer=optimizer, metrics=metrics):
        bus.emit(RunStarted(script="<python>", argv=(), gradscope_version=__version__,
                            started_at=time.time()))
        session = Session(options, bus)
        call = FitCall(model=model, args=(), kwargs=kwargs, original=keras_fit, method="fit")
        # The diagnosis `gradscope run` and the Callback run (Session.diagnose_first).
        _, fit_arguments = session.diagnose_first(call)
        bus.emit(PhaseChanged("done"))
    bus.emit(RunFinished(status="probe-only", exit_code=bus.report.verdict_exit_code()))
    taken = session.data.taken() if session.data is not None else 0
    if taken:
        warnings.warn(
            f"gradscope.diagnose read {taken} batch{'es' if taken != 1 else ''} from your generator: "
            "they are gone from it. Train with model.fit(**report.fit_arguments) (your generator, "
            "with them put back in front), or pass a tf.data.Dataset or a PyDataset",
            UserWarning, stacklevel=2)
    fit_arguments.pop("verbose", None)
    return Report(bus.history, fit_arguments=fit_arguments)


def _row(row: LayerRow) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)
