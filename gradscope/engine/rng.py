"""Keep every random stream the user's run depends on exactly where it was.

Cloning layers draws default seeds from Python's `random`; data readers may use
NumPy's global RNG; eager TF random ops advance the context's seed stream; unseeded
`keras.random` calls advance Keras's global SeedGenerator; `tf.random.Generator`
users draw from TF's global generator. The probe must leave all of them
untouched, or a seeded script would train differently under gradscope.

Keras's automatic-name counters are put back too: they are not random, but a
clone advances them, and the user's next model would be `functional_2` where
`python` names it `functional_1`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# The global seed TF sees while the probe runs (see `preserved_rng`).
_PROBE_TF_SEED = 0x5EED_6AD5
_DEFAULT_GRAPH_SEED = 87654321  # TF's stand-in global seed for ops with an op seed only
_MAXINT32 = 2**31 - 1


def _private_tf_seed(user_seed: Any) -> int:
    """A global seed that no eager random kernel of the user's is cached under."""
    taken = {_DEFAULT_GRAPH_SEED}
    if user_seed is not None:
        taken.add(int(np.array(user_seed)) % _MAXINT32)
    seed = _PROBE_TF_SEED
    while seed in taken:
        seed += 1
    return seed


@contextmanager
def preserved_rng() -> Iterator[None]:
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context
    from tensorflow.python.ops import stateful_random_ops

    py_state = random.getstate()
    np_state = np.random.get_state()
    ctx = context.context()
    tf_seed = getattr(ctx, "_seed", None)
    tf_rng = getattr(ctx, "_rng", None)
    tf_rng_state = tf_rng.getstate() if tf_rng is not None else None
    names: Any = global_state.get_global_attribute("object_name_uids")
    names_before = dict(names) if names is not None else None
    gen: Any = global_state.get_global_attribute("global_seed_generator")
    gen_state = np.array(gen.state.numpy()) if gen is not None else None
    tf_gen: Any = getattr(stateful_random_ops, "global_generator", None)
    tf_gen_state = np.array(tf_gen.state.numpy()) if tf_gen is not None else None
    # An eager random op's kernel is cached under its (global seed, op seed) pair
    # and keeps its own position in its stream: restoring the op-seed stream alone
    # would hand the user's next `tf.random.*` call a kernel the probe had already
    # advanced. Under a global seed of its own, the probe never touches those
    # kernels (set directly: `tf.random.set_seed` would clear the user's cache).
    private = _private_tf_seed(tf_seed)
    ctx._seed = private
    ctx._rng = random.Random(private)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        ctx._seed = tf_seed
        ctx._rng = tf_rng
        if tf_rng is not None and tf_rng_state is not None:
            tf_rng.setstate(tf_rng_state)
        if gen is not None and gen_state is not None:
            gen.state.assign(gen_state)
            global_state.set_global_attribute("global_seed_generator", gen)
        elif gen is None:
            # The probe created the global generator: drop it, as it never existed.
            global_state.set_global_attribute("global_seed_generator", None)
        if tf_gen is not None and tf_gen_state is not None:
            tf_gen.state.assign(tf_gen_state)
        stateful_random_ops.global_generator = tf_gen
        if names is not None and names_before is not None:
            names.clear()
            names.update(names_before)
        else:
            global_state.set_global_attribute("object_name_uids", None)
