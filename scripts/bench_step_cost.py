"""Benchmark: the nominal step time the experiments are sized by (engine/cost.py)
against a measured compiled training step, for a few model shapes.

The experiments' step counts come from the nominal time only, so the verdicts
are the same on any machine; this prints how far the nominal time is from this
machine's (ratio nominal / measured, median of 30 steps after 5 warm-ups).

    python scripts/bench_step_cost.py
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gradscope.engine.cost import StepCost, measuring_cost  # noqa: E402

L = keras.layers


def models() -> list[tuple[str, keras.Model, tuple[int, ...]]]:
    return [
        ("MLP 784-256-256-10", keras.Sequential([
            keras.Input((784,)), L.Dense(256, activation="relu"), L.Dense(256, activation="relu"),
            L.Dense(10, activation="softmax")]), (784,)),
        ("tiny MLP 20-16-1", keras.Sequential([
            keras.Input((20,)), L.Dense(16, activation="relu"), L.Dense(10, activation="softmax")]),
         (20,)),
        ("CNN 28x28x1", keras.Sequential([
            keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(),
            L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
            L.Dense(10, activation="softmax")]), (28, 28, 1)),
        ("CNN 32x32x3", keras.Sequential([
            keras.Input((32, 32, 3)), L.Conv2D(32, 3, padding="same", activation="relu"),
            L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(),
            L.Conv2D(64, 3, padding="same", activation="relu"), L.GlobalAveragePooling2D(),
            L.Dense(10, activation="softmax")]), (32, 32, 3)),
        ("LSTM(64) on 50x8", keras.Sequential([
            keras.Input((50, 8)), L.LSTM(64), L.Dense(10, activation="softmax")]), (50, 8)),
        ("50 x Dense(128)", keras.Sequential(
            [keras.Input((128,))] + [L.Dense(128, activation="relu") for _ in range(50)]
            + [L.Dense(10, activation="softmax")]), (128,)),
    ]


def measured_step(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    model.compile("adam", "sparse_categorical_crossentropy")
    tvars = model.trainable_variables

    @tf.function
    def step(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=a, y=b, y_pred=model(a, training=True))
        model.optimizer.apply_gradients(zip(tape.gradient(loss, tvars), tvars, strict=True))
        return loss

    a, b = tf.constant(x), tf.constant(y)
    for _ in range(5):
        float(step(a, b))
    times = []
    for _ in range(30):
        start = time.perf_counter()
        float(step(a, b))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    batch = 32
    ratios = []
    for name, model, shape in models():
        x = rng.normal(size=(batch, *shape)).astype("float32")
        y = rng.integers(0, 10, batch)
        cost = StepCost()
        with measuring_cost(cost):
            model(x[:2])
        nominal = cost.step_seconds(batch)
        real = measured_step(model, x, y)
        ratios.append(nominal / real)
        print(f"{name:22s} nominal {nominal * 1e3:7.2f} ms  measured {real * 1e3:7.2f} ms  "
              f"ratio {nominal / real:5.2f}", flush=True)
    print(f"median ratio nominal/measured {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}), batch {batch}")


if __name__ == "__main__":
    main()
