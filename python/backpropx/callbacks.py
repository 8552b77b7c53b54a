"""Callbacks: code that runs at fixed points of `Trainer.fit`.

A callback may stop training by setting ``trainer.stop_training = True``.
``on_batch_end`` is called every ``callback.every`` batches (0: never), from
the C++ loop at a batch boundary, so the network is consistent there.
Callbacks that carry state across epochs implement ``state_dict`` /
``load_state_dict`` so checkpoints resume them exactly.
"""

from __future__ import annotations

import csv
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .trainer import Trainer


class Callback:
    """Base class; override the hooks you need."""

    every = 0

    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def set_trainer(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Monitor:
    """Tracks the best value of a metric ("val_loss", "accuracy", ...)."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if min_delta < 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def value(self, logs: dict[str, Any]) -> float:
        if self.monitor not in logs:
            raise KeyError(f"metric {self.monitor!r} is not recorded; available: {sorted(logs)} "
                           "(val_* metrics need validation_data or validation_split)")
        return float(logs[self.monitor])

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for
    `patience` epochs (after the `patience`-th epoch without improvement; 0
    and 1 both stop at the first, as in Keras). With ``restore_best_weights``
    the network ends with the weights of its best epoch.

    It says when it stops and when it restores weights (one line each) if
    `verbose` is 1, or, with ``verbose=None``, when fit runs with verbose >= 1."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False, verbose: int | None = None) -> None:
        super().__init__()
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        if verbose is not None and (isinstance(verbose, bool) or verbose not in (0, 1)):
            raise ValueError(f"verbose must be None (follow fit), 0 or 1, got {verbose!r}")
        self.verbose = verbose
        self.tracker = Monitor(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.best_epoch = 0
        self.stopped_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = self.tracker.value(logs)
        if self.tracker.improved(value):
            self.tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights and self.trainer is not None:
                self.best_weights = self.trainer.network.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience and self.trainer is not None:  # Keras's and Lightning's count
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            self._say(f"early stopping after epoch {epoch}: {self.tracker.monitor} has not improved for "
                      f"{self.wait} epoch{'s' if self.wait > 1 else ''} (best {self.tracker.best:.6g} "
                      f"at epoch {self.best_epoch})")

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self.restore_best_weights and self.best_weights is not None and self.trainer is not None:
            self.trainer.network.load_state_dict(self.best_weights)
            if self.best_epoch != self.trainer.epochs_done:
                self._say(f"restored the weights of epoch {self.best_epoch} "
                          f"({self.tracker.monitor} {self.tracker.best:.6g})")

    def _say(self, message: str) -> None:
        verbose = self.verbose
        if verbose is None:
            verbose = getattr(self.trainer, "verbose", 0)
        if verbose:
            print(message, flush=True)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "wait": self.wait, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = float(state["best"])
        self.wait = int(state["wait"])
        self.best_epoch = int(state["best_epoch"])

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.tracker.monitor!r}, patience={self.patience}, "
                f"min_delta={self.tracker.min_delta:g}, restore_best_weights={self.restore_best_weights}, "
                f"verbose={self.verbose})")


class ModelCheckpoint(Callback):
    """Write a trainer checkpoint (weights, optimizer state, epoch, RNG state)
    after every epoch, or only when `monitor` improves (``save_best_only``).
    Writes are atomic. ``fit(..., resume_from=path)`` continues from it."""

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto") -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.save_best_only = bool(save_best_only)
        self.tracker = Monitor(monitor, mode, 0.0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.trainer is not None
        if self.save_best_only:
            value = self.tracker.value(logs)
            if not self.tracker.improved(value):
                return
            self.tracker.best = value
        # Written by the trainer once every callback has finished this epoch.
        self.trainer.request_checkpoint(self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = float(state["best"])

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.path!r}, save_best_only={self.save_best_only})"


def _writes_files(trainer: Trainer | None) -> bool:
    """Of the processes of a distributed run, only rank 0 writes files."""
    return trainer is None or trainer.distributed is None or trainer.distributed.rank == 0


class CSVLogger(Callback):
    """Append one row per epoch (epoch and every metric) to a CSV file (in a
    distributed run, rank 0 writes it)."""

    def __init__(self, path: str | os.PathLike, append: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.append = bool(append)
        self._keys: list[str] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if not _writes_files(self.trainer):
            return
        if not self.append and os.path.exists(self.path):
            os.unlink(self.path)
        self._keys = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if not _writes_files(self.trainer):
            return
        row = {"epoch": epoch, **{k: v for k, v in logs.items() if np.isscalar(v)}}
        new_file = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if self._keys is None:
            self._keys = list(row)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._keys, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)

    def __repr__(self) -> str:
        return f"CSVLogger({self.path!r})"
