"""Headless sinks, fed scripted events (no TensorFlow): what a user finds in each output."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from gradscope.errors import UsageError
from gradscope.events import (
    Event,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    Note,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepStats,
    VerdictIssued,
    from_json,
)
from gradscope.options import RunOptions
from gradscope.sinks import (
    JsonReportSink,
    LayerCsvSink,
    RecordSink,
    SummarySink,
    VerdictCsvSink,
    build_sinks,
)
from gradscope.verdicts import Verdict

HEADER = (
    "phase,step,layer,layer_type,param_count,trainable,grad_norm,weight_norm,"
    "update_ratio,act_mean,act_std,act_saturated_frac,act_dead_frac"
)

# --- scripted events --------------------------------------------------------

LOSS_FLAT = Verdict(
    "loss-flat",
    "error",
    "loss",
    "The loss stayed at 0.6931 over 5 probe steps.",
    "See the causes above.",
    kind="symptom",
)
SOFTMAX = Verdict(
    "single-unit-softmax",
    "error",
    "dense_1",
    "Softmax over 1 output unit always outputs 1.0.",
    'Use Dense(1, activation="sigmoid") with binary cross-entropy:\n'
    'model.add(Dense(1, activation="sigmoid"))',
)
UNNORMALIZED = Verdict(
    "unnormalized-input",
    "warning",
    "inputs",
    "Inputs range over [0, 255].",
    "x = x / 255.0",
)
FROZEN = Verdict("frozen-layers", "info", "model", "1 layer is frozen: embed.", "Nothing to do.")


def run_start() -> RunStarted:
    return RunStarted("train.py", ("train.py", "--epochs", "3"), "0.1.0", 1700000000.0)


def model() -> ModelDescribed:
    return ModelDescribed(
        model_name="sequential",
        model_class="Sequential",
        param_count=12345,
        trainable_param_count=12345,
        device="CPU:0",
        probe_mode="clone",
        layers=(
            LayerInfo("dense", "Dense", 12336, True, "relu", "(None, 16)"),
            LayerInfo("dense_1", "Dense", 9, True, "softmax", "(None, 1)"),
        ),
    )


def layer_stats(step: int, grad: float | None = 0.5, phase: str = "probe") -> LayerStats:
    return LayerStats(
        phase,
        step,
        (
            LayerRow("dense", "Dense", 12336, True, grad, 3.25, 1e-3, 0.1, 0.9, 0.0, 0.25),
            LayerRow("dropout", "Dropout", 0, False),
        ),
    )


def feed(sink: object, events: list[Event]) -> None:
    for event in events:
        sink.handle(event)  # type: ignore[attr-defined]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- per-layer CSV ----------------------------------------------------------


def test_layer_csv_has_the_contract_header_as_soon_as_it_opens(tmp_path: Path) -> None:
    # Given a CSV sink on a file
    path = tmp_path / "layers.csv"
    # When it is created, before any event
    sink = LayerCsvSink(str(path))
    # Then the file already holds exactly the contract header
    assert path.read_text() == HEADER + "\n"
    sink.close()


def test_layer_csv_writes_one_row_per_layer_with_empty_cells_and_nan(tmp_path: Path) -> None:
    # Given a CSV sink
    path = tmp_path / "layers.csv"
    sink = LayerCsvSink(str(path))
    # When two steps of layer stats arrive, one with a NaN gradient
    feed(sink, [run_start(), layer_stats(0), layer_stats(1, grad=float("nan"))])
    # Then each layer has a row per step, with the metric that does not apply left empty
    lines = path.read_text().splitlines()
    assert lines[1:] == [
        "probe,0,dense,Dense,12336,true,0.5,3.25,0.001,0.1,0.9,0,0.25",
        "probe,0,dropout,Dropout,0,false,,,,,,,",
        "probe,1,dense,Dense,12336,true,nan,3.25,0.001,0.1,0.9,0,0.25",
        "probe,1,dropout,Dropout,0,false,,,,,,,",
    ]
    sink.close()


def test_layer_csv_writes_infinity_and_keeps_six_significant_digits(tmp_path: Path) -> None:
    # Given a CSV sink
    path = tmp_path / "layers.csv"
    sink = LayerCsvSink(str(path))
    # When a gradient explodes to inf and a weight norm has many digits
    row = LayerRow("dense", "Dense", 10, True, float("inf"), 1.23456789e-7, update_ratio=-math.inf)
    feed(sink, [LayerStats("train", 40, (row,))])
    sink.close()
    # Then the cells read inf, -inf and a compact 6-digit float
    (written,) = read_csv(path)
    assert (written["phase"], written["step"]) == ("train", "40")
    assert written["grad_norm"] == "inf"
    assert written["weight_norm"] == "1.23457e-07"
    assert written["update_ratio"] == "-inf"


def test_layer_csv_rows_are_on_disk_after_each_event(tmp_path: Path) -> None:
    # Given a CSV sink that stays open (a run that will be interrupted)
    path = tmp_path / "layers.csv"
    sink = LayerCsvSink(str(path))
    # When one step arrives
    sink.handle(layer_stats(0))
    # Then its rows can already be read from another handle, before close
    assert len(read_csv(path)) == 2
    sink.close()


def test_layer_csv_dash_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the CSV sink on "-"
    sink = LayerCsvSink("-")
    # When a step arrives and the sink closes
    sink.handle(layer_stats(3))
    sink.close()
    # Then stdout holds the header and the rows
    out = capsys.readouterr().out.splitlines()
    assert out[0] == HEADER
    assert out[1].startswith("probe,3,dense,")


# --- verdict CSV ------------------------------------------------------------


def test_verdict_csv_is_header_only_before_any_verdict(tmp_path: Path) -> None:
    # Given a verdict CSV sink
    path = tmp_path / "verdicts.csv"
    VerdictCsvSink(str(path))
    # Then the file exists with just its header
    assert path.read_text() == "check,severity,subject,message,fix\n"


def test_verdict_csv_stays_complete_and_ranked_as_verdicts_arrive_out_of_order(
    tmp_path: Path,
) -> None:
    # Given a verdict CSV sink
    path = tmp_path / "verdicts.csv"
    sink = VerdictCsvSink(str(path))
    arrivals = [FROZEN, LOSS_FLAT, UNNORMALIZED, SOFTMAX]
    expected_after_each = [
        ["frozen-layers"],
        ["loss-flat", "frozen-layers"],
        ["unnormalized-input", "loss-flat", "frozen-layers"],
        ["single-unit-softmax", "unnormalized-input", "loss-flat", "frozen-layers"],
    ]
    for verdict, expected in zip(arrivals, expected_after_each, strict=True):
        # When each verdict arrives (info first, the root cause last)
        sink.handle(VerdictIssued(verdict))
        # Then the file read right away holds every verdict so far, the cause first
        assert [row["check"] for row in read_csv(path)] == expected
    sink.close()
    # And the multi-line fix survives as one cell, and no temp file is left behind
    first = read_csv(path)[0]
    assert first["fix"] == SOFTMAX.fix
    assert (first["severity"], first["subject"]) == ("error", "dense_1")
    assert [p.name for p in tmp_path.iterdir()] == ["verdicts.csv"]


# --- JSON Lines record ------------------------------------------------------


def test_record_replays_to_the_same_events(tmp_path: Path) -> None:
    # Given a record sink and a full scripted run
    path = tmp_path / "run.jsonl"
    sink = RecordSink(str(path))
    sent: list[Event] = [
        run_start(),
        model(),
        PhaseChanged("probe"),
        StepStats("probe", 0, 0.6931, 0.01, {"accuracy": 0.5}),
        layer_stats(0),
        VerdictIssued(SOFTMAX),
        Note("warning", "probe ran in place"),
        PhaseChanged("done"),
        RunFinished("probe-only", 1),
    ]
    # When every event has been handled (file read before close: flushed per event)
    feed(sink, sent)
    lines = path.read_text().splitlines()
    sink.close()
    # Then reading each line back gives exactly the events sent
    assert [from_json(line) for line in lines] == sent


def test_record_keeps_nan_and_inf(tmp_path: Path) -> None:
    # Given a record sink
    path = tmp_path / "run.jsonl"
    sink = RecordSink(str(path))
    # When a step with a NaN loss and an inf gradient is recorded
    feed(sink, [StepStats("probe", 2, float("nan")), layer_stats(2, grad=float("inf"))])
    sink.close()
    # Then each line is strict JSON and replays the non-finite values
    lines = path.read_text().splitlines()
    for line in lines:
        json.loads(line, parse_constant=_reject)
    step, stats = (from_json(line) for line in lines)
    assert isinstance(step, StepStats) and step.loss is not None and math.isnan(step.loss)
    assert isinstance(stats, LayerStats) and stats.rows[0].grad_norm == math.inf


def _reject(token: str) -> None:
    raise AssertionError(f"non-standard JSON token {token}")


# --- JSON report ------------------------------------------------------------


def test_json_report_is_valid_from_the_start(tmp_path: Path) -> None:
    # Given a JSON report sink that has seen nothing yet
    path = tmp_path / "report.json"
    JsonReportSink(str(path))
    # Then the file is already a valid report that is not finished
    report = json.loads(path.read_text())
    assert report["schema"] == 1
    assert report["verdicts"] == [] and report["headline"] is None
    assert report["finished"] is None


def test_json_report_holds_run_model_ranked_verdicts_and_final_layers(tmp_path: Path) -> None:
    # Given a JSON report sink
    path = tmp_path / "report.json"
    sink = JsonReportSink(str(path))
    # When a run with a NaN loss, a symptom then its cause, and three steps finishes
    feed(
        sink,
        [
            run_start(),
            model(),
            StepStats("probe", 0, 0.69),
            layer_stats(0),
            StepStats("probe", 1, float("nan")),
            layer_stats(1, grad=float("nan")),
            VerdictIssued(LOSS_FLAT),
            VerdictIssued(SOFTMAX),
            Note("info", "continuing with your fit()"),
            layer_stats(7, grad=0.25, phase="train"),
            RunFinished("ok", 1),
        ],
    )
    # Then (before close) the report is strict JSON with every part filled in
    report = json.loads(path.read_text(), parse_constant=_reject)
    assert report["run"]["script"] == "train.py"
    assert report["run"]["argv"] == ["train.py", "--epochs", "3"]
    assert report["run"]["gradscope_version"] == "0.1.0"
    assert report["model"]["model_name"] == "sequential"
    assert report["model"]["layers"][1]["activation"] == "softmax"
    assert [v["check"] for v in report["verdicts"]] == ["single-unit-softmax", "loss-flat"]
    assert report["headline"] == SOFTMAX.message
    assert [s["loss"] for s in report["steps"]] == [0.69, "nan"]
    assert report["notes"] == [
        {"level": "info", "text": "continuing with your fit()", "unchecked": []}
    ]
    assert report["unchecked"] == []  # every check ran: an empty verdict list would mean healthy
    assert report["finished"] == {"status": "ok", "exit_code": 1}
    # And the layers are the last row seen for each layer
    dense, dropout = report["layers"]
    assert (dense["phase"], dense["step"], dense["grad_norm"]) == ("train", 7, 0.25)
    assert dropout["layer"] == "dropout" and dropout["grad_norm"] is None
    sink.close()


def test_json_report_is_written_on_close_when_the_run_was_cut_short(tmp_path: Path) -> None:
    # Given a JSON report sink that saw an exploding step and no RunFinished
    path = tmp_path / "report.json"
    sink = JsonReportSink(str(path))
    feed(sink, [run_start(), layer_stats(0, grad=float("inf"))])
    # When it is closed (Ctrl-C)
    sink.close()
    # Then the report holds what was seen, inf as a string, and is not marked finished
    report = json.loads(path.read_text(), parse_constant=_reject)
    assert report["layers"][0]["grad_norm"] == "inf"
    assert report["finished"] is None


# --- summary ----------------------------------------------------------------


def summary_of(events: list[Event]) -> str:
    stream = io.StringIO()
    sink = SummarySink(stream)
    feed(sink, events)
    sink.close()
    return stream.getvalue()


def test_summary_headline_names_the_cause_not_the_symptom() -> None:
    # Given a probe where the loss-flat symptom is found first and its cause later
    text = summary_of(
        [
            model(),
            layer_stats(0),
            VerdictIssued(LOSS_FLAT),
            VerdictIssued(UNNORMALIZED),
            VerdictIssued(SOFTMAX),
            PhaseChanged("train"),
        ]
    )
    lines = text.splitlines()
    # Then the summary counts the verdicts and leads with the cause
    assert lines[0] == "gradscope: 3 verdicts for sequential (12,345 params)"
    assert lines[1:3] == [
        "Most likely cause: [single-unit-softmax] Softmax over 1 output unit always",
        "  outputs 1.0.",
    ]
    # And lists every verdict ranked, wrapped at 80 columns, each with its fix line for line
    assert lines[3:7] == [
        "  ERROR   single-unit-softmax (dense_1): Softmax over 1 output unit always",
        "          outputs 1.0.",
        '          fix: Use Dense(1, activation="sigmoid") with binary cross-entropy:',
        '               model.add(Dense(1, activation="sigmoid"))',
    ]
    # (causes, even a warning, rank before the symptom they explain)
    assert lines[7].startswith("  WARNING unnormalized-input (inputs): ")
    assert lines[9].startswith("  ERROR   loss-flat (loss): ")
    # And nothing passes 80 columns, with no colour on a stream that is not a terminal
    assert max(len(line) for line in lines) <= 80
    assert "\033[" not in text


def test_summary_prints_once_when_diagnosis_ends_then_later_verdicts_as_they_come() -> None:
    # Given a summary sink
    stream = io.StringIO()
    sink = SummarySink(stream)
    feed(sink, [model(), VerdictIssued(UNNORMALIZED)])
    # When the probe is still going, nothing is printed
    assert stream.getvalue() == ""
    # When the user's training starts, the summary is printed
    sink.handle(PhaseChanged("train"))
    printed = stream.getvalue()
    assert printed.startswith("gradscope: 1 verdict for sequential")
    # When a verdict arrives during training, only that verdict is added
    sink.handle(VerdictIssued(LOSS_FLAT))
    added = stream.getvalue()[len(printed) :]
    assert added.startswith("  ERROR   loss-flat (loss): ")
    assert "gradscope: " not in added
    # And the end of the run prints nothing more
    sink.handle(PhaseChanged("done"))
    sink.handle(RunFinished("ok", 1))
    sink.close()
    assert stream.getvalue() == printed + added


def test_summary_says_no_problems_when_only_info_was_found() -> None:
    # Given a probe of 5 steps that found only an info verdict
    events: list[Event] = [model(), *(StepStats("probe", i, 0.5 - i / 10) for i in range(5))]
    text = summary_of([*events, VerdictIssued(FROZEN), RunFinished("probe-only", 0)])
    # Then the summary says no problems were found, and still lists the info
    lines = text.splitlines()
    assert lines[1] == "gradscope: no problems found in 5 probe steps."
    assert "Most likely cause" not in text
    assert lines[2].startswith("  INFO    frozen-layers (model): ")


def test_summary_prints_warning_notes_at_once_and_skips_info_notes() -> None:
    # Given a summary sink during the probe
    stream = io.StringIO()
    sink = SummarySink(stream)
    # When an info note and a warning note arrive
    sink.handle(Note("info", "probing a clone"))
    sink.handle(Note("warning", "could not clone the model: probing in place"))
    # Then only the warning is printed, right away
    assert stream.getvalue() == "gradscope: could not clone the model: probing in place\n"


def test_summary_stays_silent_when_fit_was_never_reached() -> None:
    # Given a run whose script failed before fit()
    text = summary_of([run_start(), RunFinished("script-error", 3)])
    # Then no "no problems found" line misleads the user
    assert text == ""


# --- build_sinks ------------------------------------------------------------


def test_headless_defaults_to_csv_on_stdout_and_a_summary(tmp_path: Path) -> None:
    # Given headless options with only --verdicts
    options = RunOptions(script="train.py", headless=True, verdicts=str(tmp_path / "v.csv"))
    # When the sinks are built
    sinks = build_sinks(options)
    # Then the layer CSV goes to stdout, the verdicts to their file, and a summary is printed
    kinds = [type(s) for s in sinks]
    assert kinds == [LayerCsvSink, VerdictCsvSink, SummarySink]
    for sink in sinks:
        sink.close()


def test_interactive_builds_only_the_files_asked_for(tmp_path: Path) -> None:
    # Given interactive options with every file output
    options = RunOptions(
        script="train.py",
        headless=False,
        csv=str(tmp_path / "l.csv"),
        verdicts=str(tmp_path / "v.csv"),
        json=str(tmp_path / "r.json"),
        record=str(tmp_path / "run.jsonl"),
    )
    # When the sinks are built
    sinks = build_sinks(options)
    # Then there is one sink per file and no stdout or summary sink
    assert [type(s) for s in sinks] == [LayerCsvSink, VerdictCsvSink, JsonReportSink, RecordSink]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.csv", "r.json", "run.jsonl", "v.csv"]
    for sink in sinks:
        sink.close()


@pytest.mark.parametrize("bad", ["missing-folder/report.json", "a-folder"])
def test_unwritable_path_is_a_usage_error_before_anything_is_written(
    tmp_path: Path, bad: str
) -> None:
    # Given a good --csv path, an existing file for --record, and a --json path that cannot be written
    (tmp_path / "a-folder").mkdir()
    existing = tmp_path / "old.jsonl"
    existing.write_text("keep me\n")
    options = RunOptions(
        script="train.py",
        csv=str(tmp_path / "layers.csv"),
        record=str(existing),
        json=str(tmp_path / bad),
    )
    # When the sinks are built
    with pytest.raises(UsageError, match=r"^cannot write '.*': ") as caught:
        build_sinks(options)
    # Then the message names the bad path, and no file was created or truncated
    assert bad in str(caught.value)
    assert not (tmp_path / "layers.csv").exists()
    assert existing.read_text() == "keep me\n"


def test_two_outputs_on_one_file_is_a_usage_error(tmp_path: Path) -> None:
    # Given --verdicts and --json on the same file
    same = str(tmp_path / "out")
    options = RunOptions(script="train.py", verdicts=same, json=same)
    # When the sinks are built, then the clash is reported
    with pytest.raises(UsageError, match="--verdicts and --json both write"):
        build_sinks(options)


def test_only_csv_may_write_to_stdout() -> None:
    # Given --json -
    options = RunOptions(script="train.py", json="-")
    # When the sinks are built, then the user is told to give a file
    with pytest.raises(UsageError, match="--json cannot write to stdout"):
        build_sinks(options)
