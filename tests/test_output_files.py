"""Output files: never overwritten without --force, replaced only by a complete file."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from gradscope.cli import main

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


def test_an_existing_output_is_kept_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an earlier run's CSV and a script
    earlier = tmp_path / "layers.csv"
    earlier.write_text("an earlier run\n")
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    # When gradscope is asked to write over it without --force
    code = main(["run", "--headless", "--csv", str(earlier), str(script)])
    # Then it refuses in one line before running anything, and the file is untouched
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"gradscope: '{earlier}' already exists: pass --force to overwrite it (--csv)"]
    assert earlier.read_text() == "an earlier run\n"


def test_force_replaces_the_file_with_this_runs_complete_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = tmp_path / "layers.csv"
    earlier.write_text("an earlier run\n")
    record = tmp_path / "run.jsonl"
    record.write_text("old\n")
    script = tmp_path / "s.py"
    script.write_text("print('no fit here')\n")
    code = main(["run", "--headless", "--force", "--csv", str(earlier), "--record", str(record),
                 str(script)])
    capsys.readouterr()
    assert code == 4  # the script never called fit
    assert earlier.read_text().startswith("phase,step,layer,")
    assert record.read_text().splitlines()[-1].startswith('{"v":1,"type":"RunFinished"')
    # and no hidden partial file is left behind
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# --- paths that cannot be written: one line, exit 2, before any work ---------------

UNWRITABLE_PROBE = """\
import contextlib, io, json, os, sys
from gradscope.cli import main
from gradscope.errors import UsageError
from gradscope.commands.live import run_live
from gradscope.options import RunOptions

script, cases = sys.argv[1], json.loads(sys.argv[2])
answers = []
for flag, path in cases:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "--headless", flag, path, script])
    # live mode (a terminal) must refuse before the UI opens or a child starts
    try:
        run_live(RunOptions(script=script, headless=False, **{flag[2:]: path}), [flag, path, script])
        live = "ran"
    except UsageError as error:
        live = str(error)
    answers.append({"code": code, "err": err.getvalue(), "live": live})
print(json.dumps({
    "answers": answers,
    "heavy": [m for m in ("tensorflow", "keras", "textual") if m in sys.modules],
    "children": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1,
}))
"""


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[Path | None]:
    """A folder this process cannot write into (chmod, or chattr +i when running as root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    immutable = False
    if os.access(folder, os.W_OK):  # root ignores the mode bits
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    try:
        yield folder if not os.access(folder, os.W_OK) else None
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o700)


@pytest.mark.parametrize("flag", ["--csv", "--verdicts", "--json", "--record"])
def test_an_unwritable_output_is_one_line_and_exit_2_before_the_script_runs(
    tmp_path: Path, unwritable_folder: Path | None, flag: str
) -> None:
    # Given a script that would leave a mark, and outputs that cannot be written
    marker = tmp_path / "script-ran"
    script = tmp_path / "train.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    bad = {
        "missing folder": (tmp_path / "no-such-folder" / "out", "folder '{}' does not exist",
                           tmp_path / "no-such-folder"),
        "a folder": (tmp_path / "a-folder", "it is a folder", None),
        "under a file": (tmp_path / "a-file" / "out", "'{}' is a file, not a folder",
                         tmp_path / "a-file"),
    }
    if unwritable_folder is not None:
        bad["not writable"] = (unwritable_folder / "out", "permission denied", None)
    cases = [[flag, str(path)] for path, _, _ in bad.values()]

    # When gradscope is asked to write there (headless, and in live mode)
    done = subprocess.run(
        [sys.executable, "-c", UNWRITABLE_PROBE, str(script), json.dumps(cases)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )

    # Then each is one clear line and exit 2, before TensorFlow, the UI or the script
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    for (path, reason, folder), got in zip(bad.values(), answer["answers"], strict=True):
        message = f"cannot write '{path}': {reason.format(folder)}"
        assert got["code"] == 2
        assert got["err"].splitlines() == [f"gradscope: {message}"]
        assert got["live"] == message
    assert answer["heavy"] == []
    assert not marker.exists()
    # and nothing was created
    assert not (tmp_path / "no-such-folder").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "locked") == [
        "a-file", "a-folder", "train.py"
    ]


# --- devices and pipes: written in place, never replaced ---------------------------


def test_dev_null_and_a_fifo_are_written_in_place_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a reader on a FIFO, and /dev/null
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.py").write_text("print('no fit here')\n")
    fifo = tmp_path / "verdicts.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()

    code = main(["run", "--headless", "--json", os.devnull, "--verdicts", str(fifo), "s.py"])

    # Then they were accepted (no --force), the FIFO got the table once, complete,
    # and /dev/null is still a device
    capsys.readouterr()
    reader.join(timeout=30)
    assert code == 4
    assert received == ["check,severity,subject,message,fix\n"]
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- with --force, an earlier run's file survives this run until it is complete ----

SLOW_FIT = """\
import keras
import numpy as np

x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, epochs=100_000, verbose=0)
"""

EARLIER = {"l.csv": "earlier layers\n", "v.csv": "earlier verdicts\n", "r.json": '{"earlier": 1}\n'}


@dataclass
class Forced:
    folder: Path
    mid_run: dict[str, str]  # the files as they were while the run was training
    returncode: int


def _forced_run(folder: Path, ending: int) -> Forced:
    folder.mkdir()
    (folder / "train.py").write_text(SLOW_FIT)
    for name, text in EARLIER.items():
        (folder / name).write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--force", "--budget", "0",
         "--csv", "l.csv", "--verdicts", "v.csv", "--json", "r.json", "--record", "new.jsonl",
         "train.py"],
        cwd=folder, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # Wait until the user's training has streamed rows of its own
        deadline = time.monotonic() + 180
        record = folder / "new.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if record.exists() and '"phase":"train","step"' in record.read_text():
                break
            time.sleep(0.05)
        mid_run = {name: (folder / name).read_text() for name in EARLIER}
        proc.send_signal(ending)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Forced(folder, mid_run, proc.returncode)


@pytest.fixture(scope="module")
def forced_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Forced]]]:
    tmp = tmp_path_factory.mktemp("forced")
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            "killed": pool.submit(_forced_run, tmp / "killed", signal.SIGKILL),
            "interrupted": pool.submit(_forced_run, tmp / "interrupted", signal.SIGTERM),
        }


def _valid(folder: Path) -> None:
    """The verdict CSV and the JSON report are whole at any moment (replaced atomically)."""
    assert (folder / "v.csv").read_text().startswith("check,severity,subject,message,fix\n")
    json.loads((folder / "r.json").read_text())


def test_a_run_killed_outright_leaves_the_earlier_streamed_files_intact(
    forced_runs: dict[str, Future[Forced]],
) -> None:
    run = forced_runs["killed"].result(timeout=300)
    assert run.returncode == -signal.SIGKILL
    # While it trained, and after it was killed, the earlier layer CSV was untouched
    assert run.mid_run["l.csv"] == EARLIER["l.csv"]
    assert (run.folder / "l.csv").read_text() == EARLIER["l.csv"]
    # its own rows are in the hidden partial file beside it
    (partial,) = run.folder.glob(".l.csv.*.partial")
    assert partial.read_text().startswith("phase,step,layer,")
    # and the files replaced atomically are whole, never half-written
    _valid(run.folder)


def test_an_interrupted_run_replaces_the_earlier_files_with_complete_ones(
    forced_runs: dict[str, Future[Forced]],
) -> None:
    run = forced_runs["interrupted"].result(timeout=300)
    assert run.returncode == 128 + signal.SIGTERM
    assert run.mid_run["l.csv"] == EARLIER["l.csv"]
    # The layer CSV now is this run's, complete: header, probe rows, train rows
    table = (run.folder / "l.csv").read_text().splitlines()
    assert table[0].startswith("phase,step,layer,")
    assert any(line.startswith("probe,") for line in table)
    assert any(line.startswith("train,") for line in table)
    _valid(run.folder)
    report = json.loads((run.folder / "r.json").read_text())
    assert report["finished"] == {"status": "interrupted", "exit_code": 128 + signal.SIGTERM}
    assert not [p.name for p in run.folder.iterdir() if p.name.startswith(".")]
