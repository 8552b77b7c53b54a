"""Activation: a standalone non-linearity, and the activations' torch/ONNX forms
(shared with Dense, which fuses its activation)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .base import Layer, check_activation, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext

GELU_OPSET = 20   # the first ONNX opset with a Gelu operator; below it gelu is built from Erf


def activation_to_torch(nn: Any, activation: str, owner: str) -> list[Any]:
    """The torch module(s) computing `activation` (none for identity)."""
    make = {"identity": None, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
            "leaky_relu": lambda: nn.LeakyReLU(0.01), "elu": lambda: nn.ELU(1.0),
            "gelu": lambda: nn.GELU(approximate="none"), "softmax": lambda: nn.Softmax(dim=-1)}
    if activation not in make:
        raise ValueError(f"{owner}: activation {activation!r} has no PyTorch equivalent here")
    return [] if make[activation] is None else [make[activation]()]


def activation_from_torch(nn: Any, module: Any) -> tuple[str | None, str]:
    """(backpropx activation name, "") for a supported activation module,
    (None, reason) for an unsupported variant, or (None, "") if `module` is
    no activation at all."""
    simple = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu"}
    for cls, name in simple.items():
        if type(module) is cls:
            return name, ""
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
        if module.dim not in (-1, None):
            return None, f"dim={module.dim} (backpropx's softmax is over the last axis, dim=-1)"
        return "softmax", ""
    return None, ""


def activation_to_onnx(g: OnnxGraph, activation: str, x: str) -> str:
    """Add the ONNX node(s) of `activation` applied to tensor `x`."""
    simple = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
    if activation == "identity":
        return x
    if activation in simple:
        return g.node(simple[activation], [x], activation)
    if activation == "leaky_relu":
        return g.node("LeakyRelu", [x], activation, alpha=0.01)
    if activation == "elu":
        return g.node("Elu", [x], activation, alpha=1.0)
    if activation == "softmax":
        return g.node("Softmax", [x], activation, axis=-1)
    if activation == "gelu" and g.opset >= GELU_OPSET:
        return g.node("Gelu", [x], activation, approximate="none")
    if activation == "gelu":
        scaled = g.node("Mul", [x, g.const("gelu.rsqrt2", 1.0 / math.sqrt(2.0))], "gelu.scaled")
        erf = g.node("Erf", [scaled], "gelu.erf")
        one_plus = g.node("Add", [erf, g.const("gelu.one", 1.0)], "gelu.one_plus")
        half_x = g.node("Mul", [x, g.const("gelu.half", 0.5)], "gelu.half_x")
        return g.node("Mul", [half_x, one_plus], "gelu")
    raise ValueError(f"activation {activation!r} has no ONNX export")


@register
class Activation(Layer):
    """A standalone activation ``y = f(x)``, element-wise on samples of any shape
    (softmax: over the last axis).

    ``name`` is one of ``bx.ACTIVATIONS`` ("identity", "sigmoid", "tanh",
    "relu", "leaky_relu", "elu", "gelu", "softmax"): the same functions
    Dense fuses into its output. A softmax ending the network is fused with
    the cross_entropy loss exactly as a Dense layer's is.
    """

    kind = "activation"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.activation = check_activation(name)

    def _config(self) -> dict[str, Any]:
        return {"kind": "activation", "activation": self.activation}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Activation:
        return cls(cfg.get("activation"))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        modules = activation_to_torch(ctx.nn, self.activation, repr(self))
        return modules or [ctx.nn.Identity()]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        name, reason = activation_from_torch(ctx.nn, module)
        if reason:
            raise ValueError(f"{ctx.where(module)} is not supported: {reason}")
        if name is None:
            if isinstance(module, ctx.nn.Identity):
                ctx.add(cls("identity"), {})
                return True
            return False
        if not ctx.fold_activation(name):  # folded into the Linear right before it when possible
            ctx.add(cls(name), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        if self.activation == "identity":
            return g.node("Identity", [x], "identity")
        return activation_to_onnx(g, self.activation, x)

    def __repr__(self) -> str:
        flags = self._repr_flags()
        return f"Activation({self.activation!r}{''.join(', ' + f for f in flags)})"
