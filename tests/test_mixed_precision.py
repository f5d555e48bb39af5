"""Mixed precision on real tiny models: the gradient figures are those of the
real loss in float32 (unscaled), a step the LossScaleOptimizer skips is
`loss-scale-overflow` (never `exploding-gradient` / `nonfinite-loss`),
gradients flushed towards zero in float16 are `gradient-underflow`, and each
layer's compute dtype is in the model description.

Each model is built under a global dtype policy that the fixture restores
(Keras wraps the optimizer in a LossScaleOptimizer at compile when the model's
policy is mixed_float16)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers

import gradscope
from gradscope import events
from gradscope.events import LayerInfo, ModelDescribed

# grad_norm of the first probe step (before any update: the same weights) of a
# mixed model against the float32 model's. float16 keeps 11 significant bits
# (relative rounding 2**-11 = 4.9e-4 per operation), bfloat16 8 (2**-8 = 3.9e-3);
# a norm sums many rounded entries whose errors mostly cancel (measured: 1e-4
# and 1e-3). The tolerances leave 4-5x room, and a gradient still carrying the
# loss scale (2**15) or rounded to a coarser type would be far outside them.
RTOL = {"mixed_float16": 2e-3, "mixed_bfloat16": 1e-2}


@pytest.fixture
def policy() -> Iterator[Any]:
    saved = keras.config.dtype_policy()

    def use(name: str) -> None:
        keras.config.set_dtype_policy(name)

    yield use
    keras.config.set_dtype_policy(saved)


def _classifier(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((20,)),
        layers.Dense(32, activation="relu", name="hidden"),
        layers.Dense(3, activation="softmax", name="out", dtype="float32"),
    ], name="mlp")
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    return model


def _classification_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 20)).astype("float32"), rng.integers(0, 3, 64)


def _first_step_norms(report: Any) -> dict[str, float]:
    rows = [r for r in report.layers if r["phase"] == "probe"]
    first = min(r["step"] for r in rows)
    return {r["layer"]: r["grad_norm"] for r in rows if r["step"] == first}


@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_gradient_norms_are_the_float32_models(policy: Any, name: str) -> None:
    x, y = _classification_data()
    policy("float32")
    reference = _first_step_norms(gradscope.diagnose(_classifier(), x, y, batch_size=32, budget=0,
                                                     steps=2, seed=0))
    policy(name)
    model = _classifier()
    assert model.get_layer("hidden").compute_dtype == name.removeprefix("mixed_")
    report = gradscope.diagnose(model, x, y, batch_size=32, budget=0, steps=2, seed=0)
    mixed = _first_step_norms(report)
    assert set(mixed) == {"hidden", "out"}
    for layer, norm in reference.items():
        assert mixed[layer] == pytest.approx(norm, rel=RTOL[name]), layer
    assert not [v for v in report.verdicts if v.severity in ("error", "warning")], report.verdicts
    # The compute dtype of each layer, in the model description
    described = [e for e in report.events if isinstance(e, ModelDescribed)][0]
    dtypes = {info.name: info.compute_dtype for info in described.layers}
    assert dtypes == {"hidden": name.removeprefix("mixed_"), "out": "float32"}


def _regression(targets_scale: float, seed: int = 0) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(128, 10)).astype("float32")
    y = (x @ rng.normal(size=(10, 1)) * targets_scale).astype("float32")
    model = keras.Sequential([
        keras.Input((10,)),
        layers.Dense(32, activation="relu", name="hidden"),
        layers.Dense(1, name="out", dtype="float32"),
    ], name="regression")
    # A summed loss: its gradients are the batch size times larger than a mean's.
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.MeanSquaredError(reduction="sum"))
    return model, x, y


def test_a_few_skipped_steps_while_the_scale_settles_are_an_info(policy: Any) -> None:
    policy("mixed_float16")
    model, x, y = _regression(1.0)
    report = gradscope.diagnose(model, x, y, batch_size=32, budget=0, steps=5, seed=0)
    checks = {v.check: v for v in report.verdicts}
    assert "exploding-gradient" not in checks and "nonfinite-loss" not in checks
    overflow = checks["loss-scale-overflow"]
    assert overflow.severity == "info"
    skipped = overflow.evidence["skipped_steps"]
    assert 1 in skipped and 5 not in skipped  # skipped at first, then settled
    scales = overflow.evidence["loss_scales"]
    assert scales[0] == 2.0**15
    assert all(b == a / 2 for a, b in zip(scales, scales[1:len(skipped) + 1], strict=False))
    # A skipped step has no gradient norm where the gradient overflowed, and no update
    rows = [r for r in report.layers if r["phase"] == "probe" and r["step"] == 1]
    assert all(r["update_ratio"] is None for r in rows)
    assert any(r["grad_norm"] is None for r in rows)
    last = [r for r in report.layers if r["phase"] == "probe" and r["step"] == 5]
    assert all(r["grad_norm"] is not None and np.isfinite(r["grad_norm"]) for r in last)


def test_steps_skipped_to_the_end_are_a_warning_not_an_exploding_gradient(policy: Any) -> None:
    policy("mixed_float16")
    model, x, y = _regression(100.0)
    report = gradscope.diagnose(model, x, y, batch_size=32, budget=0, steps=4, seed=0)
    checks = {v.check: v for v in report.verdicts}
    assert "exploding-gradient" not in checks and "nonfinite-loss" not in checks, checks
    assert checks["loss-scale-overflow"].severity == "warning"
    assert checks["loss-scale-overflow"].evidence["skipped"] == 4


def _autoencoder(scale_loss: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        layers.Dense(32, activation="relu", name="encode"),
        layers.Dense(64, activation="sigmoid", name="decode"),
    ], name="autoencoder")
    model.compile(keras.optimizers.SGD(0.5), "mse", auto_scale_loss=scale_loss)
    return model


@pytest.mark.parametrize("scale_loss", [False, True])
def test_gradients_flushed_in_float16_are_underflow(policy: Any, scale_loss: bool) -> None:
    policy("mixed_float16")
    x = np.random.default_rng(0).random((256, 64)).astype("float32")
    report = gradscope.diagnose(_autoencoder(scale_loss), x, x, batch_size=256, budget=0, steps=3,
                                seed=0)
    found = [v for v in report.verdicts if v.check == "gradient-underflow"]
    if scale_loss:  # the LossScaleOptimizer lifts them into float16's range
        assert found == []
        return
    assert len(found) == 1
    v = found[0]
    assert v.severity in ("warning", "error")
    assert v.evidence["loss_scale"] is None
    assert set(v.evidence["layers"]) <= {"encode", "decode"} and v.evidence["layers"]
    for layer in v.evidence["layers"]:
        assert v.evidence["zero_frac"][layer] + v.evidence["subnormal_frac"][layer] >= 0.5
    assert "auto_scale_loss=True" in v.fix
    assert "vanishing-gradient" not in [c.check for c in report.verdicts if c.kind == "cause"]


def test_bfloat16_gradients_are_never_underflow(policy: Any) -> None:
    policy("mixed_bfloat16")
    x = np.random.default_rng(0).random((256, 64)).astype("float32")
    report = gradscope.diagnose(_autoencoder(False), x, x, batch_size=256, budget=0, steps=2, seed=0)
    assert "gradient-underflow" not in [v.check for v in report.verdicts]


def test_the_watch_does_not_call_a_skipped_step_non_finite(policy: Any) -> None:
    policy("mixed_float16")
    model, x, y = _regression(1.0)
    callback = gradscope.Callback(watch_every=1, budget=0, steps=2, show=False)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[callback])
    report = callback.report
    checks = [v.check for v in report.verdicts]
    assert "nonfinite-during-training" not in checks and "gradient-exploding-late" not in checks
    train = [r for r in report.layers if r["phase"] == "train"]
    assert train
    # the fit's own first steps overflow too (the diagnosis left the scale as it was)
    assert any(r["grad_norm"] is None and r["layer"] == "hidden" for r in train)
    assert all(r["grad_norm"] is None or np.isfinite(r["grad_norm"]) for r in train)


def test_layer_info_of_an_old_record_gets_its_compute_dtype() -> None:
    old = LayerInfo("d", "Dense", 10, True, None, "", {"dtype": "mixed_float16"})
    assert old.compute_dtype == "float16"
    assert LayerInfo("d", "Dense", 10, True, config={"dtype": "mixed_bfloat16"}).compute_dtype == "bfloat16"
    assert LayerInfo("d", "Dense", 10, True).compute_dtype is None
    assert LayerInfo("d", "Dense", 10, True, compute_dtype="float32").compute_dtype == "float32"
    # ... and a recorded event reads back with it
    event = ModelDescribed("m", "Sequential", 10, 10, "CPU", "clone", (old,))
    (back,) = events.from_json(events.to_json(event)).layers
    assert back == old
    # The drill-down's title says what the layer computes in
    from gradscope.report import LayerTrack
    from gradscope.ui.screens.layer import layer_title

    track = LayerTrack("d", 0, "Dense", 10, True, config={"dtype": "mixed_float16"})
    assert layer_title(track).endswith("computes in float16")
    assert "computes in" not in layer_title(LayerTrack("d", 0, "Dense", 10, True))


def test_the_gradient_histograms_of_an_overflowing_step_show_no_inf(policy: Any) -> None:
    from gradscope.events import LayerHistograms

    policy("mixed_float16")
    model, x, y = _regression(1.0)
    report = gradscope.diagnose(model, x, y, batch_size=32, budget=0, steps=2, seed=0)
    assert "loss-scale-overflow" in [v.check for v in report.verdicts]  # the first step overflows
    histograms = [e for e in report.events if isinstance(e, LayerHistograms)]
    grads = [h.grads for e in histograms for h in e.layers if h.grads is not None]
    assert grads and all(g.nonfinite == 0 for g in grads)
    assert all(g.hi > g.lo for g in grads)


# --- a model's own train_step, probed through that step -----------------------------


class OwnStep(keras.Sequential):
    """A train_step as users write it for mixed precision: the loss scaled by the
    optimizer (a LossScaleOptimizer when the policy is mixed_float16)."""

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf

        x, y = data
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x=x, y=y, y_pred=self(x, training=True))
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return {"loss": loss}


def _own(model: keras.Model, optimizer: Any, auto_scale_loss: bool = True) -> keras.Model:
    """The same layers and loss, trained by OwnStep.train_step."""
    own = OwnStep(model.layers, name=model.name)
    own.compile(optimizer, model._compile_config.config["loss"], auto_scale_loss=auto_scale_loss)
    return own


def test_an_own_train_step_reports_unscaled_gradients_and_skipped_steps(policy: Any) -> None:
    policy("float32")
    model, x, y = _regression(1.0)
    reference = _first_step_norms(gradscope.diagnose(_own(model, keras.optimizers.Adam(1e-3)), x, y,
                                                     batch_size=32, budget=0, steps=1, seed=0))
    policy("mixed_float16")
    model, x, y = _regression(1.0)
    report = gradscope.diagnose(_own(model, keras.optimizers.Adam(1e-3)), x, y, batch_size=32, budget=0,
                                steps=5, seed=0)
    checks = {v.check: v for v in report.verdicts}
    assert "custom-train-step" in checks
    assert "exploding-gradient" not in checks and "nonfinite-loss" not in checks, checks
    overflow = checks["loss-scale-overflow"]
    assert 1 in overflow.evidence["skipped_steps"] and 5 not in overflow.evidence["skipped_steps"]
    assert overflow.evidence["loss_scales"][0] == 2.0**15
    # the first step that was not skipped: its norms are the real loss's (float32 model's at
    # step 1 are of other weights only by the skipped steps, which moved nothing)
    rows = [r for r in report.layers if r["phase"] == "probe"]
    kept = min(r["step"] for r in rows if r["step"] not in overflow.evidence["skipped_steps"])
    for r in rows:
        if r["step"] == kept:
            assert r["grad_norm"] == pytest.approx(reference[r["layer"]], rel=RTOL["mixed_float16"])
        if r["step"] in overflow.evidence["skipped_steps"]:
            assert r["update_ratio"] is None


def test_an_own_train_step_whose_float16_gradients_flush_is_underflow(policy: Any) -> None:
    policy("mixed_float16")
    x = np.random.default_rng(0).random((256, 64)).astype("float32")
    report = gradscope.diagnose(_own(_autoencoder(False), keras.optimizers.SGD(0.5), auto_scale_loss=False),
                                x, x, batch_size=256, budget=0, steps=3, seed=0)
    checks = [v.check for v in report.verdicts]
    assert "custom-train-step" in checks and "gradient-underflow" in checks, checks
