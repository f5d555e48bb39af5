"""Peak memory per device: the probe on N replicas against Keras's own
distributed step and against the probe on one device with the whole batch.

On a machine with GPUs: 2 GPUs or more are used as they are; one GPU is split
into two logical GPUs. TensorFlow keeps no memory figures for CPU devices: there
the script runs the same steps on two logical CPUs and says the figures are not
measured (tests/test_mirrored.py checks instead that each replica's step
computes on its shard only).

    python scripts/replica_memory.py [--batch 1024] [--width 2048]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _devices() -> tuple[list[str], str]:
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) == 1:
        half = 4096  # MB per logical GPU: enough for the model below
        tf.config.set_logical_device_configuration(
            gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=half)] * 2)
    elif not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    kind = "GPU" if gpus else "CPU"
    return [d.name for d in tf.config.list_logical_devices(kind)][:max(2, len(gpus))], kind


def _peaks(devices: list[str], fn: object) -> list[float]:
    """MiB at peak on each device while `fn` runs (after a reset)."""
    for d in devices:
        tf.config.experimental.reset_memory_stats(d)
    fn()  # type: ignore[operator]
    return [tf.config.experimental.get_memory_info(d)["peak"] / 2**20 for d in devices]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    args = parser.parse_args()
    devices, kind = _devices()

    import keras

    from gradscope.engine.layers import describe, probe_layers
    from gradscope.engine.probe import ProbeStep
    from gradscope.engine.target import make_target, replica_target

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 512), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = keras.Sequential([keras.Input((512,))]
                                 + [keras.layers.Dense(args.width, "relu") for _ in range(4)]
                                 + [keras.layers.Dense(10, "softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(args.batch).repeat()
    model.fit(data, steps_per_epoch=1, epochs=1, shuffle=False, verbose=0)
    iterator = iter(strategy.experimental_distribute_dataset(data))
    train = model.train_function

    target = make_target(model, x)
    replica = replica_target(make_target(model, x), model, strategy, x, y, None)
    layers = probe_layers(replica.model)
    replicated = ProbeStep(replica.model, replica.optimizer, replica.loss_fn, layers, describe(layers),
                           strategy=strategy)
    one_layers = probe_layers(target.model)
    target.loss_fn(tf.constant(y[:2]), target.model(x[:2]), None)
    with tf.device(devices[0]):
        one = ProbeStep(target.model, target.optimizer, target.loss_fn, one_layers, describe(one_layers))
    xt, yt = tf.constant(x), tf.constant(y)
    for _ in range(2):  # traced and warm
        train(iterator)
        replicated.run(x, y, None)
        one.run(xt, yt, None)

    print(f"devices: {devices}; global batch {args.batch}; model 4 x Dense({args.width})")
    if kind == "CPU":
        print("TensorFlow keeps no memory figures for CPU devices: peaks not measured here")
        return
    rows = {
        "Keras's own distributed step": _peaks(devices, lambda: train(iterator)),
        "probe on the replicas": _peaks(devices, lambda: replicated.run(x, y, None)),
        "probe on one device, whole batch": _peaks(devices, lambda: one.run(xt, yt, None)),
    }
    for name, peaks in rows.items():
        print(f"{name:34s} " + "  ".join(f"{d.rsplit(':', 2)[-2]}:{d.rsplit(':', 1)[-1]} "
                                         f"{p:8.1f} MiB" for d, p in zip(devices, peaks, strict=True)))


if __name__ == "__main__":
    main()
