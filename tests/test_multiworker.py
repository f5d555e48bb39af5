"""MultiWorkerMirroredStrategy: two real worker processes on 127.0.0.1.

Each run starts two workers (scripts/multiworker_probe.py, free ports, one
TF_CONFIG each, worker 0 the chief) and kills both at its timeout, so no test
can hang the suite. What Keras 3.15 does there (the table in the harness's
docstring and docs/architecture.md):

- every `fit()` fails inside Keras before its first step, on every worker, the
  same way (`_maybe_symbolic_build` reduces the first PerReplica batch across
  workers: "Attempt to convert a value (PerReplica:...) with an unsupported type");
- `train_on_batch` trains only when the model's `train_step` returns its logs
  with a leading axis (Keras reduces each log with `reduce("MEAN", axis=0)`).

`gradscope run` on every worker: the chief reports, the others write nothing,
all exit with the chief's code (gradscope/workers.py). The two-worker tests are
skipped where the machine cannot bind and connect a TCP socket on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "scripts" / "multiworker_probe.py"
TIMEOUT = 120.0  # seconds per two-worker run, both workers killed after it


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("multiworker_probe", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


mw = _harness()

pytestmark = pytest.mark.timeout(int(TIMEOUT) + 60)
# The tests that start two worker processes.
needs_loopback = pytest.mark.skipif(not mw.loopback_available(),
                                    reason="cannot bind TCP ports on 127.0.0.1")


def _gradscope_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("gradscope:")]


def _csv_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("phase,", "probe,", "train,"))]


@pytest.mark.parametrize(("tf_config", "task", "chief", "peers"), [
    (None, "", True, ()),  # no cluster: an ordinary run
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}', "", True, ()),
    ("not json", "", True, ()),  # TensorFlow says what is wrong with it
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 0}}',
     "worker:0", True, ("worker:1",)),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 1}}',
     "worker:1", False, ("worker:0",)),
    ('{"cluster": {"chief": ["h:0"], "worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}',
     "worker:0", False, ("chief:0",)),
    ('{"cluster": {"chief": ["h:0"], "worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}',
     "chief:0", True, ("worker:0",)),
])
def test_role_comes_from_tf_config(tf_config: str | None, task: str, chief: bool,
                                   peers: tuple[str, ...]) -> None:
    from gradscope import workers

    got = workers.role({} if tf_config is None else {"TF_CONFIG": tf_config})
    assert (got.task, got.chief, got.peers) == (task, chief, peers)


@pytest.fixture(scope="module")
def plain_rank1(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The one training Keras 3.15 does on two workers, under plain python."""
    return mw.run_case("rank1-logs-train-on-batch", timeout=TIMEOUT,
                       workdir=tmp_path_factory.mktemp("plain"))


@needs_loopback
def test_train_on_batch_with_rank_one_logs_trains_on_two_workers(plain_rank1) -> None:  # type: ignore[no-untyped-def]
    outcome = plain_rank1
    assert not outcome.hung, outcome.line()
    assert outcome.trained, outcome.line()
    first, second = (w.result["loss"] for w in outcome.workers)
    assert len(first) == mw.EPOCHS and all(math.isfinite(v) for v in first)
    # one model: the gradients are all-reduced, both workers log the same loss
    assert first == pytest.approx(second, rel=1e-6)
    assert first[-1] < first[0]  # it learns


@pytest.fixture(scope="module")
def fit_under_gradscope(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`gradscope run --headless` on both workers, a plain fit() on a tf.data.Dataset."""
    return mw.run_case("dataset-data", timeout=TIMEOUT, gradscope_args=["--headless"],
                       workdir=tmp_path_factory.mktemp("fit"))


@needs_loopback
def test_fit_fails_inside_keras_on_every_worker_and_nothing_hangs(fit_under_gradscope) -> None:  # type: ignore[no-untyped-def]
    outcome = fit_under_gradscope
    assert not outcome.hung, outcome.line()
    # exit code 3 (the script raised) on both, with Keras's own error
    assert [w.returncode for w in outcome.workers] == [3, 3], outcome.line()
    for w in outcome.workers:
        assert "PerReplica" in w.error and "unsupported type" in w.error, w.error


@needs_loopback
def test_gradscope_says_in_one_line_that_keras_cannot_fit_multiworker(fit_under_gradscope) -> None:  # type: ignore[no-untyped-def]
    chief, other = fit_under_gradscope.workers
    said = _gradscope_lines(chief.stderr)
    # one line, nothing else of ours (no verdicts on a training that cannot start)
    assert len(said) == 1 and "MultiWorkerMirroredStrategy" in said[0], said
    assert "keras-team/keras#20585" in said[0] and "cannot fit()" in said[0]
    # under the traceback, where the user looks
    assert chief.stderr.rstrip().splitlines()[-1] == said[0]
    assert not _gradscope_lines(other.stderr) and not _csv_lines(other.stdout)
    assert not chief.files and not other.files
    assert chief.returncode == other.returncode == 3


@needs_loopback
def test_gradscope_on_every_worker_chief_reports_others_silent(plain_rank1, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outcome = mw.run_case("rank1-logs-train-on-batch", timeout=TIMEOUT,
                          gradscope_args=["--headless", "--json", "report.json"], workdir=tmp_path)
    assert not outcome.hung, outcome.line()
    chief, other = outcome.workers
    assert chief.returncode == other.returncode == 0, outcome.line()
    assert outcome.trained, outcome.line()
    # the chief reports: its summary, its file (a model's own train_step under a
    # strategy gets the data and model checks, no probe rows: custom-train-step)
    assert _gradscope_lines(chief.stderr) and chief.files == ["report.json"]
    assert "custom-train-step" in chief.stderr
    # the other is silent and writes no file
    assert not _csv_lines(other.stdout) and not _gradscope_lines(other.stderr)
    assert not other.files
    # the diagnosis leaves the training as it is under python, on both workers
    assert [w.result["loss"] for w in outcome.workers] == \
        [w.result["loss"] for w in plain_rank1.workers]


@needs_loopback
def test_every_worker_exits_with_the_chiefs_code(tmp_path: Path) -> None:
    """The chief alone exits 5 after training (python: 5 and 0): every worker exits 5."""
    outcome = mw.run_case("rank1-logs-chief-exits", timeout=TIMEOUT,
                          gradscope_args=["--headless"], workdir=tmp_path)
    assert not outcome.hung, outcome.line()
    assert [w.returncode for w in outcome.workers] == [5, 5], outcome.line()


@needs_loopback
def test_a_dead_chief_is_not_waited_for(tmp_path: Path) -> None:
    """The chief dies after training (os._exit(9)): the other ends with its own
    code as under python, at once (the harness kills it 20 s after the chief died)."""
    outcome = mw.run_case("rank1-logs-chief-dies", timeout=TIMEOUT,
                          gradscope_args=["--headless"], workdir=tmp_path)
    assert not outcome.hung, outcome.line()
    assert [w.returncode for w in outcome.workers] == [9, 0], outcome.line()
    assert not _gradscope_lines(outcome.workers[1].stderr)


@needs_loopback
@pytest.mark.slow
def test_training_inside_the_strategy_scope_is_not_diagnosed(tmp_path: Path) -> None:
    """fit() inside strategy.scope() (after the private `model._distribute_strategy = None`,
    the other way Keras fits there): the probe's clone would be the strategy's and
    all-reduce alone (measured: both workers failed). The chief says so; both train."""
    outcome = mw.run_case("rank1-logs-fit-private-unset", timeout=TIMEOUT,
                          gradscope_args=["--headless"], workdir=tmp_path)
    assert outcome.trained, outcome.line()
    chief, other = outcome.workers
    said = _gradscope_lines(chief.stderr)
    assert len(said) == 1 and "not diagnosed" in said[0] and "strategy.scope()" in said[0], said
    assert not _gradscope_lines(other.stderr)
