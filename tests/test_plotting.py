"""History.plot: panels that have data, whole-number epoch ticks, and no change
to matplotlib's global state (backend, pyplot's figure list)."""

from __future__ import annotations

import numpy as np
import pytest

import backpropx as bx

matplotlib = pytest.importorskip("matplotlib")


def fit(loss: str, epochs: int = 3, validation: bool = True) -> bx.History:
    rng = np.random.default_rng(0)
    X = rng.random((40, 4))
    if loss == "mse":
        net = bx.Network([bx.Dense(4, 6, activation="relu"), bx.Dense(6, 1)], seed=0)
        y = X[:, :1] * 2
    else:
        net = bx.Network([bx.Dense(4, 6, activation="relu"), bx.Dense(6, 2, activation="softmax")], seed=0)
        y = (X[:, 0] > 0.5).astype(int)
    return bx.Trainer(net, loss=loss, batch_size=8).fit(
        X, y, epochs=epochs, verbose=0, validation_data=(X, y) if validation else None)


def test_classification_has_loss_accuracy_and_gradient_panels(tmp_path):
    fig = fit("cross_entropy").plot(tmp_path / "c.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "mean gradient norm per layer"]
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["accuracy", "val_accuracy"]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_regression_has_no_empty_accuracy_panel():
    fig = fit("mse").plot()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "mean gradient norm per layer"]
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["loss", "val_loss"]


@pytest.mark.parametrize("epochs", [2, 3, 7])
def test_epoch_ticks_are_whole_numbers(epochs):
    fig = fit("mse", epochs=epochs, validation=False).plot()
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_plot_changes_no_global_matplotlib_state(tmp_path):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    figures = plt.get_fignums()
    history = fit("cross_entropy")
    fig = history.plot(tmp_path / "h.png")
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == figures          # not registered with pyplot, nothing to close
    assert fig._repr_png_()[:4] == b"\x89PNG"    # displays itself in IPython


def test_missing_matplotlib_names_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    history = fit("mse", epochs=1, validation=False)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install '\.\[plot\]'"):
        history.plot()
