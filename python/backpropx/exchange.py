"""Exchange networks with PyTorch and ONNX.

- `from_torch(module)`: a ``torch.nn.Sequential`` becomes a Network with the
  same weights. Each backpropx layer class says which torch modules it reads
  (``Layer._from_torch``): ``nn.Linear`` (an activation right after it is
  folded into the Dense layer), activations, ``nn.Dropout``, ``nn.Flatten``,
  ``nn.Unflatten``, and the ``Residual`` module `to_torch` writes.
- `to_torch(net)`: the inverse, a ``torch.nn.Sequential`` in eval mode.
- `to_onnx(net, path)`: the inference graph with a dynamic batch dimension,
  checked and written atomically.

This module knows no layer kind: every conversion lives with its layer
class, so adding a kind adds its conversions there. torch and onnx are
optional dependencies, imported only inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._arrays import resolve_dtype
from .layers import LAYER_KINDS, Activation, Dense, Dropout, Layer

_SHAPE_KEEPING = (Dropout, Activation)

TORCH_PIN = "torch==2.13.0"


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("exchanging networks with PyTorch needs torch: "
                          f"pip install {TORCH_PIN}  (or, from a checkout: pip install '.[torch]')") from None
    return torch


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install 'onnx>=1.15'  (or, from a checkout: pip install '.[onnx]')") from None
    return onnx


# ---- PyTorch -----------------------------------------------------------------
_RESIDUAL_MODULE: Any = None


def residual_module_class(torch: Any) -> Any:
    """The torch module `to_torch` writes for a Residual block: ``x + body(x)``."""
    global _RESIDUAL_MODULE
    if _RESIDUAL_MODULE is None:
        class Residual(torch.nn.Module):
            """y = x + body(x), backpropx's Residual block."""

            def __init__(self, body: Any) -> None:
                super().__init__()
                self.body = body

            def forward(self, x: Any) -> Any:
                return x + self.body(x)

        _RESIDUAL_MODULE = Residual
    return _RESIDUAL_MODULE


class TorchContext:
    """What a layer class needs to convert to or from torch: the torch
    module, the dtype, and (from torch) the layers built so far."""

    def __init__(self, torch: Any, dtype: Any = None) -> None:
        self.torch = torch
        self.nn = torch.nn
        self.dtype = dtype
        self.layers: list[Layer] = []
        self.params: list[dict[str, Any]] = []
        self._foldable: Layer | None = None
        self._name = ""

    # -- to torch
    def copy_into(self, tensor: Any, values: np.ndarray) -> None:
        with self.torch.no_grad():
            tensor.copy_(self.torch.from_numpy(np.array(values)))

    def residual_module(self, body: Any) -> Any:
        return residual_module_class(self.torch)(body)

    # -- from torch
    def is_residual_module(self, module: Any) -> bool:
        return isinstance(module, residual_module_class(self.torch))

    def where(self, module: Any) -> str:
        return f"module {self._name!r} ({module!r})"

    def add(self, layer: Layer, params: dict[str, Any], *, foldable: bool = False) -> None:
        """Append `layer` with its torch tensors (None entries are skipped)."""
        self.layers.append(layer)
        self.params.append({k: v for k, v in params.items() if v is not None})
        self._foldable = layer if foldable else None

    def fold_activation(self, name: str) -> bool:
        """Make `name` the activation of the layer right before (Dense, Conv1D/2D)
        when it was added as foldable and has none yet."""
        layer = self._foldable
        if layer is None or getattr(layer, "activation", None) != "identity":
            return False
        if name == "softmax" and not isinstance(layer, Dense):  # over positions: stays a layer of its own
            return False
        layer.activation = name  # type: ignore[attr-defined]
        self._foldable = None
        return True

    def nested(self) -> TorchContext:
        return TorchContext(self.torch, self.dtype)

    def convert(self, module: Any, prefix: str = "") -> None:
        for name, child in _flatten(self.nn, module, prefix):
            self._name = name
            for cls in LAYER_KINDS.values():
                if cls._from_torch(child, self):
                    break
            else:
                raise ValueError(f"{self.where(child)} is not supported: backpropx converts "
                                 + ", ".join(_TORCH_NAMES))

    def tensors(self) -> dict[str, np.ndarray]:
        out = {}
        with self.torch.no_grad():
            for k, params in enumerate(self.params):
                for name, t in params.items():
                    out[f"{k}.{name}"] = t.detach().to("cpu", self.torch.float64).numpy()
        return out


_TORCH_NAMES = ("nn.Linear", "nn.Dropout", "nn.Flatten", "nn.Unflatten", "the activations Sigmoid, Tanh, "
                "ReLU, LeakyReLU, ELU, GELU, Softmax and Identity", "backpropx's Residual module",
                "nn.Conv1d/2d", "nn.MaxPool1d/2d", "nn.AvgPool1d/2d", "nn.AdaptiveAvgPool1d/2d/3d(1)",
                "nn.BatchNorm1d/2d", "nn.LayerNorm",
                "nn.RNN, nn.GRU and nn.LSTM (batch_first=True) and backpropx's Recurrent module",
                "nn.Embedding")


def _flatten(nn: Any, module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            out.extend(_flatten(nn, child, full + "."))
        else:
            out.append((full, child))
    return out


def _param_dtype(torch: Any, module: Any) -> np.dtype:
    kinds = {p.dtype for p in module.parameters()}
    if kinds == {torch.float64}:
        return np.dtype(np.float64)
    if kinds == {torch.float32} or not kinds:
        return np.dtype(np.float32)
    names = ", ".join(sorted(str(k).replace("torch.", "") for k in kinds))
    raise ValueError(f"the module holds {names} parameters; backpropx computes in float32 or "
                     "float64: pass dtype='float32' or 'float64' to convert")


def from_torch(module: Any, dtype: Any = None, input_shape: Any = None) -> Any:
    """A Network with the architecture and weights of `module` (copied).

    `module` is a ``torch.nn.Sequential`` (nested Sequentials are flattened)
    of ``nn.Linear`` (with or without bias), activations (``nn.Sigmoid``,
    ``nn.Tanh``, ``nn.ReLU``, ``nn.LeakyReLU`` with negative_slope 0.01,
    ``nn.ELU`` with alpha 1, ``nn.GELU`` with approximate='none',
    ``nn.Softmax`` over the last axis, ``nn.Identity``), ``nn.Dropout(p)``,
    ``nn.Flatten()``, ``nn.Unflatten(1, shape)`` and the Residual module
    written by `to_torch`; ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` with
    ``batch_first=True`` (a bare one stands for its output sequence; wrapped
    in the module `to_torch` writes, for its final states; ``num_layers > 1``
    becomes several layers, its ``dropout`` Dropout layers between them) and
    ``nn.Embedding``. An activation right after a Linear becomes that
    Dense layer's ``activation``; any other becomes an ``Activation`` layer.
    Anything else raises ValueError naming the module and the reason.

    dtype: "float32" or "float64"; None takes the parameters' dtype (which
    must then be float32 or float64). input_shape: the per-sample input
    shape, needed when the first module is not an ``nn.Linear``.
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}; "
                        "wrap a single layer as nn.Sequential(layer)")
    np_dtype = _param_dtype(torch, module) if dtype is None else resolve_dtype(dtype)
    ctx = TorchContext(torch)
    ctx.convert(module)
    if not ctx.layers:
        raise ValueError("the Sequential is empty; a Network needs at least one layer")
    if input_shape is None and not isinstance(ctx.layers[0], Dense):
        # Dropout and activations keep the shape: the first Linear after them tells it.
        first = next((i for i, layer in enumerate(ctx.layers) if not isinstance(layer, _SHAPE_KEEPING)), None)
        if first is None or not isinstance(ctx.layers[first], Dense):
            raise ValueError("the first module is not an nn.Linear, so the input shape is unknown: pass "
                             "input_shape= (the per-sample shape, e.g. (784,)) to from_torch")
        input_shape = (ctx.layers[first].in_features,)

    from .network import Network

    try:
        net = Network(ctx.layers, input_shape=input_shape, dtype=np_dtype)
    except ValueError as exc:
        raise ValueError(f"the converted layers do not fit together: {exc}") from None
    net.load_state_dict(ctx.tensors())
    return net


def to_torch(net: Any) -> Any:
    """An equivalent ``torch.nn.Sequential`` with copies of the weights, in eval mode.

    Each layer becomes the torch module(s) its class names (Dense: ``nn.Linear``
    plus its activation module; Dropout: ``nn.Dropout(p)``; Flatten:
    ``nn.Flatten()``; Residual: a module computing ``x + body(x)``; SimpleRNN,
    GRU, LSTM: a module around ``nn.RNN/GRU/LSTM(batch_first=True)``
    returning the output sequence or the final states; Embedding:
    ``nn.Embedding``, which takes integer (``LongTensor``) ids); the
    parameters keep the network's dtype. The result is in eval mode (Dropout
    inactive), as for ``predict``; call ``.train()`` to train it.
    """
    torch = _import_torch()
    dtype = {"float32": torch.float32, "float64": torch.float64}[net.dtype.name]
    ctx = TorchContext(torch, dtype)
    modules = [m for layer in net.layers for m in layer._to_torch(ctx)]
    return torch.nn.Sequential(*modules).eval()


# ---- ONNX ----------------------------------------------------------------------
MIN_OPSET = 17


class OnnxGraph:
    """Collects the nodes and initializers of an ONNX graph; names are
    prefixed by the layer path ("3." or "3.0.") so they stay unique."""

    def __init__(self, np_dtype: np.dtype, opset: int) -> None:
        from onnx import helper, numpy_helper

        self._helper = helper
        self._numpy_helper = numpy_helper
        self.np_dtype = np_dtype
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._prefix = ""

    @contextlib.contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        outer = self._prefix
        self._prefix = outer + prefix
        try:
            yield
        finally:
            self._prefix = outer

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        out = self._prefix + name
        self.nodes.append(self._helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def multi_node(self, op: str, inputs: list[str], names: list[str], **attrs: Any) -> list[str]:
        """A node with several outputs (``""`` inputs are omitted optional ones)."""
        outs = [self._prefix + name for name in names]
        self.nodes.append(self._helper.make_node(op, inputs, outs, name=self._prefix + op, **attrs))
        return outs

    def initializer(self, name: str, values: Any, raw: bool = False) -> str:
        """A constant tensor; float values take the network's dtype unless `raw`."""
        full = self._prefix + name
        arr = np.asarray(values) if raw else np.ascontiguousarray(values, dtype=self.np_dtype)
        self.inits.append(self._numpy_helper.from_array(arr, full))
        return full

    def const(self, name: str, value: float) -> str:
        return self.initializer(name, np.array(value, dtype=self.np_dtype))


def onnx_model(net: Any, *, opset: int = MIN_OPSET) -> Any:
    """The network's inference graph as an ``onnx.ModelProto`` (checked).

    Input "input" (batch, *input_shape), output "output" (batch,
    *output_shape), batch dimension dynamic, elements of the network's dtype.
    Each layer adds the nodes its class names (Dense: ``Gemm(transB=1)`` or,
    for samples of higher rank, ``MatMul`` + ``Add``, then its activation;
    Dropout nothing; Flatten ``Flatten``; Reshape ``Reshape``; Residual its
    body and an ``Add``). Gelu uses the Gelu operator from opset 20, else
    ``0.5 x (1 + Erf(x / sqrt 2))``.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper

    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"opset {opset} is newer than this onnx package supports ({newest})")
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[net.dtype.name]
    g = OnnxGraph(net.dtype, opset)
    current = "input"
    for k, layer in enumerate(net.layers):
        with g.scope(f"{k}."):
            current = layer._to_onnx(g, current)
    if g.nodes and g.nodes[-1].output[0] == current:
        g.nodes[-1].output[0] = "output"
    else:  # the last layers add no node (Dropout): pass the tensor through
        g.node("Identity", [current], "output")

    graph = helper.make_graph(
        g.nodes, "backpropx",
        [helper.make_tensor_value_info("input", elem, ["batch", *net.input_shape])],
        [helper.make_tensor_value_info("output", elem, ["batch", *net.output_shape])],
        initializer=g.inits)
    opset_id = helper.make_opsetid("", opset)
    from . import __version__

    model = helper.make_model(graph, opset_imports=[opset_id], producer_name="backpropx",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for([opset_id]))
    onnx.checker.check_model(model, full_check=True)
    return model


def to_onnx(net: Any, path: str | os.PathLike, *, opset: int = MIN_OPSET) -> None:
    """Write `net`'s inference graph (see `onnx_model`) to `path`, atomically.

    Run it with onnxruntime: ``sess.run(None, {"input": X})[0]`` equals
    ``net.predict(X)`` to rounding. Needs the ``onnx`` package.
    """
    from .io import atomic_write

    atomic_write(path, onnx_model(net, opset=opset).SerializeToString())
