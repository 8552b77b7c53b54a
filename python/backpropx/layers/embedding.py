"""Embedding: a lookup table from integer token ids to vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._arrays import check_int
from .base import Layer, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


@register
class Embedding(Layer):
    """Token embeddings, as ``torch.nn.Embedding``: ``y[..., :] = weight[id]``.

    The network's input holds the ids, ``(n, T)`` (any per-sample shape S
    gives ``(n, *S, embedding_dim)``), as integers in ``[0, num_embeddings)``:
    an integer array, or floats that are whole numbers (X is converted to the
    network's dtype; float32 holds every integer below 2**24, so a float32
    network allows at most 2**24 ids). Anything else raises ValueError before
    anything changes. Embedding reads data, not values, so it must be the
    network's first layer; give ``input_shape=(T,)``.

    Parameters
    ----------
    num_embeddings: the number of ids (rows of the table).
    embedding_dim: the size of each vector.
    padding_idx: an id whose row starts at zero and receives no gradient
        (torch's convention; negative values count from the end).

    ``weight`` ``(num_embeddings, embedding_dim)`` starts as N(0, 1), torch's
    default. Its gradient touches only the rows of ids in the batch (summed
    in a fixed order, so it is bit-identical for any number of threads); the
    gradient with respect to the ids is zero (they are not differentiable).
    """

    kind = "embedding"
    param_names = ("weight",)

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", 1)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", 1)
        if self.num_embeddings * self.embedding_dim >= 2**62:
            raise ValueError(f"Embedding({self.num_embeddings}, {self.embedding_dim}) is too large")
        if padding_idx is not None:
            padding_idx = check_int(padding_idx, "padding_idx")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"padding_idx must be in [-{self.num_embeddings}, {self.num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx %= self.num_embeddings  # torch stores it non-negative
        self.padding_idx = padding_idx

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": "embedding", "num_embeddings": self.num_embeddings,
                               "embedding_dim": self.embedding_dim}
        if self.padding_idx is not None:
            cfg["padding_idx"] = self.padding_idx
        return cfg

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Embedding:
        return cls(cfg.get("num_embeddings"), cfg.get("embedding_dim"), cfg.get("padding_idx"))

    def num_params(self) -> int:
        return self.num_embeddings * self.embedding_dim

    @property
    def weight(self) -> np.ndarray:
        return self._param("weight")

    # ---- exchange ----------------------------------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        emb = ctx.nn.Embedding(self.num_embeddings, self.embedding_dim, padding_idx=self.padding_idx,
                               dtype=ctx.dtype)
        ctx.copy_into(emb.weight, self.weight)
        return [emb]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if not isinstance(module, ctx.nn.Embedding):
            return False
        if module.max_norm is not None or module.scale_grad_by_freq:
            raise ValueError(f"{ctx.where(module)} is not supported: bx.Embedding has no max_norm or "
                             "scale_grad_by_freq")
        ctx.add(cls(module.num_embeddings, module.embedding_dim, module.padding_idx), {"weight": module.weight})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        ids = g.node("Cast", [x], "ids", to=7)  # INT64: the ids arrive as the network's floats
        return g.node("Gather", [g.initializer("weight", self.weight), ids], "gather", axis=0)

    def __repr__(self) -> str:
        args = [str(self.num_embeddings), str(self.embedding_dim)]
        if self.padding_idx is not None:
            args.append(f"padding_idx={self.padding_idx}")
        return f"Embedding({', '.join(args + self._repr_flags())})"
