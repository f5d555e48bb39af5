"""Ctrl-C (SIGINT), SIGTERM and SIGHUP at every phase of a run: gradscope stops,
every output file is complete up to the last step (a CSV with its header, JSON
Lines ending with RunFinished, a valid JSON report), and the exit code is 130
(128+n for other signals).

To hit a phase, the test tails the `--record` file (flushed per event) until the
PhaseChanged event of that phase appears, then sends the signal. The script
makes every phase last: a layer sleeps whenever the model is called eagerly (the
static checks and the start of the probe do so once each), and the model is
wide enough that the experiments fill their --budget; its training runs for
100,000 epochs. The runs are started together, three at a time.

A signal that lands inside TensorFlow's own Python callbacks can come out as a
TensorFlow error instead of a KeyboardInterrupt (or, rarely, abort TensorFlow);
the in-process tests at the end check that such a lost interrupt still stops
the run, deterministically.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gradscope.cli import main
from gradscope.commands import run as run_command
from gradscope.events import EventBus, PhaseChanged, RunFinished, VerdictIssued
from gradscope.intercept import FitCall
from gradscope.sinks.layer_csv import COLUMNS
from gradscope.sinks.verdict_csv import COLUMNS as VERDICT_COLUMNS
from gradscope.verdicts import Verdict

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}

SLOW_SCRIPT = """\
import time

import keras
import numpy as np
import tensorflow as tf

EAGER_NAP = 1.0  # seconds per eager call: the static checks and the probe make one each


class Slow(keras.layers.Layer):
    def call(self, x):
        if tf.executing_eagerly():
            time.sleep(EAGER_NAP)
        return x


rng = np.random.default_rng(0)
x = rng.normal(size=(256, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
# Wide enough that the experiments fill their --budget (steps are timed, then sized).
model = keras.Sequential([
    keras.Input((8,)),
    keras.layers.Dense(1024, activation="relu"),
    Slow(),
    keras.layers.Dense(1024, activation="relu"),
    keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
try:
    model.fit(x, y, batch_size=32, epochs=100_000, verbose=0)
finally:
    print("script cleanup ran", flush=True)
"""

OUTPUTS = ["--csv", "l.csv", "--verdicts", "v.csv", "--json", "r.json", "--record", "r.jsonl"]
RUN = ["run", "--steps", "5", "--budget", "2"]

PHASES = ["static", "probe", "experiments", "train"]
# Ctrl-C at every phase; SIGTERM and SIGHUP (one handler, which differs from
# Ctrl-C's only in the exception and exit code) at two phases each, so that
# every phase meets two signals: 8 runs rather than 12 keep this file near a
# minute on two cores.
CASES = [(signal.SIGINT, phase) for phase in PHASES] + [
    (signal.SIGTERM, "probe"), (signal.SIGTERM, "train"),
    (signal.SIGHUP, "static"), (signal.SIGHUP, "experiments"),
]


@dataclass
class Interrupted:
    folder: Path
    returncode: int | None
    stdout: str
    stderr: str
    sent: bool  # False: the run ended before the trigger appeared
    seconds_to_exit: float

    def events(self) -> list[dict]:
        # Every line must be valid JSON: json.loads raises otherwise.
        return [json.loads(line) for line in (self.folder / "r.jsonl").read_text().splitlines()]


class RecordTail:
    """Reads the JSON Lines record as it grows, complete lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = ""

    def new_events(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            handle.seek(self._offset)
            text = handle.read()
            self._offset = handle.tell()
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line]


def wait_for_event(tail: RecordTail, proc: subprocess.Popen, kind: str, phase: str,
                   timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for event in tail.new_events():
            if event["type"] == kind and (kind != "PhaseChanged" or event["phase"] == phase):
                return True
        time.sleep(0.02)
    return False


def interrupt_run(folder: Path, signum: int, phase: str) -> Interrupted:
    folder.mkdir(parents=True)
    (folder / "train.py").write_text(SLOW_SCRIPT)
    with open(folder / "out.txt", "w") as out, open(folder / "err.txt", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradscope", *RUN, "--headless", *OUTPUTS, "train.py"],
            cwd=folder, env=ENV, stdout=out, stderr=err,
        )
        try:
            sent = wait_for_event(RecordTail(folder / "r.jsonl"), proc, "PhaseChanged", phase)
            if sent:
                proc.send_signal(signum)
            start = time.monotonic()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Interrupted(
        folder, proc.returncode, (folder / "out.txt").read_text(), (folder / "err.txt").read_text(),
        sent, time.monotonic() - start,
    )


@pytest.fixture(scope="module")
def interrupted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[int, str], Future[Interrupted]]]:
    """Every selected (signal, phase) run, started at once, three at a time."""
    wanted = [
        (item.callspec.params["signum"], item.callspec.params["phase"])
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_a_signal_at_any_phase_leaves_complete_outputs"
    ]
    tmp = tmp_path_factory.mktemp("interrupted")
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {
            (signum, phase): pool.submit(
                interrupt_run, tmp / f"{signal.Signals(signum).name}-{phase}", signum, phase
            )
            for signum, phase in wanted
        }


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize(
    ("signum", "phase"), CASES,
    ids=[f"{signal.Signals(s).name}-{p}" for s, p in CASES],
)
def test_a_signal_at_any_phase_leaves_complete_outputs(
    interrupted: dict[tuple[int, str], Future[Interrupted]], signum: int, phase: str
) -> None:
    run = interrupted[(signum, phase)].result(timeout=600)
    assert run.sent, f"the run ended before the {phase} phase:\n{run.stderr[-3000:]}"
    # The run stopped promptly, with 130 for Ctrl-C and 128+n for the others
    assert run.returncode == 128 + signum, run.stderr[-3000:]
    assert run.seconds_to_exit < 30
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    said = "gradscope: interrupted" if signum == signal.SIGINT else (
        f"gradscope: stopped by {signal.Signals(signum).name}"
    )
    assert said in run.stderr.splitlines()
    # and the script's own cleanup ran (once it was running fit)
    assert "script cleanup ran" in run.stdout

    # The record is valid JSON Lines, ends with RunFinished, and the signal landed
    # in the phase it was aimed at
    events = run.events()
    finished = events[-1]
    assert (finished["type"], finished["status"], finished["exit_code"]) == (
        "RunFinished", "interrupted", 128 + signum
    )
    # (the script's own phase first; the experiments say each one they start)
    phases = [e["phase"] for e in events if e["type"] == "PhaseChanged"]
    phases = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert phases == ["script", *PHASES[: PHASES.index(phase) + 1]]
    # An interrupt is not a failure of the probe
    verdicts = [e["verdict"]["check"] for e in events if e["type"] == "VerdictIssued"]
    assert "probe-failed" not in verdicts

    # The layer CSV has its header and every row of every step recorded
    table = rows(run.folder / "l.csv")
    assert table[0] == list(COLUMNS)
    assert all(len(row) == len(COLUMNS) for row in table[1:])
    recorded = [e for e in events if e["type"] == "LayerStats"]
    assert len(table) - 1 == sum(len(e["rows"]) for e in recorded)
    assert [row[:2] for row in table[1:]] == [
        [e["phase"], str(e["step"])] for e in recorded for _ in e["rows"]
    ]
    if phase in ("experiments", "train"):
        assert len(table) > 1  # the probe steps' rows are there
    # The verdict CSV has every verdict issued; the JSON report is complete
    assert rows(run.folder / "v.csv")[0] == list(VERDICT_COLUMNS)
    assert len(rows(run.folder / "v.csv")) - 1 == len(verdicts)
    report = json.loads((run.folder / "r.json").read_text())
    assert report["finished"] == {"status": "interrupted", "exit_code": 128 + signum}
    # and no temporary file is left behind
    assert not [p.name for p in run.folder.iterdir() if p.name.startswith(".")]


# --- live mode: the UI in this process, the run in a child ------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_the_live_ui_stops_the_child_and_restores_the_terminal(
    tmp_path: Path, signum: int
) -> None:
    # Given `gradscope run script.py` in a terminal (a pty): the UI here, the run in a child
    (tmp_path / "train.py").write_text(SLOW_SCRIPT)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradscope", *RUN, "--record", "r.jsonl", "train.py"],
        cwd=tmp_path, env={**ENV, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"},
        stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True,
    )
    os.close(secondary)
    screen = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed (EIO)
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        # When the run is probing, the signal reaches the gradscope process
        assert wait_for_event(RecordTail(tmp_path / "r.jsonl"), proc, "PhaseChanged", "probe"), (
            bytes(screen).decode(errors="replace")[-3000:]
        )
        children = _children(proc.pid)
        assert len(children) == 1
        assert b"\x1b[?1049h" in screen  # the UI is on the alternate screen
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    os.close(primary)
    # Then it exits 128+n, the child is gone, and the terminal was restored
    assert code == 128 + signum, bytes(screen).decode(errors="replace")[-3000:]
    assert not _alive(children[0])
    after = bytes(screen).rsplit(b"\x1b[?1049h", 1)[1]
    assert b"\x1b[?1049l" in after  # left the alternate screen
    assert f"gradscope: stopped by {signal.Signals(signum).name}".encode() in after
    # and the child closed its outputs: the record ends with RunFinished
    last = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[-1])
    assert (last["type"], last["status"]) == ("RunFinished", "interrupted")


# --- an interrupt lost inside TensorFlow still stops the run (in-process) ----------

TINY_FIT = """\
import signal

import keras
import numpy as np

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0)
print("after fit")
"""


class SwallowingSession:
    """A session whose diagnosis, or the user's fit it runs, meets a signal where
    TensorFlow would swallow it or turn it into an error of its own."""

    signum = signal.SIGTERM
    where = "diagnosis"

    def __init__(self, options: object, bus: EventBus) -> None:
        self.bus = bus
        self.fit_seen = False

    def _signal_swallowed(self) -> None:
        try:
            signal.raise_signal(self.signum)
            time.sleep(5)  # not reached: the handler raises on return from raise_signal
        except BaseException:  # noqa: BLE001 - as a py_function turns it into UnknownError
            pass

    def on_fit(self, call: FitCall) -> object:
        self.fit_seen = True
        self.bus.emit(PhaseChanged("static"))
        if self.where == "diagnosis":
            self._signal_swallowed()
            # the probe would now report a failure and go on to the user's fit
            self.bus.emit(VerdictIssued(Verdict("probe-failed", "info", "model", "failed", "-")))
        self.bus.emit(PhaseChanged("train"))
        if self.where == "fit-error":
            self._signal_swallowed()
            raise ValueError("An unusually high number of `Iterator.get_next()` calls")
        if self.where == "fit-swallowed":
            self._signal_swallowed()
        return call.run_original(call.args, call.kwargs)

    def verdict_exit_code(self) -> int:
        return 0

    def finish(self, status: str, exit_code: int, **_: str) -> None:
        self.bus.emit(RunFinished(status=status, exit_code=exit_code))
        self.bus.close()


@pytest.mark.parametrize(
    ("where", "signum"),
    [("diagnosis", signal.SIGTERM), ("fit-error", signal.SIGINT), ("fit-swallowed", signal.SIGHUP)],
    ids=["swallowed-in-diagnosis", "became-an-error-in-fit", "swallowed-in-fit"],
)
def test_an_interrupt_lost_while_gradscope_holds_the_fit_still_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    where: str, signum: int,
) -> None:
    monkeypatch.setattr(SwallowingSession, "where", where)
    monkeypatch.setattr(SwallowingSession, "signum", signum)
    monkeypatch.setattr(run_command, "Session", SwallowingSession)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(TINY_FIT)

    code = main(["run", "--headless", "--record", "r.jsonl", "--verdicts", "v.csv", "train.py"])

    # The run stops as interrupted: no traceback, the script's fit() does not return
    out, err = capsys.readouterr()
    assert code == 128 + signum
    assert "after fit" not in out
    assert "Traceback" not in err
    events = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert events[-1] == {"v": 1, "type": "RunFinished", "status": "interrupted",
                          "exit_code": 128 + signum}
    # and the failure the interrupt caused is in no output
    assert not [e for e in events if e["type"] == "VerdictIssued"]
    assert rows(tmp_path / "v.csv") == [list(VERDICT_COLUMNS)]


def test_a_script_may_handle_its_own_ctrl_c_outside_the_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a script that handles a Ctrl-C before fit, as python lets it
    monkeypatch.setattr(SwallowingSession, "where", "nowhere")
    monkeypatch.setattr(run_command, "Session", SwallowingSession)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(
        "import signal\n"
        "try:\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "except KeyboardInterrupt:\n"
        "    print('handled')\n" + TINY_FIT
    )

    code = main(["run", "--headless", "--record", "r.jsonl", "train.py"])

    # Then its fit runs and the script ends as usual
    out = capsys.readouterr().out
    assert code == 0
    assert "handled" in out and "after fit" in out


def test_a_ctrl_c_that_passed_through_an_exec_of_a_string_still_exits_130(tmp_path: Path) -> None:
    # Given a Ctrl-C that lands in code run by exec() of a string (dataclass and
    # namedtuple creation do that), which CPython remembers process-wide and, at
    # exit, turns into a death by SIGINT whatever code the program chose
    (tmp_path / "train.py").write_text('exec("raise KeyboardInterrupt")\n')

    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--csv", "l.csv", "train.py"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120,
    )

    # Then gradscope still reports the interrupt with its own code, 130
    assert done.returncode == 130, done.stderr[-2000:]
    assert "gradscope: interrupted" in done.stderr
    assert "Traceback" not in done.stderr
