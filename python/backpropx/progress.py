"""Console output of fit: a tqdm bar per epoch in a terminal, one line per
epoch otherwise, nothing with verbose=0."""

from __future__ import annotations

import sys
from typing import Any


def format_metrics(metrics: dict[str, Any]) -> str:
    return " - ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                      if k in ("loss", "accuracy") or k.startswith("val_"))


class Progress:
    def __init__(self, verbose: int, epochs: int) -> None:
        self.verbose = verbose
        self.epochs = epochs
        self.live = verbose == 1 and sys.stdout.isatty()
        self.bar: Any = None

    def start_epoch(self, epoch: int, samples: int) -> None:
        if self.live:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=samples, unit=" samples", desc=f"epoch {epoch}/{self.epochs}",
                            leave=True, dynamic_ncols=True)

    def batch(self, samples: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(samples - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def end_epoch(self, epoch: int, metrics: dict[str, Any], samples: int, seconds: float) -> None:
        text = format_metrics(metrics)
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)
            self.bar.close()
            self.bar = None
        elif self.verbose > 0:
            rate = samples / seconds if seconds > 0 else float("inf")
            print(f"epoch {epoch}/{self.epochs} - {text} - {seconds:.2f}s ({rate:,.0f} samples/s)", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
