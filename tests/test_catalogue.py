"""Every catalogue check fires on the situation it describes, with its evidence,
through the real pipeline (real models, real probe steps and experiments)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tests.diagnose import Diagnosis, diagnose  # noqa: E402

L = keras.layers
RNG = np.random.default_rng(0)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype("float32"), d.target.astype("int64")


X, Y = _digits()


def mlp(out: int = 10, act: str = "softmax", loss: object = "sparse_categorical_crossentropy",
        opt: object = None, hidden: str = "relu", metrics: list[str] | None = None,
        **dense_kwargs: object) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((64,)), L.Dense(32, activation=hidden, **dense_kwargs),
         L.Dense(out, activation=act, name="out")]
    )
    model.compile(optimizer=opt or keras.optimizers.Adam(1e-3), loss=loss,
                  metrics=metrics or ["accuracy"])
    return model


def regressor(act: str | None = None, loss: str = "mse", metrics: list[str] | None = None) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((64,)), L.Dense(32, activation="relu"), L.Dense(1, activation=act, name="out")]
    )
    model.compile(optimizer="adam", loss=loss, metrics=metrics or [])
    return model


Case = Callable[[], Diagnosis]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every scenario starts from the same weights: verdicts are reproducible."""
    keras.utils.set_random_seed(0)

# check id -> (scenario, a phrase its message must quote)
CASES: dict[str, tuple[Case, str]] = {
    "zero-sample-weights": (
        lambda: diagnose(mlp(), X, Y, sample_weight=np.zeros(len(X), dtype="float32")),
        "every sample in the probe batches has weight 0",
    ),
    "embedding-out-of-range": (
        lambda: diagnose(_embedded(input_dim=10), IDS, (IDS.sum(axis=1) > IDS.sum(axis=1).mean()).astype("int64")),
        "input_dim=10",
    ),
    "logits-mismatch": (
        lambda: diagnose(mlp(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)), X, Y),
        "from_logits=True",
    ),
    "output-activation-mismatch": (
        lambda: diagnose(regressor(act="sigmoid"), X, Y.astype("float32") * 10), "range from 0 to 90"
    ),
    "regression-target-classification": (
        lambda: diagnose(mlp(), X, Y + RNG.random(len(Y)).astype("float32")), "continuous"
    ),
    "accuracy-on-regression": (
        lambda: diagnose(regressor(metrics=["accuracy"]), X, X[:, 10] * 3 + 0.5), "accuracy"
    ),
    "unscaled-targets": (
        lambda: diagnose(regressor(), X, (X[:, 10] * 3e5 + 1e5).astype("float32")), "far from unit scale"
    ),
    "mse-for-classification": (
        lambda: diagnose(mlp(loss="mse"), X, np.eye(10, dtype="float32")[Y]), "one-hot"
    ),
    "constant-labels": (lambda: diagnose(mlp(), X, np.full(len(Y), 3)), "are 3"),
    "class-imbalance": (
        lambda: diagnose(mlp(out=1, act="sigmoid", loss="binary_crossentropy"), X,
                         (Y == 3).astype("float32") * (RNG.random(len(Y)) < 0.5)),
        "majority class holds",
    ),
    "nonfinite-input": (lambda: diagnose(mlp(), np.where(X > 0.9, np.nan, X), Y), "NaN/Inf"),
    "constant-input": (lambda: diagnose(mlp(), np.zeros_like(X), Y), "all zero"),
    "unnormalized-input": (lambda: diagnose(mlp(), X * 255 * 16, Y), "|x| = 4080"),
    "frozen-model": (lambda: diagnose(_frozen(), X, Y), "none of them is trainable"),
    "dead-relu": (
        lambda: diagnose(mlp(bias_initializer=keras.initializers.Constant(-10.0)), X, Y),
        "whole layer is dead",
    ),
    "saturated-activation": (lambda: diagnose(mlp(hidden="sigmoid"), X * 4080, Y), "flat"),
    "regularization-dominates": (
        lambda: diagnose(mlp(kernel_regularizer=keras.regularizers.l2(10.0)), X, Y), "data loss"
    ),
    "lr-too-high": (lambda: diagnose(mlp(opt=keras.optimizers.SGD(50.0)), X, Y), "you use 50"),
    "lr-too-low": (lambda: diagnose(mlp(opt=keras.optimizers.Adam(1e-7)), X, Y), "you use 1e-07"),
    "labels-unpredictable": (lambda: diagnose(mlp(), X, RNG.permutation(Y)), "held-back"),
    "predictions-unchanged": (lambda: diagnose(mlp(opt=keras.optimizers.SGD(0.0)), X, Y), "identical"),
    "loss-flat": (lambda: diagnose(mlp(opt=keras.optimizers.SGD(0.0)), X, Y), "does not move"),
    "collapsed-predictions": (
        lambda: diagnose(mlp(bias_initializer=keras.initializers.Constant(-10.0)), X, Y), "same output"
    ),
    "cannot-overfit": (
        lambda: diagnose(mlp(bias_initializer=keras.initializers.Constant(-10.0)), X, Y), "32 samples"
    ),
    "accuracy-at-baseline": (
        lambda: diagnose(mlp(bias_initializer=keras.initializers.Constant(-10.0)), X, Y), "majority"
    ),
    "init-loss-unexpected": (lambda: diagnose(_overconfident(), X, Y), "ln(10)"),
    "exploding-gradient": (lambda: diagnose(_exploding(), X, Y), "gradient norm"),
    "zero-gradient": (lambda: diagnose(_disconnected(), X, Y), "no gradient"),
    "repeated-batch": (lambda: diagnose(mlp(), _same_batch(), steps_per_epoch=10), "same batch"),
    "ordered-labels": (lambda: diagnose(mlp(), _sorted_dataset()), "sorted"),
    "undertrained": (
        lambda: diagnose(mlp(opt=keras.optimizers.Adam(1e-4)), X, Y, epochs=2, batch_size=64),
        "budget of 58 steps",
    ),
    "label-smoothing-too-high": (
        lambda: diagnose(mlp(loss=keras.losses.CategoricalCrossentropy(label_smoothing=1.0)), X,
                         np.eye(10, dtype="float32")[Y]),
        "label_smoothing=1",
    ),
}


def _frozen() -> keras.Model:
    model = mlp()
    model.trainable = False
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _overconfident() -> keras.Model:
    return mlp(kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))


def _exploding() -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=4.0)
    model = keras.Sequential(
        [keras.Input((64,))]
        + [L.Dense(64, activation="relu", kernel_initializer=init) for _ in range(8)]
        + [L.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


class WithUnusedHead(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = L.Dense(32, activation="relu")
        self.unused = L.Dense(4)
        self.out = L.Dense(10, activation="softmax")

    def call(self, x: object) -> object:
        h = self.hidden(x)
        self.unused(h)  # built and tracked, but its output never reaches the loss
        return self.out(h)


IDS = RNG.integers(0, 50, size=(256, 8))  # token ids from a 50-word vocabulary


def _embedded(input_dim: int) -> keras.Model:
    model = keras.Sequential([
        keras.Input((8,), dtype="int32"), L.Embedding(input_dim, 4), L.GlobalAveragePooling1D(),
        L.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _disconnected() -> keras.Model:
    model = WithUnusedHead()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _same_batch():  # type: ignore[no-untyped-def]
    while True:
        yield X[:32], Y[:32]


def _sorted_dataset():  # type: ignore[no-untyped-def]
    order = np.argsort(Y, kind="stable")
    return tf.data.Dataset.from_tensor_slices((X[order], Y[order])).batch(32)


@pytest.mark.parametrize("check", sorted(CASES))
def test_check_fires_with_its_evidence(check: str) -> None:
    scenario, phrase = CASES[check]
    d = scenario()
    v = d.find(check)
    assert phrase in v.message, v.message
    assert v.fix


@pytest.mark.parametrize(
    "name, scenario",
    [
        ("mlp on digits", lambda: diagnose(mlp(), X, Y)),
        ("regression", lambda: diagnose(regressor(), X, X[:, 10] * 3 + 0.5)),
        ("binary", lambda: diagnose(mlp(out=1, act="sigmoid", loss="binary_crossentropy"), X,
                                    (Y >= 5).astype("float32"))),
        ("rescaling layer handles raw pixels", lambda: diagnose(_rescaled(), X * 255, Y)),
        ("one-hot with categorical", lambda: diagnose(mlp(loss="categorical_crossentropy"), X,
                                                      np.eye(10, dtype="float32")[Y])),
        ("shuffled tf.data", lambda: diagnose(mlp(), _sorted_dataset().unbatch().shuffle(2000, seed=0).batch(32))),
        ("embedding sized to its ids", lambda: diagnose(
            _embedded(input_dim=50), IDS, (IDS.sum(axis=1) > IDS.sum(axis=1).mean()).astype("int64"))),
    ],
)
def test_healthy_models_get_no_error_and_no_warning(name: str, scenario: Case) -> None:
    d = scenario()
    assert [(v.check, v.message) for v in d.verdicts if v.severity in ("error", "warning")] == []


def _rescaled() -> keras.Model:
    model = keras.Sequential(
        [keras.Input((64,)), L.Rescaling(1 / 255.0), L.Dense(32, activation="relu"),
         L.Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_cause_ranks_before_its_symptoms() -> None:
    d = diagnose(mlp(bias_initializer=keras.initializers.Constant(-10.0)), X, Y)
    kinds = [v.kind for v in d.verdicts if v.severity != "info"]
    assert kinds[0] == "cause" and d.verdicts[0].check == "dead-relu"
    assert kinds == sorted(kinds)  # "cause" < "symptom": every cause before any symptom
