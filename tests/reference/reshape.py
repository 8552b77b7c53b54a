"""Flatten and Reshape: the same values, row-major, under another per-sample
shape (``torch.flatten(x, 1)`` and ``x.reshape(n, *shape)``). The backward
pass gives the gradient back its input shape."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["flatten_shape", "reshape_backward", "reshape_forward", "resolve_shape"]


def resolve_shape(shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    """``shape`` with its one ``-1`` (if any) replaced so that the product is
    ``size``; raises ValueError when no such shape exists."""
    shape = tuple(int(d) for d in shape)
    known = math.prod(d for d in shape if d != -1)
    if shape.count(-1) > 1 or any(d < 1 and d != -1 for d in shape):
        raise ValueError(f"invalid shape {shape}")
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape {size} values into {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape {size} values into {shape}")
    return shape


def flatten_shape(sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (math.prod(sample_shape),)


def reshape_forward(x: np.ndarray, sample_shape: tuple[int, ...]) -> np.ndarray:
    """x (n, *in) -> (n, *sample_shape), row-major (a copy)."""
    return x.reshape(x.shape[0], *sample_shape).copy()


def reshape_backward(x_shape: tuple[int, ...], dy: np.ndarray) -> np.ndarray:
    """forward ``y = reshape(x)``, so ``dx = reshape(dy)`` to x's shape."""
    return dy.reshape(x_shape).copy()
