"""A network: a stack of layers of any kind (see :mod:`.stack`), a loss on
its output, and backprop.

Gradients are keyed like ``Network.state_dict()``: ``"{k}.weight"``,
``"{k}.bias"`` (k the index in ``layers``), ``"{k}.{j}.weight"`` inside a
Residual block; a layer without bias has no bias key.

Which tensor a loss sees:

- ``"cross_entropy"`` acts on logits. If the last layer ends with
  ``"softmax"`` (a Dense layer's activation or an Activation layer) the
  network takes that softmax over: the logits are the values before it and
  softmax is fused into the loss, ``dz = (softmax(z) sum(y) - y) / rows``.
  Otherwise the network's output is taken as the logits (as
  ``torch.nn.CrossEntropyLoss`` applied to it).
- ``"mse"``, ``"binary_cross_entropy"`` and ``"poisson"`` act on the
  network's output (BCE expects probabilities, i.e. a sigmoid output;
  poisson takes the output as the log-rate).

Losses act on the last axis: an output (n, T, C) has n*T rows, so
cross-entropy takes labels (n, T) or probability rows (n, T, C); a
``sample_weight`` (n,) weights every row of its sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .activations import activation_forward
from .losses import LOSSES
from .stack import Pass, final_activation, normalise, release_final_activation, stack_backward, stack_forward

__all__ = [
    "backward",
    "forward",
    "forward_with_upstream_gradients",
    "loss_and_gradients",
    "loss_value",
    "network_forward",
    "network_vjp",
]

Layer = Any


def forward(layers: Sequence[Layer], x: np.ndarray, ctx: Pass | None = None) -> np.ndarray:
    """The network's output for x (n, *input_shape)."""
    return stack_forward(layers, x, ctx)[0]


def network_forward(layers: Sequence[Layer], x: np.ndarray, ctx: Pass | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(a_k, z_k) for each layer k]``: a_k the layer's output, z_k the
    values before its final activation (a_k itself for a layer without one);
    ``[-1][0]`` is the network's output."""
    out = []
    for layer in map(normalise, layers):
        z, _ = stack_forward([release_final_activation(layer)], x, ctx)
        x = activation_forward(z, final_activation(layer))  # the activation a layer ends with comes last
        out.append((x, z))
    return out


def backward(layers: Sequence[Layer], x: np.ndarray, dout: np.ndarray,
             ctx: Pass | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(dL/dx, grads)`` of ``L = sum(out * dout)``, ``out`` the output of
    ``forward(layers, x)``. With dropout, ``ctx`` carries the keep-masks."""
    _, caches = stack_forward(layers, x, ctx)
    return stack_backward(layers, caches, np.asarray(dout), ctx)


def network_vjp(layers: Sequence[Layer], x: np.ndarray, dout: np.ndarray,
                ctx: Pass | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Manual mode's ``out = net.forward(x, training)``, ``dx = net.backward(dout)``:
    returns ``(out, dx, grads)``."""
    out, caches = stack_forward(layers, x, ctx)
    dx, grads = stack_backward(layers, caches, np.asarray(dout), ctx)
    return out, dx, grads


def forward_with_upstream_gradients(layers: Sequence[Layer], x: np.ndarray, dout: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of ``L = sum(out * dout)``, ``out`` the network's output
    (so ``dL/dout = dout``, any upstream gradient a test likes)."""
    return backward(layers, x, dout)[1]


def _loss_stack(layers: Sequence[Layer], loss: str) -> list[Layer]:
    """The layers the loss is computed through: the last layer's softmax is
    taken over for cross-entropy (fused into the loss)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    layers = [normalise(layer) for layer in layers]
    if loss == "cross_entropy" and final_activation(layers[-1]) == "softmax":
        layers[-1] = release_final_activation(layers[-1])
    return layers


def loss_value(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray, loss: str,
               sample_weight: Any = None, ctx: Pass | None = None) -> np.generic:
    """The loss alone (same semantics as :func:`loss_and_gradients`)."""
    out = forward(_loss_stack(layers, loss), x, ctx)
    return LOSSES[loss](out, y, sample_weight)[0]


def loss_and_gradients(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray, loss: str,
                       sample_weight: Any = None, ctx: Pass | None = None) -> tuple[np.generic, dict[str, np.ndarray]]:
    """Forward, loss, and backprop: returns ``(loss, grads)``."""
    run = _loss_stack(layers, loss)
    out, caches = stack_forward(run, x, ctx)
    value, dout = LOSSES[loss](out, y, sample_weight)
    return value, stack_backward(run, caches, dout, ctx)[1]
