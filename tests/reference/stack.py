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
from .conv import conv_backward, conv_forward, conv_output_size
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
from .norm import batch_norm_backward, batch_norm_forward, layer_norm_backward, layer_norm_forward
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .embedding import embedding_backward, embedding_forward, embedding_shapes
from .recurrent import recurrent_backward, recurrent_forward, recurrent_shapes
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
    lengths: np.ndarray | None = None  # valid steps per sample, for the recurrent layers

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


# ---- windows over (C, L) or (C, H, W) samples: 1-D is 2-D with a height of 1 ----
def _dims(layer) -> int:
    return 1 if layer["kind"].endswith("1d") else 2


def _to_2d(x: np.ndarray, dims: int) -> np.ndarray:
    return x[:, :, None, :] if dims == 1 else x


def _from_2d(y: np.ndarray, dims: int) -> np.ndarray:
    return y[:, :, 0, :] if dims == 1 else y


def _pair(layer, key: str, default: int) -> tuple[int, int]:
    value = layer.get(key, default)
    values = [value] * _dims(layer) if isinstance(value, int) else list(value)
    return tuple(values) if len(values) == 2 else (1 if default > 0 else 0, values[0])  # type: ignore[return-value]


def _conv_geometry(layer):
    """(kernel, stride, dilation, pad before, pad after) of a conv layer, as 2-D pairs."""
    k, s, d = _pair(layer, "kernel_size", 1), _pair(layer, "stride", 1), _pair(layer, "dilation", 1)
    padding = layer.get("padding", 0)
    if padding == "valid":
        before = after = (0, 0)
    elif padding == "same":  # dilation*(k-1) in all, the odd one after (torch)
        total = tuple(di * (ki - 1) for di, ki in zip(d, k))
        before, after = tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    else:
        before = after = _pair(layer, "padding", 0)
    return k, s, d, before, after


def _conv_forward(layer, x, ctx):
    dims, p = _dims(layer), layer["params"]
    _, s, d, before, after = _conv_geometry(layer)
    W = p["weight"] if dims == 2 else p["weight"][:, :, None, :]
    z = _from_2d(conv_forward(_to_2d(x, dims), W, p.get("bias"), s, before, after, d), dims)
    a = activation_forward(z, layer.get("activation"))
    return a, (x, z, a)


def _conv_backward(layer, cache, dy, ctx):
    x, z, a = cache
    dims, p = _dims(layer), layer["params"]
    _, s, d, before, after = _conv_geometry(layer)
    W = p["weight"] if dims == 2 else p["weight"][:, :, None, :]
    dz = activation_backward(z, a, dy, layer.get("activation"))
    dx, dW, db = conv_backward(_to_2d(x, dims), W, _to_2d(dz, dims), s, before, after, d)
    grads = {"weight": dW.reshape(p["weight"].shape)}
    if p.get("bias") is not None:
        grads["bias"] = db
    return _from_2d(dx, dims), grads


def _conv_shapes(layer, shape):
    dims = _dims(layer)
    k, s, d, before, after = _conv_geometry(layer)
    c_in, c_out = int(layer["in_channels"]), int(layer["out_channels"])
    if len(shape) != dims + 1 or shape[0] != c_in:
        raise ValueError(f"{layer['kind']} with in_channels={c_in} receives per-sample shape {shape}")
    spatial = (1, *shape[1:]) if dims == 1 else shape[1:]
    out = tuple(conv_output_size(spatial[a], before[a], after[a], k[a], s[a], d[a]) for a in range(2))
    params = {"weight": (c_out, c_in, *k[2 - dims:])}
    if layer.get("bias", True):
        params["bias"] = (c_out,)
    return (c_out, *out[2 - dims:]), params


def _pool_geometry(layer):
    k = _pair(layer, "kernel_size", 1)
    stride = layer.get("stride")
    return k, (k if stride is None else _pair(layer, "stride", 1)), _pair(layer, "padding", 0)


def _pool_forward(layer, x, ctx):
    dims = _dims(layer)
    k, s, p = _pool_geometry(layer)
    x2 = _to_2d(x, dims)
    if layer["kind"].startswith("max"):
        y, where = max_pool_forward(x2, k, s, p)
        return _from_2d(y, dims), (x2.shape, where)
    y = avg_pool_forward(x2, k, s, p, layer.get("count_include_pad", True))
    return _from_2d(y, dims), (x2.shape, None)


def _pool_backward(layer, cache, dy, ctx):
    dims = _dims(layer)
    k, s, p = _pool_geometry(layer)
    shape, where = cache
    if where is not None:
        return _from_2d(max_pool_backward(shape, where, _to_2d(dy, dims)), dims), {}
    dx = avg_pool_backward(shape, _to_2d(dy, dims), k, s, p, layer.get("count_include_pad", True))
    return _from_2d(dx, dims), {}


def _pool_shapes(layer, shape):
    dims = _dims(layer)
    k, s, p = _pool_geometry(layer)
    spatial = (1, *shape[1:]) if dims == 1 else shape[1:]
    out = tuple((spatial[a] + 2 * p[a] - k[a]) // s[a] + 1 for a in range(2))
    return (shape[0], *out[2 - dims:]), {}


# ---- global average: (C, *positions) -> (C,) or (C, 1, ...) ------------------------
def _global_avg_forward(layer, x, ctx):
    y = x.reshape(*x.shape[:2], -1).mean(axis=2)
    if layer.get("keepdim", False):
        y = y.reshape(*x.shape[:2], *([1] * (x.ndim - 2)))
    return y, x.shape


def _global_avg_backward(layer, x_shape, dy, ctx):
    # forward y = sum(x) / S per channel: every position gets dy / S
    S = math.prod(x_shape[2:])
    d = dy.reshape(*x_shape[:2], *([1] * (len(x_shape) - 2)))
    return np.broadcast_to(d / dy.dtype.type(S), x_shape).copy(), {}


def _global_avg_shapes(layer, shape):
    return ((shape[0], *([1] * (len(shape) - 1))) if layer.get("keepdim", False) else (shape[0],)), {}


# ---- batch norm: running statistics read from params in evaluation ------------------
def _batch_norm_forward(layer, x, ctx):
    p = layer["params"]
    track = layer.get("track_running_stats", True)
    if ctx.training or not track:
        y, cache = batch_norm_forward(x, p.get("weight"), p.get("bias"), float(layer.get("eps", 1e-5)))
    else:
        y, cache = batch_norm_forward(x, p.get("weight"), p.get("bias"), float(layer.get("eps", 1e-5)),
                                      p["running_mean"], p["running_var"])
    return y, cache


def _batch_norm_backward(layer, cache, dy, ctx):
    p = layer["params"]
    dx, dw, db = batch_norm_backward(cache, p.get("weight"), dy)
    return dx, ({"weight": dw, "bias": db} if "weight" in p else {})


def _batch_norm_shapes(layer, shape):
    c = int(layer["num_features"])
    if shape[0] != c:
        raise ValueError(f"{layer['kind']}({c}) receives per-sample shape {shape}")
    return tuple(shape), ({"weight": (c,), "bias": (c,)} if layer.get("affine", True) else {})


def _layer_norm_forward(layer, x, ctx):
    p = layer["params"]
    D = math.prod(layer["normalized_shape"])
    y, cache = layer_norm_forward(x, p.get("weight"), p.get("bias"), float(layer.get("eps", 1e-5)), D)
    return y, cache


def _layer_norm_backward(layer, cache, dy, ctx):
    p = layer["params"]
    shape = tuple(layer["normalized_shape"])
    dx, dw, db = layer_norm_backward(cache, p.get("weight"), dy, math.prod(shape))
    grads = {}
    if "weight" in p:
        grads["weight"] = dw.reshape(shape)
    if "bias" in p:
        grads["bias"] = db.reshape(shape)
    return dx, grads


def _layer_norm_shapes(layer, shape):
    norm = tuple(layer["normalized_shape"])
    if tuple(shape[len(shape) - len(norm):]) != norm:
        raise ValueError(f"LayerNorm{norm} receives per-sample shape {shape}")
    params = {}
    if layer.get("elementwise_affine", True):
        params["weight"] = norm
        if layer.get("bias", True):
            params["bias"] = norm
    return tuple(shape), params


# ---- recurrent: SimpleRNN, GRU, LSTM as plain time loops (recurrent.py) ----------
def _recurrent_forward(layer, x, ctx):
    return recurrent_forward(layer, x, ctx.lengths)


def _recurrent_backward(layer, cache, dy, ctx):
    return recurrent_backward(layer, cache, dy)


# ---- embedding: y = W[ids] (embedding.py) ----------------------------------------
def _embedding_forward(layer, x, ctx):
    return embedding_forward(layer, x)


def _embedding_backward(layer, idx, dy, ctx):
    return embedding_backward(layer, idx, dy)


#: kind -> its forward, backward, shapes and final-activation key.
KINDS: dict[str, Kind] = {
    "dense": Kind(_dense_forward, _dense_backward, _dense_shapes, activation_key="activation"),
    "activation": Kind(_activation_forward, _activation_backward, _same_shape, activation_key="activation"),
    "dropout": Kind(_dropout_forward, _dropout_backward, _same_shape),
    "flatten": Kind(_reshape_forward, _reshape_backward, _reshape_shapes),
    "reshape": Kind(_reshape_forward, _reshape_backward, _reshape_shapes),
    "residual": Kind(_residual_forward, _residual_backward, _residual_shapes),
    "conv1d": Kind(_conv_forward, _conv_backward, _conv_shapes, activation_key="activation"),
    "conv2d": Kind(_conv_forward, _conv_backward, _conv_shapes, activation_key="activation"),
    "max_pool1d": Kind(_pool_forward, _pool_backward, _pool_shapes),
    "max_pool2d": Kind(_pool_forward, _pool_backward, _pool_shapes),
    "avg_pool1d": Kind(_pool_forward, _pool_backward, _pool_shapes),
    "avg_pool2d": Kind(_pool_forward, _pool_backward, _pool_shapes),
    "global_avg_pool": Kind(_global_avg_forward, _global_avg_backward, _global_avg_shapes),
    "batch_norm1d": Kind(_batch_norm_forward, _batch_norm_backward, _batch_norm_shapes),
    "batch_norm2d": Kind(_batch_norm_forward, _batch_norm_backward, _batch_norm_shapes),
    "layer_norm": Kind(_layer_norm_forward, _layer_norm_backward, _layer_norm_shapes),
    "simple_rnn": Kind(_recurrent_forward, _recurrent_backward, recurrent_shapes),
    "gru": Kind(_recurrent_forward, _recurrent_backward, recurrent_shapes),
    "lstm": Kind(_recurrent_forward, _recurrent_backward, recurrent_shapes),
    "embedding": Kind(_embedding_forward, _embedding_backward, embedding_shapes),
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
