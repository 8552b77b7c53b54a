"""Trainer: runs epochs of mini-batch gradient descent in the C++ core."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from . import _core
from ._arrays import as_features, as_targets, check_int, check_seed
from .history import History
from .network import Network, check_loss
from .optimizers import Adam, Optimizer


class Trainer:
    """Trains a Network on (X, y) with a loss and an optimizer.

    Each epoch runs entirely in C++ with the GIL released: a seeded shuffle
    (xoshiro256**, so the same seed gives the same run), mini-batches of
    ``batch_size`` (the last one may be smaller), forward, loss, backward and
    the optimizer update. The trainer keeps the optimizer state and the
    shuffling generator, so calling ``fit`` twice continues training.

    Parameters
    ----------
    network: the Network to train (updated in place).
    loss: "cross_entropy" (default), "mse" or "binary_cross_entropy".
    optimizer: an Optimizer (default ``Adam()``); the trainer builds its own state.
    batch_size: samples per update.
    shuffle: reshuffle the samples every epoch.
    seed: seeds the shuffling.
    """

    def __init__(self, network: Network, loss: str = "cross_entropy", optimizer: Optimizer | None = None,
                 batch_size: int = 32, shuffle: bool = True, seed: int = 0) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a backpropx Network, got {type(network).__name__}")
        self.loss = check_loss(loss)
        if optimizer is None:
            optimizer = Adam()
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a backpropx optimizer such as bx.Adam(), got {optimizer!r}")
        self.batch_size = check_int(batch_size, "batch_size", 1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        self.seed = check_seed(seed)
        self.network = network
        self.optimizer = optimizer
        dtype = network.dtype.name
        self._opt_core = optimizer._build(dtype)
        self._core = getattr(_core, f"Trainer_{dtype}")(network._core, self._opt_core, self.loss,
                                                       self.batch_size, self.shuffle, self.seed)
        self.epochs_done = 0

    def _data(self, X: Any, y: Any, name: str = "") -> tuple[np.ndarray, Any, Any]:
        net = self.network
        Xc = as_features(X, net.dtype, net.in_features, name=f"{name}X")
        values, labels = as_targets(y, self.loss, Xc.shape[0], net.out_features, net.dtype, name=f"{name}y")
        return Xc, values, labels

    def fit(self, X: Any, y: Any, epochs: int = 1, validation_data: tuple[Any, Any] | None = None,
            verbose: int = 1) -> History:
        """Train for `epochs` passes over (X, y); returns the History.

        Parameters
        ----------
        X: (n, in_features) array-like.
        y: targets for the loss (see ``Network.loss_and_gradients``).
        epochs: number of passes.
        validation_data: (X_val, y_val) evaluated after every epoch.
        verbose: 0 silent, 1 a line per epoch (with a live batch counter in a terminal).
        """
        epochs = check_int(epochs, "epochs", 0)
        verbose = check_int(verbose, "verbose", 0)
        Xc, values, labels = self._data(X, y)
        if Xc.shape[0] == 0:
            raise ValueError("X has no samples")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            val = self._data(*validation_data, name="validation ")
        history = History()
        live = verbose > 0 and sys.stdout.isatty()
        for _ in range(epochs):
            epoch = self.epochs_done + 1
            start = time.perf_counter()
            callback = None
            if live:
                def callback(batch: int, batches: int, samples: int, loss: float, _e: int = epoch) -> None:
                    print(f"\repoch {_e}: batch {batch}/{batches} - loss {loss:.4f}", end="", flush=True)
            every = max(1, math.ceil(Xc.shape[0] / self.batch_size) // 50)
            stats = self._core.train_epoch(Xc, values, labels, callback, every)
            metrics = {"loss": stats["loss"]}
            if not math.isnan(stats["accuracy"]):
                metrics["accuracy"] = stats["accuracy"]
            if val is not None:
                for key, value in self._evaluate(*val).items():
                    metrics[f"val_{key}"] = value
            elapsed = time.perf_counter() - start
            metrics["lr"] = self.optimizer.lr
            metrics["time"] = elapsed
            self.epochs_done = epoch
            history._record(epoch, metrics)
            if verbose > 0:
                shown = " - ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k not in ("lr", "time"))
                rate = stats["samples"] / elapsed if elapsed > 0 else float("inf")
                print(f"{chr(13) if live else ''}epoch {epoch} - {shown} - {elapsed:.2f}s "
                      f"({rate:,.0f} samples/s)", flush=True)
        return history

    def _evaluate(self, Xc: np.ndarray, values: Any, labels: Any) -> dict[str, float]:
        loss, correct = self.network._core.evaluate(Xc, values, labels, self.loss)
        out = {"loss": float(loss)}
        if self.loss != "mse":
            out["accuracy"] = float(correct) / Xc.shape[0] if Xc.shape[0] else float("nan")
        return out

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Mean loss (and accuracy, except for mse) of the network on (X, y)."""
        return self._evaluate(*self._data(X, y))

    def __repr__(self) -> str:
        return (f"Trainer(loss={self.loss!r}, optimizer={self.optimizer!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epochs_done={self.epochs_done})")
