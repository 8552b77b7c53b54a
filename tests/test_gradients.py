"""Forward pass, loss and every gradient of random networks against the
NumPy reference, backprop against central finite differences, arbitrary
upstream gradients, and tests showing that these comparisons do fail on a
wrong gradient.

How to add an activation or a loss here: add its name to ``ELEMENTWISE`` /
``LOSSES`` in conftest.py (and to the reference); the parametrisations below
iterate those lists.

Tolerances (all are ``rel_err``: max abs difference over the max magnitude
of the whole tensor, see conftest.py):

- float64 vs the float64 reference: ``TOL64 = 1e-10``. Both sides round
  each operation to 2^-53 ~ 1.1e-16; the longest chain here is a forward dot
  product of <= 20 terms per layer over <= 4 layers, the same backward, and
  a batch sum of <= 32 rows, so the accumulated rounding is ~200 u ~ 2e-14.
  1e-10 leaves a wide margin and still rejects any error in the math.
- float32 vs the float64 reference evaluated on the same (float32) weights
  and inputs: ``TOL32 = 1e-4``. The float32 core rounds to u = 2^-24 ~ 6e-8
  per operation; the same ~200-operation chain gives K u ~ 1.2e-5, and
  float32 exp/erf/tanh in the core add a few ulp per activation. Measured
  worst case over 30 seeds of every combination below: 6e-6 (float64:
  1.3e-14). A wrong rule (a missing factor, a wrong kink, a transposed
  product) gives errors of order 1e-2..1.
- backprop vs central differences (float64, step 1e-5): ``TOL_FD = 2e-6``.
  Truncation O(h^2 f''') ~ 1e-10 and rounding O(ulp(L)/h) ~ 1e-11 absolute;
  relative to a tensor whose gradients are ~1e-4 (deep softmax nets) that
  is up to ~3e-7 (measured). Relu-like kinks are not crossed for these
  seeds (|z| >> h).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    ALL_ACTIVATIONS,
    ELEMENTWISE,
    assert_close,
    assert_grads_close,
    build,
    randomize,
    random_specs,
    random_targets,
    ref,
    ref_layers,
    rel_err,
)

import backpropx as bx

TOL64 = 1e-10
TOL32 = 1e-4
TOL_FD = 2e-6
FD_EPS = 1e-5

# (loss, target kind, last activation). cross_entropy takes the output as
# logits, except that a softmax last layer is fused (its z are the logits);
# binary_cross_entropy needs probabilities (sigmoid); poisson takes the output
# as a log-rate (any activation); mse takes any output.
COMBOS = (
    [("mse", "values", act) for act in ALL_ACTIVATIONS]
    + [("cross_entropy", "labels", act) for act in ALL_ACTIVATIONS]
    + [("cross_entropy", "probs", act) for act in ALL_ACTIVATIONS]
    + [("binary_cross_entropy", "values", "sigmoid")]
    + [("poisson", "values", act) for act in ("identity", "tanh", "sigmoid")]
)
SEEDS = range(6)


def _case(seed: int, loss: str, kind: str, last: str, *, max_width: int = 20, depth: int | None = None,
          dtype: str = "float64"):
    """A random network (bx and reference), data X and targets y."""
    rng = np.random.default_rng([seed, len(loss), len(kind), ALL_ACTIVATIONS.index(last)])
    if depth is None:  # 1..4, varying with the seed and the combination
        depth = 1 + (seed + len(loss) + len(kind) + ALL_ACTIVATIONS.index(last)) % 4
    n_out = int(rng.integers(2, max_width + 1)) if loss == "cross_entropy" or last == "softmax" else None
    specs = random_specs(rng, depth, last=last, max_width=max_width, n_out=n_out)
    net = build(specs, seed=seed, dtype=dtype)
    randomize(net, rng)
    n = int(rng.integers(1, 33))
    X = rng.standard_normal((n, specs[0]["in"])).astype(dtype)
    y = random_targets(rng, loss, n, specs[-1]["out"], labels=kind == "labels")
    return net, X, y


# ---- forward, loss, gradients vs the reference --------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("loss,kind,last", COMBOS, ids=[f"{a}-{b}-{c}" for a, b, c in COMBOS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_reference(dtype, loss, kind, last, seed):
    net, X, y = _case(seed, loss, kind, last, dtype=dtype)
    tol = TOL64 if dtype == "float64" else TOL32
    # The reference runs in float64 on the network's own (possibly float32)
    # weights and inputs, so the float32 error measured is the core's alone.
    layers = ref_layers(net, np.float64)
    X64 = X.astype(np.float64)

    out = net.predict(X)
    assert out.dtype == np.dtype(dtype) and out.shape == (X.shape[0], net.out_features)
    assert_close(out, ref.network_forward(layers, X64)[-1][0], tol, "predict")

    before = net.state_dict()
    value, grads = net.loss_and_gradients(X, y, loss=loss)
    ref_value, ref_grads = ref.loss_and_gradients(layers, X64, y, loss)
    assert isinstance(value, float)
    assert_close(value, ref_value, tol, "loss")
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())
    assert_grads_close(grads, ref_grads, tol)
    # computing gradients changes no parameter
    for key, p in net.state_dict().items():
        np.testing.assert_array_equal(p, before[key])


@pytest.mark.parametrize("hidden", ELEMENTWISE)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_hidden_activation(hidden, dtype):
    """Each activation in every hidden layer of a 3-layer net (mse, identity out)."""
    rng = np.random.default_rng(ELEMENTWISE.index(hidden))
    specs = random_specs(rng, 3, last="identity", hidden=(hidden,), max_width=12)
    net = build(specs, seed=1, dtype=dtype)
    randomize(net, rng, scale=1.5)
    X = rng.standard_normal((9, specs[0]["in"])).astype(dtype)
    y = rng.standard_normal((9, specs[-1]["out"]))
    tol = TOL64 if dtype == "float64" else TOL32
    layers = ref_layers(net)
    value, grads = net.loss_and_gradients(X, y, loss="mse")
    ref_value, ref_grads = ref.loss_and_gradients(layers, X.astype(np.float64), y, "mse")
    assert_close(value, ref_value, tol, "loss")
    assert_grads_close(grads, ref_grads, tol)


def test_gradients_are_fresh_each_call():
    """A second call returns the same gradients (no accumulation across calls)."""
    net, X, y = _case(0, "mse", "values", "tanh", depth=2)
    g1 = net.loss_and_gradients(X, y, loss="mse")[1]
    g2 = net.loss_and_gradients(X, y, loss="mse")[1]
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])


# ---- backprop vs central differences ------------------------------------------
FD_COMBOS = [("mse", "values", a) for a in ("identity", "tanh", "softmax", "gelu")] + [
    ("cross_entropy", "labels", "softmax"), ("cross_entropy", "probs", "identity"),
    ("cross_entropy", "labels", "sigmoid"), ("cross_entropy", "probs", "tanh"),
    ("binary_cross_entropy", "values", "sigmoid"), ("poisson", "values", "identity"),
    ("poisson", "values", "tanh")]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("loss,kind,last", FD_COMBOS, ids=[f"{a}-{b}-{c}" for a, b, c in FD_COMBOS])
def test_backprop_matches_finite_differences(loss, kind, last, depth):
    net, X, y = _case(depth, loss, kind, last, max_width=6, depth=depth)
    _, grads = net.loss_and_gradients(X, y, loss=loss)
    before = net.state_dict()
    params = dict(net.named_parameters())  # writable views of the C++ buffer
    numeric = ref.central_difference_gradients(lambda: net.loss_and_gradients(X, y, loss=loss)[0], params,
                                               eps=FD_EPS)
    assert_grads_close(grads, numeric, TOL_FD, "backprop vs finite differences")
    # every element was restored to its exact bits
    for key, p in net.state_dict().items():
        np.testing.assert_array_equal(p, before[key])


# ---- arbitrary upstream gradients -------------------------------------------
@pytest.mark.parametrize("last", ELEMENTWISE + ("softmax",))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_upstream_gradient(last, seed):
    """Backprop of an arbitrary dL/dout, not one shaped by a loss.

    With mse, dL/dout = 2 (out - t) / (N C). Choosing t = out - dout N C / 2
    makes dL/dout = dout for any array dout we like, whatever the last
    activation; the reference's ``forward_with_upstream_gradients`` backprops
    that dout directly. Every layer is non-square (OUT != IN), so a gradient
    computed as (IN, OUT), or as x^T dz reshaped, cannot pass, and a random
    dout catches any mixing of rows (samples) with columns (features).
    """
    rng = np.random.default_rng([seed, ALL_ACTIVATIONS.index(last)])
    widths = [7, 5, 9, 3] if seed == 0 else [4, 11, 6]
    hidden = ("tanh", "elu", "gelu")
    specs = [{"in": widths[k], "out": widths[k + 1], "bias": k != 1,
              "activation": last if k == len(widths) - 2 else hidden[k % 3]} for k in range(len(widths) - 1)]
    net = build(specs, seed=seed)
    randomize(net, rng)
    n = 6
    X = rng.standard_normal((n, widths[0]))
    dout = rng.standard_normal((n, widths[-1]))
    out = net.predict(X)
    c = widths[-1]
    target = out - dout * (n * c / 2)
    _, grads = net.loss_and_gradients(X, target, loss="mse")
    expected = ref.forward_with_upstream_gradients(ref_layers(net), X, dout)
    assert_grads_close(grads, expected, TOL64, "upstream")


# ---- the comparisons can fail -----------------------------------------------
def _mse_case():
    net, X, y = _case(2, "mse", "values", "tanh", depth=3)
    _, grads = net.loss_and_gradients(X, y, loss="mse")
    return net, X, y, grads, ref.loss_and_gradients(ref_layers(net), X, y, "mse")[1]


def test_rel_err_rejects_full_error():
    a = np.array([1.0, 1e-9, -3.0])
    assert rel_err(a, 2 * a) >= 1 / 3
    assert rel_err(a, np.zeros_like(a)) == 1.0
    assert rel_err(a, -a) == 2.0
    assert rel_err(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_err([np.nan], [np.nan]) == float("inf")
    with pytest.raises(AssertionError, match="shape"):
        rel_err(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(AssertionError):
        assert_close(a, a, 1.0)  # a tolerance that cannot fail is refused


@pytest.mark.parametrize("tol", [TOL64, TOL32, TOL_FD])
def test_corrupted_element_is_rejected(tol):
    net, X, y, grads, expected = _mse_case()
    assert_grads_close(grads, expected, TOL64)
    for key in grads:
        bad = {k: v.copy() for k, v in grads.items()}
        flat = bad[key].reshape(-1)
        i = int(np.argmin(np.abs(flat)))  # the smallest element: hardest to notice
        flat[i] += 10 * tol * np.max(np.abs(expected[key]))
        with pytest.raises(AssertionError, match="exceeds"):
            assert_grads_close(bad, expected, tol)


def test_transposed_gradient_is_rejected():
    net, X, y, grads, expected = _mse_case()
    for key, g in grads.items():
        if g.ndim == 2:
            bad = dict(grads, **{key: g.T.copy()})
            with pytest.raises(AssertionError):
                assert_grads_close(bad, expected, TOL32)
    # A square layer: the shapes agree, the values must not.
    net = build([{"in": 5, "out": 5, "activation": "tanh", "bias": True}], seed=3)
    rng = np.random.default_rng(3)
    randomize(net, rng)
    X, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 5))
    _, grads = net.loss_and_gradients(X, y, loss="mse")
    expected = ref.loss_and_gradients(ref_layers(net), X, y, "mse")[1]
    assert_grads_close(grads, expected, TOL64)
    with pytest.raises(AssertionError, match="exceeds"):
        assert_grads_close(dict(grads, **{"0.weight": grads["0.weight"].T}), expected, TOL32)


def test_missing_or_extra_gradient_is_rejected():
    net, X, y, grads, expected = _mse_case()
    with pytest.raises(AssertionError, match="keys"):
        assert_grads_close({k: v for k, v in grads.items() if k != "0.weight"}, expected, TOL64)
    with pytest.raises(AssertionError, match="keys"):
        assert_grads_close(dict(grads, **{"9.bias": np.zeros(1)}), expected, TOL64)


def _kink_case(activation):
    """Two relu-like units whose pre-activation is exactly 0 for some rows:
    x = (1, 1) and weight row (0.5, -0.5) give z = 0.5 - 0.5 = 0 exactly."""
    net = bx.Network([bx.Dense(2, 3, activation=activation), bx.Dense(3, 2)], seed=0, dtype="float64")
    net.layers[0].weight[...] = [[0.5, -0.5], [0.25, -0.25], [1.0, 0.5]]
    net.layers[0].bias[...] = 0.0
    net.layers[1].weight[...] = [[1.0, -2.0, 0.5], [0.3, 0.7, -1.1]]
    net.layers[1].bias[...] = [0.1, -0.2]
    X = np.array([[1.0, 1.0], [2.0, 2.0], [1.0, -1.0], [-3.0, 0.5]])
    y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 2.0]])
    return net, X, y


@pytest.mark.parametrize("activation,wrong_slope", [("relu", 1.0), ("leaky_relu", 1.0)])
def test_wrong_derivative_at_zero_is_rejected(activation, wrong_slope, monkeypatch):
    """relu'(0) = 0 and leaky_relu'(0) = 0.01 as torch: the core agrees with
    the reference, and a reference with the other convention (slope 1 at 0)
    is rejected by the same comparison."""
    net, X, y = _kink_case(activation)
    layers = ref_layers(net)
    z = X @ layers[0]["weight"].T
    assert (z == 0).sum() >= 4  # the kink is really hit
    _, grads = net.loss_and_gradients(X, y, loss="mse")
    assert_grads_close(grads, ref.loss_and_gradients(layers, X, y, "mse")[1], TOL64)

    f, df = ref.activations.ACTIVATIONS[activation]
    monkeypatch.setitem(ref.activations.ACTIVATIONS, activation,
                        (f, lambda z: np.where(z == 0, wrong_slope, df(z))))
    wrong = ref.loss_and_gradients(layers, X, y, "mse")[1]
    with pytest.raises(AssertionError, match="exceeds"):
        assert_grads_close(grads, wrong, TOL32)


def test_finite_differences_reject_a_wrong_gradient():
    net, X, y = _case(1, "mse", "values", "tanh", max_width=5, depth=2)
    _, grads = net.loss_and_gradients(X, y, loss="mse")
    numeric = ref.central_difference_gradients(lambda: net.loss_and_gradients(X, y, loss="mse")[0],
                                               dict(net.named_parameters()), eps=FD_EPS)
    assert_grads_close(grads, numeric, TOL_FD)
    halved = dict(grads, **{"1.weight": grads["1.weight"] * 0.999})
    with pytest.raises(AssertionError, match="exceeds"):
        assert_grads_close(halved, numeric, TOL_FD)
