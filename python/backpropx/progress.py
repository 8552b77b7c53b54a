"""Console output of fit: a live tqdm bar per epoch in a terminal or a Jupyter
notebook, one line per epoch otherwise (logs, pipes), nothing with verbose=0."""

from __future__ import annotations

import sys
from typing import Any


def format_metrics(metrics: dict[str, Any]) -> str:
    return " - ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                      if k in ("loss", "accuracy") or k.startswith("val_"))


def in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, lab, VS Code), where stdout is no
    terminal but a bar that redraws itself is what the user sees best."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def bar_class() -> Any:
    """tqdm's widget bar in a notebook with ipywidgets, its text bar otherwise.

    tqdm.auto would warn in a notebook without ipywidgets and fall back to the
    text bar; the text bar redraws in place there too (Jupyter honours
    carriage returns), so we pick it silently.
    """
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            pass
        else:
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm
    from tqdm.std import tqdm

    return tqdm


class Progress:
    def __init__(self, verbose: int, epochs: int) -> None:
        self.verbose = verbose
        self.epochs = epochs
        self.live = verbose == 1 and (sys.stdout.isatty() or in_notebook())
        self.bar: Any = None

    def start_epoch(self, epoch: int, samples: int) -> None:
        if self.live:
            tqdm = bar_class()
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
