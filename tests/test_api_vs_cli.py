"""One engine behind both front ends: a demo script's first fit() diagnosed by
`gradscope run --probe-only --seed 0` and by `gradscope.diagnose(model,
**the same fit arguments, seed=0)` gives the same verdicts (check, severity,
subject), in the same order; so does `gradscope.Callback` at the start of
the fit, on three of them (CALLBACK_DEMOS).

The default run takes a handful of demos chosen to cover the kinds of data
(arrays, validation_split, tf.data, a generator, a PyDataset) and of model
(Sequential, functional with two outputs, subclassed, an own train_step), a
verdict that comes from the experiments and a healthy script. `--runslow`
adds every other script of scripts/demo/.

Each way runs the script in its own Python process; the two processes of a
demo run side by side, so both see the same load on the machine (the engine
sizes its work in steps, not seconds: load must not change a verdict).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "scripts" / "demo"
CORPUS = sorted(p.stem for p in DEMO_DIR.glob("*.py"))

# The default set: one demo per kind of data and of model, and per kind of verdict.
DEFAULT = [
    "lr-too-high",  # Sequential, arrays + validation_data, argparse; the verdict comes from the lr sweep
    "healthy_tfdata",  # tf.data train and validation datasets
    "repeated-batch",  # a Python generator (read from, so both ways must read alike)
    "healthy_pydataset",  # keras.utils.PyDataset
    "healthy_multi_output",  # functional model with two heads (dicts of losses and targets)
    "zero-gradient--disconnected",  # subclassed model, a list of two inputs, validation_split
    "custom-train-step",  # subclassed model with its own train_step (an info verdict), validation_split
]

# Demos that cannot be compared, with the reason. None at present: every demo's
# first training call is a fit() (`diagnose` takes no train_on_batch), and
# `diagnose` takes every argument of fit().
NOT_COMPARABLE: dict[str, str] = {}

# Runs a script as `python SCRIPT` would (its folder first on sys.path, argv[0]
# the script), seeded as `--seed 0` seeds a script, with its first fit()
# replaced by gradscope.diagnose on the same arguments. A first train_on_batch
# (which `gradscope run` would diagnose, and diagnose() does not take) is said.
VIA_API = textwrap.dedent("""
    import inspect, json, os, runpy, sys
    import keras
    import gradscope

    script = sys.argv[1]
    original_fit = keras.Model.fit
    original_train_on_batch = keras.Model.train_on_batch

    def fit(self, *args, **kwargs):
        given = dict(inspect.signature(original_fit).bind(self, *args, **kwargs).arguments)
        given.pop("self")
        report = gradscope.diagnose(self, seed=0, **given)
        verdicts = [[v.check, v.severity, v.subject, v.message] for v in report.verdicts]
        print("VERDICTS " + json.dumps(verdicts), flush=True)
        raise SystemExit(0)

    def train_on_batch(self, *args, **kwargs):
        print("FIRST-CALL train_on_batch", flush=True)
        raise SystemExit(0)

    keras.Model.fit = fit
    keras.Model.train_on_batch = train_on_batch
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    keras.utils.set_random_seed(0)
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")
    print("NO-FIT", flush=True)
""")

# The same, with a gradscope.Callback added to the script's first fit(): it
# prints the verdicts of its diagnosis at the start of training, then ends.
VIA_CALLBACK = textwrap.dedent("""
    import json, os, runpy, sys
    import keras
    from gradscope.callback import Callback

    script = sys.argv[1]
    original_fit = keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        callback = Callback(show=False, seed=0, watch=False)
        diagnose = callback._diagnose

        def diagnosed(call):
            diagnose(call)
            verdicts = [[v.check, v.severity, v.subject, v.message] for v in callback.report.verdicts]
            print("VERDICTS " + json.dumps(verdicts), flush=True)
            os._exit(0)

        callback._diagnose = diagnosed
        return original_fit(self, *args, callbacks=[*(callbacks or []), callback], **kwargs)

    keras.Model.fit = fit
    sys.path[0] = os.path.dirname(os.path.realpath(script))
    keras.utils.set_random_seed(0)
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")
    print("NO-FIT", flush=True)
""")

# Demos also diagnosed through gradscope.Callback (a third process beside the
# two): arrays with validation data and the lr sweep, a generator (the callback
# reads only the batches Keras set aside), a subclassed model with validation_split.
CALLBACK_DEMOS = ["lr-too-high", "repeated-batch", "zero-gradient--disconnected"]

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
TIMEOUT = 600


@dataclass
class Verdicts:
    """One way's ranked verdicts: (check, severity, subject) and the messages."""

    ranked: list[tuple[str, str, str]]
    messages: list[str]


def _both_ways(demo: str, tmp_path: Path) -> tuple[Verdicts, Verdicts, Verdicts | None]:
    """The demo diagnosed through the API and through the CLI (and the Callback,
    for CALLBACK_DEMOS), side by side."""
    script = DEMO_DIR / f"{demo}.py"
    runner = tmp_path / "via_api.py"
    runner.write_text(VIA_API)
    verdicts_csv = tmp_path / "verdicts.csv"
    commands = {
        "api": [sys.executable, str(runner), str(script)],
        "cli": [sys.executable, "-m", "gradscope", "run", "--headless", "--probe-only", "--seed", "0",
                "--csv", os.devnull, "--verdicts", str(verdicts_csv), str(script)],
    }
    if demo in CALLBACK_DEMOS:
        (tmp_path / "via_callback.py").write_text(VIA_CALLBACK)
        commands["callback"] = [sys.executable, str(tmp_path / "via_callback.py"), str(script)]
    processes = {}
    outputs = {}
    for way, command in commands.items():
        (tmp_path / way).mkdir()
        out = open(tmp_path / way / "stdout", "w")  # files, not pipes: nothing can block
        err = open(tmp_path / way / "stderr", "w")
        outputs[way] = (out, err)
        processes[way] = subprocess.Popen(command, stdout=out, stderr=err, env=ENV,
                                          cwd=tmp_path / way)
    try:
        codes = {way: p.wait(timeout=TIMEOUT) for way, p in processes.items()}
    finally:
        for p in processes.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for out, err in outputs.values():
            out.close()
            err.close()
    text = {way: ((tmp_path / way / "stdout").read_text(), (tmp_path / way / "stderr").read_text())
            for way in commands}

    api_out, api_err = text["api"]
    assert "FIRST-CALL train_on_batch" not in api_out, "the first training call is not a fit()"
    api = _printed(text["api"], codes["api"])
    assert codes["cli"] in (0, 1), f"exit {codes['cli']}\n{text['cli'][1][-3000:]}"
    with open(verdicts_csv, newline="") as f:
        cli = [[r["check"], r["severity"], r["subject"], r["message"]] for r in csv.DictReader(f)]
    callback = _printed(text["callback"], codes["callback"]) if "callback" in text else None
    return (Verdicts([tuple(v[:3]) for v in api], [v[3] for v in api]),
            Verdicts([tuple(v[:3]) for v in cli], [v[3] for v in cli]),
            None if callback is None else Verdicts([tuple(v[:3]) for v in callback], [v[3] for v in callback]))


def _printed(output: tuple[str, str], code: int) -> list[list[str]]:
    """The VERDICTS line a runner printed."""
    out, err = output
    line = next((x for x in out.splitlines() if x.startswith("VERDICTS ")), None)
    assert line is not None, f"exit {code}\n{out[-2000:]}\n{err[-3000:]}"
    return json.loads(line[len("VERDICTS "):])


def _same_verdicts(demo: str, tmp_path: Path) -> None:
    api, cli, callback = _both_ways(demo, tmp_path)
    ways = [("API", api), ("CLI", cli)] + ([("Callback", callback)] if callback is not None else [])
    shown = "\n".join(f"{name}: {v} {m}" for name, way in ways
                      for v, m in zip(way.ranked, way.messages, strict=True))
    assert api.ranked == cli.ranked, shown
    if callback is not None:
        assert callback.ranked == cli.ranked, shown


def test_the_demo_lists_name_demos() -> None:
    assert len(CORPUS) >= 80
    assert set(DEFAULT) <= set(CORPUS)
    assert set(NOT_COMPARABLE) <= set(CORPUS)
    assert not set(DEFAULT) & set(NOT_COMPARABLE)


@pytest.mark.parametrize("demo", DEFAULT)
def test_the_api_and_the_cli_give_the_same_verdicts(tmp_path: Path, demo: str) -> None:
    _same_verdicts(demo, tmp_path)


REST = [d for d in CORPUS if d not in DEFAULT]


@pytest.mark.slow
@pytest.mark.parametrize("demo", [
    pytest.param(d, marks=pytest.mark.skip(reason=NOT_COMPARABLE[d])) if d in NOT_COMPARABLE else d
    for d in REST
])
def test_the_api_and_the_cli_give_the_same_verdicts_on_the_whole_corpus(tmp_path: Path, demo: str) -> None:
    _same_verdicts(demo, tmp_path)
