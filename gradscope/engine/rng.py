"""Keep every random stream the user's run depends on exactly where it was.

Cloning layers draws default seeds from Python's `random`; data readers may use
NumPy's global RNG; eager TF random ops advance the context's seed stream; unseeded
`keras.random` calls advance Keras's global SeedGenerator. The probe must leave all
four untouched, or a seeded script would train differently under gradscope.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def preserved_rng() -> Iterator[None]:
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context

    py_state = random.getstate()
    np_state = np.random.get_state()
    ctx = context.context()
    tf_rng = getattr(ctx, "_rng", None)
    tf_rng_state = tf_rng.getstate() if tf_rng is not None else None
    gen: Any = global_state.get_global_attribute("global_seed_generator")
    gen_state = np.array(gen.state.numpy()) if gen is not None else None
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if tf_rng is not None and tf_rng_state is not None:
            ctx._rng = tf_rng
            tf_rng.setstate(tf_rng_state)
        if gen is not None and gen_state is not None:
            gen.state.assign(gen_state)
            global_state.set_global_attribute("global_seed_generator", gen)
        elif gen is None:
            # The probe created the global generator: drop it, as it never existed.
            global_state.set_global_attribute("global_seed_generator", None)
