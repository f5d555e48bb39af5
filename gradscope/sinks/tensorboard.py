"""TensorBoard event files (`--tensorboard DIR`): the probe's and the training's
per-layer scalars and histograms, for `tensorboard --logdir DIR`.

Each gradscope run gets its own folder, `DIR/<script-stem>-<YYYYmmdd-HHMMSS>`
(`-2`, `-3`... when that name is taken), holding one TensorBoard run per
source, as Keras's own TensorBoard callback has `train/` and `validation/`:

    probe/        the probe's steps (1..N, on gradscope's copy of the model)
    train/        the user's own training, at its global step
    validation/   the epochs' `val_*` figures, at the same global steps

`probe/` and `train/` use the same tags (`<layer>/grad_norm`, `loss`...), so
TensorBoard draws the probe's few steps over the first steps of the training.
docs/cli.md lists every tag.

The records are TensorBoard's own format (Event protocol buffers in a TFRecord
file, the scalars and histograms plugins' v2 encoding) built here rather than
by `tf.summary` ops, because:
- `tf.summary.scalar` and `tf.summary.histogram` live in the `tensorboard`
  package, which TensorFlow no longer installs;
- `tf.summary.histogram` bins raw values itself; gradscope's histograms are
  already binned (engine/histograms.py) and are written bin for bin;
- a `tf.summary` op per value would run in the middle of the user's training
  (1000 layers: 7000 ops per watched step); a record built in Python runs none.

TensorFlow is imported at the first record, never when the sink is built: the
sinks are built before the script runs, and `gradscope --help` must never
import it. By the first record (a probe step) the engine has imported it.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import threading
import time
from typing import Any

from gradscope.errors import UsageError
from gradscope.events import (
    EpochEnded,
    Event,
    Histogram,
    LayerHistograms,
    LayerStats,
    PhaseChanged,
    RunFinished,
    StepStats,
)

METRICS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std",
           "act_saturated_frac", "act_dead_frac")
HISTOGRAM_KINDS = ("weights", "grads", "acts")
VALIDATION_RUN = "validation"

# Shown by TensorBoard on each chart (the "i" of a card): what the figure is.
DESCRIPTIONS = {
    "grad_norm": "L2 norm of the layer's gradient at this step.",
    "weight_norm": "L2 norm of the layer's trainable weights.",
    "update_ratio": "||weight update|| / ||weights|| of this step.",
    "act_mean": "Mean of the layer's output.",
    "act_std": "Standard deviation of the layer's output.",
    "act_saturated_frac": "Fraction of outputs in the activation's flat region.",
    "act_dead_frac": "Fraction of ReLU units that output 0 for every sample.",
    "weights": "The layer's largest trainable weight (its kernel), binned.",
    "grads": "That weight's gradient, binned.",
    "acts": "The layer's output on one batch, binned.",
    "loss": "The step's own loss (probe: a probe step; train: a watched step).",
}

_file_counter = itertools.count()


def check_logdir(path: str) -> None:
    """Raise UsageError when `path` cannot be (or be made into) a folder to write
    in, touching nothing: the same pre-flight as the output files get."""
    if path == "-":
        raise UsageError("--tensorboard needs a folder, not stdout ('-')")
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(f"cannot write '{path}': it is a file, not a folder")
    # The folder, or the nearest folder above it that exists (the rest is made).
    existing = target
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise UsageError(f"cannot write '{path}': '{existing}' is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write '{path}': permission denied")


def _claim(path: str) -> str:
    """Make the run's folder; a name already taken (two runs in one second) gets -2, -3..."""
    for n in itertools.count(1):
        candidate = path if n == 1 else f"{path}-{n}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


class _Writer:
    """One TensorBoard run: an event file, opened at its first record."""

    def __init__(self, tf: Any, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        # The name TensorBoard looks for, as tf.summary's file writer spells it.
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_counter)}.v2")
        self.path = os.path.join(folder, name)
        self._file = tf.io.TFRecordWriter(self.path)
        self.tags: set[str] = set()  # tags whose metadata is written (once per file)

    def write(self, record: bytes) -> None:
        self._file.write(record)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Writes scalars and histograms for TensorBoard under `logdir`; see the module doc."""

    def __init__(self, logdir: str, script: str, started: float | None = None) -> None:
        check_logdir(logdir)
        # Fixed now: the script may change directory.
        self.logdir = os.path.abspath(logdir)
        stem = os.path.splitext(os.path.basename(script))[0] or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started or time.time()))
        # The folders this run makes (DIR, and any missing above it), deepest first:
        # a run with nothing to show takes them away again.
        self._made: list[str] = []
        folder = self.logdir
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            self._made.append(folder)
            folder = os.path.dirname(folder)
        try:
            os.makedirs(self.logdir, exist_ok=True)
            self.run_dir = _claim(os.path.join(self.logdir, f"{stem}-{stamp}"))
        except OSError as exc:
            raise UsageError(f"cannot write '{logdir}': {exc.strerror or exc}") from exc
        self._writers: dict[str, _Writer] = {}
        self._closed = False
        self._tf: Any = None
        self._pb: Any = None
        # Events may come from the fit's thread and the main thread alike.
        self._lock = threading.Lock()

    # --- events ------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if isinstance(event, LayerStats):
            scalars = [
                (f"{row.layer}/{name}", name, float(value))
                for row in event.rows
                for name in METRICS
                if (value := getattr(row, name)) is not None
            ]
            self._write(event.phase, event.step, scalars)
        elif isinstance(event, StepStats):
            if event.loss is not None:
                self._write(event.phase, event.step, [("loss", "loss", float(event.loss))])
        elif isinstance(event, EpochEnded):
            self._epoch(event)
        elif isinstance(event, LayerHistograms):
            histograms = [
                (f"{item.layer}/{kind}", kind, histogram)
                for item in event.layers
                for kind in HISTOGRAM_KINDS
                if (histogram := getattr(item, kind)) is not None
            ]
            self._write(event.phase, event.step, [], histograms)
        elif isinstance(event, (PhaseChanged, RunFinished)):
            with self._lock:
                for writer in self._writers.values():
                    writer.flush()

    def _epoch(self, event: EpochEnded) -> None:
        """Keras's epoch logs as its TensorBoard callback names them (`epoch_loss`,
        `epoch_accuracy`...), `val_*` in the validation run under the same tags, so
        the two overlay; at the global step the epoch ended."""
        train: list[tuple[str, str, float]] = []
        validation: list[tuple[str, str, float]] = []
        for key, value in event.logs.items():
            if value is None:
                continue
            if key.startswith("val_"):
                validation.append((f"epoch_{key[4:]}", "", float(value)))
            else:
                train.append((f"epoch_{key}", "", float(value)))
        if event.learning_rate is not None and "learning_rate" not in event.logs:
            train.append(("epoch_learning_rate", "", float(event.learning_rate)))
        self._write("train", event.step, train)
        self._write(VALIDATION_RUN, event.step, validation)

    # --- records -----------------------------------------------------------------

    def _write(self, run: str, step: int,
               scalars: list[tuple[str, str, float]],
               histograms: list[tuple[str, str, Histogram]] | None = None) -> None:
        """One Event holding every value of one step (a step of 1000 layers is one
        record), flushed at once: a crash or Ctrl-C loses nothing written."""
        if not scalars and not histograms:
            return
        with self._lock:
            if self._closed:
                return
            writer = self._writer(run)
            pb = self._pb
            values = []
            for tag, kind, number in scalars:
                value = pb.Summary.Value(tag=tag, tensor=pb.TensorProto(
                    dtype=pb.DT_FLOAT, tensor_shape=pb.TensorShapeProto(), float_val=[number]))
                self._describe(writer, value, kind, "scalars", pb.DATA_CLASS_SCALAR)
                values.append(value)
            for tag, kind, histogram in histograms or ():
                rows = histogram_rows(histogram)
                if rows is None:
                    continue
                value = pb.Summary.Value(tag=tag, tensor=pb.TensorProto(
                    dtype=pb.DT_DOUBLE,
                    tensor_shape=pb.TensorShapeProto(dim=[
                        pb.TensorShapeProto.Dim(size=len(rows)), pb.TensorShapeProto.Dim(size=3)]),
                    double_val=[x for row in rows for x in row]))
                self._describe(writer, value, kind, "histograms", pb.DATA_CLASS_TENSOR)
                values.append(value)
            if not values:
                return
            record = pb.Event(wall_time=time.time(), step=int(step),
                              summary=pb.Summary(value=values))
            writer.write(record.SerializeToString())
            writer.flush()

    def _describe(self, writer: _Writer, value: Any, kind: str, plugin: str,
                  data_class: int) -> None:
        # TensorBoard reads a tag's plugin (scalar chart, histogram) from its
        # first record in a file: the metadata is written once, as tf.summary does.
        if value.tag in writer.tags:
            return
        writer.tags.add(value.tag)
        pb = self._pb
        value.metadata.CopyFrom(pb.SummaryMetadata(
            plugin_data=pb.SummaryMetadata.PluginData(plugin_name=plugin, content=b""),
            summary_description=DESCRIPTIONS.get(kind, ""),
            data_class=data_class,
        ))

    def _writer(self, run: str) -> _Writer:
        writer = self._writers.get(run)
        if writer is None:
            self._import()
            writer = _Writer(self._tf, os.path.join(self.run_dir, run))
            # Every event file starts with its format version.
            writer.write(self._pb.Event(wall_time=time.time(),
                                        file_version="brain.Event:2").SerializeToString())
            self._writers[run] = writer
        return writer

    def _import(self) -> None:
        if self._tf is not None:
            return
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
        from tensorflow.core.util import event_pb2

        class _Protos:
            Event = event_pb2.Event
            Summary = summary_pb2.Summary
            SummaryMetadata = summary_pb2.SummaryMetadata
            TensorProto = tensor_pb2.TensorProto
            TensorShapeProto = tensor_shape_pb2.TensorShapeProto
            DT_FLOAT = types_pb2.DT_FLOAT
            DT_DOUBLE = types_pb2.DT_DOUBLE
            DATA_CLASS_SCALAR = summary_pb2.DATA_CLASS_SCALAR
            DATA_CLASS_TENSOR = summary_pb2.DATA_CLASS_TENSOR

        self._tf, self._pb = tf, _Protos

    # --- end -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for writer in self._writers.values():
                writer.close()
            if not self._writers:
                # Nothing to show (the script never reached fit()): no empty run
                # folder in TensorBoard's list, and no folder that this run made.
                for folder in [self.run_dir, *self._made]:
                    try:
                        os.rmdir(folder)
                    except OSError:
                        break  # not empty (another run wrote there meanwhile): kept


def histogram_rows(histogram: Histogram) -> list[tuple[float, float, float]] | None:
    """The histogram as TensorBoard's [left edge, right edge, count] rows, bin for bin.

    gradscope's bins are even between the finite minimum and maximum. A constant
    tensor (lo == hi) is one zero-width bucket, as TensorBoard writes constant
    data; no finite value at all gives no bucket. NaN/Inf values are in no bin
    here either. None: nothing to write (an unreadable range).
    """
    lo, hi, counts = histogram.lo, histogram.hi, histogram.counts
    if not (math.isfinite(lo) and math.isfinite(hi)) or not counts:
        return None
    total = sum(counts)
    if total == 0:
        return []
    if hi <= lo:
        return [(lo, lo, float(total))]
    n = len(counts)
    edges = [lo + (hi - lo) * i / n for i in range(n)] + [hi]
    return [(edges[i], edges[i + 1], float(count)) for i, count in enumerate(counts)]
