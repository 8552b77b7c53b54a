"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` on the backpropx core.

Drop-in counterparts of ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor``: the same parameter names, defaults and meanings, the same
solvers ('adam', 'sgd', 'lbfgs'), losses (``MLPRegressor(loss="poisson")``),
fitted attributes, stopping rules (``tol`` / ``n_iter_no_change`` on the
training loss or, with ``early_stopping``, on the validation score; for
'lbfgs' ``max_iter``, ``max_fun`` and ``tol`` as SciPy's L-BFGS-B reads
them), the same sparse input (CSR/CSC ``X`` is never densified) and the same
initialisation (with an integer ``random_state`` the initial weights are
exactly scikit-learn's). scikit-learn's own test suite for its MLP runs
against these classes in CI. Each epoch runs in C++ (``backpropx.Trainer``);
'lbfgs' runs SciPy's L-BFGS-B, as scikit-learn does, over the core's
full-batch objective (``backpropx.lbfgs``).

This module needs scikit-learn (``pip install scikit-learn``, or from a checkout ``pip install ".[sklearn]"``);
``import backpropx`` never imports it.

Objective. Updates follow scikit-learn's gradients exactly: the data term
is sklearn's loss (softmax cross-entropy; sigmoid binary cross-entropy
summed over outputs; for regression ``0.5 * mean over samples of the sum
over outputs`` of squared errors, or the half Poisson deviance of
``exp(output)`` summed over outputs), plus ``0.5 * alpha * ||W||^2 / B`` (B:
the batch's sample-weight sum, biases excluded). The core's losses are
means over all elements, so the estimator rescales ``alpha``, the SGD
learning rate and Adam's ``epsilon`` by the constant ratio between the two
(updates are then identical) and reports ``loss_``, ``loss_curve_`` and the
objective L-BFGS sees in sklearn's units.

Deviations from scikit-learn (also listed in the README):

- Shuffling and dropout masks come from the core's generator (xoshiro256**,
  seeded from ``random_state``), not from NumPy: with ``shuffle=True`` the
  batches differ from sklearn's, results are equally deterministic.
- Adam adds ``epsilon`` as torch does (``sqrt(v_hat) + eps``) where sklearn
  adds ``eps * sqrt(1 - beta_2**t)`` less; the difference is of order eps.
- SGD momentum is torch's form (``b = mu*b + g; p -= lr*b``); it equals
  sklearn's velocity form while the learning rate is constant. After an
  'adaptive' division or an 'invscaling' change the stored momentum is
  rescaled by the new rate instead of keeping the old one.
- For multi-output regression, ``loss_curve_`` holds the objective whose
  gradient is applied (``0.5 * mean_samples sum_outputs``); sklearn reports
  the mean over outputs there while applying the gradient of the sum.
- ``loss_curve_`` averages batch losses weighted by each batch's
  sample-weight sum (sklearn weights them by batch size).
- A fit whose loss or weights become non-finite raises ValueError at once
  (sklearn: at the end of fit). With ``early_stopping=True`` it instead
  records a NaN validation score, warns (ConvergenceWarning) and stops,
  restoring the best weights; sklearn keeps iterating on NaN weights until
  ``max_iter`` and then restores the same best weights.
- 'lbfgs' also fills ``loss_curve_`` (the objective after each iteration)
  and ``best_loss_``; sklearn sets neither for it. With ``verbose`` it
  prints one line per iteration.
- ``partial_fit`` does not exist for 'lbfgs' on either estimator (sklearn's
  ``MLPRegressor`` keeps it and runs a whole L-BFGS fit).
- ``loss="poisson"`` requires ``y >= 0`` (ValueError); sklearn computes a
  NaN loss for negative targets. Its predictions that overflow
  (``exp(output)`` beyond the float range) raise NonFiniteError.
- Pickling keeps the weights and fitted attributes, not the optimizer state:
  ``partial_fit`` after unpickling starts a fresh optimizer.
- ``coefs_`` / ``intercepts_`` are lists of views of the network's memory:
  writing into an array changes the model at once; a list element or a
  whole list that you replace (as sklearn allows) is copied into the
  network the next time the estimator uses it.
- Estimators have no ``_optimizer``, ``_coef_grads`` or ``_loss_grad_lbfgs``
  (sklearn's private attributes).

Extra parameters: ``dropout`` (inverted dropout after every hidden layer,
training only; not with 'lbfgs', whose objective must be deterministic),
``dtype`` (None: float32 input trains in float32 and anything else in
float64, as sklearn's MLP; or force 'float32' / 'float64'; float32 input is
never upcast when the model is float32) and ``n_threads`` (threads of the
C++ core during fit and predict; None leaves the global setting).
"""

from __future__ import annotations

import numbers
import os
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from . import _core
from ._arrays import as_features, as_sample_weight, as_targets, resolve_dtype
from .layers import Dense, Dropout, layer_from_config
from .lbfgs import minimize_arrays
from .network import Network
from .optimizers import SGD, Adam
from .runtime import get_num_threads, set_num_threads
from .trainer import Trainer

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names -> the core's.
_ACTIVATIONS = {"identity": None, "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# sklearn's out_activation_ -> the last layer's. 'exp' (poisson) is applied by predict: the
# network outputs the log-rate the core's poisson loss takes.
_OUT_ACTIVATIONS = {"identity": None, "softmax": "softmax", "logistic": "sigmoid", "exp": None}
_SOLVERS = ("lbfgs", "sgd", "adam")
_STOCHASTIC = ("sgd", "adam")
_REGRESSION_LOSSES = ("squared_error", "poisson")
# Sparse formats read without conversion to dense (CSC becomes CSR in the core's input step).
_SPARSE = ["csr", "csc"]
_SCHEDULES = ("constant", "invscaling", "adaptive")


@contextmanager
def _num_threads(n: int | None):
    """Run the block with the core on `n` threads (None: unchanged), then restore."""
    if n is None:
        yield
        return
    before = get_num_threads()
    set_num_threads((os.cpu_count() or 1) if n == -1 else n)
    try:
        yield
    finally:
        set_num_threads(before)


def _check_number(value: Any, name: str, kind: type, low: float | None, high: float | None = None,
                  low_open: bool = False, high_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if kind is numbers.Integral else "a real number"
        raise TypeError(f"The '{name}' parameter must be {what}, got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high or not np.isfinite(float(value)):
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"The '{name}' parameter must be in the range {interval}, got {value!r}")


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The '{name}' parameter must be True or False, got {value!r}")


class _BaseMLP(BaseEstimator):
    """Shared parameters, training loop and state of the two estimators."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0,
                 dtype=None, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype
        self.n_threads = n_threads

    # ---- parameters ---------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) or not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise TypeError(f"hidden_layer_sizes must hold integers, got {self.hidden_layer_sizes!r}")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        """Validate every hyper-parameter (at fit, as scikit-learn does; never in __init__)."""
        self._hidden_sizes()
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"The 'activation' parameter must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"The 'solver' parameter must be one of {list(_SOLVERS)}, got {self.solver!r}")
        if self.learning_rate not in _SCHEDULES:
            raise ValueError(f"The 'learning_rate' parameter must be one of {list(_SCHEDULES)}, "
                             f"got {self.learning_rate!r}")
        if self.batch_size != "auto":
            _check_number(self.batch_size, "batch_size", numbers.Integral, 1)
        _check_number(self.alpha, "alpha", numbers.Real, 0)
        _check_number(self.learning_rate_init, "learning_rate_init", numbers.Real, 0, low_open=True)
        _check_number(self.power_t, "power_t", numbers.Real, 0)
        _check_number(self.max_iter, "max_iter", numbers.Integral, 1)
        _check_number(self.tol, "tol", numbers.Real, 0)
        _check_number(self.momentum, "momentum", numbers.Real, 0, 1)
        _check_number(self.validation_fraction, "validation_fraction", numbers.Real, 0, 1, high_open=True)
        _check_number(self.beta_1, "beta_1", numbers.Real, 0, 1, high_open=True)
        _check_number(self.beta_2, "beta_2", numbers.Real, 0, 1, high_open=True)
        _check_number(self.epsilon, "epsilon", numbers.Real, 0, low_open=True)
        if not (isinstance(self.n_iter_no_change, float) and self.n_iter_no_change == np.inf):
            _check_number(self.n_iter_no_change, "n_iter_no_change", numbers.Integral, 1)
        _check_number(self.max_fun, "max_fun", numbers.Integral, 1)
        _check_number(self.dropout, "dropout", numbers.Real, 0, 1, high_open=True)
        if self.dropout > 0 and self.solver == "lbfgs":
            raise ValueError("dropout needs a stochastic solver ('adam' or 'sgd'): L-BFGS's line search "
                             "needs a deterministic objective")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check_bool(getattr(self, name), name)
        _check_number(int(self.verbose), "verbose", numbers.Integral, 0)
        if self.dtype is not None:
            resolve_dtype(self.dtype)
        if self.n_threads is not None and self.n_threads != -1:
            _check_number(self.n_threads, "n_threads", numbers.Integral, 1)

    # ---- the network ----------------------------------------------------------
    def _make_network(self, units: list[int], dtype: Any) -> None:
        """A network of Dense layers of these widths (zero weights); ``coefs_`` and
        ``intercepts_`` become lists of views of its memory."""
        hidden = _ACTIVATIONS[self.activation]
        out = _OUT_ACTIVATIONS[self.out_activation_]
        layers: list[Any] = []
        dense: list[int] = []
        for i in range(len(units) - 1):
            last = i == len(units) - 2
            dense.append(len(layers))
            layers.append(Dense(units[i], units[i + 1], out if last else hidden, init="zeros"))
            if not last and self.dropout > 0:
                layers.append(Dropout(float(self.dropout)))
        self._network = Network(layers, seed=0, dtype=dtype)
        self._dense = dense
        self._trainer = None
        self._bind_views()

    def _bind_views(self) -> None:
        layers = self._network.layers
        # (n_in, n_out) transposed views of the (out, in) weights, and the biases.
        self._views = ([layers[k].weight.T for k in self._dense], [layers[k].bias for k in self._dense])
        self.coefs_ = list(self._views[0])
        self.intercepts_ = list(self._views[1])

    def _build_network(self, n_features: int, n_outputs: int, dtype: np.dtype, rs: np.random.RandomState) -> None:
        """A fresh network with scikit-learn's initialisation, drawn from `rs` in sklearn's order:
        per layer, weights U(-b, b) of shape (fan_in, fan_out), then biases U(-b, b),
        ``b = sqrt(6 / (fan_in + fan_out))`` (2 instead of 6 for 'logistic')."""
        self._make_network([n_features, *self._hidden_sizes(), n_outputs], dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for coef, intercept in zip(self.coefs_, self.intercepts_):
            fan_in, fan_out = coef.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef[...] = rs.uniform(-bound, bound, (fan_in, fan_out))
            intercept[...] = rs.uniform(-bound, bound, fan_out)

    def _sync_params(self) -> None:
        """Copy ``coefs_`` / ``intercepts_`` entries that were replaced (scikit-learn lets
        users assign them, whole lists or elements) into the network, building the
        network from them when there is none yet; then point the lists at it again."""
        coefs, intercepts = getattr(self, "coefs_", None), getattr(self, "intercepts_", None)
        if coefs is None and intercepts is None:
            return
        views = getattr(self, "_views", None)
        if (getattr(self, "_network", None) is not None and views is not None
                and _same_arrays(coefs, views[0]) and _same_arrays(intercepts, views[1])):
            return
        coefs, intercepts = _check_layer_arrays(coefs, intercepts)
        units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        if getattr(self, "_network", None) is not None:
            fitted = [c.shape for c in self._views[0]]
            if fitted != [c.shape for c in coefs]:
                raise ValueError(f"coefs_ shapes {[c.shape for c in coefs]} do not match the fitted network's "
                                 f"{fitted}; refit (warm_start=False) to change the architecture")
        else:
            if getattr(self, "out_activation_", None) not in _OUT_ACTIVATIONS:
                raise AttributeError("set out_activation_ (one of "
                                     f"{sorted(_OUT_ACTIVATIONS)}) along with coefs_ and intercepts_")
            dtype = resolve_dtype(self.dtype) if self.dtype is not None else (
                coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64)
            self._make_network(units, dtype)
        for view, value in zip(self._views[0] + self._views[1], coefs + intercepts):
            view[...] = value
        self._bind_views()

    # ---- pickling: the C++ network travels as its layer configs and weights --------
    def __getstate__(self) -> dict[str, Any]:
        self._sync_params()
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        net = state.pop("_network", None)
        for views in ("_views", "coefs_", "intercepts_"):  # rebuilt from the network
            state.pop(views, None)
        state["_trainer"] = None  # optimizer state is not kept (documented)
        if net is not None:
            state["_network_spec"] = {"layers": [layer._config() for layer in net.layers],
                                      "dtype": net.dtype.name, "params": net.state_dict()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        spec = state.pop("_network_spec", None)
        if spec is not None:
            net = Network([layer_from_config(cfg) for cfg in spec["layers"]], dtype=spec["dtype"])
            net.load_state_dict(spec["params"])
            state["_network"] = net
        super().__setstate__(state)
        if spec is not None:
            self._bind_views()

    # ---- fitting --------------------------------------------------------------
    def _loss_setup(self) -> tuple[str, float]:
        """The core loss and ``scale`` = core objective / sklearn objective (a constant)."""
        k = self.n_outputs_
        if self.out_activation_ == "softmax":
            return "cross_entropy", 1.0
        if self.out_activation_ == "logistic":
            return "binary_cross_entropy", 1.0 / k   # core: mean over outputs; sklearn: sum
        if self.out_activation_ == "exp":
            return "poisson", 1.0 / k                # both half deviances; core: mean over outputs, sklearn: sum
        return "mse", 2.0 / k                      # core: mean of squares; sklearn: 0.5 * sum over outputs

    def _new_trainer(self, seed: int) -> Trainer:
        loss, scale = self._loss_setup()
        if self.solver == "sgd":
            optimizer = SGD(lr=self._lr / scale, momentum=float(self.momentum),
                            nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)
        else:
            optimizer = Adam(lr=float(self.learning_rate_init), betas=(float(self.beta_1), float(self.beta_2)),
                             eps=float(self.epsilon) * scale)
        batch = 200 if self.batch_size == "auto" else int(self.batch_size)  # the core clips it to n
        return Trainer(self._network, loss=loss, optimizer=optimizer, batch_size=batch,
                       shuffle=bool(self.shuffle), seed=seed, l2=float(self.alpha) * scale)

    def _check_solver(self) -> bool:
        """partial_fit exists only for the stochastic solvers (``available_if``), as in sklearn."""
        if self.solver not in _STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} "
                                 "is not stochastic.")
        return True

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False) -> _BaseMLP:
        self._check_params()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if not first_pass:
            self._sync_params()
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples = X.shape[0]
        sample_weight = self._check_sample_weight(sample_weight, n_samples, X.dtype)
        targets = self._encode_targets(y)
        n_outputs = targets.shape[1] if targets.ndim == 2 else len(self.classes_)
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], n_outputs, X.dtype, rs)
        elif n_outputs != self.n_outputs_:
            raise ValueError(f"y has {n_outputs} outputs, but the model was fitted with {self.n_outputs_}; "
                             "set warm_start=False to refit from scratch")
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        with _num_threads(self.n_threads):
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, targets, sample_weight)
            else:
                self._fit_stochastic(X, y, targets, sample_weight, rs, incremental)
        return self

    def _check_sample_weight(self, sample_weight: Any, n: int, dtype: np.dtype) -> np.ndarray | None:
        if sample_weight is None:
            return None
        if isinstance(sample_weight, numbers.Number):
            sw = np.full(n, float(sample_weight), dtype=dtype)
        else:
            sw = check_array(sample_weight, ensure_2d=False, dtype=dtype, input_name="sample_weight")
            if sw.ndim != 1 or sw.shape[0] != n:
                raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)!")
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
        if not sw.any():
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return sw

    def _initialize(self, n_features: int, n_outputs: int, dtype: np.dtype, rs: np.random.RandomState) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(self._hidden_sizes()) + 2
        self.out_activation_ = self._out_activation()
        self._build_network(n_features, n_outputs, dtype, rs)
        self._lr = float(self.learning_rate_init)
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_params = self._network.state_dict()
        if self.early_stopping and self.solver != "lbfgs":
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit_lbfgs(self, X: Any, targets: np.ndarray, sample_weight: Any) -> None:
        """SciPy's L-BFGS-B on the full-batch objective in sklearn's units (as sklearn: maxiter,
        maxfun, gtol=tol; n_iter_ = min(nit, max_iter); a ConvergenceWarning unless it converged)."""
        loss, scale = self._loss_setup()
        net = self._network
        Xc = as_features(X, net.dtype, net.input_shape)
        values, labels = as_targets(targets, loss, Xc.shape[0], net.output_shape, net.dtype)
        weights = as_sample_weight(sample_weight, Xc.shape[0], net.dtype)

        def report(iteration: int, value: float) -> None:
            if self.verbose:
                print(f"Iteration {iteration}, loss = {value:.8f}")

        result = minimize_arrays(net, Xc, values, labels, weights, loss, l2=float(self.alpha) * scale,
                                 scale=1.0 / scale, max_iter=int(self.max_iter), max_fun=int(self.max_fun),
                                 tol=float(self.tol), on_iteration=report)
        self.n_iter_ = min(result.n_iter, int(self.max_iter))
        self.loss_ = result.loss
        self.loss_curve_.extend(result.loss_curve)
        self.best_loss_ = min([self.best_loss_, *result.loss_curve]) if result.loss_curve else self.best_loss_
        if not result.converged:
            msg = (f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={result.status}):\n"
                   f"{result.message}\n")
            if self.n_iter_ == self.max_iter:
                msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={self.max_iter})."
            msg += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)

    def _fit_stochastic(self, X: Any, y: np.ndarray, targets: np.ndarray, sample_weight: Any,
                        rs: np.random.RandomState, incremental: bool) -> None:
        _, scale = self._loss_setup()
        if self.early_stopping:
            # As sklearn: stratified only for single-output classification, on the binarised labels.
            stratify = targets.astype(bool) if self._is_single_output_classifier() else None
            parts = train_test_split(X, y, targets, *(() if sample_weight is None else (sample_weight,)),
                                     random_state=rs, test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, _, y_val, t_train, _ = parts[:6]
            sw_train, sw_val = (parts[6], parts[7]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
        else:
            X_train, t_train, sw_train = X, targets, sample_weight
            X_val = y_val = sw_val = None
        if t_train.dtype.kind == "f":  # converted once here, not by the trainer every epoch
            t_train = np.ascontiguousarray(t_train, dtype=self._network.dtype)
        trainer = getattr(self, "_trainer", None)
        if trainer is None or not incremental:
            self._lr = float(self.learning_rate_init) if not incremental else getattr(
                self, "_lr", float(self.learning_rate_init))
            trainer = self._trainer = self._new_trainer(int(rs.randint(np.iinfo(np.int32).max)))
        n = X_train.shape[0]
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            try:
                history = trainer.fit(X_train, t_train, epochs=1, verbose=0, warn_gradients=False,
                                      sample_weight=sw_train)
            except _core.NonFiniteError as exc:
                if not self.early_stopping:
                    raise ValueError("Solver produced non-finite parameter weights. The input data may contain "
                                     "large values and need to be preprocessed.") from exc
                self._record_divergence()
                break
            self.n_iter_ += 1
            self.loss_ = history["loss"][-1] / scale
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            self._update_no_improvement_count(X_val, y_val, sw_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._set_lr(float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t))
            if self._no_improvement_count > self.n_iter_no_change:
                what = ("Validation score" if self.early_stopping else "Training loss")
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if self._trigger_stopping(msg):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
        if self.early_stopping:
            self._network.load_state_dict(self._best_params)

    def _record_divergence(self) -> None:
        """A diverged epoch under early stopping: as scikit-learn, its loss and validation score
        are NaN and the best weights are restored; unlike it, training stops here (sklearn
        iterates on NaN weights until max_iter, which cannot improve the best score)."""
        self.n_iter_ += 1
        self.loss_ = float("nan")
        self.loss_curve_.append(self.loss_)
        self.validation_scores_.append(float("nan"))
        warnings.warn(f"Training diverged in iteration {self.n_iter_} (non-finite loss or weights); stopping and "
                      "restoring the weights with the best validation score. Try a lower learning_rate_init "
                      "or scaled inputs.", ConvergenceWarning, stacklevel=5)

    def _set_lr(self, lr: float) -> None:
        self._lr = lr
        self._trainer.optimizer.lr = lr / self._loss_setup()[1]

    def _trigger_stopping(self, msg: str) -> bool:
        """sklearn's rule: stop, except that SGD with learning_rate='adaptive' divides the rate by 5
        (until it is at most 1e-6)."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self._lr / 5.0)
        if self.verbose:
            print(msg + f" Setting learning rate to {self._lr:f}")
        return False

    def _update_no_improvement_count(self, X_val: Any, y_val: Any, sw_val: Any) -> None:
        if self.early_stopping:
            score = self._score_arrays(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._network.state_dict()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # ---- prediction -----------------------------------------------------------
    def _forward_arrays(self, X: Any) -> np.ndarray:
        """The model's outputs (after the output activation) for validated X."""
        self._sync_params()
        with _num_threads(self.n_threads):
            out = self._network.predict(X)
        if self.out_activation_ == "exp":  # the network outputs log-rates (the poisson loss's input)
            with np.errstate(over="ignore"):
                np.exp(out, out=out)
            if not np.isfinite(out).all():
                raise _core.NonFiniteError("predictions overflow: exp of the network's output exceeds "
                                           f"the {out.dtype.name} range")
        return out

    def _score_arrays(self, X: Any, y: np.ndarray, sample_weight: Any) -> float:
        """The score on validated arrays; NaN when the predictions overflow (as sklearn)."""
        try:
            pred = self._predict_arrays(X)
        except _core.NonFiniteError:
            return float("nan")
        return float(self._score_function(y, pred, sample_weight=sample_weight))

    def _check_X(self, X: Any) -> Any:
        check_is_fitted(self)
        self._sync_params()
        return validate_data(self, X, reset=False, dtype=self._network.dtype, accept_sparse=_SPARSE)

    def _validate_X_y(self, X: Any, y: Any, reset: bool, y_numeric: bool) -> tuple[Any, np.ndarray]:
        if reset:
            dtype: Any = (np.float64, np.float32) if self.dtype is None else resolve_dtype(self.dtype)
        else:
            dtype = self._network.dtype
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=y_numeric, dtype=dtype, reset=reset,
                             accept_sparse=_SPARSE)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR and CSC, never densified
        return tags


def _same_arrays(values: Any, views: list[np.ndarray]) -> bool:
    return isinstance(values, list) and len(values) == len(views) and all(a is b for a, b in zip(values, views))


def _check_layer_arrays(coefs: Any, intercepts: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """coefs_ / intercepts_ as set by a user: lists of finite real arrays, coefs_[i] (a_i, a_{i+1})
    and intercepts_[i] (a_{i+1},), consecutive widths agreeing. ValueError otherwise."""
    try:
        coefs = [np.asarray(c) for c in coefs]
        intercepts = [np.asarray(b) for b in intercepts]
    except TypeError:
        raise ValueError("coefs_ and intercepts_ must be lists of arrays") from None
    shapes = f"got coefs_ shapes {[c.shape for c in coefs]}, intercepts_ shapes {[b.shape for b in intercepts]}"
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(f"coefs_ and intercepts_ must be lists of the same non-zero length; {shapes}")
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        if c.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            raise ValueError(f"coefs_[{i}] and intercepts_[{i}] must hold real numbers")
        if c.ndim != 2 or b.shape != (c.shape[1],) or (i and c.shape[0] != coefs[i - 1].shape[1]):
            raise ValueError(f"coefs_[i] must be (n_in, n_out), intercepts_[i] (n_out,) and each layer's n_in "
                             f"the previous n_out; {shapes}")
        if not (np.isfinite(c).all() and np.isfinite(b).all()):
            raise ValueError(f"coefs_[{i}] and intercepts_[{i}] must be finite")
    return coefs, intercepts


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, scikit-learn's API on the backpropx core.

    Minimises the log-loss with Adam, SGD or L-BFGS, as
    ``sklearn.neural_network.MLPClassifier``: softmax outputs for multiclass
    targets, one sigmoid output for binary ones, and sigmoid outputs with
    binary cross-entropy for multi-label targets (a 2-d 0/1 indicator y).
    X may be dense or a scipy.sparse CSR/CSC matrix (never densified).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Widths of the hidden layers.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Hidden-layer activation.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'lbfgs' is SciPy's L-BFGS-B on the full-batch objective (small data
        sets); 'sgd' and 'adam' run mini-batch epochs in C++.
    alpha : float, default=1e-4
        L2 penalty ``0.5 * alpha * ||W||^2 / batch_weight`` on the weights (not biases).
    batch_size : int or 'auto', default='auto'
        'auto' is ``min(200, n_samples)``; larger values are clipped to n_samples.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD schedule: 'invscaling' sets ``learning_rate_init / (t_ + 1) ** power_t``
        after each epoch (as sklearn); 'adaptive' divides the rate by 5 whenever
        the stopping rule fires, until it is at most 1e-6.
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs at most ('sgd', 'adam'); L-BFGS iterations at most ('lbfgs').
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Initial weights (sklearn's draws), the validation split, and the seed
        of the core's shuffling and dropout generator.
    tol, n_iter_no_change : stop when the training loss (or, with
        ``early_stopping``, the validation accuracy) has not improved by
        ``tol`` for ``n_iter_no_change`` consecutive epochs. For 'lbfgs',
        ``tol`` bounds the largest gradient component (SciPy's ``gtol``).
    verbose : bool
    warm_start : bool
        Continue from the current weights in ``fit`` (a new optimizer state).
    momentum, nesterovs_momentum : SGD momentum.
    early_stopping, validation_fraction : hold out a fraction, stop on its
        accuracy and restore the best weights.
    beta_1, beta_2, epsilon : Adam.
    max_fun : int, default=15000
        'lbfgs' only: objective evaluations at most.
    dropout : float in [0, 1), default=0
        (backpropx) Inverted dropout after every hidden layer, training only
        ('sgd', 'adam').
    dtype : None, 'float32' or 'float64', default=None
        (backpropx) The network's precision. None trains float32 input in
        float32 and everything else in float64, as sklearn's MLP does.
    n_threads : int, -1 or None, default=None
        (backpropx) Threads of the C++ core during fit and predict (-1: all
        CPUs); None keeps ``backpropx.get_num_threads()``. Set globally for
        the call, so do not fit estimators with different n_threads concurrently.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, coefs_, intercepts_,
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_,
    n_iter_, t_, n_layers_, n_outputs_, out_activation_ : as in scikit-learn.
    ``coefs_[i]`` is (n_in, n_out): a transposed view of layer i's (out, in)
    weight in C++ memory. 'lbfgs' also records ``loss_curve_`` (per iteration).

    Notes
    -----
    Estimator tags: ``classifier_tags.multi_label`` is True (adds scikit-learn's
    multi-label checks); ``input_tags.sparse`` is True. ``partial_fit`` exists
    for 'sgd' and 'adam' only. See the module docstring for every deviation
    from scikit-learn's semantics.
    """

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), keeping the optimizer state across calls.
        ``classes`` is required on the first call. Not for 'lbfgs'."""
        if getattr(self, "classes_", None) is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None and getattr(self, "classes_", None) is not None:
            if not np.array_equal(self.classes_, unique_labels(classes)):
                raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                                 f"was: {self.classes_!r}")
        elif classes is not None:
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on (X, y) for up to ``max_iter`` epochs (L-BFGS iterations); returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = self._validate_X_y(X, y, reset, y_numeric=False)
        if getattr(self, "classes_", None) is None or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, y

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _is_single_output_classifier(self) -> bool:
        return self.n_outputs_ == 1

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        """Multiclass: class indices (n,); binary / multi-label: 0/1 columns (n, k)."""
        binary = self._label_binarizer.transform(y)
        if self._label_binarizer.y_type_ == "multiclass":
            return np.argmax(binary, axis=1).astype(np.int64)
        return np.asarray(binary, dtype=np.float64)

    def _proba_arrays(self, X: np.ndarray) -> np.ndarray:
        p = self._forward_arrays(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - p, p])
        return p

    def _predict_arrays(self, X: np.ndarray) -> np.ndarray:
        p = self._forward_arrays(X)
        return self._label_binarizer.inverse_transform(p.ravel() if self.n_outputs_ == 1 else p)

    _score_function = staticmethod(accuracy_score)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes (n,), or the 0/1 indicator matrix for multi-label models."""
        return self._predict_arrays(self._check_X(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes) in the order of ``classes_`` (multi-label:
        each label's probability)."""
        return self._proba_arrays(self._check_X(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        p = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor, scikit-learn's API on the backpropx core.

    As ``sklearn.neural_network.MLPRegressor``: ``loss='squared_error'``
    minimises half the squared error of identity outputs, one per target
    column; ``loss='poisson'`` half the Poisson deviance of ``exp`` outputs
    (counts or rates, ``y >= 0``; ``out_activation_`` is 'exp'). Solvers,
    other parameters and attributes are those of :class:`MLPClassifier`
    (without ``classes_``); ``validation_scores_`` are R^2 scores. ``loss``
    is the first positional parameter, as in scikit-learn >= 1.7.

    Notes
    -----
    Estimator tags: ``target_tags.multi_output`` is True (adds scikit-learn's
    multi-output regression check); ``input_tags.sparse`` is True.
    ``partial_fit`` exists for 'sgd' and 'adam' only.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, dropout=0.0, dtype=None, n_threads=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            dropout=dropout, dtype=dtype, n_threads=n_threads)
        self.loss = loss

    def _check_params(self) -> None:
        if self.loss not in _REGRESSION_LOSSES:
            raise ValueError(f"The 'loss' parameter must be one of {list(_REGRESSION_LOSSES)}, got {self.loss!r}")
        super()._check_params()

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on (X, y) for up to ``max_iter`` epochs (L-BFGS iterations); returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), keeping the optimizer state across calls. Not for 'lbfgs'."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        return self._validate_X_y(X, y, reset, y_numeric=True)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _is_single_output_classifier(self) -> bool:
        return False

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)

    def _predict_arrays(self, X: Any) -> np.ndarray:
        out = self._forward_arrays(X)
        return out.ravel() if out.shape[1] == 1 else out

    _score_function = staticmethod(r2_score)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (n,) for one target, (n, n_outputs) for several."""
        return self._predict_arrays(self._check_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
