"""Convolution (cross-correlation, as torch.nn.Conv1d/2d) from its definition:

    z[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * xp[n, c, oh*sh + i*dh, ow*sw + j*dw]

with ``xp`` the input padded with zeros (``before`` and ``after`` each
spatial axis). The sum runs tap by tap over the kernel, each tap a strided
view of ``xp``: direct loops over the kernel, no column matrix. 1-D layers
are the 2-D case with a height of 1. Shapes: ``x`` (n, C, H, W), ``W``
(OUT, C, KH, KW), ``b`` (OUT,) or None, ``z`` (n, OUT, OH, OW).
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv_backward", "conv_forward", "conv_output_size"]


def conv_output_size(size: int, before: int, after: int, k: int, stride: int, dilation: int) -> int:
    """``floor((size + before + after - dilation*(k-1) - 1) / stride) + 1``."""
    return (size + before + after - dilation * (k - 1) - 1) // stride + 1


def _tap(xp: np.ndarray, i: int, j: int, out: tuple[int, int], stride: tuple[int, int],
         dilation: tuple[int, int]) -> tuple[slice, slice]:
    """The (rows, columns) of xp that tap (i, j) reads for every output position."""
    (oh, ow), (sh, sw), (dh, dw) = out, stride, dilation
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _padded(x: np.ndarray, before: tuple[int, int], after: tuple[int, int]) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))


def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
                 before: tuple[int, int], after: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """z = conv(x, W) + b, summed tap by tap (see the module docstring)."""
    xp = _padded(x, before, after)
    KH, KW = W.shape[2:]
    out = (conv_output_size(x.shape[2], before[0], after[0], KH, stride[0], dilation[0]),
           conv_output_size(x.shape[3], before[1], after[1], KW, stride[1], dilation[1]))
    z = np.zeros((x.shape[0], W.shape[0], *out), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            rows, cols = _tap(xp, i, j, out, stride, dilation)
            z += np.einsum("nchw,oc->nohw", xp[:, :, rows, cols], W[:, :, i, j])
    if b is not None:
        z += b[None, :, None, None]
    return z


def conv_backward(x: np.ndarray, W: np.ndarray, dz: np.ndarray, stride: tuple[int, int],
                  before: tuple[int, int], after: tuple[int, int],
                  dilation: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of ``z = conv(x, W) + b`` given ``dz``: each tap's term
    ``W[:, :, i, j] . xp[tap]`` gives ``dW[:, :, i, j] = sum dz * xp[tap]`` and
    ``dxp[tap] += W[:, :, i, j]^T dz``; ``db = sum of dz`` over samples and
    positions; dx is dxp without its padding. Returns (dx, dW, db)."""
    xp = _padded(x, before, after)
    dxp = np.zeros_like(xp)
    dW = np.zeros_like(W)
    out = dz.shape[2:]
    for i in range(W.shape[2]):
        for j in range(W.shape[3]):
            rows, cols = _tap(xp, i, j, out, stride, dilation)
            dW[:, :, i, j] = np.einsum("nohw,nchw->oc", dz, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nohw,oc->nchw", dz, W[:, :, i, j])
    H, Wd = x.shape[2:]
    dx = dxp[:, :, before[0]:before[0] + H, before[1]:before[1] + Wd]
    return dx, dW, dz.sum(axis=(0, 2, 3))
