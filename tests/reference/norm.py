"""Batch normalisation (Ioffe & Szegedy 2015) and layer normalisation
(Ba et al. 2016), from their definitions.

Batch norm: x is (n, C, *positions); statistics per channel over samples
and positions. Layer norm: statistics per row over the trailing ``D``
values (x reshaped to (rows, D)). Both use the biased variance to
normalise: ``xhat = (x - mean) / sqrt(var + eps)``, ``y = xhat * w + b``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_norm_backward", "batch_norm_forward", "layer_norm_backward", "layer_norm_forward",
           "running_update"]


def _channel_axes(x: np.ndarray) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape(1, -1, *([1] * (ndim - 2)))


def batch_norm_forward(x, w, b, eps, mean=None, var=None):
    """y = (x - mean) / sqrt(var + eps) * w + b per channel; mean and var are
    the batch's (biased) unless given (the running estimates). Returns
    (y, cache) with cache = (xhat, std, batch_statistics)."""
    batch = mean is None
    axes = _channel_axes(x)
    if batch:
        mean = x.mean(axis=axes)
        var = ((x - _per_channel(mean, x.ndim)) ** 2).mean(axis=axes)
    std = np.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x.ndim)) / _per_channel(std, x.ndim)
    y = xhat
    if w is not None:
        y = xhat * _per_channel(w, x.ndim) + _per_channel(b, x.ndim)
    return y, (xhat, std, batch)


def running_update(running_mean, running_var, x, momentum):
    """The running estimates after a training batch: ``(1 - m) r + m s``, with
    the unbiased variance ``var * count / (count - 1)``."""
    axes = _channel_axes(x)
    count = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var = ((x - _per_channel(mean, x.ndim)) ** 2).mean(axis=axes) * count / (count - 1)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


def batch_norm_backward(cache, w, dy):
    """Backward of y = xhat * w + b. With batch statistics, xhat depends on
    every x of its channel through mean and var:
    ``dx = (g - mean(g) - xhat * mean(g * xhat)) / std``, ``g = dy * w``;
    with fixed statistics ``dx = g / std``. Returns (dx, dw, db)."""
    xhat, std, batch = cache
    axes = _channel_axes(dy)
    g = dy if w is None else dy * _per_channel(w, dy.ndim)
    if batch:
        g = g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)
    dx = g / _per_channel(std, dy.ndim)
    return dx, (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def layer_norm_forward(x, w, b, eps, D):
    """Per row of the trailing D values: y = (x - mean) / sqrt(var + eps) * w + b."""
    rows = x.reshape(-1, D)
    mean = rows.mean(axis=1, keepdims=True)
    std = np.sqrt(((rows - mean) ** 2).mean(axis=1, keepdims=True) + eps)
    xhat = (rows - mean) / std
    y = xhat
    if w is not None:
        y = y * w.reshape(-1)
    if b is not None:
        y = y + b.reshape(-1)
    return y.reshape(x.shape), (xhat, std)


def layer_norm_backward(cache, w, dy, D):
    """dx = (g - mean(g) - xhat * mean(g * xhat)) / std per row, g = dy * w;
    dw = sum over rows of dy * xhat, db = sum of dy. Returns (dx, dw, db) (flat dw, db)."""
    xhat, std = cache
    d = dy.reshape(-1, D)
    g = d if w is None else d * w.reshape(-1)
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx.reshape(dy.shape), (d * xhat).sum(axis=0), d.sum(axis=0)
