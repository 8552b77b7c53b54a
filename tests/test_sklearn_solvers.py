"""The estimators' solvers and losses beyond scikit-learn's check_estimator:
solver='lbfgs' against scikit-learn's (the same SciPy optimizer from the same
initial weights, so the two trajectories agree to rounding: same iteration
counts, same losses), loss='poisson', sparse X, a diverging fit under early
stopping, and parameters set by hand as scikit-learn's own test_fit does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
