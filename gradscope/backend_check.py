"""gradscope needs Keras's TensorFlow backend: every other backend is one clear line.

A Keras 3 backend is chosen, in Keras's own order of precedence
(the keras.src.backend.config module, read when Keras is first imported):

1. `KERAS_BACKEND` in the environment (when not empty);
2. `"backend"` in `keras.json`, in `$KERAS_HOME` or else `~/.keras` (`/tmp/.keras`
   when the home folder is not writable);
3. TensorFlow, the default.

A script may also choose one itself, before it imports Keras
(`os.environ["KERAS_BACKEND"] = "jax"`), or later with
`keras.config.set_backend("jax")` (which re-imports Keras). Under `gradscope
run` Keras is imported before the script runs, so such a script would silently
train on TensorFlow when it asked for another backend: the literal cases are
read from the script's source before anything is imported (`check_run`), and
the rest is caught while it runs (`intercept.intercept_fit` compares the
variable with what it was when Keras was loaded).

Everything here is cheap: no Keras or TensorFlow import; a wrong backend costs
no TensorFlow start-up.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from gradscope.errors import BackendError

TENSORFLOW = "tensorflow"
VARIABLE = "KERAS_BACKEND"


@dataclass(frozen=True)
class Backend:
    """A Keras backend and where it was chosen, in words ("KERAS_BACKEND=jax in the environment")."""

    name: object  # a str, unless keras.json holds something else
    where: str

    @property
    def ok(self) -> bool:
        return self.name == TENSORFLOW


def message(backend: Backend) -> str:
    """The one line: the backend found, where it was set, what gradscope needs."""
    shown = backend.name if isinstance(backend.name, str) else json.dumps(backend.name)
    return (
        f"Keras is set to the '{shown}' backend by {backend.where}; "
        f"gradscope needs the TensorFlow backend ({VARIABLE}={TENSORFLOW})"
    )


def keras_config_path(environ: Mapping[str, str] | None = None) -> str:
    """Where Keras reads keras.json, found as the keras.src.backend.config module finds it."""
    environ = os.environ if environ is None else environ
    if "KERAS_HOME" in environ:
        folder = environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        if not os.access(home, os.W_OK):
            home = "/tmp"
        folder = os.path.join(home, ".keras")
    return os.path.expanduser(os.path.join(folder, "keras.json"))


def configured_backend(environ: Mapping[str, str] | None = None) -> Backend:
    """The backend `import keras` would load now, without importing it."""
    environ = os.environ if environ is None else environ
    value = environ.get(VARIABLE)
    if value:  # Keras ignores an empty variable
        return Backend(value, f"{VARIABLE}={value} in the environment")
    path = keras_config_path(environ)
    try:
        with open(path) as stream:
            config = json.load(stream)
    except (OSError, ValueError):  # no file, or one Keras ignores too
        config = None
    if isinstance(config, dict) and "backend" in config:
        name = config["backend"]
        return Backend(name, f'"backend": {json.dumps(name)} in {path}')
    return Backend(TENSORFLOW, "default")


def loaded_backend() -> Backend | None:
    """The backend of the Keras already imported in this process (None: not imported yet)."""
    config = sys.modules.get("keras.src.backend.config")
    backend = getattr(config, "backend", None)
    if backend is None:
        return None
    name = backend()
    configured = configured_backend()
    if configured.name == name:
        return Backend(name, configured.where)
    return Backend(name, "keras.config.set_backend() in this process")


def require_tensorflow_backend() -> None:
    """The Python API's entry check: raise `BackendError` (a RuntimeError) unless
    this process's Keras is (or, not imported yet, will be) on TensorFlow."""
    backend = loaded_backend() or configured_backend()
    if not backend.ok:
        raise BackendError(message(backend))


def check_run(source: bytes | str, path: str) -> None:
    """`gradscope run`'s pre-flight: raise `BackendError` (exit 2) when the script
    would run on another backend than TensorFlow.

    The script's own choice, made at its top level before it imports Keras,
    wins over the environment's, as it would under `python`. A script that
    chooses TensorFlow itself gets it: gradscope imports Keras before the
    script runs, so the variable is set now, as the script would set it.
    """
    chosen = script_backend(source, path)
    if chosen is None:
        backend = configured_backend()
        if not backend.ok:
            raise BackendError(message(backend))
        return
    if not chosen.ok:
        raise BackendError(message(chosen))
    os.environ[VARIABLE] = TENSORFLOW


def script_backend(source: bytes | str, path: str) -> Backend | None:
    """The backend the script itself chooses at its top level, read from its source.

    Read, in order, until the first statement that imports Keras (or
    TensorFlow, whose `tf.keras` is Keras): `os.environ["KERAS_BACKEND"] = "x"`,
    `os.environ.setdefault(...)` (when the environment has no value),
    `os.environ.update(...)`; and `keras.config.set_backend("x")` anywhere at the
    top level. Only literal strings count; a choice made at run time (from an
    argument, in a function) is caught while the script runs. None: the
    script chooses nothing.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    name = os.path.basename(path)
    environment_has_one = bool(os.environ.get(VARIABLE))
    chosen: Backend | None = None
    imported = False
    for statement in _top_level(tree.body):
        if not imported:
            found = _environment_assignment(statement, environment_has_one)
            if found is not None:
                chosen = Backend(found, f'{name}:{statement.lineno} (os.environ["{VARIABLE}"] = "{found}")')
            imported = _imports_keras(statement)
        switched = _set_backend_call(statement)
        if switched is not None:
            chosen = Backend(switched, f'{name}:{statement.lineno} (keras.config.set_backend("{switched}"))')
    return chosen


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The module's statements, with those of `if __name__ == "__main__":` in place."""
    statements: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.If) and _is_main_test(statement.test):
            statements += _top_level(statement.body)
        else:
            statements.append(statement)
    return statements


def _is_main_test(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _is_environ(node: ast.expr) -> bool:
    """`os.environ` or a bare `environ` (from os import environ)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ"


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _environment_assignment(statement: ast.stmt, environment_has_one: bool) -> str | None:
    """The backend a statement puts into os.environ["KERAS_BACKEND"] (a literal), if any."""
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if (
                isinstance(target, ast.Subscript)
                and _is_environ(target.value)
                and _string(target.slice) == VARIABLE
            ):
                value = _string(statement.value)
                return value or None  # Keras ignores an empty value
        return None
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and _is_environ(func.value)):
        return None
    if func.attr == "setdefault" and len(call.args) == 2 and _string(call.args[0]) == VARIABLE:
        return None if environment_has_one else _string(call.args[1]) or None
    if func.attr == "update":
        for keyword in call.keywords:
            if keyword.arg == VARIABLE:
                return _string(keyword.value) or None
        if len(call.args) == 1 and isinstance(call.args[0], ast.Dict):
            mapping = call.args[0]
            for key, item in zip(mapping.keys, mapping.values, strict=True):
                if key is not None and _string(key) == VARIABLE:
                    return _string(item) or None
    return None


def _imports_keras(statement: ast.stmt) -> bool:
    roots: list[str] = []
    if isinstance(statement, ast.Import):
        roots = [alias.name.split(".")[0] for alias in statement.names]
    elif isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
        roots = [statement.module.split(".")[0]]
    return any(root in ("keras", "tensorflow", "tf_keras") for root in roots)


def _set_backend_call(statement: ast.stmt) -> str | None:
    """`keras.config.set_backend("jax")` at the top level (also `tf.keras.config...`,
    `config.set_backend`; not another library's `set_backend`, tensorly's say)."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
        return None
    call = statement.value
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "set_backend"):
        return None
    owner = func.value
    named = (isinstance(owner, ast.Attribute) and owner.attr == "config") or (
        isinstance(owner, ast.Name) and owner.id == "config"
    )
    if not named or len(call.args) != 1:
        return None
    return _string(call.args[0])


def changed_by_script(before: str | None) -> str | None:
    """After Keras was loaded on TensorFlow with `KERAS_BACKEND` at `before`: the
    line for a running script that has asked for another backend since (None: it has not)."""
    now = os.environ.get(VARIABLE)
    if not now or now == before or now == TENSORFLOW:
        return None
    loaded = loaded_backend()
    if loaded is not None and loaded.name == now:  # keras.config.set_backend re-imported Keras
        return (
            f"the script switched Keras to the '{now}' backend while it ran "
            f"(keras.config.set_backend), out of gradscope's sight; "
            f"gradscope needs the TensorFlow backend ({VARIABLE}={TENSORFLOW})"
        )
    return (
        f"the script set {VARIABLE}={now} while it ran, but gradscope had loaded Keras on "
        f"TensorFlow before it: it would train on another backend than it asked for; "
        f"gradscope needs the TensorFlow backend ({VARIABLE}={TENSORFLOW})"
    )
