"""The contract of manual mode beyond its arithmetic (test_layer_kinds.py and
test_manual_vs_torch.py check that): misuse raises a clear error and changes
nothing; zero_grad; gradients accumulate; frozen layers; dropout from the
network's seeded generator; ``opt.step(net)`` equals a fit step bit for bit;
the optimizer's state_dict; one optimizer per network; non-finite gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, assert_grads_close, randomize

import backpropx as bx


def _net(seed: int = 0, dtype: str = "float64", dropout: float = 0.0) -> bx.Network:
    net = bx.Network([bx.Dense(5, 7, activation="tanh"), bx.Dropout(dropout), bx.Residual([bx.Dense(7, 7, activation="elu")]),
                      bx.Dense(7, 3)], seed=seed, dtype=dtype)
    randomize(net, np.random.default_rng(seed))
    return net


def _data(n: int = 6, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)), rng.standard_normal((n, 3))


def _grads(net: bx.Network) -> dict[str, np.ndarray]:
    return {name: np.array(g) for name, g in net.named_gradients()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---- misuse ------------------------------------------------------------------------
def test_backward_without_a_training_forward_is_refused():
    net = _net()
    X, dY = _data()
    with pytest.raises(ValueError, match=r"forward\(X, training=True\)"):
        net.backward(dY)
    net.forward(X, training=False)
    with pytest.raises(ValueError, match=r"forward\(X, training=True\)"):
        net.backward(dY)
    # a training forward superseded by an inference forward no longer allows one
    net.forward(X, training=True)
    net.forward(X, training=False)
    with pytest.raises(ValueError, match=r"forward\(X, training=True\)"):
        net.backward(dY)
    # nor by loss_and_gradients, which computes (and replaces) the gradients itself
    net.forward(X, training=True)
    net.loss_and_gradients(X, dY, loss="mse")
    with pytest.raises(ValueError, match=r"forward\(X, training=True\)"):
        net.backward(dY)
    assert not any(np.any(g) for g in _grads(_net()).values())  # a fresh network has zero gradients


def test_two_backwards_for_one_forward_are_refused_and_change_nothing():
    net = _net()
    X, dY = _data()
    net.forward(X, training=True)
    net.backward(dY)
    grads, params = _grads(net), net.state_dict()
    with pytest.raises(ValueError, match="one backward"):
        net.backward(dY)
    _same(_grads(net), grads)
    _same(net.state_dict(), params)


@pytest.mark.parametrize("bad,error,match", [
    (lambda dY: dY[:, :2], ValueError, "dY has 2 features per sample"),
    (lambda dY: dY[:4], ValueError, "4 samples but the forward pass had 6"),
    (lambda dY: dY[:, :, None], ValueError, "2-dimensional"),
    (lambda dY: dY[0], ValueError, "2-dimensional"),
    (lambda dY: np.where(dY > 1, np.nan, dY), ValueError, "non-finite"),
    (lambda dY: dY.astype(complex), TypeError, "real numbers"),
], ids=["features", "samples", "rank3", "rank1", "nan", "complex"])
def test_a_wrong_dY_is_refused_and_changes_nothing(bad, error, match):
    net = _net()
    X, dY = _data()
    net.forward(X, training=True)
    grads, params = _grads(net), net.state_dict()
    with pytest.raises(error, match=match):
        net.backward(bad(dY))
    _same(_grads(net), grads)
    _same(net.state_dict(), params)
    net.backward(dY)  # the forward pass still allows its one backward
    assert any(np.any(g) for g in _grads(net).values())


def test_a_refused_forward_keeps_the_pending_one():
    net, twin = _net(), _net()
    X, dY = _data()
    net.forward(X, training=True)
    with pytest.raises(ValueError, match="X has 4 features"):
        net.forward(X[:, :4], training=True)
    twin.forward(X, training=True)
    np.testing.assert_array_equal(net.backward(dY), twin.backward(dY))
    _same(_grads(net), _grads(twin))


def test_nd_dY_must_have_the_output_shape():
    net = bx.Network([bx.Dense(4, 3)], input_shape=(2, 4), dtype="float64")
    net.forward(np.ones((5, 2, 4)), training=True)
    with pytest.raises(ValueError, match=r"dY must have shape \(n, 2, 3\), got \(5, 3, 2\)"):
        net.backward(np.ones((5, 3, 2)))
    assert net.backward(np.ones((5, 2, 3))).shape == (5, 2, 4)


def test_training_must_be_a_bool():
    with pytest.raises(TypeError, match="training must be True or False"):
        _net().forward(_data()[0], training=1)


# ---- gradients: zero_grad, accumulation, frozen layers --------------------------------
def test_zero_grad_and_gradient_views():
    net = _net()
    X, dY = _data()
    views = dict(net.named_gradients())
    net.forward(X, training=True)
    net.backward(dY)
    first = _grads(net)
    assert all(np.any(g) for g in first.values())
    _same({k: np.array(v) for k, v in views.items()}, first)  # views of the gradient buffer
    net.zero_grad()
    assert not any(np.any(v) for v in views.values())
    net.forward(X, training=True)
    net.backward(dY)
    _same(_grads(net), first)  # fresh gradients, the same bits as the first time


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_gradients_accumulate_over_forward_backward_pairs(dtype, tol):
    net = _net(dtype=dtype)
    (XA, dA), (XB, dB) = _data(6, 1), _data(4, 2)
    separately = []
    for X, dY in ((XA, dA), (XB, dB)):
        net.zero_grad()
        net.forward(X, training=True)
        net.backward(dY)
        separately.append(_grads(net))
    net.zero_grad()
    for X, dY in ((XA, dA), (XB, dB)):
        net.forward(X, training=True)
        net.backward(dY)
    summed = {k: separately[0][k] + separately[1][k] for k in separately[0]}
    assert_grads_close(_grads(net), summed, tol, "accumulated")


def test_frozen_layers_get_no_gradient_but_pass_dX():
    X, dY = _data()
    twin = _net()
    twin.forward(X, training=True)
    dX_twin = twin.backward(dY)
    expected = _grads(twin)

    net = _net()
    net.layers[0].trainable = False  # the first layer: dX must still flow through it
    net.layers[2].trainable = False  # a Residual block, frozen as a whole
    net.forward(X, training=True)
    np.testing.assert_array_equal(net.backward(dY), dX_twin)
    for name, g in _grads(net).items():
        if name.startswith(("0.", "2.")):
            assert not np.any(g), name
        else:
            np.testing.assert_array_equal(g, expected[name], err_msg=name)

    # A frozen layer keeps the gradient it had: no +=, no reset; opt.step leaves it alone.
    net.layers[0].trainable = True
    net.forward(X, training=True)
    net.backward(dY)
    net.layers[0].trainable = False
    before_grads, before = _grads(net), net.state_dict()
    net.forward(X, training=True)
    net.backward(dY)
    after = _grads(net)
    np.testing.assert_array_equal(after["0.weight"], before_grads["0.weight"])
    assert_close(after["3.weight"], 3 * expected["3.weight"], 1e-12, "unfrozen layer accumulates")
    bx.SGD(lr=0.1).step(net)
    params = net.state_dict()
    for name in ("0.weight", "0.bias", "2.0.weight", "2.0.bias"):
        np.testing.assert_array_equal(params[name], before[name], err_msg=name)
    assert not np.array_equal(params["3.weight"], before["3.weight"])


# ---- dropout in manual mode --------------------------------------------------------------
def test_dropout_masks_come_from_the_networks_seed(restore_threads):
    X = np.ones((8, 5))
    a, b, c = _net(seed=4, dropout=0.5), _net(seed=4, dropout=0.5), _net(seed=5, dropout=0.5)
    c.load_state_dict(a.state_dict())  # same weights, another seed
    first = a.forward(X, training=True)
    bx.set_num_threads(1)
    np.testing.assert_array_equal(b.forward(X, training=True), first)  # same seed, same masks, any thread count
    assert not np.array_equal(c.forward(X, training=True), first)     # another seed, other masks
    second = a.forward(X, training=True)
    assert not np.array_equal(second, first)  # the generator moves on
    np.testing.assert_array_equal(b.forward(X, training=True), second)
    # inference draws nothing: it leaves the sequence of masks as it was
    b.predict(X)
    b.forward(X, training=False)
    np.testing.assert_array_equal(b.forward(X, training=True), a.forward(X, training=True))
    np.testing.assert_array_equal(a.forward(X, training=False), a.predict(X))


# ---- optimizers in manual mode ---------------------------------------------------------
OPTIMIZERS = [
    lambda: bx.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda: bx.Adam(lr=0.01, amsgrad=True),
    lambda: bx.AdamW(lr=0.01),
    lambda: bx.RMSprop(lr=0.01, centered=True, momentum=0.5),
    lambda: bx.Adagrad(lr=0.05, lr_decay=0.01),
    lambda: bx.Rprop(lr=0.01),
]
OPT_IDS = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "rprop"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=OPT_IDS)
def test_step_equals_a_fit_step_bit_for_bit(make_opt, dtype):
    """Three steps on the whole set: fit's, loss_and_gradients + opt.step, and
    forward + backward of dL/dout (mse, computed here as the core does) +
    opt.step give the same bits."""
    X, y = _data(7)
    fitted, by_loss, by_hand = _net(dtype=dtype), _net(dtype=dtype), _net(dtype=dtype)
    bx.Trainer(fitted, loss="mse", optimizer=make_opt(), batch_size=7, shuffle=False).fit(
        X, y, epochs=3, verbose=0, warn_gradients=False)
    opt_loss, opt_hand = make_opt(), make_opt()
    Xc, yc = X.astype(dtype), y.astype(dtype)
    # dL/dout of mse over R rows of C values: 2 (out - y) / (R C), the factor rounded once
    scale = np.dtype(dtype).type(2.0 * (1.0 / 7) / 3)
    for _ in range(3):
        by_loss.loss_and_gradients(X, y, loss="mse")
        opt_loss.step(by_loss)
        by_hand.zero_grad()
        out = by_hand.forward(Xc, training=True)
        by_hand.backward(scale * (out - yc))
        opt_hand.step(by_hand)
    _same(by_loss.state_dict(), fitted.state_dict())
    _same(by_hand.state_dict(), fitted.state_dict())


def test_optimizer_state_dict_round_trip():
    X, y = _data()
    net, twin = _net(), _net()
    opt = bx.Adam(lr=0.01, amsgrad=True)
    for _ in range(3):
        net.loss_and_gradients(X, y, loss="mse")
        opt.step(net)
    sd = opt.state_dict()
    assert sd["name"] == "adam" and sd["steps"] == 3 and sd["hyperparameters"]["amsgrad"] == 1.0
    assert set(sd["state"]) and all(isinstance(v, np.ndarray) for v in sd["state"].values())

    twin.load_state_dict(net.state_dict())
    restored = bx.Adam(lr=0.01, amsgrad=True)
    twin.zero_grad()
    restored.step(twin)  # binds it; zero gradients on fresh state leave Adam's parameters as they are
    _same(twin.state_dict(), net.state_dict())
    restored.load_state_dict(sd)
    again = restored.state_dict()
    assert again["steps"] == 3 and again["hyperparameters"] == sd["hyperparameters"]
    _same(again["state"], sd["state"])
    for model, optimizer in ((net, opt), (twin, restored)):
        model.loss_and_gradients(X, y, loss="mse")
        optimizer.step(model)
    _same(twin.state_dict(), net.state_dict())  # the restored optimizer continues bit for bit

    # a state_dict of another optimizer or other settings is refused, changing nothing
    with pytest.raises(ValueError, match="'adam', not 'sgd'"):
        bx.SGD(lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="amsgrad"):
        bx.Adam(lr=0.01).load_state_dict(sd)
    before = restored.state_dict()
    with pytest.raises(ValueError, match="steps"):
        restored.load_state_dict(dict(sd, steps=-1))
    _same(restored.state_dict()["state"], before["state"])
    assert restored.state_dict()["steps"] == before["steps"]


def test_an_optimizer_refuses_a_second_network():
    X, y = _data()
    a, b = _net(), _net()
    opt = bx.SGD(lr=0.1)
    a.loss_and_gradients(X, y, loss="mse")
    opt.step(a)
    b.loss_and_gradients(X, y, loss="mse")
    before = b.state_dict()
    with pytest.raises(ValueError, match="one optimizer per network"):
        opt.step(b)
    _same(b.state_dict(), before)
    with pytest.raises(TypeError, match="Network"):
        opt.step(b.layers[0])


@pytest.mark.parametrize("make_opt", OPTIMIZERS, ids=OPT_IDS)
def test_a_non_finite_gradient_leaves_everything_unchanged(make_opt):
    X, y = _data()
    net = _net()
    opt = make_opt()
    net.loss_and_gradients(X, y, loss="mse")
    opt.step(net)
    params, state = net.state_dict(), opt.state_dict()
    net.loss_and_gradients(X, y, loss="mse")
    dict(net.named_gradients())["2.0.weight"][1, 2] = np.nan  # the views are writable
    with pytest.raises(bx.NonFiniteError, match="non-finite gradient"):
        opt.step(net)
    _same(net.state_dict(), params)
    assert opt.state_dict()["steps"] == state["steps"]
    _same(opt.state_dict()["state"], state["state"])


@pytest.mark.parametrize("dtype,lr", [("float64", 1e308), ("float32", 1e38)])
def test_an_update_that_overflows_is_undone(dtype, lr):
    X, y = _data()
    net = _net(dtype=dtype)
    params = net.state_dict()
    net.loss_and_gradients(X, 1e6 * y, loss="mse")  # gradients of order 1e6: lr * g overflows
    opt = bx.SGD(lr=lr, momentum=0.9)
    with pytest.raises(bx.NonFiniteError, match="undone"):
        opt.step(net)
    _same(net.state_dict(), params)
    assert opt.state_dict()["steps"] == 0  # the state restarted


# ---- core bugs these tests found (they fail until the core is fixed) -----------------------
def test_a_backward_that_overflows_raises_and_keeps_the_gradients():
    """Finite dY and weights can overflow: dX = dY W = 1e30 * 1e30 in float32.
    backward raises NonFiniteError instead of handing back inf, and the
    gradients stay as they were."""
    net = bx.Network([bx.Dense(2, 2, bias=False)], seed=0, dtype="float32")
    net.layers[0].weight[...] = 1e30
    net.forward(np.full((1, 2), 1e-30), training=True)  # output 2: finite
    with pytest.raises(bx.NonFiniteError):
        net.backward(np.full((1, 2), 1e30))
    assert np.isfinite(net.named_gradients()[0][1]).all()


@pytest.mark.parametrize("change", ["opt.step", "load_state_dict"])
def test_new_weights_end_the_pending_forward(change):
    """Like fit, opt.step(net) and load_state_dict between forward and backward
    end the forward pass: backward would otherwise combine the activations of
    the old weights with the new weights (dX = dz W_new), a gradient of
    neither network. torch raises for this too ("modified by an inplace
    operation"); a GAN that steps D between D's forward and the backward to G
    is the usual victim."""
    X, dY = _data()
    net = _net()
    net.forward(X, training=True)
    net.backward(dY)  # gradients to step with
    net.forward(X, training=True)
    if change == "opt.step":
        bx.SGD(lr=0.5).step(net)
    else:
        net.load_state_dict({k: v + 1 for k, v in net.state_dict().items()})
    with pytest.raises(ValueError, match="forward"):
        net.backward(dY)


def test_optimizer_state_loads_into_a_named_network_without_a_step():
    X, dY = _data()
    net, other = _net(), _net()
    opt = bx.Adam(lr=1e-2)
    for _ in range(2):
        net.forward(X, training=True)
        net.backward(dY)
        opt.step(net)
        net.zero_grad()
    saved = opt.state_dict()
    fresh = bx.Adam(lr=1e-2)
    with pytest.raises(ValueError, match="pass the network"):
        fresh.load_state_dict(saved)
    bad = dict(saved, state={k: v[:-1] for k, v in saved["state"].items()})
    with pytest.raises(ValueError, match="one per trainable parameter"):
        fresh.load_state_dict(bad, network=other)
    before = other.state_dict()
    fresh.load_state_dict(saved, network=other)   # binds, steps nothing
    assert all(np.array_equal(v, other.state_dict()[k]) for k, v in before.items())
    assert fresh.state_dict()["steps"] == 2
    with pytest.raises(ValueError, match="another network"):
        fresh.step(net)
