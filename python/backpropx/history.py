"""History: what fit recorded, one value per epoch."""

from __future__ import annotations

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

    def plot(self, path: str | None = None, show: bool = False) -> Any:
        """Learning curves and per-layer gradient norms (needs matplotlib: ``pip install backpropx[plot]``).

        The left panel shows loss (and validation loss); the middle one
        accuracy; the right one each layer's mean gradient norm on a log
        scale, the picture that shows vanishing or exploding gradients and
        overfitting (validation loss rising while training loss falls).
        Saves to `path` when given; returns the matplotlib Figure.
        """
        try:
            import matplotlib

            if not show:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install 'backpropx[plot]'") from None
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for key in ("loss", "val_loss"):
            if key in self.history:
                axes[0].plot(self.epoch, self.history[key], label=key)
        axes[0].set(title="loss", xlabel="epoch")
        for key in ("accuracy", "val_accuracy"):
            if key in self.history:
                axes[1].plot(self.epoch, self.history[key], label=key)
        axes[1].set(title="accuracy", xlabel="epoch")
        for k, values in sorted(self.layer_metric("grad_norm").items()):
            axes[2].plot(self.epoch, values, label=f"layer {k}")
        axes[2].set(title="mean gradient norm per layer", xlabel="epoch", yscale="log")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
        if show:
            plt.show()
        return fig

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(epochs=0)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items()
                         if k in ("loss", "accuracy") or k.startswith("val_"))
        return f"History(epochs={len(self.epoch)}, last: {last})"
