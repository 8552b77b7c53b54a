"""Numerical gradients by central differences, and an error measure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["central_difference_gradients", "max_relative_error"]


def central_difference_gradients(
    f: Callable[[], float], params: dict[str, np.ndarray], eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """``df/dp_i ~= (f(p_i + h) - f(p_i - h)) / ((p_i + h) - (p_i - h))``.

    ``f()`` reads ``params`` (the same arrays, perturbed in place one element
    at a time) and returns a scalar. The denominator is the actually
    representable step, not ``2 eps``. Every element is restored to its
    exact original bits afterwards. Truncation error is O(eps^2 f'''),
    rounding error O(ulp(f) / eps): for float64 and eps = 1e-6 about 1e-10
    relative; use float64.
    """
    out: dict[str, np.ndarray] = {}
    for name, p in params.items():
        g = np.zeros(p.shape, dtype=np.float64)
        for idx in np.ndindex(p.shape):
            orig = p[idx].copy()
            plus = orig + p.dtype.type(eps)
            minus = orig - p.dtype.type(eps)
            try:
                p[idx] = plus
                f_plus = float(f())
                p[idx] = minus
                f_minus = float(f())
            finally:
                p[idx] = orig
            g[idx] = (f_plus - f_minus) / (float(plus) - float(minus))
        out[name] = g.astype(p.dtype, copy=False)
    return out


def max_relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max(max|a|, max|b|)`` (0 when both are all zero).

    Normalised by the largest magnitude of the whole tensor, so tiny
    elements cannot hide a large error and a 100% error can never pass.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)
