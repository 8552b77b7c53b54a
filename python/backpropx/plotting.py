"""Learning-curve figures for `History.plot`, without touching global matplotlib state.

pyplot keeps process-wide state (the backend, the list of open figures); a
library that calls ``matplotlib.use`` or ``pyplot.subplots`` behind the
user's back breaks their notebook (every later plot shows nothing after a
switch to Agg) or leaks figures. So a plot is built on an explicit
``matplotlib.figure.Figure``, saved through its own Agg canvas, and handed
back; pyplot is imported only when the caller asks to ``show`` the figure,
and then it uses whatever backend the session already has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .history import History


def _import_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("History.plot needs matplotlib: pip install matplotlib "
                          "(from a checkout: pip install '.[plot]')") from None
    return Figure


def _figure_class() -> type:
    """A Figure that displays itself as a PNG in Jupyter/IPython.

    A figure made without pyplot is not known to the inline backend, so
    IPython would print ``<Figure size ...>`` for it; ``_repr_png_`` makes
    ``history.plot()`` as a cell's last line show the picture, whatever
    backend (if any) the session has selected.
    """
    Figure = _import_matplotlib()

    class HistoryFigure(Figure):  # type: ignore[misc, valid-type]
        def _repr_png_(self) -> bytes:
            import io

            from matplotlib.backends.backend_agg import FigureCanvasAgg

            buffer = io.BytesIO()
            FigureCanvasAgg(self).print_png(buffer)
            return buffer.getvalue()

    return HistoryFigure


def _panels(history: History) -> list[tuple[str, Callable[[Any], bool]]]:
    """(title, draw) for every panel that has something to show, in order."""

    def series(ax: Any, keys: tuple[str, ...]) -> bool:
        drawn = False
        for key in keys:
            if key in history.history:
                ax.plot(history.epoch, history.history[key], marker="." if len(history.epoch) < 30 else None,
                        label=key)
                drawn = True
        return drawn

    def grad_norms(ax: Any) -> bool:
        norms = sorted(history.layer_metric("grad_norm").items())
        for k, values in norms:
            ax.plot(history.epoch, values, label=f"layer {k}")
        if norms:
            ax.set_yscale("log")
        return bool(norms)

    panels: list[tuple[str, Callable[[Any], bool]]] = [
        ("loss", lambda ax: series(ax, ("loss", "val_loss")))]
    # Regression (mse) records no accuracy: no empty panel for it.
    if "accuracy" in history.history or "val_accuracy" in history.history:
        panels.append(("accuracy", lambda ax: series(ax, ("accuracy", "val_accuracy"))))
    if history.layer_metric("grad_norm"):
        panels.append(("mean gradient norm per layer", grad_norms))
    return panels


def plot_history(history: History, path: Any = None, show: bool = False) -> Any:
    """Draw `history` (see `History.plot`); save to `path`; show it with pyplot if `show`."""
    figure_class = _figure_class()
    from matplotlib.ticker import MaxNLocator

    panels = _panels(history)
    if show:
        import matplotlib.pyplot as plt  # the session's own backend, unchanged

        fig = plt.figure(figsize=(5 * len(panels), 4), FigureClass=figure_class)
    else:
        fig = figure_class(figsize=(5 * len(panels), 4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, draw) in zip(axes, panels):
        draw(ax)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)  # picks a canvas for the file's format; the backend is untouched
    if show:
        plt.show()
    return fig
