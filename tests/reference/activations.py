"""Element-wise activations and their derivatives, plus row-wise softmax.

Each entry of :data:`ACTIVATIONS` is a pair ``(f, df)``: ``f(z)`` is the
activation and ``df(z)`` its element-wise derivative ``f'(z)``, both taking
the pre-activation ``z``. Shapes are preserved; the dtype of ``z`` is
preserved (float32 in, float32 out) and the arithmetic is done in that dtype,
except for GELU, whose ``erf`` is evaluated in float64 (see :func:`gelu`).

Derivatives at exactly ``z == 0`` follow PyTorch's autograd (torch 2.13):

================  =========  ==========================================
activation        f'(0)      why
================  =========  ==========================================
relu              0          ``threshold_backward``: ``z <= 0 -> 0``
leaky_relu        0.01       ``z > 0 ? 1 : slope``: 0 takes the slope
elu (alpha=1)     1          both branches give 1 at 0 (``alpha e^0``)
gelu              0.5        ``Phi(0) + 0 * phi(0)``
================  =========  ==========================================

Overflow: nothing here overflows for ``|z|`` up to 1e4 or beyond: sigmoid
and softmax only ever exponentiate non-positive numbers, ELU only ``min(z,
0)``, and GELU's Gaussian density only ``-z^2/2`` (which underflows to 0,
silently, as it should).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ELU_ALPHA",
    "LEAKY_RELU_SLOPE",
    "activation_backward",
    "activation_forward",
    "softmax",
    "softmax_backward",
]

LEAKY_RELU_SLOPE = 0.01  # torch.nn.LeakyReLU default negative_slope
ELU_ALPHA = 1.0  # torch.nn.ELU default alpha

_erf = np.vectorize(math.erf, otypes=[np.float64])
_SQRT1_2 = 1.0 / math.sqrt(2.0)  # 1 / sqrt(2)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)  # 1 / sqrt(2 pi)


def _as_float(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    return z


# identity: f(z) = z, f'(z) = 1
def identity(z: np.ndarray) -> np.ndarray:
    return _as_float(z).copy()


def identity_grad(z: np.ndarray) -> np.ndarray:
    return np.ones_like(_as_float(z))


# sigmoid: f(z) = 1 / (1 + e^{-z}), f'(z) = f(z) (1 - f(z))
def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-z))``, evaluated without overflow.

    With ``e = exp(-|z|)`` (always in (0, 1]):
    ``sigmoid(z) = 1 / (1 + e)`` for ``z >= 0`` and ``e / (1 + e)`` for
    ``z < 0``; both are the same function, neither exponentiates a positive
    number.
    """
    z = _as_float(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def sigmoid_grad(z: np.ndarray) -> np.ndarray:
    """``sigmoid'(z) = s (1 - s)`` with ``s = sigmoid(z)``."""
    s = sigmoid(z)
    return s * (1 - s)


# tanh: f(z) = tanh z, f'(z) = 1 - tanh^2 z
def tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(_as_float(z))


def tanh_grad(z: np.ndarray) -> np.ndarray:
    """``tanh'(z) = 1 - tanh(z)^2``."""
    t = np.tanh(_as_float(z))
    return 1 - t * t


# relu: f(z) = max(z, 0), f'(z) = [z > 0]  (0 at z == 0, as torch)
def relu(z: np.ndarray) -> np.ndarray:
    z = _as_float(z)
    return np.where(z > 0, z, np.zeros_like(z))


def relu_grad(z: np.ndarray) -> np.ndarray:
    """``relu'(z) = 1 if z > 0 else 0``; ``relu'(0) = 0`` (torch's convention)."""
    z = _as_float(z)
    return (z > 0).astype(z.dtype)


# leaky_relu: f(z) = z if z > 0 else 0.01 z, f'(z) = 1 if z > 0 else 0.01
def leaky_relu(z: np.ndarray) -> np.ndarray:
    z = _as_float(z)
    slope = z.dtype.type(LEAKY_RELU_SLOPE)
    return np.where(z > 0, z, slope * z)


def leaky_relu_grad(z: np.ndarray) -> np.ndarray:
    """``1 if z > 0 else 0.01``; the slope at ``z == 0`` is 0.01 (torch's)."""
    z = _as_float(z)
    slope = z.dtype.type(LEAKY_RELU_SLOPE)
    return np.where(z > 0, z.dtype.type(1), slope).astype(z.dtype, copy=False)


# elu: f(z) = z if z > 0 else alpha (e^z - 1), f'(z) = 1 if z > 0 else alpha e^z
def elu(z: np.ndarray) -> np.ndarray:
    """ELU (Clevert et al., 2015): ``z`` for ``z > 0``, ``alpha (e^z - 1)``
    otherwise, with ``alpha = 1``. ``e^z - 1`` is ``expm1`` (accurate near 0)
    evaluated on ``min(z, 0)`` so large positive ``z`` cannot overflow."""
    z = _as_float(z)
    alpha = z.dtype.type(ELU_ALPHA)
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def elu_grad(z: np.ndarray) -> np.ndarray:
    """``1 if z > 0 else alpha e^z``; at ``z == 0`` both branches are 1."""
    z = _as_float(z)
    alpha = z.dtype.type(ELU_ALPHA)
    return np.where(z > 0, z.dtype.type(1), alpha * np.exp(np.minimum(z, 0)))


# gelu (exact): f(z) = z Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
#               f'(z) = Phi(z) + z phi(z),  phi(z) = e^{-z^2/2} / sqrt(2 pi)
def gelu(z: np.ndarray) -> np.ndarray:
    """Exact GELU (Hendrycks & Gimpel, 2016): ``0.5 z (1 + erf(z / sqrt 2))``.

    Computed in float64 with ``math.erf`` (correctly rounded to within an
    ulp or so) and rounded to the input dtype. This is the same formula as
    torch's ``gelu(approximate="none")``, including its absolute (not
    relative) accuracy in the far negative tail, where ``1 + erf`` cancels:
    for ``z < -6`` expect agreement to ~1e-16 absolute, not relative.
    """
    z = _as_float(z)
    z64 = z.astype(np.float64)
    return (0.5 * z64 * (1.0 + _erf(z64 * _SQRT1_2))).astype(z.dtype, copy=False)


def gelu_grad(z: np.ndarray) -> np.ndarray:
    """``gelu'(z) = Phi(z) + z phi(z)`` (float64 inside, like :func:`gelu`)."""
    z = _as_float(z)
    z64 = z.astype(np.float64)
    cdf = 0.5 * (1.0 + _erf(z64 * _SQRT1_2))
    pdf = np.exp(-0.5 * z64 * z64) * _INV_SQRT_2PI
    return (cdf + z64 * pdf).astype(z.dtype, copy=False)


Activation = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]

#: name -> (f, df), element-wise. Softmax is row-wise and lives apart.
ACTIVATIONS: dict[str, Activation] = {
    "identity": (identity, identity_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "elu": (elu, elu_grad),
    "gelu": (gelu, gelu_grad),
}


# softmax: a_ij = e^{z_ij} / sum_k e^{z_ik}  (row-wise)
def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``a_ij = exp(z_ij - m_i) / sum_k exp(z_ik - m_i)``,
    ``m_i = max_k z_ik`` (subtracting the row max changes nothing
    mathematically and keeps every exponent <= 0). ``z`` is (N, C)."""
    z = _as_float(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(a: np.ndarray, da: np.ndarray) -> np.ndarray:
    """Vector-Jacobian product of row-wise softmax.

    The Jacobian of one row is ``da_i/dz_j = a_i (delta_ij - a_j)``, so
    ``dz_j = sum_i da_i a_i (delta_ij - a_j) = a_j (da_j - sum_i da_i a_i)``:
    ``dz = a * (da - sum(da * a, axis=1, keepdims=True))``. ``a``, ``da``:
    (N, C); returns (N, C).
    """
    a = np.asarray(a)
    da = np.asarray(da)
    return a * (da - np.sum(da * a, axis=-1, keepdims=True))


def _name(activation: str | None) -> str:
    return "identity" if activation is None else activation


def activation_forward(z: np.ndarray, activation: str | None) -> np.ndarray:
    """``a = act(z)`` for any name in :data:`ACTIVATIONS`, ``"softmax"`` or
    ``None`` (identity)."""
    name = _name(activation)
    if name == "softmax":
        return softmax(z)
    return ACTIVATIONS[name][0](z)


def activation_backward(z: np.ndarray, a: np.ndarray, da: np.ndarray, activation: str | None) -> np.ndarray:
    """``dz = da * act'(z)`` (element-wise), or the softmax VJP."""
    name = _name(activation)
    if name == "softmax":
        return softmax_backward(a, da)
    return np.asarray(da) * ACTIVATIONS[name][1](z)
