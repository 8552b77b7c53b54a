"""Dense: the fully connected layer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._arrays import MAX_SIZE, check_int
from .activation import activation_to_onnx, activation_to_torch
from .base import Layer, check_activation, check_weights, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


@register
class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ weight.T + bias)``.

    Applied to the last axis of each sample, as ``torch.nn.Linear``: a
    sample of shape ``(..., in_features)`` gives ``(..., out_features)``.
    After a convolution (samples ``(C, H, W)``) put a ``Flatten`` before it.

    Parameters
    ----------
    in_features, out_features:
        Sizes of each input and output sample (last axis).
    activation:
        None (identity), "sigmoid", "tanh", "relu", "leaky_relu" (slope 0.01),
        "elu" (alpha 1), "gelu" (exact erf form) or "softmax" (over the last
        axis; on the last layer, fused with the cross_entropy loss).
    bias:
        Whether the layer adds a bias vector.
    init:
        Weight initialisation. "default" is "he" for relu, leaky_relu, elu and
        gelu and "xavier" otherwise. Choices:

        - "he": N(0, 2/in) (He et al. 2015)
        - "xavier" / "glorot": U(-a, a), a = sqrt(6/(in+out)) (Glorot & Bengio 2010)
        - "lecun": N(0, 1/in)
        - "uniform": U(-1/sqrt(in), 1/sqrt(in)) for weight and bias (torch.nn.Linear's default)
        - "normal": N(0, 0.01^2)
        - "zeros"

        Biases start at zero except with "uniform". Values come from the
        Network's seed (xoshiro256**), identical on every machine.

    Attributes
    ----------
    weight: ndarray (out_features, in_features), a view of the network's memory.
    bias: ndarray (out_features,) or None, a view of the network's memory.
    """

    kind = "dense"

    def __init__(self, in_features: int, out_features: int, activation: str | None = None, *,
                 bias: bool = True, init: str = "default") -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1, MAX_SIZE)
        self.out_features = check_int(out_features, "out_features", 1, MAX_SIZE)
        if self.in_features * self.out_features >= 2**62:
            raise ValueError(f"Dense({self.in_features}, {self.out_features}) would need "
                             f"{self.in_features * self.out_features:,} weights, more than any machine holds")
        self.activation = check_activation(activation)
        check_weights(self, bias, init)

    def _config(self) -> dict[str, Any]:
        return {"kind": "dense", "in_features": self.in_features, "out_features": self.out_features,
                "bias": self.use_bias, "activation": self.activation, "init": self.init}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Dense:
        act = cfg.get("activation")
        return cls(cfg.get("in_features"), cfg.get("out_features"), None if act == "identity" else act,
                   bias=cfg.get("bias", True), init=cfg.get("init", "default"))

    def num_params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.use_bias else 0)

    @property
    def weight(self) -> np.ndarray:
        return self._param("weight")

    @property
    def bias(self) -> np.ndarray | None:
        return self._param("bias") if self.use_bias else None

    # ---- exchange ----------------------------------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        linear = ctx.nn.Linear(self.in_features, self.out_features, bias=self.use_bias, dtype=ctx.dtype)
        ctx.copy_into(linear.weight, self.weight)
        if self.use_bias:
            ctx.copy_into(linear.bias, self.bias)
        return [linear, *activation_to_torch(ctx.nn, self.activation, repr(self))]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not isinstance(module, ctx.nn.Linear):
            return False
        dense = cls(module.in_features, module.out_features, bias=module.bias is not None)
        ctx.add(dense, {"weight": module.weight, "bias": module.bias}, foldable=True)
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        if len(self.input_shape) == 1:
            inputs = [x, g.initializer("weight", self.weight)]
            if self.use_bias:
                inputs.append(g.initializer("bias", self.bias))
            y = g.node("Gemm", inputs, "linear", transB=1)
        else:  # samples of higher rank: (..., IN) @ (IN, OUT), as torch.nn.Linear
            y = g.node("MatMul", [x, g.initializer("weight_t", np.ascontiguousarray(self.weight.T))], "linear")
            if self.use_bias:
                y = g.node("Add", [y, g.initializer("bias", self.bias)], "biased")
        return activation_to_onnx(g, self.activation, y)

    def __repr__(self) -> str:
        args = [str(self.in_features), str(self.out_features)]
        if self.activation != "identity":
            args.append(f"activation={self.activation!r}")
        if not self.use_bias:
            args.append("bias=False")
        if self.init != "default":
            args.append(f"init={self.init!r}")
        return f"Dense({', '.join(args + self._repr_flags())})"

