"""Bad data of every awkward kind: the data checks always answer with facts and
verdicts, never with an exception of ours (property-based, no TensorFlow)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradscope.checks.facts import ModelFacts, OutputFacts, batch_facts, summarize
from gradscope.checks.static import run_static

LOSSES = [
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "mse", "mae", "huber", "other", None,
]
ACTIVATIONS = ["softmax", "sigmoid", "relu", "tanh", "linear", "other", None]

dtypes = st.sampled_from([np.int8, np.int64, np.uint8, np.bool_, np.float16, np.float32, np.float64])
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)
numeric = st.one_of(
    hnp.arrays(dtypes, shapes),
    hnp.arrays(np.float64, shapes, elements=st.floats(allow_nan=True, allow_infinity=True)),
    hnp.arrays(np.float64, shapes, elements=st.sampled_from([0.0, 1.0, 1e30, -1e30, 255.0])),
)
odd = st.one_of(
    st.lists(st.text(max_size=3), max_size=6).map(lambda xs: np.array(xs, dtype=object)),
    st.lists(st.sampled_from(["cat", "dog"]), min_size=1, max_size=6).map(np.array),
    st.just(np.array([[1, 2], [3]], dtype=object)),  # ragged
    st.just(np.empty((0,))),
    st.just(np.array(3.0)),  # a scalar
)
arrays = st.one_of(numeric, odd)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays)
def test_summarize_never_raises(a: np.ndarray) -> None:
    facts = summarize(a)
    assert facts is None or facts.shape == tuple(np.asarray(a).shape)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    x=arrays,
    y=arrays,
    loss=st.sampled_from(LOSSES),
    activation=st.sampled_from(ACTIVATIONS),
    units=st.one_of(st.none(), st.integers(1, 12)),
    metrics=st.sampled_from([(), ("accuracy",), ("mae",)]),
)
def test_static_checks_always_answer_with_verdicts(
    x: np.ndarray, y: np.ndarray, loss: str | None, activation: str | None,
    units: int | None, metrics: tuple[str, ...]
) -> None:
    labels = summarize(y)
    inputs = summarize(x)
    out = OutputFacts(
        name="out", layer="dense", units=units, activation=activation, loss=loss,
        loss_display=str(loss), from_logits=False, labels=labels, metrics=metrics,
    )
    facts = ModelFacts(
        name="m", total_params=10, trainable_params=10, weighted_layers=("dense",),
        frozen_layers=(), outputs=(out,), inputs=(inputs,) if inputs is not None else (),
        first_layer_input=inputs, first_layer_type="Dense",
    )
    batches = batch_facts("generator", [np.asarray(x)] * 2, [np.asarray(y)] * 2)
    for v in run_static(facts, batches):
        assert v.check and v.severity in ("error", "warning", "info") and v.message and v.fix
