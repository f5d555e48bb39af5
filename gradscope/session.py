"""One gradscope run: takes the first fit, diagnoses it, then lets the user's fit go on.

Order of work, and why:
1. read probe batches from the fit's data (the user's fit still gets every batch);
2. build the user's model if fit would have (same as Keras would do on the first batch);
3. inside `preserved_rng()`: static checks, clone, compiled probe steps, dynamic checks;
   so a seeded script trains exactly as under `python`;
4. hand the fit back to Keras with the same data, or stop (--probe-only).
Any failure of ours becomes a `probe-failed` info verdict: the user's run goes on.
"""

from __future__ import annotations

import gc
import sys
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from gradscope.events import (
    EventBus,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    Note,
    PhaseChanged,
    RunFinished,
    StepStats,
    VerdictIssued,
)
from gradscope.internal import is_our_bug, lost, print_traceback, strict
from gradscope.options import RunOptions
from gradscope.verdicts import Verdict


class _Skipped(Exception):
    """The user asked for no experiments."""


class Session:
    def __init__(self, options: RunOptions, bus: EventBus) -> None:
        self.options = options
        self.bus = bus
        self.fit_seen = False
        self._finished = False
        self._data_kind = "arrays"
        self._budget_steps: int | None = None
        self._batch_size = 32
        self._deferred: list[Verdict] = []  # static verdicts waiting for the experiments

    # -- the interceptor's entry point ------------------------------------
    def on_fit(self, call: Any) -> Any:
        """Called by the interceptor with the first FitCall (a fit or a train_on_batch)."""
        from gradscope.intercept import ProbeFinished

        self.fit_seen = True
        args, kwargs = call.args, call.kwargs
        try:
            args, kwargs = self._diagnose(call)
        except Exception as exc:  # noqa: BLE001 - never let our failure end the user's run
            if strict() and is_our_bug(exc):
                raise
            self._issue_deferred(None)  # no evidence came: they stand as found
            self._probe_failed(exc)
        # The clone, our compiled steps and the experiments' copies are garbage
        # now (reference cycles): free them before the user's fit needs memory.
        _give_back_memory()
        if self.options.probe_only:
            self.bus.emit(PhaseChanged("done"))
            raise ProbeFinished()
        self.bus.emit(PhaseChanged("train"))
        if getattr(call, "method", "fit") == "fit":  # train_on_batch has no epochs to monitor
            args, kwargs = self._with_train_monitor(call, args, kwargs)
        return call.run_original(args, kwargs)

    def _with_train_monitor(self, call: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Stream per-layer figures (phase=train) from the user's own fit."""
        try:
            from gradscope.engine.layers import describe, probe_layers
            from gradscope.engine.train_monitor import TrainMonitor, with_callback

            layers = probe_layers(call.model)
            monitor = TrainMonitor(layers, describe(layers), self.bus.emit)
            return with_callback(call.original, call.model, args, kwargs, monitor)
        except Exception as exc:  # noqa: BLE001 - without the monitor the user's fit still runs
            lost(self.bus.emit, "the per-layer figures of your own training (phase=train)", exc)
            return args, kwargs

    def verdict_exit_code(self) -> int:
        return 1 if any(v.severity == "error" for v in self.bus.verdicts()) else 0

    def finish(self, status: str, exit_code: int) -> None:
        if self._finished:
            return
        self._finished = True
        self.bus.emit(RunFinished(status=status, exit_code=exit_code))
        self.bus.close()

    # -- the diagnosis ------------------------------------------------------
    def _issue(self, verdicts: list[Verdict]) -> None:
        for v in verdicts:
            self.bus.emit(VerdictIssued(v))

    def _issue_deferred(self, experiments: Any) -> None:
        """The static findings that waited for evidence: those it does not clear."""
        from gradscope.checks.arbitration import confirmed

        deferred, self._deferred = self._deferred, []
        self._issue(confirmed(deferred, experiments))

    def _histograms(self, probe: Any, step: int, x: Any, y: Any, sw: Any) -> None:
        """Send every layer's histograms; a failure costs only the histograms."""
        try:
            self.bus.emit(probe.run("probe", step, x, y, sw))
        except Exception as exc:  # noqa: BLE001 - the drill-down just shows none
            lost(self.bus.emit, "the histograms", exc)

    def _probe_failed(self, exc: BaseException) -> None:
        from gradscope.checks.catalogue import verdict

        detail = [line for line in f"{type(exc).__name__}: {exc}".strip().splitlines() if line.strip()]
        # TF errors put the useful line last ("Received a label value of 6 ...").
        first = detail[0][:300] if detail else type(exc).__name__
        explained = any(v.severity == "error" for v in self.bus.verdicts())
        if explained:
            message = (
                f"a training step on a clone fails ({first}): the user's fit() will fail the "
                "same way, for the reason in the verdict above."
            )
            fix = "Apply the fix of the verdict above."
        else:
            message = (
                f"gradscope could not finish probing this model ({first}); the verdicts "
                "above come from the checks that did run."
            )
            fix = (
                "If fit() itself fails the same way, the error says why. Otherwise run with "
                "GRADSCOPE_DEBUG=1 and report the traceback."
            )
        self._issue([verdict("probe-failed", "model", message, fix, error=first)])
        self.bus.emit(Note("warning", "probe failed: " + first))
        print_traceback(exc)

    def _note_experiments(self, e: Any) -> None:
        """What the experiments measured, for the record and the UI."""
        lines = [
            f"overfit 32 samples for {e.overfit_steps} steps: loss {e.overfit_loss_start:.4g} "
            f"-> {e.overfit_loss_end:.4g}"
            + (
                f", accuracy {_share(e.overfit_acc_start)} -> {_share(e.overfit_acc_end)}"
                if e.overfit_acc_end is not None and e.overfit_acc_start is not None
                else ""
            ),
        ] if e.overfit_steps else []
        if e.sweep:
            points = ", ".join(f"{p.lr:.0e}: {p.loss:.4g}" for p in e.sweep)
            lines.append(f"learning-rate sweep ({e.sweep_steps} steps each), loss after: {points}")
        if e.heldout_acc is not None:
            lines.append(
                f"held-back subset: train accuracy {_share(e.heldout_train_acc)}, held-back "
                f"{_share(e.heldout_acc)} (majority class {_share(e.heldout_majority)})"
            )
        if e.budget_curve:
            lines.append(
                f"your budget of {e.budget_steps} steps replayed on a clone: evaluation loss "
                + " -> ".join(f"{c:.4g}" for c in e.budget_curve)
            )
        for line in lines:
            self.bus.emit(Note("info", line))

    def _note_cut_short(self, e: Any) -> None:
        """The --budget cap stopped experiments: which checks could not run, and how
        to give them time. Never silent: without them a clean bill means less."""
        if not e.cut_short:
            return
        checks = _experiment_checks(list(e.cut_short))
        self.bus.emit(Note(
            "warning",
            f"the experiments reached the --budget cap of {e.budget_cap:g} s: "
            f"{', '.join(e.cut_short)} did not run, so {', '.join(checks)} could not be "
            f"checked; give them time with --budget {max(60, 4 * e.budget_cap):g}",
            unchecked=checks,
        ))

    def _diagnose(self, call: Any) -> tuple[tuple, dict]:
        from gradscope.engine.fitdata import capture_fit_data
        from gradscope.engine.rng import preserved_rng
        from gradscope.engine.target import ensure_built

        seed = self.options.seed if self.options.seed is not None else 0
        self.bus.emit(PhaseChanged("static"))
        data = capture_fit_data(call.original, call.args, call.kwargs, seed=seed)
        self._data_kind = data.kind
        self._budget_steps = _budget_steps(call, data)
        self._batch_size = data.batch_size or 32
        # Take the probe batches first: a generator's fit_args replays what was taken.
        batches = data.probe_batches(max(1, self.options.steps))
        # (Outside preserved_rng: the generator goes on from where it stops.)
        data.read_for_sample(self._budget_steps)
        args, kwargs = data.fit_args()
        if not batches:
            raise ValueError("the training data yielded no batch")
        model = call.model
        ensure_built(model, batches[0][0])
        # Keras's own warnings about the model (e.g. softmax over one unit) would
        # print twice: once for our probe, once for the user's fit. Keep the user's.
        with preserved_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sample = data.sample()
            self._run_probe(model, batches, sample)
        return args, kwargs

    def _probe_own_step(
        self, model: Any, custom: list[str], batches: list[Any], facts: Any,
        forward_error: Exception | None,
    ) -> None:
        """Probe steps through the model's own train_step (engine/own_step.py):
        per-layer figures and the dynamic checks that read them. No experiments:
        they train with a loss of gradscope's own, which this model's step may not use."""
        from gradscope.checks.arbitration import explained
        from gradscope.checks.dynamic import run_dynamic
        from gradscope.engine.experiments import EXPERIMENT_CHECKS
        from gradscope.engine.own_step import TrainStepFailed, probe_own_step

        self.bus.emit(PhaseChanged("probe"))
        try:
            run = probe_own_step(
                model, batches, max(1, self.options.steps), triple=self._data_kind == "batch"
            )
        except TrainStepFailed as exc:  # the user's step itself: said in the verdict
            self._issue([_custom_step_verdict(model, custom, forward_error, probe_error=exc.error)])
            self._issue_deferred(None)
            return
        self._issue([_custom_step_verdict(model, custom, forward_error, loss_log=run.loss_log)])
        for note in run.notes:
            self.bus.emit(Note("info", note))
        self.bus.emit(Note(
            "info",
            f"experiments skipped: they train with a loss gradscope computes, and "
            f"{type(model).__name__} trains by its own train_step()",
            unchecked=tuple(dict.fromkeys(c for cs in EXPERIMENT_CHECKS.values() for c in cs)),
        ))
        for step, (result, figures) in enumerate(run.series, start=1):
            self.bus.emit(StepStats("probe", step, result.loss, seconds=result.seconds))
            self.bus.emit(LayerStats("probe", step, tuple(
                LayerRow(
                    layer=m.name, layer_type=m.layer_type, param_count=m.param_count,
                    trainable=m.trainable, grad_norm=f.grad_norm, weight_norm=f.weight_norm,
                    update_ratio=f.update_ratio, act_mean=f.act_mean, act_std=f.act_std,
                    act_saturated_frac=f.act_saturated_frac, act_dead_frac=f.act_dead_frac,
                )
                for m, f in zip(run.metas, figures, strict=True)
            )))
        out = facts.outputs[0] if facts.outputs else None
        probe_facts = _probe_facts(
            run.metas, run.series, disconnected=run.disconnected,
            output_layers=[o.layer for o in facts.outputs],
        )
        self._issue_deferred(None)
        self._issue(explained(self.bus.verdicts(), run_dynamic(
            probe_facts, None, False, None, out.loss if out is not None else None,
        )))

    def _run_probe(self, model: Any, batches: list[Any], sample: Any) -> None:
        from gradscope.checks.arbitration import explained, needs_evidence
        from gradscope.checks.dynamic import run_dynamic
        from gradscope.checks.facts import EmbeddingIds
        from gradscope.checks.static import run_static
        from gradscope.engine.compiling import EAGER_LAYERS, runs_eagerly
        from gradscope.engine.cost import StepCost, measuring_cost
        from gradscope.engine.experiments import EXPERIMENT_CHECKS, Trainer, run_experiments
        from gradscope.engine.facts import (
            embedding_ids_in_range,
            facts_without_forward,
            model_facts,
        )
        from gradscope.engine.histograms import HistogramProbe
        from gradscope.engine.layers import describe, layer_config, probe_layers
        from gradscope.engine.probe import ProbeStep
        from gradscope.engine.target import custom_training, make_target
        from gradscope.engine.training import BatchNormCalibration, to_tensors

        x0, y0, sw0 = batches[0]
        custom = custom_training(model)
        own_step = "train_step" in custom  # probed through that step, said once probed
        if custom and not own_step:
            self._issue([_custom_step_verdict(model, custom)])
        target = make_target(model, x0)
        try:
            layers = probe_layers(target.model)
            metas = describe(layers)
            self.bus.emit(
                ModelDescribed(
                    model_name=model.name,
                    model_class=type(model).__name__,
                    param_count=int(sum(int(np.prod(v.shape)) for v in model.weights)),
                    trainable_param_count=int(
                        sum(int(np.prod(v.shape)) for v in model.trainable_weights)
                    ),
                    device=_device_name(),
                    probe_mode="in-place" if own_step else target.mode,
                    layers=tuple(
                        LayerInfo(m.name, m.layer_type, m.param_count, m.trainable, m.activation,
                                  *layer_config(layer))
                        for m, layer in zip(metas, layers, strict=True)
                    ),
                )
            )
            eager = runs_eagerly(layers)
            notes = list(target.notes)
            if eager:
                notes.append(
                    f"{len(layers)} layers: gradscope's steps run eagerly (from {EAGER_LAYERS} "
                    f"layers; compiling one would take about {0.06 * len(layers):.0f} s and "
                    f"{len(layers)} MB), so the experiments fit fewer steps in --budget"
                )
            # (How the probe ran means nothing when there is no loss to probe.)
            for note in notes if target.loss_fn is not None and not own_step else []:
                self.bus.emit(Note("info", note))

            # Static checks read labels from a data sample and outputs from one eager call.
            sx, sy, _ = sample
            # Outputs as a training step sees them (batch statistics in BatchNormalization).
            ids: list[EmbeddingIds] = []
            forward_error: Exception | None = None
            try:
                with embedding_ids_in_range([]):
                    BatchNormCalibration(target.model)(to_tensors(_head(sx, 512)), compiled=False)
                # The same call measures the model's nominal step cost, which sizes
                # the experiments (in steps: the verdicts must not depend on speed).
                cost = StepCost()
                with embedding_ids_in_range(ids), measuring_cost(cost):
                    facts, _preds_before = model_facts(target.model, _head(sx, 512), sy)
            except Exception as exc:  # noqa: BLE001 - no forward pass (no call()): the checks that need none still run
                forward_error = exc
                facts = facts_without_forward(target.model, _head(sx, 512), sy)
            facts = replace(facts, embedding_ids=tuple(ids))
            facts = _with_trainable(facts, _user_trainable_facts(model))
            static = run_static(facts, _batch_facts(self._data_kind, batches))
            # Some static findings are only a problem if the model then fails to
            # learn: they wait for the experiments' evidence (issued as they are
            # if there is none).
            self._deferred = [v for v in static if needs_evidence(v)]
            self._issue([v for v in static if not needs_evidence(v)])
            if own_step:
                self._probe_own_step(model, custom, batches, facts, forward_error)
                return
            if forward_error is not None:
                raise forward_error
            if target.loss_fn is None:
                if custom:  # its train_step computes the loss: said so, nothing to probe
                    self._issue_deferred(None)
                    return
                raise ValueError("the model was compiled without a loss")

            self.bus.emit(PhaseChanged("probe"))
            xt, yt, swt = to_tensors(x0), to_tensors(y0), to_tensors(sw0)
            # Build the loss object eagerly: variables cannot be created inside tf.function.
            target.loss_fn(yt, target.model(xt, training=False), swt)
            trainer = Trainer(
                target.model, target.optimizer, target.loss_fn, start=target.snapshot, eager=eager
            )
            eval_set = (_head(sx, 256), _head(sy, 256))
            eval_before = trainer.evaluate(to_tensors(eval_set[0]), to_tensors(eval_set[1]))
            probe = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, metas, eager)
            histograms = HistogramProbe(
                target.model, target.optimizer, target.loss_fn, layers, metas, eager
            )
            self._histograms(histograms, 0, xt, yt, swt)
            series: list[Any] = []
            for step in range(max(1, self.options.steps)):
                x, y, sw = batches[step % len(batches)]
                result = probe.run(to_tensors(x), to_tensors(y), to_tensors(sw))
                figures = probe.layer_figures(result)
                series.append((result, figures))
                self.bus.emit(
                    StepStats(
                        "probe",
                        step + 1,
                        result.loss,
                        seconds=result.seconds,
                        extra={"data_loss": result.data_loss, "reg_loss": result.reg_loss},
                    )
                )
                self.bus.emit(
                    LayerStats(
                        "probe",
                        step + 1,
                        tuple(
                            LayerRow(
                                layer=m.name,
                                layer_type=m.layer_type,
                                param_count=m.param_count,
                                trainable=m.trainable,
                                grad_norm=f.grad_norm,
                                weight_norm=f.weight_norm,
                                update_ratio=f.update_ratio,
                                act_mean=f.act_mean,
                                act_std=f.act_std,
                                act_saturated_frac=f.act_saturated_frac,
                                act_dead_frac=f.act_dead_frac,
                            )
                            for m, f in zip(metas, figures, strict=True)
                        ),
                    )
                )
            self._histograms(histograms, len(series), xt, yt, swt)
            # Their compiled graphs are a deep model's largest memory (1000
            # layers: ~1 GB): gone before the experiments trace theirs.
            probe.release()
            del histograms
            gc.collect()
            self.bus.emit(PhaseChanged("experiments"))
            out = facts.outputs[0] if facts.outputs else None
            classification = out is not None and out.loss in (
                "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"
            )
            n_classes = None
            if out is not None and classification:
                n_classes = out.units if out.units and out.units > 1 else 2
            experiments = None
            try:
                if self.options.budget <= 0:
                    raise _Skipped()
                experiments = run_experiments(
                    trainer, sample, batches, eval_before, eval_set, cost,
                    # Predictions are logits when the output has no squashing activation.
                    logits_output=out is not None and out.activation in (None, "linear"),
                    classification=classification,
                    budget_seconds=self.options.budget,
                    seed=self.options.seed or 0,
                    budget_steps=self._budget_steps,
                    batch_size=self._batch_size,
                    scale=self.options.experiment_scale,
                )
                experiments = replace(
                    experiments,
                    probability_output=out is not None and out.activation in ("softmax", "sigmoid"),
                    optimizer_epsilon=_epsilon(target.optimizer),
                    optimizer_clip=_clipping(target.optimizer),
                    optimizer_name=type(
                        getattr(target.optimizer, "inner_optimizer", target.optimizer)
                    ).__name__
                )
            except _Skipped:
                self.bus.emit(Note("info", "experiments skipped (--budget 0)",
                                   unchecked=_experiment_checks(list(EXPERIMENT_CHECKS))))
            except Exception as exc:  # noqa: BLE001 - the probe's own verdicts still stand
                experiments = None
                lost(self.bus.emit, "the experiments (and the checks that read them)", exc)
                self.bus.emit(Note("warning", "checks that could not run without the experiments",
                                   unchecked=_experiment_checks(list(EXPERIMENT_CHECKS))))
            if experiments is not None:
                self._note_experiments(experiments)
                self._note_cut_short(experiments)
            probe_facts = _probe_facts(
                metas, series,
                disconnected=[
                    f"{_owner_name(probe, i)}/{probe.tvars[i].name}" for i in probe.disconnected
                ],
                output_layers=[o.layer for o in facts.outputs],
            )
            self._issue_deferred(experiments)
            # A cause already issued (or among these) ranks above what it explains.
            self._issue(explained(self.bus.verdicts(), run_dynamic(
                probe_facts, experiments, classification, n_classes,
                out.loss if out is not None else None,
            )))
        finally:
            target.restore()
            target.close()


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _experiment_checks(names: list[str]) -> tuple[str, ...]:
    """The checks that read these experiments (engine.experiments.EXPERIMENT_CHECKS)."""
    from gradscope.engine.experiments import EXPERIMENT_CHECKS

    return tuple(dict.fromkeys(c for name in names for c in EXPERIMENT_CHECKS.get(name, ())))


def _custom_step_verdict(
    model: Any,
    overridden: list[str],
    forward_error: BaseException | None = None,
    probe_error: BaseException | None = None,
    loss_log: str | None = None,
) -> Verdict:
    """What gradscope probed of a model with its own training code: its own
    train_step (when it overrides it: `loss_log` says which log gave the loss,
    `probe_error` why that step could not run), else Keras's standard step on
    the compiled loss (an own compute_loss alone)."""
    from gradscope.checks.catalogue import verdict
    from gradscope.engine.target import compiled_loss

    loss = compiled_loss(model)
    cls = type(model).__name__
    methods = " and ".join(f"{m}()" for m in overridden)
    no_forward = ""
    if forward_error is not None:
        why = (
            "no call()" if isinstance(forward_error, NotImplementedError)
            else _first_line(forward_error)
        )
        no_forward = (
            f" It has no forward pass gradscope can run ({why}), so the "
            "checks that read the model's outputs (output activation and units against the "
            "loss) were skipped; the data, label and compile checks ran."
        )
    if "train_step" in overridden and probe_error is not None:
        message = (
            f"{cls} overrides {methods}; gradscope ran it on your first batches to probe it, "
            f"and it failed ({_first_line(probe_error)}): no gradient or activation figures "
            "and no dynamic checks (the data and model checks still ran)." + no_forward
        )
        fix = (
            "If your fit() fails the same way, the error says why. Otherwise run with "
            "GRADSCOPE_DEBUG=1 and report it."
        )
        probed = False
    elif "train_step" in overridden:
        read = f" (the loss per step: its log {loss_log})" if loss_log and not loss_log.startswith(
            "what") else ""
        message = (
            f"{cls} overrides {methods}; gradscope probed it through your own train_step(), "
            "run eagerly on your model and every variable restored afterwards: gradients as "
            f"your step hands them to its optimizer(s), updates as the weights moved{read}. "
            "The learning-rate sweep, overfit and held-back experiments were skipped (they "
            "train with a loss gradscope computes itself), and so were the checks that need "
            "them." + no_forward
        )
        fix = (
            "Nothing to do: this says how the figures were taken. To have the experiments "
            "run too, train with Keras's own train_step on a compiled loss."
        )
        probed = True
    elif loss is None:
        message = (
            f"{cls} overrides {methods} and was compiled without a loss: gradscope "
            "probes gradients through the compiled loss, so it took no gradient or "
            "activation figures and ran no dynamic checks (the data and model checks "
            "still ran)."
        )
        fix = (
            "To have the model probed, compile it with the loss your training step "
            "minimises: model.compile(optimizer, loss=...), and compute it in your "
            "train_step with self.compute_loss(x, y, y_pred)."
        )
        probed = False
    else:
        message = (
            f"{cls} overrides {methods}; gradscope probed it with a standard training "
            f"step on the compiled loss ({_loss_display(loss)}), not with your {methods}: "
            "the gradient figures and the dynamic verdicts describe that step, which may "
            "not be what your training does (other loss terms, targets or updates)."
        )
        fix = (
            "Nothing to do if your training step minimises the compiled loss (e.g. via "
            "self.compute_loss). Otherwise read the probe's figures as those of the "
            "compiled loss, or compile with the loss your step minimises."
        )
        probed = True
    return verdict(
        "custom-train-step", "model", message, fix,
        overridden=list(overridden),
        compiled_loss=None if loss is None else _loss_display(loss),
        probed=probed,
        through="train_step" if "train_step" in overridden and probed else (
            "compiled loss" if probed else None),
    )


def _first_line(exc: BaseException) -> str:
    lines = [line for line in f"{type(exc).__name__}: {exc}".splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _loss_display(loss: Any) -> str:
    from gradscope.engine.facts import canonical_loss

    if isinstance(loss, dict):
        return ", ".join(f"{k}: {_loss_display(v)}" for k, v in loss.items())
    if isinstance(loss, (list, tuple)):
        return ", ".join(_loss_display(v) for v in loss)
    return canonical_loss(loss)[1]


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


def _device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        details = tf.config.experimental.get_device_details(gpus[0])
        return str(details.get("device_name") or "GPU")
    except Exception:  # noqa: BLE001
        return "GPU"


def _head(struct: Any, n: int) -> Any:
    from keras.src import tree

    return tree.map_structure(lambda a: a[:n], struct)


def _user_trainable_facts(model: Any) -> tuple[int, int, tuple[str, ...], tuple[str, ...]]:
    """Trainable state as the user's fit will see it (the clone may differ in flags)."""
    from gradscope.engine.layers import own_variables, probe_layers

    weighted = [layer for layer in probe_layers(model) if own_variables(layer)]
    frozen = tuple(layer.name for layer in weighted if not layer.trainable)
    total = int(sum(int(np.prod(v.shape)) for v in model.weights))
    trainable = int(sum(int(np.prod(v.shape)) for v in model.trainable_weights))
    return total, trainable, tuple(layer.name for layer in weighted), frozen


def _with_trainable(facts: Any, user: tuple[int, int, tuple[str, ...], tuple[str, ...]]) -> Any:
    total, trainable, weighted, frozen = user
    return replace(
        facts,
        total_params=total,
        trainable_params=trainable,
        weighted_layers=weighted,
        frozen_layers=frozen,
    )


def _budget_steps(call: Any, data: Any) -> int | None:
    """Training steps the user's fit will run (epochs x steps per epoch), if known."""
    import inspect

    try:
        bound = inspect.signature(call.original).bind(call.model, *call.args, **call.kwargs)
    except TypeError:
        return None
    args = bound.arguments
    epochs = int(args.get("epochs", 1) or 1) - int(args.get("initial_epoch", 0) or 0)
    per_epoch = args.get("steps_per_epoch")
    if per_epoch is None and data.kind == "arrays" and data.num_samples and data.batch_size:
        per_epoch = -(-int(data.num_samples) // int(data.batch_size))
    x: Any = args.get("x")
    if per_epoch is None and data.kind == "pydataset":
        try:
            per_epoch = len(x)
        except TypeError:
            per_epoch = None
    elif per_epoch is None and data.kind == "dataset":
        try:
            card = int(x.cardinality())
            per_epoch = card if card > 0 else None
        except Exception:  # noqa: BLE001
            per_epoch = None
    if not per_epoch or epochs <= 0:
        return None
    return int(per_epoch) * epochs


def _clipping(optimizer: Any) -> tuple[str, float] | None:
    """The tightest gradient clipping the optimizer applies, if any."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    found = []
    for name in ("clipnorm", "global_clipnorm", "clipvalue"):
        value = getattr(inner, name, None)
        try:
            if value is not None and float(value) > 0:
                found.append((name, float(value)))
        except (TypeError, ValueError):
            continue
    return min(found, key=lambda item: item[1]) if found else None


def _epsilon(optimizer: Any) -> float | None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    value = getattr(inner, "epsilon", None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _batch_facts(kind: str, batches: list[Any]) -> Any:
    from keras.src import tree

    from gradscope.checks.facts import batch_facts

    def first(struct: Any) -> Any:
        leaves = tree.flatten(struct) if struct is not None else []
        return np.asarray(leaves[0]) if leaves else None

    xs = [first(b[0]) for b in batches]
    ys = [first(b[1]) for b in batches]
    weights = [w for b in batches if b[2] is not None for w in tree.flatten(b[2])]
    return batch_facts(kind, [x for x in xs if x is not None], ys, weights=weights)


def _owner_name(probe: Any, var_index: int) -> str:
    layer = int(probe.var_layer[var_index])
    return probe.metas[layer].name if layer >= 0 else "model"


def _probe_facts(
    metas: list[Any],
    series: list[Any],
    disconnected: list[str] | None = None,
    output_layers: list[str] | None = None,
) -> Any:
    from gradscope.checks.facts import ProbeFacts

    def grid(attr: str) -> np.ndarray:
        return np.array(
            [[np.nan if getattr(f, attr) is None else getattr(f, attr) for f in figs] for _, figs in series],
            dtype=np.float64,
        )

    act_mean = grid("act_mean")
    tapped = np.array([[f.act_mean is not None for f in figs] for _, figs in series])
    return ProbeFacts(
        layers=tuple(m.name for m in metas),
        layer_types=tuple(m.layer_type for m in metas),
        activations=tuple(m.activation for m in metas),
        losses=np.array([r.loss for r, _ in series], dtype=np.float64),
        grad_norm=grid("grad_norm"),
        weight_norm=grid("weight_norm"),
        update_ratio=grid("update_ratio"),
        act_mean=act_mean,
        act_finite=~tapped | np.isfinite(act_mean),
        saturated=grid("act_saturated_frac"),
        dead=grid("act_dead_frac"),
        data_losses=np.array([r.data_loss for r, _ in series], dtype=np.float64),
        reg_losses=np.array([r.reg_loss for r, _ in series], dtype=np.float64),
        disconnected=tuple(disconnected or ()),
        output_layers=tuple(output_layers or ()),
    )

