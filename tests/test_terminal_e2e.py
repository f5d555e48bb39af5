"""`gradscope run` on a real demo script in a real terminal (tmux): the user's
whole path, from the layers filling in to a clean prompt after q.

tmux plays the terminal: keys go in with send-keys, the screen comes back
with capture-pane. Skipped where tmux is not installed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "scripts" / "demo" / "dead-relu.py"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """One tmux window running a plain bash, 100x30."""

    def __init__(self, socket: Path, cwd: Path) -> None:
        self.socket = socket
        self.cwd = cwd  # where the shell starts

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=30,
        )
        if done.returncode:
            sessions = subprocess.run(["tmux", "-S", str(self.socket), "list-sessions"],
                                      capture_output=True, text=True, timeout=30)
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}; sessions: "
                                 f"{sessions.stdout.strip()} {sessions.stderr.strip()}")
        return done.stdout

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "e2e", "-l", line)
        self.tmux("send-keys", "-t", "e2e", "Enter")

    def press(self, *keys: str) -> None:
        # One key at a time: Escape then q sent together would read as Alt+q.
        for key in keys:
            self.tmux("send-keys", "-t", "e2e", key)
            time.sleep(0.4)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e")

    def text(self) -> str:
        """The pane with the lines the terminal wrapped joined back (-J), and its history."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "e2e")

    def wait_for(self, done: Callable[[str], bool], timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if done(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the screen shows:\n{text}")
            time.sleep(0.3)

    def flag(self, name: str) -> str:
        return self.tmux("display-message", "-p", "-t", "e2e", f"#{{{name}}}").strip()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    socket = tmp_path / "tmux.sock"
    # A foreground server (-D): tmux's daemon() refuses to start where /dev/null
    # is not a character device (some sandboxes); a foreground one works anywhere.
    server = subprocess.Popen(
        ["tmux", "-D", "-S", str(socket), "-f", "/dev/null"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    term = Terminal(socket, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.skip("tmux server would not start here")
            time.sleep(0.05)
        bin_dir = Path(sys.executable).parent
        shell = (
            f"env -i PATH={shlex.quote(str(bin_dir))}:/usr/bin:/bin HOME={shlex.quote(str(tmp_path))}"
            " TERM=xterm-256color TF_CPP_MIN_LOG_LEVEL=3 PS1='PROMPT$ '"
            " bash --norc --noprofile"
        )
        term.tmux("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", "-c", str(tmp_path),
                  shell)
        term.wait_for(lambda text: "PROMPT$" in text, timeout=20)
        yield term
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True, timeout=30)
        server.terminate()
        server.wait(timeout=30)


def at_prompt(text: str) -> bool:
    # The typed command line spells EXIT"=" apart, so this is only ever its output.
    return "EXIT=" in text and text.rstrip().endswith("PROMPT$")


def test_a_user_reads_the_cause_drills_into_the_guilty_layer_and_quits_to_a_clean_prompt(
    terminal: Terminal,
) -> None:
    # Given a buggy demo run in a real terminal (the terminal's settings saved first)
    terminal.type(
        f"S=$(stty -g); {shlex.quote(sys.executable)} -m gradscope run --probe-only "
        f"--record run.jsonl {shlex.quote(str(DEMO))}; echo EXIT\"=\"$?;"
        " [ \"$S\" = \"$(stty -g)\" ] && echo TTY\"=\"same"
    )
    # Then the layers fill in and the cause is the headline, with its fix
    screen = terminal.wait_for(lambda text: "finished ·" in text and "fix:" in text)
    assert "most likely cause" in screen and "dead-relu · dense_1" in screen, screen
    assert "· exit 1" in screen and "error verdict" in screen, screen
    assert "fix:" in screen
    for layer in ("dense ", "dense_1", "dense_2", "dense_3"):
        assert layer in screen
    assert terminal.flag("alternate_on") == "1"  # the UI has the whole screen

    # When the user opens the guilty layer, then its histograms
    terminal.press("Down", "Enter")
    screen = terminal.wait_for(lambda text: "Steps · h histograms" in text)
    assert screen.splitlines()[0].strip().startswith("dense_1 · Dense")
    terminal.press("h")
    screen = terminal.wait_for(lambda text: "activations" in text)
    assert "gradients" in screen and "all 0" in screen  # a dead layer: no gradient at all

    # and goes back and quits
    terminal.press("Escape")
    terminal.wait_for(lambda text: "Layers (4)" in text)
    terminal.press("q")
    screen = terminal.wait_for(at_prompt, timeout=60)

    # Then gradscope exits with cli.md's code (1: an error verdict) to a clean prompt:
    # the alternate screen left, the cursor shown, the terminal's modes as they were
    assert "EXIT=1" in screen and "TTY=same" in screen
    assert screen.rstrip().splitlines()[-1] == "PROMPT$"
    assert terminal.flag("alternate_on") == "0"
    assert terminal.flag("cursor_flag") == "1"

    # and the diagnosis stays on the terminal: the headline's check, its fix, the record
    from gradscope.commands.view import read_events
    from gradscope.report import Report

    top = Report.from_events(read_events(str(terminal.cwd / "run.jsonl"))).headline()
    assert top is not None and top.check == "dead-relu"
    left = terminal.text()
    left = left[left.rindex("gradscope run --probe-only"):]  # what came after the command
    assert "gradscope: most likely cause, of " in left, left
    assert f"ERROR   {top.check} ({top.subject}):" in left, left
    assert f"fix: {top.fix.splitlines()[0]}" in left, left
    assert "--record run.jsonl" in left and "gradscope view run.jsonl" in left, left


def test_q_while_the_probe_runs_stops_the_run_and_exits_130(terminal: Terminal) -> None:
    # (only our own child counts: it has this terminal's HOME, a folder of this test's
    # own; another run of the suite on the machine may have a child going at the time)
    terminal.type(
        f"{shlex.quote(sys.executable)} -m gradscope run {shlex.quote(str(DEMO))};"
        " echo EXIT\"=\"$?; for p in $(pgrep -f 'gradscope run --events-fd'); do"
        " tr '\\0' '\\n' </proc/$p/environ 2>/dev/null | grep -qxF \"HOME=$HOME\" && echo OURS;"
        " done | grep -q OURS || echo NO-\"CHILD\""
    )
    terminal.wait_for(lambda text: "Layers (4)" in text)
    terminal.press("q")
    screen = terminal.wait_for(at_prompt, timeout=60)
    assert "EXIT=130" in screen and "NO-CHILD" in screen
    assert terminal.flag("alternate_on") == "0"
