"""Benchmark: the user's fit() under the watch against a plain fit(), same model
and data, paired in one process.

Each pair runs one epoch of Keras's plain fit and one epoch of the watched fit
(engine/watch.py at the default cadence, its events folded by the Report and
written as CSV and JSON Lines, the checks on the training running), in
alternating order; the figure is the median of the per-pair time ratios
(watched / plain) after a warm-up pair (the watched step's tracing). Peak
memory is compared in two child processes (plain, watched) training the same
epochs: ratio of their peak resident sizes.

    python scripts/bench_watch.py [--pairs 15] [--no-memory] [--models MLP CNN 50-layer]

Prints one line per model, then `bench_watch: worst_ratio=R worst_memory=M`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from gradscope.checks.training import TrainingChecks  # noqa: E402
from gradscope.engine.watch import DEFAULT_EVERY, Watch, WatchCallback  # noqa: E402
from gradscope.events import EventBus  # noqa: E402
from gradscope.sinks.layer_csv import LayerCsvSink  # noqa: E402
from gradscope.sinks.record import RecordSink  # noqa: E402

L = keras.layers
BATCH = 32
STEPS_PER_EPOCH = 300


def build(name: str) -> tuple[keras.Model, tuple[int, ...]]:
    keras.utils.set_random_seed(0)
    if name == "MLP":
        model = keras.Sequential([keras.Input((784,)), L.Dense(256, activation="relu"),
                                  L.Dense(256, activation="relu"), L.Dense(10, activation="softmax")])
        shape: tuple[int, ...] = (784,)
    elif name == "CNN":
        model = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                                  L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(),
                                  L.Flatten(), L.Dense(10, activation="softmax")])
        shape = (28, 28, 1)
    else:
        model = keras.Sequential([keras.Input((128,))] + [L.Dense(128, activation="relu") for _ in range(50)]
                                 + [L.Dense(10, activation="softmax")])
        shape = (128,)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, shape


MODELS = ("MLP", "CNN", "50-layer")


def data(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n = BATCH * STEPS_PER_EPOCH
    return rng.normal(size=(n, *shape)).astype("float32"), rng.integers(0, 10, size=n)


class Watched:
    """The watch as gradscope run sets it up, writing its outputs to a scratch folder."""

    def __init__(self, model: keras.Model, folder: str) -> None:
        self.bus = EventBus([LayerCsvSink(os.path.join(folder, "layers.csv")),
                             RecordSink(os.path.join(folder, "run.jsonl"))])
        checks = TrainingChecks(epochs=1, batches=None)
        self.watch = Watch(model, self.bus.emit, None, checks=checks)

    def fit(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
        callback: WatchCallback = self.watch.begin_fit(1)
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[callback])


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def pairs(name: str, count: int) -> tuple[float, float, float]:
    model, shape = build(name)
    x, y = data(shape)
    with tempfile.TemporaryDirectory() as folder:
        watched = Watched(model, folder)
        model.fit(x[:BATCH * 4], y[:BATCH * 4], batch_size=BATCH, epochs=1, verbose=0)  # Keras's own trace
        keras_function = model.train_function
        watched.fit(model, x[:BATCH * 4], y[:BATCH * 4])  # the watched step's trace
        ours = model.train_function

        def plain() -> None:
            model.train_function = keras_function
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)

        def watch() -> None:
            model.train_function = ours
            watched.fit(model, x, y)

        ratios, plain_times = [], []
        for i in range(count):
            if i % 2:
                t_watch, t_plain = timed(watch), timed(plain)
            else:
                t_plain, t_watch = timed(plain), timed(watch)
            ratios.append(t_watch / t_plain)
            plain_times.append(t_plain)
        watched.bus.close()
    return statistics.median(ratios), statistics.median(plain_times), max(ratios)


def child(name: str, watched: bool) -> None:
    """Train 3 epochs (plain or watched) and print the peak resident size in KiB."""
    model, shape = build(name)
    x, y = data(shape)
    with tempfile.TemporaryDirectory() as folder:
        if watched:
            w = Watched(model, folder)
            for _ in range(3):
                w.fit(model, x, y)
            w.bus.close()
        else:
            for _ in range(3):
                model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_memory(name: str) -> float:
    peaks = []
    for watched in (False, True):
        out = subprocess.run([sys.executable, __file__, "--child", name, *(["--watched"] if watched else [])],
                             capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
        peaks.append(int(out.stdout.split()[-1]))
    return peaks[1] / peaks[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--child", choices=MODELS)
    parser.add_argument("--watched", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.watched)
        return
    worst, worst_memory = 0.0, 0.0
    for name in args.models:
        ratio, plain_seconds, highest = pairs(name, args.pairs)
        memory = float("nan") if args.no_memory else peak_memory(name)
        worst = max(worst, ratio)
        worst_memory = max(worst_memory, memory) if not args.no_memory else worst_memory
        print(f"{name:9s} batch={BATCH} steps/epoch={STEPS_PER_EPOCH} every={DEFAULT_EVERY}: "
              f"plain epoch {plain_seconds * 1000:.0f} ms, median ratio {ratio:.3f} "
              f"(max {highest:.3f}, {args.pairs} pairs), peak memory ratio {memory:.3f}", flush=True)
    print(f"bench_watch: worst_ratio={worst:.3f} worst_memory={worst_memory:.3f}")


if __name__ == "__main__":
    main()
