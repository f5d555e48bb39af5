"""gradscope: tells a Keras user, in seconds and in plain words, why their model is not learning."""

from __future__ import annotations

__version__ = "0.1.0"
