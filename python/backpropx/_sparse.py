"""Sparse input: scipy.sparse matrices handed to the core as CSR rows.

A Dense first layer reads CSR rows directly (its forward product and weight
gradient are sparse x dense products in C++), so a sparse X is never
densified. This module never imports scipy: a scipy.sparse matrix can only
exist once the caller has imported it, so ``import backpropx`` works without
scipy installed.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import _core

__all__ = ["as_sparse_rows", "is_sparse"]

_INT32_MAX = np.iinfo(np.int32).max


def is_sparse(X: Any) -> bool:
    """True for a scipy.sparse matrix or array (of any format)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def as_sparse_rows(X: Any, dtype: np.dtype, shape: tuple[int, ...], name: str = "X",
                   source: str = "the network expects") -> Any:
    """X as the core's CSR rows (``_core.Csr_<dtype>``), checked.

    CSR input with the network's dtype and int32 column indices is used
    without copying; other formats (CSC, COO, ...) are converted to CSR, which
    copies the stored entries, never a dense matrix. The core checks the
    structure (indptr, column range) and that every value is finite.
    `shape` is the per-sample shape; sparse rows need it 1-d.
    """
    if len(shape) != 1:
        raise ValueError(f"{name} is sparse, which needs 1-d samples, but {source} per-sample shape {shape}")
    n_features = int(shape[0])
    if len(X.shape) != 2:
        raise ValueError(f"{name} must be 2-dimensional (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per sample, but {source} {n_features}")
    if n_features > _INT32_MAX:
        raise ValueError(f"sparse {name} has {n_features} columns; at most {_INT32_MAX} are supported")
    csr = X.tocsr()
    indices = csr.indices
    if indices.dtype != np.int32:
        # int64 indices (large matrices) are narrowed; an index that would not fit is invalid anyway.
        if indices.size and (indices.min() < 0 or indices.max() >= n_features):
            bad = indices[(indices < 0) | (indices >= n_features)][0]
            raise ValueError(f"sparse {name}: column index {bad} is outside [0, {n_features})")
        indices = indices.astype(np.int32)
    with np.errstate(over="ignore"):  # a finite value too large for float32 is reported below
        data = np.ascontiguousarray(csr.data, dtype=dtype)
    if data.dtype != csr.data.dtype and not np.isfinite(data).all() and np.isfinite(csr.data).all():
        raise ValueError(f"sparse {name} holds a value too large for {np.dtype(dtype).name}")
    rows = getattr(_core, f"Csr_{np.dtype(dtype).name}")
    return rows(np.ascontiguousarray(csr.indptr, dtype=np.int64), np.ascontiguousarray(indices), data,
                n_features)
