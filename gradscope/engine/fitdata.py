"""Read probe batches out of an intercepted `Model.fit` call without costing the user's fit any.

`capture_fit_data(fit, args, kwargs)` binds the call the way Keras would, picks a
reader for the kind of data passed (arrays, `tf.data.Dataset`, Python generator,
`keras.utils.PyDataset`, or the one batch of a `train_on_batch` call), and
returns a `FitData` that hands out the first few training batches, a sample
drawn over the training data the way fit draws it, and the arguments the
user's real call must be made with.

Only generators need their arguments rewritten: a generator can be read once, so
the batches gradscope took are replayed in front of the rest of it. Every other
kind can be read again from the start, so its arguments go back untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Batch = tuple[Any, Any, Any]
"""(x, y, sample_weight); x and y may be nested; y and sample_weight may be None."""

DEFAULT_BATCH_SIZE = 32  # Keras's own default when neither batch_size nor steps is given.
SAMPLE_PROBE_BATCHES = 4  # batches read by `sample()` when nothing was probed yet.
# A generator's sample is what was read from it: the experiments' held-back
# half needs a few hundred samples to tell chance from learning, so before fit
# gets its replay, reading goes on up to this many samples (or batches).
GENERATOR_SAMPLE = 512
GENERATOR_SAMPLE_MAX_BATCHES = 16
GENERATOR_SAMPLE_MAX_BYTES = 64 * 2**20  # held until fit replays them (images are big)

_SUPPORTED = (
    "NumPy arrays or tensors (also lists/dicts of them), a tf.data.Dataset, "
    "a Python generator, or a keras.utils.PyDataset"
)


# --------------------------------------------------------------------------- structures


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _map(fn: Callable[..., Any], *structs: Any) -> Any:
    """Apply `fn` leaf-wise over parallel nested dict/list/tuple structures (None is a leaf)."""
    first = structs[0]
    if isinstance(first, dict):
        return {k: _map(fn, *(s[k] for s in structs)) for k in first}
    if isinstance(first, (list, tuple)):
        items = [_map(fn, *(s[i] for s in structs)) for i in range(len(first))]
        if _is_namedtuple(first):
            return type(first)(*items)
        return type(first)(items)
    return fn(*structs)


def _leaves(struct: Any) -> list[Any]:
    out: list[Any] = []
    _map(out.append, struct)
    return out


def _is_nested(struct: Any) -> bool:
    return isinstance(struct, (dict, list, tuple))


def _unpack(data: Any) -> Batch:
    """Split one pipeline element into (x, y, sw) exactly like `keras.utils.unpack_x_y_sample_weight`."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple) or _is_namedtuple(data):
        return (data, None, None)
    if len(data) == 1:
        return (data[0], None, None)
    if len(data) == 2:
        return (data[0], data[1], None)
    if len(data) == 3:
        return (data[0], data[1], data[2])
    raise ValueError(
        "gradscope can't read a training element with "
        f"{len(data)} parts: fit expects x, (x,), (x, y) or (x, y, sample_weight)."
    )


def _nbytes(struct: Any) -> int:
    return sum(int(getattr(leaf, "nbytes", 0) or 0) for leaf in _leaves(struct))


def _leading_dim(struct: Any) -> int | None:
    for leaf in _leaves(struct):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) > 0 and shape[0] is not None:
            return int(shape[0])
    return None


# --------------------------------------------------------------------------- conversions


def _is_tf_tensor(x: Any) -> bool:
    # Checked by module name so arrays never force a TensorFlow import.
    return type(x).__module__.startswith("tensorflow.") and hasattr(x, "shape")


def _to_numpy(x: Any) -> Any:
    if x is None or isinstance(x, np.ndarray):
        return x
    if _is_tf_tensor(x):
        import tensorflow as tf

        if isinstance(x, tf.RaggedTensor):
            x = x.to_tensor()
        elif isinstance(x, tf.SparseTensor):
            x = tf.sparse.to_dense(x)
        return x.numpy()
    if hasattr(x, "tocsr") and hasattr(x, "toarray"):  # scipy.sparse
        return x.toarray()
    if hasattr(x, "to_numpy"):  # pandas
        return x.to_numpy()
    return np.asarray(x)


def _batch_to_numpy(batch: Batch) -> Batch:
    x, y, sw = batch
    return (_map(_to_numpy, x), _map(_to_numpy, y), _map(_to_numpy, sw))


def _concat_leaf(*parts: Any) -> Any:
    if parts[0] is None:
        return None
    return np.concatenate([np.atleast_1d(p) for p in parts], axis=0)


def _concat_batches(batches: list[Batch], max_samples: int) -> Batch:
    """Concatenate batches along axis 0, cut to `max_samples` rows."""
    numpy_batches = [_batch_to_numpy(b) for b in batches]
    try:
        joined = _map(_concat_leaf, *numpy_batches)
    except (ValueError, TypeError, KeyError, IndexError):
        # Variable-length leaves (e.g. unpadded sequences) can't be stacked:
        # the first batch alone is still a faithful sample.
        joined = numpy_batches[0]

    def cut(leaf: Any) -> Any:
        return leaf[:max_samples] if leaf is not None and np.ndim(leaf) > 0 else leaf

    return _map(cut, joined)


def _shuffled_rows(batch: Batch, rng: np.random.Generator, max_samples: int) -> Batch:
    """The batch's rows in a random order (all leaves alike), at most `max_samples`."""
    n = _leading_dim(batch[0])
    if not n:
        return batch
    perm = rng.permutation(n)[:max_samples]

    def take(leaf: Any) -> Any:
        if leaf is None or np.ndim(leaf) == 0 or np.shape(leaf)[0] != n:
            return leaf
        return np.asarray(leaf)[perm]

    return _map(take, batch)


# A sample read on past one pass of an endless pipeline (`dataset.repeat()`,
# a `while True` generator) holds its rows several times over: the experiments'
# held-back half would then be rows the model trained on, and labels with no
# signal would look learnable. Rows seen before are dropped, unless hardly any
# are left (a pipeline yielding a handful of rows is for other checks to see).
SAMPLE_MIN_DISTINCT = 64


def _distinct_rows(batch: Batch) -> Batch:
    """The batch without its repeated rows (same x, y and weight), first ones kept."""
    n = _leading_dim(batch[0])
    if not n:
        return batch

    def per_row(leaf: Any) -> bool:
        return leaf is not None and np.ndim(leaf) > 0 and np.shape(leaf)[0] == n

    leaves = [np.asarray(leaf) for leaf in _leaves(batch) if per_row(leaf)]
    seen: set[bytes] = set()
    keep: list[int] = []
    for i in range(n):
        digest = hashlib.blake2b(digest_size=16)
        for leaf in leaves:
            row = leaf[i]
            digest.update(repr(row.tolist()).encode() if leaf.dtype == object else
                          np.ascontiguousarray(row).tobytes())
        key = digest.digest()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if len(keep) == n or len(keep) < SAMPLE_MIN_DISTINCT:
        return batch
    index = np.asarray(keep)
    return _map(lambda leaf: np.asarray(leaf)[index] if per_row(leaf) else leaf, batch)


# --------------------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def _preserved_global_rng() -> Iterator[None]:
    """Restore Python's and NumPy's global RNGs, so reading data leaves the user's run unchanged."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _class_weight_to_sample_weight(y: Any, class_weight: dict[Any, float]) -> np.ndarray:
    """Same mapping as Keras's `class_weight_to_sample_weights` (argmax for one-hot, round otherwise)."""
    labels = _to_numpy(y)
    try:
        labels = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"class_weight needs numeric class labels; these are of dtype {labels.dtype}."
        ) from None
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else np.squeeze(labels, -1)
    if labels.ndim > 1:  # Keras refuses class_weight for 3+ dimensional targets too
        raise ValueError(
            f"class_weight needs one class label per sample; these labels have shape {_shape_of(y)}."
        )
    with np.errstate(invalid="ignore"):  # NaN labels: no class, weight 1 (as Keras)
        labels = np.round(labels).astype("int32")
    return np.array([class_weight.get(int(c), 1.0) for c in labels], dtype="float32")


def _shape_of(y: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in np.shape(_to_numpy(y)))


def _with_class_weight(batch: Batch, class_weight: dict[Any, float] | None) -> Batch:
    """Add class-weight sample weights to one batch, as Keras's adapters do."""
    x, y, sw = batch
    if class_weight is None or y is None:
        return batch
    if sw is not None:
        raise ValueError("fit can't use `class_weight` and `sample_weight` at the same time.")
    if _is_nested(y):
        raise ValueError("fit supports `class_weight` only for models with a single output.")
    return (x, y, _class_weight_to_sample_weight(y, class_weight))


def _is_tf_dataset(x: Any) -> bool:
    # Same test as Keras's `is_tf_dataset`, without importing TensorFlow.
    return any(
        c.__name__ == "DatasetV2" and "tensorflow.python." in str(c.__module__)
        for c in type(x).__mro__
    )


def _is_array_like(leaf: Any) -> bool:
    return (
        leaf is None
        or isinstance(leaf, np.ndarray)
        or _is_tf_tensor(leaf)
        or hasattr(leaf, "__array__")
        or (hasattr(leaf, "tocsr") and hasattr(leaf, "shape"))
    )


def _is_pydataset(x: Any) -> bool:
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a hard dependency
        return False
    return isinstance(x, keras.utils.PyDataset)


# --------------------------------------------------------------------------- sources


SAMPLE_MAX_BATCHES = 64  # a tf.data sample keeps at most this many batches
SAMPLE_SPREAD_LIMIT = 4096  # ...spread over data sets of up to this many batches


class _Source:
    """One reader per kind of data; `FitData` delegates to it."""

    def __init__(self) -> None:
        self._cache: list[Batch] = []

    def probe_batches(self, n: int) -> list[Batch]:
        raise NotImplementedError

    def fit_args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, dict(kwargs)

    def read_for_sample(self, fit_batches: int | None) -> None:
        """Read, before fit's arguments are made, what `sample()` will need."""

    def taken(self) -> int:
        """How many batches were read from data that is gone once read (a generator)."""
        return 0

    def sample(self, max_samples: int) -> Batch:
        batches = self._cache or self.probe_batches(SAMPLE_PROBE_BATCHES)
        if not batches:
            raise ValueError("gradscope found no training batches to sample.")
        return _concat_batches(batches, max_samples)


class _ArraySlicer:
    """Row-gathers one array-like leaf, converting only the rows asked for."""

    def __init__(self, leaf: Any) -> None:
        self._leaf = leaf
        self._dense: Any = None
        shape = leaf.shape if hasattr(leaf, "shape") else np.shape(np.asarray(leaf))
        if len(shape) == 0:  # Keras refuses it too
            raise ValueError(f"fit's arrays need one row per sample; got a single value {leaf!r}.")
        self.n = int(shape[0])

    def take(self, idx: np.ndarray) -> np.ndarray:
        leaf = self._leaf
        if isinstance(leaf, np.ndarray):
            return leaf[idx]
        if _is_tf_tensor(leaf):
            import tensorflow as tf

            if isinstance(leaf, tf.SparseTensor):
                if self._dense is None:
                    self._dense = tf.sparse.to_dense(leaf).numpy()
                return self._dense[idx]
            return _to_numpy(tf.gather(leaf, idx, axis=0))
        if hasattr(leaf, "iloc"):  # pandas: positional rows, like Keras's pandas slicing
            return np.asarray(leaf.iloc[idx])
        if hasattr(leaf, "tocsr") and hasattr(leaf, "toarray"):  # scipy.sparse
            return leaf.tocsr()[idx].toarray()
        if self._dense is None:
            # Anything else with __array__: convert once, not once per batch.
            self._dense = np.asarray(leaf)
        return self._dense[idx]


class _ArraySource(_Source):
    """In-memory arrays: batches are gathered by index, nothing is consumed."""

    def __init__(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        batch_size: int | None,
        validation_split: float,
        has_validation_data: bool,
        shuffle: Any,
        class_weight: dict[Any, float] | None,
        steps_per_epoch: int | None,
        seed: int | None,
    ) -> None:
        super().__init__()
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("fit can't use `class_weight` and `sample_weight` at the same time.")
            if _is_nested(y):
                raise ValueError("fit supports `class_weight` only for models with a single output.")
        if sample_weight is not None and _is_nested(y) and not _is_nested(sample_weight):
            # Keras repeats one per-sample weight array for every output.
            sample_weight = _map(lambda _: sample_weight, y)
        self._class_weight = class_weight
        self._seed = seed
        self._slicers = _map(lambda a: None if a is None else _ArraySlicer(a), (x, y, sample_weight))
        counts = {s.n for s in _leaves(self._slicers) if s is not None}
        if not counts:
            raise ValueError("gradscope found no training arrays in the fit call.")
        if len(counts) > 1:
            raise ValueError(f"fit's arrays disagree on the number of samples: {sorted(counts)}.")
        total = counts.pop()
        if total == 0:  # Keras would silently train on nothing
            raise ValueError("fit's arrays hold 0 samples: there is nothing to train on.")
        self.num_total = total
        # Keras keeps the first floor(n * (1 - split)) rows for training, the tail for
        # validation (array_slicing.train_validation_split), before any shuffling.
        n_train = total
        if validation_split and not has_validation_data:
            n_train = int(math.floor(total * (1.0 - validation_split)))
            if n_train == 0 or n_train == total:
                raise ValueError(
                    f"fit's data has {total} samples, too few to split with "
                    f"validation_split={validation_split}."
                )
        self.num_samples = n_train
        if not batch_size:
            batch_size = int(math.ceil(n_train / steps_per_epoch)) if steps_per_epoch else DEFAULT_BATCH_SIZE
        self.batch_size = int(batch_size)
        self.num_batches = int(math.ceil(n_train / self.batch_size))
        # A private generator: drawing from np.random would shift the user's global stream.
        rng = np.random.default_rng(seed)
        if shuffle == "batch":
            order = np.arange(n_train)
            for start in range(0, n_train, self.batch_size):
                order[start : start + self.batch_size] = rng.permutation(
                    order[start : start + self.batch_size]
                )
        elif shuffle:
            order = rng.permutation(n_train)
        else:
            order = np.arange(n_train)
        self._order = order

    def _gather(self, idx: np.ndarray) -> Batch:
        x, y, sw = _map(lambda s: None if s is None else s.take(idx), self._slicers)
        return _with_class_weight((x, y, sw), self._class_weight)

    def probe_batches(self, n: int) -> list[Batch]:
        bs = self.batch_size
        while len(self._cache) < min(n, self.num_batches):
            i = len(self._cache)
            self._cache.append(self._gather(self._order[i * bs : (i + 1) * bs]))
        return list(self._cache[:n])

    def sample(self, max_samples: int) -> Batch:
        # Rows drawn across the whole training part (never validation_split's
        # tail), left in the drawn order: fit shuffles, and whoever reads the
        # sample's first rows (the static checks read 512, the evaluation set
        # 256) must see a fair mix of data stored sorted by class, not its
        # first block. The generator is private and seeded: the same sample
        # every run, and no draw from the user's global streams.
        rng = np.random.default_rng(self._seed)
        k = min(max_samples, self.num_samples)
        idx = rng.choice(self.num_samples, size=k, replace=False)
        return _batch_to_numpy(self._gather(idx))


# Dataset ops that draw each new iterator's seeds from a generator kept by the
# data set itself: reading the data set once moves its later epochs along.
_SEEDED_EACH_ITERATION = ("_ShuffleDataset", "_GlobalShuffleDataset", "_RandomDataset")
# Copying a data set copies the tensors it holds (from_tensor_slices): about
# five times their size for a moment, and a second a few hundred MB. Above
# this, gradscope reads the user's own data set (its epochs' order moves on).
DATASET_COPY_MAX_BYTES = 128 * 2**20


def _stages(dataset: Any) -> Iterator[Any]:
    """`dataset` and every data set it is built on (as far as Python shows them)."""
    stack, seen = [dataset], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        try:
            stack.extend(node._inputs())
        except Exception:  # noqa: BLE001 - an opaque stage: its inputs are unknown
            continue


def _reseeds_each_iteration(dataset: Any) -> bool:
    """Whether some stage of `dataset` reshuffles (or re-randomises) on each new
    iterator: `shuffle()` by default, `Dataset.random(rerandomize_each_iteration=True)`."""
    for node in _stages(dataset):
        if type(node).__name__ in _SEEDED_EACH_ITERATION:
            flag = getattr(node, "_reshuffle_each_iteration", getattr(node, "_rerandomize", True))
            if not (flag is False or (_is_tf_tensor(flag) and not bool(np.asarray(flag)))):
                return True
    return False


def _held_bytes(dataset: Any) -> int:
    """The size of the tensors the stages of `dataset` hold (from_tensor_slices, from_tensors)."""
    total = 0
    for node in _stages(dataset):
        tensors = getattr(node, "_tensors", None)
        for leaf in tensors if isinstance(tensors, (list, tuple)) else ():
            shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
            count = getattr(shape, "num_elements", lambda: None)() if shape is not None else None
            size = getattr(dtype, "size", None) if getattr(dtype, "name", "") != "string" else None
            total += int(count or 0) * int(size or 8)
    return total


def _copy_with_own_seeds(dataset: Any) -> tuple[Any, Any] | None:
    """The same pipeline with seed generators of its own, and its first iterator
    (made here, where a copy that can't be read shows); None when it can't be copied.

    A reshuffling `shuffle()` keeps one seed generator for all its iterators:
    every `iter(dataset)` draws the next epoch's seeds from it. Reading the
    user's data set would hand the user's own fit the orders of later epochs
    (a seeded run would train differently under gradscope). The copy is the
    data set's graph with each stage's seed generator replaced by a fresh one
    from the same seeds: its first iterator shuffles as the user's first epoch
    does, and the user's generator is left where it was.
    """
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.data.ops import dataset_ops
    from tensorflow.python.framework import op_def_registry

    try:
        serialized = tf.raw_ops.DatasetToGraphV2(
            input_dataset=dataset._variant_tensor,
            external_state_policy=1,  # IGNORE: the copy shares the pipeline's other state
            strip_device_assignment=False,
        )
        graph = graph_pb2.GraphDef()
        graph.ParseFromString(serialized.numpy())
        del serialized
        replaced = 0
        for node in list(graph.node):
            op_def = op_def_registry.get(node.op)
            names = [arg.name for arg in op_def.input_arg] if op_def is not None else []
            if "seed_generator" not in names or "seed" not in names:
                continue
            index = names.index("seed_generator")
            fresh = graph.node.add()
            fresh.name = f"gradscope_own_seed_generator_{replaced}"
            fresh.op = "DummySeedGenerator"  # the stage makes a new generator from its seeds
            node.input[index] = fresh.name
            replaced += 1
        if not replaced:
            return None
        variant = tf.raw_ops.DatasetFromGraph(graph_def=graph.SerializeToString())
        copy = dataset_ops._VariantDataset(variant, dataset.element_spec)
        return copy, iter(copy)
    except Exception:  # noqa: BLE001 - too big to serialise (2 GiB), an unserialisable stage...
        return None


class _DatasetSource(_Source):
    """A `tf.data.Dataset`: read through an iterator of our own; fit makes its own later.

    A data set that reshuffles on each iteration is read through a copy with
    seed generators of its own (`_copy_with_own_seeds`), so reading it does not
    move on the user's epochs; unless it holds more than DATASET_COPY_MAX_BYTES
    of tensors, or can't be copied: then the user's fit gets the shuffle orders
    of its next passes (the same batches, in another order).
    """

    def __init__(self, dataset: Any, class_weight: dict[Any, float] | None) -> None:
        super().__init__()
        self._dataset = dataset
        self._class_weight = class_weight
        self._iterator: Any = None
        self._done = False
        if _reseeds_each_iteration(dataset) and _held_bytes(dataset) <= DATASET_COPY_MAX_BYTES:
            with _preserved_global_rng():
                copied = _copy_with_own_seeds(dataset)
            if copied is not None:
                self._dataset, self._iterator = copied

    def probe_batches(self, n: int) -> list[Batch]:
        if len(self._cache) < n and not self._done:
            # py_function / numpy_function stages may draw from the global RNGs;
            # fit re-runs the pipeline from scratch, so put them back.
            with _preserved_global_rng():
                if self._iterator is None:
                    self._iterator = iter(self._dataset)
                while len(self._cache) < n:
                    try:
                        element = next(self._iterator)
                    except StopIteration:
                        self._done = True
                        break
                    self._cache.append(_with_class_weight(_unpack(element), self._class_weight))
        return list(self._cache[:n])

    def sample(self, max_samples: int) -> Batch:
        # The first few batches of a sorted data set are all one class: read on
        # (a fresh iterator, up to SAMPLE_MAX_BATCHES) so label checks see the mix.
        batches: list[Batch] = []
        seen = 0
        dataset = self._dataset
        try:
            cardinality = int(dataset.cardinality())
        except Exception:  # noqa: BLE001 - exotic datasets: read from the start
            cardinality = -1
        if SAMPLE_MAX_BATCHES < cardinality <= SAMPLE_SPREAD_LIMIT:
            # Spread the sample over the whole (finite, in-memory sized) data set.
            dataset = dataset.shard(cardinality // SAMPLE_MAX_BATCHES, 0)
        with _preserved_global_rng():
            for element in dataset.take(SAMPLE_MAX_BATCHES):
                batch = _unpack(element)
                batches.append(batch)
                seen += _leading_dim(batch[0]) or 0
                if seen >= max_samples:
                    break
        if not batches:
            return super().sample(max_samples)
        joined = _concat_batches(batches, max_samples)
        # Infinite (repeat()) or unknown: the read may have gone past one pass.
        return _distinct_rows(joined) if cardinality < 0 else joined


class _GeneratorSource(_Source):
    """A Python generator: what we take is gone, so fit gets it replayed in front of the rest."""

    def __init__(self, generator: Any, x_position: int | None) -> None:
        super().__init__()
        self._generator = generator
        self._raw: list[Any] = []
        self._error: BaseException | None = None
        self._done = False
        self._handed_out = False
        self._x_position = x_position

    def probe_batches(self, n: int) -> list[Batch]:
        # No RNG snapshot here, on purpose: fit never re-runs the generator code for
        # the batches we took, so the generator must continue from the RNG state it
        # left, exactly as it would have without gradscope.
        while len(self._cache) < n and not self._done and not self._handed_out:
            try:
                element = next(self._generator)
            except StopIteration:
                self._done = True
                break
            except Exception as exc:  # the user's generator failed; fit must see it too
                self._done = True
                self._error = exc
                break
            self._raw.append(element)
            self._cache.append(_unpack(element))
        if self._error is not None and not self._cache:
            raise self._error
        return list(self._cache[:n])

    def taken(self) -> int:
        return len(self._raw)

    def sample(self, max_samples: int) -> Batch:
        # What was read; a `while True` generator may have started over.
        return _distinct_rows(super().sample(max_samples))

    def read_for_sample(self, fit_batches: int | None) -> None:
        # Never past what fit itself reads (epochs x steps_per_epoch): the
        # generator's state after fit (its RNG draws, a file position) stays the
        # same as under python. Unknown, nothing more is read.
        most = min(GENERATOR_SAMPLE_MAX_BATCHES, fit_batches or 0)
        n = len(self._cache)
        while (
            n < most
            and sum(_leading_dim(batch[0]) or 0 for batch in self._cache) < GENERATOR_SAMPLE
            and sum(_nbytes(batch) for batch in self._cache) < GENERATOR_SAMPLE_MAX_BYTES
        ):
            n += 1
            if len(self.probe_batches(n)) < n:
                break

    def fit_args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        self._handed_out = True
        if not self._raw and self._error is None:
            return args, dict(kwargs)
        replay = _replay(list(self._raw), self._generator, self._error, self._done)
        kwargs = dict(kwargs)
        if "x" in kwargs or self._x_position is None or len(args) <= self._x_position:
            kwargs["x"] = replay
            return args, kwargs
        new_args = list(args)
        new_args[self._x_position] = replay
        return tuple(new_args), kwargs


def _replay(taken: list[Any], rest: Any, error: BaseException | None, done: bool) -> Iterator[Any]:
    """A new generator object: the taken elements, then whatever the original still yields."""
    yield from taken
    if error is not None:
        raise error
    if not done:
        yield from rest


class _PyDatasetSource(_Source):
    """A `keras.utils.PyDataset`: random access by index; `on_epoch_end` is left to fit."""

    def __init__(
        self, dataset: Any, shuffle: Any, class_weight: dict[Any, float] | None, seed: int | None
    ) -> None:
        super().__init__()
        self._dataset = dataset
        self._class_weight = class_weight
        try:
            self.num_batches: int | None = dataset.num_batches
        except NotImplementedError as exc:
            raise ValueError(
                f"gradscope can't read this PyDataset ({type(dataset).__name__}): "
                "it defines neither __len__ nor num_batches."
            ) from exc
        self._seed = seed
        self._read: dict[int, Batch] = {}  # batch index -> batch, shared by probe and sample
        self._order: np.ndarray | None = None
        if self.num_batches is not None and shuffle:
            # Keras visits a finite PyDataset's batches in a shuffled order when
            # shuffle=True: probing the first indices of data sorted by class would
            # show the model a single class. A private seeded order keeps it honest.
            self._order = np.random.default_rng(seed).permutation(self.num_batches)

    def _index(self, i: int) -> int:
        return int(self._order[i]) if self._order is not None else i

    def probe_batches(self, n: int) -> list[Batch]:
        limit = n if self.num_batches is None else min(n, self.num_batches)
        if len(self._cache) < limit:
            # __getitem__ may augment with the global RNGs; fit will call it again.
            with _preserved_global_rng():
                while len(self._cache) < limit:
                    self._cache.append(self._batch(self._index(len(self._cache))))
        return list(self._cache[:n])

    def _batch(self, index: int) -> Batch:
        """Batch `index`, read once (callers hold the global RNGs still)."""
        if index not in self._read:
            element = self._dataset[index]
            if isinstance(element, np.ndarray):
                element = (element,)  # Keras reads a bare array as x alone
            self._read[index] = _with_class_weight(_unpack(element), self._class_weight)
        return self._read[index]

    def sample(self, max_samples: int) -> Batch:
        # Fit reads every batch of an epoch; the first few alone (the probe's)
        # may all be one class of data stored sorted. So batches are drawn at
        # random over the whole data set, whatever `shuffle` says (it only sets
        # the probe's order), and their rows mixed, with a private seeded
        # generator. Reading is bounded like a generator's sample: each batch
        # costs a __getitem__ (a file read, augmentation).
        if not self.num_batches:  # endless (or empty): the probe's batches
            return super().sample(max_samples)
        rng = np.random.default_rng(self._seed)
        want = min(max_samples, GENERATOR_SAMPLE)
        batches: list[Batch] = []
        seen = size = 0
        with _preserved_global_rng():  # __getitem__ may augment with the global RNGs
            for index in rng.permutation(self.num_batches)[:GENERATOR_SAMPLE_MAX_BATCHES]:
                batch = self._batch(int(index))
                batches.append(batch)
                seen += _leading_dim(batch[0]) or 0
                size += _nbytes(batch)
                if seen >= want or size >= GENERATOR_SAMPLE_MAX_BYTES:
                    break
        # Joined whole, then mixed, then cut: cutting first would keep the first batches.
        return _shuffled_rows(_concat_batches(batches, seen or max_samples), rng, max_samples)


class _BatchSource(_Source):
    """One `train_on_batch(x, y, sample_weight, class_weight)` call: that batch is all the data.

    Nothing is consumed: the user's call gets its own arguments back.
    """

    def __init__(
        self, x: Any, y: Any, sample_weight: Any, class_weight: dict[Any, float] | None, seed: int | None
    ) -> None:
        super().__init__()
        if not all(_is_array_like(leaf) for leaf in _leaves((x, y, sample_weight))):
            raise ValueError(
                "gradscope can't read this train_on_batch data: it reads NumPy arrays or "
                "tensors (also lists/dicts of them)."
            )
        if class_weight is not None and sample_weight is not None:
            raise ValueError(
                "train_on_batch can't use `class_weight` and `sample_weight` at the same time."
            )
        # Keras turns class_weight into sample weights the same way for this one batch.
        self._batch = _with_class_weight((x, y, sample_weight), class_weight)
        self._seed = seed

    def probe_batches(self, n: int) -> list[Batch]:
        return [self._batch] if n > 0 else []

    def sample(self, max_samples: int) -> Batch:
        # Rows mixed (privately seeded) like every other sample: a batch built
        # as np.concatenate([real, fake]) must not show its first rows only.
        return _shuffled_rows(
            _batch_to_numpy(self._batch), np.random.default_rng(self._seed), max_samples
        )


# --------------------------------------------------------------------------- public API


@dataclass
class FitData:
    """The training data of one intercepted fit call, readable without disturbing that fit."""

    kind: str  # "arrays" | "dataset" | "generator" | "pydataset" | "batch" (train_on_batch)
    batch_size: int | None  # for non-array kinds: filled in from the first probed batch
    num_samples: int | None = None  # training samples (arrays only, after validation_split)
    _source: _Source | None = field(default=None, repr=False, compare=False)
    _args: tuple = field(default=(), repr=False, compare=False)
    _kwargs: dict = field(default_factory=dict, repr=False, compare=False)

    def probe_batches(self, n: int) -> list[Batch]:
        """Up to `n` training batches in pipeline order; repeated calls give the same batches."""
        assert self._source is not None
        batches = self._source.probe_batches(n)
        if self.batch_size is None and batches:
            self.batch_size = _leading_dim(batches[0][0])
        return batches

    def read_for_sample(self, fit_batches: int | None) -> None:
        """Read what `sample()` needs from data that is gone once read (a generator:
        replayed to fit like the probe batches), at most `fit_batches` batches in
        all (what fit will read). Call before `fit_args()`."""
        assert self._source is not None
        self._source.read_for_sample(fit_batches)

    def fit_args(self) -> tuple[tuple, dict]:
        """(args, kwargs) for the user's original fit; it will see every batch it would have seen."""
        assert self._source is not None
        return self._source.fit_args(self._args, self._kwargs)

    def taken(self) -> int:
        """How many batches were read from a generator (gone from it unless fit_args replays them)."""
        assert self._source is not None
        return self._source.taken()

    def sample(self, max_samples: int = 2048) -> Batch:
        """A NumPy (x, y, sw) sample of training data for static checks; structures kept."""
        assert self._source is not None
        return self._source.sample(max_samples)


def _bind(fit_function: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[dict, int | None]:
    """Keras's view of the call: every fit parameter by name, defaults filled in."""
    sig = inspect.signature(fit_function)
    names = list(sig.parameters)
    has_self = bool(names) and names[0] == "self"
    try:
        bound = sig.bind(None, *args, **kwargs) if has_self else sig.bind(*args, **kwargs)
    except TypeError as exc:
        name = getattr(fit_function, "__name__", "fit")
        raise ValueError(f"gradscope can't read the arguments of this {name} call: {exc}") from exc
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for extra in [k for k, p in sig.parameters.items() if p.kind is p.VAR_KEYWORD]:
        arguments.update(arguments.pop(extra, {}) or {})
    positional = [n for n in names if sig.parameters[n].kind is not inspect.Parameter.KEYWORD_ONLY]
    x_position = positional.index("x") - int(has_self) if "x" in positional else None
    return arguments, x_position


def capture_fit_data(
    fit_function: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    seed: int | None = None,
    method: str | None = None,
) -> FitData:
    """Bind an intercepted `Model.fit(*args, **kwargs)` call and prepare to read its data.

    `method` is "fit" or "train_on_batch"; left out, it is read from
    `fit_function`'s name (the unpatched Keras method the interceptor hands over).
    Raises ValueError when the data is of a kind gradscope can't read.
    """
    if method is None:
        method = "train_on_batch" if getattr(fit_function, "__name__", "") == "train_on_batch" else "fit"
    a, x_position = _bind(fit_function, args, kwargs)
    x = a.get("x")
    y = a.get("y")
    sample_weight = a.get("sample_weight")
    class_weight = a.get("class_weight")
    shuffle = a.get("shuffle", True)
    source: _Source
    kind: str
    batch_size: int | None = None
    num_samples: int | None = None

    if x is None:
        raise ValueError(f"gradscope found no training data: {method} was called without `x`.")
    if method == "train_on_batch":
        kind, source = "batch", _BatchSource(x, y, sample_weight, class_weight, seed)
        batch_size = _leading_dim(x)
    elif all(_is_array_like(leaf) for leaf in _leaves((x, y, sample_weight))):
        arrays = _ArraySource(
            x,
            y,
            sample_weight,
            batch_size=a.get("batch_size"),
            validation_split=a.get("validation_split") or 0.0,
            has_validation_data=a.get("validation_data") is not None,
            shuffle=shuffle,
            class_weight=class_weight,
            steps_per_epoch=a.get("steps_per_epoch"),
            seed=seed,
        )
        kind, source = "arrays", arrays
        batch_size, num_samples = arrays.batch_size, arrays.num_samples
    elif _is_tf_dataset(x):
        kind, source = "dataset", _DatasetSource(x, class_weight)
    elif _is_pydataset(x):
        kind, source = "pydataset", _PyDatasetSource(x, shuffle, class_weight, seed)
    elif inspect.isgenerator(x):
        kind, source = "generator", _GeneratorSource(x, x_position)
    else:
        raise ValueError(
            f"gradscope can't read training data of type {type(x).__module__}."
            f"{type(x).__qualname__}: it reads {_SUPPORTED}."
        )
    return FitData(
        kind=kind,
        batch_size=batch_size,
        num_samples=num_samples,
        _source=source,
        _args=tuple(args),
        _kwargs=dict(kwargs),
    )
