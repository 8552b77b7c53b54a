"""Numerical promises: cross-entropy's gradient is the true one for any
accepted target, and NaN or infinity anywhere in the parameters is an
error, never a finite but meaningless output."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_ACTIVATIONS, ELEMENTWISE, assert_close, ref

import backpropx as bx


def ce_net(last: str | None, dtype: str = "float64") -> bx.Network:
    return bx.Network([bx.Dense(3, 4, activation="tanh"), bx.Dense(4, 5, activation=last)], seed=2, dtype=dtype)


def unnormalised_rows(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """Rows in [0, 1] whose sums are anything from 0 to c: zero rows, partial
    rows, label-smoothing-like rows and rows summing to more than 1."""
    y = rng.uniform(size=(n, c))
    y[0] = 0.0
    y[1] *= 0.1
    y[2] = 1.0
    return y


def central_differences(net: bx.Network, X: np.ndarray, y: np.ndarray, h: float = 1e-6) -> dict[str, np.ndarray]:
    out = {}
    for name, view in net.named_parameters():
        grad = np.zeros_like(view)
        for idx in np.ndindex(view.shape):
            old = view[idx]
            view[idx] = old + h
            plus = net.loss_and_gradients(X, y)[0]
            view[idx] = old - h
            minus = net.loss_and_gradients(X, y)[0]
            view[idx] = old
            grad[idx] = (plus - minus) / (2 * h)
        out[name] = grad
    return out


@pytest.mark.parametrize("last", ["softmax", None, "sigmoid"])
def test_cross_entropy_gradient_of_rows_not_summing_to_one_matches_finite_differences(last):
    rng = np.random.default_rng(0)
    net = ce_net(last)
    X = rng.standard_normal((6, 3))
    y = unnormalised_rows(rng, 6, 5)
    assert not np.allclose(y.sum(axis=1), 1.0)
    loss, grads = net.loss_and_gradients(X, y)
    numeric = central_differences(net, X, y)
    for name in grads:
        assert_close(grads[name], numeric[name], 1e-7, name)
    # and the reference, written from the equations, agrees
    ref_loss, ref_grads = ref.loss_and_gradients(
        [{"weight": l.weight.copy(), "bias": l.bias.copy(), "activation": l.activation if l.activation != "identity"
          else None} for l in net.layers], X, y, "cross_entropy")
    assert abs(loss - float(ref_loss)) <= 1e-12 * abs(loss)
    for name in grads:
        assert_close(grads[name], ref_grads[name], 1e-12, name)


def test_old_gradient_formula_would_fail_this_check():
    # Tests the tester: (p - y)/n, the gradient only for rows summing to 1,
    # is far from the finite differences on these targets.
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 5))
    y = unnormalised_rows(rng, 6, 5)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    true = ref.cross_entropy_logits(z, y)[1]
    wrong = (p - y) / 6
    assert np.max(np.abs(true - wrong)) > 1e-2


@pytest.mark.parametrize("last", ["softmax", None])
def test_cross_entropy_with_unnormalised_rows_matches_torch(last):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    net = ce_net(last)
    X = rng.standard_normal((6, 3))
    y = unnormalised_rows(rng, 6, 5)
    loss, grads = net.loss_and_gradients(X, y)
    module = net.to_torch()
    logits_module = module[:-1] if last == "softmax" else module  # torch's loss takes logits
    t_loss = torch.nn.functional.cross_entropy(logits_module(torch.tensor(X)), torch.tensor(y))
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= 1e-12 * abs(loss)
    torch_grads = [p.grad.numpy() for p in module.parameters()]
    for ours, theirs in zip(grads.values(), torch_grads):
        assert_close(ours, theirs, 1e-12)


def test_trainer_uses_the_same_gradient_for_unnormalised_rows():
    # One SGD step of fit equals one manual step with loss_and_gradients.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6, 3))
    y = unnormalised_rows(rng, 6, 5)
    net = ce_net("softmax")
    _, grads = net.loss_and_gradients(X, y)
    expected = {k: v - 0.1 * grads[k] for k, v in net.state_dict().items()}
    bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=6, shuffle=False).fit(X, y, verbose=0)
    for k, v in net.state_dict().items():
        assert_close(v, expected[k], 1e-12, k)


# ---- NaN and infinity propagate ---------------------------------------------

@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_every_activation_propagates_nan_like_torch(activation):
    torch = pytest.importorskip("torch")
    fn = {"identity": lambda t: t, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
          "leaky_relu": torch.nn.functional.leaky_relu, "elu": torch.nn.functional.elu,
          "gelu": torch.nn.functional.gelu}[activation]
    values = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]])
    net = bx.Network([bx.Dense(7, 7, activation=None if activation == "identity" else activation,
                               init="zeros")], dtype="float64")
    net.layers[0].weight[...] = np.eye(7)
    # Through the weights (inputs are checked first): row i of W.x is x_i, so
    # set a weight to the special value and feed ones.
    for j, special in enumerate(values[0]):
        net.layers[0].weight[...] = np.eye(7)
        net.layers[0].weight[j, j] = special
        expect = fn(torch.tensor(special, dtype=torch.float64)).item()
        if np.isfinite(special):
            out = net.predict(np.ones((1, 7)))
            assert out[0, j] == pytest.approx(expect, abs=0)
        else:
            # Any non-finite parameter is refused by name, even where the
            # activation would give a finite value (sigmoid(inf) = 1).
            with pytest.raises(bx.NonFiniteError, match="parameter '0.weight'"):
                net.predict(np.ones((1, 7)))


def test_relu_maps_nan_to_nan():
    # The kernel itself, reached with finite weights: layer 0 overflows to
    # [inf, inf], layer 1 computes inf - inf = NaN, which relu must not turn
    # into 0 (a finite, meaningless output).
    net = bx.Network([bx.Dense(1, 2, bias=False), bx.Dense(2, 1, activation="relu", bias=False),
                      bx.Dense(1, 1)], seed=0)
    net.layers[0].weight[...] = [[3e38], [3e38]]
    net.layers[1].weight[...] = [[1.0, -1.0]]
    with pytest.raises(bx.NonFiniteError, match="not finite"):
        net.predict(np.array([[2.0]], dtype=np.float32))


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("special", [np.inf, -np.inf, np.nan])
def test_a_non_finite_weight_is_an_error_everywhere(activation, special):
    net = bx.Network([bx.Dense(3, 4, activation="tanh"),
                      bx.Dense(4, 3, activation=None if activation == "identity" else activation)], seed=0)
    X = np.random.default_rng(0).standard_normal((5, 3))
    y = np.array([0, 1, 2, 0, 1])
    net.layers[1].weight[1, 2] = special
    with pytest.raises(bx.NonFiniteError, match="parameter '1.weight'"):
        net.predict(X)
    with pytest.raises(bx.NonFiniteError, match="parameter '1.weight'"):
        net.loss_and_gradients(X, y)
    trainer = bx.Trainer(net, batch_size=2)
    with pytest.raises(bx.NonFiniteError, match="parameter '1.weight'"):
        trainer.evaluate(X, y)
    with pytest.raises(bx.NonFiniteError, match="parameters of layer 1"):
        trainer.fit(X, y, verbose=0)
