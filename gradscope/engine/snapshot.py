"""Bitwise copies of variables, to put them back later.

Small sets are kept in memory. Large ones (a 100 M-parameter model with Adam has
1.2 GB of weights and slots: a second copy in memory would be the probe's largest
cost) go to an unnamed temporary file on disk, written and read back one
variable at a time, so the copy costs at most one variable of memory at a time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import IO, Any

import numpy as np
import tensorflow as tf

SPILL_BYTES = 64 * 2**20  # copies larger than this go to disk (when a disk is found)


def nbytes(variables: list[Any]) -> int:
    """Bytes the variables' values take."""
    return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)


class VariableSnapshot:
    """The values `variables` hold now; `restore()` assigns them back, bit for bit."""

    def __init__(self, variables: list[Any], spill_over: int | None = None) -> None:
        self.variables = list(variables)
        self.nbytes = nbytes(self.variables)
        limit = SPILL_BYTES if spill_over is None else spill_over
        self._file: IO[bytes] | None = _spill_file(self.nbytes) if self.nbytes > limit else None
        self._saved: list[np.ndarray | tuple[int, np.dtype, tuple[int, ...]]] = []
        offset = 0
        for v in self.variables:
            dtype = np.dtype(tf.as_dtype(v.dtype).as_numpy_dtype)
            shape = tuple(int(d) for d in v.shape)
            if self._file is None or dtype.hasobject:
                self._saved.append(np.array(v.numpy(), copy=True))
                continue
            for rows in _row_chunks(shape, dtype):
                chunk = _read(v, rows)
                self._file.write(np.ascontiguousarray(chunk).reshape(-1).view(np.uint8).data)
                del chunk
            self._saved.append((offset, dtype, shape))
            offset += int(np.prod(shape)) * dtype.itemsize
        if self._file is not None:
            self._file.flush()

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def restore(self) -> None:
        for v, saved in zip(self.variables, self._saved, strict=True):
            if isinstance(saved, np.ndarray):
                v.assign(saved)
                continue
            assert self._file is not None
            offset, dtype, shape = saved
            self._file.seek(offset)
            value = _aligned_empty(shape, dtype)
            if self._file.readinto(value.reshape(-1).view(np.uint8)) != value.nbytes:  # type: ignore[attr-defined]
                raise OSError("the snapshot file was cut short")
            _assign(v, value)
            del value

    def square_norms(self, i: int) -> tuple[float, float, float]:
        """(||saved||^2, ||now||^2, ||now - saved||^2) of variable i, in float64,
        read a chunk of rows at a time (never a full float64 copy of a variable)."""
        v, saved = self.variables[i], self._saved[i]
        before_sq = now_sq = diff_sq = 0.0
        if isinstance(saved, np.ndarray):
            shape, dtype = saved.shape, saved.dtype
        else:
            assert self._file is not None
            offset, dtype, shape = saved
            self._file.seek(offset)
        for rows in _row_chunks(shape, dtype):
            if isinstance(saved, np.ndarray):
                before = saved if rows is None else saved[rows]
            else:
                assert self._file is not None
                before = np.empty(shape if rows is None else (rows.stop - rows.start, *shape[1:]), dtype)
                if self._file.readinto(before.reshape(-1).view(np.uint8)) != before.nbytes:  # type: ignore[attr-defined]
                    raise OSError("the snapshot file was cut short")
            b = np.asarray(before, dtype=np.float64)
            a = np.asarray(_read(v, rows), dtype=np.float64)
            before_sq += float(np.sum(b * b))
            now_sq += float(np.sum(a * a))
            a -= b
            diff_sq += float(np.sum(a * a))
        return before_sq, now_sq, diff_sq

    def close(self) -> None:
        """Drop the copies (the file is deleted); `restore()` is no longer possible."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._saved = []


CHUNK_BYTES = 16 * 2**20  # a large variable goes to the file and back this much at a time


def _row_chunks(shape: tuple[int, ...], dtype: np.dtype) -> list[slice | None]:
    """Slices of the first axis of about CHUNK_BYTES each ([None]: the whole variable)."""
    total = int(np.prod(shape)) * dtype.itemsize
    if len(shape) == 0 or shape[0] < 2 or total <= CHUNK_BYTES:
        return [None]
    per_row = max(1, total // shape[0])
    rows = max(1, CHUNK_BYTES // per_row)
    return [slice(a, min(a + rows, shape[0])) for a in range(0, shape[0], rows)]


def _tf_variable(v: Any) -> Any:
    """The tf.Variable behind a Keras variable (None when there is none to slice)."""
    inner = getattr(v, "value", v)
    return inner if isinstance(inner, tf.Variable) else None


def _read(v: Any, rows: slice | None) -> np.ndarray:
    """The variable's value, or its rows `rows` (a slice of a read: no sparse access)."""
    inner = _tf_variable(v)
    if rows is None or inner is None:
        value = np.asarray(v.numpy())
        return value if rows is None else value[rows]
    return np.asarray(inner[rows].numpy())


ALIGN = 128  # bytes; TensorFlow's CPU kernels need 64


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array starting on an ALIGN-byte boundary."""
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(size + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + size].view(dtype).reshape(shape)


def _assign(v: Any, value: np.ndarray) -> None:
    """`v.assign(value)`, for a large value with one copy of it in flight, not two.

    One assignment of the whole variable: assigning it by slices would put it in
    TensorFlow's copy-on-read mode for good (every later read, the user's
    training's included, would copy it). A large value is seen as a tensor
    over the array's own memory (DLPack; the array is aligned as TensorFlow's
    kernels require), copied once into memory of TensorFlow's own, which the
    variable then takes as its buffer (an assignment shares its value's
    buffer). Measured on a 256 MB variable: 2 copies at a time, against 3 when
    the array is converted; and a variable left on the array's memory would
    copy itself at its next update (the user's next training step).
    """
    inner = _tf_variable(v)
    shared = None
    if inner is not None and value.nbytes >= CHUNK_BYTES and value.ctypes.data % ALIGN == 0:
        try:
            shared = tf.experimental.dlpack.from_dlpack(value.__dlpack__())
        except Exception:  # noqa: BLE001 - a dtype DLPack lacks (bfloat16): a plain copy
            shared = None
    if shared is None:
        v.assign(value)
        return
    own = tf.raw_ops.DeepCopy(x=shared)
    del shared
    inner.assign(own)
    del own


def _spill_file(size: int) -> IO[bytes] | None:
    """An unnamed temporary file on a real disk with room for `size` bytes, or None
    (a tmpfs /tmp is memory too: the copy then stays in the process)."""
    for folder in (tempfile.gettempdir(), os.path.expanduser("~/.cache")):
        try:
            if not os.path.isdir(folder) or _in_memory(folder):
                continue
            if shutil.disk_usage(folder).free < 2 * size:
                continue
            return tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed by close()
        except OSError:
            continue
    return None


def _in_memory(folder: str) -> bool:
    """Is `folder` on a tmpfs/ramfs mount (Linux; False where /proc/mounts is absent)?"""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return False
    path = os.path.realpath(folder)
    best, kind = "", ""
    for point, fstype in mounts:
        point = point.replace("\\040", " ")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fstype
    return kind in ("tmpfs", "ramfs")
