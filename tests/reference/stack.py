"""Layers by kind, and a stack of them run forward and backward.

A reference layer is a plain dict: the configuration the core is built from
(``{"kind": "dense", "in_features": 4, "out_features": 3, "activation":
"tanh", "bias": True, ...}``) plus ``"params"``, its parameter arrays by name
(``{"weight": W, "bias": b}``); a Residual block holds its sub-stack as
``"layers"``. Parameter gradients are keyed like ``Network.state_dict()``:
``"{k}.{name}"`` for layer k of a stack, ``"{k}.{j}.{name}"`` inside the
Residual block k. The original dense-only dict ``{"weight", "bias",
"activation"}`` (no "kind") is still accepted as a dense layer.

:data:`KINDS` maps each kind to its :class:`Kind`: forward, backward, the
shapes it gives (output and parameters, from the configuration alone) and
the configuration key of the activation it ends with, which a network may
take over (softmax fused into cross-entropy). Adding a layer kind to the
reference is one entry there, its math in a module of its own.

Arrays keep their dtype (float64 in, float64 arithmetic out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import activation_backward, activation_forward
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .reshape import flatten_shape, reshape_backward, reshape_forward, resolve_shape

__all__ = [
    "KINDS",
    "Kind",
    "Pass",
    "Shape",
    "final_activation",
    "normalise",
    "param_shapes",
    "release_final_activation",
    "stack_backward",
    "stack_forward",
    "stack_shapes",
]

Layer = Mapping[str, Any]
Shape = tuple[int, ...]


@dataclass
class Pass:
    """How a forward pass runs: ``training`` turns dropout on, and then each
    Dropout layer takes the next keep-mask of ``masks`` (one per Dropout
    layer, in forward order: depth first through Residual blocks; all ones
    for ``p = 0``). Its masks are consumed, so use a new Pass per forward."""

    training: bool = False
    masks: list[np.ndarray] = field(default_factory=list)

    def next_mask(self) -> np.ndarray:
        if not self.masks:
            raise ValueError("a training pass through Dropout needs a keep-mask for each Dropout layer")
        return self.masks.pop(0)


@dataclass(frozen=True)
class Kind:
    """One layer kind of the reference.

    forward(layer, x, ctx) -> (y, cache); x is (n, *input_shape).
    backward(layer, cache, dy, ctx) -> (dx, grads): ``grads`` maps the
        layer's own parameter names to ``dL/dparam`` in storage order.
    shapes(layer, input_shape) -> (output_shape, {param name: shape}), per
        sample, from the configuration (what the core must report).
    activation_key: the config key naming the activation the layer ends
        with, or None.
    """

    forward: Callable[[Layer, np.ndarray, Pass], tuple[np.ndarray, Any]]
    backward: Callable[[Layer, Any, np.ndarray, Pass], tuple[np.ndarray, dict[str, np.ndarray]]]
    shapes: Callable[[Layer, Shape], tuple[Shape, dict[str, Shape]]]
    activation_key: str | None = None


def normalise(layer: Layer) -> Layer:
    """The layer in the kind-keyed form; the original dense dict
    ``{"weight", "bias", "activation"}`` becomes a dense layer sharing its arrays."""
    if "kind" in layer:
        return layer
    params = {"weight": layer["weight"]}
    if layer.get("bias") is not None:
        params["bias"] = layer["bias"]
    out_features, in_features = np.shape(layer["weight"])
    return {"kind": "dense", "in_features": in_features, "out_features": out_features,
            "activation": layer.get("activation"), "bias": "bias" in params, "params": params}


# ---- dense: a = act(x W^T + b) over the last axis ----------------------------
def _dense_forward(layer, x, ctx):
    p = layer["params"]
    a, z = dense_forward(x, p["weight"], p.get("bias"), layer.get("activation"))
    return a, (x, z, a)


def _dense_backward(layer, cache, dy, ctx):
    x, z, a = cache
    p = layer["params"]
    dx, dW, db = dense_backward(x, p["weight"], z, a, dy, layer.get("activation"))
    grads = {"weight": dW}
    if p.get("bias") is not None:
        grads["bias"] = db
    return dx, grads


def _dense_shapes(layer, shape):
    n_in, n_out = int(layer["in_features"]), int(layer["out_features"])
    if shape[-1] != n_in:
        raise ValueError(f"dense layer with in_features={n_in} receives per-sample shape {shape}")
    params = {"weight": (n_out, n_in)}
    if layer.get("bias", True):
        params["bias"] = (n_out,)
    return (*shape[:-1], n_out), params


# ---- activation: y = f(x), softmax over the last axis ----------------------
def _activation_forward(layer, x, ctx):
    y = activation_forward(x, layer.get("activation"))
    return y, (x, y)


def _activation_backward(layer, cache, dy, ctx):
    x, y = cache
    return activation_backward(x, y, dy, layer.get("activation")), {}


# ---- dropout: y = x * keep / (1 - p) in training, y = x otherwise ------------
def _dropout_forward(layer, x, ctx):
    if not ctx.training:
        return x.copy(), None
    y, m = dropout_forward(x, ctx.next_mask(), float(layer.get("p", 0.5)))
    return y, m


def _dropout_backward(layer, m, dy, ctx):
    return (dy.copy() if m is None else dropout_backward(m, dy)), {}


# ---- flatten / reshape: the same values under another per-sample shape --------
def _reshape_to(layer, shape):
    if layer["kind"] == "flatten":
        return flatten_shape(shape)
    return resolve_shape(tuple(layer["shape"]), math.prod(shape))


def _reshape_forward(layer, x, ctx):
    return reshape_forward(x, _reshape_to(layer, x.shape[1:])), x.shape


def _reshape_backward(layer, x_shape, dy, ctx):
    return reshape_backward(x_shape, dy), {}


def _same_shape(layer, shape):
    return tuple(shape), {}


def _reshape_shapes(layer, shape):
    return _reshape_to(layer, shape), {}


# ---- residual: y = x + f(x), f the sub-stack "layers" --------------------------
def _residual_forward(layer, x, ctx):
    fx, caches = stack_forward(layer["layers"], x, ctx)
    if fx.shape != x.shape:
        raise ValueError(f"a residual body maps {x.shape} to {fx.shape}")
    return x + fx, caches


def _residual_backward(layer, caches, dy, ctx):
    # forward y = x + f(x): dx = dy + J_f(x)^T dy; f's parameters get f's gradients
    dx_f, grads = stack_backward(layer["layers"], caches, dy, ctx)
    return dy + dx_f, grads


def _residual_shapes(layer, shape):
    out, params = stack_shapes(layer["layers"], shape)
    if out != tuple(shape):
        raise ValueError(f"a residual body maps {shape} to {out}")
    return tuple(shape), params


#: kind -> its forward, backward, shapes and final-activation key.
KINDS: dict[str, Kind] = {
    "dense": Kind(_dense_forward, _dense_backward, _dense_shapes, activation_key="activation"),
    "activation": Kind(_activation_forward, _activation_backward, _same_shape, activation_key="activation"),
    "dropout": Kind(_dropout_forward, _dropout_backward, _same_shape),
    "flatten": Kind(_reshape_forward, _reshape_backward, _reshape_shapes),
    "reshape": Kind(_reshape_forward, _reshape_backward, _reshape_shapes),
    "residual": Kind(_residual_forward, _residual_backward, _residual_shapes),
}


def _kind(layer: Layer) -> Kind:
    kind = layer["kind"]
    if kind not in KINDS:
        raise ValueError(f"the reference has no layer kind {kind!r}; it knows {sorted(KINDS)}")
    return KINDS[kind]


# ---- a stack of layers -------------------------------------------------------
def stack_forward(layers: Sequence[Layer], x: np.ndarray, ctx: Pass | None = None) -> tuple[np.ndarray, list]:
    """Runs x (n, *input_shape) through every layer; returns the output and
    one cache per layer (for :func:`stack_backward`)."""
    ctx = Pass() if ctx is None else ctx
    caches = []
    for layer in map(normalise, layers):
        x, cache = _kind(layer).forward(layer, x, ctx)
        caches.append(cache)
    return x, caches


def stack_backward(layers: Sequence[Layer], caches: Sequence[Any], dy: np.ndarray,
                   ctx: Pass | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backprop dy = dL/d(output) through the stack run by :func:`stack_forward`;
    returns ``(dL/dx, {"{k}.{name}": dL/dparam})`` in storage order."""
    ctx = Pass() if ctx is None else ctx
    layers = [normalise(layer) for layer in layers]
    per_layer: list[dict[str, np.ndarray]] = [{} for _ in layers]
    for k in range(len(layers) - 1, -1, -1):
        dy, per_layer[k] = _kind(layers[k]).backward(layers[k], caches[k], dy, ctx)
    return dy, {f"{k}.{name}": g for k, grads in enumerate(per_layer) for name, g in grads.items()}


def stack_shapes(layers: Iterable[Layer], shape: Shape) -> tuple[Shape, dict[str, Shape]]:
    """(output shape, {"{k}.{name}": parameter shape}) of a stack fed per-sample ``shape``."""
    params: dict[str, Shape] = {}
    shape = tuple(shape)
    for k, layer in enumerate(map(normalise, layers)):
        shape, own = _kind(layer).shapes(layer, shape)
        params.update({f"{k}.{name}": tuple(s) for name, s in own.items()})
    return tuple(shape), params


def param_shapes(layers: Iterable[Layer], shape: Shape) -> dict[str, Shape]:
    return stack_shapes(layers, shape)[1]


def final_activation(layer: Layer) -> str:
    """The activation the layer ends with ("identity" for kinds without one)."""
    layer = normalise(layer)
    key = _kind(layer).activation_key
    name = layer.get(key) if key else None
    return "identity" if name is None else name


def release_final_activation(layer: Layer) -> Layer:
    """The layer without its final activation (its output is then the values
    before it: the logits of a softmax), sharing the parameter arrays."""
    layer = normalise(layer)
    key = _kind(layer).activation_key
    return dict(layer, **{key: "identity"}) if key else layer
