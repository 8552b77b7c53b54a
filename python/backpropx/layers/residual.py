"""Residual: y = x + f(x) around a sub-stack of layers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import Layer, layer_from_config, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext
    from ..network import Network


@register
class Residual(Layer):
    """Residual block ``y = x + f(x)`` (He et al., 2016), ``f`` the given layers.

    ``f`` must output the shape it receives. Its parameters belong to the
    network like any others, keyed ``"{k}.{j}.weight"`` for layer j of the
    block at index k (torch's naming of a nested Sequential); the block's
    layers stay reachable as ``block.layers``. Freeze the block as a whole.

    >>> bx.Residual([bx.Dense(64, 64, activation="relu")])   # h = h + relu(W h + b)
    """

    kind = "residual"

    def __init__(self, layers: Iterable[Layer]) -> None:
        super().__init__()
        if isinstance(layers, Layer):
            raise TypeError("Residual takes a list of layers, got a single layer; wrap it in a list")
        layers = list(layers)
        if not layers:
            raise ValueError("a Residual block needs at least one layer")
        for j, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {j} of the Residual block is {type(layer).__name__}, not a backpropx Layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice in the Residual block")
        self._layers = layers

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def param_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"{j}.{name}" for j, layer in enumerate(self._layers) for name in layer.param_names)

    @property
    def buffer_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"{j}.{name}" for j, layer in enumerate(self._layers) for name in layer.buffer_names)

    def num_params(self) -> int:
        return sum(layer.num_params() for layer in self._layers)

    def num_buffers(self) -> int:
        return sum(layer.num_buffers() for layer in self._layers)

    def _config(self) -> dict[str, Any]:
        return {"kind": "residual", "layers": [layer._config() for layer in self._layers]}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Residual:
        children = cfg.get("layers")
        if not isinstance(children, list):
            raise ValueError("a residual layer's config needs a list of 'layers'")
        return cls([layer_from_config(c) if isinstance(c, dict) else c for c in children])

    def _attach(self, network: Network, path: tuple[int, ...],
                shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
        super()._attach(network, path, shapes)
        inner = network._core.layer_shapes(list(path))
        for j, (layer, s) in enumerate(zip(self._layers, inner)):
            layer._trainable = self._trainable
            layer._attach(network, (*path, j), s)

    @Layer.trainable.setter  # type: ignore[attr-defined]
    def trainable(self, value: bool) -> None:
        Layer.trainable.fset(self, value)  # type: ignore[attr-defined]
        for layer in self._layers:
            layer._trainable = self._trainable

    # ---- exchange ----------------------------------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        inner = [m for layer in self._layers for m in layer._to_torch(ctx)]
        return [ctx.residual_module(ctx.nn.Sequential(*inner))]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not ctx.is_residual_module(module):
            return False
        sub = ctx.nested()
        sub.convert(module.body)
        block = cls(sub.layers)
        ctx.add(block, {f"{j}.{name}": t for j, params in enumerate(sub.params) for name, t in params.items()})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        y = x
        for j, layer in enumerate(self._layers):
            with g.scope(f"{j}."):
                y = layer._to_onnx(g, y)
        return g.node("Add", [x, y], "add")

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self._layers)
        return f"Residual([{inner}]{''.join(', ' + f for f in self._repr_flags())})"
