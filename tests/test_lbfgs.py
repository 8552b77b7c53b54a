"""Full-batch L-BFGS in the core: the objective (value and gradient, chunked)
against loss_and_gradients plus the L2 term and against finite differences,
and ``bx.fit_lbfgs``. Needs SciPy only (the estimators' solver='lbfgs' is in
test_sklearn_solvers.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import backpropx as bx
from backpropx import _core

pytest.importorskip("scipy")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((90, 6))
Y_CLASS = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
Y_COUNTS = RNG.poisson(np.exp(0.5 * X[:, 0] - 0.3 * X[:, 3])).astype(float)


def _net(dtype="float64", last="softmax", out=3):
    return bx.Network([bx.Dense(6, 8, activation="tanh"), bx.Dense(8, 5, activation="relu"),
                       bx.Dense(5, out, activation=last)], seed=1, dtype=dtype)


def _objective(net, y, loss, weights=None, l2=0.0, scale=1.0, chunk=0, labels=None):
    cls = getattr(_core, f"Objective_{net.dtype.name}")
    return cls(net._core, np.ascontiguousarray(X, dtype=net.dtype), y, labels, loss, weights, l2, scale, chunk)


# ---- the objective ---------------------------------------------------------------
@pytest.mark.parametrize("chunk", [0, 7, 90])
def test_objective_is_loss_plus_l2_and_its_gradient(chunk):
    net = _net()
    weights = RNG.random(90)
    w = RNG.standard_normal(net.num_params) * 0.5
    objective = _objective(net, None, "cross_entropy", weights, l2=0.3, scale=2.5, chunk=chunk,
                           labels=Y_CLASS.astype(np.int64))
    value, grad = objective(w)
    np.testing.assert_array_equal(np.array(net._core.flat_params()), w)  # left at w
    loss, grads = net.loss_and_gradients(X, Y_CLASS, sample_weight=weights)
    B = weights.sum()
    sq = sum(float(np.sum(p ** 2)) for name, p in net.named_parameters() if name.endswith("weight"))
    assert value == pytest.approx(2.5 * (loss + 0.5 * 0.3 * sq / B), rel=1e-13)
    for (name, p), (_, offset) in zip(net.named_parameters(), [(t[1], t[3]) for t in net._core.tensors()]):
        expected = grads[name] + (0.3 * p / B if name.endswith("weight") else 0)
        np.testing.assert_allclose(grad[offset:offset + p.size].reshape(p.shape), 2.5 * expected,
                                   rtol=0, atol=1e-13 * np.abs(expected).max())
    assert objective.evaluations == 1


def test_objective_matches_finite_differences():
    net = _net(last=None, out=1)
    objective = _objective(net, np.ascontiguousarray(Y_COUNTS[:, None]), "poisson", RNG.random(90), l2=0.1,
                           chunk=11)
    w = RNG.standard_normal(net.num_params) * 0.3
    _, grad = objective(w)
    numeric = np.empty_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = 1e-6
        numeric[i] = (objective(w + step)[0] - objective(w - step)[0]) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=0, atol=2e-7 * np.abs(grad).max())
    bad = grad.copy()
    bad[np.argmin(np.abs(bad))] += 1e-4 * np.abs(grad).max()  # the check can fail
    assert np.abs(bad - numeric).max() > 2e-7 * np.abs(grad).max()


def test_objective_rejects_bad_input():
    net = _net()
    labels = Y_CLASS.astype(np.int64)
    with pytest.raises(ValueError, match="expected a vector of"):
        _objective(net, None, "cross_entropy", labels=labels)(np.zeros(3))
    with pytest.raises(ValueError, match="sum to zero"):
        _objective(net, None, "cross_entropy", np.zeros(90), labels=labels)
    with pytest.raises(ValueError, match="scale must be a positive"):
        _objective(net, None, "cross_entropy", scale=0.0, labels=labels)


# ---- bx.fit_lbfgs ----------------------------------------------------------------
def test_fit_lbfgs_trains_and_reports():
    net = _net()
    seen = []
    result = bx.fit_lbfgs(net, X, Y_CLASS, l2=1e-3, max_iter=300, callback=lambda i, f: seen.append((i, f)))
    assert result.converged and result.status == 0 and "CONVERGENCE" in result.message
    assert result.n_iter == len(result.loss_curve) == len(seen) and result.n_fun >= result.n_iter
    assert [f for _, f in seen] == result.loss_curve and result.loss == result.loss_curve[-1]
    assert all(b <= a for a, b in zip(result.loss_curve, result.loss_curve[1:]))  # a descent method
    assert (net.predict(X).argmax(axis=1) == Y_CLASS).mean() > 0.95
    # the network holds the solution, whose objective is the one reported
    loss = net.loss_and_gradients(X, Y_CLASS)[0]
    sq = sum(float(np.sum(p ** 2)) for name, p in net.named_parameters() if name.endswith("weight"))
    assert loss + 0.5 * 1e-3 * sq / 90 == pytest.approx(result.loss, rel=1e-12)


def test_fit_lbfgs_limits_frozen_layers_and_float32():
    net = _net(dtype="float32")
    net.layers[0].trainable = False
    frozen = net.layers[0].weight.copy()
    result = bx.fit_lbfgs(net, X, Y_CLASS, max_iter=5)
    assert not result.converged and result.n_iter == 5 and "ITERATIONS" in result.message
    np.testing.assert_array_equal(net.layers[0].weight, frozen)
    assert bx.fit_lbfgs(_net(), X, Y_CLASS, max_fun=4).n_fun <= 5


def test_fit_lbfgs_errors_leave_the_network_unchanged():
    net = bx.Network([bx.Dense(6, 4), bx.Dense(4, 2)], seed=0, dtype="float64")
    before = net.state_dict()
    with pytest.raises(bx.NonFiniteError, match="keeps its initial weights"):
        bx.fit_lbfgs(net, np.full((4, 6), 1e200), np.zeros((4, 2)), loss="mse")
    with pytest.raises(ValueError, match="non-negative for poisson"):
        bx.fit_lbfgs(net, X, -np.ones((90, 2)), loss="poisson")
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        bx.fit_lbfgs(net, X, np.zeros((90, 2)), loss="mse", max_iter=0)
    with pytest.raises(ValueError, match="sums to zero"):
        bx.fit_lbfgs(net, X, np.zeros((90, 2)), loss="mse", sample_weight=np.zeros(90))
    for key, p in net.state_dict().items():
        np.testing.assert_array_equal(p, before[key])
