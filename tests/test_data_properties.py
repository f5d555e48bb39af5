"""Bad data of every awkward kind: the data checks always answer with facts and
verdicts, never with an exception of ours (property-based). The first tests need
no TensorFlow; reading fit's data imports Keras; the last ones run the whole
in-process pipeline (tests/diagnose.py) on a few cheap examples."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
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


# --- more awkward kinds: bytes, dates, object arrays of numbers, one sample ---------

more_odd = st.one_of(
    st.lists(st.binary(max_size=3), min_size=1, max_size=6).map(lambda xs: np.array(xs, dtype="S3")),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=6).map(lambda xs: np.array(xs, dtype=object)),
    st.just(np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")),
    st.just(np.array([[np.nan, np.inf, -np.inf, 1e308]])),  # one sample, every special value
    st.just(np.array([[2**63 - 1, -(2**63)]], dtype=np.int64)),  # beyond float64's exact range
    st.just(np.zeros((1, 0))),  # one sample, no features
)
any_array = st.one_of(arrays, more_odd)
text_labels = st.one_of(
    st.lists(st.sampled_from(["cat", "dog", "cow"]), min_size=1, max_size=8).map(np.array),
    st.lists(st.binary(min_size=1, max_size=3), min_size=1, max_size=8).map(np.array),
    st.lists(st.integers(0, 3), min_size=1, max_size=8).map(lambda xs: np.array(xs, dtype=object)),
)


def _facts(x: object, y: object, loss: str | None, activation: str | None = "softmax",
           units: int | None = 3) -> ModelFacts:
    inputs = summarize(x)
    out = OutputFacts(
        name="out", layer="dense", units=units, activation=activation, loss=loss,
        loss_display=str(loss), from_logits=False, labels=summarize(y), metrics=(),
    )
    return ModelFacts(
        name="m", total_params=10, trainable_params=10, weighted_layers=("dense",),
        frozen_layers=(), outputs=(out,), inputs=(inputs,) if inputs is not None else (),
        first_layer_input=inputs, first_layer_type="Dense",
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=any_array, y=any_array, loss=st.sampled_from(LOSSES))
def test_static_checks_answer_for_bytes_dates_objects_and_single_samples(
    x: np.ndarray, y: np.ndarray, loss: str | None
) -> None:
    summarize(x)
    for v in run_static(_facts(x, y, loss), batch_facts("arrays", [np.asarray(x)], [np.asarray(y)])):
        assert v.check and v.severity in ("error", "warning", "info") and v.message and v.fix


@settings(max_examples=100, deadline=None)
@given(
    xs=st.lists(any_array, max_size=4),
    ys=st.lists(st.one_of(st.none(), any_array), max_size=4),
    kind=st.sampled_from(["arrays", "dataset", "generator", "pydataset"]),
)
def test_batch_facts_never_raise_on_batches_of_any_shape_and_dtype(
    xs: list[np.ndarray], ys: list[np.ndarray | None], kind: str
) -> None:
    # batches may disagree in shape and dtype, and x and y in number
    facts = batch_facts(kind, [np.asarray(x) for x in xs], ys)
    assert facts.n_batches == len(xs)
    assert 0 <= facts.identical_pairs <= max(0, len(xs) - 1)


@settings(max_examples=100, deadline=None)
@given(y=text_labels, loss=st.sampled_from(LOSSES))
def test_labels_that_are_not_numbers_are_named_whatever_the_loss(
    y: np.ndarray, loss: str | None
) -> None:
    # Keras cannot make a tensor of text or object labels: fit() will fail, and the
    # static checks say why (the probe's failure is then the explained kind)
    x = np.zeros((len(y), 4), dtype=np.float32)
    found = [v for v in run_static(_facts(x, y, loss)) if v.check == "loss-label-mismatch"]
    assert [v.severity for v in found] == ["error"]
    assert "not numbers" in found[0].message


# --- reading the fit call's data: every array kind is read, or refused in one line --

fit_arrays = st.one_of(
    hnp.arrays(dtypes, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9)),
    hnp.arrays(np.float64, st.tuples(st.integers(0, 9), st.just(3)),
               elements=st.floats(allow_nan=True, allow_infinity=True)),
    st.lists(st.sampled_from(["cat", "dog"]), max_size=9).map(np.array),
    st.lists(st.floats(allow_nan=True), max_size=9).map(lambda xs: np.array(xs, dtype=object)),
    st.just([[1.0, 2.0], [3.0]]),  # a ragged Python list
    st.just(np.array(2.0)),  # a scalar
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(x=np.zeros((2, 3)), y=np.array(["cat", "dog"]), sample_weight=None, batch_size=None,
         validation_split=0.0, shuffle=True, class_weight={0: 1.0, 1: 3.0})
@example(x=np.zeros((2, 3)), y=np.array([1.0, None], dtype=object), sample_weight=None,
         batch_size=None, validation_split=0.0, shuffle=True, class_weight={0: 1.0, 1: 3.0})
@example(x=np.array(2.0), y=None, sample_weight=None, batch_size=None, validation_split=0.0,
         shuffle=True, class_weight=None)
# Found by hypothesis: labels of shape (n, 0, 1) with class_weight (a refusal, not a TypeError).
@example(x=np.array([0], dtype=np.int8), y=np.zeros((1, 0, 1), dtype=np.int8), sample_weight=None,
         batch_size=None, validation_split=0.0, shuffle=True, class_weight={0: 1.0, 1: 3.0})
@given(
    x=fit_arrays,
    y=st.one_of(st.none(), fit_arrays),
    sample_weight=st.one_of(st.none(), fit_arrays),
    batch_size=st.one_of(st.none(), st.integers(1, 40)),
    validation_split=st.sampled_from([0.0, 0.2, 0.99]),
    shuffle=st.sampled_from([True, False, "batch"]),
    class_weight=st.sampled_from([None, {0: 1.0, 1: 3.0}]),
)
def test_fit_data_is_read_or_refused_in_one_clear_line(
    x: object, y: object, sample_weight: object, batch_size: int | None,
    validation_split: float, shuffle: object, class_weight: dict | None,
) -> None:
    from gradscope.engine.fitdata import capture_fit_data

    def fit(x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,  # noqa: ANN001, ANN202
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None):
        """Keras's fit signature, without the model."""

    kwargs = dict(y=y, sample_weight=sample_weight, batch_size=batch_size, shuffle=shuffle,
                  validation_split=validation_split, class_weight=class_weight)
    try:
        data = capture_fit_data(fit, (x,), kwargs, seed=0)
        batches = data.probe_batches(3)
        data.sample(64)
        data.fit_args()
    except ValueError as refused:  # what gradscope reports as the reason it cannot probe
        message = str(refused)
        assert message and "\n" not in message
        return
    assert batches and all(len(batch) == 3 for batch in batches)


# --- the whole in-process pipeline, on a few cheap examples -------------------------
# The oracle is Keras itself: gradscope may fail to probe only where Keras's own fit
# fails too, or by a deliberate, one-line refusal of its own (a ValueError raised in
# gradscope's code, such as "0 samples"); never by a crash in its own code.

GRADSCOPE_DIR = str(Path(__file__).resolve().parents[1] / "gradscope") + os.sep


def _tiny_model() -> Any:
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _keras_fits(x: object, y: object) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _tiny_model().fit(x, y, epochs=1, verbose=0)
    except Exception:  # noqa: BLE001 - any refusal by Keras
        return False
    return True


def _raised_in(error: BaseException) -> str:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename if tb is not None else ""


def _diagnose_like_keras(x: object, y: object, monkeypatch: pytest.MonkeyPatch) -> Any:
    from gradscope.diagnosis import Diagnosis
    from tests.diagnose import diagnose

    failures: list[BaseException] = []
    original = Diagnosis.fail

    def recorded(self: Diagnosis, exc: BaseException) -> None:
        failures.append(exc)
        original(self, exc)

    monkeypatch.setattr(Diagnosis, "fail", recorded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = diagnose(_tiny_model(), x, y, steps=2, budget=0)  # never raises
    monkeypatch.undo()
    for v in found.verdicts:
        assert v.check and v.severity in ("error", "warning", "info") and v.message and v.fix
    for exc in failures:
        ours = _raised_in(exc).startswith(GRADSCOPE_DIR)
        if ours:  # a refusal of ours: deliberate, one line
            assert isinstance(exc, ValueError), (type(exc), exc)
            assert "\n" not in str(exc)
        else:  # Keras/TensorFlow refused the data: so does Keras's own fit
            assert not _keras_fits(x, y), f"gradscope failed where Keras does not: {exc!r}"
    return found


_rng = np.random.default_rng(0)
_X = _rng.normal(size=(16, 4)).astype("float32")
_Y = np.arange(16) % 3
PIPELINE_CASES = {
    "empty": (np.zeros((0, 4), "float32"), np.zeros((0,), "int64"), "0 samples"),
    "one-sample": (_X[:1], _Y[:1], None),
    "nan-input": (np.where(_rng.random((16, 4)) < 0.2, np.nan, _X).astype("float32"), _Y,
                  "nonfinite-input"),
    "inf-label": (_X, np.where(np.arange(16) == 3, np.inf, _Y), "nonfinite-input"),
    "huge-input": (_X.astype("float64") * 1e30, _Y, "unnormalized-input"),
    "int-input-bool-labels": (np.arange(64).reshape(16, 4), (_Y > 0), None),
    "float16-input": (_X.astype("float16"), _Y, None),
    "object-input": (np.array(_X, dtype=object), _Y, None),
    "lengths-differ": (_X[:10], _Y[:8], "disagree on the number of samples"),
    "text-labels": (_X[:6], np.array(["cat", "dog", "cow"] * 2), "loss-label-mismatch"),
    "huge-class-ids": (_X, _Y * 10**12, None),
    "3d-input": (_X.reshape(16, 2, 2), _Y, None),
}


@pytest.mark.parametrize(("x", "y", "said"), PIPELINE_CASES.values(), ids=PIPELINE_CASES.keys())
def test_the_pipeline_answers_awkward_data_as_keras_would(
    x: np.ndarray, y: np.ndarray, said: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _diagnose_like_keras(x, y, monkeypatch)
    if said is not None:  # and says what is wrong, where we know
        assert said in found.ids or any(said in v.message for v in found.verdicts), found.ids


def _inputs(n: int, dtype: str, special: float) -> np.ndarray:
    """n samples of 4 features, every third row holding `special` (cast as dtype casts it)."""
    values = np.where((np.arange(n) % 3 == 1)[:, None], special, np.arange(n * 4).reshape(n, 4) % 7)
    with np.errstate(invalid="ignore", over="ignore"):  # inf or 1e30 into int8
        return values.astype(dtype)


pipeline_x = st.builds(
    _inputs,
    n=st.sampled_from([1, 2, 5, 33]),
    dtype=st.sampled_from(["int8", "bool", "float16", "float32", "float64", "object"]),
    special=st.sampled_from([0.0, np.nan, np.inf, 1e30]),
)
pipeline_y = st.sampled_from(["ids", "float-ids", "nan", "text", "negative"])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(x=pipeline_x, labels=pipeline_y)
def test_the_pipeline_never_crashes_on_generated_awkward_data(x: np.ndarray, labels: str) -> None:
    n = len(x)
    y = {
        "ids": np.arange(n) % 3,
        "float-ids": (np.arange(n) % 3).astype("float32"),
        "nan": np.where(np.arange(n) == 0, np.nan, np.arange(n) % 3),
        "text": np.array(["a", "b", "c"] * n)[:n],
        "negative": -(np.arange(n) % 3),
    }[labels]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _diagnose_like_keras(x, y, monkeypatch)
