"""Full-batch L-BFGS: the core's objective (value and gradient, chunked) against
loss_and_gradients plus the L2 term and against finite differences;
``bx.fit_lbfgs``; and the estimators' solver='lbfgs' against scikit-learn's,
which runs the same SciPy optimizer from the same initial weights, so the
two trajectories agree to rounding (same iteration counts, same losses).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backpropx as bx
from backpropx import _core

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402

from backpropx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((90, 6))
Y_CLASS = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
Y_BINARY = (X[:, 0] + X[:, 2] > 0).astype(int)
Y_REG = X[:, 0] - 2 * X[:, 1] ** 2 + 0.1 * RNG.standard_normal(90)
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


# ---- the estimators against scikit-learn -------------------------------------------
CASES = {
    "multiclass": (MLPClassifier, SkMLPClassifier, Y_CLASS, {}),
    "binary": (MLPClassifier, SkMLPClassifier, Y_BINARY, {"activation": "logistic"}),
    "regression": (MLPRegressor, SkMLPRegressor, Y_REG, {"activation": "tanh"}),
    "poisson": (MLPRegressor, SkMLPRegressor, Y_COUNTS, {"loss": "poisson", "alpha": 1e-2}),
}


@pytest.mark.parametrize("case", CASES)
def test_lbfgs_follows_sklearns_trajectory(case):
    ours_cls, sk_cls, y, params = CASES[case]
    kw = dict(solver="lbfgs", hidden_layer_sizes=(7,), max_iter=40, random_state=3, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, sk = ours_cls(**kw).fit(X, y), sk_cls(**kw).fit(X, y)
    assert ours.n_iter_ == sk.n_iter_ and ours.loss_ == pytest.approx(sk.loss_, rel=1e-8)
    out = "predict_proba" if hasattr(sk, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(ours, out)(X), getattr(sk, out)(X), rtol=1e-6, atol=1e-8)
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.loss_curve_[-1] == ours.loss_
    assert ours.best_loss_ == min(ours.loss_curve_)


def test_lbfgs_convergence_warning_is_sklearns():
    kw = dict(solver="lbfgs", hidden_layer_sizes=(7,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning) as ours:
        MLPClassifier(**kw).fit(X, Y_CLASS)
    with pytest.warns(ConvergenceWarning) as theirs:
        SkMLPClassifier(**kw).fit(X, Y_CLASS)
    assert str(ours[0].message) == str(theirs[0].message)
    assert "max_iter=3" in str(ours[0].message)


def test_lbfgs_warm_start_verbose_and_no_partial_fit(capsys):
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(7,), max_iter=4, warm_start=True, random_state=0,
                        verbose=True)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, Y_CLASS)
    first = clf.loss_
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, Y_CLASS)  # continues from the current weights
    assert clf.loss_ < first and clf.n_iter_ == 4 and len(clf.loss_curve_) == 8
    assert "Iteration 4, loss = " in capsys.readouterr().out
    for est in (MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs")):
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
            est.partial_fit
        assert "only available for stochastic optimizers. lbfgs is not stochastic" in str(info.value.__cause__)
    assert hasattr(MLPRegressor(solver="sgd"), "partial_fit")


# ---- poisson, sparse, divergence, sklearn-style parameter setting ------------------------
def test_poisson_sgd_makes_sklearns_updates():
    kw = dict(loss="poisson", solver="sgd", hidden_layer_sizes=(5,), shuffle=False, max_iter=8, random_state=2,
              learning_rate_init=0.01, momentum=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, sk = MLPRegressor(**kw).fit(X, Y_COUNTS), SkMLPRegressor(**kw).fit(X, Y_COUNTS)
    assert ours.out_activation_ == sk.out_activation_ == "exp"
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), sk.predict(X), rtol=1e-10)
    assert (ours.predict(X) > 0).all()
    with pytest.raises(ValueError, match="non-negative for poisson"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, -Y_COUNTS)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_sparse_fit_equals_dense_fit(solver):
    sparse = pytest.importorskip("scipy.sparse")
    Xs = sparse.random(90, 40, density=0.1, format="csr", random_state=0)
    kw = dict(solver=solver, hidden_layer_sizes=(6,), max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**kw).fit(Xs, Y_CLASS)
        b = MLPClassifier(**kw).fit(Xs.toarray(), Y_CLASS)
        c = MLPClassifier(**kw).fit(Xs.tocsc(), Y_CLASS)
    np.testing.assert_allclose(a.predict_proba(Xs), b.predict_proba(Xs.toarray()), atol=1e-9)
    np.testing.assert_array_equal(a.predict_proba(Xs), c.predict_proba(Xs.tocsc()))


def test_diverging_fit_with_early_stopping_records_nan_and_restores_the_best():
    reg = MLPRegressor(hidden_layer_sizes=(20,), activation="identity", solver="sgd", learning_rate_init=1.0,
                       max_iter=20, early_stopping=True, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        reg.fit(X * 50, Y_REG)
    assert np.isnan(reg.validation_scores_[-1]) and np.isnan(reg.loss_curve_[-1])
    assert len(reg.validation_scores_) == len(reg.loss_curve_) == reg.n_iter_
    assert np.isfinite(reg.predict(X)).all()  # the best weights (here: the initial ones) are back
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        reg.set_params(early_stopping=False).fit(X * 50, Y_REG)


def test_parameters_set_by_hand_are_used_as_sklearn_does():
    """scikit-learn's own test_fit sets coefs_ and friends on an unfitted estimator
    and continues with partial_fit; the network is built from them."""
    clf = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic", momentum=0,
                        hidden_layer_sizes=2, random_state=1)
    clf.coefs_ = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    clf.intercepts_ = [np.array([0.1, 0.1]), np.array([1.0])]
    clf.n_outputs_, clf.n_features_in_, clf.n_layers_, clf.out_activation_ = 1, 3, 3, "logistic"
    clf.n_iter_, clf.t_, clf.best_loss_, clf.loss_curve_, clf._no_improvement_count = 0, 0, np.inf, [], 0
    clf.partial_fit(np.array([[0.6, 0.8, 0.7]]), np.array([0]), classes=[0, 1])
    # what scikit-learn 1.9 computes from the same state (its worked example, to more digits)
    np.testing.assert_allclose(clf.coefs_[1].ravel(), [0.04701213, 0.15402918], atol=1e-8)
    np.testing.assert_allclose(clf.intercepts_[1], [0.9234548], atol=1e-7)
    assert np.shares_memory(clf.coefs_[0], clf._network.layers[0].weight)
    unfitted = MLPClassifier()
    unfitted.coefs_, unfitted.intercepts_ = [np.ones((2, 2))], [np.ones(2)]
    with pytest.raises(AttributeError, match="set out_activation_"):
        unfitted._sync_params()
