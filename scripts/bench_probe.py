"""Benchmark: the gradscope probe step against Keras's own `train_on_batch`.

Paired in one process, step by step, on the same model and batch (the machine is
shared and noisy: we report the median of per-pair ratios). Models:
  mlp   Dense 784-256-256-10, batch 128
  cnn   small CNN on 28x28x1, batch 64
  deep  50 x Dense(128) + Dense(10), batch 128
  mirrored  the mlp under MirroredStrategy on 2 logical CPU devices, global
        batch 128: the probe's step on both replicas (each on its shard, from
        the host's batch) against Keras's own distributed step (its train
        function on a distributed dataset, as fit runs it)
Targets: probe / Keras <= 1.0 for mlp and cnn, <= 1.15 for deep, <= 1.1 for mirrored.

    python scripts/bench_probe.py [--pairs 60] [--models mlp,cnn,deep,mirrored]
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
from gradscope.engine.target import make_target, replica_target  # noqa: E402

TARGETS = {"mlp": 1.0, "cnn": 1.0, "deep": 1.15, "mirrored": 1.1}


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


def _paired(kind: str, pairs: int, keras_step: object, probe_step: object) -> float:
    ratios, keras_ms, probe_ms = [], [], []
    for i in range(pairs):
        # Alternate the order so neither side always runs on a warmer cache.
        if i % 2:
            p = _timed(probe_step)
            k = _timed(keras_step)
        else:
            k = _timed(keras_step)
            p = _timed(probe_step)
        ratios.append(p / k)
        keras_ms.append(k * 1e3)
        probe_ms.append(p * 1e3)
    ratio = statistics.median(ratios)
    print(
        f"{kind:8s} keras {statistics.median(keras_ms):7.2f} ms  probe "
        f"{statistics.median(probe_ms):7.2f} ms  median ratio {ratio:.3f}  "
        f"(target <= {TARGETS[kind]:.2f}: {'ok' if ratio <= TARGETS[kind] else 'MISSED'})",
        flush=True,
    )
    return ratio


def bench_mirrored(pairs: int) -> float:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model, x, y = build("mlp")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x)).repeat()
    # One step of fit builds what its train function needs (and gives the
    # optimizer state, as mid-training); then that function, stepped alone.
    model.fit(data, steps_per_epoch=1, epochs=1, shuffle=False, verbose=0)
    iterator = iter(strategy.experimental_distribute_dataset(data))
    train = model.train_function
    target = make_target(model, x)
    replica = replica_target(target, model, strategy, x, y, None)
    layers = probe_layers(replica.model)
    probe = ProbeStep(replica.model, replica.optimizer, replica.loss_fn, layers, describe(layers),
                      strategy=strategy)
    for _ in range(5):  # warm up both (tracing, allocations)
        train(iterator)
        probe.run(x, y, None)
    return _paired("mirrored", pairs, lambda: train(iterator), lambda: probe.run(x, y, None))


def bench(kind: str, pairs: int) -> float:
    if kind == "mirrored":
        return bench_mirrored(pairs)
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
    return _paired(kind, pairs, lambda: model.train_on_batch(x, y), lambda: probe.run(xt, yt, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--models", default="mlp,cnn,deep,mirrored")
    args = parser.parse_args()
    if "mirrored" in args.models.split(","):
        # Before TensorFlow sets its devices up: two logical devices on the CPU.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    print(f"device: {tf.config.list_physical_devices('GPU') or 'CPU'}; pairs: {args.pairs}")
    for kind in args.models.split(","):
        bench(kind, args.pairs)


if __name__ == "__main__":
    main()
