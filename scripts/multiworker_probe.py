"""Research harness: what Keras 3 trains under `tf.distribute.MultiWorkerMirroredStrategy`.

Starts two worker processes on 127.0.0.1 (free ports, one `TF_CONFIG` each,
worker 0 is the chief), each running the same tiny Keras training under the
strategy, with a hard timeout; both workers are always stopped (their whole
process group is killed). Prints one line per case: trained or not, each
worker's exit code and the first line of its error.

    python scripts/multiworker_probe.py                     # every case, plain python
    python scripts/multiworker_probe.py --case arrays --case dataset-data
    python scripts/multiworker_probe.py --gradscope --case dataset-data   # under gradscope run --headless
    python scripts/multiworker_probe.py --list

One worker by hand (what the harness starts twice):

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]}, "task": {"type": "worker", "index": 0}}' \\
        python scripts/multiworker_probe.py --worker dataset-data

A worker prints `MULTIWORKER-RESULT {json}` (its task, the loss of each epoch)
when its fit returns, and exits 0; an exception is printed and the worker exits 1.

What Keras 3.15 (TF 2.21, CPU) does here, two workers, plain python:

- every fit() fails, on both workers, before its first step, whatever the data
  (arrays, with or without steps_per_epoch or jit_compile=False; a tf.data.Dataset
  with auto-shard AUTO, DATA or OFF; experimental_distribute_dataset;
  distribute_datasets_from_function; a PyDataset): `_maybe_symbolic_build`
  (Keras's TensorFlow trainer) calls strategy.reduce("MEAN", batch)
  on the first PerReplica batch in cross-replica context, and TF answers
  "ValueError: Attempt to convert a value (PerReplica:{...}) with an unsupported
  type (<class '...PerReplica'>) to a Tensor." (keras-team/keras#20585);
- past that (train_on_batch, which does not reduce the batch), every step fails:
  `reduce_per_replica` reduces each log with strategy.reduce("MEAN", v, axis=0),
  and a scalar log has no axis 0 ("ValueError: Invalid reduction dimension 0 for
  input with 0 dimensions.");
- it trains only with a train_step that returns its logs with a leading axis
  (shape (1,)) AND train_on_batch (public API: case rank1-logs-train-on-batch), or
  fit() with the private `model._distribute_strategy = None` and the fit inside
  strategy.scope() (rank1-logs-fit-private-unset). Both workers log the same loss.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULT = "MULTIWORKER-RESULT"

# name -> (data form, fit keyword arguments besides the data)
CASES: dict[str, str] = {
    "arrays": "NumPy arrays to fit(x, y, batch_size=16)",
    "arrays-steps": "NumPy arrays, fit(steps_per_epoch=4)",
    "arrays-nojit": "NumPy arrays, compile(jit_compile=False)",
    "dataset-auto": "tf.data.Dataset, auto_shard_policy AUTO (the default)",
    "dataset-data": "tf.data.Dataset, auto_shard_policy DATA",
    "dataset-off": "tf.data.Dataset, auto_shard_policy OFF",
    "dataset-data-steps": "tf.data.Dataset (DATA, repeated), fit(steps_per_epoch=4)",
    "dataset-data-nojit": "tf.data.Dataset (DATA), compile(jit_compile=False)",
    "distributed-dataset": "strategy.experimental_distribute_dataset(ds) (DATA) to fit",
    "dataset-fn": "strategy.distribute_datasets_from_function(fn) to fit, steps_per_epoch=4",
    "pydataset": "a keras.utils.PyDataset",
    "pydataset-steps": "a keras.utils.PyDataset, fit(steps_per_epoch=4)",
    "train-on-batch": "train_on_batch(x, y) on each worker's own half, 4 batches x 2 epochs",
    "fit-private-unset": ("arrays; model._distribute_strategy = None and fit() inside "
                          "strategy.scope() (a private-attribute workaround, for the record)"),
    "kv-exit-code": ("no training: the chief puts a value in the coordination service's "
                     "key-value store 3 s late, the other waits for it (how exit codes can agree)"),
    "rank1-logs-late-chief": ("rank1-logs-train-on-batch, the chief starts training 65 s late "
                              "(as after a chief-only diagnosis): does the other wait, or fail?"),
    "rank1-logs-chief-exits": ("rank1-logs-train-on-batch, then the chief alone exits 5 "
                               "(sys.exit): which code does each worker end with?"),
    "rank1-logs-chief-dies": ("rank1-logs-train-on-batch, then the chief dies (os._exit(9)): "
                              "does the other end, or wait for it?"),
    "rank1-logs-fit": "arrays to fit; the model's train_step returns its logs as shape (1,)",
    "rank1-logs-train-on-batch": "train_on_batch on each worker's half; train_step logs of shape (1,)",
    "rank1-logs-fit-private-unset": "fit-private-unset with the train_step of shape-(1,) logs",
}

SAMPLES = 64
GLOBAL_BATCH = 16
EPOCHS = 2


# --------------------------------------------------------------------------- the worker


def _worker(case: str) -> int:
    """One worker: build a tiny model under the strategy and fit it. Exit 0 when fit returns."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    # Small CPU use: two workers share a small machine (inter-op stays at 2,
    # collectives need a second thread to make progress).
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)

    import keras

    keras.config.disable_traceback_filtering()  # the whole traceback, into Keras and TF
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})

    keras.utils.set_random_seed(0)  # the same initial weights on every run (the chief's are broadcast)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 8)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def dataset(policy: str | None, repeat: bool = False) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(GLOBAL_BATCH)
        if policy is not None:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = getattr(
                tf.data.experimental.AutoShardPolicy, policy)
            ds = ds.with_options(options)
        return ds

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return SAMPLES // GLOBAL_BATCH

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            s = slice(i * GLOBAL_BATCH, (i + 1) * GLOBAL_BATCH)
            return x[s], y[s]

    compile_kwargs: dict = {}
    if case.endswith("-nojit"):
        compile_kwargs["jit_compile"] = False
    class RankOneLogs(keras.Sequential):
        """Keras 3 reduces each log across workers with reduce("MEAN", axis=0), which a
        scalar does not have: this train_step gives every log a leading axis of 1."""

        def train_step(self, data):  # type: ignore[no-untyped-def]
            logs = super().train_step(data)
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}

    with strategy.scope():
        model = (RankOneLogs if case.startswith("rank1-logs") else keras.Sequential)(
            [keras.Input((8,), name="features"),
             keras.layers.Dense(4, activation="relu", name="hidden"),
             keras.layers.Dense(1, activation="sigmoid", name="out")],
            name="multiworker_model",
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                      **compile_kwargs)

    if case == "kv-exit-code":
        from tensorflow.python.eager import context  # the store MWMS's coordination service holds

        if int(task.get("index", 0)) == 0:
            time.sleep(3)
            context.context().set_config_key_value("gradscope/exit_code", "1")
            got = "1"
        else:
            got = context.context().get_config_key_value("gradscope/exit_code", timeout_in_ms=30_000)
        print(RESULT, json.dumps({"case": case, "task": task, "loss": [], "value": got}), flush=True)
        return 0

    fit: dict = {"epochs": EPOCHS, "verbose": 0}
    if case in ("arrays", "arrays-nojit", "rank1-logs-fit"):
        fit.update(x=x, y=y, batch_size=GLOBAL_BATCH)
    elif case == "arrays-steps":
        fit.update(x=x, y=y, batch_size=GLOBAL_BATCH, steps_per_epoch=4)
    elif case == "dataset-auto":
        fit.update(x=dataset(None))
    elif case in ("dataset-data", "dataset-data-nojit"):
        fit.update(x=dataset("DATA"))
    elif case == "dataset-off":
        fit.update(x=dataset("OFF"))
    elif case == "dataset-data-steps":
        fit.update(x=dataset("DATA", repeat=True), steps_per_epoch=4)
    elif case == "distributed-dataset":
        fit.update(x=strategy.experimental_distribute_dataset(dataset("DATA")))
    elif case == "dataset-fn":
        def per_worker(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            per_replica = ctx.get_per_replica_batch_size(GLOBAL_BATCH)
            ds = tf.data.Dataset.from_tensor_slices((x, y)).shard(
                ctx.num_input_pipelines, ctx.input_pipeline_id)
            return ds.repeat().batch(per_replica)

        fit.update(x=strategy.distribute_datasets_from_function(per_worker), steps_per_epoch=4)
    elif case == "pydataset":
        fit.update(x=Batches())
    elif case == "pydataset-steps":
        fit.update(x=Batches(), steps_per_epoch=4)
    elif case in ("train-on-batch", "rank1-logs-train-on-batch", "rank1-logs-late-chief",
                  "rank1-logs-chief-exits", "rank1-logs-chief-dies"):
        # each worker its own half of every global batch (as DATA sharding would give it)
        index = int(task.get("index", 0))
        half = GLOBAL_BATCH // 2
        if case == "rank1-logs-late-chief" and index == 0:
            time.sleep(65)
        losses = []
        for _epoch in range(EPOCHS):
            for i in range(SAMPLES // GLOBAL_BATCH):
                s = slice(i * GLOBAL_BATCH + index * half, i * GLOBAL_BATCH + (index + 1) * half)
                loss = model.train_on_batch(x[s], y[s])
            losses.append(float(loss if not isinstance(loss, list) else loss[0]))
        print(RESULT, json.dumps({"case": case, "task": task, "loss": losses}), flush=True)
        if index == 0 and case == "rank1-logs-chief-exits":
            return 5
        if index == 0 and case == "rank1-logs-chief-dies":
            os._exit(9)  # as if killed: no clean-up, no exit handler
        return 0
    elif case in ("fit-private-unset", "rank1-logs-fit-private-unset"):
        # Keras 3's fit() reduces the first PerReplica batch across workers in
        # _maybe_symbolic_build, only when the model holds its strategy.
        model._distribute_strategy = None
        with strategy.scope():
            history = model.fit(x=x, y=y, batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0)
        losses = [float(v) for v in history.history.get("loss", [])]
        print(RESULT, json.dumps({"case": case, "task": task, "loss": losses}), flush=True)
        return 0
    else:
        print(f"unknown case {case!r}; --list lists them", file=sys.stderr)
        return 2

    history = model.fit(**fit)
    losses = [float(v) for v in history.history.get("loss", [])]
    print(RESULT, json.dumps({"case": case, "task": task, "loss": losses}), flush=True)
    return 0


# --------------------------------------------------------------------------- the harness


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (bound to port 0, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def loopback_available() -> bool:
    """Whether this machine lets us bind and connect a TCP socket on 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=5):
                pass
        return True
    except OSError:
        return False


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    })


@dataclass
class WorkerOutcome:
    index: int
    returncode: int | None  # None: killed at the timeout (it hung)
    stdout: str
    stderr: str
    result: dict | None = None
    files: list[str] = field(default_factory=list)  # files it wrote in its own directory

    @property
    def error(self) -> str:
        """The exception the worker died of (`SomeError: ...`), or ''.

        A message over several lines (a PerReplica printed in full) keeps its
        first and last lines.
        """
        # (gradscope's own lines under the traceback are not the error)
        lines = [ln.strip() for ln in self.stderr.splitlines()
                 if ln.strip() and not ln.startswith("gradscope:")]
        for at in range(len(lines) - 1, -1, -1):
            head = lines[at].split(":", 1)[0]
            if head.endswith(("Error", "Exception", "Exit")) and " " not in head:
                if at < len(lines) - 1 and not lines[-1].startswith(("W0000", "I0000", "E0000")):
                    return f"{lines[at]} ... {lines[-1]}"
                return lines[at]
        return ""


@dataclass
class CaseOutcome:
    case: str
    workers: list[WorkerOutcome]
    seconds: float
    hung: bool

    @property
    def trained(self) -> bool:
        return not self.hung and all(w.returncode == 0 and w.result for w in self.workers)

    def line(self) -> str:
        codes = ",".join("hung" if w.returncode is None else str(w.returncode) for w in self.workers)
        status = ("TRAINS" if any(w.result and w.result["loss"] for w in self.workers) else "RAN") \
            if self.trained else ("HANGS" if self.hung else "FAILS")
        errors = sorted({w.error for w in self.workers if w.error})
        error = (" | " + " || ".join(e if len(e) < 400 else e[:200] + " ... " + e[-190:] for e in errors)) if errors else ""
        return f"{self.case:<22} {status:<6} rc={codes:<9} {self.seconds:5.1f}s{error}"


def run_case(case: str, *, timeout: float = 120.0, gradscope_args: list[str] | None = None,
             workdir: Path | None = None, grace: float = 20.0,
             gradscope_on: tuple[int, ...] = (0, 1)) -> CaseOutcome:
    """Run `case` on two workers; kill both at `timeout` seconds, or `grace` seconds
    after the first one failed (its peer is then stuck in a collective).

    With `gradscope_args` (e.g. ["--headless"]) each worker runs
    `python -m gradscope run ARGS scripts/multiworker_probe.py --worker CASE`, in its
    own directory under `workdir`, so what each one writes can be told apart;
    `gradscope_on` picks the workers started so (the others run plain python: with
    (0,) only the chief runs gradscope, as a chief-only diagnosis would).
    """
    ports = free_ports(2)
    script = str(Path(__file__).resolve())
    root = Path(workdir or tempfile.mkdtemp(prefix="multiworker-"))
    procs: list[subprocess.Popen] = []
    dirs = []
    start = time.monotonic()
    try:
        for index in range(2):
            env = dict(os.environ, TF_CONFIG=tf_config(ports, index), TF_CPP_MIN_LOG_LEVEL="3",
                       PYTHONUNBUFFERED="1")
            if gradscope_args is None or index not in gradscope_on:
                cmd = [sys.executable, script, "--worker", case]
            else:
                cmd = [sys.executable, "-m", "gradscope", "run", *gradscope_args, script,
                       "--worker", case]
                # gradscope is imported from the repository the script lives in
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(Path(script).parents[1]), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            wd = root / f"worker{index}"
            wd.mkdir(parents=True, exist_ok=True)
            dirs.append(wd)
            procs.append(subprocess.Popen(
                cmd, cwd=wd, env=env, stdin=subprocess.DEVNULL,
                stdout=open(wd / "stdout.txt", "w"), stderr=open(wd / "stderr.txt", "w"),
                start_new_session=True))
        deadline = start + timeout
        first_failure: float | None = None
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if all(c is not None for c in codes):
                break
            if first_failure is None and any(c not in (None, 0) for c in codes):
                first_failure = time.monotonic()
                deadline = min(deadline, first_failure + grace)
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)
    seconds = time.monotonic() - start
    workers = []
    hung = False
    for index, (p, wd) in enumerate(zip(procs, dirs, strict=True)):
        rc = p.returncode
        # a negative code is our SIGKILL at the deadline: the worker hung
        if rc is not None and rc < 0:
            rc = None
        hung = hung or rc is None
        out = (wd / "stdout.txt").read_text(errors="replace")
        err = (wd / "stderr.txt").read_text(errors="replace")
        result = None
        for line in out.splitlines():
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT):])
        files = sorted(str(f.relative_to(wd)) for f in wd.rglob("*")
                       if f.is_file() and f.name not in ("stdout.txt", "stderr.txt"))
        workers.append(WorkerOutcome(index, rc, out, err, result, files))
    return CaseOutcome(case, workers, seconds, hung)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", metavar="CASE", help="be one worker (reads TF_CONFIG)")
    parser.add_argument("--case", action="append", help="a case to run (repeatable; default all)")
    parser.add_argument("--list", action="store_true", help="list the cases")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--gradscope", action="store_true",
                        help="run each worker under `python -m gradscope run --headless`")
    parser.add_argument("--gradscope-arg", action="append", default=[],
                        help="extra argument for gradscope run (repeatable)")
    parser.add_argument("--gradscope-on", metavar="I", type=int, action="append",
                        help="with --gradscope: only worker I runs gradscope (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="keep each worker's directory under DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each worker's output")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    if args.list:
        for name, text in CASES.items():
            print(f"{name:<22} {text}")
        return 0
    if not loopback_available():
        print("cannot bind and connect a TCP socket on 127.0.0.1: no multi-worker run here")
        return 2
    gs = (["--headless", *args.gradscope_arg]) if args.gradscope else None
    failed = 0
    for case in args.case or list(CASES):
        workdir = Path(args.keep) / case if args.keep else None
        outcome = run_case(case, timeout=args.timeout, gradscope_args=gs, workdir=workdir,
                           gradscope_on=tuple(args.gradscope_on or (0, 1)))
        print(outcome.line(), flush=True)
        for w in outcome.workers:
            if w.result:
                print(f"    worker {w.index}: loss {w.result['loss']}")
            if w.files:
                print(f"    worker {w.index} wrote: {', '.join(w.files)}")
            if args.verbose:
                print(f"    --- worker {w.index} stdout\n{w.stdout}\n    --- worker {w.index} stderr\n"
                      f"{w.stderr[-4000:]}")
        failed += not outcome.trained
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
