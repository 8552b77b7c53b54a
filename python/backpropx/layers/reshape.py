"""Flatten and Reshape: the same values under another per-sample shape (no copy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Layer, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


@register
class Flatten(Layer):
    """Flattens each sample to one axis, in the order of torch's ``flatten(1)``
    of the ``(n, C, H, W)`` tensor. A view: it copies nothing."""

    kind = "flatten"

    def _config(self) -> dict[str, Any]:
        return {"kind": "flatten"}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Flatten:
        return cls()

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        return [ctx.nn.Flatten()]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not isinstance(module, ctx.nn.Flatten):
            return False
        if module.start_dim != 1 or module.end_dim != -1:
            raise ValueError(f"{ctx.where(module)} is not supported: bx.Flatten is nn.Flatten(1, -1)")
        ctx.add(cls(), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        return g.node("Flatten", [x], "flatten", axis=1)

    def __repr__(self) -> str:
        return "Flatten()"


@register
class Reshape(Layer):
    """Gives each sample the shape ``shape`` (one entry may be -1), keeping the
    element order (row-major, as ``torch.reshape``). A view: it copies nothing."""

    kind = "reshape"

    def __init__(self, shape: Any) -> None:
        super().__init__()
        try:
            dims = tuple(shape)
        except TypeError:
            raise TypeError(f"Reshape takes a tuple of sizes, got {shape!r}") from None
        if not dims:
            raise ValueError("Reshape needs at least one axis")
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or (d < 1 and d != -1):
                raise ValueError(f"Reshape sizes must be positive integers or one -1, got {shape!r}")
        if sum(1 for d in dims if d == -1) > 1:
            raise ValueError(f"Reshape takes at most one -1, got {shape!r}")
        self.shape = tuple(int(d) for d in dims)

    def _config(self) -> dict[str, Any]:
        return {"kind": "reshape", "shape": list(self.shape)}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Reshape:
        return cls(cfg.get("shape"))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        unflatten = ctx.nn.Unflatten(1, self.output_shape)
        return [unflatten] if len(self.input_shape) == 1 else [ctx.nn.Flatten(), unflatten]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not isinstance(module, ctx.nn.Unflatten):
            return False
        if module.dim != 1:
            raise ValueError(f"{ctx.where(module)} is not supported: bx.Reshape is nn.Unflatten(1, shape) "
                             "of flat samples")
        ctx.add(cls(tuple(module.unflattened_size)), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        shape = g.initializer("shape", np.array((0, *self.output_shape), dtype=np.int64), raw=True)
        return g.node("Reshape", [x, shape], "reshape")

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"
