"""Static checks on the model itself: what can train, and how much dropout lets through."""

from __future__ import annotations

from gradscope.checks.facts import ModelFacts
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.checks.wording import share as pct

# Dropout rates from here on leave too few units for a signal to get through;
# Keras's `rate` is the share DROPPED (TF1's keep_prob was the share kept, so
# keep_prob=0.9 ported as Dropout(0.9) drops 90 %).
DROPOUT_HIGH = 0.8
DROPOUT_ERROR = 0.9

# Frozen layers named in a message / kept in the evidence: a frozen pretrained
# base has hundreds, and the first few tell which part is frozen.
FROZEN_SHOWN = 8
FROZEN_EVIDENCE = 50
FROZEN_MODEL_EVIDENCE = 20


def _nothing_trains(model: ModelFacts) -> bool:
    return model.total_params > 0 and model.trainable_params == 0


@check("frozen-model", "error", "cause", "nothing in the model can train", phase="static",
       needs=("model",))
def frozen_model(facts: Facts) -> list[Finding]:
    model = facts.model
    if not _nothing_trains(model):
        return []
    return [
        finding(
            "model",
            f"the model has {model.total_params:,} parameters and none of them is trainable "
            f"({len(model.frozen_layers)} layers have trainable=False), so fit() cannot "
            "change anything.",
            "Unfreeze what should learn, then compile again (trainable flags are read at "
            "compile time):\n    base_model.trainable = False   # keep the base frozen\n"
            "    model.layers[-1].trainable = True\n    model.compile(...)",
            frozen_layers=list(model.frozen_layers[:FROZEN_MODEL_EVIDENCE]),
        )
    ]


@check("frozen-layers", "info", "cause", "some layers are frozen", phase="static",
       needs=("model",))
def frozen_layers(facts: Facts) -> list[Finding]:
    model = facts.model
    frozen = model.frozen_layers
    # A model with nothing trainable is frozen-model's error, not this note.
    if not frozen or _nothing_trains(model):
        return []
    shown = ", ".join(frozen[:FROZEN_SHOWN])
    more = f" and {len(frozen) - FROZEN_SHOWN} more" if len(frozen) > FROZEN_SHOWN else ""
    return [
        finding(
            "model",
            f"{len(frozen)} of {len(model.weighted_layers)} layers with weights "
            f"are frozen (trainable=False): {shown}{more}.",
            "Nothing to do if that is intended (e.g. a frozen pretrained base); otherwise "
            "set layer.trainable = True and compile again.",
            frozen_layers=list(frozen[:FROZEN_EVIDENCE]),
        )
    ]


@check("dropout-too-high", "error", "cause", "dropout drops nearly every unit", phase="static",
       needs=("model",))
def dropout_too_high(facts: Facts) -> list[Finding]:
    high = [(name, rate) for name, rate in facts.model.dropout_rates if rate >= DROPOUT_HIGH]
    if not high:
        return []
    worst = max(rate for _, rate in high)
    names = ", ".join(f"{name} ({rate:g})" for name, rate in high)
    return [
        finding(
            high[0][0],
            f"dropout drops {pct(worst)} of the units in training ({names}): so little gets "
            "through that the gradient is mostly noise. Keras's rate is the share dropped, "
            "not kept (TF1's keep_prob).",
            "Use a rate of 0.1-0.5: keras.layers.Dropout(0.2)  (for keep_prob=p write "
            "Dropout(1 - p)).",
            severity="error" if worst >= DROPOUT_ERROR else "warning",
            layers=[name for name, _ in high],
            rate=worst,
        )
    ]
