"""The N-d layer API: per-sample shapes from the core, the registries, the
layer kinds' construction errors, and N-d networks through fit, save/load
and checkpoints. Gradients of every kind are checked in test_layer_kinds.py."""

from __future__ import annotations

import re

import numpy as np
import pytest

import backpropx as bx
from backpropx import _core
from backpropx.layers import LAYER_KINDS, layer_from_config
from backpropx.network import LOSSES


# ---- registries: the Python lists are the core's ------------------------------------
def test_python_lists_equal_the_core_registries():
    assert set(LAYER_KINDS) == set(_core.layer_kinds)
    assert bx.ACTIVATIONS == tuple(_core.activation_names)
    assert LOSSES == tuple(_core.loss_names)
    optimizer_classes = {cls.name for cls in bx.Optimizer.__subclasses__()}
    assert optimizer_classes == set(_core.optimizer_names)
    for kind, cls in LAYER_KINDS.items():
        assert cls.kind == kind


@pytest.mark.parametrize("layer", [
    bx.Dense(3, 4, activation="relu", bias=False, init="lecun"), bx.Dropout(0.2, features=3),
    bx.Activation("gelu"), bx.Flatten(), bx.Reshape((3, 1)), bx.Residual([bx.Dense(3, 3), bx.Dropout(0.1)])])
def test_configs_use_only_keys_the_core_accepts(layer):
    cfg = layer._config()
    assert set(cfg) - {"kind"} <= set(_core.layer_kinds[cfg["kind"]])
    assert repr(layer_from_config(cfg)) == repr(layer)


def test_unknown_kinds_and_keys_name_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown layer kind 'conv9d'; expected one of: dense, dropout"):
        _core.Network_float64([{"kind": "conv9d"}], None, 0)
    with pytest.raises(ValueError, match=r"dense layer has no option 'units'; its options are: in_features, "
                                         r"out_features, bias, activation, init"):
        _core.Network_float64([{"kind": "dense", "in_features": 2, "out_features": 2, "units": 3}], None, 0)
    with pytest.raises(ValueError, match=r"flatten layer has no option 'axis'; its options are: \(none\)"):
        _core.Network_float64([{"kind": "flatten", "axis": 1}], [2, 2], 0)
    with pytest.raises(ValueError, match="unknown layer kind 'conv9d'"):
        layer_from_config({"kind": "conv9d"})
    with pytest.raises(ValueError, match="dense layer has no option 'units'"):
        layer_from_config({"kind": "dense", "in_features": 2, "out_features": 2, "units": 3})


# ---- shapes --------------------------------------------------------------------------
def test_shapes_come_from_the_core():
    net = bx.Network([bx.Dense(5, 6, activation="relu"), bx.Reshape((7, 2, 3)), bx.Dense(3, 4),
                      bx.Activation("softmax"), bx.Flatten(), bx.Dropout(0.1),
                      bx.Residual([bx.Dense(56, 3), bx.Dense(3, 56)])], input_shape=(7, 5))
    assert net.input_shape == (7, 5) and net.output_shape == (56,)
    assert [layer.output_shape for layer in net.layers] == [(7, 6), (7, 2, 3), (7, 2, 4), (7, 2, 4), (56,),
                                                          (56,), (56,)]
    assert [layer.input_shape for layer in net.layers[6].layers] == [(56,), (3,)]
    assert net.layers[0].input_shape == (7, 5)
    assert net.in_features == 35 and net.out_features == 56


def test_flatten_reshape_and_dense_over_the_last_axis():
    net = bx.Network([bx.Flatten(), bx.Reshape((4, -1)), bx.Dense(6, 2)], input_shape=(2, 3, 4), seed=1,
                     dtype="float64")
    assert [layer.output_shape for layer in net.layers] == [(24,), (4, 6), (4, 2)]
    X = np.random.default_rng(0).standard_normal((5, 2, 3, 4))
    W, b = net.layers[2].weight, net.layers[2].bias
    # torch's flatten(1) order, then a row-major reshape and a Linear over the last axis.
    np.testing.assert_allclose(net.predict(X), X.reshape(5, 4, 6) @ W.T + b, rtol=1e-13, atol=1e-13)
    assert net.num_params == 14


def test_dense_after_a_multi_axis_output_names_flatten():
    with pytest.raises(ValueError, match=r"layer 1 \(dense\): expects in_features=24 values on the last axis, "
                                         r"but receives per-sample shape \(2, 3, 4\); add bx.Flatten\(\) before it"):
        bx.Network([bx.Activation("relu"), bx.Dense(24, 3)], input_shape=(2, 3, 4))
    with pytest.raises(ValueError, match=r"add bx.Flatten\(\) before it and set in_features=24"):
        bx.Network([bx.Activation("relu"), bx.Dense(5, 3)], input_shape=(2, 3, 4))


@pytest.mark.parametrize("layers, shape, match", [
    ([bx.Flatten()], None, "needs the network's input_shape"),
    ([bx.Activation("relu")], None, "needs the network's input_shape"),
    ([bx.Residual([bx.Dense(3, 3)])], None, "needs the network's input_shape"),
    ([bx.Residual([bx.Dense(3, 2)])], (3,), r"must keep the shape of its input: it receives \(3,\) per sample "
                                            r"but its layers output \(2,\)"),
    ([bx.Reshape((5,))], (2, 3), r"cannot reshape per-sample shape \(2, 3\) \(6 values\) into \(5,\)"),
    ([bx.Reshape((4, -1))], (2, 3), "do not divide by 4"),
    ([bx.Dense(3, 2)], (4,), "expects in_features=3"),
])
def test_layers_that_do_not_fit_are_refused(layers, shape, match):
    with pytest.raises(ValueError, match=match):
        bx.Network(layers, input_shape=shape)


@pytest.mark.parametrize("shape, exc, match", [
    ((), ValueError, "at least one axis"), ((2, 0), ValueError, "positive integers"),
    ((2.5,), ValueError, "positive integers"), ("abc", ValueError, "positive integers"),
    (object(), TypeError, "tuple of sizes"), ((2**30, 2**30), ValueError, "too large"),
])
def test_bad_input_shapes(shape, exc, match):
    with pytest.raises(exc, match=match):
        bx.Network([bx.Flatten()], input_shape=shape)


def test_a_rejected_network_leaves_its_layers_reusable():
    drop, dense = bx.Dropout(0.3), bx.Dense(4, 2)
    with pytest.raises(ValueError):
        bx.Network([bx.Dense(3, 5), drop, dense])  # 5 values reach Dense(4, 2)
    assert drop.network is None and dense.network is None and drop.features is None
    net = bx.Network([bx.Dense(3, 4), drop, dense])
    assert drop.output_shape == (4,) and net.output_shape == (2,)


def test_x_of_the_wrong_shape_is_refused_with_the_expected_shape():
    net = bx.Network([bx.Flatten(), bx.Dense(6, 2)], input_shape=(2, 3))
    with pytest.raises(ValueError, match=re.escape("X must have shape (n, 2, 3), got (4, 6)")):
        net.predict(np.zeros((4, 6)))
    with pytest.raises(ValueError, match=re.escape("use X[None] for a single sample")):
        net.predict(np.zeros((2, 3)))
    assert net.predict(np.zeros((4, 2, 3))).shape == (4, 2)


# ---- containers and parameters -------------------------------------------------------
def test_residual_parameters_live_in_the_network_buffers():
    block = bx.Residual([bx.Dense(4, 4, activation="relu"), bx.Dense(4, 4, bias=False)])
    net = bx.Network([bx.Dense(3, 4), block, bx.Dense(4, 2)], seed=3, dtype="float64")
    assert [name for name, _ in net.named_parameters()] == [
        "0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.1.weight", "2.weight", "2.bias"]
    inner = block.layers[0]
    inner.weight[...] = 0.5  # a view: the network sees it
    assert np.all(net.state_dict()["1.0.weight"] == 0.5)
    assert inner.input_shape == (4,) and block.layers[1].output_shape == (4,)
    X = np.random.default_rng(1).standard_normal((3, 3))
    h = X @ net.layers[0].weight.T + net.layers[0].bias
    f = np.maximum(h @ inner.weight.T + inner.bias, 0) @ block.layers[1].weight.T
    np.testing.assert_allclose(net.predict(X), (h + f) @ net.layers[2].weight.T + net.layers[2].bias, rtol=1e-12)
    with pytest.raises(ValueError, match="frozen with its block"):
        inner.trainable = False
    block.trainable = False
    _, grads = net.loss_and_gradients(X, np.zeros((3, 2)), loss="mse")
    assert not grads["1.0.weight"].any() and grads["0.weight"].any()


def test_l2_applies_to_weights_wherever_they_are_not_biases():
    """Trainer(l2=) reads ParamSpec, not tensor names: inner weights count, biases never."""
    net = bx.Network([bx.Residual([bx.Dense(3, 3)]), bx.Dense(3, 1)], input_shape=(3,), seed=0, dtype="float64")
    tensors = {f"{k}.{name}": l2 for k, name, _s, _o, l2 in net._core.tensors()}
    assert tensors == {"0.0.weight": True, "0.0.bias": False, "1.weight": True, "1.bias": False}
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    before = net.state_dict()
    bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=1.0), batch_size=4, shuffle=False, l2=0.5).fit(
        X, y, epochs=1, verbose=0, warn_gradients=False)
    after = net.state_dict()
    net2 = bx.Network([bx.Residual([bx.Dense(3, 3)]), bx.Dense(3, 1)], input_shape=(3,), seed=0, dtype="float64")
    _, grads = net2.loss_and_gradients(X, y, loss="mse")
    for key in before:
        decay = 0.5 * before[key] / 4 if tensors[key] else 0.0
        np.testing.assert_allclose(after[key], before[key] - (grads[key] + decay), rtol=1e-12, atol=1e-14)


def test_reusing_trained_layers_copies_them_with_their_weights():
    first = bx.Network([bx.Dense(3, 4), bx.Residual([bx.Dense(4, 4, activation="tanh")])], seed=1)
    inner = first.layers[1].layers[0]
    second = bx.Network([bx.Residual([inner]), first.layers[0].__class__(4, 2)], input_shape=(4,), seed=9)
    np.testing.assert_array_equal(second.state_dict()["0.0.weight"], first.state_dict()["1.0.weight"])
    assert inner.network is first  # the source keeps its layer


# ---- N-d networks through fit, save/load and checkpoints -------------------------------
def sequence_net(dtype: str = "float64", seed: int = 0) -> bx.Network:
    return bx.Network([bx.Dense(3, 8, activation="tanh"), bx.Residual([bx.Dense(8, 8, activation="relu")]),
                       bx.Dropout(0.1), bx.Dense(8, 5)], input_shape=(6, 3), seed=seed, dtype=dtype)


def sequence_data(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6, 3))
    y = (X.sum(axis=2) > 0).astype(int) + 2 * (X[:, :, 0] > 1)  # a label per time step
    return X, y


def test_per_timestep_cross_entropy_trains_and_evaluates():
    X, y = sequence_data()
    net = sequence_net()
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=1)
    history = trainer.fit(X, y, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    metrics = trainer.evaluate(X, y)
    predicted = net.predict(X).argmax(axis=-1)
    assert metrics["accuracy"] == pytest.approx((predicted == y).mean())
    assert metrics["accuracy"] > 0.8
    with pytest.raises(ValueError, match=re.escape("expected (40, 6, 5) or integer labels (40, 6)")):
        trainer.evaluate(X, y[:, :5])


def test_nd_network_saves_loads_and_resumes(tmp_path):
    X, y = sequence_data(seed=2)
    net = sequence_net(seed=4)
    net.save(tmp_path / "seq.safetensors")
    loaded = bx.Network.load(tmp_path / "seq.safetensors")
    assert loaded.input_shape == (6, 3) and repr(loaded) == repr(net)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))

    def trainer_for(n):
        return bx.Trainer(n, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=3)

    full = trainer_for(sequence_net(seed=4))
    full.fit(X, y, epochs=4, verbose=0)
    part = trainer_for(sequence_net(seed=4))
    part.fit(X, y, epochs=2, verbose=0, callbacks=[bx.ModelCheckpoint(tmp_path / "ck.safetensors")])
    resumed = trainer_for(sequence_net(seed=4))
    resumed.fit(X, y, epochs=4, verbose=0, resume_from=tmp_path / "ck.safetensors")
    for key, value in full.network.state_dict().items():
        np.testing.assert_array_equal(resumed.network.state_dict()[key], value)
