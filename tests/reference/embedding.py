"""Embedding: a table lookup, ``y[..., :] = W[id]`` (torch.nn.Embedding).

The ids arrive as floats holding whole numbers. Backward: ``dW[id] +=`` the
gradients of every position holding ``id`` (np.add.at), nothing for
``padding_idx``; the ids get a zero gradient (they are not differentiable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["embedding_backward", "embedding_forward", "embedding_shapes"]


def embedding_shapes(layer: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    return (*shape, layer["embedding_dim"]), {"weight": (layer["num_embeddings"], layer["embedding_dim"])}


def embedding_forward(layer: dict[str, Any], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(ids).astype(np.int64)
    if not np.array_equal(idx, ids) or idx.min() < 0 or idx.max() >= layer["num_embeddings"]:
        raise ValueError("embedding ids must be integers in [0, num_embeddings)")
    return layer["params"]["weight"][idx], idx


def embedding_backward(layer: dict[str, Any], idx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    W = layer["params"]["weight"]
    dW = np.zeros_like(W)
    np.add.at(dW, idx.reshape(-1), dy.reshape(-1, W.shape[1]))
    if layer.get("padding_idx") is not None:
        dW[layer["padding_idx"]] = 0
    return np.zeros(idx.shape, dtype=dy.dtype), {"weight": dW}
