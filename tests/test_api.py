"""The public API surface: reprs, docstrings, state dicts, save/load, dtypes
and memory layouts, threads and seeds (bit-identical results), History and
evaluate, frozen layers, initialisation statistics and every GEMM kernel."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from conftest import (
    assert_close,
    assert_grads_close,
    build,
    random_specs,
    random_targets,
    randomize,
    ref,
    ref_layers,
)

import backpropx as bx


def small_net(dtype="float64", seed=0):
    return bx.Network([bx.Dense(6, 9, activation="relu"), bx.Dense(9, 5, activation="tanh", bias=False),
                       bx.Dense(5, 3, activation="softmax")], seed=seed, dtype=dtype)


def classification_data(n=40, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, np.minimum(y, c - 1)


def same_bits(a: bx.Network, b: bx.Network) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


# ---- reprs and docstrings ----------------------------------------------------
def test_reprs():
    assert repr(bx.Dense(3, 4)) == "Dense(3, 4)"
    assert repr(bx.Dense(3, 4, activation="relu", bias=False, init="he")) == \
        "Dense(3, 4, activation='relu', bias=False, init='he')"
    net = small_net()
    text = repr(net)
    assert text.startswith("Network([") and "Dense(6, 9, activation='relu')" in text
    assert "float64" in text and f"{net.num_params:,}" in text
    net.layers[0].trainable = False
    assert "trainable=False" in repr(net.layers[0])
    assert repr(bx.SGD(lr=0.5, momentum=0.9)).startswith("SGD(lr=0.5, momentum=0.9")
    assert repr(bx.Adam()).startswith("Adam(lr=0.001")
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=7)
    assert repr(trainer).startswith("Trainer(") and "batch_size=7" in repr(trainer)
    assert repr(bx.History()) == "History(epochs=0)"
    X, y = classification_data()
    history = trainer.fit(X, y, epochs=2, verbose=0)
    assert repr(history).startswith("History(epochs=2") and "loss=" in repr(history)


PUBLIC = [name for name in bx.__all__ if not isinstance(getattr(bx, name), (str, tuple, list, dict))]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_objects_have_docstrings(name):
    obj = getattr(bx, name)
    assert (inspect.getdoc(obj) or "").strip(), f"bx.{name} has no docstring"


@pytest.mark.parametrize("cls", [bx.Network, bx.Dense, bx.Trainer, bx.Optimizer, bx.History],
                         ids=lambda c: c.__name__)
def test_public_methods_have_docstrings(cls):
    missing = [attr for attr, value in vars(cls).items()
               if not attr.startswith("_") and inspect.isfunction(value) and not inspect.getdoc(getattr(cls, attr))]
    assert not missing, f"{cls.__name__} methods without a docstring: {missing}"


def test_all_names_exist():
    assert len(set(bx.__all__)) == len(bx.__all__)
    for name in bx.__all__:
        assert hasattr(bx, name)
    assert set(bx.ACTIVATIONS) >= {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "softmax"}
    assert set(bx.LOSSES) == {"mse", "cross_entropy", "binary_cross_entropy", "poisson"}


# ---- state dicts, save/load ----------------------------------------------------
def test_state_dict_keys_and_shapes():
    net = small_net()
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "2.weight", "2.bias"]  # no "1.bias"
    assert sd["0.weight"].shape == (9, 6) and sd["0.bias"].shape == (9,)
    assert sd["1.weight"].shape == (5, 9) and sd["2.weight"].shape == (3, 5) and sd["2.bias"].shape == (3,)
    assert net.num_params == sum(p.size for p in sd.values()) == 6 * 9 + 9 + 9 * 5 + 5 * 3 + 3
    assert [k for k, _ in net.named_parameters()] == list(sd)
    _, grads = net.loss_and_gradients(*classification_data(), loss="cross_entropy")
    assert list(grads) == list(sd)
    # state_dict() copies, named_parameters() and layer.weight are views
    sd["0.weight"][...] = 7.0
    assert not (net.state_dict()["0.weight"] == 7.0).any()
    dict(net.named_parameters())["0.weight"][0, 0] = 3.5
    assert net.layers[0].weight[0, 0] == 3.5 and net.state_dict()["0.weight"][0, 0] == 3.5
    assert net.layers[1].bias is None


def test_load_state_dict_round_trip():
    a, b = small_net(seed=1), small_net(seed=2)
    X, _ = classification_data()
    assert not same_bits(a, b)
    b.load_state_dict(a.state_dict())
    assert same_bits(a, b)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    # float32 values load into a float64 network (and the reverse) by conversion
    c = small_net(dtype="float32", seed=3)
    c.load_state_dict(a.state_dict())
    for k, v in c.state_dict().items():
        np.testing.assert_array_equal(v, a.state_dict()[k].astype(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip(tmp_path, dtype):
    net = small_net(dtype=dtype, seed=4)
    randomize(net, np.random.default_rng(4))
    net.layers[1].trainable = False
    path = tmp_path / "model.safetensors"
    net.save(path)
    loaded = bx.Network.load(path)
    assert loaded.dtype == np.dtype(dtype)
    assert same_bits(net, loaded)
    assert [repr(layer) for layer in loaded.layers] == [repr(layer) for layer in net.layers]
    assert [layer.trainable for layer in loaded.layers] == [True, False, True]
    X, _ = classification_data()
    np.testing.assert_array_equal(net.predict(X), loaded.predict(X))
    loaded.layers[0].weight[...] = 0  # no shared memory
    assert not (net.layers[0].weight == 0).all()
    net.save(str(path))  # str paths, overwriting
    assert same_bits(net, bx.Network.load(str(path)))


# ---- dtypes and memory layouts ---------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.dtype("float64")])
def test_dtypes(dtype):
    net = small_net(dtype=dtype)
    assert net.dtype == np.dtype(dtype)
    X, y = classification_data()
    for x in (X, X.astype(np.float32), X.astype(np.float64), (X * 4).astype(np.int32)):
        assert net.predict(x).dtype == np.dtype(dtype)
    _, grads = net.loss_and_gradients(X, y)
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())
    assert all(p.dtype == np.dtype(dtype) for p in net.parameters())


def test_default_dtype_is_float32():
    assert bx.Network([bx.Dense(2, 2)]).dtype == np.float32


def test_float32_and_float64_start_from_the_same_weights():
    a, b = small_net("float32", seed=9), small_net("float64", seed=9)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k].astype(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layouts_and_lists_give_identical_results(dtype):
    net = small_net(dtype=dtype)
    X, y = classification_data(n=13)
    Xt = X.astype(dtype)
    variants = [Xt, np.asfortranarray(Xt), Xt.tolist(), np.ascontiguousarray(Xt.T).T,
                np.repeat(Xt, 2, axis=0)[::2], np.repeat(Xt, 3, axis=1)[:, ::3]]
    expected_out = net.predict(Xt)
    expected_loss, expected_grads = net.loss_and_gradients(Xt, y)
    for v in variants:
        np.testing.assert_array_equal(net.predict(v), expected_out)
        loss, grads = net.loss_and_gradients(v, y.tolist())
        assert loss == expected_loss
        for k in grads:
            np.testing.assert_array_equal(grads[k], expected_grads[k])
    np.testing.assert_array_equal(net(Xt), expected_out)  # __call__ is predict


def test_predict_large_batch_is_chunk_independent():
    """predict works in chunks of rows; results do not depend on the split."""
    net = small_net()
    X = np.random.default_rng(0).standard_normal((9000, 6))
    out = net.predict(X)
    np.testing.assert_array_equal(out[8000:], net.predict(X[8000:]))
    np.testing.assert_array_equal(out[:5], net.predict(X[:5]))


# ---- threads and seeds -------------------------------------------------------------
def test_set_get_num_threads(restore_threads):
    bx.set_num_threads(1)
    assert bx.get_num_threads() == 1
    bx.set_num_threads(2)
    assert bx.get_num_threads() == 2
    assert bx.config()["threads"] == 2
    with pytest.raises(ValueError):
        bx.set_num_threads(0)
    with pytest.raises(TypeError):
        bx.set_num_threads(1.5)
    assert bx.get_num_threads() == 2


def test_same_seed_same_bits():
    assert same_bits(small_net(seed=5), small_net(seed=5))
    assert not same_bits(small_net(seed=5), small_net(seed=6))
    assert small_net(seed=5).seed == 5


def _train(seed_net=0, seed_shuffle=0, epochs=3):
    X, y = classification_data(n=50)
    net = small_net(seed=seed_net)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=8, shuffle=True, seed=seed_shuffle)
    history = trainer.fit(X, y, epochs=epochs, verbose=0)
    return net, history


def test_same_seed_same_training():
    a, ha = _train()
    b, hb = _train()
    assert same_bits(a, b)
    assert ha["loss"] == hb["loss"]
    c, _ = _train(seed_shuffle=1)  # another shuffle: another run
    assert not same_bits(a, c)


def _w1_training(threads):
    """A digits-sized problem (64 -> 128 -> 10, batch 64): big enough that the
    GEMMs and element-wise loops split over threads."""
    bx.set_num_threads(threads)
    rng = np.random.default_rng(0)
    X = rng.random((640, 64)).astype(np.float32) * 16
    y = rng.integers(0, 10, 640)
    net = bx.Network([bx.Dense(64, 128, activation="relu"), bx.Dense(128, 10, activation="softmax")], seed=0)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-3), batch_size=64, seed=0)
    history = trainer.fit(X / 16, y, epochs=3, verbose=0)
    return net, history, net.predict(X / 16)


def test_thread_count_does_not_change_gradients(restore_threads):
    """A large batch: the weight gradient sums over 5000 rows, which threads
    must not split into a thread-dependent summation order."""
    rng = np.random.default_rng(2)
    net = bx.Network([bx.Dense(30, 70, activation="relu"), bx.Dense(70, 10, activation="softmax")], seed=2)
    X, y = rng.standard_normal((5000, 30)), rng.integers(0, 10, 5000)
    results = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        results.append((net.predict(X), *net.loss_and_gradients(X, y)))
    (out1, loss1, g1), (out2, loss2, g2) = results
    np.testing.assert_array_equal(out1, out2)
    assert loss1 == loss2
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])


def test_thread_count_does_not_change_bits(restore_threads):
    one, h1, out1 = _w1_training(1)
    two, h2, out2 = _w1_training(2)
    assert same_bits(one, two)
    assert h1["loss"] == h2["loss"]
    np.testing.assert_array_equal(out1, out2)


# ---- History, evaluate ----------------------------------------------------------
def test_history_contents():
    X, y = classification_data(n=60)
    Xv, yv = classification_data(n=20, seed=1)
    net = small_net()
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=16)
    history = trainer.fit(X, y, epochs=4, validation_data=(Xv, yv), verbose=0)
    assert isinstance(history, bx.History) and len(history) == 4
    assert history.epoch == [1, 2, 3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history[key]) == 4 and history[key] is history.history[key]
        assert all(math.isfinite(v) for v in history[key])
    assert history.loss == history["loss"]
    assert all(0 <= a <= 1 for a in history["accuracy"] + history["val_accuracy"])
    # validation metrics after the last epoch are evaluate()'s
    final = trainer.evaluate(Xv, yv)
    assert history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
    assert history["val_accuracy"][-1] == final["accuracy"]
    with pytest.raises(AttributeError, match="no metric"):
        history.nonexistent  # noqa: B018
    # a second fit continues the epoch count
    assert trainer.fit(X, y, epochs=2, verbose=0).epoch == [5, 6]
    assert trainer.epochs_done == 6


def test_mse_history_has_no_accuracy():
    X, _ = classification_data(n=20)
    net = bx.Network([bx.Dense(6, 2)], dtype="float64")
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.SGD(lr=0.01))
    history = trainer.fit(X, X[:, :2], epochs=2, verbose=0)
    assert "accuracy" not in history.history
    assert set(trainer.evaluate(X, X[:, :2])) == {"loss"}


@pytest.mark.parametrize("loss,kind,last", [("cross_entropy", "labels", "softmax"),
                                            ("cross_entropy", "probs", "softmax"),
                                            ("binary_cross_entropy", "values", "sigmoid"),
                                            ("mse", "values", "tanh")])
def test_evaluate(loss, kind, last):
    rng = np.random.default_rng(3)
    specs = random_specs(rng, 2, last=last, max_width=8, n_out=4)
    net = build(specs, seed=3)
    randomize(net, rng)
    X = rng.standard_normal((30, specs[0]["in"]))
    y = random_targets(rng, loss, 30, 4, labels=kind == "labels")
    result = bx.Trainer(net, loss=loss).evaluate(X, y)
    assert_close(result["loss"], ref.loss_value(ref_layers(net), X, y, loss), 1e-10, "evaluate loss")
    out = net.predict(X)
    if loss == "mse":
        assert set(result) == {"loss"}
    elif loss == "cross_entropy":
        want = y if kind == "labels" else y.argmax(axis=1)
        assert result["accuracy"] == np.mean(out.argmax(axis=1) == want)
    else:
        assert result["accuracy"] == pytest.approx(np.mean((out > 0.5) == (y > 0.5)), rel=1e-12)


def test_evaluate_large_data_set_in_chunks():
    """evaluate and predict work in chunks of rows; the mean loss over
    9000 rows still equals the reference's."""
    rng = np.random.default_rng(4)
    net = small_net(seed=4)
    X, y = rng.standard_normal((9000, 6)), rng.integers(0, 3, 9000)
    result = bx.Trainer(net).evaluate(X, y)
    layers = ref_layers(net)
    assert_close(result["loss"], ref.loss_value(layers, X, y, "cross_entropy"), 1e-10, "loss")
    assert result["accuracy"] == np.mean(ref.network_forward(layers, X)[-1][0].argmax(axis=1) == y)


# ---- frozen layers ---------------------------------------------------------------
def test_frozen_layer_does_not_change():
    X, y = classification_data(n=40)
    net = small_net()
    net.layers[1].trainable = False
    assert not net.layers[1].trainable
    before = net.state_dict()
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=8)
    trainer.fit(X, y, epochs=3, verbose=0)
    after = net.state_dict()
    np.testing.assert_array_equal(after["1.weight"], before["1.weight"])
    for key in ("0.weight", "0.bias", "2.weight", "2.bias"):
        assert not np.array_equal(after[key], before[key]), key
    # unfreezing resumes its training
    net.layers[1].trainable = True
    trainer.fit(X, y, epochs=1, verbose=0)
    assert not np.array_equal(net.state_dict()["1.weight"], before["1.weight"])
    with pytest.raises(TypeError):
        net.layers[1].trainable = "no"


def test_frozen_layer_gradient_is_zero():
    X, y = classification_data(n=10)
    net = small_net()
    _, full = net.loss_and_gradients(X, y)
    net.layers[2].trainable = False
    _, part = net.loss_and_gradients(X, y)
    assert not part["2.weight"].any() and not part["2.bias"].any()
    for key in ("0.weight", "0.bias", "1.weight"):
        np.testing.assert_array_equal(part[key], full[key])


# ---- initialisation ----------------------------------------------------------------
IN, OUT = 300, 200  # 60,000 weights: sample std within ~0.3% of the true one


def _init(init, activation=None, bias=True, seed=0):
    net = bx.Network([bx.Dense(IN, OUT, activation=activation, init=init, bias=bias)], seed=seed, dtype="float64")
    return net.layers[0].weight.copy(), net.layers[0].bias.copy() if bias else None


def _check_normal(w, std):
    n = w.size
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert w.std() == pytest.approx(std, rel=0.02)
    assert np.abs(w).max() > 3 * std  # a normal, not a uniform


def _check_uniform(w, bound):
    n = w.size
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.999 * bound
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * n)
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_init_he():
    w, b = _init("he")
    _check_normal(w, math.sqrt(2 / IN))
    assert not b.any()


@pytest.mark.parametrize("name", ["xavier", "glorot"])
def test_init_xavier(name):
    w, b = _init(name)
    _check_uniform(w, math.sqrt(6 / (IN + OUT)))
    assert not b.any()


def test_init_glorot_is_xavier():
    np.testing.assert_array_equal(_init("glorot")[0], _init("xavier")[0])


def test_init_lecun_and_normal():
    _check_normal(_init("lecun")[0], math.sqrt(1 / IN))
    _check_normal(_init("normal")[0], 0.01)


def test_init_uniform_draws_bias_too():
    w, b = _init("uniform")
    _check_uniform(w, 1 / math.sqrt(IN))
    assert np.abs(b).max() <= 1 / math.sqrt(IN) and b.std() > 0.5 / math.sqrt(3 * IN)


def test_init_zeros():
    w, b = _init("zeros")
    assert not w.any() and not b.any()


@pytest.mark.parametrize("activation,expected", [("relu", "he"), ("leaky_relu", "he"), ("elu", "he"),
                                                 ("gelu", "he"), (None, "xavier"), ("tanh", "xavier"),
                                                 ("sigmoid", "xavier"), ("softmax", "xavier")])
def test_default_init_by_activation(activation, expected):
    w, _ = _init("default", activation=activation, seed=3)
    np.testing.assert_array_equal(w, _init(expected, activation=activation, seed=3)[0])


# ---- every GEMM kernel ------------------------------------------------------------
@pytest.mark.parametrize("kernel", bx.supported_kernels())
def test_every_kernel_passes_the_gradient_check(kernel, restore_kernel):
    bx.set_kernel(kernel)
    assert bx.get_kernel() == kernel
    rng = np.random.default_rng(7)
    # odd sizes, larger than a micro-kernel tile, so edges and packing are exercised
    specs = [{"in": 37, "out": 29, "activation": "tanh", "bias": True},
             {"in": 29, "out": 41, "activation": "gelu", "bias": False},
             {"in": 41, "out": 11, "activation": "softmax", "bias": True}]
    net = build(specs, seed=7)
    randomize(net, rng)
    X = rng.standard_normal((53, 37))
    y = rng.integers(0, 11, 53)
    layers = ref_layers(net)
    assert_close(net.predict(X), ref.network_forward(layers, X)[-1][0], 1e-10, f"{kernel} predict")
    value, grads = net.loss_and_gradients(X, y, loss="cross_entropy")
    ref_value, ref_grads = ref.loss_and_gradients(layers, X, y, "cross_entropy")
    assert_close(value, ref_value, 1e-10, f"{kernel} loss")
    assert_grads_close(grads, ref_grads, 1e-10, f"{kernel} grad")
    # and float32 on the same kernel
    net32 = build(specs, seed=7, dtype="float32")
    net32.load_state_dict(net.state_dict())
    _, g32 = net32.loss_and_gradients(X, y, loss="cross_entropy")
    assert_grads_close(g32, ref.loss_and_gradients(ref_layers(net32), X.astype(np.float32).astype(np.float64),
                                                   y, "cross_entropy")[1], 1e-4, f"{kernel} float32 grad")


def test_unknown_kernel(restore_kernel):
    with pytest.raises(ValueError, match="unknown kernel"):
        bx.set_kernel("sse9")


def test_poisson_trains_and_reports_no_accuracy():
    """poisson takes the output as a log-rate; like mse it has no accuracy."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = rng.poisson(np.exp(0.5 * X[:, :2]))
    net = bx.Network([bx.Dense(3, 8, activation="tanh"), bx.Dense(8, 2)], seed=0, dtype="float64")
    trainer = bx.Trainer(net, loss="poisson", optimizer=bx.Adam(lr=1e-2), batch_size=16)
    history = trainer.fit(X, y, epochs=30, verbose=0, validation_split=0.25)
    assert "accuracy" not in history.history and "val_accuracy" not in history.history
    assert history["loss"][-1] < history["loss"][0]
    assert set(trainer.evaluate(X, y)) == {"loss"}
    with pytest.raises(ValueError, match="non-negative for poisson"):
        trainer.fit(X, -y, epochs=1, verbose=0)
