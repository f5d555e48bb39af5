"""The verdicts a run issues about itself rather than about the model:
`probe-failed` (gradscope could not finish) and `custom-train-step` (what was
probed of a model with its own training code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gradscope.verdicts import Verdict


def probe_failed_verdict(exc: BaseException, issued: Sequence[Verdict]) -> Verdict:
    """What a failure of the probe means: the user's fit failing the same way
    when an error verdict already explains it, else a gap in the diagnosis."""
    from gradscope.checks.catalogue import verdict

    detail = [line for line in f"{type(exc).__name__}: {exc}".strip().splitlines() if line.strip()]
    # TF errors put the useful line last ("Received a label value of 6 ...").
    first = detail[0][:300] if detail else type(exc).__name__
    if any(v.severity == "error" for v in issued):
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
    return verdict("probe-failed", "model", message, fix, error=first)


def custom_step_verdict(
    model: Any,
    overridden: list[str],
    forward_error: BaseException | None = None,
    probe_error: BaseException | None = None,
    loss_log: str | None = None,
    experiments: bool = False,
    strategy: str | None = None,
) -> Verdict:
    """What gradscope probed of a model with its own training code: its own
    train_step (when it overrides it: `loss_log` says which log gave the loss,
    `probe_error` why that step could not run), else Keras's standard step on
    the compiled loss (an own compute_loss alone). `strategy`: the class of the
    distribution strategy the model was built under, where its own train_step
    was not run (it would run outside the strategy's replicas)."""
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
    if "train_step" in overridden and strategy is not None:
        message = (
            f"{cls} overrides {methods} and was built under {strategy} with several workers: "
            "gradscope does not run a model's own train_step() there (its collectives would "
            "wait for the other workers), so it took no gradient or activation figures and ran "
            "no dynamic checks (the data and model checks still ran). Your training is not "
            "affected." + no_forward
        )
        fix = (
            "For the figures, run the script once on one worker (or one machine's "
            "MirroredStrategy); gradscope then probes your train_step()."
        )
        probed = False
    elif "train_step" in overridden and probe_error is not None:
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
            + (
                "The learning-rate sweep, overfit and held-back experiments ran with a "
                "standard step on your compiled loss and optimizer, on a copy."
                if experiments else
                "The learning-rate sweep, overfit and held-back experiments were skipped (they "
                "train with a loss gradscope computes itself, and this model has no compiled "
                "loss, no forward pass or several optimizers, or cannot be copied while a "
                "distribution strategy holds its variables), and so were the checks that "
                "need them."
            ) + no_forward
        )
        fix = (
            "Nothing to do: this says how the figures were taken."
            + ("" if experiments else " To have the experiments run too, compile the model "
               "with the loss its step minimises.")
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


