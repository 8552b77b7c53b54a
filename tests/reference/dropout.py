"""Inverted dropout (Srivastava et al., 2014), given its keep-mask.

In training each element is kept (``keep = 1``) or dropped (``keep = 0``)
and the kept ones are scaled by ``1 / (1 - p)``, so that the expectation is
unchanged and inference is the identity. Which elements are dropped comes
from the core's seeded generator; the reference takes the mask as an input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dropout_backward", "dropout_forward"]


def dropout_forward(x: np.ndarray, keep: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """``y = x * m`` with ``m = keep / (1 - p)``; returns ``(y, m)``.

    ``keep`` has x's shape and holds only 0 and 1.
    """
    keep = np.asarray(keep)
    if keep.shape != x.shape:
        raise ValueError(f"dropout mask has shape {keep.shape}, the input {x.shape}")
    if not np.isin(keep, (0, 1)).all():
        raise ValueError("a dropout keep-mask holds only 0 and 1")
    m = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * m, m


def dropout_backward(m: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """forward ``y = x * m``, so ``dx = dy * m``."""
    return dy * m
