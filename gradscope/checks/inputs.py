"""Static checks on the values the model is given: NaN/Inf, constant inputs,
ids outside an Embedding's table. Their scale is judged in checks/input_scale.py,
which runs last among the static checks."""

from __future__ import annotations

from gradscope.checks.kinds import input_label
from gradscope.checks.registry import Facts, Finding, check, finding
from gradscope.checks.wording import share as pct


@check("nonfinite-input", "error", "cause", "NaN or Inf in inputs or labels",
       phase="static", needs=("model",))
def nonfinite_input(facts: Facts) -> list[Finding]:
    model = facts.model
    found: list[Finding] = []
    for i, inp in enumerate(model.inputs):
        if inp.numeric and not inp.finite:
            found.append(
                finding(
                    "inputs",
                    f"{input_label(model, i)} holds {inp.nonfinite_count} NaN/Inf values (shape {inp.shape}): "
                    "one NaN makes the loss and every gradient NaN.",
                    "Clean or impute them before training:\n"
                    "    x = np.nan_to_num(x)   # or drop / impute the rows",
                    count=inp.nonfinite_count,
                )
            )
    for out in facts.outputs:
        labels = out.labels
        if labels is not None and labels.numeric and not labels.finite:
            found.append(
                finding(
                    "labels",
                    f"the labels for '{out.name}' hold {labels.nonfinite_count} NaN/Inf values.",
                    "Drop or fix those rows: keep = np.isfinite(y).all(axis=-1) if y.ndim > 1 "
                    "else np.isfinite(y); x, y = x[keep], y[keep]",
                    count=labels.nonfinite_count,
                )
            )
    return found


@check("constant-input", "error", "cause", "inputs are constant", phase="static",
       needs=("model",))
def constant_input(facts: Facts) -> list[Finding]:
    model = facts.model
    found: list[Finding] = []
    for i, inp in enumerate(model.inputs):
        if not inp.numeric or not inp.finite or inp.n < 2:
            continue
        if inp.absmax == 0.0 or inp.constant_features:
            what = "all zero" if inp.absmax == 0.0 else "the same for every sample"
            found.append(
                finding(
                    "inputs",
                    f"{input_label(model, i)} (shape {inp.shape}) is {what}: the model cannot tell samples "
                    "apart, so it can only learn the average label.",
                    "Check the preprocessing (an integer division that floors to 0, an "
                    "array overwritten, the wrong column selected).",
                    absmax=inp.absmax,
                )
            )
    return found


@check("embedding-out-of-range", "error", "cause", "Embedding ids outside its input_dim",
       phase="static", needs=("model",))
def embedding_out_of_range(facts: Facts) -> list[Finding]:
    """Ids outside [0, input_dim): on CPU the fit stops with InvalidArgumentError,
    on a GPU the lookup returns zeros, so those tokens carry nothing."""
    merged: dict[str, list[int]] = {}  # layer -> [input_dim, min, max, outside, total]
    for e in facts.model.embedding_ids:
        m = merged.setdefault(e.layer, [e.input_dim, e.min_id, e.max_id, 0, 0])
        m[1], m[2] = min(m[1], e.min_id), max(m[2], e.max_id)
        m[3] += e.outside
        m[4] += e.total
    found = []
    for layer, (dim, lo, hi, outside, total) in merged.items():
        if not outside:
            continue
        share = outside / total
        found.append(
            finding(
                layer,
                f"Embedding '{layer}' has input_dim={dim} (ids 0..{dim - 1}) but receives ids "
                f"from {lo} to {hi}: {pct(share)} of them are outside its table. On CPU the fit "
                "stops with InvalidArgumentError; on a GPU their lookups return zeros, so "
                "those tokens carry nothing.",
                f"Size the table to the vocabulary: Embedding(input_dim={max(hi + 1, dim)}, ...)  "
                "(the largest id + 1; with a tokenizer, its vocabulary size)"
                + ("; map negative ids (padding?) to 0." if lo < 0 else "."),
                input_dim=dim,
                min_id=lo,
                max_id=hi,
                outside_fraction=share,
            )
        )
    return found
