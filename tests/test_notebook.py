"""The bundled notebook (docs/notebook.ipynb) runs, offline, in a real Jupyter
kernel, and shows what it promises: the buggy model's HTML report names
`single-unit-softmax` with its fix and its pictures, the fixed model's report is
ok, and no cell raises.

The kernel is this interpreter (`sys.executable -m ipykernel_launcher`), from a
kernelspec written into the test's temporary folder: no globally installed
kernelspec, no Jupyter configuration of the user's is read.
"""

from __future__ import annotations

import json
import sys
from html import unescape
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402 (after the skips)
from jupyter_client.manager import KernelManager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"
KERNEL = "gradscope-test-python"
BUGGY_CHECK = "single-unit-softmax"
BUGGY_FIX = "Dense(1, activation='sigmoid')"


def _cells(nb: Any) -> dict[str, Any]:
    return {cell.id: cell for cell in nb.cells}


def _text(cell: Any, stream: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == stream)


def _data(cell: Any, mime: str) -> list[str]:
    return [o.data[mime] for o in cell.outputs
            if o.output_type in ("execute_result", "display_data") and mime in o.data]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook, run top to bottom in a fresh kernel of this interpreter."""
    tmp = tmp_path_factory.mktemp("notebook")
    spec = tmp / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gradscope test (this interpreter)",
        "language": "python",
        # Added to this process's environment (which the kernel inherits):
        # quiet TensorFlow, our own bugs raise, IPython's profile kept out of $HOME.
        "env": {"TF_CPP_MIN_LOG_LEVEL": "3", "GRADSCOPE_STRICT": "1",
                "IPYTHONDIR": str(tmp / "ipython"), "MPLBACKEND": "Agg"},
    }))
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")], ensure_native_kernel=False)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs,
                       connection_file=str(tmp / "kernel-connection.json"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, km=km, timeout=300, startup_timeout=120,
        # Run from docs/, as `jupyter lab docs/notebook.ipynb` would.
        resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    # A cell that raises fails here with CellExecutionError: the cell, its
    # error and its traceback.
    client.execute()
    return nb


def test_the_committed_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert [(c.id, c.outputs, c.execution_count) for c in code if c.outputs or c.execution_count] == []


def test_every_code_cell_ran_without_error(executed: Any) -> None:
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    errors = [(c.id, o.get("ename"), o.get("evalue")) for c in code for o in c.outputs
              if o.output_type == "error"]
    assert errors == []


def test_the_buggy_model_does_not_learn(executed: Any) -> None:
    out = _text(_cells(executed)["buggy"])
    first, *rest = out.splitlines()[0].removeprefix("accuracy by epoch: ").strip("[]").split(", ")
    assert rest and all(a == first for a in rest), out


def test_the_diagnosis_cell_shows_the_html_report(executed: Any) -> None:
    cell = _cells(executed)["diagnose"]
    html = _data(cell, "text/html")
    assert len(html) == 1, cell.outputs
    assert BUGGY_CHECK in html[0]
    assert "<svg" in html[0]
    # The fix, ready to copy (HTML-escaped quotes are the same text on screen).
    assert BUGGY_FIX in unescape(html[0])
    # The plain-text alternative a terminal front end shows: the headless summary.
    plain = _data(cell, "text/plain")
    assert len(plain) == 1 and BUGGY_CHECK in plain[0]
    assert "most likely cause" in plain[0].lower(), plain[0]


def test_the_headline_cell_prints_the_check_and_its_fix(executed: Any) -> None:
    out = _text(_cells(executed)["headline"])
    assert out.splitlines()[0] == BUGGY_CHECK
    assert BUGGY_FIX in out


def test_the_fixed_model_is_ok_and_learns(executed: Any) -> None:
    cells = _cells(executed)
    fixed = cells["fixed"]
    assert _text(fixed).strip() == "True"
    html = _data(fixed, "text/html")
    assert len(html) == 1 and BUGGY_CHECK not in html[0]
    # Healthy: not an error, nor a warning or a note (a false alarm would show here).
    plain = _data(fixed, "text/plain")
    assert len(plain) == 1 and "no problems found" in plain[0], plain
    out = _text(cells["train"])
    test_accuracy = float(out.split("test accuracy:")[1])
    assert test_accuracy > 0.9, out


def test_the_callback_shows_the_report_and_stops_the_training(executed: Any) -> None:
    cell = _cells(executed)["callback"]
    # In a notebook the callback displays the HTML report, not the text summary
    html = _data(cell, "text/html")
    assert len(html) == 1 and BUGGY_CHECK in html[0] and "<svg" in html[0]
    out = _text(cell)
    assert f"stopped the training before its first step: {BUGGY_CHECK}" in out
    assert "epochs trained: 0" in out
