"""`gradscope diff BEFORE.jsonl AFTER.jsonl`: two recorded runs compared.

Most tests build the recordings from the event dataclasses (no TensorFlow);
one records a real run of the fixed vanishing-gradient demo and compares it
with the committed recording of the broken one.
"""

from __future__ import annotations

import asyncio
import functools
import math
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from gradscope.cli import main
from gradscope.compare import Comparison, factor_text, loss_chart, match_verdicts
from gradscope.events import (
    Event,
    LayerInfo,
    LayerRow,
    LayerStats,
    ModelDescribed,
    RunFinished,
    RunStarted,
    StepStats,
    VerdictIssued,
    to_json,
)
from gradscope.report import Report
from gradscope.ui.diff_app import DiffApp
from gradscope.ui.screens.diff import DiffHelpScreen, DiffScreen
from gradscope.verdicts import Verdict
from tests.test_ui import screen_text  # the terminal as the user sees it

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data"


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs an async pilot test in its own event loop (no pytest-asyncio needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


# --- scripted runs --------------------------------------------------------------------


VANISHING = Verdict("vanishing-gradient", "error", "hidden_0",
                    "the gradient reaching the first layer 'hidden_0' is 1e+04x smaller.",
                    "Use ReLU with He initialisation.", evidence={"first_layer": "hidden_0"})
LOSS_FLAT = Verdict("loss-flat", "warning", "model", "the loss did not move in 5 steps.",
                    "Fix the cause above.", kind="symptom")
DEAD_RELU = Verdict("dead-relu", "warning", "hidden_1", "60% of the ReLU units output 0.",
                    "Use He initialisation.")
ADVICE = Verdict("lr-schedule", "info", "optimizer", "a schedule could help.", "")


def recording(verdicts: list[Verdict], grads: dict[str, float], *, losses: list[float],
              script: str = "train.py", updates: dict[str, float] | None = None,
              exit_code: int = 0) -> list[Event]:
    """A finished probe-only run of a Dense stack named after `grads`' keys."""
    names = list(grads)
    updates = updates or {name: grad * 1e-3 for name, grad in grads.items()}
    events: list[Event] = [
        RunStarted(script, (script,), "0.1.0", 0.0),
        ModelDescribed("mlp", "Sequential", 1000, 1000, "CPU", "clone",
                       tuple(LayerInfo(name, "Dense", 100, True) for name in names)),
    ]
    for step, loss in enumerate(losses, start=1):
        events.append(StepStats("probe", step, loss, seconds=0.01))
        events.append(LayerStats("probe", step, tuple(
            LayerRow(name, "Dense", 100, True, grad_norm=grads[name], weight_norm=1.0,
                     update_ratio=updates[name]) for name in names)))
    events += [VerdictIssued(v) for v in verdicts]
    events.append(RunFinished("probe-only", exit_code))
    return events


BROKEN_GRADS = {"hidden_0": 1e-6, "hidden_1": 1e-4, "hidden_2": 1e-2, "out": 1.0}
FIXED_GRADS = {"hidden_0": 1.2e-3, "hidden_1": 0.5, "hidden_2": 0.6, "out": 0.8}


def broken() -> list[Event]:
    return recording([LOSS_FLAT, VANISHING], BROKEN_GRADS, losses=[2.3, 2.31, 2.3, 2.29, 2.3],
                     script="broken.py", exit_code=1)


def fixed() -> list[Event]:
    return recording([], FIXED_GRADS, losses=[2.3, 1.9, 1.4, 1.0, 0.7], script="fixed.py")


def write(path: Path, events: list[Event]) -> str:
    path.write_text("".join(to_json(event) + "\n" for event in events))
    return str(path)


def compared(before: list[Event], after: list[Event]) -> Comparison:
    return Comparison.of(Report.from_events(before), Report.from_events(after))


# --- verdicts -------------------------------------------------------------------------


def test_verdicts_are_gone_new_or_stayed_by_check_and_subject_most_important_first():
    # given a dead-relu that moved to another layer, a loss-flat that got worse,
    # a vanishing gradient that went away and a new info note
    worse_flat = Verdict("loss-flat", "error", "model", "the loss did not move in 5 steps.",
                         "Fix the cause above.", kind="symptom")
    moved = Verdict("dead-relu", "warning", "hidden_2", "55% of the ReLU units output 0.", "")
    before = Report.from_events([VerdictIssued(v) for v in (LOSS_FLAT, DEAD_RELU, VANISHING)])
    after = Report.from_events([VerdictIssued(v) for v in (ADVICE, worse_flat, moved)])

    changes = match_verdicts(before.ranked_verdicts(), after.ranked_verdicts())

    # then each group keeps its run's rank: causes (error, then warning), symptoms, info
    assert [(c.status, c.verdict.check, c.verdict.subject) for c in changes] == [
        ("gone", "vanishing-gradient", "hidden_0"),
        ("gone", "dead-relu", "hidden_1"),
        ("new", "dead-relu", "hidden_2"),
        ("new", "lr-schedule", "optimizer"),
        ("stayed", "loss-flat", "model"),
    ]
    stayed = changes[-1]
    assert stayed.before == LOSS_FLAT and stayed.after == worse_flat
    assert stayed.severity_change() == "was warning"
    comparison = Comparison.of(before, after)
    assert comparison.headline() == (
        "mixed: vanishing-gradient, dead-relu went away; "
        "2 new verdicts: dead-relu, lr-schedule; 1 stayed: loss-flat")


@pytest.mark.parametrize(
    ("before", "after", "headline"),
    [
        ([VANISHING, LOSS_FLAT], [],
         "fixed: vanishing-gradient, loss-flat went away; 0 new verdicts"),
        ([VANISHING, LOSS_FLAT], [LOSS_FLAT],
         "better: vanishing-gradient went away; 0 new verdicts; 1 stayed: loss-flat"),
        ([], [DEAD_RELU], "worse: 1 new verdict: dead-relu"),
        ([VANISHING], [VANISHING], "no change: the same 1 verdict: vanishing-gradient"),
        ([], [], "no change: no verdicts in either run"),
        ([ADVICE], [], "changed: lr-schedule went away; 0 new verdicts"),
        ([VANISHING, ADVICE], [ADVICE],
         "fixed: vanishing-gradient went away; 0 new verdicts; 1 stayed: lr-schedule"),
    ],
)
def test_the_one_line_outcome(before, after, headline):
    comparison = Comparison.of(Report.from_events([VerdictIssued(v) for v in before]),
                               Report.from_events([VerdictIssued(v) for v in after]))
    assert comparison.headline() == headline


# --- layers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        (1.0, 1200.0, "×1200"),
        (3.5, 0.1, "÷35"),
        (2.0, 2.0, "×1"),
        (1e-6, 0.97, "×9.7e+05"),
        (0.0, 0.5, "from 0"),
        (0.5, 0.0, "to 0"),
        (0.0, 0.0, "×1"),
        (math.nan, 1.0, "nan"),
        (None, 1.0, "–"),
    ],
)
def test_a_change_is_a_factor_either_way(before, after, text):
    from gradscope.compare import change_factor

    assert factor_text(change_factor(before, after)) == text


def test_layers_side_by_side_with_the_biggest_gradient_changes_first_and_marked():
    comparison = compared(broken(), fixed())

    assert [layer.name for layer in comparison.most_changed()] == ["hidden_1", "hidden_0",
                                                                   "hidden_2"]
    assert comparison.most_changed_text() == (
        "gradient changed most: hidden_1 ×5000, hidden_0 ×1200, hidden_2 ×60")
    assert comparison.layer_mismatch() == ""
    text = comparison.text("before.jsonl", "after.jsonl")
    rows = {line.split()[1] if line.split()[0] == "*" else line.split()[0]: line
            for line in text.splitlines() if line.startswith("  ") and "Dense" in line}
    # forward order, the three biggest changes marked, BEFORE, AFTER and the change
    assert list(rows) == ["hidden_0", "hidden_1", "hidden_2", "out"]
    assert rows["hidden_0"].split()[:6] == ["*", "hidden_0", "Dense", "1e-06", "0.0012", "×1200"]
    assert rows["out"].split()[:5] == ["out", "Dense", "1", "0.8", "÷1.2"]


def test_layers_of_different_models_are_matched_by_name_and_the_rest_is_said():
    # given a model that lost two layers and gained one
    after = recording([], {"hidden_0": 0.5, "extra": 0.4, "out": 0.8}, losses=[2.0, 1.5])

    comparison = compared(broken(), after)

    assert comparison.only_before == ["hidden_1", "hidden_2"]
    assert comparison.only_after == ["extra"]
    assert comparison.layer_mismatch() == (
        "2 layers only in BEFORE: hidden_1, hidden_2; 1 only in AFTER: extra")
    # a layer only one run has is shown in place, absent in the other
    assert [layer.name for layer in comparison.layers] == [
        "hidden_0", "hidden_1", "hidden_2", "extra", "out"]
    text = comparison.text("a.jsonl", "b.jsonl")
    assert "2 layers only in BEFORE: hidden_1, hidden_2; 1 only in AFTER: extra" in text
    assert any(line.split()[:4] == ["extra", "Dense", "(absent)", "0.4"]
               for line in text.splitlines())


def test_both_losses_share_one_chart():
    lines = loss_chart(compared(broken(), fixed()), 40, 6)

    assert len(lines) == 6
    assert lines[0].startswith("2.31 ┤") and lines[-1].startswith(" 0.7 ┤")
    # both runs start at 2.3 (one mark for both); the fixed run ends at the bottom
    assert lines[0].startswith("2.31 ┤◉") and lines[-1].rstrip().endswith("●")
    assert sum(line.count("○") for line in lines) == 4


# --- the command ----------------------------------------------------------------------


def test_diff_prints_text_when_stdout_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    before = write(tmp_path / "before.jsonl", broken())
    after = write(tmp_path / "after.jsonl", fixed())
    monkeypatch.setattr(DiffApp, "run", lambda self: pytest.fail("the app opened"))

    assert main(["diff", before, after]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "fixed: vanishing-gradient, loss-flat went away; 0 new verdicts"
    assert lines[1] == f"BEFORE  {before}: broken.py, mlp (1,000 params), probe-only, exit 1"
    assert lines[2] == f"AFTER   {after}: fixed.py, mlp (1,000 params), probe-only, exit 0"
    assert "Went away: 2" in lines and "New: none" in lines and "Stayed: none" in lines
    assert "  ERROR   vanishing-gradient (hidden_0): the gradient reaching the first layer" in out
    assert "  gradient changed most: hidden_1 ×5000, hidden_0 ×1200, hidden_2 ×60" in lines


def test_diff_opens_the_app_in_a_terminal_unless_told_text(tmp_path, monkeypatch, capsys):
    before = write(tmp_path / "before.jsonl", broken())
    after = write(tmp_path / "after.jsonl", fixed())
    opened: list[DiffApp] = []
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(DiffApp, "run", lambda self: opened.append(self))

    assert main(["diff", before, after]) == 0
    assert len(opened) == 1 and opened[0].comparison.outcome() == "fixed"
    assert capsys.readouterr().out == ""

    assert main(["diff", "--text", before, after]) == 0
    assert len(opened) == 1
    assert capsys.readouterr().out.startswith("fixed: ")


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    good = write(tmp_path / "good.jsonl", fixed())
    missing = str(tmp_path / "nope.jsonl")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello\n")

    assert main(["diff", missing, good]) == 2
    assert capsys.readouterr().err == f"gradscope: cannot compare '{missing}': no such file\n"
    assert main(["diff", good, str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gradscope: {foreign}:1 is not a gradscope event") and err.count("\n") == 1
    assert main(["diff", good, str(tmp_path)]) == 2
    assert "it is a directory" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["diff", str(empty), good]) == 2
    assert capsys.readouterr().err == (
        f"gradscope: cannot compare '{empty}': it is empty, not a recording\n")
    # a run that crashed before fit() has nothing to compare
    crashed = str(RECORDED / "crash-before-fit.jsonl")
    assert main(["diff", crashed, good]) == 2
    assert capsys.readouterr().err.startswith(
        f"gradscope: cannot compare '{crashed}': the script raised before fit()")
    assert main(["diff", good]) == 2  # argparse: AFTER missing


# --- the UI ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pilot_test
async def test_the_ui_shows_the_headline_verdicts_layers_and_both_losses(size):
    comparison = compared(broken(), fixed())
    app = DiffApp(comparison, "before.jsonl", "after.jsonl")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DiffScreen)

        # the same one line as the text output, at the top
        headline = str(screen.query_one("#diff-headline").render())
        assert headline == comparison.headline()
        text = screen_text(app)
        assert text.splitlines()[0].strip() == comparison.headline()
        assert "− gone   error vanishing-gradient (hidden_0)" in text
        assert "gradient changed most: hidden_1 ×5000" in text
        assert "Loss · ○ BEFORE 2.3 → 2.3 · ● AFTER 2.3 → 0.7" in text
        assert screen.table_names() == ["hidden_0", "hidden_1", "hidden_2", "out"]

        await pilot.press("s")
        assert screen.table_names() == ["hidden_1", "hidden_0", "hidden_2", "out"]
        assert "biggest gradient change first" in screen_text(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, DiffHelpScreen)
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("q")
    assert app.return_code == 0


# --- no TensorFlow --------------------------------------------------------------------


def test_diff_never_imports_tensorflow_and_its_help_not_even_textual(tmp_path):
    before = write(tmp_path / "before.jsonl", broken())
    after = write(tmp_path / "after.jsonl", fixed())
    program = f"""
import asyncio, contextlib, io, sys
from gradscope.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["diff", "--help"]) == 0
heavy = [m for m in ("tensorflow", "keras", "textual") if m in sys.modules]
assert heavy == [], heavy
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["diff", "--text", {before!r}, {after!r}]) == 0
assert "textual" not in sys.modules, "diff --text must not load Textual"
from gradscope.commands.diff import compare_files
from gradscope.ui.diff_app import DiffApp

async def drive():
    app = DiffApp(compare_files({before!r}, {after!r}), "b", "a")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s", "v", "question_mark", "escape", "q")

asyncio.run(drive())
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("LOADED", loaded)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


# --- a real fix, really run -----------------------------------------------------------


def test_the_fix_of_the_vanishing_gradient_demo_shows_as_fixed(tmp_path):
    # given the demo (10 sigmoid layers) and its fix (ReLU with He initialisation),
    # both recorded now by real runs (side by side: two processes)
    demo_path = ROOT / "scripts" / "demo" / "vanishing-gradient.py"
    demo = demo_path.read_text()
    fix = demo.replace('activation="sigmoid"',
                       'activation="relu", kernel_initializer="he_normal"')
    assert fix != demo
    (tmp_path / "fixed.py").write_text(fix)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only", "--seed", "0",
             "--steps", "3", "--budget", "0", "--record", record, script],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for record, script in (("before.jsonl", str(demo_path)), ("after.jsonl", "fixed.py"))
    ]
    outcomes = [(run.communicate(timeout=300)[1], run.returncode) for run in runs]
    assert outcomes[0][1] == 1, outcomes[0][0]  # the demo: an error verdict
    assert outcomes[1][1] == 0, outcomes[1][0]  # its fix: none

    # when the two are compared
    done = subprocess.run(
        [sys.executable, "-m", "gradscope", "diff", "--text", "before.jsonl", "after.jsonl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)

    # then the vanishing gradient went away, and the first layers' gradient grew most
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("fixed: vanishing-gradient") and "0 new verdicts" in lines[0]
    start = next(i for i, line in enumerate(lines) if line.startswith("Went away: "))
    assert lines[start + 1].startswith("  ERROR   vanishing-gradient (hidden_0):")
    most = next(line for line in lines if line.startswith("  gradient changed most: "))
    assert most.startswith("  gradient changed most: hidden_0 ×")
    assert "only in" not in done.stdout  # the same layers, matched by name
