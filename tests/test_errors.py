"""Bad input gives a clear ValueError/TypeError (or MemoryError) naming the
problem, never a crash or a silent NaN, and leaves the network exactly as it
was (its state_dict is compared bit for bit before and after)."""

from __future__ import annotations

import contextlib
import math
import re
import warnings

import numpy as np
import pytest

import backpropx as bx


def make_net(dtype="float64"):
    return bx.Network([bx.Dense(4, 6, activation="tanh"), bx.Dense(6, 3, activation="softmax")],
                      seed=0, dtype=dtype)


@contextlib.contextmanager
def unchanged(net):
    before = net.state_dict()
    yield
    after = net.state_dict()
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=f"{key} changed")


def raises(exc, match, net, fn, *args, **kwargs):
    """fn(*args) raises exc with a message matching `match`; net is unchanged."""
    with unchanged(net), pytest.raises(exc, match=match):
        fn(*args, **kwargs)


RNG = np.random.default_rng(0)
X = RNG.standard_normal((10, 4))
Y = RNG.integers(0, 3, 10)


def entry_points(net):
    """Every call that takes (X, y) or X: (name, callable(X, y))."""
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=4)
    return [
        ("predict", lambda x, y: net.predict(x)),
        ("loss_and_gradients", lambda x, y: net.loss_and_gradients(x, y)),
        ("fit", lambda x, y: trainer.fit(x, y, epochs=1, verbose=0)),
        ("evaluate", lambda x, y: trainer.evaluate(x, y)),
        ("validation_data", lambda x, y: trainer.fit(X, Y, epochs=1, verbose=0, validation_data=(x, y))),
    ]


ENTRY_NAMES = ["predict", "loss_and_gradients", "fit", "evaluate", "validation_data"]


def _entry(net, name):
    return dict(entry_points(net))[name]


# ---- X -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ENTRY_NAMES)
@pytest.mark.parametrize("bad,exc,match", [
    (np.zeros((10, 5)), ValueError, r"5 features per sample, but the network expects 4"),
    (np.zeros((10, 3)), ValueError, r"3 features per sample, but the network expects 4"),
    (np.zeros(4), ValueError, r"2-dimensional.*shape \(4,\).*reshape\(1, -1\)"),
    (np.zeros((10, 4, 1)), ValueError, r"2-dimensional.*\(10, 4, 1\)"),
    (np.zeros(()), ValueError, r"2-dimensional"),
    (np.full((10, 4), "a"), TypeError, r"real numbers.*string"),
    (np.zeros((10, 4), dtype=object), TypeError, r"real numbers.*object"),
    (np.zeros((10, 4), dtype=complex), TypeError, r"real numbers.*complex"),
    ([[1, 2], [3]], ValueError, r"could not be converted"),
], ids=["5-features", "3-features", "1d", "3d", "0d", "str", "object", "complex", "ragged"])
def test_bad_X(where, bad, exc, match):
    net = make_net()
    fn = _entry(net, where)
    raises(exc, match, net, fn, bad, Y)  # X is checked before y


@pytest.mark.parametrize("where", ENTRY_NAMES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_X(where, value):
    net = make_net()
    bad = X.copy()
    bad[3, 2] = value
    raises(ValueError, r"non-finite value .* at index \(3, 2\)", net, _entry(net, where), bad, Y)


def test_float64_values_that_overflow_float32():
    """Finite float64 values beyond float32's range are refused, not turned into inf."""
    net = make_net("float32")
    big = X.copy()
    big[1, 2] = 1e300
    raises(ValueError, r"X holds a value \(1e\+300\) at index \(1, 2\) too large for float32", net, net.predict, big)
    raises(ValueError, r"too large for float32", net, net.loss_and_gradients, big, Y)
    probs = np.full((10, 3), 0.2)
    mse_net = bx.Network([bx.Dense(4, 3)], dtype="float32")
    raises(ValueError, r"y holds values too large for float32", mse_net, mse_net.loss_and_gradients, X,
           probs * 1e300, loss="mse")
    sd = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    sd["0.bias"][0] = 1e300
    raises(ValueError, r"state_dict\['0.bias'\] holds values too large for float32", net, net.load_state_dict, sd)


# ---- y ---------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["loss_and_gradients", "fit", "evaluate", "validation_data"])
@pytest.mark.parametrize("bad,exc,match", [
    (np.array([0, 1, 3, 0, 0, 0, 0, 0, 0, 0]), ValueError, r"label 3, outside \[0, 3\)"),
    (np.array([0, -1, 2, 0, 0, 0, 0, 0, 0, 0]), ValueError, r"label -1, outside \[0, 3\)"),
    (np.array([0, 1.5, 2, 0, 0, 0, 0, 0, 0, 0]), ValueError, r"must be integers"),
    (np.array([0, np.nan, 2, 0, 0, 0, 0, 0, 0, 0]), ValueError, r"must be integers"),
    (np.zeros(9, dtype=int), ValueError, r"9 samples but X has 10"),
    (np.zeros(11, dtype=int), ValueError, r"11 samples but X has 10"),
    (np.zeros((10, 2)), ValueError, r"3 outputs"),
    (np.zeros((10, 3, 1)), ValueError, r"1- or 2-dimensional"),
    (np.zeros(10, dtype=complex), TypeError, r"real numbers.*complex"),
    (np.zeros(10, dtype=bool), TypeError, r"booleans"),
    (np.full((10, 3), np.inf), ValueError, r"non-finite"),
    (np.full((10, 3), 1.5), ValueError, r"\[0, 1\]"),
], ids=["label-too-big", "label-negative", "label-float", "label-nan", "too-few", "too-many", "wrong-width",
        "3d", "complex", "bool", "inf-probs", "probs>1"])
def test_bad_y_cross_entropy(where, bad, exc, match):
    net = make_net()
    raises(exc, match, net, _entry(net, where), X, bad)


# Text labels are class labels for the trainer (tests/test_labels.py); one label
# for a 3-output network, or text where the network has no classes, is refused.
@pytest.mark.parametrize("where,exc,match", [
    ("loss_and_gradients", TypeError, r"real numbers.*string"),
    ("fit", ValueError, r"1 distinct labels \('a'\) but the network has 3 outputs"),
    ("evaluate", ValueError, r"text labels, but the network has no classes"),
    ("validation_data", ValueError, r"text labels, but the network has no classes"),
])
def test_bad_text_y_cross_entropy(where, exc, match):
    net = make_net()
    raises(exc, match, net, _entry(net, where), X, np.full(10, "a"))


@pytest.mark.parametrize("loss", ["mse", "binary_cross_entropy"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_targets(loss, value):
    net = bx.Network([bx.Dense(4, 2, activation="sigmoid")], dtype="float64")
    y = np.full((10, 2), 0.5)
    y[4, 1] = value
    raises(ValueError, "non-finite", net, net.loss_and_gradients, X, y, loss=loss)
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.SGD(lr=0.1))
    raises(ValueError, "non-finite", net, trainer.fit, X, y, verbose=0)


def test_bce_targets_outside_0_1():
    net = bx.Network([bx.Dense(4, 1, activation="sigmoid")], dtype="float64")
    raises(ValueError, r"\[0, 1\]", net, net.loss_and_gradients, X, np.full(10, 2.0), loss="binary_cross_entropy")


def test_mse_target_shape():
    net = bx.Network([bx.Dense(4, 2)], dtype="float64")
    raises(ValueError, r"shape \(10,\), but the network has 2 outputs", net, net.loss_and_gradients, X,
           np.zeros(10), loss="mse")


def test_empty_data():
    net = make_net()
    empty = np.zeros((0, 4))
    raises(ValueError, "no samples", net, net.loss_and_gradients, empty, np.zeros(0, dtype=int))
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1))
    raises(ValueError, "no samples", net, trainer.fit, empty, np.zeros(0, dtype=int), verbose=0)
    assert net.predict(empty).shape == (0, 3)


def test_failed_fit_leaves_trainer_state_alone():
    """A rejected fit changes neither the weights nor the optimizer state nor
    the shuffling generator: training then continues bit for bit as if the
    failed call had not happened."""
    a, b = make_net(), make_net()
    ta = bx.Trainer(a, optimizer=bx.Adam(lr=1e-2), batch_size=4, seed=1)
    tb = bx.Trainer(b, optimizer=bx.Adam(lr=1e-2), batch_size=4, seed=1)
    ta.fit(X, Y, epochs=1, verbose=0)
    tb.fit(X, Y, epochs=1, verbose=0)
    bad = Y.copy()
    bad[-1] = 7
    raises(ValueError, "label 7", b, tb.fit, X, bad, epochs=1, verbose=0)
    raises(ValueError, "features", b, tb.fit, X[:, :3], Y, epochs=1, verbose=0)
    ta.fit(X, Y, epochs=2, verbose=0)
    tb.fit(X, Y, epochs=2, verbose=0)
    for key, p in a.state_dict().items():
        np.testing.assert_array_equal(p, b.state_dict()[key])
    assert ta.epochs_done == tb.epochs_done == 3


# ---- hyper-parameters --------------------------------------------------------------
@pytest.mark.parametrize("make,exc,match", [
    (lambda: bx.SGD(lr=-1e-9), ValueError, "Invalid learning rate"),
    (lambda: bx.SGD(lr=-0.1), ValueError, "Invalid learning rate"),
    (lambda: bx.Adam(lr=-1), ValueError, "Invalid learning rate"),
    (lambda: bx.RMSprop(lr=-1e-3), ValueError, "Invalid learning rate"),
    (lambda: bx.Adagrad(lr=-1e-3), ValueError, "Invalid learning rate"),
    (lambda: bx.Rprop(lr=-0.5), ValueError, "Invalid learning rate"),
    (lambda: bx.AdamW(lr=-2.0), ValueError, "Invalid learning rate"),
    (lambda: bx.Adam(betas=(1.0, 0.5)), ValueError, "Invalid beta parameter at index 0"),
    (lambda: bx.Adam(betas=(0.5, -0.5)), ValueError, "Invalid beta parameter at index 1"),
    (lambda: bx.AdamW(betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1"),
    (lambda: bx.Adam(betas=(0.9,)), TypeError, "betas must be a pair"),
    (lambda: bx.SGD(lr=float("inf")), ValueError, "lr must be finite"),
    (lambda: bx.SGD(lr=None), TypeError, "lr must be a real number"),
    (lambda: bx.SGD(lr=True), TypeError, "lr must be a real number"),
])
def test_bad_optimizer_hyperparameters(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"batch_size": 0}, ValueError, "batch_size must be at least 1, got 0"),
    ({"batch_size": -3}, ValueError, "batch_size must be at least 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
    ({"loss": "hinge"}, ValueError, r"unknown loss 'hinge'; expected one of: mse, cross_entropy"),
    ({"optimizer": "adam"}, TypeError, r"optimizer must be a backpropx optimizer"),
    ({"optimizer": bx.SGD}, TypeError, r"optimizer must be a backpropx optimizer"),
    ({"seed": -1}, ValueError, "seed must be at least 0"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
])
def test_bad_trainer_arguments(kwargs, exc, match):
    net = make_net()
    with unchanged(net), pytest.raises(exc, match=match):
        bx.Trainer(net, **kwargs)


def test_trainer_needs_a_network():
    with pytest.raises(TypeError, match="network must be a backpropx Network"):
        bx.Trainer([bx.Dense(2, 2)])


@pytest.mark.parametrize("epochs,exc,match", [(-1, ValueError, "epochs must be at least 0, got -1"),
                                              (1.5, TypeError, "epochs must be an integer"),
                                              ("3", TypeError, "epochs must be an integer")])
def test_bad_epochs(epochs, exc, match):
    net = make_net()
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1))
    raises(exc, match, net, trainer.fit, X, Y, epochs=epochs, verbose=0)


def test_zero_epochs_is_a_no_op():
    net = make_net()
    with unchanged(net):
        history = bx.Trainer(net, optimizer=bx.SGD(lr=0.1)).fit(X, Y, epochs=0, verbose=0)
    assert len(history) == 0


def test_bad_validation_data():
    net = make_net()
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1))
    raises(TypeError, "validation_data must be a pair", net, trainer.fit, X, Y, validation_data=X, verbose=0)
    raises(ValueError, "validation X", net, trainer.fit, X, Y, validation_data=(X[:, :2], Y), verbose=0)


# ---- names ------------------------------------------------------------------------
def test_unknown_names():
    with pytest.raises(ValueError, match=r"unknown activation 'relu6'; expected None or one of: .*sigmoid"):
        bx.Dense(2, 2, activation="relu6")
    with pytest.raises(ValueError, match=r"unknown activation"):
        bx.Dense(2, 2, activation=3)
    with pytest.raises(ValueError, match=r"unknown init 'kaiming'; expected one of: .*he"):
        bx.Dense(2, 2, init="kaiming")
    net = make_net()
    raises(ValueError, r"unknown loss 'l1'; expected one of", net, net.loss_and_gradients, X, Y, loss="l1")
    raises(ValueError, r"unknown loss", net, net.loss_and_gradients, X, Y, loss=None)
    from backpropx import _core

    with pytest.raises(ValueError, match=r"unknown optimizer 'lbfgs'; expected one of: sgd, adam"):
        _core.Optimizer_float64("lbfgs", {})
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"):
        bx.Network([bx.Dense(2, 2)], dtype="float16")
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"):
        bx.Network([bx.Dense(2, 2)], dtype="banana")


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((0, 3), {}, ValueError, "in_features must be at least 1, got 0"),
    ((3, -1), {}, ValueError, "out_features must be at least 1"),
    ((2.0, 3), {}, TypeError, "in_features must be an integer"),
    ((2, 3), {"bias": "no"}, TypeError, "bias must be True or False"),
])
def test_bad_dense_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        bx.Dense(*args, **kwargs)


# ---- network structure -----------------------------------------------------------
def test_bad_networks():
    with pytest.raises(ValueError, match="at least one layer"):
        bx.Network([])
    with pytest.raises(ValueError, match=re.escape("layer 1 (dense): expects in_features=5 values on the last "
                                                   "axis, but receives per-sample shape (4,) (the output of "
                                                   "layer 0 (dense))")):
        bx.Network([bx.Dense(3, 4), bx.Dense(5, 2)])
    with pytest.raises(TypeError, match="wrap it in a list"):
        bx.Network(bx.Dense(3, 4))
    with pytest.raises(TypeError, match="layer 1 is str"):
        bx.Network([bx.Dense(3, 4), "relu"])
    layer = bx.Dense(3, 3)
    with pytest.raises(ValueError, match="appears twice"):
        bx.Network([layer, layer])
    with pytest.raises(ValueError, match="seed must be at least 0"):
        bx.Network([bx.Dense(2, 2)], seed=-1)
    with pytest.raises(ValueError, match="below 2\\*\\*64"):
        bx.Network([bx.Dense(2, 2)], seed=2**64)
    with pytest.raises(RuntimeError, match="not part of a Network"):
        bx.Dense(2, 2).weight  # noqa: B018


def test_huge_layer_is_a_memory_error():
    with pytest.raises(MemoryError):
        bx.Network([bx.Dense(10**7, 10**7)])
    with pytest.raises(MemoryError):
        bx.Network([bx.Dense(10**7, 10**7)], dtype="float64")


def test_huge_batch_is_a_memory_error_not_a_crash():
    """A batch whose work buffers cannot fit is refused before allocation."""
    net = bx.Network([bx.Dense(1, 2**20), bx.Dense(2**20, 1)], dtype="float32")
    X = np.ones((2**20, 1), dtype=np.float32)  # the work buffers would need 2**40 activations
    with unchanged(net), pytest.raises(MemoryError):
        bx.Trainer(net, loss="mse", batch_size=2**20).fit(X, np.zeros(2**20, dtype=np.float32), verbose=0)


# ---- state dicts --------------------------------------------------------------------
def _sd(net):
    return net.state_dict()


@pytest.mark.parametrize("edit,exc,match", [
    (lambda sd: sd.pop("1.bias"), ValueError, r"missing keys \['1.bias'\]"),
    (lambda sd: sd.update({"2.weight": np.zeros((3, 3))}), ValueError, r"unexpected keys \['2.weight'\]"),
    (lambda sd: sd.update({"0.weight": np.zeros((4, 6))}), ValueError, r"'0.weight'.*shape \(4, 6\), expected \(6, 4\)"),
    (lambda sd: sd.update({"0.bias": np.zeros((6, 1))}), ValueError, r"'0.bias'.*shape \(6, 1\), expected \(6,\)"),
    (lambda sd: sd["1.weight"].__setitem__((0, 0), np.nan), ValueError, r"'1.weight'.*non-finite"),
    (lambda sd: sd["0.bias"].__setitem__(5, np.inf), ValueError, r"'0.bias'.*non-finite"),
    (lambda sd: sd.update({"0.bias": np.full(6, "x")}), TypeError, r"'0.bias'.*real numbers"),
    (lambda sd: sd.update({"0.bias": np.zeros(6, dtype=complex)}), TypeError, r"'0.bias'.*real numbers"),
], ids=["missing", "extra", "transposed", "bias-shape", "nan", "inf", "str", "complex"])
def test_bad_state_dicts(edit, exc, match):
    net = make_net()
    sd = _sd(net)
    sd = {k: v * 0 + 0.5 for k, v in sd.items()}  # valid values that differ from the network's
    edit(sd)
    raises(exc, match, net, net.load_state_dict, sd)


def test_state_dict_not_a_mapping():
    net = make_net()
    raises(TypeError, "must be a mapping", net, net.load_state_dict, list(net.state_dict().values()))


def test_partly_bad_state_dict_changes_nothing():
    """The first entries are valid and the last is not: nothing is loaded."""
    net = make_net()
    sd = {k: np.full_like(v, 0.25) for k, v in net.state_dict().items()}
    last = list(sd)[-1]
    sd[last] = sd[last].copy()
    sd[last][0] = np.nan
    raises(ValueError, "non-finite", net, net.load_state_dict, sd)


# ---- training that diverges ---------------------------------------------------------
def test_divergence_raises_instead_of_silent_nan():
    net = bx.Network([bx.Dense(1, 1, bias=False)], dtype="float32")
    net.layers[0].weight[...] = 1.0
    x = np.array([[1e18], [3e18]])
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1.0), batch_size=2, shuffle=False)
    with pytest.raises(FloatingPointError, match="non-finite"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*gradients of layer")
            trainer.fit(x, np.zeros(2), epochs=3, verbose=0)
    assert all(math.isfinite(v) for v in net.layers[0].weight.ravel())
