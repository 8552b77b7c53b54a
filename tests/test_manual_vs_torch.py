"""Manual mode against PyTorch autograd: for random stacks of every layer kind
(Dense over the last axis of N-d samples, Activation, Dropout, Flatten,
Reshape, Residual, nested), ``net.backward(dY)`` for a random dY equals
``torch.autograd.grad((out * dY).sum(), params + [X])`` for every parameter
and the input, to 1e-10 relative in float64.

The torch model is built here, by hand, from the network's layer list (not
by ``backpropx.exchange``), so the two sides share nothing but the weights.
``backward`` follows a training forward, so Dropout runs with masks: the
network's masks (replayed from its generator, see ``conftest.dropout_masks``)
multiply the torch activations too; p = 0 layers are the eval-mode identity,
and the eval-mode forward is compared with ``nn.Dropout`` in ``eval()``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, dropout_masks, randomize

import backpropx as bx

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = 1e-10
ACTS = bx.ACTIVATIONS

TORCH_ACTIVATIONS = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": lambda: nn.ELU(1.0),
    "gelu": lambda: nn.GELU(approximate="none"),
    "softmax": lambda: nn.Softmax(dim=-1),
}


class TorchResidual(nn.Module):
    """y = x + body(x)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class TorchMask(nn.Module):
    """Dropout with a given keep-mask: y = x * keep / (1 - p)."""

    def __init__(self, keep: np.ndarray, p: float) -> None:
        super().__init__()
        self.register_buffer("m", torch.tensor(keep, dtype=torch.float64) / (1.0 - p))

    def forward(self, x):
        return x * self.m


class TorchReshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


def torch_model(layers: list[bx.Layer], masks: list[np.ndarray] | None, prefix: str = ""):
    """(nn.Sequential, {"k.weight": parameter, ...}) computing the layers, with
    their weights; `masks` (consumed in forward order) for training-mode
    dropout, None for eval-mode nn.Dropout."""
    modules, params = [], {}
    for k, layer in enumerate(layers):
        name = f"{prefix}{k}."
        if isinstance(layer, bx.Dense):
            linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(layer.weight)))
                params[name + "weight"] = linear.weight
                if layer.use_bias:
                    linear.bias.copy_(torch.from_numpy(np.array(layer.bias)))
                    params[name + "bias"] = linear.bias
            modules += [linear, TORCH_ACTIVATIONS[layer.activation]()]
        elif isinstance(layer, bx.Activation):
            modules.append(TORCH_ACTIVATIONS[layer.activation]())
        elif isinstance(layer, bx.Dropout):
            modules.append(nn.Dropout(layer.p) if masks is None else TorchMask(masks.pop(0), layer.p))
        elif isinstance(layer, bx.Flatten):
            modules.append(nn.Flatten(1))
        elif isinstance(layer, bx.Reshape):
            modules.append(TorchReshape(layer.output_shape))
        elif isinstance(layer, bx.Residual):
            body, inner = torch_model(layer.layers, masks, name)
            modules.append(TorchResidual(body))
            params.update(inner)
        else:  # pragma: no cover - a new kind needs its torch form here
            raise AssertionError(f"no torch equivalent for {layer!r}")
    return nn.Sequential(*modules), params


def _odd(rng, lo, hi):
    return int(rng.choice(np.arange(lo | 1, hi + 1, 2)))


def random_stack(rng: np.random.Generator) -> tuple[list[bx.Layer], tuple[int, ...]]:
    """A random stack holding at least a Residual, an Activation, a Flatten and
    a Dropout, in random order among Dense and Reshape layers, on samples of
    rank 1 to 3."""
    shape = tuple(_odd(rng, 1, 3) for _ in range(int(rng.integers(0, 3)))) + (_odd(rng, 3, 5),)
    input_shape = shape
    kinds = ["residual", "activation", "flatten", "dropout"] + list(rng.choice(["dense", "reshape", "residual",
                                                                                 "activation"], size=3))
    rng.shuffle(kinds)
    layers: list[bx.Layer] = []
    for kind in kinds:
        f = shape[-1]
        if kind == "dense":
            out = _odd(rng, 3, 5)
            layers.append(bx.Dense(f, out, activation=str(rng.choice(ACTS)), bias=bool(rng.random() < 0.8)))
            shape = (*shape[:-1], out)
        elif kind == "activation":
            layers.append(bx.Activation(str(rng.choice(ACTS))))
        elif kind == "dropout":
            layers.append(bx.Dropout(float(rng.choice([0.0, 0.3, 0.5]))))
        elif kind == "flatten":
            layers.append(bx.Flatten())
            shape = (int(np.prod(shape)),)
        elif kind == "reshape":  # move the last axis's size into a new leading axis of 1 or 3
            lead = 3 if int(np.prod(shape)) % 3 == 0 and f > 3 else 1
            shape = (lead, int(np.prod(shape)) // lead)
            layers.append(bx.Reshape((lead, -1)))
        else:
            act = str(rng.choice(ACTS))
            bodies = [
                [bx.Dense(f, f, activation=act)],
                [bx.Dense(f, 5, activation=act), bx.Dropout(0.5), bx.Dense(5, f)],
                [bx.Activation(act)],
                [bx.Residual([bx.Dense(f, f, activation="tanh")]), bx.Dense(f, f, bias=False)],
            ]
            layers.append(bx.Residual(bodies[int(rng.integers(len(bodies)))]))
    return layers, input_shape


@pytest.mark.parametrize("seed", range(16))
def test_backward_equals_torch_autograd(seed):
    rng = np.random.default_rng([seed, 9])
    layers, shape = random_stack(rng)
    net = bx.Network(layers, input_shape=shape, seed=seed, dtype="float64")
    randomize(net, rng)
    n = (1, 3, 4)[seed % 3]
    X = rng.standard_normal((n, *net.input_shape))
    dY = rng.standard_normal((n, *net.output_shape))

    masks = dropout_masks(net, n)
    out = net.forward(X, training=True)
    dX = net.backward(dY)
    grads = dict(net.named_gradients())

    model, params = torch_model(net.layers, masks)
    assert not masks, "every replayed mask went into the torch model"
    assert list(params) == list(grads)  # the same tensors, in storage order
    Xt = torch.tensor(X, requires_grad=True)
    out_t = model(Xt)
    *g_params, g_x = torch.autograd.grad((out_t * torch.from_numpy(dY)).sum(), [*params.values(), Xt])
    assert_close(out, out_t.detach().numpy(), TOL, "forward")
    assert_close(dX, g_x.numpy(), TOL, "input gradient")
    for (name, g), g_t in zip(grads.items(), g_params):
        assert_close(g, g_t.numpy(), TOL, f"grad[{name!r}]")

    # eval mode: dropout is the identity, as nn.Dropout in eval()
    model_eval, _ = torch_model(net.layers, None)
    with torch.no_grad():
        expected = model_eval.eval()(torch.from_numpy(X)).numpy()
    assert_close(net.forward(X, training=False), expected, TOL, "eval forward")
    assert_close(net.predict(X), expected, TOL, "predict")


def test_the_comparison_rejects_a_wrong_torch_model():
    """The same comparison fails when the torch model differs in one detail:
    a Residual block without its skip connection."""
    rng = np.random.default_rng(3)
    net = bx.Network([bx.Dense(5, 5, activation="tanh"), bx.Residual([bx.Dense(5, 5, activation="elu")])],
                     seed=0, dtype="float64")
    randomize(net, rng)
    X, dY = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    net.forward(X, training=True)
    dX = net.backward(dY)
    model, params = torch_model(net.layers, [])
    model[2] = model[2].body  # drop the skip connection
    Xt = torch.tensor(X, requires_grad=True)
    (g_x,) = torch.autograd.grad((model(Xt) * torch.from_numpy(dY)).sum(), [Xt])
    with pytest.raises(AssertionError, match="exceeds"):
        assert_close(dX, g_x.numpy(), TOL, "input gradient")
