"""Another Keras backend than TensorFlow: one line naming it and where it was set,
exit 2 (docs/cli.md), never a traceback; a RuntimeError from the Python API.

The cheap checks run before TensorFlow is imported: those tests take a fraction
of a second. Only the script that chooses its backend at run time needs Keras
loaded to be caught.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradscope import backend_check

NEEDS = "gradscope needs the TensorFlow backend (KERAS_BACKEND=tensorflow)"

TRAIN = """\
import numpy as np
import keras

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, name="dense")])
model.compile("sgd", "mse")
model.fit(np.random.rand(8, 3), np.random.rand(8, 1), epochs=1, verbose=0)
print("trained on", keras.backend.backend())
"""

# The script chooses the backend itself, before `import keras`, literally.
SETS_IT = 'import os\nos.environ["KERAS_BACKEND"] = "jax"\n' + TRAIN

# ...or at run time: no literal to read, so it is caught at its first fit.
SETS_IT_AT_RUN_TIME = """\
import os
import sys

def use(backend):
    os.environ["KERAS_BACKEND"] = backend

use(sys.argv[1])
""" + TRAIN

# Chooses TensorFlow itself and never trains: exit 4 once Keras loaded on TensorFlow.
CHOOSES_TENSORFLOW = """\
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
print("backend", keras.backend.backend())
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a run: no KERAS_BACKEND, and a KERAS_HOME of its own (so
    the machine's ~/.keras/keras.json plays no part)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    home = tmp_path / "keras_home"
    home.mkdir(exist_ok=True)
    env.update(KERAS_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def _run(tmp_path: Path, source: str, env: dict[str, str], *args: str,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "gradscope", "run", "--headless", "--budget", "0", str(script), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )


def _refused(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"gradscope: {line}\n"
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


@pytest.mark.parametrize("backend", ["jax", "torch", "numpy"])
def test_keras_backend_in_the_environment(tmp_path: Path, backend: str) -> None:
    result = _run(tmp_path, TRAIN, _env(tmp_path, KERAS_BACKEND=backend))
    _refused(result, f"Keras is set to the '{backend}' backend by "
                     f"KERAS_BACKEND={backend} in the environment; {NEEDS}")


def test_the_check_imports_neither_keras_nor_tensorflow(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    probe = (
        "import sys\n"
        "from gradscope.cli import main\n"
        f"code = main(['run', '--headless', {str(script)!r}])\n"
        "print(code, 'keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path, KERAS_BACKEND="jax"),
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr


def test_backend_in_keras_json(tmp_path: Path) -> None:
    env = _env(tmp_path)
    config = Path(env["KERAS_HOME"]) / "keras.json"
    config.write_text(json.dumps({"floatx": "float32", "backend": "jax"}))
    result = _run(tmp_path, TRAIN, env)
    _refused(result, f"Keras is set to the 'jax' backend by \"backend\": \"jax\" in {config}; {NEEDS}")


def test_the_script_sets_the_variable_itself(tmp_path: Path) -> None:
    result = _run(tmp_path, SETS_IT, _env(tmp_path))
    _refused(result, "Keras is set to the 'jax' backend by "
                     f"train.py:2 (os.environ[\"KERAS_BACKEND\"] = \"jax\"); {NEEDS}")


def test_the_script_sets_it_at_run_time(tmp_path: Path) -> None:
    # Keras is loaded (on TensorFlow) before the script runs: without the check
    # the script would train on TensorFlow while asking for JAX.
    result = _run(tmp_path, SETS_IT_AT_RUN_TIME, _env(tmp_path), "jax")
    _refused(result, "the script set KERAS_BACKEND=jax while it ran, but gradscope had loaded "
                     "Keras on TensorFlow before it: it would train on another backend than it "
                     f"asked for; {NEEDS}")


def test_the_script_switches_with_set_backend_at_run_time(tmp_path: Path) -> None:
    # keras.config.set_backend re-imports Keras (here it fails: no jax): not the
    # script's ModuleNotFoundError traceback, the one line.
    source = "import sys\nimport keras\n\nkeras.config.set_backend(sys.argv[1])\n" + TRAIN
    result = _run(tmp_path, source, _env(tmp_path), "jax")
    assert result.returncode == 2, result.stderr
    # (where jax is installed the script trains on it, unseen: Keras's warning comes first)
    assert result.stderr.endswith(
        "gradscope: the script switched Keras to the 'jax' backend while it ran "
        f"(keras.config.set_backend), out of gradscope's sight; {NEEDS}\n")
    assert "Traceback" not in result.stderr + result.stdout


def test_a_script_choosing_tensorflow_itself_gets_it(tmp_path: Path) -> None:
    # As under python: the script's own choice wins over the environment's.
    result = _run(tmp_path, CHOOSES_TENSORFLOW, _env(tmp_path, KERAS_BACKEND="jax"))
    assert result.returncode == 4, result.stderr
    assert result.stdout == "backend tensorflow\n"


def test_python_api_raises_one_runtime_error(tmp_path: Path) -> None:
    probe = """\
import sys
import gradscope
for name, call in [("diagnose", lambda: gradscope.diagnose(None)), ("Callback", lambda: gradscope.Callback())]:
    try:
        call()
    except RuntimeError as error:
        print(name, type(error).__name__, error)
print("keras" in sys.modules, "tensorflow" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path, KERAS_BACKEND="torch"),
                            capture_output=True, text=True, timeout=60)
    line = f"Keras is set to the 'torch' backend by KERAS_BACKEND=torch in the environment; {NEEDS}"
    assert result.stdout.splitlines() == [
        f"diagnose BackendError {line}",
        f"Callback BackendError {line}",
        "False False",
    ], result.stderr


# -- reading the script's own choice (no process, no Keras) -------------------

@pytest.mark.parametrize(("source", "environment", "expected"), [
    ('import os\nos.environ["KERAS_BACKEND"] = "torch"\nimport keras\n', None, ("torch", 2)),
    ('from os import environ\nenviron["KERAS_BACKEND"] = "jax"\nimport keras\n', None, ("jax", 2)),
    ('import os\nos.environ.setdefault("KERAS_BACKEND", "jax")\nimport keras\n', None, ("jax", 2)),
    # setdefault keeps a value the environment has
    ('import os\nos.environ.setdefault("KERAS_BACKEND", "jax")\nimport keras\n', "tensorflow", None),
    ('import os\nos.environ.update(KERAS_BACKEND="jax")\nimport keras\n', None, ("jax", 2)),
    ('import os\nos.environ.update({"KERAS_BACKEND": "jax"})\nimport keras\n', None, ("jax", 2)),
    # the last choice before Keras is imported is the one
    ('import os\nos.environ["KERAS_BACKEND"] = "jax"\nos.environ["KERAS_BACKEND"] = "tensorflow"\n'
     'import keras\n', None, ("tensorflow", 3)),
    # set after Keras is imported: no effect under python either
    ('import os\nimport keras\nos.environ["KERAS_BACKEND"] = "jax"\n', None, None),
    ('import tensorflow as tf\nimport os\nos.environ["KERAS_BACKEND"] = "jax"\n', None, None),
    ('import keras\nkeras.config.set_backend("jax")\n', None, ("jax", 2)),
    ('import tensorly\ntensorly.set_backend("numpy")\nimport keras\n', None, None),
    ('import os\nif __name__ == "__main__":\n    os.environ["KERAS_BACKEND"] = "jax"\n    import keras\n',
     None, ("jax", 3)),
    # inside a function, or computed: left to the run-time check
    ('import os\ndef f():\n    os.environ["KERAS_BACKEND"] = "jax"\nf()\nimport keras\n', None, None),
    ('import os, sys\nos.environ["KERAS_BACKEND"] = sys.argv[1]\nimport keras\n', None, None),
    ('import os\nos.environ["KERAS_BACKEND"] = ""\nimport keras\n', None, None),
])
def test_script_backend(monkeypatch: pytest.MonkeyPatch, source: str, environment: str | None,
                        expected: tuple[str, int] | None) -> None:
    if environment is None:
        monkeypatch.delenv("KERAS_BACKEND", raising=False)
    else:
        monkeypatch.setenv("KERAS_BACKEND", environment)
    found = backend_check.script_backend(source, "/somewhere/train.py")
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert (found.name, found.where.split(" ")[0]) == (expected[0], f"train.py:{expected[1]}")


def test_configured_backend_reads_as_keras_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert backend_check.configured_backend({"KERAS_HOME": str(home)}).name == "tensorflow"
    (home / "keras.json").write_text('{"backend": "torch"}')
    assert backend_check.configured_backend({"KERAS_HOME": str(home)}).name == "torch"
    # an empty variable is ignored, a set one wins over the file
    assert backend_check.configured_backend({"KERAS_HOME": str(home), "KERAS_BACKEND": ""}).name == "torch"
    assert backend_check.configured_backend(
        {"KERAS_HOME": str(home), "KERAS_BACKEND": "tensorflow"}).name == "tensorflow"
    # a file Keras cannot parse is ignored by Keras too
    (home / "keras.json").write_text("{not json")
    assert backend_check.configured_backend({"KERAS_HOME": str(home)}).name == "tensorflow"
