"""Losses over the last axis, through loss_and_gradients, evaluate and fit,
against the NumPy reference: outputs (n, T, C) and (n, A, B, C) have one loss
row per leading position, so cross-entropy takes per-timestep integer labels
(n, T) or probability rows (n, T, C), mse and binary cross-entropy act on the
whole output, and ``sample_weight`` (one per sample) weights every row of
its sample: ``L = sum_r w_r l_r / sum_r w_r``.

Tolerances as in test_gradients.py: 1e-10 in float64, 1e-4 in float32 (the
reference runs in float64 on the float32 network's weights and inputs).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, assert_grads_close, randomize, ref, ref_stack

import backpropx as bx

TOL = {"float64": 1e-10, "float32": 1e-4}

# (loss, target kind, last activation)
COMBOS = [
    ("cross_entropy", "labels", "softmax"),   # softmax fused into the loss
    ("cross_entropy", "labels", "identity"),  # the output taken as logits
    ("cross_entropy", "probs", "softmax"),
    ("cross_entropy", "probs", "tanh"),
    ("mse", "values", "identity"),
    ("mse", "values", "softmax"),             # the network applies the softmax it owns
    ("binary_cross_entropy", "values", "sigmoid"),
    ("poisson", "values", "identity"),        # the output taken as the log-rate
]
LEADS = [(4,), (3, 2)]  # per-sample leading axes: T time steps, or a 3x2 grid


def _case(loss, kind, last, lead, dtype, weighted, seed=0):
    rng = np.random.default_rng([seed, COMBOS.index((loss, kind, last)), len(lead), weighted])
    F, C, n = 3, 5, 7
    net = bx.Network([bx.Dense(F, 6, activation="tanh"), bx.Dense(6, C, activation=last)],
                     input_shape=(*lead, F), seed=seed, dtype=dtype)
    randomize(net, rng)
    X = rng.standard_normal((n, *lead, F)).astype(dtype)
    if kind == "labels":
        y = rng.integers(0, C, size=(n, *lead))
    elif kind == "probs":
        y = rng.dirichlet(np.ones(C), size=(n, *lead))
    elif loss == "binary_cross_entropy":
        y = rng.random((n, *lead, C))
    elif loss == "poisson":
        y = rng.poisson(1.5, size=(n, *lead, C)).astype(float)
    else:
        y = rng.standard_normal((n, *lead, C))
    w = None
    if weighted:
        w = rng.random(n) * 2
        w[1] = 0.0  # a sample that does not count
    return net, X, y, w


def _ids(c):
    return "-".join(c)


def _reference(net, X, y, loss, w):
    return ref.loss_and_gradients(ref_stack(net), X.astype(np.float64), y, loss, sample_weight=w)


def _accuracy(out: np.ndarray, y: np.ndarray, loss: str) -> float:
    """The fraction of correct loss rows (unweighted): argmax against the label
    (or the target row's argmax); for binary cross-entropy the fraction of
    elements on the right side of 0.5."""
    if loss == "binary_cross_entropy":
        return float(np.mean((out > 0.5) == (y > 0.5)))
    want = y if y.ndim == out.ndim - 1 else y.argmax(axis=-1)
    return float(np.mean(out.argmax(axis=-1) == want))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("lead", LEADS, ids=["T", "AxB"])
@pytest.mark.parametrize("loss,kind,last", COMBOS, ids=[_ids(c) for c in COMBOS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_loss_and_gradients_and_evaluate(dtype, loss, kind, last, lead, weighted):
    net, X, y, w = _case(loss, kind, last, lead, dtype, weighted)
    tol = TOL[dtype]
    assert net.output_shape == (*lead, 5)
    value, grads = net.loss_and_gradients(X, y, loss=loss, sample_weight=w)
    ref_value, ref_grads = _reference(net, X, y, loss, w)
    assert_close(value, ref_value, tol, "loss")
    assert_grads_close(grads, ref_grads, tol)

    metrics = bx.Trainer(net, loss=loss).evaluate(X, y, sample_weight=w)
    assert_close(metrics["loss"], ref_value, tol, "evaluate loss")
    if loss in ("mse", "poisson"):
        assert "accuracy" not in metrics
    else:
        out = ref.forward(ref_stack(net), X.astype(np.float64))
        assert metrics["accuracy"] == pytest.approx(_accuracy(out, y, loss), abs=1e-12)


def test_per_timestep_rows_are_the_flattened_rows():
    """An (n, T, C) output with labels (n, T) and weights (n,) gives exactly
    the loss of its n*T rows with each weight repeated T times: the
    reference's definition, checked here on the reference itself so the tests
    above cannot share a mistake with it in how rows are formed."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4, 3, 5))
    labels = rng.integers(0, 5, size=(4, 3))
    w = rng.random(4)
    value, grad = ref.cross_entropy_logits(z, labels, sample_weight=w)
    rows, rows_grad = ref.cross_entropy_logits(z.reshape(12, 5), labels.reshape(12),
                                               sample_weight=np.repeat(w, 3))
    assert_close(value, rows, 1e-14, "loss")
    assert_close(grad, rows_grad.reshape(4, 3, 5), 1e-14, "gradient")
    plain, _ = ref.cross_entropy_logits(z, labels)
    ones, _ = ref.cross_entropy_logits(z, labels, sample_weight=np.ones(4))
    assert_close(ones, plain, 1e-14, "unit weights")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss,kind,last", COMBOS, ids=[_ids(c) for c in COMBOS])
def test_fit_steps_follow_the_reference(loss, kind, last, weighted):
    """Two epochs of SGD in batches of 3 of 7 samples (3, 3, 1) without
    shuffling: each batch's weighted mean loss and gradient, step by step,
    as the reference computes them; the epoch loss is the weight-averaged
    batch loss and the accuracy counts every row."""
    net, X, y, w = _case(loss, kind, last, (4,), "float64", weighted, seed=1)
    stack = ref_stack(net)
    params = {f"{k}.{name}": layer["params"][name] for k, layer in enumerate(stack) for name in layer["params"]}
    opt = ref.SGD(lr=0.1)
    epoch_losses, epoch_accuracy = [], []
    for _ in range(2):
        total = weights = correct = 0.0
        for start in range(0, 7, 3):
            sl = slice(start, start + 3)
            wb = None if w is None else w[sl]
            correct += _accuracy(ref.forward(stack, X[sl]), y[sl], loss) * len(X[sl])
            value, grads = ref.loss_and_gradients(stack, X[sl], y[sl], loss, sample_weight=wb)
            bw = 4 * (len(X[sl]) if wb is None else float(np.sum(wb)))  # 4 rows per sample
            total, weights = total + float(value) * bw, weights + bw
            opt.step(params, grads)
        epoch_losses.append(total / weights)
        epoch_accuracy.append(correct / 7)
    history = bx.Trainer(net, loss=loss, optimizer=bx.SGD(lr=0.1), batch_size=3, shuffle=False).fit(
        X, y, epochs=2, verbose=0, sample_weight=w, warn_gradients=False)
    state = net.state_dict()
    for key, p in params.items():
        assert_close(state[key], p, 1e-10, key)
    for got, expected in zip(history["loss"], epoch_losses):
        assert_close(got, expected, 1e-10, "epoch loss")
    if loss not in ("mse", "poisson"):
        assert history["accuracy"] == pytest.approx(epoch_accuracy, abs=1e-12)
