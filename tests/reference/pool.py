"""Pooling (torch.nn.MaxPool and AvgPool, ceil_mode=False) and the global
average, from their definitions, one output position at a time. Inputs are
(n, C, H, W) (1-D layers: H = 1); the window of output (oh, ow) covers rows
``oh*sh - ph .. + kh`` and columns ``ow*sw - pw .. + kw``, clipped to the
input (padding never wins a maximum; it counts as zeros in an average only
with count_include_pad)."""

from __future__ import annotations

import numpy as np

__all__ = ["avg_pool_backward", "avg_pool_forward", "max_pool_backward", "max_pool_forward", "pool_windows"]


def pool_windows(shape: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int]):
    """Yields ((oh, ow), rows slice, columns slice) of every output position."""
    H, W = shape
    oh_n = (H + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow_n = (W + 2 * padding[1] - kernel[1]) // stride[1] + 1
    for oh in range(oh_n):
        top = oh * stride[0] - padding[0]
        for ow in range(ow_n):
            left = ow * stride[1] - padding[1]
            yield (oh, ow), slice(max(top, 0), min(top + kernel[0], H)), slice(max(left, 0), min(left + kernel[1], W))


def _out_shape(x, kernel, stride, padding):
    H, W = x.shape[2:]
    return (*x.shape[:2], (H + 2 * padding[0] - kernel[0]) // stride[0] + 1,
            (W + 2 * padding[1] - kernel[1]) // stride[1] + 1)


def max_pool_forward(x, kernel, stride, padding) -> tuple[np.ndarray, dict]:
    """y = the maximum of each window; returns (y, where): where maps each
    output position to the (row, column) of its maximum per (n, c), the
    first in row-major order among equal values."""
    y = np.empty(_out_shape(x, kernel, stride, padding), dtype=x.dtype)
    where = {}
    for (oh, ow), rows, cols in pool_windows(x.shape[2:], kernel, stride, padding):
        window = x[:, :, rows, cols].reshape(*x.shape[:2], -1)
        k = np.argmax(window, axis=2)
        width = cols.stop - cols.start
        where[(oh, ow)] = (rows.start + k // width, cols.start + k % width)
        y[:, :, oh, ow] = np.take_along_axis(window, k[..., None], axis=2)[..., 0]
    return y, where


def max_pool_backward(x_shape, where, dy) -> np.ndarray:
    """forward y = x[argmax]; so dx[argmax] += dy, position by position."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    n_idx, c_idx = np.meshgrid(np.arange(x_shape[0]), np.arange(x_shape[1]), indexing="ij")
    for (oh, ow), (r, c) in where.items():
        np.add.at(dx, (n_idx, c_idx, r, c), dy[:, :, oh, ow])
    return dx


def _divisor(rows: slice, cols: slice, kernel, count_include_pad: bool) -> int:
    return kernel[0] * kernel[1] if count_include_pad else (rows.stop - rows.start) * (cols.stop - cols.start)


def avg_pool_forward(x, kernel, stride, padding, count_include_pad: bool) -> np.ndarray:
    """y = the sum of each window's input values / divisor (kh*kw with count_include_pad)."""
    y = np.empty(_out_shape(x, kernel, stride, padding), dtype=x.dtype)
    for (oh, ow), rows, cols in pool_windows(x.shape[2:], kernel, stride, padding):
        y[:, :, oh, ow] = x[:, :, rows, cols].sum(axis=(2, 3)) / x.dtype.type(
            _divisor(rows, cols, kernel, count_include_pad))
    return y


def avg_pool_backward(x_shape, dy, kernel, stride, padding, count_include_pad: bool) -> np.ndarray:
    """forward y = sum(window) / divisor; so every input of the window gets dy / divisor."""
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for (oh, ow), rows, cols in pool_windows(x_shape[2:], kernel, stride, padding):
        share = dy[:, :, oh, ow] / dy.dtype.type(_divisor(rows, cols, kernel, count_include_pad))
        dx[:, :, rows, cols] += share[:, :, None, None]
    return dx
