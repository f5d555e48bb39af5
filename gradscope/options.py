"""Options of `gradscope run`, parsed once by the CLI and read by every part."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunOptions:
    script: str
    script_args: list[str] = field(default_factory=list)
    headless: bool = True
    csv: str | None = None  # "-" = stdout (the default in headless mode)
    verdicts: str | None = None
    json: str | None = None
    record: str | None = None
    steps: int = 5
    probe_only: bool = False
    seed: int | None = None
    force: bool = False
    # A safety cap (seconds) on the experiments, which are sized in steps: it
    # only stops an experiment on a model far slower than its nominal cost.
    budget: float = 60.0
    # Scales the experiments' nominal time (engine/experiments.NOMINAL_SECONDS),
    # so their step counts: the test suite runs them short to stay fast. Not a
    # command-line option; deterministic like the default.
    experiment_scale: float = 1.0
    # The watch of the user's own training (engine/watch.py): every N-th step
    # (None: the default cadence), or not at all.
    watch_every: int | None = None
    watch: bool = True
    # --tensorboard DIR: TensorBoard event files (sinks/tensorboard.py).
    tensorboard: str | None = None
    # Live mode's child: events go as JSON Lines to this file descriptor (the
    # parent's UI reads them); no CSV on stdout and no stderr summary then.
    events_fd: int | None = None
