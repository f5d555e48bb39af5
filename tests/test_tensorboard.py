"""`--tensorboard DIR`: the probe's and the training's figures as TensorBoard
event files, read back as TensorBoard reads them (Event records, plugin metadata)."""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

from gradscope.commands.live import child_args
from gradscope.errors import UsageError
from gradscope.events import (
    EpochEnded,
    Histogram,
    LayerHistogram,
    LayerHistograms,
    LayerRow,
    LayerStats,
    PhaseChanged,
    RunFinished,
    StepStats,
    from_json,
)
from gradscope.options import RunOptions
from gradscope.sinks import TensorBoardSink, build_sinks, output_files
from gradscope.sinks.tensorboard import histogram_rows

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@dataclass
class Run:
    """One TensorBoard run (a folder of event files) as TensorBoard sees it."""

    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    histograms: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)  # tag -> plugin of its first record
    descriptions: dict[str, str] = field(default_factory=dict)
    file_versions: list[str] = field(default_factory=list)


def read_run(folder: Path) -> Run:
    run = Run()
    for path in sorted(glob.glob(str(folder / "events.out.tfevents.*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            if event.file_version:
                run.file_versions.append(event.file_version)
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    run.plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
                    run.descriptions.setdefault(value.tag, value.metadata.summary_description)
                array = tf.make_ndarray(value.tensor)
                if run.plugins[value.tag] == "scalars":
                    run.scalars.setdefault(value.tag, []).append((event.step, float(array)))
                else:
                    run.histograms.setdefault(value.tag, []).append((event.step, array))
    return run


def only_run_folder(logdir: Path) -> Path:
    (folder,) = logdir.iterdir()
    return folder


def rows(grad: float | None = 0.5, act_mean: float | None = 0.1) -> tuple[LayerRow, ...]:
    return (
        LayerRow("dense", "Dense", 72, True, grad_norm=grad, weight_norm=2.0, update_ratio=1e-3,
                 act_mean=act_mean, act_std=0.9, act_saturated_frac=None, act_dead_frac=0.25),
        LayerRow("dropout", "Dropout", 0, False),  # nothing applies: no tag at all
    )


# --- the sink, fed synthetic events --------------------------------------------------


def test_probe_and_training_scalars_share_tags_in_two_runs(tmp_path: Path) -> None:
    # Given a sink fed two probe steps, two watched training steps and an epoch end
    sink = TensorBoardSink(str(tmp_path / "logs"), "scripts/train.py", started=1_700_000_000)
    for event in [
        StepStats("probe", 1, 0.70), LayerStats("probe", 1, rows()),
        StepStats("probe", 2, 0.69), LayerStats("probe", 2, rows(grad=0.4)),
        PhaseChanged("train"),
        StepStats("train", 1, 0.71, extra={"epoch": 1.0}), LayerStats("train", 1, rows(grad=0.45)),
        StepStats("train", 33, float("nan"), extra={"epoch": 2.0}),
        LayerStats("train", 34, rows(grad=float("nan"), act_mean=float("nan"))),
        EpochEnded(1, 32, {"loss": 0.6, "accuracy": 0.75, "val_loss": 0.8, "val_accuracy": 0.5,
                           "auc": None}, learning_rate=0.01),
        RunFinished("ok", 0),
    ]:
        sink.handle(event)
    sink.close()

    # Then the run's folder is named after the script and the start time
    folder = only_run_folder(tmp_path / "logs")
    assert folder.name.startswith("train-2023") and len(folder.name) == len("train-YYYYmmdd-HHMMSS")
    assert sorted(p.name for p in folder.iterdir()) == ["probe", "train", "validation"]
    probe, train, validation = (read_run(folder / name) for name in ("probe", "train", "validation"))
    assert probe.file_versions == ["brain.Event:2"]
    # And probe and train have the same per-layer tags, at their own steps; None is no point
    layer_tags = {"dense/grad_norm", "dense/weight_norm", "dense/update_ratio", "dense/act_mean",
                  "dense/act_std", "dense/act_dead_frac"}
    assert set(probe.scalars) == layer_tags | {"loss"}
    assert layer_tags <= set(train.scalars)
    assert probe.scalars["dense/grad_norm"] == [(1, 0.5), (2, pytest.approx(0.4))]
    assert [step for step, _ in probe.scalars["loss"]] == [1, 2]
    # And the training's figures are at the global step, a non-finite one written as NaN
    assert [step for step, _ in train.scalars["loss"]] == [1, 33]
    assert math.isnan(train.scalars["loss"][1][1])
    assert train.scalars["dense/grad_norm"][0] == (1, pytest.approx(0.45))
    assert train.scalars["dense/grad_norm"][1][0] == 34
    assert math.isnan(train.scalars["dense/grad_norm"][1][1])
    # And the epoch's logs are named as Keras's TensorBoard callback names them,
    # val_* in the validation run under the same tags, at the epoch's global step
    assert train.scalars["epoch_loss"] == [(32, pytest.approx(0.6))]
    assert train.scalars["epoch_accuracy"] == [(32, 0.75)]
    assert train.scalars["epoch_learning_rate"] == [(32, pytest.approx(0.01))]
    assert "epoch_auc" not in train.scalars  # a log that is not a number
    assert validation.scalars == {"epoch_loss": [(32, pytest.approx(0.8))],
                                  "epoch_accuracy": [(32, 0.5)]}
    # And each chart says what it shows
    assert all(plugin == "scalars" for plugin in train.plugins.values())
    assert probe.descriptions["dense/grad_norm"].startswith("L2 norm of the layer's gradient")


def test_histograms_keep_gradscopes_bins_exactly(tmp_path: Path) -> None:
    # Given histograms of weights (4 bins), a constant gradient, no finite activation at all
    weights = Histogram(-1.0, 1.0, (1, 2, 3, 4), total=10)
    sink = TensorBoardSink(str(tmp_path), "train.py")
    sink.handle(LayerHistograms("probe", 0, (
        LayerHistogram("dense", weights=weights, grads=Histogram(0.0, 0.0, (7, 0, 0)),
                       acts=Histogram(0.0, 0.0, (0, 0, 0), nonfinite=5)),
        LayerHistogram("flatten"),  # no weights, no tapped output: no tag
    )))
    sink.handle(LayerHistograms("train", 40, (LayerHistogram("dense", weights=weights),)))
    sink.close()

    folder = only_run_folder(tmp_path)
    probe, train = read_run(folder / "probe"), read_run(folder / "train")
    # Then each bin is one [left, right, count] bucket, the edges evenly between lo and hi
    assert probe.plugins == {"dense/weights": "histograms", "dense/grads": "histograms",
                             "dense/acts": "histograms"}
    ((step, buckets),) = probe.histograms["dense/weights"]
    assert step == 0
    assert buckets.tolist() == [[-1.0, -0.5, 1.0], [-0.5, 0.0, 2.0], [0.0, 0.5, 3.0],
                                [0.5, 1.0, 4.0]]
    # And a constant tensor is one zero-width bucket, no finite value no bucket
    assert probe.histograms["dense/grads"][0][1].tolist() == [[0.0, 0.0, 7.0]]
    assert probe.histograms["dense/acts"][0][1].shape == (0, 3)
    # And the training's histograms are at their global step
    assert [s for s, _ in train.histograms["dense/weights"]] == [40]


def test_histogram_rows_span_lo_to_hi() -> None:
    rows_ = histogram_rows(Histogram(0.1, 0.7, (1,) * 24))
    assert rows_ is not None and len(rows_) == 24
    assert rows_[0][0] == 0.1 and rows_[-1][1] == 0.7
    assert all(a[1] == b[0] for a, b in zip(rows_, rows_[1:], strict=False))  # contiguous
    assert histogram_rows(Histogram(float("nan"), 1.0, (1, 1))) is None


def test_every_event_is_on_disk_before_the_sink_is_closed(tmp_path: Path) -> None:
    # Given a sink that has written a probe step (a run that then dies outright)
    sink = TensorBoardSink(str(tmp_path), "train.py")
    sink.handle(StepStats("probe", 1, 0.5))
    sink.handle(LayerStats("probe", 1, rows()))
    # Then everything is readable already, without close
    probe = read_run(only_run_folder(tmp_path) / "probe")
    assert probe.scalars["loss"] == [(1, 0.5)]
    assert probe.scalars["dense/grad_norm"] == [(1, 0.5)]
    sink.close()


def test_a_run_that_never_trained_leaves_no_folder(tmp_path: Path) -> None:
    # Given a DIR that does not exist yet, and a run that ends before fit()
    logdir = tmp_path / "logs" / "mnist"
    sink = TensorBoardSink(str(logdir), "train.py")
    sink.handle(PhaseChanged("script"))
    sink.handle(RunFinished("script-error", 3))
    sink.close()
    # Then neither its run folder nor the folders it made are left behind
    assert list(tmp_path.iterdir()) == []


def test_two_runs_in_one_second_get_two_folders(tmp_path: Path) -> None:
    # Given two runs of one script that start in the same second
    first = TensorBoardSink(str(tmp_path), "train.py", started=1_700_000_000)
    second = TensorBoardSink(str(tmp_path), "train.py", started=1_700_000_000)
    for sink in (first, second):
        sink.handle(StepStats("probe", 1, 0.5))
        sink.close()
    # Then each has its own folder, the second with a -2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[1] == names[0] + "-2"


def test_nothing_imports_tensorflow_until_there_is_a_record(tmp_path: Path) -> None:
    # Given a fresh interpreter that builds the sinks and sends pre-fit events
    probe = textwrap.dedent(f"""\
        import sys
        from gradscope.options import RunOptions
        from gradscope.sinks import build_sinks
        from gradscope.events import PhaseChanged, RunFinished
        sinks = build_sinks(RunOptions(script="t.py", headless=False, tensorboard={str(tmp_path)!r}))
        for sink in sinks:
            sink.handle(PhaseChanged("script"))
            sink.handle(RunFinished("no-fit", 4))
            sink.close()
        print("tensorflow" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, env=ENV)
    # Then TensorFlow was never imported
    assert done.stdout.strip() == "False"


# --- pre-flight ------------------------------------------------------------------------


def test_a_dir_that_is_a_file_is_a_usage_error_before_anything_runs(tmp_path: Path) -> None:
    # Given --tensorboard naming a file, and a script
    afile = tmp_path / "logs"
    afile.write_text("not a folder\n")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    # When gradscope runs (a fresh interpreter: nothing imported yet)
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--csv", str(tmp_path / "l.csv"),
         "--tensorboard", str(afile), str(script)],
        capture_output=True, text=True, env=ENV,
    )
    # Then it is one line and exit 2, the script never ran, no other output was made
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"gradscope: cannot write '{afile}': it is a file, not a folder"]
    assert "ran" not in done.stdout
    assert not (tmp_path / "l.csv").exists()


def test_a_dir_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    options = RunOptions(script="t.py", headless=False, tensorboard=str(tmp_path / "f" / "logs"))
    with pytest.raises(UsageError, match=r"is a file, not a folder"):
        build_sinks(options)


def test_a_dir_that_exists_needs_no_force_and_is_listed_with_the_outputs(tmp_path: Path) -> None:
    # Given a DIR with an earlier run in it
    (tmp_path / "train-20230101-000000").mkdir()
    options = RunOptions(script="train.py", headless=False, tensorboard=str(tmp_path))
    # Then it is accepted as it is, and listed (the live UI's exit text names it)
    assert output_files(options) == {"--tensorboard": str(tmp_path)}


def test_a_file_output_on_the_dir_is_a_usage_error(tmp_path: Path) -> None:
    same = str(tmp_path / "out")
    options = RunOptions(script="t.py", headless=False, json=same, tensorboard=same)
    with pytest.raises(UsageError, match="--json and --tensorboard both write"):
        output_files(options)


def test_stdout_is_not_a_dir() -> None:
    with pytest.raises(UsageError, match="--tensorboard needs a folder"):
        output_files(RunOptions(script="t.py", headless=False, tensorboard="-"))


def test_live_modes_child_gets_the_option() -> None:
    # The child runs the engine, so it writes the event files
    args = child_args(["--tensorboard", "logs", "--record", "r.jsonl", "train.py", "--lr", "1"])
    assert args == ["--tensorboard", "logs", "--", "train.py", "--lr", "1"]


# --- a real run --------------------------------------------------------------------------

SCRIPT = """
import numpy as np
import keras
rng = np.random.default_rng(0)
x = rng.normal(size=(192, 8)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("tb")
    (out / "tiny.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--tensorboard", "logs",
         "--record", "run.jsonl", "--csv", "layers.csv", "--seed", "0", "--budget", "0",
         "--watch-every", "2", "tiny.py"],
        cwd=out, capture_output=True, text=True, timeout=300, env=ENV,
    )
    return done, out


def test_a_real_run_writes_the_probe_and_the_training(real_run) -> None:
    done, out = real_run
    assert done.returncode == 0, done.stderr
    events = [from_json(line) for line in (out / "run.jsonl").read_text().splitlines()]
    folder = only_run_folder(out / "logs")
    assert folder.name.startswith("tiny-")
    probe, train, validation = (read_run(folder / name) for name in ("probe", "train", "validation"))

    # Then the probe's steps 1..5 have the loss and every layer's figures
    assert [s for s, _ in probe.scalars["loss"]] == [1, 2, 3, 4, 5]
    for layer in ("dense", "dense_1"):
        for metric in ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std"):
            assert [s for s, _ in probe.scalars[f"{layer}/{metric}"]] == [1, 2, 3, 4, 5]
    assert [s for s, _ in probe.scalars["dense/act_dead_frac"]] == [1, 2, 3, 4, 5]  # a ReLU
    assert "dense/act_saturated_frac" not in probe.scalars  # does not apply to a ReLU
    # And its histograms are the record's, bin for bin
    recorded = [e for e in events if isinstance(e, LayerHistograms) and e.phase == "probe"]
    assert [s for s, _ in probe.histograms["dense/weights"]] == [e.step for e in recorded]
    for event, (_, buckets) in zip(recorded, probe.histograms["dense/weights"], strict=True):
        (dense,) = [item for item in event.layers if item.layer == "dense"]
        assert dense.weights is not None
        assert buckets[:, 2].tolist() == list(dense.weights.counts)
        assert buckets[0, 0] == pytest.approx(dense.weights.lo)
        assert buckets[-1, 1] == pytest.approx(dense.weights.hi)

    # And the training's watched steps are there at their global steps, as in the record
    watched = [e.step for e in events if isinstance(e, LayerStats) and e.phase == "train"]
    assert watched and [s for s, _ in train.scalars["dense/grad_norm"]] == watched
    losses = {e.step: e.loss for e in events if isinstance(e, StepStats) and e.phase == "train"}
    assert dict(train.scalars["loss"]) == pytest.approx(losses)
    # And each epoch's logs at the step it ended, validation overlaid under the same tag
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert train.scalars["epoch_loss"] == [
        (e.step, pytest.approx(e.logs["loss"], rel=1e-6)) for e in epochs]
    assert validation.scalars["epoch_loss"] == [
        (e.step, pytest.approx(e.logs["val_loss"], rel=1e-6)) for e in epochs]
    assert {"epoch_accuracy", "epoch_learning_rate"} <= set(train.scalars)
    train_histograms = [e.step for e in events if isinstance(e, LayerHistograms)
                        and e.phase == "train"]
    assert [s for s, _ in train.histograms.get("dense/weights", [])] == train_histograms


CRASHING = SCRIPT.replace(
    "verbose=0)",
    "verbose=0, callbacks=[keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: "
    "e == 1 and os.kill(os.getpid(), signal.SIGKILL))])",
).replace("import numpy as np", "import os, signal\nimport numpy as np")


def test_a_run_killed_outright_keeps_what_was_written(tmp_path: Path) -> None:
    # Given a script killed (SIGKILL: nothing of gradscope's runs after it) as epoch 2 begins
    (tmp_path / "tiny.py").write_text(CRASHING)
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--tensorboard", "logs",
         "--seed", "0", "--budget", "0", "--watch-every", "2", "tiny.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV,
    )
    assert done.returncode == -9, done.stderr
    # Then the probe and the first epoch are in the event files all the same
    folder = only_run_folder(tmp_path / "logs")
    assert [s for s, _ in read_run(folder / "probe").scalars["loss"]] == [1, 2, 3, 4, 5]
    train = read_run(folder / "train")
    assert [s for s, _ in train.scalars["epoch_loss"]] == [5]  # 144 rows, batches of 32
    assert json.dumps(train.scalars["dense/grad_norm"])  # watched steps of epoch 1
