"""Pooling: MaxPool1D/2D, AvgPool1D/2D and GlobalAvgPool, as PyTorch's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .base import Layer, register
from .window import axes, onnx_pads, window_repr

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


class _Pool(Layer):
    """Shared by the max and average pooling layers; see their docstrings."""

    dims: ClassVar[int] = 0
    torch_name: ClassVar[str] = ""
    onnx_op: ClassVar[str] = ""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        d = self.dims
        self.kernel_size = axes(kernel_size, "kernel_size", d, 1)
        self.stride = self.kernel_size if stride is None else axes(stride, "stride", d, 1)
        self.padding = axes(padding, "padding", d, 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"padding must be at most half the kernel size (as in PyTorch), got "
                             f"padding={padding!r} for kernel_size={kernel_size!r}")

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding)}

    @staticmethod
    def _torch_args(module: Any, ctx: TorchContext) -> dict[str, Any]:
        """kernel_size, stride, padding of a torch pooling module, refusing what backpropx lacks."""
        if module.ceil_mode:
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx pools with ceil_mode=False")
        return {"kernel_size": module.kernel_size, "stride": module.stride, "padding": module.padding}

    def _onnx_attrs(self) -> dict[str, Any]:
        return {"kernel_shape": list(self.kernel_size), "strides": list(self.stride),
                "pads": onnx_pads(self.padding, self.padding)}

    def _options(self) -> dict[str, tuple[Any, Any]]:
        return {"stride": (self.stride, self.kernel_size), "padding": (self.padding, (0,) * self.dims)}

    def __repr__(self) -> str:
        return window_repr(type(self).__name__, [f"kernel_size={self.kernel_size}"], self._options(),
                           self._repr_flags())


class _MaxPool(_Pool):
    onnx_op = "MaxPool"

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> _MaxPool:
        return cls(cfg.get("kernel_size"), stride=cfg.get("stride"), padding=cfg.get("padding", 0))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        return [getattr(ctx.nn, self.torch_name)(self.kernel_size, stride=self.stride, padding=self.padding)]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if type(module) is not getattr(ctx.nn, cls.torch_name):
            return False
        if module.return_indices:
            raise ValueError(f"{ctx.where(module)} is not supported: return_indices=True")
        if any(d != 1 for d in axes(module.dilation, "dilation", cls.dims, 1)):
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx's max pooling has no dilation")
        ctx.add(cls(**cls._torch_args(module, ctx)), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        return g.node("MaxPool", [x], "max_pool", **self._onnx_attrs())


class _AvgPool(_Pool):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding)
        if not isinstance(count_include_pad, (bool, np.bool_)):
            raise TypeError(f"count_include_pad must be True or False, got {count_include_pad!r}")
        self.count_include_pad = bool(count_include_pad)

    def _config(self) -> dict[str, Any]:
        return dict(super()._config(), count_include_pad=self.count_include_pad)

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> _AvgPool:
        return cls(cfg.get("kernel_size"), stride=cfg.get("stride"), padding=cfg.get("padding", 0),
                   count_include_pad=cfg.get("count_include_pad", True))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        return [getattr(ctx.nn, self.torch_name)(self.kernel_size, stride=self.stride, padding=self.padding,
                                                 count_include_pad=self.count_include_pad)]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if type(module) is not getattr(ctx.nn, cls.torch_name):
            return False
        if getattr(module, "divisor_override", None) is not None:
            raise ValueError(f"{ctx.where(module)} is not supported: divisor_override")
        ctx.add(cls(**cls._torch_args(module, ctx), count_include_pad=module.count_include_pad), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        return g.node("AveragePool", [x], "avg_pool", count_include_pad=int(self.count_include_pad),
                      **self._onnx_attrs())

    def _options(self) -> dict[str, tuple[Any, Any]]:
        return dict(super()._options(), count_include_pad=(self.count_include_pad, True))


_DOC = """{what} over samples {layout}, each channel on its own, as ``torch.nn.{torch}``
(ceil_mode=False). kernel_size, stride (default: kernel_size) and padding are
an integer or one per spatial axis; padding is at most half the kernel.
{extra}"""

_MAX_EXTRA = """Padding never wins the maximum; NaN does, and the first of equal maxima is
taken (as in PyTorch). The gradient goes to the position of each maximum."""
_AVG_EXTRA = """count_include_pad (default True, as PyTorch): padding counts as zeros in the
average's divisor; with False the divisor is the number of input values in the window."""


@register
class MaxPool1D(_MaxPool):
    __doc__ = _DOC.format(what="MaxPool1D: the maximum of each window", layout="(C, L)", torch="MaxPool1d",
                          extra=_MAX_EXTRA)
    kind = "max_pool1d"
    dims = 1
    torch_name = "MaxPool1d"


@register
class MaxPool2D(_MaxPool):
    __doc__ = _DOC.format(what="MaxPool2D: the maximum of each window", layout="(C, H, W)", torch="MaxPool2d",
                          extra=_MAX_EXTRA)
    kind = "max_pool2d"
    dims = 2
    torch_name = "MaxPool2d"


@register
class AvgPool1D(_AvgPool):
    __doc__ = _DOC.format(what="AvgPool1D: the mean of each window", layout="(C, L)", torch="AvgPool1d",
                          extra=_AVG_EXTRA)
    kind = "avg_pool1d"
    dims = 1
    torch_name = "AvgPool1d"


@register
class AvgPool2D(_AvgPool):
    __doc__ = _DOC.format(what="AvgPool2D: the mean of each window", layout="(C, H, W)", torch="AvgPool2d",
                          extra=_AVG_EXTRA)
    kind = "avg_pool2d"
    dims = 2
    torch_name = "AvgPool2d"


_ADAPTIVE = {1: "AdaptiveAvgPool1d", 2: "AdaptiveAvgPool2d", 3: "AdaptiveAvgPool3d"}


@register
class GlobalAvgPool(Layer):
    """The mean over every position of each channel: samples ``(C, *positions)``
    become ``(C,)``, or ``(C, 1, ...)`` with ``keepdim=True`` (which is
    ``torch.nn.AdaptiveAvgPool{1,2,3}d(1)``; ``keepdim=False`` is that
    followed by ``nn.Flatten()``)."""

    kind = "global_avg_pool"

    def __init__(self, keepdim: bool = False) -> None:
        super().__init__()
        if not isinstance(keepdim, (bool, np.bool_)):
            raise TypeError(f"keepdim must be True or False, got {keepdim!r}")
        self.keepdim = bool(keepdim)

    def _config(self) -> dict[str, Any]:
        return {"kind": "global_avg_pool", "keepdim": self.keepdim}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> GlobalAvgPool:
        return cls(cfg.get("keepdim", False))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        positions = len(self.input_shape) - 1
        if positions not in _ADAPTIVE:
            raise ValueError(f"{self!r} over samples {self.input_shape} has no PyTorch equivalent "
                             "(AdaptiveAvgPool takes 1 to 3 spatial axes)")
        pool = getattr(ctx.nn, _ADAPTIVE[positions])(1)
        return [pool] if self.keepdim else [pool, ctx.nn.Flatten()]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        dims = next((d for d, name in _ADAPTIVE.items() if type(module) is getattr(ctx.nn, name)), None)
        if dims is None:
            return False
        size = module.output_size
        sizes = (size,) * dims if isinstance(size, int) or size is None else tuple(size)
        if any(s != 1 for s in sizes):
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx has the global average "
                             "(output_size=1) only")
        ctx.add(cls(keepdim=True), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        y = g.node("GlobalAveragePool", [x], "global_avg_pool")
        return y if self.keepdim else g.node("Flatten", [y], "flatten", axis=1)

    def __repr__(self) -> str:
        return f"GlobalAvgPool({', '.join((['keepdim=True'] if self.keepdim else []) + self._repr_flags())})"
