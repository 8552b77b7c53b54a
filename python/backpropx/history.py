"""History: what fit recorded, one value per epoch."""

from __future__ import annotations


class History:
    """Per-epoch metrics of `Trainer.fit`.

    ``history.history`` maps a metric name ("loss", "accuracy", "val_loss",
    "val_accuracy", "lr", "time") to a list with one value per epoch;
    ``history["loss"]`` and ``history.loss`` are shortcuts.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

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

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(epochs=0)"
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.history.items() if k != "time")
        return f"History(epochs={len(self.epoch)}, last: {last})"
