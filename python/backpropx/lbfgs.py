"""Full-batch training with L-BFGS: SciPy's L-BFGS-B over the core's objective.

``fit_lbfgs`` minimises the mean loss over the whole data set plus an
optional L2 penalty, as scikit-learn's MLP does with ``solver="lbfgs"``: the
optimizer is SciPy's (``scipy.optimize.minimize(method="L-BFGS-B")``, a
well-kept implementation), the objective and its gradient are the core's,
evaluated in C++ on the flat parameter buffer. Per evaluation the only
copies are the ones SciPy needs: its parameter vector into the network and
the gradient out, as float64.

Why not ``Trainer(optimizer=bx.LBFGS())``: the Trainer runs epochs of
mini-batches with per-element updates (and checkpoints that resume bit for
bit, learning-rate schedules, clipping, dropout). L-BFGS needs the full
batch, a line search that re-evaluates the objective at points of its
choosing, and a history SciPy does not expose for checkpointing; none of
those Trainer features would mean anything for it. So it is a function.

SciPy is imported when ``fit_lbfgs`` runs (``pip install scipy``);
``import backpropx`` does not need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _core
from ._arrays import as_features, as_sample_weight, as_targets, check_int, check_real
from .network import Network, check_loss

__all__ = ["LBFGSResult", "fit_lbfgs"]


@dataclass
class LBFGSResult:
    """What ``fit_lbfgs`` did.

    loss: the objective (mean loss + L2 penalty) at the final parameters.
    n_iter: L-BFGS iterations; n_fun: objective evaluations.
    converged: SciPy reported convergence (``status == 0``); otherwise
    ``message`` says why it stopped (iteration or evaluation limit, a line
    search that could not make progress).
    loss_curve: the objective after each iteration.
    """

    loss: float
    n_iter: int
    n_fun: int
    converged: bool
    status: int
    message: str
    loss_curve: list[float] = field(default_factory=list)


def _scipy_minimize() -> Callable[..., Any]:
    try:
        from scipy.optimize import minimize
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        raise ImportError("L-BFGS needs SciPy: pip install scipy") from None
    return minimize


_BLAS: list[Any] = []  # threadpoolctl's controller, built once (scanning the loaded libraries takes ~15 ms)


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """L-BFGS-B's own arithmetic is BLAS-1/2 on vectors of the parameter count:
    threads gain nothing there, and on a busy machine OpenBLAS's spinning helpers
    doubled the time of a digits fit on two threads. So SciPy runs it on one BLAS
    thread (threadpoolctl, when installed: scikit-learn depends on it); the
    objective is the core's, on its own threads. The limit is process-wide for
    the duration of the fit."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - then BLAS keeps its own setting
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    controller = _BLAS[0]
    return contextlib.nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def minimize_arrays(network: Network, X: Any, values: Any, labels: Any, weights: Any, loss: str, *,
                    l2: float, scale: float, max_iter: int, max_fun: int, tol: float,
                    on_iteration: Callable[[int, float], None] | None = None) -> LBFGSResult:
    """L-BFGS-B on already converted arrays (see ``fit_lbfgs``); SciPy sees
    ``scale * objective``. Leaves the network at the solution."""
    minimize = _scipy_minimize()
    dtype = network.dtype.name
    objective = getattr(_core, f"Objective_{dtype}")(network._core, X, values, labels, loss, weights, l2, scale)
    curve: list[float] = []

    def callback(intermediate_result: Any) -> None:  # SciPy passes an OptimizeResult by this name
        curve.append(float(intermediate_result.fun))
        if on_iteration is not None:
            on_iteration(len(curve), curve[-1])

    x0 = np.array(network._core.flat_params(), dtype=np.float64)
    try:
        with _one_blas_thread():
            result = minimize(objective, x0, method="L-BFGS-B", jac=True, callback=callback,
                              options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol})
        if not np.isfinite(result.x).all() or not np.isfinite(result.fun):
            raise _core.NonFiniteError("L-BFGS ended at non-finite parameters or loss; the network keeps "
                                       "its initial weights. Try scaling the inputs or a larger l2")
    except BaseException:
        network._core.assign_params(x0)  # an error leaves the network as it was
        raise
    # The last evaluation may have been a rejected line-search point.
    network._core.assign_params(np.asarray(result.x))
    return LBFGSResult(loss=float(result.fun), n_iter=int(result.nit), n_fun=int(result.nfev),
                       converged=int(result.status) == 0, status=int(result.status),
                       message=str(result.message), loss_curve=curve)


def fit_lbfgs(network: Network, X: Any, y: Any, loss: str = "cross_entropy", *, sample_weight: Any = None,
              l2: float = 0.0, max_iter: int = 200, max_fun: int = 15000, tol: float = 1e-4,
              callback: Callable[[int, float], None] | None = None) -> LBFGSResult:
    """Train ``network`` on all of (X, y) with L-BFGS (SciPy's L-BFGS-B).

    Minimises ``loss`` (as in ``Network.loss_and_gradients``: the
    mean over the samples, weighted by ``sample_weight``) plus
    ``0.5 * l2 * ||W||^2 / B`` over the weight matrices of trainable layers
    (B: the sample-weight sum, n without weights; biases are not
    penalised), the objective of scikit-learn's MLP with ``alpha=l2``.
    Frozen layers stay as they are; dropout is off (the objective must be
    deterministic). X may be sparse when the first layer is Dense.

    Stops after ``max_iter`` iterations or ``max_fun`` evaluations, or when
    the largest gradient component is at most ``tol`` (SciPy's ``gtol``) or
    the objective stops decreasing (SciPy's ``ftol``), whichever comes
    first. ``callback(iteration, objective)`` runs after each iteration.
    The network is updated in place; returns an :class:`LBFGSResult`.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a backpropx Network, got {type(network).__name__}")
    loss = check_loss(loss)
    max_iter = check_int(max_iter, "max_iter", 1)
    max_fun = check_int(max_fun, "max_fun", 1)
    tol = check_real(tol, "tol")
    l2 = check_real(l2, "l2")
    if tol < 0 or l2 < 0:
        raise ValueError(f"tol and l2 must be non-negative, got tol={tol}, l2={l2}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    Xc = as_features(X, network.dtype, network.input_shape)
    if Xc.shape[0] == 0:
        raise ValueError("X has no samples")
    values, labels = as_targets(y, loss, Xc.shape[0], network.output_shape, network.dtype)
    weights = as_sample_weight(sample_weight, Xc.shape[0], network.dtype)
    if weights is not None and not weights.any():
        raise ValueError("sample_weight sums to zero")
    return minimize_arrays(network, Xc, values, labels, weights, loss, l2=l2, scale=1.0, max_iter=max_iter,
                           max_fun=max_fun, tol=tol, on_iteration=callback)
