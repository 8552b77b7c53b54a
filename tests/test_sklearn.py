"""scikit-learn estimators (backpropx.sklearn).

- scikit-learn's own estimator checks, nothing marked as an expected failure;
- parity with sklearn.neural_network at equal settings: with shuffle=False
  and the same random_state, SGD runs make *the same updates* (parameters
  agree to rounding), which pins down the loss scaling, alpha, sample
  weights, multi-label and multi-output conventions; Adam agrees to the
  order of epsilon (torch's placement of eps);
- the attribute, partial_fit, warm_start, early stopping and pickling
  semantics, and use inside Pipeline, GridSearchCV and clone.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import backpropx as bx  # noqa: E402
from backpropx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Many fits below stop at max_iter on purpose; test_convergence_warning
# checks that the warning is emitted.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---- scikit-learn's estimator checks -------------------------------------------
# max_iter=100 (as scikit-learn's own suite uses for its MLPs) keeps the ~120
# checks at a few seconds; several checks fit random labels until max_iter,
# hence the ConvergenceWarning filter above (pytest runs with warnings as
# errors). Checks that skip here do so for the environment (pandas not
# installed, SCIPY_ARRAY_API unset) or because the method does not exist.
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- data --------------------------------------------------------------------
def _data():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 5)
    targets = {
        "multiclass": (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5),
        "binary": (X[:, 0] + X[:, 2] > 0).astype(int),
        "multilabel": np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 1].astype(int),
        "regression": X @ rng.randn(5),
        "multioutput": X @ rng.randn(5, 3),
    }
    sw = rng.randint(0, 4, 120).astype(float)
    return X, targets, sw


X, TARGETS, SW = _data()


def _pair(kind, **kw):
    if kind in ("regression", "multioutput"):
        return SkMLPRegressor(**kw), MLPRegressor(**kw)
    return SkMLPClassifier(**kw), MLPClassifier(**kw)


def _max_param_diff(a, b):
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


# ---- parity with scikit-learn ------------------------------------------------------
PARITY = dict(hidden_layer_sizes=(7, 4), activation="tanh", alpha=0.1, batch_size=32, shuffle=False,
              random_state=3, max_iter=15, learning_rate_init=0.01, tol=0.0)


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("weighted", [False, True])
def test_sgd_updates_match_sklearn(kind, weighted):
    """Same init, same batches, same updates: parameters agree to rounding after 15 epochs
    (a wrong loss scale, alpha or weight convention moves them by far more than 1e-9)."""
    sk, ours = _pair(kind, solver="sgd", **PARITY)
    sw = SW if weighted else None
    sk.fit(X, TARGETS[kind], sample_weight=sw)
    ours.fit(X, TARGETS[kind], sample_weight=sw)
    assert _max_param_diff(sk, ours) < 1e-9
    assert [c.shape for c in ours.coefs_] == [c.shape for c in sk.coefs_]
    assert ours.out_activation_ == sk.out_activation_
    assert (ours.n_layers_, ours.n_outputs_, ours.n_iter_, ours.t_) == (sk.n_layers_, sk.n_outputs_, sk.n_iter_, sk.t_)
    if not weighted and kind != "multioutput":
        np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-10)


def test_multioutput_loss_curve_is_the_applied_objective():
    """Documented deviation: for k regression outputs sklearn reports the mean over
    outputs but applies the gradient of the sum; loss_curve_ reports the latter."""
    kw = dict(PARITY, alpha=0.0)
    sk, ours = _pair("multioutput", solver="sgd", **kw)
    sk.fit(X, TARGETS["multioutput"])
    ours.fit(X, TARGETS["multioutput"])
    np.testing.assert_allclose(ours.loss_curve_, 3 * np.asarray(sk.loss_curve_), rtol=1e-10)


@pytest.mark.parametrize("kind", list(TARGETS))
def test_adam_matches_sklearn_to_the_order_of_eps(kind):
    sk, ours = _pair(kind, solver="adam", **PARITY)
    sk.fit(X, TARGETS[kind])
    ours.fit(X, TARGETS[kind])
    assert _max_param_diff(sk, ours) < 1e-3
    if kind != "multioutput":  # see test_multioutput_loss_curve_is_the_applied_objective
        assert abs(ours.loss_curve_[-1] - sk.loss_curve_[-1]) < 1e-4 * max(1.0, abs(sk.loss_curve_[-1]))


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_sgd_schedules_match_sklearn(schedule):
    """Without momentum both momentum forms agree, so the schedules must match exactly,
    including when 'adaptive' divides the rate (tol chosen so that it fires)."""
    kw = dict(PARITY, momentum=0.0, learning_rate=schedule, learning_rate_init=0.2, max_iter=40,
              tol=1e-2, n_iter_no_change=2)
    sk, ours = _pair("multiclass", solver="sgd", **kw)
    sk.fit(X, TARGETS["multiclass"])
    ours.fit(X, TARGETS["multiclass"])
    assert ours.n_iter_ == sk.n_iter_
    assert _max_param_diff(sk, ours) < 1e-9
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=1e-9)


def test_tol_stopping_matches_sklearn():
    kw = dict(PARITY, max_iter=300, tol=1e-3, n_iter_no_change=3)
    sk, ours = _pair("binary", solver="sgd", **kw)
    sk.fit(X, TARGETS["binary"])
    ours.fit(X, TARGETS["binary"])
    assert ours.n_iter_ == sk.n_iter_ < 300
    assert ours.best_loss_ == pytest.approx(sk.best_loss_, rel=1e-9)


def test_same_initial_weights_as_sklearn():
    for activation in ("relu", "logistic"):
        kw = dict(hidden_layer_sizes=(6,), activation=activation, random_state=7, max_iter=1,
                  learning_rate_init=1e-12, solver="sgd", momentum=0.0)
        sk, ours = _pair("multiclass", **kw)
        sk.fit(X, TARGETS["multiclass"])
        ours.fit(X, TARGETS["multiclass"])
        assert _max_param_diff(sk, ours) < 1e-10


# ---- attributes and methods -----------------------------------------------------------
def test_fitted_attributes_and_coefs_are_views():
    clf = MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=5, random_state=0).fit(X, TARGETS["multiclass"])
    assert [c.shape for c in clf.coefs_] == [(5, 8), (8, 6), (6, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (6,), (3,)]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 5 and list(clf.classes_) == [0, 1, 2]
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5 and clf.t_ == 5 * 120
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    # coefs_[0] is the transposed (out, in) weight of the first Dense layer, shared memory
    net = clf._network
    assert np.shares_memory(clf.coefs_[0], net.layers[0].weight)
    before = clf.predict_proba(X)
    clf.coefs_[-1][...] = 0.0
    clf.intercepts_[-1][...] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3)
    clf.coefs_ = [np.ones_like(c) for c in clf.coefs_]  # a new list is copied in at the next use
    assert np.all(clf.coefs_[1] == 1.0)
    assert not np.allclose(clf.predict_proba(X), before)
    assert np.shares_memory(clf.coefs_[1], net.layers[1].weight)  # views again
    clf.intercepts_[0] = np.full(8, 0.5)  # so is a replaced element (sklearn's users do this)
    clf.predict(X)
    np.testing.assert_array_equal(net.layers[0].bias, 0.5)
    clf.coefs_ = [np.ones((2, 2))]
    with pytest.raises(ValueError, match="same non-zero length"):
        clf.predict(X)
    clf.coefs_ = [np.ones((5, 8)), np.ones((8, 6)), np.ones((6, 4))]
    clf.intercepts_[-1] = np.ones(4)
    with pytest.raises(ValueError, match=r"do not match the fitted network's \[\(5, 8\), \(8, 6\), \(6, 3\)\]"):
        clf.predict(X)


def test_predict_proba_log_proba_score():
    clf = MLPClassifier(max_iter=50, random_state=0).fit(X, TARGETS["binary"])
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 2) and clf.coefs_[-1].shape == (100, 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    assert clf.score(X, TARGETS["binary"]) > 0.9


def test_string_labels():
    y = np.array(["cat", "dog", "emu"])[TARGETS["multiclass"]]
    clf = MLPClassifier(max_iter=100, random_state=0).fit(X, y)
    assert set(clf.predict(X)) <= {"cat", "dog", "emu"} and clf.score(X, y) > 0.8


def test_multilabel():
    y = TARGETS["multilabel"]
    clf = MLPClassifier(max_iter=200, random_state=0, learning_rate_init=0.01).fit(X, y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert clf.predict(X).shape == (120, 3) and set(np.unique(clf.predict(X))) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3) and ((proba >= 0) & (proba <= 1)).all()
    assert clf.score(X, y) > 0.8  # subset accuracy


def test_multioutput_regression():
    y = TARGETS["multioutput"]
    reg = MLPRegressor(max_iter=300, random_state=0, learning_rate_init=0.01).fit(X, y)
    assert reg.predict(X).shape == (120, 3) and reg.out_activation_ == "identity"
    assert reg.score(X, y) > 0.95
    single = MLPRegressor(max_iter=5, random_state=0).fit(X, TARGETS["regression"])
    assert single.predict(X).shape == (120,)


def test_zero_and_integer_weights_equal_removing_and_repeating():
    """Full batches (batch_size='auto' covers both sets): weighted and repeated fits agree."""
    sw = SW.astype(int)
    a = MLPRegressor(max_iter=30, random_state=0).fit(X, TARGETS["regression"], sample_weight=sw)
    b = MLPRegressor(max_iter=30, random_state=0).fit(np.repeat(X, sw, axis=0), np.repeat(TARGETS["regression"], sw))
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="non-zero"):
        MLPRegressor().fit(X, TARGETS["regression"], sample_weight=np.zeros(120))


def test_float32_is_kept():
    X32 = X.astype(np.float32)
    for dtype in (None, "float32"):
        clf = MLPClassifier(max_iter=5, random_state=0, dtype=dtype).fit(X32, TARGETS["multiclass"])
        assert clf._network.dtype == np.float32 and clf.coefs_[0].dtype == np.float32
        assert clf.predict_proba(X32).dtype == np.float32
    # float64 input, dtype='float32': converted once to float32, trained in float32
    clf = MLPClassifier(max_iter=5, random_state=0, dtype="float32").fit(X, TARGETS["multiclass"])
    assert clf.coefs_[0].dtype == np.float32
    # default: float64 input trains in float64 (scikit-learn's checks compare at 1e-7)
    assert MLPClassifier(max_iter=1).fit(X, TARGETS["binary"]).coefs_[0].dtype == np.float64


# ---- incremental training -----------------------------------------------------------
def test_partial_fit_equals_fit_epoch_by_epoch():
    y = TARGETS["multiclass"]
    full = MLPClassifier(max_iter=6, random_state=0, tol=0.0).fit(X, y)
    inc = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        inc.partial_fit(X, y)
    for _ in range(6):
        inc.partial_fit(X, y, classes=[0, 1, 2])
    assert inc.n_iter_ == 1 and inc.t_ == 6 * 120  # as sklearn: n_iter_ counts this call's epochs
    np.testing.assert_array_equal(inc.loss_curve_, full.loss_curve_)
    assert _max_param_diff(inc, full) == 0.0
    with pytest.raises(ValueError, match="not the same"):
        inc.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="features"):
        inc.partial_fit(X[:, :3], y)


def test_partial_fit_regressor_and_early_stopping_rejected():
    reg = MLPRegressor(random_state=0)
    for _ in range(3):
        reg.partial_fit(X, TARGETS["regression"])
    assert len(reg.loss_curve_) == 3 and reg.loss_curve_[2] < reg.loss_curve_[0]
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, TARGETS["regression"])


def test_warm_start_continues():
    y = TARGETS["regression"]
    reg = MLPRegressor(max_iter=10, random_state=0, warm_start=True).fit(X, y)
    first = list(reg.loss_curve_)
    reg.fit(X, y)
    assert len(reg.loss_curve_) == 20 and reg.loss_curve_[:10] == first and reg.n_iter_ == 10
    assert reg.loss_curve_[10] < first[0]  # continued from the trained weights
    cold = MLPRegressor(max_iter=10, random_state=0).fit(X, y)
    cold.fit(X, y)
    assert len(cold.loss_curve_) == 10


def test_warm_start_rejects_new_classes():
    clf = MLPClassifier(max_iter=2, warm_start=True).fit(X, TARGETS["multiclass"])
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, TARGETS["binary"])


def test_early_stopping_restores_best_weights():
    Xd, yd = bx.load_digits()
    Xd = Xd / 16.0
    clf = MLPClassifier(early_stopping=True, random_state=0, max_iter=200, n_iter_no_change=3,
                        hidden_layer_sizes=(32,), learning_rate_init=0.01).fit(Xd, yd)
    assert clf.n_iter_ < 200 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    assert clf.best_loss_ is None
    # The restored weights are those of the best epoch: rerunning only that many
    # epochs (same seed, same split, same batches) gives the same parameters.
    best = int(np.argmax(clf.validation_scores_)) + 1
    again = clone(clf).set_params(early_stopping=True, max_iter=best, n_iter_no_change=1000).fit(Xd, yd)
    assert _max_param_diff(clf, again) == 0.0


def test_convergence_warning_and_verbose(capsys):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPRegressor(max_iter=2, verbose=True).fit(X, TARGETS["regression"])
    assert "Iteration 2, loss = " in capsys.readouterr().out


def test_dropout_and_threads(restore_threads):
    bx.set_num_threads(1)
    clf = MLPClassifier(hidden_layer_sizes=(16, 16), dropout=0.3, max_iter=30, random_state=0,
                        n_threads=2).fit(X, TARGETS["multiclass"])
    assert bx.get_num_threads() == 1  # n_threads applies during the call only
    assert sum(isinstance(layer, bx.Dropout) for layer in clf._network.layers) == 2
    assert [c.shape for c in clf.coefs_] == [(5, 16), (16, 16), (16, 3)]
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))  # no dropout in predict
    again = clone(clf).fit(X, TARGETS["multiclass"])
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("params, error", [
    (dict(solver="newton"), "solver"),
    (dict(loss="huber"), "'loss' parameter"),
    (dict(max_fun=0), "max_fun"),
    (dict(solver="lbfgs", dropout=0.2), "dropout needs a stochastic solver"),
    (dict(activation="softmax"), "activation"),
    (dict(hidden_layer_sizes=(10, 0)), "> 0"),
    (dict(batch_size=0), "batch_size"),
    (dict(learning_rate="optimal"), "learning_rate"),
    (dict(dropout=1.0), "dropout"),
    (dict(momentum=1.5), "momentum"),
])
def test_invalid_parameters(params, error):
    with pytest.raises(ValueError, match=error):
        MLPRegressor(**params).fit(X, TARGETS["regression"])


# ---- pickling, clone, Pipeline, GridSearchCV ----------------------------------------------
def test_pickle_and_deepcopy_round_trip():
    clf = MLPClassifier(max_iter=20, random_state=0, hidden_layer_sizes=(9,), dropout=0.1).fit(X, TARGETS["multiclass"])
    before = clf.predict_proba(X)
    for restored in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        np.testing.assert_array_equal(restored.predict_proba(X), before)
        assert restored.loss_curve_ == clf.loss_curve_ and list(restored.classes_) == [0, 1, 2]
        assert not np.shares_memory(restored.coefs_[0], clf.coefs_[0])
        restored.partial_fit(X, TARGETS["multiclass"])  # continues (with a fresh optimizer state)
    np.testing.assert_array_equal(clf.predict_proba(X), before)  # pickling left the original intact


def test_clone():
    clf = MLPClassifier(hidden_layer_sizes=(5,), alpha=0.5, dtype="float32", n_threads=1, max_iter=3).fit(
        X, TARGETS["binary"])
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params()
    assert not hasattr(fresh, "coefs_") and not hasattr(fresh, "n_iter_")


def test_pipeline_and_grid_search():
    Xd, yd = bx.load_digits()
    Xtr, Xte, ytr, yte = bx.train_test_split(Xd, yd, seed=0)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1.0], "mlpclassifier__hidden_layer_sizes": [(16,), (32,)]}
    search = GridSearchCV(pipe, grid, cv=3)
    search.fit(Xtr, ytr)
    assert set(search.best_params_) == {"mlpclassifier__alpha", "mlpclassifier__hidden_layer_sizes"}
    assert search.score(Xte, yte) > 0.93
    reg = make_pipeline(StandardScaler(), MLPRegressor(max_iter=200, random_state=0, learning_rate_init=0.01))
    reg.fit(X, TARGETS["regression"])
    assert reg.score(X, TARGETS["regression"]) > 0.95


def test_digits_accuracy_with_defaults():
    Xd, yd = bx.load_digits()
    Xtr, Xte, ytr, yte = bx.train_test_split(Xd / 16.0, yd, seed=0)
    clf = MLPClassifier(random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.96


def test_importing_backpropx_does_not_import_sklearn():
    code = "import sys, backpropx; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
