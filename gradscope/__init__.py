"""gradscope: tells a Keras user, in seconds and in plain words, why their model is not learning."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Callback", "DiagnosisError", "Report", "__version__", "diagnose"]


def __getattr__(name: str) -> object:
    # The Python API (gradscope/api.py), loaded on first use: `import gradscope`
    # and `gradscope --help` stay light (no TensorFlow, no Textual).
    if name in ("diagnose", "Report", "DiagnosisError"):
        from gradscope import api

        return getattr(api, name)
    if name == "Callback":  # a keras.callbacks.Callback: imports Keras
        from gradscope.callback import Callback

        return Callback
    raise AttributeError(f"module 'gradscope' has no attribute {name!r}")
