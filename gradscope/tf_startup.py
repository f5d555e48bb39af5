"""TensorFlow's start-up lines (oneDNN, CUDA stubs, CPU features, absl's
notice), kept off the user's stderr and in the record instead.

Importing TensorFlow prints half a dozen lines from C++ straight to file
descriptor 2, before anything of the user's script runs; in headless mode they
would sit on top of the summary, twice. They are captured while gradscope
imports Keras (a temporary file, not a pipe: nothing can block), then every
line TensorFlow's start-up is known to print becomes an `OutputLine` event (the
record and the UI's log keep it), and any other line goes on to stderr as it
came. Nothing of the user's script runs while the capture is on.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable

from gradscope.events import Event, OutputLine
from gradscope.output_noise import tf_noise


def import_keras_quietly(emit: Callable[[Event], None]) -> None:
    """Import Keras (and so TensorFlow) with its start-up lines sent to `emit`.

    An import error is left for the caller's own `import keras` to report.
    """
    if "keras" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 to redirect
        _import_keras()
        return
    with tempfile.TemporaryFile() as capture:
        try:
            os.dup2(capture.fileno(), 2)
            try:
                _import_keras()
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", errors="replace")
    passed = []
    for line in text.splitlines():
        if tf_noise(line):
            emit(OutputLine("stderr", line))
        else:
            passed.append(line)
    if passed:
        sys.stderr.write("\n".join(passed) + "\n")
        sys.stderr.flush()


def _import_keras() -> None:
    try:
        import keras  # noqa: F401
        import tensorflow as tf

        # Listing the devices makes TensorFlow probe CUDA now (its "failed call
        # to cuInit" line on a machine without a GPU) rather than in the
        # middle of the user's output. It leaves devices unconfigured: a
        # script may still set memory growth or logical devices afterwards.
        tf.config.list_physical_devices()
    except Exception:  # noqa: BLE001 - intercept_fit imports it again and says why
        pass
