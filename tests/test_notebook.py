"""backpropx in a Jupyter notebook, executed for real with nbclient: plotting
leaves the session's matplotlib backend alone (later plots still show), the
figure `History.plot` returns displays itself, and ``verbose=1`` draws a live
progress bar instead of one line per epoch."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

CELLS = [
    # 0: the inline backend, as a notebook user has it
    "%matplotlib inline\n"
    "import matplotlib\n"
    "backend_before = matplotlib.get_backend()\n"
    "import numpy as np\n"
    "import backpropx as bx\n"
    "X = np.random.default_rng(0).random((64, 4))\n"
    "y = (X[:, 0] > 0.5).astype(int)",
    # 1: training with the default verbose=1
    "net = bx.Network([bx.Dense(4, 8, activation='relu'), bx.Dense(8, 2, activation='softmax')], seed=0)\n"
    "history = bx.Trainer(net, batch_size=8).fit(X, y, epochs=3, validation_data=(X, y))",
    # 2: the returned figure as the cell's value
    "history.plot()",
    # 3: the user's own plot after ours: must still be shown
    "import matplotlib.pyplot as plt\n"
    "plt.plot([1, 2, 3])\n"
    "plt.show()",
    # 4: the backend is what it was, and plot() left no pyplot figure behind
    "print('backend unchanged:', matplotlib.get_backend() == backend_before, backend_before)\n"
    "history.plot('curves.png')\n"
    "print('open figures:', plt.get_fignums())",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    path = tmp_path_factory.mktemp("notebook")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(path)}})
    client.execute()
    return nb, path


def outputs(nb, cell: int) -> list:
    return nb.cells[cell].outputs


def text(nb, cell: int, stream: str) -> str:
    return "".join(o.get("text", "") for o in outputs(nb, cell) if o.get("name") == stream)


def test_verbose_1_draws_a_live_bar_not_one_line_per_epoch(executed):
    nb, _ = executed
    widgets = [o for o in outputs(nb, 1) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if widgets:   # ipywidgets installed in the kernel: tqdm's widget bar
        assert len(widgets) == 3
        return
    bar = text(nb, 1, "stderr")
    assert "\repoch 1/3" in bar and "\repoch 3/3" in bar and "samples/s" in bar and "100%" in bar
    assert "epoch 1/3 - loss" not in text(nb, 1, "stdout")   # the line-per-epoch format of pipes and logs


def test_plot_returns_a_figure_that_displays_itself(executed):
    nb, _ = executed
    (result,) = outputs(nb, 2)
    assert result.output_type == "execute_result" and "image/png" in result.data


def test_plotting_leaves_the_sessions_backend_and_figures_alone(executed):
    nb, path = executed
    shown = [o for o in outputs(nb, 3) if "image/png" in o.get("data", {})]
    assert len(shown) == 1, "a plot made after History.plot was not shown"
    out = text(nb, 4, "stdout")
    # The inline backend's name depends on the matplotlib version ("inline" or
    # "module://matplotlib_inline.backend_inline"); Agg would mean it was switched.
    assert "backend unchanged: True" in out and "agg" not in out.lower()
    assert "open figures: []" in out
    assert (path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
