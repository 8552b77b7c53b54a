"""History: what fit recorded, one value per epoch."""

from __future__ import annotations

import os
from typing import Any


class History:
    """Per-epoch metrics of `Trainer.fit`.

    ``history.history`` maps a metric name ("loss", "accuracy", "val_loss",
    "val_accuracy", "lr", "time") to a list with one value per epoch;
    ``history["loss"]`` and ``history.loss`` are shortcuts.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.interrupted = False  # True when Ctrl-C ended the fit early

    def _record(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __getattr__(self, key: str) -> list[float]:
        history = self.__dict__.get("history", {})
        if key in history:
            return history[key]
        raise AttributeError(f"History has no metric {key!r}; recorded: {sorted(history)}")

    def __len__(self) -> int:
        return len(self.epoch)

    def layer_metric(self, name: str) -> dict[int, list[float]]:
        """Per-layer series of a metric such as "grad_norm": {layer index: values}."""
        prefix = f"{name}/"
        return {int(k[len(prefix):]): v for k, v in self.history.items() if k.startswith(prefix)}

    def plot(self, path: str | os.PathLike | None = None, show: bool = False) -> Any:
        """Learning curves and per-layer gradient norms (needs matplotlib).

        Panels: loss (and validation loss); accuracy, for classification only;
        each layer's mean gradient norm on a log scale, the picture that
        shows vanishing or exploding gradients and overfitting (validation
        loss rising while training loss falls). Epoch ticks are whole numbers.

        Returns a ``matplotlib.figure.Figure`` built without pyplot, so the
        session's backend and figure list stay as they were (in a notebook the
        returned figure displays itself). Saves it to `path` when given; with
        ``show=True`` it is made through pyplot and shown with the session's
        backend.
        """
        from .plotting import plot_history

        return plot_history(self, path, show)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(epochs=0)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items()
                         if k in ("loss", "accuracy") or k.startswith("val_"))
        return f"History(epochs={len(self.epoch)}, last: {last})"
