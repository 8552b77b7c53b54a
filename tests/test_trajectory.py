"""Multi-step training against the reference optimizers.

The same float64 network is trained by ``bx.Trainer`` (shuffle=False, so
the batches are the consecutive slices ``X[0:b], X[b:2b], ...``, the last
one partial) and, batch for batch, by the reference: ``ref.loss_and_gradients``
on the slice, then the reference optimizer's ``step``. All weights are
compared after every epoch.

Tolerance ``TOL = 1e-10`` (relative to the largest weight of each tensor):
each step adds rounding of order 1e-16 relative, and a few dozen steps of
these smooth updates do not amplify it much (measured worst: 1.1e-15);
a wrong rule (eps inside the root, bias correction off by one step, missing
weight decay, a dropped partial batch) moves weights by 1e-6 or more within
one epoch. Rprop is the exception that could amplify rounding (a sign test
on a near-zero gradient flips a step); the seeds used keep gradients away
from 0, and the comparison shows it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close, build, randomize, random_targets, ref, ref_layers, ref_params

import backpropx as bx

TOL = 1e-10

# (name, bx optimizer factory, reference optimizer factory)
OPTIMIZERS = [
    ("sgd", lambda: bx.SGD(lr=0.1), lambda: ref.SGD(lr=0.1)),
    ("sgd-momentum", lambda: bx.SGD(lr=0.05, momentum=0.9), lambda: ref.SGD(lr=0.05, momentum=0.9)),
    ("sgd-dampening", lambda: bx.SGD(lr=0.05, momentum=0.8, dampening=0.3),
     lambda: ref.SGD(lr=0.05, momentum=0.8, dampening=0.3)),
    ("sgd-nesterov-wd", lambda: bx.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
     lambda: ref.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("sgd-wd", lambda: bx.SGD(lr=0.1, weight_decay=0.05), lambda: ref.SGD(lr=0.1, weight_decay=0.05)),
    ("adam", lambda: bx.Adam(lr=1e-2), lambda: ref.Adam(lr=1e-2)),
    ("adam-amsgrad-wd", lambda: bx.Adam(lr=1e-2, betas=(0.8, 0.99), amsgrad=True, weight_decay=1e-2),
     lambda: ref.Adam(lr=1e-2, betas=(0.8, 0.99), amsgrad=True, weight_decay=1e-2)),
    ("adamw", lambda: bx.AdamW(lr=1e-2), lambda: ref.AdamW(lr=1e-2)),
    ("adamw-amsgrad", lambda: bx.AdamW(lr=1e-2, weight_decay=0.1, amsgrad=True, eps=1e-6),
     lambda: ref.AdamW(lr=1e-2, weight_decay=0.1, amsgrad=True, eps=1e-6)),
    ("rmsprop", lambda: bx.RMSprop(lr=1e-2), lambda: ref.RMSprop(lr=1e-2)),
    ("rmsprop-centered-momentum", lambda: bx.RMSprop(lr=1e-3, centered=True, momentum=0.9, weight_decay=1e-3),
     lambda: ref.RMSprop(lr=1e-3, centered=True, momentum=0.9, weight_decay=1e-3)),
    ("rmsprop-centered", lambda: bx.RMSprop(lr=1e-3, alpha=0.9, centered=True),
     lambda: ref.RMSprop(lr=1e-3, alpha=0.9, centered=True)),
    ("adagrad", lambda: bx.Adagrad(lr=0.05), lambda: ref.Adagrad(lr=0.05)),
    ("adagrad-decay", lambda: bx.Adagrad(lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1),
     lambda: ref.Adagrad(lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
    ("rprop", lambda: bx.Rprop(lr=1e-2), lambda: ref.Rprop(lr=1e-2)),
    ("rprop-etas", lambda: bx.Rprop(lr=1e-3, etas=(0.3, 1.5), step_sizes=(1e-5, 0.02)),
     lambda: ref.Rprop(lr=1e-3, etas=(0.3, 1.5), step_sizes=(1e-5, 0.02))),
]

# (loss, target kind, network): hidden activations vary, every layer non-square.
PROBLEMS = {
    "mse": ("mse", "values", [(5, 7, "tanh", True), (7, 3, None, True)]),
    "ce-labels": ("cross_entropy", "labels", [(5, 8, "relu", True), (8, 6, "gelu", False), (6, 4, "softmax", True)]),
    "ce-probs": ("cross_entropy", "probs", [(5, 6, "elu", True), (6, 3, None, True)]),
    "bce": ("binary_cross_entropy", "values", [(5, 4, "leaky_relu", True), (4, 2, "sigmoid", True)]),
}


def _setup(problem: str, seed: int, n: int):
    loss, kind, arch = PROBLEMS[problem]
    specs = [{"in": i, "out": o, "activation": a or "identity", "bias": b} for i, o, a, b in arch]
    rng = np.random.default_rng(seed)
    net = build(specs, seed=seed, dtype="float64")
    randomize(net, rng)
    X = rng.standard_normal((n, specs[0]["in"]))
    y = random_targets(rng, loss, n, specs[-1]["out"], labels=kind == "labels")
    return net, loss, X, y


def _reference_epoch(layers, params, opt, loss, X, y, batch_size):
    """One epoch of the reference on consecutive slices; returns the mean loss."""
    total = 0.0
    for start in range(0, X.shape[0], batch_size):  # a batch_size above n gives one batch of n
        xb, yb = X[start:start + batch_size], y[start:start + batch_size]
        value, grads = ref.loss_and_gradients(layers, xb, yb, loss)
        opt.step(params, grads)
        total += float(value) * xb.shape[0]
    return total / X.shape[0]


def _compare(net, params, what):
    sd = net.state_dict()
    assert sorted(sd) == sorted(params)
    for key in params:
        assert_close(sd[key], params[key], TOL, f"{what} {key}")


@pytest.mark.parametrize("opt_name,make_bx,make_ref", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("problem,batch_size", [("mse", 10), ("ce-labels", 30), ("ce-probs", 8), ("bce", 7),
                                                ("mse", 64)])
def test_trajectory(problem, batch_size, opt_name, make_bx, make_ref):
    n = 30  # batch 30 or 64: full batch; 10: three equal; 8 and 7: a partial last batch
    net, loss, X, y = _setup(problem, seed=len(opt_name) + batch_size, n=n)
    layers = ref_layers(net)
    params = ref_params(layers)
    trainer = bx.Trainer(net, loss=loss, optimizer=make_bx(), batch_size=batch_size, shuffle=False)
    opt = make_ref()
    epochs = 4 if batch_size < n else 12  # 12..20 steps in all
    start = net.state_dict()
    for epoch in range(epochs):
        history = trainer.fit(X, y, epochs=1, verbose=0)
        ref_loss = _reference_epoch(layers, params, opt, loss, X, y, batch_size)
        _compare(net, params, f"epoch {epoch + 1}")
        # the epoch loss is the sample-weighted mean of the batch losses before each update
        assert math.isclose(history["loss"][0], ref_loss, rel_tol=1e-10)
    moved = max(np.max(np.abs(net.state_dict()[k] - start[k])) for k in start)
    assert moved > 1e-4, "training did not move the weights: the comparison would be vacuous"


def test_fit_with_several_epochs_equals_epoch_by_epoch():
    """fit(epochs=3) and three fit(epochs=1) calls give the same bits."""
    a, loss, X, y = _setup("ce-labels", 3, 25)
    b = bx.Network([layer for layer in a.layers], seed=3, dtype="float64")  # a copy, weights included
    ta = bx.Trainer(a, loss=loss, optimizer=bx.Adam(lr=1e-2), batch_size=8, shuffle=True, seed=5)
    tb = bx.Trainer(b, loss=loss, optimizer=bx.Adam(lr=1e-2), batch_size=8, shuffle=True, seed=5)
    ha = ta.fit(X, y, epochs=3, verbose=0)
    hb = [tb.fit(X, y, epochs=1, verbose=0)["loss"][0] for _ in range(3)]
    assert ha["loss"] == hb
    for key, p in a.state_dict().items():
        np.testing.assert_array_equal(p, b.state_dict()[key])


def test_frozen_layer_trajectory():
    """A frozen layer keeps its weights; the others follow the reference, which
    backprops through the frozen layer but does not update it."""
    net, loss, X, y = _setup("mse", 11, 20)
    net.layers[0].trainable = False
    layers = ref_layers(net)
    params = ref_params(layers)
    frozen = {k: params.pop(k) for k in ("0.weight", "0.bias")}
    before = {k: v.copy() for k, v in frozen.items()}
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.Adam(lr=1e-2), batch_size=6, shuffle=False)
    opt = ref.Adam(lr=1e-2)
    for _ in range(3):
        trainer.fit(X, y, epochs=1, verbose=0)
        for start in range(0, 20, 6):
            _, grads = ref.loss_and_gradients(layers, X[start:start + 6], y[start:start + 6], loss)
            opt.step(params, {k: grads[k] for k in params})
    sd = net.state_dict()
    for k in before:
        np.testing.assert_array_equal(sd[k], before[k])
    for k in params:
        assert_close(sd[k], params[k], TOL, k)


def test_wrong_rule_is_rejected():
    """Adam with eps inside the square root differs from torch's rule by far
    more than TOL within a few steps: the comparison would catch it."""
    net, loss, X, y = _setup("mse", 1, 30)
    layers = ref_layers(net)
    params = ref_params(layers)
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.Adam(lr=1e-2, eps=1e-3), batch_size=10, shuffle=False)
    trainer.fit(X, y, epochs=1, verbose=0)

    class EpsInsideRoot(ref.Adam):
        def _update(self, p, g, state):
            super()._update(p, g, state)  # torch's step, then move to the wrong one's result
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            right = self.lr / (1 - self.betas[0] ** t) * m / (np.sqrt(v) / math.sqrt(1 - self.betas[1] ** t) + self.eps)
            wrong = self.lr / (1 - self.betas[0] ** t) * m / np.sqrt(v / (1 - self.betas[1] ** t) + self.eps)
            p += right - wrong

    _reference_epoch(layers, params, EpsInsideRoot(lr=1e-2, eps=1e-3), loss, X, y, 10)
    with pytest.raises(AssertionError, match="exceeds"):
        _compare(net, params, "wrong rule")


# ---- defaults and validation ----------------------------------------------------
# torch.optim's defaults (torch 2.13), in backpropx's hyper-parameter names.
TORCH_DEFAULTS = {
    bx.SGD: {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": 0.0},
    bx.Adam: {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": 0.0},
    bx.AdamW: {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": 0.0},
    bx.RMSprop: {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": 0.0},
    bx.Adagrad: {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    bx.Rprop: {"lr": 1e-2, "eta_minus": 0.5, "eta_plus": 1.2, "step_min": 1e-6, "step_max": 50.0},
}


@pytest.mark.parametrize("cls", list(TORCH_DEFAULTS), ids=lambda c: c.__name__)
def test_defaults_equal_torch(cls):
    assert cls().hyperparameters == TORCH_DEFAULTS[cls]


@pytest.mark.parametrize("cls", list(TORCH_DEFAULTS), ids=lambda c: c.__name__)
def test_defaults_equal_installed_torch(cls):
    torch = pytest.importorskip("torch")
    defaults = getattr(torch.optim, cls.__name__)([torch.zeros(1, requires_grad=True)]).defaults
    pairs = {"beta1": ("betas", 0), "beta2": ("betas", 1), "eta_minus": ("etas", 0), "eta_plus": ("etas", 1),
             "step_min": ("step_sizes", 0), "step_max": ("step_sizes", 1)}
    ours = cls().hyperparameters
    theirs = {k: float(defaults[pairs[k][0]][pairs[k][1]] if k in pairs else defaults[k]) for k in ours}
    assert ours == theirs


@pytest.mark.parametrize("make,message", [
    (lambda: bx.SGD(lr=-1.0), "Invalid learning rate"),
    (lambda: bx.SGD(lr=-1e-300), "Invalid learning rate"),
    (lambda: bx.Adam(lr=-0.5), "Invalid learning rate"),
    (lambda: bx.SGD(momentum=-0.1), "Invalid momentum value"),
    (lambda: bx.SGD(weight_decay=-1.0), "Invalid weight_decay value"),
    (lambda: bx.SGD(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda: bx.SGD(momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda: bx.Adam(betas=(1.0, 0.999)), "Invalid beta parameter at index 0"),
    (lambda: bx.Adam(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0"),
    (lambda: bx.Adam(betas=(0.9, 1.0)), "Invalid beta parameter at index 1"),
    (lambda: bx.AdamW(betas=(0.9, 1.5)), "Invalid beta parameter at index 1"),
    (lambda: bx.Adam(eps=-1.0), "Invalid epsilon value"),
    (lambda: bx.AdamW(weight_decay=-0.1), "Invalid weight_decay value"),
    (lambda: bx.RMSprop(alpha=-0.1), "Invalid alpha value"),
    (lambda: bx.RMSprop(momentum=-1.0), "Invalid momentum value"),
    (lambda: bx.Adagrad(lr_decay=-1.0), "Invalid lr_decay value"),
    (lambda: bx.Adagrad(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value value"),
    (lambda: bx.Rprop(etas=(1.5, 1.2)), "Invalid eta values"),
    (lambda: bx.Rprop(etas=(0.5, 0.9)), "Invalid eta values"),
])
def test_invalid_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_invalid_lr_message_has_the_value():
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1(\.0)?$"):
        bx.SGD(lr=-1.0)
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -0\.5$"):
        bx.Adam(lr=-0.5)
    opt = bx.SGD(lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.lr = -0.0625  # 0 is valid, as in torch (schedules reach it)
    assert opt.lr == 0.1


@pytest.mark.parametrize("make", [lambda: bx.SGD(lr="fast"), lambda: bx.Adam(betas=0.9),
                                  lambda: bx.Adam(lr=float("nan")), lambda: bx.Rprop(etas=(0.5,))])
def test_non_numeric_hyperparameters(make):
    with pytest.raises((TypeError, ValueError)):
        make()
