"""gradscope never harms the user's run.

The probe works on a clone (or on the user's own model behind a snapshot), inside
`preserved_rng()`; afterwards every variable of the user's model and optimizer,
every global random stream and the user's seeded training must be exactly where
they would have been under plain `python`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

from gradscope.engine.layers import describe, probe_layers  # noqa: E402
from gradscope.engine.probe import ProbeStep  # noqa: E402
from gradscope.engine.rng import preserved_rng  # noqa: E402
from gradscope.engine.target import ensure_built, make_target  # noqa: E402
from gradscope.events import EventBus, LayerStats  # noqa: E402
from gradscope.intercept import FitCall, ProbeFinished  # noqa: E402
from gradscope.options import RunOptions  # noqa: E402
from gradscope.session import Session  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 32

rng = np.random.default_rng(0)
X = rng.normal(size=(N, 4)).astype("float32")
Y = rng.normal(size=(N, 1)).astype("float32")


class Regressor(keras.Model):
    """Subclassed without get_config: gradscope must probe it in place."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.hidden = L.Dense(units, activation="relu")
        self.norm = L.BatchNormalization()
        self.drop = L.Dropout(0.3)
        self.head = L.Dense(1)

    def call(self, x: Any, training: bool = False) -> Any:
        h = self.norm(self.hidden(x), training=training)
        return self.head(self.drop(h, training=training))


def sequential() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,)),
            L.Dense(8, activation="relu"),
            L.BatchNormalization(),
            L.Dropout(0.3),
            L.Dense(1),
        ]
    )


def trained(build: Callable[[], keras.Model]) -> keras.Model:
    """A user's model after one training step: Adam has moments, BN has moving stats."""
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.train_on_batch(X, Y)
    return model


Snapshot = list[tuple[str, str, bytes]]


def snapshot(model: keras.Model) -> Snapshot:
    """Every variable of the model and its optimizer, bit for bit."""
    found = list(model.variables) + list(model.optimizer.variables)
    return [(v.path, str(v.dtype), np.asarray(v.numpy()).tobytes()) for v in found]


def values(model: keras.Model) -> list[bytes]:
    """The snapshot's bits alone, to compare two models (their variable paths differ)."""
    return [bits for _, _, bits in snapshot(model)]


@dataclass
class ProbeRun:
    mode: str
    moved: bool  # did the probe's own model change during the probe?


def probe(model: keras.Model, steps: int = 4) -> ProbeRun:
    """The probe as the session runs it: clone or in place, steps, restore."""
    ensure_built(model, X)
    with preserved_rng():
        target = make_target(model, X)
        try:
            before = [np.array(v.numpy()) for v in target.model.trainable_variables]
            layers = probe_layers(target.model)
            metas = describe(layers)
            x, y = tf.constant(X), tf.constant(Y)
            target.loss_fn(y, target.model(x, training=False), None)
            step = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, metas)
            for _ in range(steps):
                step.run(x, y, None)
            after = [np.array(v.numpy()) for v in target.model.trainable_variables]
            moved = any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
        finally:
            target.restore()
    return ProbeRun(target.mode, moved)


# --------------------------------------------------------------------------- variables


@pytest.mark.parametrize(
    ("build", "mode"),
    [(sequential, "clone"), (lambda: Regressor(8), "in-place")],
    ids=["clone", "in-place"],
)
def test_probe_leaves_every_user_variable_bitwise_unchanged(
    build: Callable[[], keras.Model], mode: str
) -> None:
    # Given a model the user has trained one step with Adam,
    model = trained(build)
    before = snapshot(model)
    # when gradscope probes it for several compiled steps,
    run = probe(model)
    # then the probe did train (on a clone, or on the user's model in place),
    assert run.mode == mode
    assert run.moved
    # and every weight, moving statistic, seed state, Adam moment and the
    # iteration count are bit for bit what they were.
    assert snapshot(model) == before


def test_users_next_training_step_is_the_one_it_would_have_been() -> None:
    # Given two identical users' models, one of them probed in place,
    twin, probed = trained(lambda: Regressor(8)), trained(lambda: Regressor(8))
    assert probe(probed).mode == "in-place"
    # when both take their next training step,
    keras.utils.set_random_seed(1)
    twin_loss = twin.train_on_batch(X, Y)
    keras.utils.set_random_seed(1)
    probed_loss = probed.train_on_batch(X, Y)
    # then they report the same loss and land on the same weights.
    assert probed_loss == twin_loss
    assert values(probed) == values(twin)


def test_the_full_session_probe_leaves_an_in_place_model_untouched() -> None:
    # Given a subclassed model (probed in place) the user trained one step,
    model = trained(lambda: Regressor(8))
    before = snapshot(model)
    bus = EventBus()
    session = Session(RunOptions(script="train.py", steps=3, probe_only=True, experiment_scale=0.1), bus)
    call = FitCall(model, (X, Y), {"batch_size": 16, "epochs": 1, "verbose": 0}, keras.Model.fit)
    # when gradscope's session takes its fit (probe, checks, experiments),
    with pytest.raises(ProbeFinished):
        session.on_fit(call)
    # then the probe ran and reported layer rows,
    assert [v.check for v in bus.verdicts() if v.check == "probe-failed"] == []
    assert any(isinstance(e, LayerStats) for e in bus.history)
    # and nothing of the user's model or optimizer changed.
    assert snapshot(model) == before


# --------------------------------------------------------------------------- random streams


def draws() -> dict[str, float]:
    """One number from every global random stream a user's script may read."""
    return {
        "random": random.random(),
        "np.random": float(np.random.rand()),
        "tf eager seed stream": float(tf.random.uniform(())),
        "tf op-seeded op": float(tf.random.normal((), seed=7)),
        "keras global SeedGenerator": float(keras.random.uniform(())),
        "tf global Generator": float(tf.random.get_global_generator().uniform(())),
    }


def reseed() -> None:
    keras.utils.set_random_seed(123)
    tf.random.set_global_generator(tf.random.Generator.from_seed(123))


def draw_from_everything() -> None:
    draws()
    keras.random.normal((3,))
    np.random.permutation(10)


def probe_a_fresh_model() -> None:
    model = keras.Sequential([keras.Input((4,)), L.Dense(4), L.Dropout(0.5), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    probe(model, steps=2)


def probe_in_place() -> None:
    model = Regressor(4)
    model.compile(optimizer="adam", loss="mse")
    probe(model, steps=2)


@pytest.mark.parametrize(
    "disturb",
    [draw_from_everything, probe_a_fresh_model, probe_in_place],
    ids=["draws", "clone-probe", "in-place-probe"],
)
def test_preserved_rng_leaves_every_random_stream_where_it_was(
    disturb: Callable[[], None],
) -> None:
    # Given a seeded script that has already drawn once from every stream,
    reseed()
    draws()
    without_probe = draws()
    reseed()
    draws()
    # when gradscope works inside preserved_rng() (itself drawing from the streams),
    with preserved_rng():
        disturb()
        draws()
    # then the script's next draw from each stream is the one it gets without gradscope.
    assert draws() == without_probe


def test_a_probe_does_not_change_the_names_keras_gives_the_users_next_layers() -> None:
    # Given a user about to build a second model,
    def next_names() -> tuple[str, str]:
        inp = keras.Input((2,))
        return keras.Model(inp, L.Dense(1)(inp)).name, L.Dropout(0.1).name

    model = sequential()
    model.compile(optimizer="adam", loss="mse")
    state = dict(keras.src.backend.common.global_state.get_global_attribute("object_name_uids"))
    expected = next_names()
    names = keras.src.backend.common.global_state.get_global_attribute("object_name_uids")
    names.clear()
    names.update(state)
    # when gradscope has cloned and probed the first one,
    assert probe(model).mode == "clone"
    # then Keras names the new model and layers as it would have without gradscope.
    assert next_names() == expected


# --------------------------------------------------------------------------- seeded scripts

SCRIPT = textwrap.dedent(
    """
    import random, sys
    import keras, numpy as np, tensorflow as tf

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    data, arch = sys.argv[1], sys.argv[2]
    x = np.random.normal(size=(96, 6)).astype("float32")
    y = (x[:, :1] * 2 + 0.1 * np.random.normal(size=(96, 1))).astype("float32")


    class Net(keras.Model):  # no get_config: probed in place
        def __init__(self, units):
            super().__init__()
            self.hidden = keras.layers.Dense(units, activation="relu")
            self.drop = keras.layers.Dropout(0.3)
            self.out = keras.layers.Dense(1)

        def call(self, x, training=False):
            return self.out(self.drop(self.hidden(x), training=training))


    if arch == "sequential":
        model = keras.Sequential([
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1),
        ])
    else:
        model = Net(16)
    model.compile(optimizer="adam", loss="mse")
    if data == "arrays":
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=True, verbose=0)
    elif data == "generator":
        def batches():
            while True:  # augments with the global RNGs, as users do
                i = random.randrange(0, 80)
                noise = np.random.normal(scale=0.01, size=(16, 6)).astype("float32")
                yield x[i:i + 16] + noise, y[i:i + 16]
        history = model.fit(batches(), epochs=2, steps_per_epoch=6, verbose=0)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        history = model.fit(ds, epochs=2, verbose=0)
    print("final loss", repr(history.history["loss"][-1]))
    print("weight sum", repr(float(sum(np.sum(w) for w in model.get_weights()))))
    print("next draws", random.random(), np.random.rand(), float(tf.random.uniform(())))
    inp = keras.Input((2,))
    print("next names", keras.Model(inp, keras.layers.Dense(1)(inp)).name)
    """
)

RUNS = [  # (data, model): the subclassed model is probed in place
    ("arrays", "sequential"),
    ("generator", "subclassed"),
    ("dataset", "sequential"),
]


@dataclass
class Parity:
    plain: list[str]  # the script's result lines under `python script.py`
    gradscope: list[str]  # ... under `gradscope run --headless`
    gradscope_rc: int
    csv: str
    verdicts: str


def _result_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("final", "weight", "next"))]


@dataclass
class Started:
    folder: Path
    procs: dict[tuple[str, str], tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]


@pytest.fixture(scope="module", autouse=True)
def started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Started | None]:
    """Start every run of RUNS, under python and under gradscope, as soon as the
    module starts (they take a while), if any selected test needs them."""
    if not any("parity" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    tmp = tmp_path_factory.mktemp("parity")
    script = tmp / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    procs = {}
    for data, arch in RUNS:
        out = tmp / f"{data}-{arch}"
        out.mkdir()
        plain = [sys.executable, str(script), data, arch]
        ours = [sys.executable, "-m", "gradscope", "run", "--headless", "--csv", str(out / "l.csv")]
        ours += ["--verdicts", str(out / "v.csv"), str(script), data, arch]
        pair = []
        for name, cmd in (("plain", plain), ("gradscope", ours)):
            with (
                open(out / f"{name}.out", "wb") as stdout,
                open(out / f"{name}.err", "wb") as stderr,
            ):
                pair.append(subprocess.Popen(cmd, cwd=tmp, env=env, stdout=stdout, stderr=stderr))
        procs[(data, arch)] = (pair[0], pair[1])
    yield Started(tmp, procs)
    for both in procs.values():
        for proc in both:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def parity(started: Started | None) -> dict[tuple[str, str], Parity]:
    """The results of every run of RUNS, once all have ended."""
    assert started is not None
    results = {}
    for (data, arch), (plain, ours) in started.procs.items():
        out = started.folder / f"{data}-{arch}"
        assert plain.wait(timeout=300) == 0, (out / "plain.err").read_text()[-2000:]
        ours.wait(timeout=300)
        csv = out / "l.csv"
        verdicts = out / "v.csv"
        results[(data, arch)] = Parity(
            plain=_result_lines((out / "plain.out").read_text()),
            gradscope=_result_lines((out / "gradscope.out").read_text()),
            gradscope_rc=ours.returncode,
            csv=csv.read_text() if csv.exists() else (out / "gradscope.err").read_text()[-2000:],
            verdicts=verdicts.read_text() if verdicts.exists() else "",
        )
    return results


@pytest.mark.parametrize(("data", "arch"), RUNS, ids=["-".join(r) for r in RUNS])
def test_seeded_script_trains_identically_under_gradscope(
    parity: dict[tuple[str, str], Parity], data: str, arch: str
) -> None:
    # Given a fully seeded script with Dropout, run under python and under gradscope
    # (probe, then the script's own fit goes on),
    run = parity[(data, arch)]
    assert run.gradscope_rc == 0, run.csv
    # then it prints the same final loss, the same weight sum, the same next random
    # numbers and the same model names, to the last digit.
    assert len(run.plain) == 4
    assert run.gradscope == run.plain


@pytest.mark.parametrize(("data", "arch"), RUNS, ids=["-".join(r) for r in RUNS])
def test_the_parity_runs_were_really_probed(
    parity: dict[tuple[str, str], Parity], data: str, arch: str
) -> None:
    # The parity above means something only if gradscope did probe: layer rows
    # were written and no probe-failed verdict was issued.
    run = parity[(data, arch)]
    rows = [line for line in run.csv.splitlines()[1:] if line.startswith("probe,")]
    assert rows, run.csv
    assert "probe-failed" not in run.verdicts, run.verdicts
