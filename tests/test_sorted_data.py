"""Data stored sorted (one class block after another) is read the way fit reads it.

Fit shuffles arrays, so a healthy script may well keep x as np.concatenate of
class blocks. The sample the static checks and experiments read must be a
random draw over the whole training part, not its first rows; the probe
batches still follow fit's own order, so unshuffled sorted data is still found.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from diagnose import diagnose  # noqa: E402

from gradscope.engine.fitdata import capture_fit_data  # noqa: E402

FIT = keras.Model.fit


def sorted_arrays(n: int, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Column 0 is the row id; the first half is class 1, the second class 0."""
    x = np.ones((n, features), "float32")
    x[n // 2 :, 1:] = 0.0
    x[:, 0] = np.arange(n)
    y = (np.arange(n) < n // 2).astype("float32")[:, None]
    return x, y


def test_the_array_sample_is_a_seeded_random_draw_over_the_training_rows() -> None:
    # Given 10 000 rows sorted by class, 20 % of them held out by validation_split,
    x, y = sorted_arrays(10_000)
    kwargs = {"batch_size": 32, "validation_split": 0.2}
    py_state, np_state = random.getstate(), np.random.get_state()
    fd = capture_fit_data(FIT, (x, y), kwargs, seed=0)
    sx, sy, _ = fd.sample(2048)
    ids = sx[:, 0].astype(int)
    # then the sample's rows come from the training part only, each once,
    assert len(set(ids)) == 2048 and ids.max() < 8000
    # in a random order, so its first 512 rows (what the static checks read)
    # span the whole training part and hold both classes,
    head = ids[:512]
    assert head.min() < 1000 and head.max() > 7000
    assert 0.4 < float(sy[:512].mean()) < 0.8  # 5/8 of the training rows are class 1
    assert (np.diff(ids) > 0).mean() < 0.6  # not sorted
    np.testing.assert_array_equal(sy[:, 0], y[ids, 0])  # rows stay paired
    # the same for the same seed, another for another,
    np.testing.assert_array_equal(capture_fit_data(FIT, (x, y), kwargs, seed=0).sample(2048)[0], sx)
    assert not np.array_equal(capture_fit_data(FIT, (x, y), kwargs, seed=1).sample(2048)[0], sx)
    # and no global random stream moved.
    assert random.getstate() == py_state
    np.testing.assert_array_equal(np.random.get_state()[1], np_state[1])
    assert np.random.get_state()[2] == np_state[2]


@pytest.mark.parametrize("shuffle", [False, "batch"])
def test_probe_batches_still_follow_fits_order(shuffle) -> None:
    x, y = sorted_arrays(256)
    fd = capture_fit_data(FIT, (x, y), {"batch_size": 32, "shuffle": shuffle}, seed=0)
    for i, (xb, _, _) in enumerate(fd.probe_batches(3)):
        assert sorted(xb[:, 0].astype(int)) == list(range(32 * i, 32 * (i + 1)))
    # ... while the sample is drawn over all of it
    assert fd.sample(128)[0][:, 0].max() > 128


class SortedBatches(keras.utils.PyDataset):
    """Batches of sorted rows; __getitem__ draws from the global RNGs, as augmentation does."""

    def __init__(self, x: np.ndarray, y: np.ndarray, bs: int) -> None:
        super().__init__()
        self.x, self.y, self.bs = x, y, bs
        self.reads: list[int] = []

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.bs))

    def __getitem__(self, i: int):
        self.reads.append(i)
        np.random.normal()
        random.random()
        return self.x[i * self.bs : (i + 1) * self.bs], self.y[i * self.bs : (i + 1) * self.bs]


def test_a_pydatasets_sample_is_drawn_over_all_its_batches() -> None:
    # Given a PyDataset of 100 sorted batches that fit reads in order (shuffle=False),
    x, y = sorted_arrays(3200)
    data = SortedBatches(x, y, 32)
    py_state, np_state = random.getstate(), np.random.get_state()
    fd = capture_fit_data(FIT, (data,), {"shuffle": False}, seed=0)
    # the probe batches are fit's first ones,
    assert [int(b[0][0, 0]) for b in fd.probe_batches(3)] == [0, 32, 64]
    sx, sy, _ = fd.sample(2048)
    ids = sx[:, 0].astype(int)
    # while the sample takes batches from across it (bounded: 16 batches, 512 rows),
    assert len(ids) == 512 and len(set(ids)) == 512
    assert len({i // 32 for i in ids}) == 16 and ids.max() > 1600
    assert 0 < float(sy[:128].mean()) < 1  # rows mixed, not batch after batch
    np.testing.assert_array_equal(sy[:, 0], y[ids, 0])
    # each batch read once, seeded, without moving the global streams.
    assert len(data.reads) == len(set(data.reads)) <= 3 + 16
    assert random.getstate() == py_state
    np.testing.assert_array_equal(np.random.get_state()[1], np_state[1])
    again = capture_fit_data(FIT, (SortedBatches(x, y, 32),), {"shuffle": False}, seed=0)
    np.testing.assert_array_equal(again.sample(2048)[0], sx)
    assert fd.fit_args()[0][0] is data


# --------------------------------------------------------------------------- the whole diagnosis


def _classifier(features: int, classes: int) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _class_blocks(n: int = 1500, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A learnable problem stored as np.concatenate of one block per class."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(loc=c, size=(n, 10)) for c in range(classes)]).astype("float32")
    return x, np.repeat(np.arange(classes), n)


def test_a_healthy_script_with_class_sorted_arrays_gets_no_false_alarm() -> None:
    x, y = _class_blocks()
    found = diagnose(_classifier(10, 3), x, y, batch_size=32, epochs=5)
    assert found.ids == []


def test_inputs_constant_within_each_class_block_are_not_constant_input() -> None:
    # x is all ones for 3000 rows, then all zeros: the first 512 rows alone look constant.
    n = 3000
    x = np.concatenate([np.ones((n, 8)), np.zeros((n, 8))]).astype("float32")
    y = np.concatenate([np.ones(n), np.zeros(n)]).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    ids = diagnose(model, x, y, batch_size=32, epochs=3).ids
    assert "constant-input" not in ids and "constant-labels" not in ids


def test_unshuffled_sorted_arrays_are_still_ordered_labels() -> None:
    x, y = _class_blocks()
    found = diagnose(_classifier(10, 3), x, y, batch_size=32, epochs=5, shuffle=False)
    assert "ordered-labels" in found.ids
