"""Shared helpers of the backpropx test suite.

The core is checked against ``tests/reference`` (plain NumPy, written from
the equations). The helpers here build a random ``bx.Network`` together
with the matching reference layer list (same weights, taken from the
network's ``state_dict``), draw targets for every loss, and compare arrays
with :func:`rel_err`, which is normalised by the largest magnitude of the
whole tensor: ``max|a - b| / max(max|a|, max|b|)``. A 100% error gives 1
(or more), so no tolerance below 1 can accept it, and tiny elements cannot
hide a large error elsewhere. ``test_gradients.py`` shows that these
comparisons reject a corrupted, transposed or wrong-kink gradient.

Import the helpers with ``from conftest import ...`` (pytest puts tests/ on
sys.path; tests/ has no ``__init__.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import backpropx as bx

# tests/reference: see test_reference_vs_torch.py for the import pattern.
try:
    import reference as ref
except ImportError:  # pragma: no cover
    from tests import reference as ref

#: Element-wise activations (softmax is row-wise and only used last).
ELEMENTWISE = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")
ALL_ACTIVATIONS = ELEMENTWISE + ("softmax",)
LOSSES = ("mse", "cross_entropy", "binary_cross_entropy", "poisson")


# ---- comparisons -----------------------------------------------------------
def rel_err(actual: Any, expected: Any) -> float:
    """``max|a - b| / max(max|a|, max|b|)``; 0 when both are all zero.

    Shapes must agree exactly (a transposed (OUT, IN) gradient of a
    non-square layer fails here); a non-finite value gives ``inf``.
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b)) / scale)


def assert_close(actual: Any, expected: Any, tol: float, what: str = "value") -> None:
    """Fails unless ``rel_err(actual, expected) <= tol`` (tol must be < 1)."""
    assert 0 < tol < 1, "a tolerance of 1 or more accepts a 100% error"
    err = rel_err(actual, expected)
    if not err <= tol:
        raise AssertionError(f"{what}: relative error {err:.3e} exceeds {tol:.1e}")


def assert_grads_close(actual: Mapping[str, Any], expected: Mapping[str, Any], tol: float,
                       what: str = "grad") -> None:
    """Same keys, and every tensor within ``tol`` (see :func:`assert_close`)."""
    assert sorted(actual) == sorted(expected), f"{what}: keys {sorted(actual)} vs {sorted(expected)}"
    for key in expected:
        assert_close(actual[key], expected[key], tol, f"{what}[{key!r}]")


# ---- networks ----------------------------------------------------------------
def random_specs(rng: np.random.Generator, depth: int, *, last: str | None, max_width: int = 20,
                 n_in: int | None = None, n_out: int | None = None,
                 hidden: Sequence[str] = ELEMENTWISE) -> list[dict[str, Any]]:
    """Layer descriptions ``{"in", "out", "activation", "bias"}`` for a random
    stack: widths in 1..max_width, hidden activations drawn from ``hidden``,
    ``last`` the last layer's activation, about one layer in four without bias."""
    widths = [int(rng.integers(1, max_width + 1)) for _ in range(depth + 1)]
    if n_in is not None:
        widths[0] = n_in
    if n_out is not None:
        widths[-1] = n_out
    specs = []
    for k in range(depth):
        act = last if k == depth - 1 else str(rng.choice(hidden))
        specs.append({"in": widths[k], "out": widths[k + 1], "activation": act,
                      "bias": bool(rng.random() > 0.25)})
    return specs


def build(specs: Sequence[Mapping[str, Any]], *, seed: int = 0, dtype: str = "float64",
          init: str = "default") -> bx.Network:
    layers = [bx.Dense(s["in"], s["out"], activation=None if s["activation"] == "identity" else s["activation"],
                       bias=s["bias"], init=init) for s in specs]
    return bx.Network(layers, seed=seed, dtype=dtype)


def randomize(net: bx.Network, rng: np.random.Generator, scale: float = 1.0) -> None:
    """Overwrite every parameter (through the writable views) with
    ``scale * N(0, 1/fan_in)`` values, biases included (init leaves biases
    at zero, which would hide a bias that is added twice or not at all)."""
    for name, p in net.named_parameters():
        fan_in = p.shape[1] if p.ndim == 2 else max(1, p.shape[0])
        p[...] = scale * rng.standard_normal(p.shape) / np.sqrt(fan_in)


def ref_layers(net: bx.Network, dtype: Any = np.float64) -> list[dict[str, Any]]:
    """The reference layer list of ``net``: copies of its weights (as
    ``dtype``) and its activations."""
    sd = net.state_dict()
    out = []
    for k, layer in enumerate(net.layers):
        out.append({"weight": sd[f"{k}.weight"].astype(dtype),
                    "bias": sd[f"{k}.bias"].astype(dtype) if f"{k}.bias" in sd else None,
                    "activation": None if layer.activation == "identity" else layer.activation})
    return out


def ref_params(layers: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """name -> the reference layers' own arrays (an optimizer updates them in place)."""
    params = {}
    for k, layer in enumerate(layers):
        params[f"{k}.weight"] = layer["weight"]
        if layer["bias"] is not None:
            params[f"{k}.bias"] = layer["bias"]
    return params


def ref_stack(net: bx.Network, dtype: Any = np.float64) -> list[dict[str, Any]]:
    """The reference layers (``tests/reference/stack.py``) of any network: each
    layer's configuration, as the core was built from it, with copies of its
    parameters (as ``dtype``) under ``"params"``; a Residual block's layers
    nested the same way. Knows no layer kind: the reference dispatches."""
    sd = net.state_dict()

    def convert(cfg: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        layer = {key: value for key, value in cfg.items() if key != "layers"}
        layer["params"] = {key[len(prefix):]: sd[key].astype(dtype) for key in sd
                           if key.startswith(prefix) and "." not in key[len(prefix):]}
        if "layers" in cfg:
            layer["layers"] = [convert(child, f"{prefix}{j}.") for j, child in enumerate(cfg["layers"])]
        return layer

    return [convert(layer._config(), f"{k}.") for k, layer in enumerate(net.layers)]


def _dropout_layers(layers: Sequence[bx.Layer]) -> list[bx.Layer]:
    """The Dropout layers of a stack in forward order, depth first through containers."""
    found = []
    for layer in layers:
        if isinstance(layer, bx.Dropout):
            found.append(layer)
        found.extend(_dropout_layers(getattr(layer, "layers", [])))
    return found


def dropout_masks(net: bx.Network, n: int) -> list[np.ndarray]:
    """The keep-masks the next ``net.forward(X, training=True)`` of n samples
    will draw, one per Dropout layer in forward order (the reference's
    ``Pass.masks``). The network is not touched: each Dropout layer is
    replayed by a one-layer probe network started from the network's
    generator state, since the masks come from that generator alone (one
    uniform per element, in row-major order, layer after layer)."""
    state = net._core.get_rng_state()
    masks = []
    for layer in _dropout_layers(net.layers):
        probe = bx.Network([bx.Dropout(layer.p)], input_shape=layer.input_shape, dtype=net.dtype)
        probe._core.set_rng_state(state)
        masks.append((probe.forward(np.ones((n, *layer.input_shape)), training=True) != 0).astype(np.float64))
        state = probe._core.get_rng_state()
    return masks


def random_targets(rng: np.random.Generator, loss: str, n: int, c: int, *, labels: bool = True) -> np.ndarray:
    """Targets for ``loss``: integer labels (``labels=True``) or probability rows
    for cross_entropy; values in [0, 1] for binary_cross_entropy; counts (about
    a third of them 0) for poisson; N(0, 1) for mse."""
    if loss == "cross_entropy":
        if labels:
            return rng.integers(0, c, size=n)
        return rng.dirichlet(np.ones(c), size=n)
    if loss == "binary_cross_entropy":
        t = rng.random((n, c))
        hard = rng.random((n, c)) < 0.5
        t[hard] = np.round(t[hard])  # about half the targets exactly 0 or 1
        return t
    if loss == "poisson":
        return rng.poisson(1.2, size=(n, c)).astype(np.float64)
    return rng.standard_normal((n, c))


# ---- fixtures ----------------------------------------------------------------
@pytest.fixture
def restore_threads():
    before = bx.get_num_threads()
    yield
    bx.set_num_threads(before)


@pytest.fixture
def restore_kernel():
    before = bx.get_kernel()
    yield
    bx.set_kernel(before)
