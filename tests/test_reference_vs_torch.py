"""Checks the NumPy reference (tests/reference) against PyTorch in float64.

The reference is what the C++ core is tested against, so it is tested
first: every activation and derivative, softmax and its VJP, the losses and
their gradients (over the last axis, with sample weights), the dense layer,
every layer kind of ``reference.KINDS`` on N-d samples (each has its torch
form in ``TORCH_KINDS`` below), whole networks, and five steps of every
optimizer over several hyper-parameter settings, all against torch autograd
and torch.optim (single-tensor path). Tolerances are rtol 1e-12 plus, where
a formula cancels in the tail (tanh', GELU), an absolute 1e-15 on O(1)
values; the last tests show that a wrong rule fails these tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# pytest puts tests/ on sys.path while tests/ has no __init__.py; the
# fallback covers a tests/ package.
try:
    import reference as ref  # noqa: E402
except ImportError:  # pragma: no cover
    from tests import reference as ref  # noqa: E402

F = torch.nn.functional
F64 = torch.float64
RTOL = 1e-12
ATOL = 1e-15


def t64(a, requires_grad=False):
    return torch.tensor(np.asarray(a), dtype=F64, requires_grad=requires_grad)


def close(actual, expected, rtol=RTOL, atol=ATOL):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def hard_inputs(rng):
    """Random values, exact zeros of both signs, |z| from 1e-300 to 1e4, and
    the region where exp under/overflows in float64."""
    specials = [0.0, -0.0, 1e-12, -1e-12, 1e-10, -1e-10, 30.0, -30.0, 700.0, -700.0,
                720.0, -720.0, 745.0, -745.0, 800.0, -800.0, 1e4, -1e4]
    mags = np.logspace(-300, 4, 120)
    return np.concatenate([rng.standard_normal(300) * 4, specials, mags, -mags])


TORCH_ACTIVATIONS = {
    "identity": lambda t: t * 1,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,  # torch default negative_slope = 0.01
    "elu": F.elu,  # alpha = 1
    "gelu": F.gelu,  # approximate="none": the exact erf form
    "softmax": lambda t: torch.softmax(t, dim=1),
}


def torch_act(name, z):
    return TORCH_ACTIVATIONS["identity" if name is None else name](z)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", sorted(ref.ACTIVATIONS))
def test_activation_and_derivative_match_torch(name, rng):
    z = hard_inputs(rng)
    f, df = ref.ACTIVATIONS[name]
    zt = t64(z, requires_grad=True)
    y = torch_act(name, zt)
    (dy,) = torch.autograd.grad(y.sum(), zt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a, d = f(z), df(z)
    assert np.isfinite(a).all() and np.isfinite(d).all()
    # 1e-300: sigmoid's stable form keeps subnormals where torch's 1/(1+e^-z) gives 0
    close(a, y, atol=max(ATOL, 1e-300))
    close(d, dy, atol=max(ATOL, 1e-300))


def test_derivatives_at_exact_zero_follow_torch():
    expected = {"identity": 1.0, "sigmoid": 0.25, "tanh": 1.0, "relu": 0.0,
                "leaky_relu": 0.01, "elu": 1.0, "gelu": 0.5}
    assert set(expected) == set(ref.ACTIVATIONS)
    for name, value in expected.items():
        for zero in (0.0, -0.0):
            zt = t64([zero], requires_grad=True)
            (dy,) = torch.autograd.grad(torch_act(name, zt).sum(), zt)
            assert dy.item() == value, name
            assert ref.ACTIVATIONS[name][1](np.array([zero]))[0] == value, name
            assert ref.ACTIVATIONS[name][0](np.array([zero]))[0] == 0.0 or name == "sigmoid"


@pytest.mark.parametrize("name", [*sorted(ref.ACTIVATIONS), "softmax"])
def test_float32_in_float32_out(name, rng):
    z = (rng.standard_normal((4, 5)) * 3).astype(np.float32)
    a = ref.activation_forward(z, name)
    dz = ref.activation_backward(z, a, np.ones_like(z), name)
    assert a.dtype == np.float32 and dz.dtype == np.float32
    a64 = ref.activation_forward(z.astype(np.float64), name)
    np.testing.assert_allclose(a, a64, rtol=1e-6, atol=1e-6)


def test_softmax_and_its_backward_match_torch(rng):
    z = rng.standard_normal((6, 5)) * 3
    z[0] = [1e4, -1e4, 0.0, 1e4, 5.0]  # ties at the max, huge spread
    z[1] = -1e4
    z[2] = [800.0, 799.0, -800.0, 0.0, 1.0]
    da = rng.standard_normal((6, 5))
    zt = t64(z, requires_grad=True)
    at = torch.softmax(zt, dim=1)
    (dzt,) = torch.autograd.grad(at, zt, t64(da))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = ref.softmax(z)
        dz = ref.softmax_backward(a, da)
    close(a, at)
    close(dz, dzt)
    close(a.sum(axis=1), np.ones(6), atol=0)


# --------------------------------------------------------------------- losses


def test_mse_matches_torch(rng):
    out, target = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    ot = t64(out, requires_grad=True)
    lt = F.mse_loss(ot, t64(target))
    (g,) = torch.autograd.grad(lt, ot)
    loss, grad = ref.mse(out, target)
    close(loss, lt)
    close(grad, g)


@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_cross_entropy_matches_torch(targets, rng):
    z = rng.standard_normal((8, 5)) * 2
    z[0] = [1e4, -1e4, 3.0, 1e4, 0.0]
    if targets == "labels":
        y = rng.integers(0, 5, size=8)
        y[0] = 1  # the -1e4 logit: log p = -2e4, still finite
        yt = torch.tensor(y)
    else:
        y = rng.dirichlet(np.ones(5), size=8)
        y[1] = [0.0, 0.0, 1.0, 0.0, 0.0]
        yt = t64(y)
    zt = t64(z, requires_grad=True)
    lt = F.cross_entropy(zt, yt)
    (g,) = torch.autograd.grad(lt, zt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = ref.cross_entropy_logits(z, y)
    assert np.isfinite(loss)
    close(loss, lt)
    close(grad, g)


def test_binary_cross_entropy_matches_torch_including_clamps(rng):
    p = rng.uniform(0, 1, size=(6, 4))
    t = rng.uniform(0, 1, size=(6, 4))
    # exact 0 and 1 against every kind of target: torch clamps log at -100
    # and divides the gradient by max(p (1 - p), 1e-12f)
    p[0] = [0.0, 0.0, 1.0, 1.0]
    t[0] = [0.0, 1.0, 0.0, 1.0]
    p[1] = [0.0, 1.0, 1e-30, 1 - 1e-16]
    t[1] = [0.3, 0.7, 1.0, 0.0]
    p[2] = [1e-44, 1e-6, 0.5, 1 - 1e-6]
    pt = t64(p, requires_grad=True)
    lt = F.binary_cross_entropy(pt, t64(t))
    (g,) = torch.autograd.grad(lt, pt)
    loss, grad = ref.binary_cross_entropy(p, t)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    close(loss, lt)
    close(grad, g)


def test_binary_cross_entropy_saturated_values():
    loss, grad = ref.binary_cross_entropy(np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert loss == 100.0  # both log terms clamped to -100
    assert grad[0] == -1 / ref.BCE_EPSILON / 2 and grad[1] == 1 / ref.BCE_EPSILON / 2


def test_poisson_matches_torch_gradient_and_sklearn_value(rng):
    """The reference poisson loss: torch's PoissonNLLLoss(log_input=True) gradient, and
    its value plus the constant mean(xlogy(t, t) - t), which is scikit-learn's
    MLPRegressor poisson loss (half deviance of exp(x), summed over outputs) / C."""
    from scipy.special import xlogy
    from sklearn.neural_network._base import poisson_loss

    x = rng.standard_normal((7, 3))
    t = rng.poisson(1.5, size=(7, 3)).astype(np.float64)
    t[0] = [0.0, 0.0, 4.0]  # zero counts: xlogy(0, 0) = 0
    xt = t64(x, requires_grad=True)
    lt = torch.nn.PoissonNLLLoss(log_input=True)(xt, t64(t))
    (g,) = torch.autograd.grad(lt, xt)
    loss, grad = ref.poisson(x, t)
    close(grad, g)
    close(loss, lt.item() + np.mean(xlogy(t, t) - t))
    close(loss, poisson_loss(t, np.exp(x)) / 3)
    assert ref.poisson(np.log(np.where(t > 0, t, 1e-300)), t)[0] < 1e-12  # a perfect fit scores 0


def test_losses_keep_float32(rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    for loss, grad in [ref.mse(z, np.zeros((4, 3))),
                       ref.cross_entropy_logits(z, np.array([0, 1, 2, 0])),
                       ref.binary_cross_entropy(ref.softmax(z), np.full((4, 3), 0.5)),
                       ref.poisson(z, np.ones((4, 3)))]:
        assert loss.dtype == np.float32 and grad.dtype == np.float32


# ---------------------------------------------------------------------- dense


@pytest.mark.parametrize("activation", [None, *sorted(ref.ACTIVATIONS), "softmax"])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_and_backward_match_torch(activation, bias, rng):
    x, W = rng.standard_normal((6, 4)), rng.standard_normal((3, 4))
    b = rng.standard_normal(3) if bias else None
    da = rng.standard_normal((6, 3))
    xt, Wt = t64(x, True), t64(W, True)
    bt = t64(b, True) if bias else None
    zt = F.linear(xt, Wt, bt)
    at = torch_act(activation, zt)
    inputs = [xt, Wt] + ([bt] if bias else [])
    grads_t = torch.autograd.grad(at, inputs, t64(da))
    a, z = ref.dense_forward(x, W, b, activation)
    dx, dW, db = ref.dense_backward(x, W, z, a, da, activation)
    close(z, zt)
    close(a, at)
    close(dx, grads_t[0])
    close(dW, grads_t[1])
    if bias:
        close(db, grads_t[2])
    assert ref.dense_backward(x, W, z, a, da, activation, need_dx=False)[0] is None


# -------------------------------------------------------------------- network


def make_layers(rng, sizes, activations, bias=(True, False, True)):
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append({
            "weight": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in),
            "bias": rng.standard_normal(n_out) * 0.1 if bias[k] else None,
            "activation": activations[k],
        })
    return layers


def torch_network(layers, x):
    params = {}
    a = t64(x)
    for k, layer in enumerate(layers):
        W = params[f"{k}.weight"] = t64(layer["weight"], True)
        b = None
        if layer["bias"] is not None:
            b = params[f"{k}.bias"] = t64(layer["bias"], True)
        z = F.linear(a, W, b)
        a = torch_act(layer["activation"], z)
    return z, a, params


def targets_for(loss, rng, n, c, kind="labels"):
    if loss == "cross_entropy":
        return rng.integers(0, c, size=n) if kind == "labels" else rng.dirichlet(np.ones(c), size=n)
    if loss == "binary_cross_entropy":
        return rng.uniform(0, 1, size=(n, c))
    if loss == "poisson":
        return rng.poisson(1.5, size=(n, c)).astype(np.float64)
    return rng.standard_normal((n, c))


NETWORK_CASES = [
    # (loss, activations, target kind)
    ("mse", ("tanh", "relu", None), "values"),
    ("mse", ("gelu", "elu", "sigmoid"), "values"),
    ("cross_entropy", ("relu", "tanh", "softmax"), "labels"),
    ("cross_entropy", ("leaky_relu", "gelu", "softmax"), "probabilities"),
    ("cross_entropy", ("sigmoid", "elu", None), "labels"),  # output taken as logits
    ("binary_cross_entropy", ("tanh", "gelu", "sigmoid"), "values"),
]


@pytest.mark.parametrize(("loss", "activations", "kind"), NETWORK_CASES)
def test_network_loss_and_gradients_match_torch(loss, activations, kind, rng):
    x = rng.standard_normal((9, 5))
    layers = make_layers(rng, (5, 7, 6, 4), activations)
    y = targets_for(loss, rng, 9, 4, kind)
    z_last, a_last, params = torch_network(layers, x)
    if loss == "cross_entropy":
        logits = z_last if activations[-1] == "softmax" else a_last
        yt = torch.tensor(y) if kind == "labels" else t64(y)
        lt = F.cross_entropy(logits, yt)
    elif loss == "mse":
        lt = F.mse_loss(a_last, t64(y))
    else:
        lt = F.binary_cross_entropy(a_last, t64(y))
    grads_t = dict(zip(params, torch.autograd.grad(lt, list(params.values()))))
    value, grads = ref.loss_and_gradients(layers, x, y, loss)
    assert list(grads) == list(params)  # same keys, same (state_dict) order
    assert "1.bias" not in grads
    close(value, lt)
    close(ref.loss_value(layers, x, y, loss), lt)
    for key in grads:
        close(grads[key], grads_t[key])
    out = ref.network_forward(layers, x)
    close(out[-1][0], a_last)
    close(out[-1][1], z_last)


def test_upstream_gradients_match_torch(rng):
    x = rng.standard_normal((5, 3))
    layers = make_layers(rng, (3, 6, 5, 4), ("elu", "gelu", "softmax"))
    dout = rng.standard_normal((5, 4))
    _, a_last, params = torch_network(layers, x)
    grads_t = torch.autograd.grad(a_last, list(params.values()), t64(dout))
    grads = ref.forward_with_upstream_gradients(layers, x, dout)
    assert list(grads) == list(params)
    for key, g in zip(params, grads_t):
        close(grads[key], g)


# ----------------------------------------------------------------- optimizers

OPTIMIZER_CASES = [
    ("SGD", {}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.01}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.8), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "weight_decay": 0.05, "amsgrad": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "betas": (0.5, 0.9), "weight_decay": 0.0}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"momentum": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.9, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.2, "eps": 1e-6}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.1, "etas": (0.3, 1.5), "step_sizes": (0.01, 0.2)}),
]


def run_both(name, kwargs, rng, steps=5, reference_cls=None):
    params = {"0.weight": rng.standard_normal((4, 3)), "0.bias": rng.standard_normal(4)}
    grad_seq = []
    for _ in range(steps):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        grads["0.weight"][0, :2] = 0.0  # exact zeros (Rprop's "no sign" branch)
        grad_seq.append(grads)
    tparams = {k: t64(v, True) for k, v in params.items()}
    topt = getattr(torch.optim, name)(list(tparams.values()), foreach=False, **kwargs)
    opt = (reference_cls or getattr(ref, name))(**kwargs)
    history = []
    for grads in grad_seq:
        for k, p in tparams.items():
            p.grad = t64(grads[k])
        topt.step()
        opt.step(params, grads)
        history.append(({k: v.copy() for k, v in params.items()},
                         {k: v.detach().numpy().copy() for k, v in tparams.items()}))
    return history


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZER_CASES)
def test_optimizer_steps_match_torch(name, kwargs, rng):
    for ours, theirs in run_both(name, kwargs, rng):
        for key in ours:
            close(ours[key], theirs[key])


def test_defaults_match_torch():
    import inspect

    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Rprop"):
        ours = inspect.signature(getattr(ref, name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for arg, p in ours.items():
            assert p.default == theirs[arg].default, (name, arg)


def test_optimizer_keeps_float32_and_updates_in_place(rng):
    for cls in (ref.SGD, ref.Adam, ref.AdamW, ref.RMSprop, ref.Adagrad, ref.Rprop):
        p = rng.standard_normal(5).astype(np.float32)
        params = {"w": p}
        cls().step(params, {"w": np.ones(5, dtype=np.float32)})
        assert params["w"] is p and p.dtype == np.float32


# ------------------------------------------------------------------ gradcheck


@pytest.mark.parametrize(("loss", "activations", "kind"), [
    ("mse", ("tanh", "gelu", None), "values"),
    ("cross_entropy", ("elu", "sigmoid", "softmax"), "probabilities"),
    ("cross_entropy", ("gelu", "tanh", None), "labels"),
    ("binary_cross_entropy", ("tanh", "elu", "sigmoid"), "values"),
])
def test_central_differences_agree_with_backprop(loss, activations, kind, rng):
    x = rng.standard_normal((6, 4))
    layers = make_layers(rng, (4, 5, 4, 3), activations)
    y = targets_for(loss, rng, 6, 3, kind)
    params = {}
    for k, layer in enumerate(layers):
        params[f"{k}.weight"] = layer["weight"]
        if layer["bias"] is not None:
            params[f"{k}.bias"] = layer["bias"]
    before = {k: v.copy() for k, v in params.items()}
    _, grads = ref.loss_and_gradients(layers, x, y, loss)
    numeric = ref.central_difference_gradients(lambda: ref.loss_value(layers, x, y, loss), params)
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])  # restored exactly
        assert ref.max_relative_error(grads[key], numeric[key]) < 1e-6, key


# ---------------------------------------------------------- testing the tester


def test_a_wrong_gradient_fails_the_checks(rng):
    g = rng.standard_normal((3, 4))
    wrong = g.copy()
    wrong[1, 2] *= 1.0001
    assert ref.max_relative_error(g, wrong) > 1e-6
    with pytest.raises(AssertionError):
        close(wrong, g)
    # relu'(0) = 1 (the other convention) must be caught at exact zeros
    zt = t64([0.0, 1.0], requires_grad=True)
    (dy,) = torch.autograd.grad(F.relu(zt).sum(), zt)
    with pytest.raises(AssertionError):
        close(np.array([1.0, 1.0]), dy)


def test_adam_with_eps_inside_the_root_fails(rng):
    class AdamEpsInside(ref.Adam):
        """The other convention: p -= lr/bc1 * m / sqrt(v/bc2 + eps)."""

        def _update(self, p, g, state):
            if not state:
                state.update(step=0, exp_avg=np.zeros_like(p), exp_avg_sq=np.zeros_like(p))
            state["step"] += 1
            beta1, beta2 = self.betas
            m = state["exp_avg"] = beta1 * state["exp_avg"] + (1 - beta1) * g
            v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
            bc1, bc2 = 1 - beta1 ** state["step"], 1 - beta2 ** state["step"]
            p -= self.lr / bc1 * m / np.sqrt(v / bc2 + self.eps)

    with pytest.raises(AssertionError):
        for ours, theirs in run_both("Adam", {"lr": 0.1, "eps": 1e-8}, rng, 5, AdamEpsInside):
            for key in ours:
                close(ours[key], theirs[key])


# ------------------------------------------------- layer kinds on N-d samples


def _t_dense(layer, x, params, name, masks):
    W = params[name + "weight"] = t64(layer["params"]["weight"], True)
    b = None
    if "bias" in layer["params"]:
        b = params[name + "bias"] = t64(layer["params"]["bias"], True)
    return _t_act(layer["activation"], F.linear(x, W, b))  # over the last axis


def _t_act(name, x):
    return torch.softmax(x, dim=-1) if name == "softmax" else torch_act(name, x)


def _t_dropout(layer, x, params, name, masks):
    return x if masks is None else x * t64(masks.pop(0)) / (1 - layer["p"])  # None: eval mode


def _t_residual(layer, x, params, name, masks):
    return x + torch_stack(layer["layers"], x, params, masks, name)


def _t_param(layer, params, name, key):
    if key not in layer["params"]:
        return None
    params[name + key] = t64(layer["params"][key], True)
    return params[name + key]


def _t_conv(layer, x, params, name, masks):
    conv = F.conv1d if layer["kind"] == "conv1d" else F.conv2d
    W, b = _t_param(layer, params, name, "weight"), _t_param(layer, params, name, "bias")
    pad = layer["padding"] if isinstance(layer["padding"], str) else tuple(layer["padding"])
    y = conv(x, W, b, stride=tuple(layer["stride"]), padding=pad, dilation=tuple(layer["dilation"]))
    return _t_act(layer["activation"], y)


def _t_pool(layer, x, params, name, masks):
    kind, dims = layer["kind"], layer["kind"][-2]
    args = (tuple(layer["kernel_size"]), tuple(layer["stride"]), tuple(layer["padding"]))
    if kind.startswith("max"):
        return getattr(F, f"max_pool{dims}d")(x, *args)
    return getattr(F, f"avg_pool{dims}d")(x, *args, count_include_pad=layer["count_include_pad"])


def _t_batch_norm(layer, x, params, name, masks):
    W, b = _t_param(layer, params, name, "weight"), _t_param(layer, params, name, "bias")
    p = layer["params"]
    stats = (t64(p["running_mean"]), t64(p["running_var"])) if "running_mean" in p else (None, None)
    return F.batch_norm(x, *stats, W, b, training=masks is not None or stats[0] is None, eps=layer["eps"])


def _t_layer_norm(layer, x, params, name, masks):
    W, b = _t_param(layer, params, name, "weight"), _t_param(layer, params, name, "bias")
    return F.layer_norm(x, tuple(layer["normalized_shape"]), W, b, eps=layer["eps"])


def _t_recurrent(layer, x, params, name, masks):
    """torch.nn.RNN/GRU/LSTM (batch_first) with the layer's weights; the output
    sequence, or h_n's directions concatenated."""
    cls = {"simple_rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[layer["kind"]]
    extra = {"nonlinearity": layer.get("nonlinearity", "tanh")} if layer["kind"] == "simple_rnn" else {}
    rnn = cls(layer["input_size"], layer["hidden_size"], bias=layer.get("bias", True), batch_first=True,
              bidirectional=layer.get("bidirectional", False), dtype=F64, **extra)
    with torch.no_grad():
        for pname, value in layer["params"].items():
            base = pname.removesuffix("_reverse")
            getattr(rnn, f"{base}_l0" + ("_reverse" if base != pname else "")).copy_(t64(value))
    for pname in layer["params"]:
        base = pname.removesuffix("_reverse")
        params[name + pname] = getattr(rnn, f"{base}_l0" + ("_reverse" if base != pname else ""))
    out, h = rnn(x)
    if layer.get("return_sequences", False):
        return out
    h = h[0] if isinstance(h, tuple) else h
    return torch.cat(tuple(h), dim=-1)


def _t_embedding(layer, x, params, name, masks):
    W = params[name + "weight"] = t64(layer["params"]["weight"], True)
    return F.embedding(x.detach().long(), W, padding_idx=layer.get("padding_idx"))


#: kind -> its torch form (layer, x, params, name prefix, masks) -> y; the
#: parameters it creates are added to `params` under their state_dict names.
TORCH_KINDS = {
    "dense": _t_dense,
    "activation": lambda layer, x, params, name, masks: _t_act(layer["activation"], x),
    "dropout": _t_dropout,
    "flatten": lambda layer, x, params, name, masks: x.flatten(1),
    "reshape": lambda layer, x, params, name, masks: x.reshape(x.shape[0], *layer["shape"]),
    "residual": _t_residual,
    "conv1d": _t_conv,
    "conv2d": _t_conv,
    "max_pool1d": _t_pool,
    "max_pool2d": _t_pool,
    "avg_pool1d": _t_pool,
    "avg_pool2d": _t_pool,
    "global_avg_pool": lambda layer, x, params, name, masks: x.mean(dim=tuple(range(2, x.ndim)),
                                                                     keepdim=layer["keepdim"]).reshape(
        x.shape[0], -1, *([1] * (x.ndim - 2) if layer["keepdim"] else [])),
    "batch_norm1d": _t_batch_norm,
    "batch_norm2d": _t_batch_norm,
    "layer_norm": _t_layer_norm,
    "simple_rnn": _t_recurrent,
    "gru": _t_recurrent,
    "lstm": _t_recurrent,
    "embedding": _t_embedding,
}


def torch_stack(layers, x, params, masks, prefix=""):
    for k, layer in enumerate(layers):
        x = TORCH_KINDS[layer["kind"]](layer, x, params, f"{prefix}{k}.", masks)
    return x


def _dense(rng, n_in, n_out, activation, bias=True):
    params = {"weight": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)}
    if bias:
        params["bias"] = rng.standard_normal(n_out) * 0.1
    return {"kind": "dense", "in_features": n_in, "out_features": n_out, "activation": activation,
            "bias": bias, "params": params}


def _all_kinds_stack(rng):
    """Samples (2, 3, 4) through every kind of the reference, nested Residual included."""
    act = lambda name: {"kind": "activation", "activation": name}  # noqa: E731
    body = [_dense(rng, 5, 5, "tanh"), {"kind": "dropout", "p": 0.5}, _dense(rng, 5, 5, None, bias=False),
            {"kind": "residual", "layers": [act("gelu")]}]
    return [_dense(rng, 4, 5, "elu"), act("softmax"), {"kind": "dropout", "p": 0.25},
            {"kind": "residual", "layers": body}, {"kind": "flatten"}, _dense(rng, 30, 6, "leaky_relu"),
            {"kind": "reshape", "shape": (2, -1)}, act("sigmoid"),
            _recurrent(rng, "gru", 3, 4, bidirectional=True, return_sequences=True),
            _recurrent(rng, "simple_rnn", 8, 3, return_sequences=True, nonlinearity="relu"),
            _recurrent(rng, "lstm", 3, 2, bidirectional=True)]


def _recurrent(rng, kind, n_in, hidden, bidirectional=False, return_sequences=False, **extra):
    G = {"simple_rnn": 1, "gru": 3, "lstm": 4}[kind] * hidden
    params = {}
    for s in ["", "_reverse"][:2 if bidirectional else 1]:
        params.update({"weight_ih" + s: rng.uniform(-0.6, 0.6, (G, n_in)), "weight_hh" + s: rng.uniform(-0.6, 0.6, (G, hidden)),
                       "bias_ih" + s: rng.uniform(-0.6, 0.6, G), "bias_hh" + s: rng.uniform(-0.6, 0.6, G)})
    return {"kind": kind, "input_size": n_in, "hidden_size": hidden, "bidirectional": bidirectional,
            "return_sequences": return_sequences, "params": params, **extra}


def _conv(rng, kind, c_in, c_out, kernel, activation, **options):
    dims = 1 if kind == "conv1d" else 2
    pair = lambda v: [v] * dims if isinstance(v, int) else list(v)  # noqa: E731
    k = pair(kernel)
    params = {"weight": rng.standard_normal((c_out, c_in, *k)) / np.sqrt(c_in * np.prod(k)),
              "bias": rng.standard_normal(c_out) * 0.1}
    padding = options.get("padding", 0)
    return {"kind": kind, "in_channels": c_in, "out_channels": c_out, "kernel_size": k,
            "stride": pair(options.get("stride", 1)), "padding": padding if isinstance(padding, str) else pair(padding),
            "dilation": pair(options.get("dilation", 1)), "activation": activation, "bias": True, "params": params}


def _norm(rng, kind, c, **options):
    params = {"weight": 1 + 0.1 * rng.standard_normal(c), "bias": 0.1 * rng.standard_normal(c),
              "running_mean": rng.standard_normal(c), "running_var": rng.random(c) + 0.5}
    return dict({"kind": kind, "num_features": c, "eps": 1e-5, "params": params}, **options)


def _window_kinds_stack(rng):
    """Samples (2, 9, 8) through the convolution, pooling and normalisation kinds,
    with odd sizes, stride above the kernel, padding, dilation and 'same'."""
    pool = lambda kind, k, s, p, **o: dict({"kind": kind, "kernel_size": k, "stride": s, "padding": p}, **o)  # noqa
    return [_conv(rng, "conv2d", 2, 3, (3, 2), "tanh", stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
            _norm(rng, "batch_norm2d", 3),
            pool("max_pool2d", [3, 3], [2, 1], [1, 1]),
            pool("avg_pool2d", [2, 3], [3, 1], [1, 1], count_include_pad=False),
            {"kind": "reshape", "shape": (3, -1)},
            _conv(rng, "conv1d", 3, 4, 3, "elu", padding="same"),
            pool("max_pool1d", [2], [3], [1]),
            pool("avg_pool1d", [3], [1], [1], count_include_pad=True),
            _norm(rng, "batch_norm1d", 4),
            {"kind": "layer_norm", "normalized_shape": [4, 7], "eps": 1e-5,
             "params": {"weight": 1 + rng.standard_normal((4, 7)) * 0.1, "bias": rng.standard_normal((4, 7)) * 0.1}},
            {"kind": "reshape", "shape": (4, 7, 1)},
            {"kind": "global_avg_pool", "keepdim": False}]


def test_every_reference_kind_has_a_torch_form():
    assert set(TORCH_KINDS) == set(ref.KINDS)


@pytest.mark.parametrize("training", [True, False])
def test_window_kinds_match_torch(training, rng):
    """The convolution, pooling and normalisation kinds of the reference (written
    from their definitions, tap by tap and window by window) against torch's
    functional forms: output, input and parameter gradients; batch norm with
    batch statistics in training and the running ones in evaluation."""
    layers = _window_kinds_stack(rng)
    x = rng.standard_normal((3, 2, 9, 8))
    out_shape, param_shapes = ref.stack_shapes(layers, (2, 9, 8))
    dout = rng.standard_normal((3, *out_shape))
    out, dx, grads = ref.network_vjp(layers, x, dout, ref.Pass(training=training))
    params = {}
    xt = t64(x, True)
    out_t = torch_stack(layers, xt, params, [] if training else None)
    *g, gx = torch.autograd.grad((out_t * t64(dout)).sum(), [*params.values(), xt])
    assert out.shape[1:] == out_shape == tuple(out_t.shape[1:])
    assert list(grads) == list(params) == list(param_shapes)
    close(out, out_t)
    close(dx, gx)
    for key, gt in zip(params, g):
        close(grads[key], gt)
    # a wrong reference (max pooling sending its gradient to the last maximum's
    # neighbour) would fail: the tolerance is far below one element's gradient
    assert np.max(np.abs(dx)) > 1e-3


def test_batch_norm_running_update_matches_torch(rng):
    """The running estimates after a training batch: momentum 0.1, the
    unbiased variance (torch.nn.functional.batch_norm updates them in place)."""
    x = rng.standard_normal((5, 3, 4, 2))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    rmt, rvt = t64(rm), t64(rv)
    F.batch_norm(t64(x), rmt, rvt, training=True, momentum=0.1)
    mean, var = ref.running_update(rm, rv, x, 0.1)
    close(mean, rmt)
    close(var, rvt)


@pytest.mark.parametrize("training", [True, False])
def test_layer_kinds_match_torch(training, rng):
    layers = _all_kinds_stack(rng)
    window_kinds = {layer["kind"] for layer in _window_kinds_stack(rng)}  # test_window_kinds_match_torch
    # embedding's input is ids: test_embedding_matches_torch
    assert {layer["kind"] for layer in layers} | {"residual", "embedding"} | window_kinds == set(ref.KINDS)
    x = rng.standard_normal((3, 2, 3, 4))
    masks = [(rng.random((3, 2, 3, 5)) > 0.25).astype(float), (rng.random((3, 2, 3, 5)) > 0.5).astype(float)]
    out_shape, param_shapes = ref.stack_shapes(layers, (2, 3, 4))
    dout = rng.standard_normal((3, *out_shape))
    ctx = ref.Pass(training=training, masks=[m.copy() for m in masks] if training else [])
    out, dx, grads = ref.network_vjp(layers, x, dout, ctx)
    assert not ctx.masks  # each Dropout took its mask

    params = {}
    xt = t64(x, True)
    out_t = torch_stack(layers, xt, params, [m.copy() for m in masks] if training else None)
    *g, gx = torch.autograd.grad((out_t * t64(dout)).sum(), [*params.values(), xt])
    assert out.shape[1:] == out_shape == tuple(out_t.shape[1:])
    assert list(grads) == list(params) == list(param_shapes)
    assert [tuple(p.shape) for p in params.values()] == list(param_shapes.values())
    close(out, out_t)
    close(dx, gx)
    for key, gt in zip(params, g):
        close(grads[key], gt)


def test_embedding_matches_torch(rng):
    """Ids (3, 2, 4) including the padding id, through Embedding and a Dense layer."""
    layers = [{"kind": "embedding", "num_embeddings": 6, "embedding_dim": 3, "padding_idx": 2,
               "params": {"weight": rng.standard_normal((6, 3))}}, _dense(rng, 3, 4, "tanh")]
    x = rng.integers(0, 6, size=(3, 2, 4)).astype(np.float64)
    x[0, 0, 0] = 2
    dout = rng.standard_normal((3, 2, 4, 4))
    out, dx, grads = ref.network_vjp(layers, x, dout)
    params = {}
    out_t = torch_stack(layers, t64(x), params, None)
    g = torch.autograd.grad((out_t * t64(dout)).sum(), list(params.values()))
    close(out, out_t)
    assert not np.any(dx)
    for key, gt in zip(params, g):
        close(grads[key], gt)
    assert not np.any(grads["0.weight"][2])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loss,kind", [("cross_entropy", "labels"), ("cross_entropy", "probabilities"),
                                       ("mse", "values"), ("binary_cross_entropy", "values"),
                                       ("poisson", "values")])
def test_losses_over_the_last_axis_match_torch(loss, kind, weighted, rng):
    """Outputs (n, T, C): every (n, T) position is one row; per-sample weights
    weight all rows of their sample, ``sum_r w_r l_r / sum_r w_r``, written in
    torch as a weighted mean of ``reduction="none"`` losses."""
    n, T, C = 4, 3, 5
    z = rng.standard_normal((n, T, C))
    if loss == "binary_cross_entropy":
        z = 1 / (1 + np.exp(-z))
    y = targets_for(loss, rng, n * T, C, kind)
    y = y.reshape(n, T) if y.ndim == 1 else y.reshape(n, T, C)
    w = rng.random(n) if weighted else None
    zt = t64(z, True)
    zr = zt.reshape(n * T, C)
    if loss == "cross_entropy":
        yt = torch.tensor(y.reshape(-1)) if kind == "labels" else t64(y.reshape(-1, C))
        rows = F.cross_entropy(zr, yt, reduction="none")
    elif loss == "mse":
        rows = F.mse_loss(zr, t64(y.reshape(-1, C)), reduction="none").mean(dim=1)
    elif loss == "poisson":  # torch's value plus the constant xlogy(t, t) - t of the half deviance
        t = y.reshape(-1, C)
        constant = np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0) - t
        rows = (F.poisson_nll_loss(zr, t64(t), log_input=True, reduction="none") + t64(constant)).mean(dim=1)
    else:
        rows = F.binary_cross_entropy(zr, t64(y.reshape(-1, C)), reduction="none").mean(dim=1)
    wt = t64(np.repeat(w, T)) if weighted else torch.ones(n * T, dtype=F64)
    lt = (wt * rows).sum() / wt.sum()
    (gt,) = torch.autograd.grad(lt, zt)
    value, grad = ref.LOSSES[loss](z, y, sample_weight=w)
    close(value, lt)
    close(grad, gt)


def test_activation_softmax_last_is_fused_into_cross_entropy(rng):
    """A final Activation("softmax") is taken over like a Dense layer's: the
    loss sees the values before it as logits."""
    dense = _dense(rng, 4, 5, None)
    layers = [dense, {"kind": "activation", "activation": "softmax"}]
    x, y = rng.standard_normal((6, 2, 4)), rng.integers(0, 5, size=(6, 2))
    params = {}
    logits = torch_stack([dense], t64(x), params, [])
    lt = F.cross_entropy(logits.reshape(-1, 5), torch.tensor(y.reshape(-1)))
    gt = torch.autograd.grad(lt, list(params.values()))
    value, grads = ref.loss_and_gradients(layers, x, y, "cross_entropy")
    close(value, lt)
    for key, g in zip(params, gt):
        close(grads[key], g)
