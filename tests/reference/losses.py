"""Losses, each returning ``(loss, dloss/dinput)`` with PyTorch's default
``reduction="mean"``.

The loss is a NumPy scalar of the input's dtype; the gradient has the
input's shape and dtype.
"""

from __future__ import annotations

import numpy as np

from .activations import _as_float, softmax

__all__ = [
    "BCE_EPSILON",
    "BCE_LOG_CLAMP",
    "LOSSES",
    "binary_cross_entropy",
    "cross_entropy_logits",
    "log_softmax",
    "mse",
    "one_hot",
]

#: torch clamps each log term of binary cross-entropy to >= -100, so
#: ``p = 0`` or ``p = 1`` gives a finite loss (at most 100 per element).
BCE_LOG_CLAMP = -100.0
#: torch's BCE backward divides by ``max(p (1 - p), EPSILON)`` where
#: ``EPSILON`` is the C++ ``float`` 1e-12, i.e. 9.999999960041972e-13 even
#: in float64. Matching it bit for bit matters when ``p`` is 0 or 1.
BCE_EPSILON = float(np.float32(1e-12))


def mse(out: np.ndarray, target: np.ndarray) -> tuple[np.generic, np.ndarray]:
    """Mean squared error, as ``torch.nn.MSELoss()``.

    ``L = (1/M) sum_i (out_i - t_i)^2`` over all ``M`` elements;
    ``dL/dout = (2/M) (out - t)``.
    """
    out = _as_float(out)
    t = np.asarray(target, dtype=out.dtype)
    diff = out - t
    m = diff.size
    loss = np.sum(diff * diff) / m
    return out.dtype.type(loss), (2 / m) * diff


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``log softmax(z)_ij = z_ij - m_i - log sum_k exp(z_ik - m_i)``,
    ``m_i = max_k z_ik`` (stable log-sum-exp)."""
    z = _as_float(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def one_hot(labels: np.ndarray, num_classes: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """(N,) integer labels -> (N, C) one-hot rows."""
    labels = np.asarray(labels)
    y = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    y[np.arange(labels.shape[0]), labels] = 1
    return y


def _targets_as_rows(y: np.ndarray, n: int, c: int, dtype: np.dtype) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"1-D cross-entropy targets must be integer labels, got dtype {y.dtype}")
        return one_hot(y, c, dtype)
    if y.shape != (n, c):
        raise ValueError(f"probability targets must have shape {(n, c)}, got {y.shape}")
    return y.astype(dtype, copy=False)


def cross_entropy_logits(z: np.ndarray, y: np.ndarray) -> tuple[np.generic, np.ndarray]:
    """Softmax cross-entropy on logits, as ``torch.nn.CrossEntropyLoss()``.

    ``z`` is (N, C) logits; ``y`` is (N,) integer labels or (N, C)
    probability rows (labels are the one-hot case). With
    ``log p = log_softmax(z)``:

    ``L = -(1/N) sum_n sum_c y_nc log p_nc``,
    ``dL/dz = (softmax(z) - y) / N``.

    (For probability targets torch also divides by N, not by sum(y).)
    """
    z = _as_float(z)
    n, c = z.shape
    rows = _targets_as_rows(y, n, c, z.dtype)
    logp = log_softmax(z)
    loss = -np.sum(rows * logp) / n
    return z.dtype.type(loss), (softmax(z) - rows) / n


def binary_cross_entropy(p: np.ndarray, target: np.ndarray) -> tuple[np.generic, np.ndarray]:
    """Binary cross-entropy on probabilities, as ``torch.nn.BCELoss()``.

    ``L = -(1/M) sum_i [t_i max(log p_i, -100) + (1 - t_i) max(log(1 - p_i), -100)]``
    (``log(1 - p)`` evaluated as ``log1p(-p)``; the clamp at -100 is
    torch's, it keeps ``p`` in {0, 1} finite).

    ``dL/dp = (p - t) / max(p (1 - p), EPSILON) / M`` with torch's
    ``EPSILON`` (:data:`BCE_EPSILON`). This is the exact derivative of the
    unclamped loss away from 0 and 1, and torch's finite surrogate at them.
    """
    p = _as_float(p)
    t = np.asarray(target, dtype=p.dtype)
    clamp = p.dtype.type(BCE_LOG_CLAMP)
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped next line
        log_p = np.maximum(np.log(p), clamp)
        log_1mp = np.maximum(np.log1p(-p), clamp)
    m = p.size
    loss = -np.sum(t * log_p + (1 - t) * log_1mp) / m
    eps = p.dtype.type(BCE_EPSILON)
    grad = (p - t) / np.maximum((1 - p) * p, eps) / m
    return p.dtype.type(loss), grad


#: name -> loss function, the names the Network API uses.
LOSSES = {
    "mse": mse,
    "cross_entropy": cross_entropy_logits,
    "binary_cross_entropy": binary_cross_entropy,
}
