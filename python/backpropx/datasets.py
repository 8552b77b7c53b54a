"""Data sets that ship inside the package (nothing is downloaded)."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits: X (1797, 64) float64 in [0, 16], y (1797,) int64 in 0..9.

    Source: "Optical Recognition of Handwritten Digits" (E. Alpaydin, C. Kaynak,
    1998), UCI Machine Learning Repository, CC BY 4.0; this is the copy shipped
    by scikit-learn (BSD-3-Clause). See ``backpropx/data/DIGITS_LICENSE``.
    """
    with resources.files("backpropx").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def train_test_split(X: np.ndarray, y: np.ndarray, test_fraction: float = 0.25,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random split: X_train, X_test, y_train, y_test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = len(X)
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
