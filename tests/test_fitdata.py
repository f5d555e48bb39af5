"""gradscope.engine.fitdata: probing the user's data must cost the user's fit nothing."""

from __future__ import annotations

import inspect
import os
import random

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from gradscope.engine.fitdata import capture_fit_data  # noqa: E402

FIT = keras.Model.fit  # the unpatched fit, as the engine hands it over

# Keras warns that shuffle=True is ignored for datasets/generators and that finite
# generators ran out of data: expected here, identical with and without gradscope.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Recorder(keras.Model):
    """Records every x batch its train_step receives (column 0 holds sample ids)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.seen: list[np.ndarray] = []

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.seen.append(np.array(x))
        return super().train_step(data)


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    model = Recorder()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    return model


def record_fit(model: Recorder, *args, **kwargs) -> list[np.ndarray]:
    """Run the original fit and return the x batches it trained on."""
    model.seen.clear()
    FIT(model, *args, verbose=0, **kwargs)
    return list(model.seen)


def make_data(n: int, features: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    x[:, 0] = np.arange(n)
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y


def ids(batches) -> list[list[int]]:
    return [np.asarray(b[:, 0]).astype(int).tolist() for b in batches]


def probe_ids(batches) -> list[list[int]]:
    return ids([np.asarray(x) for x, _, _ in batches])


def assert_same_batches(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


# --------------------------------------------------------------------------- arrays


def test_arrays_shuffled_fit_sees_every_sample_each_epoch(recorder: Recorder) -> None:
    x, y = make_data(72)
    base = record_fit(recorder, x, y, batch_size=16, epochs=2)

    fd = capture_fit_data(FIT, (x, y), {"batch_size": 16, "epochs": 2}, seed=1)
    probes = fd.probe_batches(3)
    assert fd.kind == "arrays" and fd.batch_size == 16 and fd.num_samples == 72
    assert [len(b) for b in probe_ids(probes)] == [16, 16, 16]
    probed = sum(probe_ids(probes), [])
    assert len(set(probed)) == 48 and probed != sorted(probed)  # shuffled, no repeats
    assert fd.probe_batches(3) == probes  # cached
    # Same seed, same probe batches: the permutation is private and seeded.
    again = capture_fit_data(FIT, (x, y), {"batch_size": 16, "epochs": 2}, seed=1)
    assert probe_ids(again.probe_batches(3)) == probe_ids(probes)

    args, kwargs = fd.fit_args()
    assert args[0] is x and args[1] is y  # untouched
    got = record_fit(recorder, *args, **kwargs)
    assert len(got) == len(base) == 10  # 5 batches (last one of 8) per epoch
    for epoch in range(2):
        per_epoch = [sorted(sum(ids(run[epoch * 5 : epoch * 5 + 5]), [])) for run in (base, got)]
        assert per_epoch[0] == per_epoch[1] == list(range(72))


def test_arrays_validation_split_unshuffled_exact_order(recorder: Recorder) -> None:
    x, y = make_data(64)
    kwargs = {"batch_size": 16, "validation_split": 0.25, "shuffle": False}
    base = record_fit(recorder, x, y, **kwargs)

    fd = capture_fit_data(FIT, (x, y), kwargs)
    assert fd.num_samples == 48
    probes = fd.probe_batches(10)  # only 3 training batches exist
    assert probe_ids(probes) == [list(range(0, 16)), list(range(16, 32)), list(range(32, 48))]
    args, kw = fd.fit_args()
    assert_same_batches(record_fit(recorder, *args, **kw), base)
    assert ids(base) == probe_ids(probes)


def test_validation_tail_never_probed_or_sampled() -> None:
    x, y = make_data(100)
    state = np.random.get_state()
    fd = capture_fit_data(FIT, (), {"x": x, "y": y, "validation_split": 0.2, "batch_size": 8}, seed=3)
    probed = sum(probe_ids(fd.probe_batches(1000)), [])
    assert sorted(probed) == list(range(80))  # Keras trains on the first 80 rows
    sx, sy, sw = fd.sample(50)
    assert sx.shape == (50, 3) and sy.shape == (50, 1) and sw is None
    assert sx[:, 0].max() < 80 and len(set(sx[:, 0])) == 50
    np.testing.assert_array_equal(fd.sample(50)[0], sx)  # seeded
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])  # global RNG untouched

    # validation_data wins over validation_split, as in Keras.
    fd = capture_fit_data(FIT, (x, y), {"validation_split": 0.2, "validation_data": (x, y)})
    assert fd.num_samples == 100
    with pytest.raises(ValueError, match="too few"):
        capture_fit_data(FIT, (x[:1], y[:1]), {"validation_split": 0.1})


def test_batch_size_defaults_and_steps() -> None:
    x, y = make_data(100)
    fd = capture_fit_data(FIT, (x, y), {})
    assert fd.batch_size == 32
    assert [len(b[0]) for b in fd.probe_batches(10)] == [32, 32, 32, 4]
    fd = capture_fit_data(FIT, (x, y), {"steps_per_epoch": 4})
    assert fd.batch_size == 25
    fd = capture_fit_data(FIT, (x, y), {"batch_size": 30, "shuffle": False})
    assert [len(b[0]) for b in fd.probe_batches(5)] == [30, 30, 30, 10]


def test_positional_binding() -> None:
    x, y = make_data(40)
    fd = capture_fit_data(FIT, (x, y, 16, 2), {"verbose": 0})
    assert fd.batch_size == 16
    xb, yb, _ = fd.probe_batches(1)[0]
    np.testing.assert_array_equal(yb, y[xb[:, 0].astype(int)])  # x and y rows stay paired
    args, kwargs = fd.fit_args()
    assert args[2:] == (16, 2) and kwargs == {"verbose": 0}


def test_multi_input_dict_and_list_arrays() -> None:
    rng = np.random.default_rng(0)
    a = np.arange(50, dtype="float32")[:, None] * np.ones((1, 4), "float32")
    b = a[:, :2] * 10
    y = {"out1": rng.normal(size=(50, 1)), "out2": np.arange(50)}
    fd = capture_fit_data(FIT, ({"a": a, "b": b}, y), {"batch_size": 8, "sample_weight": np.ones(50)})
    x0, y0, sw0 = fd.probe_batches(2)[0]
    assert set(x0) == {"a", "b"} and x0["a"].shape == (8, 4) and x0["b"].shape == (8, 2)
    np.testing.assert_array_equal(x0["b"][:, 0], x0["a"][:, 0] * 10)  # one permutation
    np.testing.assert_array_equal(y0["out2"], x0["a"][:, 0])
    assert set(sw0) == {"out1", "out2"}  # one weight array replicated per output, like Keras

    fd = capture_fit_data(FIT, ([a, b], [y["out1"], y["out2"]]), {"shuffle": False})
    (xl, yl, _) = fd.probe_batches(1)[0]
    assert isinstance(xl, list) and xl[0].shape == (32, 4) and isinstance(yl, list)
    sx, sy, _ = fd.sample(10)
    assert isinstance(sx, list) and sx[1].shape == (10, 2) and sy[1].shape == (10,)

    # Tensors work as arrays too, and come back as numpy.
    fd = capture_fit_data(FIT, (tf.constant(a), tf.constant(y["out1"])), {"batch_size": 5})
    xt, _, _ = fd.probe_batches(1)[0]
    assert isinstance(xt, np.ndarray) and xt.shape == (5, 4)


def test_class_weight_becomes_sample_weight() -> None:
    x, _ = make_data(60)
    y = (np.arange(60) % 3 == 0).astype("int64")
    cw = {0: 1.0, 1: 5.0}
    fd = capture_fit_data(FIT, (x, y), {"class_weight": cw, "batch_size": 20})
    for _, yb, sw in fd.probe_batches(3):
        np.testing.assert_array_equal(sw, np.where(yb == 1, 5.0, 1.0))
    assert fd.sample()[2].shape == (60,)

    onehot = np.eye(2, dtype="float32")[y]
    _, yb, sw = capture_fit_data(FIT, (x, onehot), {"class_weight": cw}).probe_batches(1)[0]
    np.testing.assert_array_equal(sw, np.where(yb[:, 1] == 1, 5.0, 1.0))

    with pytest.raises(ValueError, match="class_weight"):
        capture_fit_data(FIT, (x, y), {"class_weight": cw, "sample_weight": np.ones(60)})


# --------------------------------------------------------------------------- tf.data


def test_dataset_fit_sees_every_batch(recorder: Recorder) -> None:
    x, y = make_data(50)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    base = record_fit(recorder, ds, epochs=2)

    fd = capture_fit_data(FIT, (ds,), {"epochs": 2})
    assert fd.kind == "dataset" and fd.batch_size is None
    probes = fd.probe_batches(3)
    assert fd.batch_size == 8
    assert probe_ids(probes) == ids(base[:3])
    args, kwargs = fd.fit_args()
    assert args[0] is ds
    assert_same_batches(record_fit(recorder, *args, **kwargs), base)
    # the label/input sample reads on past the probe batches (a sorted data set's
    # first batches are one class): here the whole 50-row data set
    sx, sy, sw = fd.sample()
    assert sx.shape == (50, 3) and sy.shape == (50, 1) and sw is None


# --------------------------------------------------------------------------- generators


def batch_generator(x: np.ndarray, y: np.ndarray, bs: int, forever: bool = False):
    while True:
        for i in range(0, len(x), bs):
            yield x[i : i + bs], y[i : i + bs]
        if not forever:
            return


def test_generator_fit_sees_every_batch(recorder: Recorder) -> None:
    x, y = make_data(48)
    base = record_fit(recorder, batch_generator(x, y, 8))

    gen = batch_generator(x, y, 8)
    fd = capture_fit_data(FIT, (), {"x": gen})
    assert fd.kind == "generator"
    probes = fd.probe_batches(3)
    assert probe_ids(probes) == ids(base[:3]) and fd.batch_size == 8
    args, kwargs = fd.fit_args()
    assert kwargs["x"] is not gen and inspect.isgenerator(kwargs["x"])
    assert_same_batches(record_fit(recorder, *args, **kwargs), base)


def test_infinite_generator_with_steps_per_epoch(recorder: Recorder) -> None:
    x, y = make_data(40)
    base = record_fit(recorder, batch_generator(x, y, 8, forever=True), steps_per_epoch=4, epochs=2)
    assert len(base) == 8

    fd = capture_fit_data(FIT, (batch_generator(x, y, 8, forever=True),), {"steps_per_epoch": 4, "epochs": 2})
    assert len(fd.probe_batches(3)) == 3
    args, kwargs = fd.fit_args()
    assert inspect.isgenerator(args[0])  # positional x replaced in place
    assert_same_batches(record_fit(recorder, *args, **kwargs), base)


def test_a_generators_sample_reads_on_no_further_than_fit_will(recorder: Recorder) -> None:
    # Given an infinite generator that fit reads 2 x 4 batches of 8 from,
    x, y = make_data(40)
    base = record_fit(recorder, batch_generator(x, y, 8, forever=True), steps_per_epoch=4, epochs=2)
    fd = capture_fit_data(FIT, (batch_generator(x, y, 8, forever=True),), {"steps_per_epoch": 4, "epochs": 2})
    fd.probe_batches(3)
    # when the sample is read for the experiments (up to 512 samples wanted),
    fd.read_for_sample(8)
    # then it holds all 8 batches fit reads and no more, and fit still sees each once, in order
    assert len(fd.sample()[0]) == 64
    args, kwargs = fd.fit_args()
    assert_same_batches(record_fit(recorder, *args, **kwargs), base)
    # and without a known number of batches it reads nothing more than the probe's
    fd = capture_fit_data(FIT, (batch_generator(x, y, 8, forever=True),), {"steps_per_epoch": 4})
    fd.probe_batches(3)
    fd.read_for_sample(None)
    assert len(fd.sample()[0]) == 24


def test_generator_exhausted_early(recorder: Recorder) -> None:
    x, y = make_data(16)
    fd = capture_fit_data(FIT, (batch_generator(x, y, 8),), {})
    assert len(fd.probe_batches(5)) == 2
    args, kwargs = fd.fit_args()
    assert ids(record_fit(recorder, *args, **kwargs)) == [list(range(8)), list(range(8, 16))]


# --------------------------------------------------------------------------- PyDataset


class NoisyBatches(keras.utils.PyDataset):
    """Batches of (x, y) whose column 1 is augmented with the global NumPy RNG."""

    def __init__(self, x: np.ndarray, y: np.ndarray, bs: int) -> None:
        super().__init__()
        self.x, self.y, self.bs = x, y, bs
        self.epoch_ends = 0

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.bs))

    def __getitem__(self, i: int):
        xb = self.x[i * self.bs : (i + 1) * self.bs].copy()
        xb[:, 1] += np.random.normal(size=len(xb)).astype("float32")
        random.random()  # Python's RNG too
        return xb, self.y[i * self.bs : (i + 1) * self.bs]

    def on_epoch_end(self) -> None:
        self.epoch_ends += 1


def test_pydataset_fit_sees_every_batch_and_rng_unchanged(recorder: Recorder) -> None:
    x, y = make_data(40)
    np.random.seed(0)
    random.seed(0)
    base = record_fit(recorder, NoisyBatches(x, y, 8), shuffle=False)

    np.random.seed(0)
    random.seed(0)
    np_before, py_before = np.random.get_state(), random.getstate()
    data = NoisyBatches(x, y, 8)
    fd = capture_fit_data(FIT, (data,), {"shuffle": False})
    probes = fd.probe_batches(3)
    assert fd.kind == "pydataset" and fd.batch_size == 8
    assert probe_ids(probes) == ids(base[:3]) and data.epoch_ends == 0
    np.testing.assert_array_equal(np.random.get_state()[1], np_before[1])
    assert np.random.get_state()[2] == np_before[2] and random.getstate() == py_before
    args, kwargs = fd.fit_args()
    assert args[0] is data
    # Same global RNG state at fit time, so even the augmentation noise is identical.
    assert_same_batches(record_fit(recorder, *args, **kwargs), base)


def test_pydataset_shuffle_uses_private_seeded_order() -> None:
    x, y = make_data(80)
    first = capture_fit_data(FIT, (NoisyBatches(x, y, 8),), {}, seed=5).probe_batches(4)
    second = capture_fit_data(FIT, (NoisyBatches(x, y, 8),), {}, seed=5).probe_batches(4)
    starts = [b[0] for b in probe_ids(first)]
    assert starts == [b[0] for b in probe_ids(second)]
    assert len(set(starts)) == 4 and starts != [0, 8, 16, 24]


# --------------------------------------------------------------------------- unsupported


def test_unknown_kind_raises_clear_error() -> None:
    x, y = make_data(8)
    with pytest.raises(ValueError, match="can't read training data of type builtins.list_iterator"):
        capture_fit_data(FIT, (iter([(x, y)]),), {})
    with pytest.raises(ValueError, match="without `x`"):
        capture_fit_data(FIT, (), {"epochs": 1})
    with pytest.raises(ValueError, match="arguments"):
        capture_fit_data(FIT, (), {"nonsense": 1})


def test_generator_failure_is_replayed_to_fit() -> None:
    def failing():
        yield np.ones((2, 3), "float32"), np.ones((2, 1), "float32")
        raise RuntimeError("bad file")

    fd = capture_fit_data(FIT, (failing(),), {})
    assert len(fd.probe_batches(3)) == 1
    replay = fd.fit_args()[0][0]
    assert next(replay)[0].shape == (2, 3)
    with pytest.raises(RuntimeError, match="bad file"):  # fit fails where it would have
        next(replay)


# --------------------------------------------------------------------------- train_on_batch


TRAIN_ON_BATCH = keras.Model.train_on_batch


def test_train_on_batch_is_one_batch_of_its_own_arguments() -> None:
    x, _ = make_data(40)
    y = (np.arange(40) % 4 == 0).astype("int64")
    args, kwargs = (x, y), {"class_weight": {0: 1.0, 1: 3.0}}
    fd = capture_fit_data(TRAIN_ON_BATCH, args, kwargs, seed=0)
    assert fd.kind == "batch" and fd.batch_size == 40
    # the probe's batch is the call's batch (class_weight as Keras turns it into
    # sample weights), however many steps ask for one
    (xb, yb, sw), = fd.probe_batches(5)
    assert xb is x and yb is y
    np.testing.assert_array_equal(sw, np.where(y == 1, 3.0, 1.0))
    # the sample is that batch's rows, mixed (seeded), still paired
    sx, sy, ssw = fd.sample(16)
    assert sx.shape == (16, 3) and len(set(sx[:, 0])) == 16
    rows = sx[:, 0].astype(int)
    np.testing.assert_array_equal(sy, y[rows])
    np.testing.assert_array_equal(ssw, np.where(y[rows] == 1, 3.0, 1.0))
    np.testing.assert_array_equal(capture_fit_data(TRAIN_ON_BATCH, args, kwargs, seed=0).sample(16)[0], sx)
    # and the user's call gets its own arguments back
    got_args, got_kwargs = fd.fit_args()
    assert got_args[0] is x and got_args[1] is y and got_kwargs == kwargs
    # The method can be named too (the interceptor knows it).
    assert capture_fit_data(FIT, (x, y), {}, method="train_on_batch").kind == "batch"


def test_train_on_batch_data_gradscope_cannot_read() -> None:
    x, y = make_data(8)
    with pytest.raises(ValueError, match="class_weight"):
        capture_fit_data(TRAIN_ON_BATCH, (x, y), {"class_weight": {0: 1.0}, "sample_weight": np.ones(8)})
    with pytest.raises(ValueError, match="train_on_batch data"):
        capture_fit_data(TRAIN_ON_BATCH, (iter([x]),), {})
    with pytest.raises(ValueError, match="train_on_batch was called without `x`"):
        capture_fit_data(TRAIN_ON_BATCH, (), {"x": None, "y": y})
