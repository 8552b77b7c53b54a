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
    "poisson",
]

#: torch clamps each log term of binary cross-entropy to >= -100, so
#: ``p = 0`` or ``p = 1`` gives a finite loss (at most 100 per element).
BCE_LOG_CLAMP = -100.0
#: torch's BCE backward divides by ``max(p (1 - p), EPSILON)`` where
#: ``EPSILON`` is the C++ ``float`` 1e-12, i.e. 9.999999960041972e-13 even
#: in float64. Matching it bit for bit matters when ``p`` is 0 or 1.
BCE_EPSILON = float(np.float32(1e-12))


def _row_weights(out: np.ndarray, sample_weight) -> tuple[np.ndarray, float]:
    """Per-row weights, shaped ``out.shape[:-1] + (1,)``, and their sum.

    Losses act on the last axis: an output (n, *lead, C) has n * prod(lead)
    rows of C values, and every row of sample i carries ``sample_weight[i]``
    (1 without weights)."""
    w = np.ones(out.shape[:1], dtype=np.float64) if sample_weight is None else np.asarray(
        sample_weight, dtype=np.float64)
    if out.ndim < 2 or w.shape != out.shape[:1]:
        raise ValueError(f"sample weights {w.shape} need one weight per sample of an output {out.shape}")
    rows = np.broadcast_to(w.reshape((-1,) + (1,) * (out.ndim - 1)), out.shape[:-1] + (1,))
    return rows.astype(out.dtype), float(rows.sum())


def _weighted_mean(row_losses: np.ndarray, rows: np.ndarray, total: float) -> float:
    """``sum_r w_r l_r / sum_r w_r``; 0 when every weight is 0 (as the core)."""
    return float(np.sum(rows[..., 0] * row_losses) / total) if total > 0 else 0.0


def mse(out: np.ndarray, target: np.ndarray, sample_weight=None) -> tuple[np.generic, np.ndarray]:
    """Mean squared error, as ``torch.nn.MSELoss()``.

    ``L = (1/M) sum_i (out_i - t_i)^2`` over all ``M`` elements;
    ``dL/dout = (2/M) (out - t)``.

    With per-sample weights (an output of any shape (n, ..., C)): each row r
    of C values has the loss ``l_r = (1/C) sum_c (out_rc - t_rc)^2`` and the
    weight ``w_r`` of its sample, ``L = sum_r w_r l_r / sum_r w_r`` and
    ``dL/dout_rc = 2 w_r (out_rc - t_rc) / (C sum_r w_r)``.
    """
    out = _as_float(out)
    t = np.asarray(target, dtype=out.dtype)
    diff = out - t
    if sample_weight is None:
        m = diff.size
        loss = np.sum(diff * diff) / m
        return out.dtype.type(loss), (2 / m) * diff
    rows, total = _row_weights(out, sample_weight)
    c = out.shape[-1]
    loss = _weighted_mean(np.mean(diff * diff, axis=-1), rows, total)
    scale = 2 / (c * total) if total > 0 else 0.0
    return out.dtype.type(loss), (scale * rows * diff).astype(out.dtype)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log softmax(z)`` over the last axis:
    ``z_ij - m_i - log sum_k exp(z_ik - m_i)``, ``m_i = max_k z_ik``
    (stable log-sum-exp)."""
    z = _as_float(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def one_hot(labels: np.ndarray, num_classes: int, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Integer labels of any shape S -> one-hot rows of shape S + (C,)."""
    labels = np.asarray(labels)
    y = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(y, labels[..., None], 1, axis=-1)
    return y


def _target_rows(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Targets of logits z (..., C) as probability rows: integer labels of
    shape z.shape[:-1] (one per row: (N,), or (n, T) per time step) become
    one-hot rows; probability rows have z's shape."""
    y = np.asarray(y)
    if y.shape == z.shape[:-1]:
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"cross-entropy labels must be integers, got dtype {y.dtype}")
        return one_hot(y, z.shape[-1], z.dtype)
    if y.shape != z.shape:
        raise ValueError(f"cross-entropy targets must be labels {z.shape[:-1]} or probability rows "
                         f"{z.shape}, got {y.shape}")
    return y.astype(z.dtype, copy=False)


def cross_entropy_logits(z: np.ndarray, y: np.ndarray, sample_weight=None) -> tuple[np.generic, np.ndarray]:
    """Softmax cross-entropy on logits, as ``torch.nn.CrossEntropyLoss()``.

    ``z`` is (N, C) logits, or (n, ..., C): rows over the last axis; ``y``
    integer labels (one per row) or probability rows (labels are the one-hot
    case). With ``log p = log_softmax(z)`` and R rows:

    ``L = -(1/R) sum_r sum_c y_rc log p_rc``,
    ``dL/dz = (softmax(z) sum_c y_rc - y) / R``.

    Rows of ``y`` need not sum to 1 (``sum_c y_rc`` is 1 for labels and true
    probability rows). For probability targets torch also divides by R, not
    by sum(y). With per-sample weights: ``L = sum_r w_r l_r / sum_r w_r``,
    ``dL/dz_r = w_r (softmax(z_r) sum_c y_rc - y_r) / sum_r w_r``.
    """
    z = _as_float(z)
    rows = _target_rows(y, z)
    logp = log_softmax(z)
    mass = rows.sum(axis=-1, keepdims=True)  # 1 unless the rows do not sum to 1
    if sample_weight is None:
        n = z.size // z.shape[-1]
        loss = -np.sum(rows * logp) / n
        return z.dtype.type(loss), (softmax(z) * mass - rows) / n
    w, total = _row_weights(z, sample_weight)
    loss = _weighted_mean(-np.sum(rows * logp, axis=-1), w, total)
    scale = 1 / total if total > 0 else 0.0
    return z.dtype.type(loss), (scale * w * (softmax(z) * mass - rows)).astype(z.dtype)


def binary_cross_entropy(p: np.ndarray, target: np.ndarray, sample_weight=None) -> tuple[np.generic, np.ndarray]:
    """Binary cross-entropy on probabilities, as ``torch.nn.BCELoss()``.

    ``L = -(1/M) sum_i [t_i max(log p_i, -100) + (1 - t_i) max(log(1 - p_i), -100)]``
    (``log(1 - p)`` evaluated as ``log1p(-p)``; the clamp at -100 is
    torch's, it keeps ``p`` in {0, 1} finite).

    ``dL/dp = (p - t) / max(p (1 - p), EPSILON) / M`` with torch's
    ``EPSILON`` (:data:`BCE_EPSILON`). This is the exact derivative of the
    unclamped loss away from 0 and 1, and torch's finite surrogate at them.
    With per-sample weights, rows of C values are weighted as in :func:`mse`.
    """
    p = _as_float(p)
    t = np.asarray(target, dtype=p.dtype)
    clamp = p.dtype.type(BCE_LOG_CLAMP)
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped next line
        log_p = np.maximum(np.log(p), clamp)
        log_1mp = np.maximum(np.log1p(-p), clamp)
    eps = p.dtype.type(BCE_EPSILON)
    if sample_weight is None:
        m = p.size
        loss = -np.sum(t * log_p + (1 - t) * log_1mp) / m
        grad = (p - t) / np.maximum((1 - p) * p, eps) / m
        return p.dtype.type(loss), grad
    w, total = _row_weights(p, sample_weight)
    c = p.shape[-1]
    loss = _weighted_mean(-np.mean(t * log_p + (1 - t) * log_1mp, axis=-1), w, total)
    scale = 1 / (c * total) if total > 0 else 0.0
    grad = scale * w * (p - t) / np.maximum((1 - p) * p, eps)
    return p.dtype.type(loss), grad.astype(p.dtype)


def poisson(x: np.ndarray, target: np.ndarray, sample_weight=None) -> tuple[np.generic, np.ndarray]:
    """Half the Poisson deviance of ``mu = exp(x)``, ``x`` the log-rate.

    ``L = (1/M) sum_i [exp(x_i) - t_i x_i + xlogy(t_i, t_i) - t_i]`` over all
    ``M`` elements (``xlogy(0, 0) = 0``), i.e. the mean of
    ``t log(t / mu) - t + mu``: scikit-learn's ``poisson_loss`` of its
    MLPRegressor, divided by the number of outputs. Its gradient
    ``dL/dx = (exp(x) - t) / M`` is that of ``torch.nn.PoissonNLLLoss()``
    (``log_input=True``), whose value lacks the ``xlogy(t, t) - t`` term.
    With per-sample weights, rows of C values are weighted as in :func:`mse`.
    """
    x = _as_float(x)
    t = np.asarray(target, dtype=x.dtype)
    mu = np.exp(x)
    t_log_t = np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0)
    elementwise = mu - t * x + t_log_t - t
    if sample_weight is None:
        m = x.size
        return x.dtype.type(np.sum(elementwise) / m), (mu - t) / m
    w, total = _row_weights(x, sample_weight)
    c = x.shape[-1]
    loss = _weighted_mean(np.mean(elementwise, axis=-1), w, total)
    scale = 1 / (c * total) if total > 0 else 0.0
    return x.dtype.type(loss), (scale * w * (mu - t)).astype(x.dtype)


#: name -> loss function, the names the Network API uses.
LOSSES = {
    "mse": mse,
    "cross_entropy": cross_entropy_logits,
    "binary_cross_entropy": binary_cross_entropy,
    "poisson": poisson,
}
