"""The tutorial's worked examples, with their numbers checked exactly.

1. One weight, no bias: inputs 0, 3, 9, 27 and desired outputs 0, 6, 18, 54
   (the rule is "output = 2 x input"). At w = 4, 3, 2 the network outputs
   w x, the errors w x - t are (0, 6, 18, 54), (0, 3, 9, 27), (0, 0, 0, 0),
   and at w = 4 the squared errors are 0, 36, 324, 2916 (sum 3276, mean 819).
   mse is the mean squared error, and its derivative is
   dL/dw = mean(2 (w x - t) x) = (w - 2) mean(2 x^2) = 409.5 (w - 2).
   Gradient descent w <- w - lr dL/dw contracts w - 2 by |1 - 409.5 lr| per
   step, so any lr < 2 / 409.5 drives w to 2.
2. XOR with two inputs, one output and three layers (input, hidden,
   output): not linearly separable, so only backprop into the hidden layer
   can solve it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backpropx as bx

X = np.array([[0.0], [3.0], [9.0], [27.0]])
T = np.array([0.0, 6.0, 18.0, 54.0])
ERRORS = {4.0: [0, 6, 18, 54], 3.0: [0, 3, 9, 27], 2.0: [0, 0, 0, 0]}


def one_weight(w: float, dtype: str) -> bx.Network:
    net = bx.Network([bx.Dense(1, 1, bias=False)], dtype=dtype)
    net.layers[0].weight[...] = w  # the view writes into the network
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("w", sorted(ERRORS))
def test_errors_loss_and_gradient(w, dtype):
    net = one_weight(w, dtype)
    assert list(net.state_dict()) == ["0.weight"]
    out = net.predict(X)
    assert out.shape == (4, 1)
    np.testing.assert_array_equal(out[:, 0] - T, ERRORS[w])  # small integers: exact in both dtypes
    squared = (out[:, 0] - T) ** 2
    loss, grads = net.loss_and_gradients(X, T, loss="mse")
    assert loss == np.mean(squared)
    expected_grad = np.mean(2 * (w * X[:, 0] - T) * X[:, 0])
    assert expected_grad == 409.5 * (w - 2)
    assert list(grads) == ["0.weight"] and grads["0.weight"].shape == (1, 1)
    assert grads["0.weight"][0, 0] == pytest.approx(expected_grad, rel=1e-6 if dtype == "float32" else 1e-15)


def test_numbers_at_w4():
    net = one_weight(4.0, "float64")
    squared = (net.predict(X)[:, 0] - T) ** 2
    np.testing.assert_array_equal(squared, [0, 36, 324, 2916])
    assert squared.sum() == 3276
    loss, grads = net.loss_and_gradients(X, T, loss="mse")
    assert loss == 819.0
    assert grads["0.weight"][0, 0] == 819.0  # 0.5 * (0 + 6*3 + 18*9 + 54*27)
    assert net.loss_and_gradients(X, T.reshape(4, 1), loss="mse")[0] == 819.0  # (n,) or (n, 1) targets


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_descent_finds_w_2(dtype):
    net = one_weight(4.0, dtype)
    lr = 0.002  # contraction factor 1 - 409.5 * 0.002 = 0.181 per step
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=lr), batch_size=4, shuffle=False)
    w = [4.0]
    history = trainer.fit(X, T, epochs=1, verbose=0)
    w.append(float(net.layers[0].weight[0, 0]))
    assert w[1] == pytest.approx(4.0 - lr * 819.0, rel=1e-6)  # one full-batch step
    assert history["loss"] == [pytest.approx(819.0)]  # the loss before the step
    history = trainer.fit(X, T, epochs=30, verbose=0)
    assert abs(net.layers[0].weight[0, 0] - 2.0) < 1e-6
    losses = history["loss"]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-9


def test_too_large_learning_rate_diverges():
    """lr > 2 / 409.5: each step overshoots by more than it corrects."""
    net = one_weight(4.0, "float64")
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=0.006), batch_size=4, shuffle=False)
    with warnings.catch_warnings():  # the trainer may rightly warn that gradients explode
        warnings.filterwarnings("ignore", message=".*gradients of layer")
        trainer.fit(X, T, epochs=5, verbose=0)
    assert abs(net.layers[0].weight[0, 0] - 2.0) > 2.0 * abs(1 - 409.5 * 0.006) ** 4


XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([[0.0], [1.0], [1.0], [0.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
def test_xor(hidden, dtype):
    net = bx.Network([bx.Dense(2, 4, activation=hidden), bx.Dense(4, 1, activation="sigmoid")],
                     seed=1, dtype=dtype)
    trainer = bx.Trainer(net, loss="binary_cross_entropy", optimizer=bx.Adam(lr=0.05), batch_size=4,
                         shuffle=False)
    before = trainer.evaluate(XOR_X, XOR_Y)
    history = trainer.fit(XOR_X, XOR_Y, epochs=600, verbose=0)
    out = net.predict(XOR_X)[:, 0]
    np.testing.assert_array_equal(out > 0.5, XOR_Y[:, 0] > 0.5)
    assert trainer.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0
    assert history["accuracy"][-1] == 1.0
    assert history["loss"][-1] < 0.1 < before["loss"]


def test_xor_needs_the_hidden_layer():
    """Without a hidden layer (logistic regression) XOR stays unsolved: at
    most 3 of 4 points right, whatever the training."""
    net = bx.Network([bx.Dense(2, 1, activation="sigmoid")], seed=1, dtype="float64")
    trainer = bx.Trainer(net, loss="binary_cross_entropy", optimizer=bx.Adam(lr=0.05), batch_size=4,
                         shuffle=False)
    with warnings.catch_warnings():  # weights shrink towards 0: update/weight ratio heuristics may fire
        warnings.filterwarnings("ignore", message=".*gradients of layer")
        trainer.fit(XOR_X, XOR_Y, epochs=300, verbose=0)
    assert trainer.evaluate(XOR_X, XOR_Y)["accuracy"] <= 0.75
