"""The bookkeeping around an optimizer step, done in fewer passes, keeps every guarantee.

A step is bounded before it runs (Optimizer::step_bound, update.hpp): when
the bound proves it cannot overflow, it runs in place with no copy of the
parameters; otherwise a copy is kept to undo it. Backward writes the fit
loop's gradient instead of zeroing and adding to it, and the gradient's
finiteness comes from the pass that sums its squares for the norms. These
tests hold each shortcut to the guarantee it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import backpropx as bx


def _params(net: bx.Network) -> dict[str, np.ndarray]:
    return {name: np.array(p) for name, p in net.named_parameters()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


OPTIMIZERS = {
    "sgd": lambda lr: bx.SGD(lr=lr, momentum=0.9, weight_decay=0.5),
    "nesterov": lambda lr: bx.SGD(lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: bx.Adam(lr=lr, weight_decay=0.5),
    "adamw": lambda lr: bx.AdamW(lr=lr, weight_decay=3.0, eps=1.0),
    "amsgrad": lambda lr: bx.Adam(lr=lr, amsgrad=True, eps=1e-3),
    "rmsprop": lambda lr: bx.RMSprop(lr=lr, momentum=0.5),
    "rmsprop_centered": lambda lr: bx.RMSprop(lr=lr, centered=True),
    "adagrad": lambda lr: bx.Adagrad(lr=lr, weight_decay=1.0),
    "rprop": lambda lr: bx.Rprop(lr=lr, step_sizes=(1e-6, 1e30)),
}


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(OPTIMIZERS)), dtype=st.sampled_from(["float32", "float64"]),
       p_exp=st.floats(-0.5, 1), g_exp=st.floats(-0.5, 1), lr_exp=st.floats(-0.5, 1), seed=st.integers(0, 2**16))
def test_a_step_either_stays_finite_or_is_undone_exactly(kind, dtype, p_exp, g_exp, lr_exp, seed):
    """Magnitudes up to and beyond the type's range, for every rule: a step
    whose bound proved it safe must stay finite (an unsound bound would run
    in place, overflow, and fail with an internal error), and any other step
    that overflows is undone to the last bit."""
    biggest = float(np.finfo(dtype).max)
    top = float(np.log10(biggest))
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...], exponent: float) -> np.ndarray:  # finite, up to 0.9 x the range
        with np.errstate(over="ignore"):
            x = rng.standard_normal(shape) * 10.0 ** min(exponent * top, top - 0.1)
        return np.clip(x, -0.9 * biggest, 0.9 * biggest)

    net = bx.Network([bx.Dense(4, 3, activation="tanh"), bx.Dense(3, 2)], seed=seed % 7, dtype=dtype)
    for _, p in net.named_parameters():
        p[...] = draw(p.shape, p_exp)
    opt = OPTIMIZERS[kind](10.0 ** min(lr_exp * top, 300.0))
    for _ in range(2):  # the second step uses the state (and its bounds) of the first
        for _, g in net.named_gradients():
            g[...] = draw(g.shape, g_exp)
            g.flat[0] = 0.0  # a zero gradient: 0/0 where a rule has no eps
        before = _params(net)
        try:
            opt.step(net)
        except bx.NonFiniteError as e:
            assert "internal error" not in str(e)
            assert "undone" in str(e)
            _same(_params(net), before)
            assert opt.state_dict()["steps"] == 0
            return
        for name, p in _params(net).items():
            assert np.isfinite(p).all(), name


def test_a_rule_with_no_bound_is_undone_when_it_divides_zero_by_zero():
    """Adam with eps=0: a zero gradient gives m / sqrt(v) = 0/0, NaN. There is
    no bound for such a rule, so the step keeps a copy and is undone."""
    net = bx.Network([bx.Dense(3, 2)], seed=0)
    before = _params(net)
    net.named_gradients()[0][1][...] = 1.0
    net.named_gradients()[0][1][0, 0] = 0.0
    net.named_gradients()[1][1][...] = 1.0
    opt = bx.Adam(lr=0.1, eps=0.0)
    with pytest.raises(bx.NonFiniteError, match="undone"):
        opt.step(net)
    _same(_params(net), before)


class _WriteWeight(bx.Callback):
    """Writes one weight through its view after the first batch, as user code may."""

    every = 1

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.params: dict[str, np.ndarray] | None = None

    def on_batch_end(self, batch: int, logs: dict) -> None:
        if batch == 1:
            self.trainer.network.layers[0].weight[0, 0] = self.value
            self.params = _params(self.trainer.network)


def test_a_parameter_written_by_a_callback_is_measured_before_the_next_step():
    """The trainer knows the largest parameter from each step's own report,
    until Python code runs. A weight set to -1e38 by a callback on an input
    that is always zero keeps the loss finite; weight decay (lr wd = 5) then
    takes it to 4e38, past float32's range: undone, not left infinite."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    X[:, 0] = 0.0
    y = rng.integers(0, 2, 64)
    net = bx.Network([bx.Dense(4, 8, activation="relu"), bx.Dense(8, 2, activation="softmax")], seed=0)
    cb = _WriteWeight(-1e38)
    tr = bx.Trainer(net, optimizer=bx.SGD(lr=1.0, weight_decay=5.0), batch_size=16, seed=0)
    with pytest.raises(bx.NonFiniteError, match="batch 2 made parameters non-finite; it was undone"):
        tr.fit(X, y, epochs=1, verbose=0, callbacks=[cb])
    _same(_params(net), cb.params)


def test_fit_leaves_the_last_batch_gradient_and_zero_for_frozen_layers():
    """Backward writes the fit loop's gradient (no zeroing pass): after fit
    the gradients are exactly the last batch's, and a layer frozen after it
    had gradients shows zeros, as when zero_grad ran before every batch."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    def build() -> bx.Network:
        return bx.Network([bx.Dense(5, 6, activation="tanh"), bx.Residual([bx.Dense(6, 6, activation="relu")]),
                           bx.Dense(6, 3, activation="softmax")], seed=2, dtype="float64")

    net, twin = build(), build()
    tr = bx.Trainer(net, optimizer=bx.SGD(lr=0.1), batch_size=40, shuffle=False, seed=0)
    _, expected = twin.loss_and_gradients(X, y, loss="cross_entropy")
    tr.fit(X, y, epochs=1, verbose=0)  # one batch: its gradient is taken at the initial weights
    _same({name: np.array(g) for name, g in net.named_gradients()}, expected)

    net.layers[0].trainable = False
    tr.fit(X, y, epochs=1, verbose=0)
    grads = {name: np.array(g) for name, g in net.named_gradients()}
    assert not grads["0.weight"].any() and not grads["0.bias"].any()
    assert grads["2.weight"].any()


def test_update_ratios_need_no_copy_and_do_not_depend_on_threads():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((96, 300)).astype(np.float32)
    y = rng.integers(0, 4, 96)
    ratios = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        try:
            net = bx.Network([bx.Dense(300, 64, activation="relu"), bx.Dense(64, 4, activation="softmax")], seed=4)
            tr = bx.Trainer(net, optimizer=bx.SGD(lr=0.05, momentum=0.9), batch_size=32, shuffle=False, seed=0)
            tr.fit(X[:64], y[:64], epochs=1, verbose=0)
            before = _params(net)
            h = tr.fit(X[64:], y[64:], epochs=1, verbose=0)  # one batch: the ratio is of this step
        finally:
            bx.set_num_threads(bx.config()["cpus"])
        after = _params(net)
        for k, name in ((0, "0.weight"), (1, "1.weight")):
            w = [before[f"{k}.{t}"].astype(np.float64) for t in ("weight", "bias")]
            d = [after[f"{k}.{t}"].astype(np.float64) - x for t, x in zip(("weight", "bias"), w)]
            want = np.sqrt(sum((x ** 2).sum() for x in d) / sum((x ** 2).sum() for x in w))
            assert h[f"update_ratio/{k}"][0] == pytest.approx(want, rel=1e-12), name  # sums in another order
        ratios.append([h[f"update_ratio/{k}"][0] for k in (0, 1)])
    assert ratios[0] == ratios[1]  # the same bits at 1 and 2 threads


# ---- steps a bound must not prove safe (found in review: each used to run in place,
# overflow, and end in an internal error that could not be undone) ------------------
def _one_step_undone(net: bx.Network, opt, steps: int = 1) -> None:
    before = _params(net)
    for _ in range(steps - 1):
        opt.step(net)
        before = _params(net)
    with pytest.raises(bx.NonFiniteError, match="undone") as err:
        opt.step(net)
    assert "internal error" not in str(err.value)
    _same(_params(net), before)


def _net_with_gradients(dtype: str, value: float, zero_first: bool = True) -> bx.Network:
    net = bx.Network([bx.Dense(3, 2)], seed=0, dtype=dtype)
    for _, g in net.named_gradients():
        g[...] = value
        if zero_first:
            g.flat[0] = 0.0
    return net


@pytest.mark.parametrize("make, zero_weight", [
    (lambda: bx.SGD(lr=1e39), False),                      # float32 rate is infinite: -inf * 0
    (lambda: bx.SGD(lr=0.1, weight_decay=1e39), True),     # inf * 0 in the decay term
    (lambda: bx.Adam(lr=0.1, eps=1e-50), False),           # float32 eps is zero: 0 / 0
    (lambda: bx.Adagrad(lr=0.1, eps=1e-50), False),
    (lambda: bx.RMSprop(lr=0.1, alpha=1.5), False),        # a negative weight on g^2: sqrt(negative)
])
def test_coefficients_that_do_not_survive_float32_get_no_bound(make, zero_weight):
    net = _net_with_gradients("float32", 1.0)
    if zero_weight:
        net.named_parameters()[0][1][0, 0] = 0.0
    _one_step_undone(net, make())


def test_an_overflowing_second_moment_times_a_zero_beta_is_undone():
    """beta2 = 0: the first step's g^2 = 1e40 overflows v to inf in float32
    with finite weights; the second computes inf * 0 = NaN."""
    net = _net_with_gradients("float32", 1e20, zero_first=False)
    opt = bx.Adam(lr=0.1, betas=(0.9, 0.0))
    with pytest.raises(bx.NonFiniteError, match="undone") as err:
        opt.step(net)
        opt.step(net)
    assert "internal error" not in str(err.value)


def test_a_loaded_negative_second_moment_gets_no_bound():
    net = _net_with_gradients("float64", 0.0, zero_first=False)
    opt = bx.Adam(lr=0.1, eps=1e-8)
    opt.step(net)  # creates the state
    state = opt.state_dict()
    state["state"]["exp_avg_sq"] = -np.ones_like(state["state"]["exp_avg_sq"])
    opt.load_state_dict(state, network=net)
    _one_step_undone(net, opt)  # sqrt(-1) = NaN


def test_gradients_too_small_to_square_still_bound_the_fit_step():
    """In float64, gradients near 1e-170 square to zero, so the norm pass sees
    a zero gradient; Adam's v underflows too, and m / eps = 1e-171 / 2e-308
    times lr 1e200 overflows. The trainer's bound on |g| must not be zero."""
    net = bx.Network([bx.Dense(1, 1, bias=False)], seed=0, dtype="float64")
    X, y = np.full((1, 1), 1e-170), np.ones((1, 1))
    before = _params(net)
    tr = bx.Trainer(net, loss="mse", optimizer=bx.Adam(lr=1e200, eps=2.3e-308), batch_size=1)
    with pytest.raises(bx.NonFiniteError, match="undone") as err:
        tr.fit(X, y, epochs=1, verbose=0)
    assert "internal error" not in str(err.value)
    _same(_params(net), before)
