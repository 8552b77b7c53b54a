"""Consistency: no made-up metrics, freezing acts at the next batch as in
manual mode, sizes beyond the core's range are ValueErrors, and optimizers,
networks and trainers pickle."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import backpropx as bx


def data(n: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.integers(0, 3, n)


def net3(seed: int = 0, dtype: str = "float64") -> bx.Network:
    return bx.Network([bx.Dense(4, 6, activation="relu"), bx.Dense(6, 5, activation="tanh"),
                       bx.Dense(5, 3, activation="softmax")], seed=seed, dtype=dtype)


# ---- no samples, no metrics ----------------------------------------------------

def test_evaluate_on_zero_rows_is_an_error():
    trainer = bx.Trainer(net3())
    for loss in ("cross_entropy", "mse"):
        trainer.loss = loss
        y = np.zeros(0, dtype=int) if loss == "cross_entropy" else np.zeros((0, 3))
        with pytest.raises(ValueError, match="no samples"):
            trainer.evaluate(np.zeros((0, 4)), y)


def test_fit_with_empty_validation_data_is_refused_before_training():
    X, y = data()
    net = net3()
    before = net.state_dict()
    trainer = bx.Trainer(net)
    with pytest.raises(ValueError, match="validation X has no samples"):
        trainer.fit(X, y, validation_data=(np.zeros((0, 4)), np.zeros(0, dtype=int)), verbose=0)
    assert trainer.epochs_done == 0
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# ---- freezing from a callback acts at the next batch ------------------------------

class ToggleAt(bx.Callback):
    """Sets layer `k`'s trainable flag to `flag` after batch `at` of epoch 1,
    recording the layer's weights then."""

    every = 1

    def __init__(self, k: int, at: int, flag: bool) -> None:
        super().__init__()
        self.k, self.at, self.flag = k, at, flag
        self.snapshot: np.ndarray | None = None

    def on_batch_end(self, batch, logs):
        if self.trainer.epochs_done == 0 and batch == self.at:
            layer = self.trainer.network.layers[self.k]
            layer.trainable = self.flag
            self.snapshot = layer.weight.copy()


@pytest.mark.parametrize("flag", [False, True])
def test_toggling_trainable_from_a_callback_acts_at_the_next_batch(flag):
    X, y = data(48)
    net = net3()
    net.layers[1].trainable = not flag
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1, momentum=0.9), batch_size=8, shuffle=False)
    cb = ToggleAt(1, at=2, flag=flag)
    trainer.fit(X, y, epochs=1, verbose=0, callbacks=[cb])
    if not flag:  # frozen after batch 2: its weights are those of batch 2 from then on
        np.testing.assert_array_equal(net.layers[1].weight, cb.snapshot)
    else:  # unfrozen after batch 2: it moves during the same epoch
        assert not np.array_equal(net.layers[1].weight, cb.snapshot)
    # fit does exactly what manual mode does.
    start = net3()
    start.layers[1].trainable = not flag
    expected = manual_run_from(start, X, y, {1: (2, flag)}, 8)
    for k, v in net.state_dict().items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-12, atol=1e-14, err_msg=k)


def manual_run_from(net, X, y, toggles, batch_size):
    lr, mu = 0.1, 0.9
    params = dict(net.named_parameters())
    buf: dict[str, np.ndarray] = {}
    for b, start in enumerate(range(0, len(X), batch_size), start=1):
        _, grads = net.loss_and_gradients(X[start:start + batch_size], y[start:start + batch_size])
        trainable = sorted(f"{k}.{n}" for k, layer in enumerate(net.layers) if layer.trainable
                           for n in ("weight", "bias"))
        if sorted(buf) != trainable:  # a new set of trainable layers restarts the optimizer state
            buf = {}
        for name in trainable:
            buf[name] = grads[name].copy() if name not in buf else mu * buf[name] + grads[name]
            params[name][...] -= lr * buf[name]
        for k, (at, flag) in toggles.items():
            if b == at:
                net.layers[k].trainable = flag
    return net.state_dict()


# ---- a learning rate of 0 (torch accepts it; schedules reach it) -------------------

def test_cosine_annealing_reaches_a_learning_rate_of_zero_and_goes_on():
    X, y = data()
    trainer = bx.Trainer(net3(), optimizer=bx.SGD(lr=0.1), batch_size=16)
    history = trainer.fit(X, y, epochs=5, verbose=0, callbacks=[bx.CosineAnnealingLR(T_max=2)])
    assert history["lr"][2] == 0.0 < history["lr"][3]  # the rate of epoch 3 is the one after T_max epochs
    frozen = trainer.network.state_dict()
    trainer.optimizer.lr = 0.0
    trainer.fit(X, y, epochs=1, verbose=0)  # SGD with lr 0 moves nothing
    for k, v in trainer.network.state_dict().items():
        np.testing.assert_array_equal(v, frozen[k])
    for make in (bx.SGD, bx.Adam, bx.AdamW, bx.RMSprop, bx.Adagrad, bx.Rprop):
        assert make(lr=0.0).lr == 0.0


# ---- sizes ---------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: bx.Dense(2**63, 1), "at most 9223372036854775807"),
    (lambda: bx.Dense(1, 2**63), "at most 9223372036854775807"),
    (lambda: bx.Dense(2**64 + 5, 3), "at most 9223372036854775807"),
    (lambda: bx.Dropout(0.5, features=2**63), "at most 9223372036854775807"),
    (lambda: bx.Trainer(net3(), batch_size=2**63), "at most 9223372036854775807"),
    (lambda: bx.Dense(2**63 - 1, 1), "more than any machine holds"),
    (lambda: bx.Dense(2**32, 2**32), "more than any machine holds"),
    (lambda: bx.Dense(3, 2**62), "more than any machine holds"),
])
def test_sizes_beyond_any_machine_are_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layers", [
    lambda: [bx.Dense(3, 2**40)], lambda: [bx.Dense(2**20, 2**30)],
    lambda: [bx.Dense(3, 2**40), bx.Dropout(0.1)], lambda: [bx.Dense(2**30, 2**31 + 1, bias=False)],
])
def test_sizes_that_cannot_be_allocated_are_memory_errors(layers):
    with pytest.raises(MemoryError):
        bx.Network(layers())


def test_core_refuses_out_of_range_options_with_value_error():
    from backpropx import _core

    with pytest.raises(ValueError, match="out of range"):
        _core.Network_float32([{"kind": "dense", "in_features": 2**64, "out_features": 1}], None, 0)


def test_callback_every_must_be_a_size():
    X, y = data()

    class Odd(bx.Callback):
        every = 2.5

    with pytest.raises(TypeError, match="Odd.every must be an integer"):
        bx.Trainer(net3()).fit(X, y, verbose=0, callbacks=[Odd()])


# ---- pickling ------------------------------------------------------------------

@pytest.mark.parametrize("opt", [bx.SGD(lr=0.1, momentum=0.9, nesterov=True), bx.Adam(betas=(0.8, 0.9)),
                                 bx.AdamW(), bx.RMSprop(centered=True), bx.Adagrad(lr_decay=0.1), bx.Rprop()])
def test_optimizers_pickle_and_copy(opt):
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt), copy.copy(opt)):
        assert type(clone) is type(opt) and clone.hyperparameters == opt.hyperparameters
        clone.lr = 0.5  # its own: the original keeps its rate
        assert opt.lr != 0.5


def test_networks_pickle_with_weights_flags_and_seed():
    net = net3(seed=7, dtype="float32")
    net.layers[0].trainable = False
    for clone in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert repr(clone) == repr(net) and clone.seed == 7 and clone.dtype == net.dtype
        assert [layer.trainable for layer in clone.layers] == [False, True, True]
        for (k, a), (_, b) in zip(net.named_parameters(), clone.named_parameters()):
            np.testing.assert_array_equal(a, b, err_msg=k)
        clone.layers[2].weight[...] = 0  # no shared memory
        assert net.layers[2].weight.any()


def test_trainers_pickle_and_continue_bit_for_bit():
    X, y = data()
    trainer = bx.Trainer(net3(), optimizer=bx.Adam(lr=0.01), batch_size=8, clip_grad_norm=1.0, l2=1e-3)
    trainer.fit(X, y, epochs=2, verbose=0)
    clones = [pickle.loads(pickle.dumps(trainer)), copy.deepcopy(trainer)]
    for clone in clones:
        assert clone.network is not trainer.network and clone.epochs_done == 2 and len(clone.history) == 2
    for t in [trainer, *clones]:
        t.fit(X, y, epochs=2, verbose=0)
    for clone in clones:
        for k, v in clone.network.state_dict().items():
            np.testing.assert_array_equal(v, trainer.network.state_dict()[k], err_msg=k)
    net, t = pickle.loads(pickle.dumps((trainer.network, trainer)))
    assert t.network is net  # pickle keeps the sharing


def test_unpickling_checks_the_bytes():
    from backpropx.io import network_from_bytes

    good = pickle.dumps(net3())
    with pytest.raises(ValueError, match="pickled Network"):
        network_from_bytes(b"\x08" + bytes(20))
    assert isinstance(pickle.loads(good), bx.Network)
