"""Dropout, on samples of any shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._arrays import MAX_SIZE, check_int
from .base import Layer, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


@register
class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014).

    In training, each element is zeroed with probability ``p`` and the rest
    are scaled by ``1 / (1 - p)``; in inference (predict, evaluate,
    ``forward(training=False)``) the layer is the identity. The masks come
    from the Trainer's seeded generator (in manual mode, the Network's), so
    a run is reproducible and independent of the thread count.

    The shape is taken from the previous layer; give ``features`` when
    Dropout is the first layer of a network without ``input_shape``.
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5, *, features: int | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.features = None if features is None else check_int(features, "features", 1, MAX_SIZE)

    @property
    def in_features(self) -> int | None:
        """Values per sample (once in a Network, or as given by ``features``)."""
        if self._shapes is not None:
            return int(np.prod(self.input_shape))
        return self.features

    out_features = in_features

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": "dropout", "p": self.p}
        if self.features is not None:
            cfg["features"] = self.features
        return cfg

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Dropout:
        return cls(cfg.get("p", 0.5), features=cfg.get("features"))

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        return [ctx.nn.Dropout(self.p)]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not isinstance(module, ctx.nn.Dropout):
            return False
        if type(module) is not ctx.nn.Dropout:
            raise ValueError(f"{ctx.where(module)} is not supported: only plain nn.Dropout maps to bx.Dropout")
        if not 0.0 <= module.p < 1.0:
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx's Dropout needs 0 <= p < 1")
        ctx.add(cls(module.p), {})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        return x  # the inference graph: dropout is the identity

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g}{''.join(', ' + f for f in self._repr_flags())})"
