"""The diagnosis of one intercepted fit, phase by phase:

1. **static**: the model is described, one eager forward pass on the sample
   gives the model facts (and the nominal step cost), the static checks run;
2. **probe**: compiled probe steps on the target (a clone, or the model in
   place behind a snapshot) record per-layer figures;
3. **experiments**: short trainings on the target, sized in steps;
4. **dynamic**: the checks that read the probe and the experiments.

A model with its own `train_step` is probed through it instead (2'), without
experiments. Verdicts go out on the bus as each phase finds them; the rules
between verdicts (what waits for evidence, what a cause explains) are
checks/arbitration.py's. Turning engine output into facts is engine/to_facts.py's.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gradscope.checks.facts import ExperimentFacts, ModelFacts
from gradscope.checks.wording import share
from gradscope.events import (
    EventBus,
    LayerInfo,
    LayerStats,
    ModelDescribed,
    Note,
    PhaseChanged,
    StepStats,
    VerdictIssued,
)
from gradscope.internal import lost, print_traceback
from gradscope.options import RunOptions
from gradscope.session_verdicts import custom_step_verdict, probe_failed_verdict
from gradscope.verdicts import Verdict

# The experiments as the status line names them while they run.
EXPERIMENT_WORDS = {
    "overfit": "overfitting a tiny subset",
    "sweep": "learning-rate sweep",
    "heldout": "held-back subset",
    "replay": "replaying your first steps",
}

if TYPE_CHECKING:
    from gradscope.checks.registry import Check
    from gradscope.engine.cost import StepCost
    from gradscope.engine.experiments import Trainer
    from gradscope.engine.fitdata import Batch
    from gradscope.engine.histograms import HistogramProbe
    from gradscope.engine.layers import LayerMeta
    from gradscope.engine.target import ProbeTarget, ReplicaTarget
    from gradscope.engine.to_facts import Step


@dataclass(frozen=True)
class FitInputs:
    """What the diagnosis reads of the intercepted call."""

    model: Any  # the user's keras.Model, built
    batches: list[Batch]  # the probe batches, in fit's order
    sample: Batch  # rows drawn over the training data the way fit draws them
    data_kind: str  # "arrays" | "dataset" | "generator" | "pydataset" | "batch"
    budget_steps: int | None  # the user's epochs x steps, when known
    batch_size: int


@dataclass(frozen=True)
class StaticOutcome:
    facts: ModelFacts
    cost: StepCost
    forward_error: Exception | None  # the forward pass could not run (no call())


class Diagnosis:
    """Runs the phases in order and issues what each finds (see module doc)."""

    def __init__(self, options: RunOptions, bus: EventBus) -> None:
        self.options = options
        self.bus = bus
        self._deferred: list[Verdict] = []  # static verdicts waiting for the experiments

    # -- issuing -------------------------------------------------------------
    def issue(self, verdicts: list[Verdict]) -> None:
        for v in verdicts:
            self.bus.emit(VerdictIssued(v))

    def issue_deferred(self, experiments: ExperimentFacts | None) -> None:
        """The static findings that waited for evidence: those it does not clear."""
        from gradscope.checks.arbitration import confirmed

        deferred, self._deferred = self._deferred, []
        self.issue(confirmed(deferred, experiments))

    def fail(self, exc: BaseException) -> None:
        """A failure of ours or of the model: the deferred findings stand as
        found, and `probe-failed` says what it means."""
        self.issue_deferred(None)
        verdict = probe_failed_verdict(exc, self.bus.verdicts())
        self.issue([verdict])
        self.bus.emit(Note("warning", "probe failed: " + verdict.evidence["error"]))
        print_traceback(exc)

    # -- the phases ----------------------------------------------------------
    def run(self, inputs: FitInputs) -> None:
        from gradscope.engine.target import custom_training, make_target

        model = inputs.model
        custom = custom_training(model)
        own_step = "train_step" in custom  # probed through that step, said once probed
        if custom and not own_step:
            self.issue([custom_step_verdict(model, custom)])
        target = make_target(model, inputs.batches[0][0])
        try:
            layers, metas, eager = self._describe(model, target, own_step)
            static = self._static(inputs, target)
            if own_step:
                self._own_step(inputs, custom, static, target, eager)
                return
            if static.forward_error is not None:
                raise static.forward_error
            if target.loss_fn is None:
                if custom:  # its own compute_loss with no compiled loss: said, nothing to probe
                    self.issue_deferred(None)
                    return
                raise ValueError("the model was compiled without a loss")
            trainer, eval_set, eval_before, series, disconnected = self._probe(
                inputs, target, layers, metas, eager
            )
            experiments = self._experiments(
                inputs, target, trainer, static, eval_set, eval_before
            )
            self._dynamic(static.facts, metas, series, disconnected, experiments)
        finally:
            target.restore()
            target.close()

    def _describe(self, model: Any, target: ProbeTarget,
                  own_step: bool) -> tuple[list[Any], list[LayerMeta], bool]:
        from gradscope.engine.compiling import EAGER_LAYERS, runs_eagerly
        from gradscope.engine.layers import describe, layer_config, probe_layers
        from gradscope.engine.to_facts import device_name

        layers = probe_layers(target.model)
        metas = describe(layers)
        self.bus.emit(ModelDescribed(
            model_name=model.name,
            model_class=type(model).__name__,
            param_count=int(sum(int(np.prod(v.shape)) for v in model.weights)),
            trainable_param_count=int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
            device=device_name(),
            probe_mode="in-place" if own_step else target.mode,
            layers=tuple(
                LayerInfo(m.name, m.layer_type, m.param_count, m.trainable, m.activation,
                          *layer_config(layer))
                for m, layer in zip(metas, layers, strict=True)
            ),
        ))
        eager = runs_eagerly(layers)
        notes = list(target.notes)
        if eager:
            notes.append(
                f"{len(layers)} layers: gradscope's steps run eagerly (from {EAGER_LAYERS} "
                f"layers; compiling one would take about {0.06 * len(layers):.0f} s and "
                f"{len(layers)} MB), so the experiments take fewer steps"
            )
        # (How the probe ran means nothing when there is no loss to probe.)
        for note in notes if target.loss_fn is not None and not own_step else []:
            self.bus.emit(Note("info", note))
        return layers, metas, eager

    def _static(self, inputs: FitInputs, target: ProbeTarget) -> StaticOutcome:
        """Model facts from one eager call on the sample, then the static checks."""
        from gradscope.checks.arbitration import needs_evidence
        from gradscope.checks.facts import EmbeddingIds
        from gradscope.checks.static import run_static
        from gradscope.engine.cost import StepCost, measuring_cost
        from gradscope.engine.facts import (
            embedding_ids_in_range,
            facts_without_forward,
            model_facts,
        )
        from gradscope.engine.to_facts import head, pipeline_facts, with_user_trainable
        from gradscope.engine.training import BatchNormCalibration, to_tensors

        sx, sy, _ = inputs.sample
        ids: list[EmbeddingIds] = []
        cost = StepCost()
        forward_error: Exception | None = None
        try:
            # Outputs as a training step sees them (batch statistics in BatchNormalization).
            with embedding_ids_in_range([]):
                BatchNormCalibration(target.model)(to_tensors(head(sx, 512)), compiled=False)
            # The same call measures the model's nominal step cost, which sizes
            # the experiments (in steps: the verdicts must not depend on speed).
            with embedding_ids_in_range(ids), measuring_cost(cost):
                facts, _ = model_facts(target.model, head(sx, 512), sy)
        except Exception as exc:  # noqa: BLE001 - no forward pass (no call()): the checks that need none still run
            forward_error = exc
            facts = facts_without_forward(target.model, head(sx, 512), sy)
        facts = with_user_trainable(replace(facts, embedding_ids=tuple(ids)), inputs.model)
        static = run_static(facts, pipeline_facts(inputs.data_kind, inputs.batches),
                            self._check_failed)
        # Some static findings are only a problem if the model then fails to
        # learn: they wait for the experiments' evidence (issued as they are
        # if there is none).
        self._deferred = [v for v in static if needs_evidence(v)]
        self.issue([v for v in static if not needs_evidence(v)])
        return StaticOutcome(facts, cost, forward_error)

    def _probe(
        self, inputs: FitInputs, target: ProbeTarget, layers: list[Any], metas: list[LayerMeta],
        eager: bool,
    ) -> tuple[Trainer, tuple[Any, Any], tuple[np.ndarray, float], list[Step], list[str]]:
        """The probe steps; also builds the experiments' trainer and measures the
        evaluation batch before any step."""
        from gradscope.engine.histograms import HistogramProbe
        from gradscope.engine.layers import probe_layers
        from gradscope.engine.probe import ProbeStep
        from gradscope.engine.replicas import rows_of
        from gradscope.engine.to_facts import disconnected_variables, head, layer_rows
        from gradscope.engine.training import to_tensors

        self.bus.emit(PhaseChanged("probe", total=max(1, self.options.steps)))
        x0, y0, sw0 = inputs.batches[0]
        xt, yt, swt = to_tensors(x0), to_tensors(y0), to_tensors(sw0)
        trainer, eval_set, eval_before = self._trainer(inputs, target, eager)
        replica = self._replicas(inputs, target)
        if replica is None:
            probe = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, metas, eager)
        else:
            probe = ProbeStep(replica.model, replica.optimizer, replica.loss_fn,
                              probe_layers(replica.model), metas, eager, replica.strategy)
            # The histograms run on one device: on one replica's share of the
            # batch, so that no device holds more than a replica step's tensors.
            share = -(-rows_of(xt) // replica.strategy.num_replicas_in_sync)  # type: ignore[operator]
            xt, yt, swt = (None if t is None else head(t, share) for t in (xt, yt, swt))
        histograms = HistogramProbe(
            target.model, target.optimizer, target.loss_fn, layers, metas, eager
        )
        self._histograms(histograms, 0, xt, yt, swt)
        series: list[Step] = []
        for step in range(max(1, self.options.steps)):
            x, y, sw = inputs.batches[step % len(inputs.batches)]
            result = probe.run(to_tensors(x), to_tensors(y), to_tensors(sw))
            figures = probe.layer_figures(result)
            series.append((result, figures))
            self.bus.emit(StepStats(
                "probe", step + 1, result.loss, seconds=result.seconds,
                extra={"data_loss": result.data_loss, "reg_loss": result.reg_loss},
            ))
            self.bus.emit(LayerStats("probe", step + 1, layer_rows(metas, figures)))
        if replica is not None:
            replica.hand_back(target)  # the experiments go on from the probe's steps
        self._histograms(histograms, len(series), xt, yt, swt)
        disconnected = disconnected_variables(probe)
        # Their compiled graphs are a deep model's largest memory (1000
        # layers: ~1 GB): gone before the experiments trace theirs.
        probe.release()
        del histograms
        gc.collect()
        return trainer, eval_set, eval_before, series, disconnected

    def _replicas(self, inputs: FitInputs, target: ProbeTarget) -> ReplicaTarget | None:
        """The target made again under the user's MirroredStrategy, for probe
        steps on every replica (None: one device; said in a note when the user's
        model has several replicas)."""
        from gradscope.engine.replicas import distribute, local_strategy, smallest_batch
        from gradscope.engine.target import replica_target

        strategy = local_strategy(inputs.model)
        if strategy is None:
            return None
        replicas = strategy.num_replicas_in_sync
        used = [inputs.batches[step % len(inputs.batches)] for step in range(max(1, self.options.steps))]
        why = ""
        if smallest_batch(used) < replicas:
            why = f"a batch has fewer rows than the strategy's {replicas} replicas"
        else:
            try:
                x, y, sw = inputs.batches[0]
                for part in (x, y, sw):  # data that cannot be cut in shards (sparse): one device
                    distribute(strategy, part)
                replica = replica_target(target, inputs.model, strategy, x, y, sw)
                self.bus.emit(Note("info", f"probe steps on the strategy's {replicas} replicas, "
                                           "each on its shard of the batch"))
                return replica
            except Exception as exc:  # noqa: BLE001 - the one-device probe gives the same figures
                why = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        self.bus.emit(Note("info", f"probe steps on one device with the whole batch, not on the "
                                   f"strategy's {replicas} replicas ({why})"))
        return None

    def _trainer(self, inputs: FitInputs, target: ProbeTarget,
                 eager: bool) -> tuple[Trainer, tuple[Any, Any], tuple[np.ndarray, float]]:
        """The experiments' trainer on the target, the evaluation batch and what the
        target predicts on it before any step of ours."""
        from gradscope.engine.experiments import Trainer
        from gradscope.engine.to_facts import head
        from gradscope.engine.training import to_tensors

        x0, y0, sw0 = inputs.batches[0]
        xt, yt, swt = to_tensors(x0), to_tensors(y0), to_tensors(sw0)
        # Build the loss object eagerly: variables cannot be created inside tf.function.
        target.loss_fn(yt, target.model(xt, training=False), swt)
        trainer = Trainer(
            target.model, target.optimizer, target.loss_fn, start=target.snapshot, eager=eager
        )
        sx, sy, _ = inputs.sample
        eval_set = (head(sx, 256), head(sy, 256))
        eval_before = trainer.evaluate(to_tensors(eval_set[0]), to_tensors(eval_set[1]))
        return trainer, eval_set, eval_before

    def _histograms(self, probe: HistogramProbe, step: int, x: Any, y: Any, sw: Any) -> None:
        """Send every layer's histograms; a failure costs only the histograms."""
        try:
            self.bus.emit(probe.run("probe", step, x, y, sw))
        except Exception as exc:  # noqa: BLE001 - the drill-down just shows none
            lost(self.bus.emit, "the histograms", exc)

    def _experiments(
        self, inputs: FitInputs, target: ProbeTarget, trainer: Trainer, static: StaticOutcome,
        eval_set: tuple[Any, Any], eval_before: tuple[np.ndarray, float],
    ) -> ExperimentFacts | None:
        from gradscope.checks.registry import CLASSIFICATION_LOSSES
        from gradscope.engine.experiments import EXPERIMENT_CHECKS, run_experiments
        from gradscope.engine.to_facts import (
            optimizer_clipping,
            optimizer_epsilon,
            optimizer_name,
        )

        self.bus.emit(PhaseChanged("experiments"))
        every_check = experiment_checks(list(EXPERIMENT_CHECKS))
        if self.options.budget <= 0:
            self.bus.emit(Note("info", "experiments skipped (--budget 0)", unchecked=every_check))
            return None
        facts = static.facts
        out = facts.outputs[0] if facts.outputs else None
        try:
            experiments = run_experiments(
                trainer, inputs.sample, inputs.batches, eval_before, eval_set, static.cost,
                # Predictions are logits when the output has no squashing activation.
                logits_output=out is not None and out.activation in (None, "linear"),
                classification=out is not None and out.loss in CLASSIFICATION_LOSSES,
                budget_seconds=self.options.budget,
                seed=self.options.seed or 0,
                budget_steps=inputs.budget_steps,
                batch_size=inputs.batch_size,
                scale=self.options.experiment_scale,
                on_start=self._experiment_started,
            )
        except Exception as exc:  # noqa: BLE001 - the probe's own verdicts still stand
            lost(self.bus.emit, "the experiments (and the checks that read them)", exc)
            self.bus.emit(Note("warning", "checks that could not run without the experiments",
                               unchecked=every_check))
            return None
        experiments = replace(
            experiments,
            probability_output=out is not None and out.activation in ("softmax", "sigmoid"),
            optimizer_epsilon=optimizer_epsilon(target.optimizer),
            optimizer_clip=optimizer_clipping(target.optimizer),
            optimizer_name=optimizer_name(target.optimizer),
        )
        self._note_experiments(experiments)
        self._note_cut_short(experiments)
        return experiments

    def _experiment_started(self, name: str, index: int, total: int) -> None:
        self.bus.emit(PhaseChanged("experiments", detail=EXPERIMENT_WORDS.get(name, name),
                                   step=index, total=total))

    def _dynamic(self, facts: ModelFacts, metas: list[LayerMeta], series: list[Step],
                 disconnected: list[str], experiments: ExperimentFacts | None,
                 task: tuple[bool, int | None] | None = None) -> None:
        """The dynamic checks; `task` overrides (classification, n_classes) read
        off the first output (an own train_step's probe: not judged as a task)."""
        from gradscope.checks.arbitration import explained
        from gradscope.checks.dynamic import run_dynamic
        from gradscope.checks.registry import CLASSIFICATION_LOSSES
        from gradscope.engine.to_facts import probe_facts

        out = facts.outputs[0] if facts.outputs else None
        classification = out is not None and out.loss in CLASSIFICATION_LOSSES
        n_classes = None
        if out is not None and classification:
            n_classes = out.units if out.units and out.units > 1 else 2
        if task is not None:
            classification, n_classes = task
        probed = probe_facts(
            metas, series, disconnected=disconnected,
            output_layers=[o.layer for o in facts.outputs],
        )
        self.issue_deferred(experiments)
        # A cause already issued (or among these) ranks above what it explains.
        self.issue(explained(self.bus.verdicts(), run_dynamic(
            probed, experiments, classification, n_classes, out.loss if out is not None else None,
            self._check_failed,
        )))

    def _own_step(self, inputs: FitInputs, custom: list[str], static: StaticOutcome,
                  target: ProbeTarget, eager: bool) -> None:
        """Probe steps through the model's own train_step (engine/own_step.py):
        per-layer figures and the dynamic checks that read them. The experiments
        train with a standard step on the compiled loss: they run only when that
        is a fair stand-in for the model's step (a compiled loss, a forward pass,
        one optimizer: a step that logs, adds a metric or calls super()), not
        for a GAN or a VAE whose step computes its own loss."""
        from gradscope.engine.experiments import EXPERIMENT_CHECKS
        from gradscope.engine.own_step import TrainStepFailed, optimizers_of, probe_own_step
        from gradscope.engine.replicas import multi_worker
        from gradscope.engine.to_facts import layer_rows

        model = inputs.model
        strategy = getattr(model, "_distribute_strategy", None)
        if strategy is not None and multi_worker(strategy):
            # Its step's collectives would wait for workers that do not run it.
            self.issue([custom_step_verdict(model, custom, static.forward_error,
                                            strategy=type(strategy).__name__)])
            self.issue_deferred(None)
            return
        # (In place under a strategy, our steps would run on the strategy's
        # variables outside its replicas: no experiments there.)
        in_strategy = target.mode == "in-place" and strategy is not None
        with_experiments = (
            target.loss_fn is not None
            and static.forward_error is None
            and len(optimizers_of(model)) <= 1
            and not in_strategy
        )
        self.bus.emit(PhaseChanged("probe", total=max(1, self.options.steps)))
        try:
            run = probe_own_step(
                model, inputs.batches, max(1, self.options.steps),
                triple=inputs.data_kind == "batch",
            )
        except TrainStepFailed as exc:  # the user's step itself: said in the verdict
            self.issue([custom_step_verdict(model, custom, static.forward_error,
                                            probe_error=exc.error)])
            self.issue_deferred(None)
            return
        self.issue([custom_step_verdict(model, custom, static.forward_error,
                                        loss_log=run.loss_log, experiments=with_experiments)])
        for note in run.notes:
            self.bus.emit(Note("info", note))
        for step, (result, figures) in enumerate(run.series, start=1):
            self.bus.emit(StepStats("probe", step, result.loss, seconds=result.seconds))
            self.bus.emit(LayerStats("probe", step, layer_rows(run.metas, figures)))
        experiments = None
        if with_experiments:
            trainer, eval_set, eval_before = self._trainer(inputs, target, eager)
            # The experiments compare predictions before and after the probe's
            # steps; those ran on the user's model, so the same number of standard
            # steps moves the target (predictions-unchanged reads the difference).
            for step in range(max(1, self.options.steps)):
                trainer.train(*inputs.batches[step % len(inputs.batches)])
            experiments = self._experiments(
                inputs, target, trainer, static, eval_set, eval_before
            )
        else:
            why = (
                f"they would train {type(model).__name__} in place (it cannot be copied), on "
                f"the variables of its {type(strategy).__name__}, outside its replicas"
                if in_strategy else
                f"they train with a loss gradscope computes, and {type(model).__name__} "
                "trains by its own train_step()"
            )
            self.bus.emit(Note("info", f"experiments skipped: {why}",
                               unchecked=experiment_checks(list(EXPERIMENT_CHECKS))))
        self._dynamic(static.facts, run.metas, run.series, run.disconnected, experiments,
                      task=None if with_experiments else (False, None))

    def _check_failed(self, check: Check, exc: Exception) -> None:
        """One check raised: the others' verdicts stand, this one is named as lost."""
        lost(self.bus.emit, f"the check {check.id}", exc, unchecked=(check.id,))

    # -- notes ---------------------------------------------------------------
    def _note_experiments(self, e: ExperimentFacts) -> None:
        """What the experiments measured, for the record and the UI."""
        lines = []
        if e.overfit_steps:
            acc = (
                f", accuracy {share(e.overfit_acc_start)} -> {share(e.overfit_acc_end)}"
                if e.overfit_acc_end is not None and e.overfit_acc_start is not None
                else ""
            )
            lines.append(
                f"overfit {e.overfit_samples} samples for {e.overfit_steps} steps: loss "
                f"{e.overfit_loss_start:.4g} -> {e.overfit_loss_end:.4g}{acc}"
            )
        if e.sweep:
            points = ", ".join(f"{p.lr:.0e}: {p.loss:.4g}" for p in e.sweep)
            lines.append(f"learning-rate sweep ({e.sweep_steps} steps each), loss after: {points}")
        if e.heldout_acc is not None:
            lines.append(
                f"held-back subset: train accuracy {share(e.heldout_train_acc)}, held-back "
                f"{share(e.heldout_acc)} (majority class {share(e.heldout_majority)})"
            )
        if e.budget_curve:
            lines.append(
                f"your budget of {e.budget_steps} steps replayed on a clone: evaluation loss "
                + " -> ".join(f"{c:.4g}" for c in e.budget_curve)
            )
        for line in lines:
            self.bus.emit(Note("info", line))

    def _note_cut_short(self, e: ExperimentFacts) -> None:
        """The --budget cap stopped experiments: which checks could not run, and how
        to give them time. Never silent: without them a clean bill means less."""
        if not e.cut_short:
            return
        checks = experiment_checks(list(e.cut_short))
        self.bus.emit(Note(
            "warning",
            f"the experiments reached the --budget cap of {e.budget_cap:g} s: "
            f"{', '.join(e.cut_short)} did not run, so {', '.join(checks)} could not be "
            f"checked; give them time with --budget {max(60, 4 * e.budget_cap):g}",
            unchecked=checks,
        ))


def experiment_checks(names: list[str]) -> tuple[str, ...]:
    """The checks that read these experiments (engine.experiments.EXPERIMENT_CHECKS)."""
    from gradscope.engine.experiments import EXPERIMENT_CHECKS

    return tuple(dict.fromkeys(c for name in names for c in EXPERIMENT_CHECKS.get(name, ())))
