"""Conv1D and Conv2D: convolution layers with PyTorch's arguments and weight shapes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._arrays import check_int
from .activation import activation_to_onnx, activation_to_torch
from .base import Layer, check_activation, check_weights, register
from .window import axes, onnx_pads, window_repr

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


class _Conv(Layer):
    """Shared by Conv1D and Conv2D; see their docstrings."""

    dims: ClassVar[int] = 0
    torch_name: ClassVar[str] = ""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, bias: bool = True, activation: str | None = None,
                 init: str = "default") -> None:
        super().__init__()
        d = self.dims
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.out_channels = check_int(out_channels, "out_channels", 1)
        self.kernel_size = axes(kernel_size, "kernel_size", d, 1)
        self.stride = axes(stride, "stride", d, 1)
        self.dilation = axes(dilation, "dilation", d, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an integer, a tuple of {d}, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = axes(padding, "padding", d, 0)
        if self.in_channels * self.out_channels * math.prod(self.kernel_size) >= 2**62:
            raise ValueError(f"{type(self).__name__} would need more weights than any machine holds")
        self.activation = check_activation(activation)
        if self.activation == "softmax":
            raise ValueError(f"{type(self).__name__}: softmax is not offered as a convolution's activation; "
                             "add bx.Flatten() and a softmax layer after it")
        check_weights(self, bias, init)

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "dilation": list(self.dilation), "bias": self.use_bias, "activation": self.activation,
                "init": self.init}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> _Conv:
        act = cfg.get("activation")
        return cls(cfg.get("in_channels"), cfg.get("out_channels"), cfg.get("kernel_size"),
                   stride=cfg.get("stride", 1), padding=cfg.get("padding", 0), dilation=cfg.get("dilation", 1),
                   bias=cfg.get("bias", True), activation=None if act == "identity" else act,
                   init=cfg.get("init", "default"))

    def num_params(self) -> int:
        weights = self.out_channels * self.in_channels * math.prod(self.kernel_size)
        return weights + (self.out_channels if self.use_bias else 0)

    @property
    def weight(self) -> np.ndarray:
        """(out_channels, in_channels, *kernel_size), a view of the network's memory."""
        return self._param("weight")

    @property
    def bias(self) -> np.ndarray | None:
        return self._param("bias") if self.use_bias else None

    def _pads(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Padding before and after each spatial axis (torch's 'same' puts the odd one after)."""
        if self.padding == "valid":
            zero = (0,) * self.dims
            return zero, zero
        if self.padding == "same":
            total = tuple(d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))
            return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
        return tuple(self.padding), tuple(self.padding)  # type: ignore[arg-type]

    # ---- exchange ----------------------------------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        conv = getattr(ctx.nn, self.torch_name)(self.in_channels, self.out_channels, self.kernel_size,
                                                stride=self.stride, padding=self.padding, dilation=self.dilation,
                                                bias=self.use_bias, dtype=ctx.dtype)
        ctx.copy_into(conv.weight, self.weight)
        if self.use_bias:
            ctx.copy_into(conv.bias, self.bias)
        return [conv, *activation_to_torch(ctx.nn, self.activation, repr(self))]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if type(module) is not getattr(ctx.nn, cls.torch_name):
            return False
        if module.groups != 1:
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx convolutions have groups=1")
        if module.padding_mode != "zeros":
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx pads with zeros "
                             f"(padding_mode='zeros'), not {module.padding_mode!r}")
        conv = cls(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                   padding=module.padding, dilation=module.dilation, bias=module.bias is not None)
        ctx.add(conv, {"weight": module.weight, "bias": module.bias}, foldable=True)
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        inputs = [x, g.initializer("weight", self.weight)]
        if self.use_bias:
            inputs.append(g.initializer("bias", self.bias))
        before, after = self._pads()
        y = g.node("Conv", inputs, "conv", kernel_shape=list(self.kernel_size), strides=list(self.stride),
                   pads=onnx_pads(before, after), dilations=list(self.dilation))
        return activation_to_onnx(g, self.activation, y)

    def __repr__(self) -> str:
        one = (1,) * self.dims
        return window_repr(type(self).__name__, [str(self.in_channels), str(self.out_channels),
                                                 f"kernel_size={self.kernel_size}"],
                           {"stride": (self.stride, one), "padding": (self.padding, (0,) * self.dims),
                            "dilation": (self.dilation, one), "bias": (self.use_bias, True),
                            "activation": (self.activation, "identity"), "init": (self.init, "default")},
                           self._repr_flags())


_DOC = """{name}: convolution over samples {layout}, as ``torch.nn.{torch}`` (groups=1,
zero padding): ``y = activation(conv(x, weight) + bias)``.

Parameters
----------
in_channels, out_channels:
    Channels of each input and output sample.
kernel_size, stride, dilation:
    An integer or one per spatial axis{axes}.
padding:
    An integer or one per axis (zeros added on both sides), ``"valid"`` (none)
    or ``"same"`` (output as long as the input; needs stride 1; an odd total
    goes after, as in PyTorch).
bias:
    Whether the layer adds a bias per output channel.
activation:
    As for Dense (not softmax), fused into the layer's output pass.
init:
    Weight initialisation with fan_in = in_channels * kernel taps and fan_out =
    out_channels * kernel taps. "default" is "he" for relu-like activations and
    "xavier" otherwise, as for Dense (the rule backpropx uses everywhere);
    "uniform" is PyTorch's default for convolutions (U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) for weight and bias, i.e. kaiming_uniform with a=sqrt(5)).

Attributes
----------
weight: ndarray {wshape}, a view of the network's memory.
bias: ndarray (out_channels,) or None.

The network's input shape is per sample: ``input_shape={example}``.
"""


@register
class Conv1D(_Conv):
    __doc__ = _DOC.format(name="Conv1D", layout="(C, L)", torch="Conv1d", axes="",
                          wshape="(out_channels, in_channels, kernel_size)", example="(1, 40)")
    kind = "conv1d"
    dims = 1
    torch_name = "Conv1d"


@register
class Conv2D(_Conv):
    __doc__ = _DOC.format(name="Conv2D", layout="(C, H, W)", torch="Conv2d", axes=" (height, width)",
                          wshape="(out_channels, in_channels, kh, kw)", example="(1, 28, 28)")
    kind = "conv2d"
    dims = 2
    torch_name = "Conv2d"
