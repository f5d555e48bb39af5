"""Several workers (`TF_CONFIG`, MultiWorkerMirroredStrategy): who reports, one exit code for all.

Every worker of a multi-worker training runs the same `gradscope run train.py`.
Only the chief reports (the others would write the same files in the same
places and repeat every line); the others run the script as python would. The
chief's exit code is handed to the others through the key-value store of the
coordination service that `tf.distribute` starts, so every worker exits with
the same code (a cluster manager reads them all).

The role is read from the environment: importing this module imports no
TensorFlow (`gradscope --help` stays instant). The exchange itself only runs in a
process that has imported TensorFlow already, and never waits without a bound.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

# Keys in the coordination service's store (one cluster = one run of each worker).
_CODE_KEY = "gradscope/exit_code"
_DONE_KEY = "gradscope/finished/"  # + task name: this worker no longer needs the chief

# How long a worker waits for the chief's exit code once its own script is over.
# The chief is then finishing its own script (its report, or chief-only work such
# as saving the model); a dead chief fails the wait at once (its service is gone).
CODE_WAIT_S = 300.0
# How long the chief keeps its service up for the others to read its code: they
# end their training with it (collectives run in lockstep), so this is short
# unless one of them is stuck or busy with work of its own.
DONE_WAIT_S = 30.0

# The newest Keras measured whose fit() fails under a multi-worker strategy
# (docs/architecture.md); a newer one is diagnosed as usual (and still told
# apart if its fit fails the same way).
KERAS_FIT_FAILS_UP_TO = (3, 15)
KERAS_ISSUE = "keras-team/keras#20585"


@dataclass(frozen=True)
class Role:
    """This process's place in the cluster of `TF_CONFIG`."""

    task: str  # "worker:1", "chief:0"; "" without a cluster
    chief: bool  # the one that reports
    peers: tuple[str, ...]  # the other training tasks (chief and workers)

    @property
    def multi(self) -> bool:
        """Several training tasks: MultiWorkerMirroredStrategy's cluster."""
        return bool(self.peers)


SINGLE = Role(task="", chief=True, peers=())

# Task types that train in MultiWorkerMirroredStrategy's collectives (an
# "evaluator" or "ps" task does not take part in them).
_TRAINING_JOBS = ("chief", "worker")


def role(environ: Any = None) -> Role:
    """The role `TF_CONFIG` gives this process: the chief is task type `chief`,
    or worker 0 when there is no chief job (as in `tf.distribute`). No
    `TF_CONFIG`, an unreadable one, or a cluster of one training task is an
    ordinary single-process run."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    try:
        config = json.loads(text) if text.strip() else {}
        cluster = config.get("cluster") or {}
        task = config.get("task") or {}
        mine = f"{task.get('type', '')}:{int(task.get('index', 0))}"
        tasks = [f"{job}:{i}" for job in _TRAINING_JOBS for i in range(len(cluster.get(job) or ()))]
    except (ValueError, TypeError, AttributeError):
        return SINGLE  # TensorFlow says what is wrong with it, as under python
    if len(tasks) < 2:
        return SINGLE
    chief = tasks[0]  # "chief:0" when there is a chief job, else "worker:0"
    # (An evaluator beside them is not the chief either: it writes nothing.)
    return Role(task=mine, chief=mine == chief, peers=tuple(t for t in tasks if t != mine))


def keras_cannot_fit(model: Any) -> bool:
    """Whether this Keras fails `fit()` of `model` before its first step under a
    multi-worker strategy: it reduces the first PerReplica batch across workers
    whenever the model holds a strategy (`_maybe_symbolic_build`, Keras's
    TensorFlow trainer; measured up to 3.15)."""
    import keras

    try:
        version = tuple(int(part) for part in keras.version().split(".")[:2])
    except ValueError:
        return False
    # The attribute Keras itself tests there (a private one: nothing public says it).
    return version <= KERAS_FIT_FAILS_UP_TO and getattr(model, "_distribute_strategy", None) is not None


def is_keras_multiworker_fit_error(error: BaseException | None) -> bool:
    """Keras's "PerReplica ... unsupported type" error of a fit under a multi-worker strategy."""
    from gradscope.runner import exception_chain

    if error is None:
        return False
    return any(
        isinstance(e, ValueError) and "PerReplica" in str(e) and "unsupported type" in str(e)
        for e in exception_chain(error)
    )


def cannot_fit_line() -> str:
    """The one line the chief says where Keras cannot fit (the traceback is Keras's own)."""
    import keras

    return (f"Keras {keras.version()} cannot fit() under MultiWorkerMirroredStrategy with several "
            f"workers ({KERAS_ISSUE}): the error above is Keras's, on every worker, before the "
            "first step; a train_on_batch loop whose train_step returns its logs with shape (1,) "
            "trains there")


NOT_DIAGNOSED_IN_SCOPE = (
    "not diagnosed: the script trains inside strategy.scope() of MultiWorkerMirroredStrategy, "
    "where the probe's steps would all-reduce with workers that do not run them; "
    "your training runs as under python")


def in_strategy_scope() -> bool:
    """Whether the script's training call runs inside a strategy's scope (what the
    probe then builds would be the strategy's)."""
    import tensorflow as tf

    return bool(tf.distribute.has_strategy())


def _context() -> Any:
    """TensorFlow's eager context when a multi-worker strategy has started the
    coordination service in this process, else None (then no worker can be reached)."""
    if "tensorflow" not in sys.modules:  # nothing started it; never import TF for this
        return None
    try:
        from tensorflow.python.eager import context

        ctx = context.context()
        return ctx if ctx.coordination_service else None
    except Exception:  # noqa: BLE001 - another TensorFlow: no exchange, own codes
        return None


def share_exit_code(me: Role, code: int) -> None:
    """The chief: put its exit code where the others read it, then keep its
    coordination service (which lives in this process) up until each has said it
    finished, at most DONE_WAIT_S. A worker that died or never ends costs that
    wait once, never more."""
    ctx = _context() if me.multi and me.chief else None
    if ctx is None:
        return
    try:
        ctx.set_config_key_value(_CODE_KEY, str(code))
        for peer in me.peers:
            ctx.get_config_key_value(_DONE_KEY + peer, timeout_in_ms=int(DONE_WAIT_S * 1000))
    except Exception:  # noqa: BLE001 - a peer gone or late: the chief ends all the same
        return


def chief_exit_code(me: Role, own: int) -> int:
    """A worker that is not the chief: the chief's exit code (it waits for the
    chief's end, at most CODE_WAIT_S; a chief that is gone answers at once), or
    `own` when there is none to read."""
    ctx = _context()
    if ctx is None or me.chief:
        return own
    try:
        return int(ctx.get_config_key_value(_CODE_KEY, timeout_in_ms=int(CODE_WAIT_S * 1000)))
    except Exception:  # noqa: BLE001 - chief dead or silent: its own code, as under python
        return own


def say_finished(me: Role) -> None:
    """A worker that is not the chief: tell the chief it needs its service no longer."""
    ctx = _context()
    if ctx is None or me.chief:
        return
    try:
        ctx.set_config_key_value(_DONE_KEY + me.task, "1")
    except Exception:  # noqa: BLE001 - the chief has ended already
        return
