"""Exchange networks with PyTorch and ONNX.

- `from_torch(module)`: a ``torch.nn.Sequential`` of ``Linear`` layers, each
  optionally followed by one supported activation (folded into the Dense
  layer) and ``Dropout`` layers, becomes a Network with the same weights.
- `to_torch(net)`: the inverse, a ``torch.nn.Sequential`` in eval mode.
- `to_onnx(net, path)`: the inference graph (Gemm + activation per Dense,
  Dropout omitted) with a dynamic batch dimension, checked and written
  atomically.

torch and onnx are optional dependencies, imported only here, inside the
functions that need them.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ._arrays import resolve_dtype
from .layers import Dense, Dropout, Layer

TORCH_PIN = "torch==2.13.0"


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("exchanging networks with PyTorch needs torch: "
                          f"pip install {TORCH_PIN}  (or: pip install 'backpropx[torch]')") from None
    return torch


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: "
                          "pip install 'onnx>=1.15'  (or: pip install 'backpropx[onnx]')") from None
    return onnx


# ---- PyTorch -----------------------------------------------------------------
def _activation_of(nn: Any, module: Any) -> tuple[str | None, str]:
    """(backpropx activation name, "") for a supported activation module,
    (None, reason) for an unsupported variant, or (None, "") if `module` is
    no activation at all."""
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", ""
    if isinstance(module, nn.Tanh):
        return "tanh", ""
    if isinstance(module, nn.ReLU):
        return "relu", ""
    if isinstance(module, nn.LeakyReLU):
        if module.negative_slope != 0.01:
            return None, f"negative_slope={module.negative_slope} (backpropx's leaky_relu has slope 0.01)"
        return "leaky_relu", ""
    if isinstance(module, nn.ELU):
        if module.alpha != 1.0:
            return None, f"alpha={module.alpha} (backpropx's elu has alpha 1)"
        return "elu", ""
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            return None, (f"approximate={module.approximate!r} (backpropx's gelu is the exact erf form, "
                          "approximate='none')")
        return "gelu", ""
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1):
            return None, f"dim={module.dim} (backpropx's softmax is over the features, dim=-1 or 1)"
        return "softmax", ""
    return None, ""


def _flatten(nn: Any, module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            out.extend(_flatten(nn, child, full + "."))
        else:
            out.append((full, child))
    return out


def _param_dtype(torch: Any, linears: list[tuple[str, Any]]) -> np.dtype:
    kinds = {p.dtype for _, m in linears for p in m.parameters()}
    if kinds == {torch.float64}:
        return np.dtype(np.float64)
    if kinds == {torch.float32}:
        return np.dtype(np.float32)
    names = ", ".join(sorted(str(k).replace("torch.", "") for k in kinds))
    raise ValueError(f"the Linear layers hold {names} parameters; backpropx computes in float32 or "
                     "float64: pass dtype='float32' or 'float64' to convert")


def from_torch(module: Any, dtype: Any = None) -> Any:
    """A Network with the architecture and weights of `module` (copied).

    `module` is a ``torch.nn.Sequential`` (nested Sequentials are flattened)
    of ``nn.Linear`` layers (with or without bias), each optionally followed
    by one activation that becomes the Dense layer's ``activation``:
    ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``, ``nn.LeakyReLU`` (negative_slope
    0.01 only), ``nn.ELU`` (alpha 1 only), ``nn.GELU`` (approximate='none'
    only), ``nn.Softmax`` (dim=-1 or 1, last module only); ``nn.Dropout(p)``
    becomes ``bx.Dropout(p)``. Anything else raises ValueError naming the
    module and the reason.

    dtype: "float32" or "float64"; None takes the parameters' dtype (which
    must then be float32 or float64).
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}; "
                        "wrap a single layer as nn.Sequential(layer)")
    modules = _flatten(nn, module)
    linears = [(name, m) for name, m in modules if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("the Sequential has no nn.Linear layer; a Network needs at least one Dense layer")
    np_dtype = _param_dtype(torch, linears) if dtype is None else resolve_dtype(dtype)

    layers: list[Layer] = []
    weights: dict[str, np.ndarray] = {}
    width: int | None = None            # output width so far (None before the first Linear)
    foldable: Dense | None = None       # the Dense an activation right here would fold into
    for pos, (name, m) in enumerate(modules):
        where = f"module {name!r} ({m!r})"
        if isinstance(m, nn.Linear):
            if width is not None and m.in_features != width:
                raise ValueError(f"{where} expects {m.in_features} inputs but the layers before it "
                                 f"output {width}")
            dense = Dense(m.in_features, m.out_features, bias=m.bias is not None)
            k = len(layers)
            layers.append(dense)
            with torch.no_grad():
                weights[f"{k}.weight"] = m.weight.detach().to("cpu", torch.float64).numpy()
                if m.bias is not None:
                    weights[f"{k}.bias"] = m.bias.detach().to("cpu", torch.float64).numpy()
            width = m.out_features
            foldable = dense
            continue
        if isinstance(m, nn.Dropout):
            if type(m) is not nn.Dropout:
                raise ValueError(f"{where} is not supported: only plain nn.Dropout maps to bx.Dropout")
            if not 0.0 <= m.p < 1.0:
                raise ValueError(f"{where} is not supported: backpropx's Dropout needs 0 <= p < 1")
            if width is None:
                layers.append(Dropout(m.p, features=linears[0][1].in_features))
            else:
                layers.append(Dropout(m.p))
            foldable = None
            continue
        act, reason = _activation_of(nn, m)
        if act is None:
            if reason:
                raise ValueError(f"{where} is not supported: {reason}")
            raise ValueError(f"{where} is not supported: backpropx converts nn.Linear, nn.Dropout and the "
                             "activations Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU and Softmax")
        if foldable is None:
            before = "follows a Dropout" if width is not None else "comes before any Linear layer"
            if width is not None and not isinstance(layers[-1], Dropout):
                before = "follows another activation"
            raise ValueError(f"{where} {before}; backpropx folds each activation into the Linear layer "
                             "right before it, one activation per Linear")
        if act == "softmax" and pos != len(modules) - 1:
            raise ValueError(f"{where} is not supported here: softmax must be the last module")
        foldable.activation = act
        foldable = None

    from .network import Network

    net = Network(layers, dtype=np_dtype)
    net.load_state_dict(weights)
    return net


def to_torch(net: Any) -> Any:
    """An equivalent ``torch.nn.Sequential`` with copies of the weights, in eval mode.

    Each Dense becomes ``nn.Linear`` (plus its activation module), each
    Dropout ``nn.Dropout(p)``; the parameters keep the network's dtype
    (float32 or float64). The result is in eval mode (Dropout inactive), as
    for ``predict``; call ``.train()`` to train it.
    """
    torch = _import_torch()
    nn = torch.nn
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[net.dtype.name]
    modules: list[Any] = []
    for layer in net.layers:
        if isinstance(layer, Dropout):
            modules.append(nn.Dropout(layer.p))
            continue
        if not isinstance(layer, Dense):
            raise ValueError(f"{layer!r} has no PyTorch equivalent in backpropx.exchange")
        linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias, dtype=torch_dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(layer.weight)))
            if layer.use_bias:
                linear.bias.copy_(torch.from_numpy(np.array(layer.bias)))
        modules.append(linear)
        act = {"identity": None, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
               "leaky_relu": lambda: nn.LeakyReLU(0.01), "elu": lambda: nn.ELU(1.0),
               "gelu": lambda: nn.GELU(approximate="none"), "softmax": lambda: nn.Softmax(dim=-1)}
        if layer.activation not in act:
            raise ValueError(f"{layer!r}: activation {layer.activation!r} has no PyTorch equivalent here")
        make = act[layer.activation]
        if make is not None:
            modules.append(make())
    return nn.Sequential(*modules).eval()


# ---- ONNX ----------------------------------------------------------------------
MIN_OPSET = 17
GELU_OPSET = 20   # the first opset with a Gelu operator; below it gelu is built from Erf


def onnx_model(net: Any, *, opset: int = MIN_OPSET) -> Any:
    """The network's inference graph as an ``onnx.ModelProto`` (checked).

    Input "input" (batch, in_features), output "output" (batch,
    out_features), batch dimension dynamic, elements of the network's dtype.
    Each Dense is ``Gemm(transB=1)`` followed by its activation: Sigmoid,
    Tanh, Relu, LeakyRelu(alpha=0.01), Elu(alpha=1), Softmax(axis=-1) and
    Gelu (opset >= 20) or ``0.5 x (1 + Erf(x / sqrt 2))`` (opset < 20).
    Dropout is left out (inference).
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"opset {opset} is newer than this onnx package supports ({newest})")
    np_dtype = net.dtype
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[np_dtype.name]

    nodes: list[Any] = []
    inits: list[Any] = []
    current = "input"

    def const(name: str, value: float) -> str:
        inits.append(numpy_helper.from_array(np.array(value, dtype=np_dtype), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    for k, layer in enumerate(net.layers):
        if isinstance(layer, Dropout):
            continue
        if not isinstance(layer, Dense):
            raise ValueError(f"{layer!r} has no ONNX export")
        inits.append(numpy_helper.from_array(np.ascontiguousarray(layer.weight, dtype=np_dtype), f"{k}.weight"))
        inputs = [current, f"{k}.weight"]
        if layer.use_bias:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(layer.bias, dtype=np_dtype), f"{k}.bias"))
            inputs.append(f"{k}.bias")
        current = node("Gemm", inputs, f"{k}.linear", transB=1)
        act = layer.activation
        simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
        if act == "identity":
            pass
        elif act in simple:
            current = node(simple[act], [current], f"{k}.{act}")
        elif act == "leaky_relu":
            current = node("LeakyRelu", [current], f"{k}.leaky_relu", alpha=0.01)
        elif act == "elu":
            current = node("Elu", [current], f"{k}.elu", alpha=1.0)
        elif act == "softmax":
            current = node("Softmax", [current], f"{k}.softmax", axis=-1)
        elif act == "gelu" and opset >= GELU_OPSET:
            current = node("Gelu", [current], f"{k}.gelu", approximate="none")
        elif act == "gelu":
            x = current
            scaled = node("Mul", [x, const(f"{k}.gelu.rsqrt2", 1.0 / math.sqrt(2.0))], f"{k}.gelu.scaled")
            erf = node("Erf", [scaled], f"{k}.gelu.erf")
            one_plus = node("Add", [erf, const(f"{k}.gelu.one", 1.0)], f"{k}.gelu.one_plus")
            half_x = node("Mul", [x, const(f"{k}.gelu.half", 0.5)], f"{k}.gelu.half_x")
            current = node("Mul", [half_x, one_plus], f"{k}.gelu")
        else:
            raise ValueError(f"{layer!r}: activation {act!r} has no ONNX export")
    if nodes:
        nodes[-1].output[0] = "output"
    else:  # only Dropout layers: the identity
        node("Identity", [current], "output")

    graph = helper.make_graph(
        nodes, "backpropx",
        [helper.make_tensor_value_info("input", elem, ["batch", net.in_features])],
        [helper.make_tensor_value_info("output", elem, ["batch", net.out_features])],
        initializer=inits)
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
