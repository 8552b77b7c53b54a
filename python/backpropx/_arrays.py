"""Conversion and checking of user arrays at the Python/C++ boundary.

Every check runs before any C++ call that could change state, so a rejected
call leaves the network and optimizer exactly as they were.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from ._sparse import as_sparse_rows, is_sparse

DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype: Any) -> np.dtype:
    """The network dtype for a user's spelling: "float32", np.float64, ..."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if dt.name not in DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return dt


def all_finite(a: np.ndarray) -> bool:
    """No NaN or infinity in a C-contiguous float32/float64 array; one pass, no temporaries."""
    return bool(getattr(_core, f"all_finite_{a.dtype.name}")(a))


def _numeric(a: np.ndarray, name: str) -> None:
    if a.dtype.kind not in "biuf":
        kind = {"c": "complex", "O": "object", "U": "string", "S": "bytes"}.get(a.dtype.kind, a.dtype.name)
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype} ({kind})")


def _asarray(a: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists, unconvertible objects
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    _numeric(arr, name)
    return arr


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(n, " + ", ".join(str(d) for d in shape) + ")"


def as_features(X: Any, dtype: np.dtype, shape: Any, name: str = "X",
                source: str = "the network expects") -> Any:
    """X as a C-contiguous (n, *shape) array of the network dtype, or, for a
    scipy.sparse X and 1-d samples, as the core's CSR rows (``_sparse``).

    `shape` is the per-sample shape (an int means one axis of that size);
    `source` says where it comes from in messages.
    """
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if is_sparse(X):
        return as_sparse_rows(X, dtype, shape, name, source)
    arr = _asarray(X, name)
    if len(shape) == 1:
        if arr.ndim != 2:
            hint = " (use X.reshape(1, -1) for a single sample)" if arr.ndim == 1 else ""
            raise ValueError(f"{name} must be 2-dimensional (samples, features), got shape {arr.shape}{hint}")
        if arr.shape[1] != shape[0]:
            raise ValueError(f"{name} has {arr.shape[1]} features per sample, but {source} {shape[0]}")
    elif arr.shape[1:] != shape:
        hint = ""
        if arr.ndim == len(shape) and arr.shape == shape:
            hint = f" (use {name}[None] for a single sample)"
        raise ValueError(f"{name} must have shape {_shape_str(shape)}, got {arr.shape}{hint}")
    with np.errstate(over="ignore"):  # a finite value too large for float32 is reported below
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not all_finite(out):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        if np.isfinite(arr[bad]):
            raise ValueError(f"{name} holds a value ({arr[bad]}) at index {bad} too large for {np.dtype(dtype).name}")
        raise ValueError(f"{name} contains a non-finite value ({out[bad]}) at index {bad}")
    return out


def as_targets(y: Any, loss: str, n: int, output_shape: Any, dtype: np.dtype, name: str = "y",
               lengths: np.ndarray | None = None):
    """(values, labels) for the C++ core; exactly one is not None.

    Losses act on the last axis of the output ``(*lead, C)``: cross_entropy
    takes integer labels ``(n, *lead)`` in [0, C) or probability rows
    ``(n, *lead, C)``; mse, binary_cross_entropy and poisson take ``(n, *lead, C)``, or
    ``(n,)`` when the network has one output value. Labels go to the core
    flattened, one per loss row. With ``lengths`` (the checked per-sample
    lengths of a network whose output keeps the steps of its first axis),
    labels of padded steps are ignored: any integer may stand there (-100, as
    torch's ignore_index, or 0).
    """
    out = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) else tuple(output_shape)
    lead, C = out[:-1], out[-1]
    arr = _asarray(y, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have one entry per sample, got a scalar")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} samples but X has {n}")
    if loss == "cross_entropy" and arr.shape[1:] == lead and (arr.ndim == 1 or arr.dtype.kind in "iub"
                                                               or arr.ndim == len(out)):
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
                raise ValueError(f"{name} holds class labels for cross_entropy, which must be integers; "
                                 "got non-integer values")
        if arr.dtype.kind == "b":
            raise TypeError(f"{name} holds booleans; cross_entropy needs integer class labels")
        labels = np.ascontiguousarray(arr, dtype=np.int64)
        if lengths is not None and len(lead) >= 1:
            counted = np.arange(lead[0]).reshape((1, lead[0]) + (1,) * (len(lead) - 1)) < lengths.reshape(
                (n,) + (1,) * len(lead))
            labels = np.where(counted, labels, 0)  # padded steps: no loss, so any label
        labels = labels.reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= C):
            bad = labels[(labels < 0) | (labels >= C)][0]
            raise ValueError(f"{name} contains label {bad}, outside [0, {C}) for a network "
                             f"with {C} outputs")
        return None, labels
    if out == (1,) and arr.ndim == 1:
        arr = arr.reshape(n, 1)
    if arr.shape[1:] != out:
        if len(out) == 1:
            expected = f"({n}, {C})"
            if arr.ndim > 2:
                raise ValueError(f"{name} must be 1- or 2-dimensional, got shape {arr.shape}")
            raise ValueError(f"{name} has shape {arr.shape}, but the network has {C} outputs: expected {expected}")
        labels_hint = f" or integer labels ({n}, {', '.join(map(str, lead))})" if loss == "cross_entropy" else ""
        raise ValueError(f"{name} has shape {arr.shape}, but the network outputs {_shape_str(out)}: "
                         f"expected ({n}, {', '.join(map(str, out))}){labels_hint}")
    with np.errstate(over="ignore"):
        values = np.ascontiguousarray(arr, dtype=dtype)
    if not all_finite(values):
        if np.isfinite(arr).all():
            raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name}")
        raise ValueError(f"{name} contains non-finite values")
    if loss in ("binary_cross_entropy", "cross_entropy") and ((values < 0).any() or (values > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1] for {loss}")
    if loss == "poisson" and (values < 0).any():
        raise ValueError(f"{name} must be non-negative for poisson (counts or rates)")
    return values, None


def as_lengths(lengths: Any, n: int, network: Any, name: str = "lengths") -> np.ndarray | None:
    """Per-sample sequence lengths as a C-contiguous int64 (n,) array, or None.

    Each counts the valid steps of the first axis of a sample (the time axis
    of ``(n, T, F)`` sequences or ``(n, T)`` token ids): an integer in
    ``[1, T]``. The network must use them (a recurrent layer, or an output
    that keeps the steps, whose padded rows losses then skip): the core
    checks that, and where they are used.
    """
    if lengths is None:
        return None
    arr = _asarray(lengths, name)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), one length per sample, got {arr.shape}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} holds booleans; give the number of valid steps of each sample")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        raise ValueError(f"{name} must hold integers, got non-integer values")
    steps = network.input_shape[0]
    if arr.size and (arr.min() < 1 or arr.max() > steps):
        bad = int(np.flatnonzero((arr < 1) | (arr > steps))[0])
        raise ValueError(f"{name}[{bad}] is {arr[bad]}; each length must be in [1, {steps}] "
                         f"(the steps of the input's first axis)")
    return np.ascontiguousarray(arr, dtype=np.int64)


#: The largest size (features, batch size, ...) the core's 64-bit indices accept;
#: sizes below it whose memory cannot exist are refused with MemoryError.
MAX_SIZE = 2**63 - 1


def check_int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """value as an int, rejecting bools, floats and out-of-range values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_seed(seed: Any) -> int:
    seed = check_int(seed, "seed", 0)
    if seed >= 2**64:
        raise ValueError(f"seed must be below 2**64, got {seed}")
    return seed


def as_sample_weight(sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
    """Per-sample weights as a C-contiguous (n,) array, or None."""
    if sample_weight is None:
        return None
    arr = _asarray(sample_weight, "sample_weight")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {arr.shape}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(out).all() or (out < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    return out
