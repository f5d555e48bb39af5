"""gradscope.diagnose() on every form of data `fit` takes: the same verdict
whatever the form, the model, the random streams and the data the user's
later fit() sees left exactly as they were."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import gradscope  # noqa: E402

# Keras warns that shuffle=True is ignored for a Dataset or a generator, and
# that a finite generator ran out: the same with and without gradscope.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N, FEATURES, CLASSES, BATCH = 300, 8, 3, 30
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, FEATURES)).astype("float32")
IDS = ((X[:, 0] > 0).astype("int64") + (X[:, 1] > 0.5).astype("int64"))  # 3 classes, learnable
ONE_HOT = keras.utils.to_categorical(IDS, CLASSES).astype("float32")
WEIGHTS = RNG.uniform(0.5, 1.5, size=N).astype("float32")
X_VAL = RNG.normal(size=(60, FEATURES)).astype("float32")
IDS_VAL = ((X_VAL[:, 0] > 0).astype("int64") + (X_VAL[:, 1] > 0.5).astype("int64"))


def two_inputs(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"left": x[:, :4], "right": x[:, 4:]}


# --------------------------------------------------------------------------- models


def sequential(dropout: float = 0.0) -> keras.Model:
    layers: list[Any] = [keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu", name="hidden")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name="drop"))
    layers.append(keras.layers.Dense(CLASSES, activation="softmax", name="out"))
    return keras.Sequential(layers, name="seq")


def functional_two_inputs() -> keras.Model:
    left = keras.Input((4,), name="left")
    right = keras.Input((4,), name="right")
    joined = keras.layers.Concatenate(name="join")([left, right])
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(joined)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="out")(hidden)
    return keras.Model({"left": left, "right": right}, out, name="two")


def compiled(model: keras.Model) -> keras.Model:
    # Integer class ids: sparse categorical cross-entropy is right for them.
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trained_a_little(model: keras.Model, x: Any) -> keras.Model:
    """The user's model after some training: its optimizer has slots and a step count."""
    model.fit(x, IDS[:60], batch_size=30, epochs=1, verbose=0, shuffle=False)
    assert int(model.optimizer.iterations.numpy()) == 2
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, keras.Model]:
    keras.utils.set_random_seed(0)
    return {
        "seq": trained_a_little(compiled(sequential(dropout=0.1)), X[:60]),
        "two": trained_a_little(compiled(functional_two_inputs()), two_inputs(X[:60])),
    }


def state(model: keras.Model) -> list[np.ndarray]:
    """Weights, seed generator states, optimizer slots and iteration count."""
    return [np.array(v.numpy()) for v in [*model.variables, *model.optimizer.variables]]


def assert_untouched(model: keras.Model, before: list[np.ndarray]) -> None:
    after = state(model)
    assert len(after) == len(before)
    for b, a in zip(before, after, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), "diagnose changed the model's state"


# --------------------------------------------------------------------------- the data forms


class Batches(keras.utils.PyDataset):
    """A PyDataset of BATCH-row batches; `weights` adds a third element."""

    def __init__(self, x: Any, y: np.ndarray, weights: np.ndarray | None = None) -> None:
        super().__init__()
        self.x, self.y, self.weights = x, y, weights

    def __len__(self) -> int:
        return int(np.ceil(len(self.y) / BATCH))

    def __getitem__(self, i: int) -> tuple:
        rows = slice(i * BATCH, (i + 1) * BATCH)
        x = {k: v[rows] for k, v in self.x.items()} if isinstance(self.x, dict) else self.x[rows]
        if self.weights is None:
            return x, self.y[rows]
        return x, self.y[rows], self.weights[rows]


def endless_batches(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        for start in range(0, len(y), BATCH):
            yield x[start : start + BATCH], y[start : start + BATCH]


@dataclass(frozen=True)
class Form:
    """One way to hand `fit` the training data; `labels` -> the keyword arguments."""

    name: str
    model: str  # "seq" | "two"
    arguments: Callable[[np.ndarray], dict[str, Any]]
    rows: int  # the training rows fit trains on (the label sample gradscope reads)


def dataset(*parts: Any) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(parts)


FORMS = [
    Form("arrays", "seq", lambda y: {"x": X, "y": y, "batch_size": 32}, N),
    Form("tensors", "seq", lambda y: {"x": tf.constant(X), "y": tf.constant(y), "batch_size": 32}, N),
    Form("dict of arrays", "two", lambda y: {"x": two_inputs(X), "y": y, "batch_size": 32}, N),
    Form("dataset, seeded shuffle", "seq",
         lambda y: {"x": dataset(X, y).shuffle(N, seed=1).batch(32)}, N),
    Form("dataset, unseeded shuffle", "seq", lambda y: {"x": dataset(X, y).shuffle(N).batch(32)}, N),
    Form("dataset of dicts", "two",
         lambda y: {"x": dataset(two_inputs(X), y).shuffle(N, seed=1).batch(32).prefetch(2)}, N),
    Form("dataset, repeated", "seq",
         lambda y: {"x": dataset(X, y).shuffle(N, seed=1).batch(32).repeat(), "steps_per_epoch": 10}, N),
    Form("PyDataset", "seq", lambda y: {"x": Batches(X, y)}, N),
    Form("PyDataset of dicts", "two", lambda y: {"x": Batches(two_inputs(X), y)}, N),
    Form("generator", "seq", lambda y: {"x": endless_batches(X, y), "steps_per_epoch": N // BATCH}, N),
    Form("arrays, validation_data", "seq",
         lambda y: {"x": X, "y": y, "batch_size": 32, "validation_data": (X_VAL, IDS_VAL)}, N),
    Form("arrays, validation_split", "seq",
         lambda y: {"x": X, "y": y, "batch_size": 32, "validation_split": 0.2}, int(N * 0.8)),
    Form("arrays, sample_weight", "seq", lambda y: {"x": X, "y": y, "sample_weight": WEIGHTS}, N),
    Form("arrays, class_weight", "seq",
         lambda y: {"x": X, "y": y, "class_weight": {0: 1.0, 1: 2.0, 2: 1.5}}, N),
    Form("dataset, sample weights", "seq",
         lambda y: {"x": dataset(X, y, WEIGHTS).shuffle(N, seed=2).batch(32),
                    "validation_data": dataset(X_VAL, IDS_VAL).batch(32)}, N),
    Form("PyDataset, sample weights", "seq", lambda y: {"x": Batches(X, y, WEIGHTS)}, N),
]


# The healthy model's diagnosis runs the experiments (about 2 s each): the forms
# gradscope reads as another one are left to the verdict test (tensors are read
# as arrays; validation_data is not read; an unseeded shuffle is read as a
# seeded one; a PyDataset of dicts as a PyDataset, and dicts on the healthy
# model are tried as arrays and as a Dataset; weights as class_weight and in a
# Dataset, and every form's weights in the zero-weights test below).
HEALTHY_FORMS = [f for f in FORMS if f.name not in {
    "tensors", "arrays, validation_data", "dataset, unseeded shuffle", "PyDataset of dicts",
    "arrays, sample_weight", "PyDataset, sample weights"}]


# --------------------------------------------------------------------------- the same verdict on every form


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name)
def test_one_hot_labels_for_sparse_cross_entropy_are_the_headline_on_every_form(
    form: Form, models: dict[str, keras.Model]
) -> None:
    # Given a model compiled for integer class ids, trained a little, and
    # one-hot labels handed to it in this form
    model = models[form.model]
    before = state(model)
    # When it is diagnosed
    report = gradscope.diagnose(model, **form.arguments(ONE_HOT), seed=0)
    # Then the label encoding is the most likely cause, an error
    assert report.headline is not None, repr(report)
    assert report.headline.check == "loss-label-mismatch", repr(report)
    assert report.headline.severity == "error" and not report.ok
    # read from the labels fit trains on: every training row (validation_split's
    # tail left out), one-hot over the 3 classes
    assert report.headline.evidence["labels_shape"] == [form.rows, CLASSES]
    assert report.headline.evidence["loss"] == "sparse_categorical_crossentropy"
    # and the model's weights, optimizer slots and iteration count are bit-identical
    assert_untouched(model, before)


@pytest.mark.parametrize("form", HEALTHY_FORMS, ids=lambda f: f.name)
def test_a_healthy_model_gets_no_error_on_any_form(form: Form, models: dict[str, keras.Model]) -> None:
    # Given the same model and the integer ids it was compiled for, in this form
    model = models[form.model]
    before = state(model)
    # When it is diagnosed for a 20-epoch training (experiments on)
    report = gradscope.diagnose(model, **form.arguments(IDS), epochs=20, seed=0)
    # Then there is no error (a false alarm costs as much as a miss)
    assert report.ok, repr(report)
    assert [v.check for v in report.verdicts if v.severity != "info"] == [], repr(report)
    # and the probe did measure every layer with weights
    assert {row["layer"] for row in report.layers} >= {"hidden", "out"}
    assert_untouched(model, before)


ZERO_WEIGHTS = np.zeros(N, dtype="float32")
WEIGHTED_FORMS = [
    Form("arrays, sample_weight", "seq", lambda y: {"x": X, "y": y, "sample_weight": ZERO_WEIGHTS}, N),
    Form("arrays, class_weight", "seq",
         lambda y: {"x": X, "y": y, "class_weight": {0: 0.0, 1: 0.0, 2: 0.0}}, N),
    Form("dataset, class_weight", "seq",
         lambda y: {"x": dataset(X, y).batch(32), "class_weight": {0: 0.0, 1: 0.0, 2: 0.0}}, N),
    Form("dataset, sample weights", "seq", lambda y: {"x": dataset(X, y, ZERO_WEIGHTS).batch(32)}, N),
    Form("PyDataset, sample weights", "seq", lambda y: {"x": Batches(X, y, ZERO_WEIGHTS)}, N),
    Form("dict of arrays, sample_weight", "two",
         lambda y: {"x": two_inputs(X), "y": y, "sample_weight": ZERO_WEIGHTS}, N),
]


@pytest.mark.parametrize("form", WEIGHTED_FORMS, ids=lambda f: f.name)
def test_the_weights_of_every_form_reach_the_diagnosis(form: Form, models: dict[str, keras.Model]) -> None:
    # Given weights that are all 0 (the loss is 0 whatever the model does),
    # passed the way this form carries them
    model = models[form.model]
    before = state(model)
    # When it is diagnosed (no experiments: the weights are read from the probe batches)
    report = gradscope.diagnose(model, **form.arguments(IDS), seed=0, budget=0)
    # Then gradscope read them: every sample weighs nothing
    assert report.headline is not None and report.headline.check == "zero-sample-weights", repr(report)
    assert report.headline.severity == "error" and report.headline.evidence["zero_share"] == 1.0
    assert_untouched(model, before)


NOISE = np.random.default_rng(5).integers(0, CLASSES, size=N)  # labels with no signal in X


@pytest.mark.parametrize("endless", ["dataset.repeat()", "while True generator"])
def test_labels_with_no_signal_are_found_when_the_data_repeats_endlessly(endless: str) -> None:
    # Given labels that nothing in x predicts, in a pipeline that starts over
    # after its 300 rows (what gradscope reads for its sample goes past one pass)
    keras.utils.set_random_seed(0)
    model = compiled(sequential())
    if endless == "dataset.repeat()":
        arguments = {"x": dataset(X, NOISE).shuffle(N, seed=1).batch(32).repeat(), "steps_per_epoch": 10}
    else:
        arguments = {"x": endless_batches(X, NOISE), "steps_per_epoch": N // BATCH}
    # When it is diagnosed
    report = gradscope.diagnose(model, **arguments, epochs=20, seed=0)
    # Then the held-back rows are rows the model did not train on: it fits
    # its training half and stays at chance on them
    found = {v.check: v for v in report.verdicts}
    assert "labels-unpredictable" in found, repr(report)
    evidence = found["labels-unpredictable"].evidence
    assert evidence["heldout_acc"] < evidence["chance"] + 0.05 < evidence["train_acc"]


# --------------------------------------------------------------------------- the random streams


class Augmented(Batches):
    """A PyDataset whose __getitem__ augments with the global NumPy and Python RNGs."""

    def __getitem__(self, i: int) -> tuple:
        x, y = super().__getitem__(i)
        return x + np.float32(0.01 * random.random()) + 0.01 * np.random.normal(size=x.shape).astype("float32"), y


def next_draws(model: keras.Model) -> list[np.ndarray]:
    """What the next draw of every stream a seeded script depends on gives."""
    return [
        np.array([random.random() for _ in range(3)]),  # Python's random
        np.random.random(3),  # NumPy's global RNG
        tf.random.get_global_generator().normal([3]).numpy(),  # TF's global generator
        keras.random.normal([3]).numpy(),  # Keras's global SeedGenerator (unseeded keras.random)
        tf.random.uniform([3]).numpy(),  # TF's op seeds (an unseeded tf.random op)
        keras.layers.Dropout(0.5, name="fresh_dropout")(np.ones((1, 8), "float32"), training=True).numpy(),
        model(X[:4], training=True).numpy(),  # the model's own Dropout stream
    ]


def test_every_random_stream_draws_next_what_it_would_have_drawn() -> None:
    keras.utils.set_random_seed(3)
    model = compiled(sequential(dropout=0.5))
    dropout_state = np.array(model.get_layer("drop").seed_generator.state.numpy())
    shuffled = dataset(X, IDS).shuffle(N).batch(32)  # made once: making it draws an op seed
    augmented = Augmented(X, IDS)

    def scenario(diagnosed: bool, warm: bool) -> list[np.ndarray]:
        keras.utils.set_random_seed(5)  # also drops Keras's global SeedGenerator
        tf.random.set_global_generator(tf.random.Generator.from_seed(5))
        model.get_layer("drop").seed_generator.state.assign(dropout_state)
        if warm:  # the streams exist already and have been drawn from
            next_draws(model)
        if diagnosed:  # (the experiments once: they run on clones)
            assert gradscope.diagnose(model, augmented, epochs=20, seed=0, budget=60 if warm else 0).ok
            assert gradscope.diagnose(model, shuffled, seed=0, budget=0).ok
        return next_draws(model)

    for warm in (False, True):
        alone = scenario(diagnosed=False, warm=warm)
        # (the scenario replays exactly: this test can tell a stream that moved)
        assert all(np.array_equal(a, b) for a, b in zip(alone, scenario(False, warm), strict=True))
        after = scenario(diagnosed=True, warm=warm)
        moved = [i for i, (a, b) in enumerate(zip(alone, after, strict=True)) if not np.array_equal(a, b)]
        assert moved == [], f"streams moved by diagnose (warm={warm}): {moved}"


# --------------------------------------------------------------------------- the data the user's fit sees


def fit_arguments(form: str) -> dict[str, Any]:
    if form == "arrays":
        return {"x": X, "y": IDS, "batch_size": 32, "shuffle": True, "validation_split": 0.2}
    if form == "reshuffling dataset":  # shuffle(): reshuffle_each_iteration=True, seeded globally
        return {"x": dataset(X, IDS).shuffle(N).batch(32),
                "validation_data": dataset(X_VAL, IDS_VAL).batch(32)}
    assert form == "PyDataset"  # fit shuffles its batch order
    return {"x": Augmented(X, IDS), "shuffle": True, "validation_data": (X_VAL, IDS_VAL)}


@pytest.mark.parametrize("form", ["arrays", "reshuffling dataset", "PyDataset"])
def test_diagnose_then_fit_trains_exactly_as_fit_alone(form: str) -> None:
    def training(diagnosed: bool) -> tuple[dict[str, list[float]], list[np.ndarray]]:
        keras.utils.set_random_seed(11)
        model = compiled(sequential(dropout=0.2))
        arguments = fit_arguments(form)
        if diagnosed:
            assert gradscope.diagnose(model, **arguments, epochs=3, seed=0).ok
        history = model.fit(**arguments, epochs=3, verbose=0)
        return history.history, state(model)

    history, weights = training(diagnosed=False)
    history_after, weights_after = training(diagnosed=True)
    assert history_after == history
    assert all(np.array_equal(a, b) for a, b in zip(weights, weights_after, strict=True))


def first_rows(data: tf.data.Dataset, passes: int) -> list[list[int]]:
    """Which samples (by their first feature) open each pass over `data`."""
    return [np.round(next(iter(data))[0].numpy()[:4, 0] * 1e4).astype(int).tolist() for _ in range(passes)]


@pytest.mark.parametrize("seed", [7, None], ids=["seeded", "unseeded"])
def test_a_reshuffling_dataset_keeps_its_epochs_order(seed: int | None, models: dict[str, keras.Model]) -> None:
    # Given a dataset that reshuffles at every pass, and its twin
    def make() -> tf.data.Dataset:
        tf.random.set_seed(1)
        return dataset(X, IDS).shuffle(N, seed=seed).map(lambda x, y: (x, y)).batch(32)

    expected = first_rows(make(), 3)
    data = make()
    # When gradscope reads it (probe batches, then its sample)
    report = gradscope.diagnose(models["seq"], data, seed=0, budget=0)
    assert report.ok, repr(report)
    # Then its passes come in the order they would have: the first pass is still its first
    assert first_rows(data, 3) == expected


# --------------------------------------------------------------------------- a Python generator


def counted(batches: int, taken: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A finite generator of 15-row batches that records which ones were taken."""
    for i in range(batches):
        taken.append(i)
        yield X[i * 15 : (i + 1) * 15], IDS[i * 15 : (i + 1) * 15]


@pytest.mark.parametrize(("epochs", "gone"), [(1, 10), (2, 16)])
def test_what_diagnose_takes_from_a_generator_is_gone_from_it(
    epochs: int, gone: int, models: dict[str, keras.Model]
) -> None:
    # Given a generator of 20 batches for a fit of `epochs` x 10 steps
    taken: list[int] = []
    generator = counted(20, taken)
    # When it is diagnosed
    report = gradscope.diagnose(models["seq"], generator, steps_per_epoch=10, epochs=epochs, seed=0,
                                budget=0)
    assert report.ok, repr(report)
    # Then gradscope took the probe's 5 batches and read on for its label
    # sample (up to 512 rows or 16 batches, never past what the fit would read):
    # those batches are gone, and the user's fit would start at batch `gone`
    assert taken == list(range(gone))
    assert len(list(generator)) == 20 - gone


def test_diagnose_says_what_it_took_from_a_generator_and_gives_it_back(models: dict[str, keras.Model]) -> None:
    # Given a generator of 20 batches for a fit of 10 steps
    taken: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = gradscope.diagnose(models["seq"], counted(20, taken), steps_per_epoch=10, seed=0, budget=0)
    # Then a warning names how many batches were read from it, and where they are
    said = [str(w.message) for w in caught if "generator" in str(w.message)]
    assert said == [f"gradscope.diagnose read {len(taken)} batches from your generator: they are gone "
                    "from it. Train with model.fit(**report.fit_arguments) (your generator, with them "
                    "put back in front), or pass a tf.data.Dataset or a PyDataset"]
    # and report.fit_arguments gives them back in front of the rest: all 20, in order
    replay = report.fit_arguments["x"]
    assert report.fit_arguments["steps_per_epoch"] == 10 and "verbose" not in report.fit_arguments
    rows = [batch[0][0, 0] for batch in replay]
    assert rows == [X[i * 15, 0] for i in range(20)]
