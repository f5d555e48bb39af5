"""TensorFlow's start-up chatter in a run's output: which lines are noise.

TensorFlow (through absl) writes a dozen lines on stderr as it loads: CPU
instruction notices, oneDNN and cuDNN registration, "All log messages before
absl::InitializeLog()...". They say nothing about the user's model, so the
log screen folds them into one line and live mode leaves them out of the
stderr it repeats after the UI closes; `tf_startup.py` keeps them off stderr
while gradscope imports Keras; the record keeps them. No TensorFlow,
no Textual here: the UI and commands/live.py both use it.
"""

from __future__ import annotations

import re

# absl's prefix: severity letter, MMDD (0000 before InitializeLog), time:
#   I0000 00:00:1712345678.123456   12345 cpu_feature_guard.cc:210] This TensorFlow binary...
#   W0412 10:11:12.345678 ...
_ABSL = re.compile(r"[IWEF]\d{4} +\d\d:\d\d:\d")
# TensorFlow's own logging before absl (TF 2.15 and older):
#   2024-01-02 10:11:12.345678: I tensorflow/core/util/port.cc:113] oneDNN custom operations...
_TF_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] (tensorflow|external|xla)/")
_NOTICES = (
    "WARNING: All log messages before absl::InitializeLog()",
    "To enable the following instructions:",
)


def tf_noise(line: str) -> bool:
    """True for a line TensorFlow writes as it starts (absl log lines, its notices)."""
    return bool(_ABSL.match(line) or _TF_LOG.match(line)) or line.startswith(_NOTICES)

