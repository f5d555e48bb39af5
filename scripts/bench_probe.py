"""Benchmark: the gradscope probe step against Keras's own `train_on_batch`.

Paired in one process, step by step, on the same model and batch (the machine is
shared and noisy: we report the median of per-pair ratios). Models:
  mlp   Dense 784-256-256-10, batch 128
  cnn   small CNN on 28x28x1, batch 64
  deep  50 x Dense(128) + Dense(10), batch 128
Targets: probe / Keras <= 1.0 for mlp and cnn, <= 1.15 for deep.

    python scripts/bench_probe.py [--pairs 60] [--models mlp,cnn,deep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gradscope.engine.layers import describe, probe_layers  # noqa: E402
from gradscope.engine.probe import ProbeStep  # noqa: E402
from gradscope.engine.target import make_target  # noqa: E402

TARGETS = {"mlp": 1.0, "cnn": 1.0, "deep": 1.15}


def build(kind: str) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    layers = keras.layers
    if kind == "mlp":
        model = keras.Sequential(
            [keras.Input((784,)), layers.Dense(256, "relu"), layers.Dense(256, "relu"),
             layers.Dense(10, "softmax")]
        )
        x = rng.random((128, 784), dtype=np.float32)
    elif kind == "cnn":
        model = keras.Sequential(
            [keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
             layers.MaxPooling2D(), layers.Conv2D(64, 3, activation="relu"),
             layers.MaxPooling2D(), layers.Flatten(), layers.Dense(128, "relu"),
             layers.Dense(10, "softmax")]
        )
        x = rng.random((64, 28, 28, 1), dtype=np.float32)
    elif kind == "deep":
        model = keras.Sequential(
            [keras.Input((128,))] + [layers.Dense(128, "relu") for _ in range(50)]
            + [layers.Dense(10, "softmax")]
        )
        x = rng.random((128, 128), dtype=np.float32)
    else:
        raise SystemExit(f"unknown model {kind!r}")
    y = rng.integers(0, 10, len(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, x, y


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def bench(kind: str, pairs: int) -> float:
    model, x, y = build(kind)
    model.train_on_batch(x, y)  # the user's optimizer has state, as mid-training
    target = make_target(model, x)
    layers = probe_layers(target.model)
    xt, yt = tf.constant(x), tf.constant(y)
    target.loss_fn(yt, target.model(xt), None)
    probe = ProbeStep(target.model, target.optimizer, target.loss_fn, layers, describe(layers))
    for _ in range(5):  # warm up both (tracing, allocations)
        model.train_on_batch(x, y)
        probe.run(xt, yt, None)
    ratios, keras_ms, probe_ms = [], [], []
    for i in range(pairs):
        # Alternate the order so neither side always runs on a warmer cache.
        if i % 2:
            p = _timed(lambda: probe.run(xt, yt, None))
            k = _timed(lambda: model.train_on_batch(x, y))
        else:
            k = _timed(lambda: model.train_on_batch(x, y))
            p = _timed(lambda: probe.run(xt, yt, None))
        ratios.append(p / k)
        keras_ms.append(k * 1e3)
        probe_ms.append(p * 1e3)
    ratio = statistics.median(ratios)
    print(
        f"{kind:5s} keras {statistics.median(keras_ms):7.2f} ms  probe "
        f"{statistics.median(probe_ms):7.2f} ms  median ratio {ratio:.3f}  "
        f"(target <= {TARGETS[kind]:.2f}: {'ok' if ratio <= TARGETS[kind] else 'MISSED'})",
        flush=True,
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--models", default="mlp,cnn,deep")
    args = parser.parse_args()
    print(f"device: {tf.config.list_physical_devices('GPU') or 'CPU'}; pairs: {args.pairs}")
    for kind in args.models.split(","):
        bench(kind, args.pairs)


if __name__ == "__main__":
    main()
