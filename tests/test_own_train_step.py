"""Models that train by their own train_step are probed through it.

A GAN (two sub-models, two optimizers, no call()), a VAE (loss trackers, no
compiled loss), a gradient-accumulating step and a step that cuts part of the
model off the loss: each runs the real pipeline on a tiny model built here,
and the test asserts what the user sees (verdicts, per-layer rows) and that the
user's variables, every optimizer's included, are bit for bit as they were.
"""

from __future__ import annotations

import math
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers as L  # noqa: E402

from gradscope.events import EventBus, Note  # noqa: E402
from gradscope.intercept import intercept_fit  # noqa: E402
from gradscope.options import RunOptions  # noqa: E402
from gradscope.session import Session  # noqa: E402
from tests.diagnose import Diagnosis, Run, diagnose  # noqa: E402
from tests.diagnose import diagnose_and_fit as fit_under_gradscope  # noqa: E402

N = 64
rng = np.random.default_rng(0)
X = rng.normal(size=(N, 6)).astype("float32")
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("int64")
IMAGES = rng.normal(size=(N, 4)).astype("float32")  # the GAN's "real" samples

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    keras.utils.set_random_seed(0)


# --------------------------------------------------------------------------- helpers


def all_state(model: keras.Model) -> list[tuple[str, bytes]]:
    """Every variable of the model, its metrics and every optimizer it holds, bit for bit."""
    from gradscope.engine.own_step import optimizers_of

    found = list(model.variables) + list(model.metrics_variables)
    for opt in optimizers_of(model):
        found += list(opt.variables)
    return [(v.path, np.asarray(v.numpy()).tobytes()) for v in found]


def diagnose_and_fit(model: keras.Model, *args: Any, steps: int = 3, **fit_kwargs: Any) -> Run:
    """`model.fit(...)` under gradscope, every optimizer's and metric's state taken."""
    return fit_under_gradscope(model, *args, steps=steps, state=all_state, **fit_kwargs)


def assert_probed_through_own_step(run: Run | Diagnosis, *names: str) -> None:
    diagnosis = run.diagnosis if isinstance(run, Run) else run
    assert "probe-failed" not in diagnosis.ids
    v = diagnosis.find("custom-train-step")
    assert v.evidence["probed"] is True and v.evidence["through"] == "train_step", v.message
    assert "through your own train_step()" in v.message
    stats = [s for s in diagnosis.layer_stats if s.phase == "probe"]
    assert stats, "no probe figures"
    rows = {r.layer: r for r in stats[0].rows}
    for name in names:
        assert name in rows, sorted(rows)
        g, u = rows[name].grad_norm, rows[name].update_ratio
        assert g is not None and math.isfinite(g) and g > 0, (name, g)
        assert u is not None and math.isfinite(u) and u > 0, (name, u)


# --------------------------------------------------------------------------- a GAN


class GAN(keras.Model):
    """Generator and discriminator sub-models, one optimizer each, no call()."""

    def __init__(self, latent: int = 3) -> None:
        super().__init__()
        self.latent = latent
        self.generator = keras.Sequential(
            [keras.Input((latent,)), L.Dense(8, activation="relu", name="g_hidden"),
             L.Dense(4, name="g_out")], name="generator")
        self.discriminator = keras.Sequential(
            [keras.Input((4,)), L.Dense(8, activation="relu", name="d_hidden"),
             L.Dense(1, name="d_out")], name="discriminator")
        self.seed = keras.random.SeedGenerator(1)
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer: Any, g_optimizer: Any) -> None:  # type: ignore[override]
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    @property
    def metrics(self) -> list[Any]:
        return [self.d_tracker, self.g_tracker]

    def train_step(self, real: Any) -> Any:
        n = tf.shape(real)[0]
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        z = keras.random.normal((n, self.latent), seed=self.seed)
        with tf.GradientTape() as tape:
            fake = self.generator(z)
            scores = self.discriminator(tf.concat([fake, real], axis=0))
            labels = tf.concat([tf.zeros((n, 1)), tf.ones((n, 1))], axis=0)
            d_loss = bce(labels, scores)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights, strict=True))
        z = keras.random.normal((n, self.latent), seed=self.seed)
        with tf.GradientTape() as tape:
            g_loss = bce(tf.ones((n, 1)), self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        return {"d_loss": self.d_tracker.result(), "g_loss": self.g_tracker.result()}


def gan() -> GAN:
    model = GAN()
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2e-3))
    return model


def test_a_gan_without_call_is_probed_through_its_train_step_both_optimizers_restored() -> None:
    model = gan()
    model.fit(IMAGES, batch_size=16, epochs=1, verbose=0)  # both Adams have moments
    before = all_state(model)
    run = diagnose_and_fit(model, IMAGES, batch_size=16)
    # figures for the generator's and the discriminator's layers alike
    assert_probed_through_own_step(run, "g_hidden", "g_out", "d_hidden", "d_out")
    notes = run.notes()
    assert any("gradients as handed to its 2 optimizers" in n for n in notes), notes
    assert any("the log d_loss + g_loss" in n for n in notes), notes
    losses = run.probe_losses()
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses)
    # activations tapped inside the sub-models
    assert run.rows()["d_hidden"].act_dead_frac is not None
    # weights, moments, iteration counts and trackers as the user left them
    assert run.at_train_begin == before
    assert len(run.history["d_loss"]) == 1


def test_a_fresh_gan_trains_bit_for_bit_as_without_gradscope() -> None:
    """Optimizers built during the probe (first apply) start the user's fit
    as freshly built ones: the seeded run ends on the same weights."""
    keras.utils.set_random_seed(0)
    plain = gan()
    plain.fit(IMAGES, batch_size=16, epochs=2, verbose=0)
    keras.utils.set_random_seed(0)
    probed = gan()
    run = diagnose_and_fit(probed, IMAGES, batch_size=16, epochs=2)
    assert "probe-failed" not in run.ids
    assert [a for _, a in all_state(probed)] == [a for _, a in all_state(plain)]


class UnpackingGAN(GAN):
    """Written for train_on_batch, which hands the step (x, None, None) (fit
    would hand it x alone: this step only works under train_on_batch)."""

    def train_step(self, data: Any) -> Any:
        real, _, _ = data
        return super().train_step(real)


def test_a_gan_trained_by_train_on_batch_gets_its_data_as_train_on_batch_passes_it() -> None:
    model = UnpackingGAN()
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2e-3))
    bus = EventBus()
    session = Session(RunOptions(script="<test>", steps=2, experiment_scale=0.05), bus)
    with intercept_fit(session.on_fit):
        logs = model.train_on_batch(IMAGES[:16], return_dict=True)
    d = Diagnosis(list(bus.history))
    assert_probed_through_own_step(d, "g_hidden", "d_out")
    assert math.isfinite(logs["d_loss"])


# --------------------------------------------------------------------------- a VAE


class VAE(keras.Model):
    """Encoder and decoder, a hand-written loss with trackers, compiled without a loss."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = keras.Sequential(
            [keras.Input((6,)), L.Dense(8, activation="relu", name="enc_hidden"),
             L.Dense(4, name="enc_stats")], name="encoder")
        self.decoder = keras.Sequential(
            [keras.Input((2,)), L.Dense(8, activation="relu", name="dec_hidden"),
             L.Dense(6, name="dec_out")], name="decoder")
        self.seed = keras.random.SeedGenerator(2)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self) -> list[Any]:
        return [self.loss_tracker, self.kl_tracker]

    def train_step(self, x: Any) -> Any:
        with tf.GradientTape() as tape:
            stats = self.encoder(x)
            mean, log_var = stats[:, :2], stats[:, 2:]
            z = mean + tf.exp(0.5 * log_var) * keras.random.normal(tf.shape(mean), seed=self.seed)
            recon = tf.reduce_mean(tf.reduce_sum(tf.square(x - self.decoder(z)), axis=1))
            kl = -0.5 * tf.reduce_mean(
                tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1))
            loss = recon + kl
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        self.kl_tracker.update_state(kl)
        return {"loss": self.loss_tracker.result(), "kl_loss": self.kl_tracker.result()}


def test_a_vae_with_loss_trackers_and_no_compiled_loss_gets_figures() -> None:
    model = VAE()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    run = diagnose_and_fit(model, X, batch_size=16)
    assert_probed_through_own_step(run, "enc_hidden", "enc_stats", "dec_hidden", "dec_out")
    assert any("loss per probe step: the log loss" in n for n in run.notes()), run.notes()
    # per-step losses of the step itself (trackers start afresh each probe step)
    losses = run.probe_losses()
    assert len(losses) == 3 and len(set(losses)) == 3
    # the trackers' totals are the user's again when the fit starts
    assert run.at_train_begin is not None
    assert dict(run.at_train_begin)["loss/count"] == np.float32(0).tobytes()
    assert len(run.history["loss"]) == 1 and math.isfinite(run.history["loss"][0])


# --------------------------------------------------------------------------- a bug in the step


class CutOff(keras.Model):
    """A train_step whose tf.stop_gradient cuts the encoder off the loss:
    the encoder never learns (Keras only warns, once, in the log)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = L.Dense(8, activation="relu", name="encoder")
        self.head = L.Dense(2, activation="softmax", name="head")

    def call(self, x: Any) -> Any:
        return self.head(self.encoder(x))

    def train_step(self, data: Any) -> Any:
        x, y = data
        with tf.GradientTape() as tape:
            pred = self.head(tf.stop_gradient(self.encoder(x)))
            loss = self.compute_loss(x=x, y=y, y_pred=pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


def test_a_stop_gradient_in_the_own_step_is_the_top_verdict() -> None:
    model = CutOff()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    d = diagnose(model, X, Y, batch_size=16, steps=3)
    top = d.verdicts[0]
    assert top.check == "zero-gradient", d.ids
    assert top.subject == "encoder"
    assert all(v.startswith("encoder/") for v in top.evidence["variables"])
    rows = {r.layer: r for r in d.layer_stats[0].rows}
    assert rows["encoder"].grad_norm == 0.0
    assert rows["head"].grad_norm is not None and rows["head"].grad_norm > 0


# --------------------------------------------------------------------------- gradient accumulation


class Accumulating(keras.Model):
    """Adds each batch's gradients up and applies them every second step."""

    EVERY = 2

    def __init__(self) -> None:
        super().__init__()
        self.hidden = L.Dense(8, activation="relu", name="hidden")
        self.out = L.Dense(2, activation="softmax", name="out")
        self.hidden.build((None, 6))
        self.out.build((None, 8))
        self.sums = [keras.Variable(tf.zeros_like(v), trainable=False) for v in self.trainable_variables]
        self.counter = keras.Variable(0, dtype="int32", trainable=False)

    def call(self, x: Any) -> Any:
        return self.out(self.hidden(x))

    def train_step(self, data: Any) -> Any:
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        for s, g in zip(self.sums, grads, strict=True):
            s.assign_add(g)
        self.counter.assign_add(1)

        def apply() -> Any:
            self.optimizer.apply_gradients(
                [(s / self.EVERY, v) for s, v in zip(self.sums, self.trainable_variables, strict=True)])
            for s in self.sums:
                s.assign(tf.zeros_like(s))
            return tf.constant(True)

        tf.cond(self.counter % self.EVERY == 0, apply, lambda: tf.constant(False))
        return {"loss": loss}


def test_a_gradient_accumulating_step_reports_every_batchs_gradient() -> None:
    model = Accumulating()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    run = diagnose_and_fit(model, X, Y, batch_size=16, steps=4)
    assert "probe-failed" not in run.ids
    assert model.counter.numpy() == N // 16  # the fit's 4 batches, from 0: the probe's restored
    for step in (1, 2, 3, 4):
        rows = run.rows(step)
        for name in ("hidden", "out"):
            assert rows[name].grad_norm is not None and rows[name].grad_norm > 0, (step, name)
        applied = step % Accumulating.EVERY == 0
        ratio = rows["out"].update_ratio
        # an update only where the step applied the accumulated gradients
        assert (ratio is not None and ratio > 0) if applied else ratio is None, (step, ratio)
    assert "zero-gradient" not in run.ids


# --------------------------------------------------------------------------- no call(), a label bug


class Wrapped(keras.Model):
    """A classifier held as a sub-model; the wrapper has no call()."""

    def __init__(self) -> None:
        super().__init__()
        self.net = keras.Sequential(
            [keras.Input((6,)), L.Dense(8, activation="relu", name="hidden"),
             L.Dense(2, activation="softmax", name="probs")], name="net")

    def train_step(self, data: Any) -> Any:
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self.net(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


def test_a_model_without_call_still_gets_the_label_checks() -> None:
    model = Wrapped()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    one_hot = keras.utils.to_categorical(Y, 2)
    d = diagnose(model, X, one_hot, batch_size=16, steps=2)
    assert d.verdicts[0].check == "loss-label-mismatch", d.ids
    assert "one-hot" in d.verdicts[0].message
    v = d.find("custom-train-step")
    assert "no forward pass" in v.message and "label" in v.message
    assert "Traceback" not in v.message


def test_a_model_without_call_and_good_labels_is_probed() -> None:
    model = Wrapped()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    run = diagnose_and_fit(model, X, Y, batch_size=16)
    assert_probed_through_own_step(run, "hidden", "probs")
    assert "no forward pass" in run.diagnosis.find("custom-train-step").message
    assert len(run.history["loss"]) == 1


class LoggingStep(keras.Model):
    """A train_step of the common kind: Keras's own computation, plus logging."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = L.Dense(32, activation="relu")
        self.head = L.Dense(10, activation="softmax")

    def call(self, x: Any) -> Any:
        return self.head(self.hidden(x))

    def train_step(self, data: Any) -> Any:
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        for metric in self.metrics:
            metric.update_state(loss) if metric.name == "loss" else metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_an_own_step_on_the_compiled_loss_still_gets_the_experiments_and_their_verdicts() -> None:
    # Given a logging train_step on a compiled loss, with a learning rate 1000x too high
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.data / 16.0).astype("float32"), digits.target
    model = LoggingStep()
    model.compile(keras.optimizers.SGD(learning_rate=50.0), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    found = diagnose(model, x, y, steps=3, epochs=3)
    # Then it is probed through its step, the experiments ran, and the rate is named
    v = found.find("custom-train-step")
    assert v.evidence["through"] == "train_step" and "ran with a standard step" in v.message
    assert any(isinstance(e, Note) and e.text.startswith("learning-rate sweep")
               for e in found.events)
    assert {"lr-too-high", "nonfinite-loss"} & set(found.ids[:2]), found.ids


def test_a_healthy_logging_step_gets_no_warning() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.data / 16.0).astype("float32"), digits.target
    model = LoggingStep()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    found = diagnose(model, x, y, steps=3, epochs=3)
    assert [v.check for v in found.verdicts if v.severity != "info"] == []


# --------------------------------------------------------------------------- not clonable, experiments in place


class OwnSequential(keras.Sequential):
    """A Sequential subclass with its own step: clone_model gives a plain
    Sequential, so it is probed in place, and its experiments train in place."""

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        return {m.name: m.result() for m in self.metrics}


def own_sequential() -> OwnSequential:
    keras.utils.set_random_seed(0)
    model = OwnSequential([keras.Input((6,)), L.Dense(8, activation="relu", name="hidden"),
                           L.Dense(2, activation="softmax", name="head")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    return model


def test_an_unclonable_model_with_a_fresh_optimizer_trains_bit_for_bit_as_without_gradscope() -> None:
    """Its experiments train in place: they built the user's (fresh) Adam, whose
    moments then started the user's fit (other losses, other weights)."""
    plain = own_sequential()
    expected = plain.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    probed = own_sequential()
    run = diagnose_and_fit(probed, X, Y, batch_size=16, epochs=2, shuffle=False)
    assert_probed_through_own_step(run, "hidden", "head")
    assert run.history["loss"] == expected
    assert [a for _, a in all_state(probed)] == [a for _, a in all_state(plain)]
