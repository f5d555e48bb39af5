"""How fast the UI answers a key while a big model's statistics stream in.

A producer thread feeds a synthetic model (1000 layers by default) through a
QueueSource at a steady step rate; the app runs under `app.run_test()` (headless,
same code path as a terminal). Each probe presses a key (`s`, then `down`, ...)
and times it until the layer table is first repainted showing the key's effect
(the new sort or cursor), the frame drawn to its end.

    python scripts/bench_ui.py [--layers 1000] [--rate 100] [--presses 100]
                               [--watched] [--preload 100000]

Each step is two events (StepStats and a 1000-row LayerStats), so the default
100 steps/s is 200 events/s. Prints median / p90 / p99 / max key latency in ms
(target: p99 <= 50 ms), how long one fold of events holds the event loop, and how many stale
samples the bounded queue skipped.

`--watched` sends the stream as the watch does (issue 11): training steps at
global steps with their epoch, TrainProgress every 10 steps and an EpochEnded
every 1000 (the status line's rate and ETA, the loss chart over global steps);
without it, the stream of the first versions (one train StepStats per step, no
progress), so figures compare with older runs of this script. `--preload N`
folds N steps of an earlier training's losses (StepStats, TrainProgress,
EpochEnded; no layer rows) into the report first: the loss chart then spans a
long training (its cost must not grow with it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.events import Key  # noqa: E402
from textual.strip import Strip  # noqa: E402

from gradscope.events import (  # noqa: E402
    EpochEnded,
    Event,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepStats,
    TrainProgress,
    VerdictIssued,
)
from gradscope.ui import QueueSource  # noqa: E402
from gradscope.ui.app import GradscopeApp  # noqa: E402
from gradscope.ui.widgets.layer_table import LayerTable  # noqa: E402
from gradscope.verdicts import Verdict  # noqa: E402

KEYS = ("s", "down")


def synthetic_model(layers: int) -> ModelDescribed:
    infos = tuple(
        LayerInfo(f"block_{i // 4}_{('conv', 'bn', 'relu', 'dense')[i % 4]}_{i}",
                  ("Conv2D", "BatchNormalization", "ReLU", "Dense")[i % 4],
                  1000 + i, True, activation="relu" if i % 4 == 2 else None)
        for i in range(layers)
    )
    return ModelDescribed("synthetic", "Functional", sum(i.param_count for i in infos),
                          sum(i.param_count for i in infos), "GPU:0", "clone", infos)


def row_pool(model: ModelDescribed, size: int, rng: random.Random) -> list[tuple[LayerRow, ...]]:
    """Pre-built rows, so the producer costs what a socket reader would: almost nothing."""
    return [
        tuple(
            LayerRow(info.name, info.layer_type, info.param_count, True,
                     grad_norm=10 ** rng.uniform(-6, 1), weight_norm=rng.uniform(1, 20),
                     update_ratio=10 ** rng.uniform(-7, -1), act_mean=rng.gauss(0, 1),
                     act_std=rng.uniform(0, 2), act_dead_frac=rng.random(),
                     act_saturated_frac=None)
            for info in model.layers
        )
        for _ in range(size)
    ]


BATCHES = 1000  # steps per epoch of --watched and --preload


def loss_events(step: int, watched: bool, seconds: float = 0.0) -> list[Event]:
    """A training step's loss as the watch sends it (with its progress and its
    epoch's end), or as the first versions did (a train StepStats alone)."""
    loss = 2.3 / (1 + step * 0.01)
    if not watched:
        return [StepStats("train", step, loss=loss, seconds=seconds or None)]
    epoch = (step - 1) // BATCHES + 1
    events: list[Event] = [StepStats("train", step, loss=loss, extra={"epoch": float(epoch)})]
    if step % 10 == 0:
        events.append(TrainProgress(step, epoch, 10_000, (step - 1) % BATCHES + 1, BATCHES,
                                    step * (seconds or 0.01)))
    if step % BATCHES == 0:
        events.append(EpochEnded(epoch, step, {"loss": loss, "val_loss": 1.2 * loss}))
    return events


def produce(source: QueueSource, pool: list[tuple[LayerRow, ...]], rate: float,
            stop: threading.Event, counter: list[int], watched: bool = False,
            first: int = 0) -> None:
    step = first
    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.perf_counter()
    while not stop.is_set():
        step += 1
        source.put_many(loss_events(step, watched, interval))
        source.put(LayerStats("train", step, pool[step % len(pool)]))
        if step % 500 == 0:
            source.put(VerdictIssued(Verdict("dead-relu", "warning", pool[0][2].layer,
                                             f"step {step}: dead units", "fix it")))
        counter[0] = step
        if interval:
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                stop.wait(delay)  # not time.sleep: a slow rate (--rate 0.001) still stops at once
        else:
            time.sleep(0)  # let the UI thread have the GIL now and then


async def bench(args: argparse.Namespace) -> None:
    rng = random.Random(0)
    model = synthetic_model(args.layers)
    pool = row_pool(model, 8, rng)
    source = QueueSource()
    for event in (RunStarted("synthetic.py", ("synthetic.py",), "bench", 0.0), model,
                  PhaseChanged("train")):
        source.put(event)

    app = GradscopeApp(source)
    if args.preload:
        # An earlier stretch of training, folded before the screen comes up.
        app.state.apply_all(event for step in range(1, args.preload + 1)
                            for event in loss_events(step, True))
    # How long each fold of events into the report holds the event loop (a large
    # drain is folded in slices, with keys handled between them).
    ticks: list[float] = []
    fold = app.state.apply_all

    def timed_fold(events):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        changed = fold(events)
        ticks.append(time.perf_counter() - start)
        return changed

    app.state.apply_all = timed_fold  # type: ignore[method-assign]

    stop = threading.Event()
    produced = [0]
    producer = threading.Thread(target=produce, args=(source, pool, args.rate, stop, produced,
                                                      args.watched or bool(args.preload),
                                                      args.preload),
                                daemon=True)
    latencies: list[float] = []
    async with app.run_test(size=(args.width, args.height)) as pilot:
        await pilot.pause()
        producer.start()
        await asyncio.sleep(1.0)  # let the stream reach its steady state
        table = app.screen.query_one(LayerTable)
        # What each repaint of the table showed: (paints, sort, cursor), recorded as
        # its header line is drawn. The compositor's update runs to its end before
        # the waiting loop below wakes up, so the time taken includes the whole frame.
        shown: list[tuple[int, str, int]] = []
        painted = asyncio.Event()
        render_line = table.render_line

        def recording_render_line(y: int) -> Strip:
            strip = render_line(y)
            if y == 0:
                shown.append((table.paints, table.sort, table.cursor))
                painted.set()
            return strip

        table.render_line = recording_render_line  # type: ignore[method-assign]
        for index in range(args.presses):
            key = KEYS[index % len(KEYS)]
            before = (table.sort, table.cursor)
            seen = len(shown)
            painted.clear()
            start = time.perf_counter()
            # Sent the way a terminal's key reaches the app (pilot.press would also
            # wait for the whole app to go idle, which a live stream never does).
            app._driver.send_message(Key(key, key))  # type: ignore[union-attr]
            # Answered = the first repaint of the table that shows the key's effect.
            # (Polling for the effect, then for a later repaint, missed a repaint that
            # came in the same loop pass as the key and waited for the next one: up
            # to a whole refresh tick more.) Before the key is handled the table can
            # only show `before`: nothing else moves the sort or the cursor.
            while not any(entry[1:] != before for entry in shown[seen:]):
                seen = len(shown)
                painted.clear()
                try:
                    await asyncio.wait_for(painted.wait(), 5 - (time.perf_counter() - start))
                except (asyncio.TimeoutError, ValueError):
                    break
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(rng.uniform(0.05, 0.15))  # a human's pace, off the tick grid
        stop.set()
        producer.join()
        source.put(RunFinished("ok", 0))
        await pilot.pause(0.2)
        shown_step = app.state.step

    ms = [x * 1000 for x in latencies]
    tick_ms = [x * 1000 for x in ticks if x > 0.0005] or [0.0]
    stream = "watched" if args.watched or args.preload else "per-step StepStats"
    print(f"layers: {args.layers}, producer: {args.rate or 'max'} steps/s "
          f"({2 * args.rate:g} events/s, {stream}"
          f"{f', after {args.preload} preloaded steps' if args.preload else ''}), "
          f"terminal {args.width}x{args.height}")
    print(f"key latency over {len(ms)} presses ({'/'.join(KEYS)}): "
          f"median {statistics.median(ms):.1f} ms, p90 {_quantile(ms, 0.9):.1f} ms, "
          f"p99 {_quantile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms")
    print(f"event loop held by one fold of events: median {statistics.median(tick_ms):.1f} ms, "
          f"max {max(tick_ms):.1f} ms over {len(tick_ms)} folds")
    print(f"steps produced {produced[0]}, last shown {shown_step}, "
          f"stale samples skipped by the queue {source.dropped}")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="training steps per second the producer sends (0 = as fast as it can)")
    parser.add_argument("--presses", type=int, default=100)
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--height", type=int, default=40)
    parser.add_argument("--watched", action="store_true",
                        help="send the training as the watch does (progress, epochs)")
    parser.add_argument("--preload", type=int, default=0, metavar="STEPS",
                        help="fold this many steps of earlier training losses first")
    args = parser.parse_args(argv)
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
