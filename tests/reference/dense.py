"""The dense (fully connected) layer: forward and backward.

Applied over the last axis, as ``torch.nn.Linear``: ``x`` is (..., IN)
(``(N, IN)`` for flat samples, ``(N, T, IN)`` for sequences), ``W`` is
(OUT, IN), ``b`` is (OUT,) or None, ``z`` and ``a`` are (..., OUT). Every
position of the leading axes is one row of the product.
"""

from __future__ import annotations

import numpy as np

from .activations import activation_backward, activation_forward

__all__ = ["dense_backward", "dense_backward_from_dz", "dense_forward"]


def dense_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray | None, activation: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """``z = x W^T + b``, ``a = act(z)`` (softmax over the last axis).

    Returns ``(a, z)``.
    """
    z = x @ W.T
    if b is not None:
        z = z + b
    return activation_forward(z, activation), z


def dense_backward_from_dz(
    x: np.ndarray, W: np.ndarray, dz: np.ndarray, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward of ``z = x W^T + b`` given ``dz = dL/dz`` (..., OUT).

    With the leading axes flattened into R rows (x as (R, IN), dz as
    (R, OUT)): ``dW = dz^T x`` (OUT, IN), ``db = sum_r dz_r`` (OUT,),
    ``dx = dz W`` (..., IN), or None when ``need_dx`` is False.
    """
    rows_x = x.reshape(-1, x.shape[-1])
    rows_dz = dz.reshape(-1, dz.shape[-1])
    dW = rows_dz.T @ rows_x
    db = rows_dz.sum(axis=0)
    dx = dz @ W if need_dx else None
    return dx, dW, db


def dense_backward(
    x: np.ndarray,
    W: np.ndarray,
    z: np.ndarray,
    a: np.ndarray,
    da: np.ndarray,
    activation: str | None,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Backward of ``a = act(x W^T + b)`` by the chain rule.

    ``dz = da * act'(z)`` (for softmax, ``dz = a * (da - sum(da * a, -1))``),
    then ``dW = dz^T x``, ``db = sum_r dz_r``, ``dx = dz W``.
    Returns ``(dx or None, dW, db)``; ``db`` is returned even for a layer
    without bias (the caller drops it).
    """
    dz = activation_backward(z, a, da, activation)
    return dense_backward_from_dz(x, W, dz, need_dx)
