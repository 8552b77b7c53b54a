"""A feed-forward network of dense layers: forward pass, loss, backprop.

``layers`` is a list of dicts ``{"weight": W (OUT, IN), "bias": b (OUT,) or
None, "activation": name or None}``. Gradients are keyed like
``Network.state_dict()``: ``"{k}.weight"`` and ``"{k}.bias"`` (k the index
in ``layers``; the bias key is absent when the bias is None).

Which tensor a loss sees:

- ``"cross_entropy"`` acts on logits. If the last activation is
  ``"softmax"`` the logits are that layer's ``z`` and softmax is fused into
  the loss: ``dz = (softmax(z) - y) / N``. Otherwise the last layer's output
  ``a`` is taken as the logits (as ``torch.nn.CrossEntropyLoss`` applied to
  the network's output).
- ``"mse"`` and ``"binary_cross_entropy"`` act on the last layer's output
  ``a`` (BCE expects probabilities, i.e. a sigmoid output).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .dense import dense_backward, dense_backward_from_dz, dense_forward
from .losses import LOSSES, cross_entropy_logits

__all__ = [
    "backward",
    "forward_with_upstream_gradients",
    "loss_and_gradients",
    "loss_value",
    "network_forward",
]

Layer = Mapping[str, Any]


def network_forward(layers: Sequence[Layer], x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Returns ``[(a_k, z_k) for each layer k]``; ``a_{-1}`` is the output."""
    cache = []
    a = x
    for layer in layers:
        a, z = dense_forward(a, layer["weight"], layer.get("bias"), layer.get("activation"))
        cache.append((a, z))
    return cache


def backward(
    layers: Sequence[Layer],
    x: np.ndarray,
    cache: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    dout: np.ndarray | None = None,
    dz_last: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Backprop through all layers given either ``dout = dL/da_last`` or
    ``dz_last = dL/dz_last`` (exactly one). Returns the gradient dict."""
    if (dout is None) == (dz_last is None):
        raise ValueError("pass exactly one of dout and dz_last")
    grads: dict[str, np.ndarray] = {}
    da = dout
    for k in range(len(layers) - 1, -1, -1):
        layer = layers[k]
        x_k = x if k == 0 else cache[k - 1][0]
        a_k, z_k = cache[k]
        need_dx = k > 0
        if k == len(layers) - 1 and dz_last is not None:
            dx, dW, db = dense_backward_from_dz(x_k, layer["weight"], dz_last, need_dx)
        else:
            dx, dW, db = dense_backward(
                x_k, layer["weight"], z_k, a_k, da, layer.get("activation"), need_dx
            )
        grads[f"{k}.weight"] = dW
        if layer.get("bias") is not None:
            grads[f"{k}.bias"] = db
        da = dx
    # keys in state_dict order: layer by layer, weight before bias
    return {key: grads[key] for k in range(len(layers)) for key in (f"{k}.weight", f"{k}.bias")
            if key in grads}


def _loss_and_dlast(layers: Sequence[Layer], cache, y, loss: str):
    """(loss, dout, dz_last): exactly one of dout / dz_last is not None."""
    a_last, z_last = cache[-1]
    if loss == "cross_entropy":
        if layers[-1].get("activation") == "softmax":
            value, dz = cross_entropy_logits(z_last, y)  # fused: (p - y) / N
            return value, None, dz
        value, dlogits = cross_entropy_logits(a_last, y)
        return value, dlogits, None
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    value, dout = LOSSES[loss](a_last, y)
    return value, dout, None


def loss_value(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray, loss: str) -> np.generic:
    """The loss alone (same semantics as :func:`loss_and_gradients`)."""
    cache = network_forward(layers, x)
    return _loss_and_dlast(layers, cache, y, loss)[0]


def loss_and_gradients(
    layers: Sequence[Layer], x: np.ndarray, y: np.ndarray, loss: str
) -> tuple[np.generic, dict[str, np.ndarray]]:
    """Forward, loss, and backprop: returns ``(loss, grads)``."""
    cache = network_forward(layers, x)
    value, dout, dz_last = _loss_and_dlast(layers, cache, y, loss)
    return value, backward(layers, x, cache, dout=dout, dz_last=dz_last)


def forward_with_upstream_gradients(
    layers: Sequence[Layer], x: np.ndarray, dout: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of ``L = sum(out * dout)``, ``out`` the last layer's output
    ``a`` (so ``dL/dout = dout``, any upstream gradient a test likes)."""
    cache = network_forward(layers, x)
    return backward(layers, x, cache, dout=np.asarray(dout))
