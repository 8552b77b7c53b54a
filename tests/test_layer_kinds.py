"""One parametrised test per layer kind: forward, every parameter gradient and
the input gradient of manual mode (``net.forward(X, training=True)``,
``net.backward(dY)`` for a random dY) against the NumPy reference and against
central finite differences, in float64 (tight) and float32 (loose), on random
configurations of the kind (odd sizes, batch 1, N-d samples where the kind
takes them); and the same comparisons rejecting deliberately broken gradients.

How it is organised, and how to add a layer kind: the reference dispatches by
kind (``tests/reference/stack.py``, ``KINDS``), and :data:`GENERATORS` below
maps every kind to a function drawing a small network around it; every test
here iterates those two tables. A new kind needs its ``KINDS`` entry (its
math in a module of tests/reference), its generator here, and its torch
form in ``TORCH_KINDS`` of test_reference_vs_torch.py (which checks the
reference itself); ``test_every_kind_is_covered`` and
``test_every_reference_kind_has_a_torch_form`` fail until they exist.

Tolerances (``rel_err``: max abs difference over the max magnitude of the
whole tensor, so a 100% error gives >= 1, see conftest.py):

- float64 vs the float64 reference: ``TOL64 = 1e-10``; a chain of at most a
  few hundred roundings of 2^-53 stays below 1e-13 (measured worst case over
  every case below: 1e-15).
- float32 vs the float64 reference run on the same float32 weights and
  inputs: ``TOL32 = 1e-4``; the core rounds to 2^-24 ~ 6e-8 per operation,
  float32 exp/erf/tanh add a few ulp (measured worst case: 5e-7).
- backprop vs central differences of ``L = sum(out * dY)`` in float64
  (step 1e-5): ``TOL_FD = 2e-6`` (truncation ~1e-10, rounding ~1e-11 relative
  to gradients of order 1e-2 or more; measured worst case: 5e-10).
- float32 central differences (step 3e-4, the loss summed in float64 from
  the float32 output): ``TOL_FD32 = 2e-2``. Rounding dominates: ~1e-7 of
  the output per element over a step of 6e-4 (measured worst case: 5e-3).
  A larger step crosses relu kinks for some of these seeds (1e-3 does).
  Recurrent kinds: ``TOL_FD32_RECURRENT = 1e-1``: an output after T steps
  carries the float32 rounding of every step before it (and float32's
  polynomial exp/tanh, within 2 ulp but not smooth at the ulp level), so the
  differences of small gradients are noisier (measured worst case: 6.1e-2,
  gru seed 13). It still rejects a wrong sign or a transposed gradient; the
  float64 differences and the float32 reference comparison are the tight
  checks of these kinds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import assert_close, assert_grads_close, dropout_masks, randomize, ref, ref_stack, rel_err

import backpropx as bx
from backpropx import _core

TOL64 = 1e-10
TOL32 = 1e-4
TOL_FD = 2e-6
TOL_FD32 = 2e-2
TOL_FD32_RECURRENT = 1e-1
RECURRENT = {"simple_rnn", "gru", "lstm"}
FD_EPS = {"float64": 1e-5, "float32": 3e-4}
SEEDS = range(16)

ACTS = bx.ACTIVATIONS  # the core's list: every registered activation, softmax included


def _odd(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.choice(np.arange(lo | 1, hi + 1, 2)))


def _sample_shape(rng: np.random.Generator, seed: int, min_rank: int = 1) -> tuple[int, ...]:
    """A per-sample shape of rank 1..3 (cycling with the seed), odd sizes, the
    last axis (features, softmax classes) at least 3."""
    rank = max(min_rank, 1 + seed % 3)
    return tuple(_odd(rng, 1, 3) for _ in range(rank - 1)) + (_odd(rng, 3, 5),)


Case = tuple[list[bx.Layer], tuple[int, ...]]


# ---- one generator per kind: (layers, input_shape) around that kind -------------
def _dense(rng, seed) -> Case:
    shape = _sample_shape(rng, seed)
    f, o = shape[-1], _odd(rng, 3, 5)
    layers = [bx.Dense(f, o, activation=ACTS[seed % len(ACTS)], bias=seed % 4 != 3)]
    if seed % 2:  # its input gradient through a second layer, over the last axis too
        layers.append(bx.Dense(o, _odd(rng, 1, 5), activation=ACTS[(seed + 3) % len(ACTS)]))
    return layers, shape


def _activation(rng, seed) -> Case:
    shape = _sample_shape(rng, seed)
    name = ACTS[(seed // 2) % len(ACTS)]
    f = shape[-1]
    if seed % 2:  # last: a final softmax is taken over by the network
        return [bx.Dense(f, f + 2, activation="tanh"), bx.Activation(name)], shape
    return [bx.Activation(name), bx.Dense(f, _odd(rng, 1, 5))], shape


def _dropout(rng, seed) -> Case:
    shape = _sample_shape(rng, seed)
    p = (0.0, 0.2, 0.5, 0.75)[seed % 4]
    f = shape[-1]
    if seed % 2:
        return [bx.Dense(f, 9, activation="tanh"), bx.Dropout(p), bx.Dense(9, _odd(rng, 1, 5))], shape
    if len(shape) == 1 and seed % 4 == 2:  # the first layer, its size given by features=
        return [bx.Dropout(p, features=f), bx.Dense(f, 3)], None
    return [bx.Dropout(p)], shape


def _flatten(rng, seed) -> Case:
    shape = _sample_shape(rng, seed, min_rank=2)
    size = int(np.prod(shape))
    variant = seed % 3
    if variant == 0:
        return [bx.Flatten()], shape
    if variant == 1:  # the order of the flattened values reaches the weights
        return [bx.Flatten(), bx.Dense(size, _odd(rng, 1, 5), activation="elu")], shape
    f = shape[-1]
    return [bx.Dense(f, 5, activation="gelu"), bx.Flatten(), bx.Dense(size // f * 5, 3)], shape


def _reshape(rng, seed) -> Case:
    target = (_odd(rng, 1, 3), _odd(rng, 1, 3), _odd(rng, 3, 5))
    size = int(np.prod(target))
    spec = tuple(-1 if j == seed % 4 else d for j, d in enumerate(target))  # one -1 in three of four cases
    variant = seed % 3
    if variant == 0:
        return [bx.Reshape(spec)], (size,)
    if variant == 1:  # a Dense over the last axis of the new shape: the element order matters
        return [bx.Reshape(spec), bx.Dense(target[-1], 3, activation="sigmoid")], (size,)
    return [bx.Dense(5, size, activation="tanh"), bx.Reshape(spec), bx.Dense(target[-1], 3), bx.Flatten()], (5,)


def _residual(rng, seed) -> Case:
    shape = _sample_shape(rng, seed)
    f = shape[-1]
    act = ACTS[seed % len(ACTS)]
    bodies: list[Callable[[], list[bx.Layer]]] = [
        lambda: [bx.Dense(f, f, activation=act)],
        lambda: [bx.Dense(f, 7, activation=act), bx.Dense(7, f)],
        lambda: [bx.Activation(act)],
        lambda: [bx.Dense(f, f, activation="tanh"), bx.Dropout(0.5), bx.Dense(f, f)],
        lambda: [bx.Residual([bx.Dense(f, f, activation=act)]), bx.Dense(f, f, bias=False)],
        lambda: [bx.Flatten(), bx.Reshape(shape)],  # a body of views only: y = 2x
    ]
    layers = [bx.Residual(bodies[seed % len(bodies)]())]
    if seed % 2:
        layers.append(bx.Dense(f, 3, activation="relu"))
    return layers, shape


# ---- windows over (C, L) / (C, H, W): odd sizes, stride above the kernel,
# padding of at least half the kernel, dilation, 1-pixel images, batch 1 ------
CONV_ACTS = [a for a in ACTS if a != "softmax"]


def _batch(seed: int) -> int:
    return (1, 3, 5)[seed % 3]  # as _run draws it


def _conv_axis(rng, seed: int, variant: int) -> tuple[int, int, int, int, int]:
    """(size, kernel, stride, padding, dilation) of one axis; size 1 at times."""
    k = int(rng.integers(1, 4))
    stride = (1, 2, k + 1)[variant % 3]  # k + 1: stride above the kernel
    dilation = (1, 1, 2)[(variant // 3) % 3] if k > 1 else 1
    pad = (0, (k + 1) // 2, k)[(variant // 2) % 3]  # (k+1)//2 >= k/2; k: more than the kernel's half
    span = dilation * (k - 1) + 1
    size = max(1 if variant % 5 == 4 else _odd(rng, 1, 9), span - 2 * pad)  # 1-pixel when it fits
    return size, k, stride, pad, dilation


def _conv(rng, seed, dims: int) -> Case:
    cls = bx.Conv1D if dims == 1 else bx.Conv2D
    c_in, c_out = _odd(rng, 1, 3), _odd(rng, 1, 5)
    axes = [_conv_axis(rng, seed, seed + 2 * a) for a in range(dims)]
    size, kernel, stride, pad, dilation = (tuple(v[i] for v in axes) for i in range(5))
    padding: Any = pad
    if seed % 4 == 1:
        stride, padding = (1,) * dims, "same"
    if seed % 8 == 6:  # pointwise: the samples themselves are the columns
        kernel, stride, padding, dilation = (1,) * dims, (1,) * dims, 0, (1,) * dims
    conv = cls(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=seed % 4 != 3,
               activation=CONV_ACTS[seed % len(CONV_ACTS)])
    shape = (c_in, *size)
    if seed % 2:  # the layer's input gradient reaches the loss through a second convolution
        return [conv, cls(c_out, 3, 1, activation="tanh"), bx.Flatten()], shape
    return [conv], shape


def _pool_axis(rng, variant: int, n: int) -> tuple[int, int, int, int]:
    """(size, kernel, stride, padding) of one axis."""
    k = int(rng.integers(1, 4))
    stride = (k, 1, k + 1)[variant % 3]
    pad = (0, k // 2)[(variant // 3) % 2]
    size = max(1 if variant % 5 == 4 else _odd(rng, 1, 9), k - 2 * pad)
    return size, k, stride, pad


def _pool(rng, seed, kind: str) -> Case:
    dims = int(kind[-2])
    cls = {"max_pool1d": bx.MaxPool1D, "max_pool2d": bx.MaxPool2D, "avg_pool1d": bx.AvgPool1D,
           "avg_pool2d": bx.AvgPool2D}[kind]
    axes = [_pool_axis(rng, seed + 2 * a, _batch(seed)) for a in range(dims)]
    size, kernel, stride, pad = (tuple(v[i] for v in axes) for i in range(4))
    extra = {"count_include_pad": seed % 2 == 0} if kind.startswith("avg") else {}
    pool = cls(kernel, stride=None if seed % 7 == 0 else stride, padding=pad, **extra)
    c = _odd(rng, 1, 3)
    if seed % 2:  # behind a convolution, whose gradients then pass through the pooling
        conv = (bx.Conv1D if dims == 1 else bx.Conv2D)(2, c, 1, activation="tanh")
        return [conv, pool, bx.Flatten()], (2, *size)
    return [pool], (c, *size)


def _global_avg_pool(rng, seed) -> Case:
    rank = 2 + seed % 3
    shape = (_odd(rng, 1, 5), *(_odd(rng, 1, 5) for _ in range(rank - 1)))
    pool = bx.GlobalAvgPool(keepdim=seed % 4 == 2)
    if seed % 2:
        return [pool, bx.Flatten(), bx.Dense(shape[0], 3, activation="relu")], shape
    return [pool], shape


def _batch_norm(rng, seed, dims: int) -> Case:
    c = _odd(rng, 3, 5)  # a single channel's gradients can be too small for float32 differences
    if dims == 1:  # (C,) needs a batch above 1 in training
        shape: tuple[int, ...] = (c,) if _batch(seed) > 1 and seed % 2 else (c, _odd(rng, 3, 7))
    else:
        shape = (c, _odd(rng, 1, 5), _odd(rng, 3, 5) if _batch(seed) == 1 else _odd(rng, 1, 5))
    cls = bx.BatchNorm1D if dims == 1 else bx.BatchNorm2D
    options = [{}, {"affine": False}, {"momentum": None}, {"track_running_stats": False}, {"eps": 1e-3}]
    bn = cls(c, **options[seed % len(options)])
    if seed % 3 == 1:  # between two layers with parameters; the first without a bias, which
        # the normalisation would cancel (its gradient is zero)
        head = ((bx.Conv1D(2, c, 1, bias=False) if len(shape) == 2 else bx.Conv2D(2, c, 1, bias=False))
                if len(shape) > 1 else bx.Dense(2, c, bias=False))
        return [head, bn, bx.Activation("tanh"), bx.Flatten(), bx.Dense(int(np.prod(shape)), 3)], (2, *shape[1:])
    return [bn], shape


def _layer_norm(rng, seed) -> Case:
    shape = _sample_shape(rng, seed)
    axes = 1 + (seed // 3) % len(shape)
    norm = shape[len(shape) - axes:]
    options = [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 1e-3}]
    ln = bx.LayerNorm(norm, **options[seed % len(options)])
    if seed % 2:
        return [bx.Dense(shape[-1], shape[-1], activation="tanh"), ln, bx.Dense(shape[-1], 3)], shape
    return [ln], shape


def _recurrent(cls, rng, seed, **extra) -> Case:
    """One recurrent layer (both directions, sequences or the final state, with and
    without bias), alone, under a Dense over the last axis, or stacked."""
    T, F, H = _odd(rng, 1, 5), _odd(rng, 1, 3), _odd(rng, 1, 3)
    bidir, seqs = bool((seed // 2) % 2), seed % 3 != 0
    D = 2 if bidir else 1
    layers = [cls(F, H, bidirectional=bidir, return_sequences=seqs, bias=seed % 5 != 4, **extra)]
    if seed % 4 == 1:
        layers.append(bx.Dense(D * H, 3, activation="tanh"))
    elif seed % 4 == 3 and seqs:
        layers.append(cls(D * H, 2, bidirectional=not bidir, **extra))
    return layers, (T, F)


def _simple_rnn(rng, seed) -> Case:
    return _recurrent(bx.SimpleRNN, rng, seed, nonlinearity=("tanh", "relu")[seed % 2])


def _gru(rng, seed) -> Case:
    return _recurrent(bx.GRU, rng, seed)


def _lstm(rng, seed) -> Case:
    return _recurrent(bx.LSTM, rng, seed)


def _embedding(rng, seed) -> Case:
    V, E = _odd(rng, 3, 7), _odd(rng, 1, 5)
    shape = (_odd(rng, 1, 5),) if seed % 2 else (_odd(rng, 1, 3), _odd(rng, 1, 3))
    layers = [bx.Embedding(V, E, padding_idx=(None, 0, -1)[seed % 3])]
    if seed % 4 == 1:
        layers.append(bx.Dense(E, 3, activation="tanh"))
    elif seed % 4 == 3 and len(shape) == 1:
        layers.append(bx.GRU(E, 3, return_sequences=True))
    return layers, shape


#: kind -> a function (rng, seed) -> (layers, input_shape or None) drawing a
#: small network that contains the kind.
GENERATORS: dict[str, Callable[[np.random.Generator, int], Case]] = {
    "dense": _dense,
    "activation": _activation,
    "dropout": _dropout,
    "flatten": _flatten,
    "reshape": _reshape,
    "residual": _residual,
    "conv1d": lambda rng, seed: _conv(rng, seed, 1),
    "conv2d": lambda rng, seed: _conv(rng, seed, 2),
    "max_pool1d": lambda rng, seed: _pool(rng, seed, "max_pool1d"),
    "max_pool2d": lambda rng, seed: _pool(rng, seed, "max_pool2d"),
    "avg_pool1d": lambda rng, seed: _pool(rng, seed, "avg_pool1d"),
    "avg_pool2d": lambda rng, seed: _pool(rng, seed, "avg_pool2d"),
    "global_avg_pool": _global_avg_pool,
    "batch_norm1d": lambda rng, seed: _batch_norm(rng, seed, 1),
    "batch_norm2d": lambda rng, seed: _batch_norm(rng, seed, 2),
    "layer_norm": _layer_norm,
    "simple_rnn": _simple_rnn,
    "gru": _gru,
    "lstm": _lstm,
    "embedding": _embedding,
}

def _token_ids(rng: np.random.Generator, net: bx.Network, n: int) -> np.ndarray:
    """Ids of the first Embedding layer, never its padding_idx: that row's gradient is
    zero by torch's convention, not by the calculus the finite differences check
    (tests/test_recurrent.py covers padding ids against torch)."""
    layer = net.layers[0]
    ids = rng.integers(0, layer.num_embeddings - (layer.padding_idx is not None), (n, *net.input_shape))
    if layer.padding_idx is not None:
        ids[ids >= layer.padding_idx] += 1
    return ids


#: first-layer kind -> its input data (rng, net, n) -> X, for kinds whose input is
#: not a real-valued tensor (token ids: no input gradient to check either).
DATA: dict[str, Callable[[np.random.Generator, bx.Network, int], np.ndarray]] = {"embedding": _token_ids}
CASES = [(kind, seed) for kind in GENERATORS for seed in SEEDS]


def _kinds_in(layers) -> set[str]:
    out = set()
    for layer in layers:
        out.add(layer.kind)
        out |= _kinds_in(getattr(layer, "layers", []))
    return out


@dataclasses.dataclass
class Run:
    """A network of the case, its data, and what manual mode computed."""

    net: bx.Network
    X: np.ndarray
    dY: np.ndarray
    masks: list[np.ndarray]
    rng_state: Any
    out: np.ndarray
    dX: np.ndarray
    grads: dict[str, np.ndarray]

    def reference(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(out, dX, grads) of the float64 reference on the network's own weights and inputs."""
        ctx = ref.Pass(training=True, masks=[m.copy() for m in self.masks])
        return ref.network_vjp(ref_stack(self.net), self.X.astype(np.float64), self.dY.astype(np.float64), ctx)


def _run(kind: str, seed: int, dtype: str) -> Run:
    rng = np.random.default_rng([seed, list(GENERATORS).index(kind)])
    layers, input_shape = GENERATORS[kind](rng, seed)
    net = bx.Network(layers, input_shape=input_shape, seed=seed, dtype=dtype)
    randomize(net, rng)
    n = (1, 3, 5)[seed % 3]  # batch 1 included
    first = net.layers[0].kind
    X = (DATA[first](rng, net, n) if first in DATA else rng.standard_normal((n, *net.input_shape))).astype(dtype)
    dY = rng.standard_normal((n, *net.output_shape)).astype(dtype)
    net.zero_grad()
    state = net._core.get_rng_state()
    masks = dropout_masks(net, n)
    out = net.forward(X, training=True)
    dX = net.backward(dY)
    grads = {name: np.array(g) for name, g in net.named_gradients()}
    return Run(net, X, dY, masks, state, out, dX, grads)


def _finite_differences(run: Run, eps: float) -> dict[str, np.ndarray]:
    """Central differences of ``L = sum(out * dY)`` for every parameter and the
    input, with the dropout masks of the run (the generator is rewound)."""
    dY64 = run.dY.astype(np.float64)

    def loss() -> float:
        run.net._core.set_rng_state(run.rng_state)
        return float(np.sum(run.net.forward(run.X, training=True).astype(np.float64) * dY64))

    params = dict(run.net.named_parameters())  # writable views of the C++ buffer
    if run.net.layers[0].kind not in DATA:  # token ids have no gradient to check
        params["input"] = run.X
    return ref.central_difference_gradients(loss, params, eps=eps)


# ---- the tests -----------------------------------------------------------------
def test_every_kind_is_covered():
    """The core's kinds, the reference's table and the generators agree, and
    each generator's networks contain its kind."""
    assert set(_core.layer_kinds) == set(ref.KINDS) == set(GENERATORS)
    for kind in GENERATORS:
        for seed in SEEDS:
            layers, _ = GENERATORS[kind](np.random.default_rng(seed), seed)
            assert kind in _kinds_in(layers), (kind, seed)
    # every activation, softmax included, as a standalone layer and fused in Dense
    assert {ACTS[(s // 2) % len(ACTS)] for s in SEEDS} == set(ACTS)
    assert {ACTS[s % len(ACTS)] for s in SEEDS} == set(ACTS)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind,seed", CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_kind_matches_reference_and_finite_differences(kind, seed, dtype):
    run = _run(kind, seed, dtype)
    net = run.net
    tol = TOL64 if dtype == "float64" else TOL32

    # shapes: the network's and every layer's, and each parameter's name and shape
    stack = ref_stack(net)
    out_shape, param_shapes = ref.stack_shapes(stack, net.input_shape)
    assert net.output_shape == out_shape
    for k, layer in enumerate(net.layers):
        assert layer.output_shape == ref.stack_shapes(stack[:k + 1], net.input_shape)[0], k
    assert [(name, p.shape) for name, p in net.named_parameters()] == list(param_shapes.items())

    # manual mode against the reference
    out, dX, grads = run.reference()
    assert run.out.dtype == run.dX.dtype == np.dtype(dtype)
    assert run.dX.shape == run.X.shape
    assert_close(run.out, out, tol, "forward")
    assert_close(run.dX, dX, tol, "input gradient")
    assert_grads_close(run.grads, grads, tol)
    # inference is the reference's eval pass (dropout the identity)
    assert_close(net.predict(run.X), ref.forward(stack, run.X.astype(np.float64)), tol, "predict")

    # and against central differences
    numeric = _finite_differences(run, FD_EPS[dtype])
    actual = dict(run.grads, input=run.dX) if "input" in numeric else run.grads
    tol_fd32 = TOL_FD32_RECURRENT if _kinds_in(net.layers) & RECURRENT else TOL_FD32
    assert_grads_close(actual, numeric, TOL_FD if dtype == "float64" else tol_fd32,
                       "backprop vs finite differences")


def _corruptions(expected: np.ndarray, tol: float):
    """Wrong versions of a tensor: its smallest element off by 10 tol of the
    tensor's scale, the sign flipped, and (2-D) transposed."""
    scale = np.max(np.abs(expected), initial=0.0)
    assert scale > 0, "a test tensor that is all zero could hide any error"
    bad = expected.copy()
    flat = bad.reshape(-1)
    flat[int(np.argmin(np.abs(flat)))] += 10 * tol * scale
    yield "one element", bad
    yield "sign", -expected
    if expected.ndim == 2 and (expected.shape[0] != expected.shape[1] or not np.allclose(expected, expected.T)):
        yield "transposed", expected.T.copy()  # a shape mismatch, or other values


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind,seed", [(k, s) for k in GENERATORS for s in range(4)])
def test_broken_gradient_is_rejected(kind, seed, dtype, monkeypatch):
    """The comparisons of the test above fail on a wrong gradient: every
    compared tensor corrupted in one element, in sign or transposed; and the
    reference's entry for the kind broken (its backward's sign flipped)."""
    run = _run(kind, seed, dtype)
    tol = TOL64 if dtype == "float64" else TOL32
    out, dX, grads = run.reference()
    expected = dict(grads, input=dX, output=out)
    actual = dict(run.grads, input=run.dX, output=run.out)
    assert_grads_close(actual, expected, tol)
    for key, value in expected.items():
        if not np.any(value):
            continue  # an exactly zero gradient (a dropped unit): nothing to corrupt
        for how, bad in _corruptions(value, tol):
            with pytest.raises(AssertionError):
                assert_close(actual[key], bad, tol, f"{key} ({how})")
    assert any(np.any(v) for v in (dX, *grads.values())), "no gradient at all to compare"

    original = ref.KINDS[kind]

    def flipped(layer, cache, dy, ctx):
        dx, own = original.backward(layer, cache, dy, ctx)
        return -dx, {name: -g for name, g in own.items()}

    monkeypatch.setitem(ref.KINDS, kind, dataclasses.replace(original, backward=flipped))
    _, bad_dX, bad_grads = run.reference()
    errors = [rel_err(run.dX, bad_dX)] + [rel_err(run.grads[k], bad_grads[k]) for k in bad_grads]
    assert max(errors) > 0.5, "a sign-flipped backward of the kind went unnoticed"


def test_large_batches_on_two_threads(restore_threads):
    """Sizes past the threads' grain (rows x features > 16384 per element-wise
    pass): the same bits on 1 and 2 threads, and the reference's values, for
    every activation fused in Dense and standalone."""
    rng = np.random.default_rng(0)
    X, dY = rng.standard_normal((48, 8, 40)), rng.standard_normal((48, 10))  # 384 rows of 48 after the first layer
    for act in ACTS:
        runs = []
        for threads in (1, 2):
            bx.set_num_threads(threads)
            net = bx.Network([bx.Dense(40, 48, activation=act), bx.Dropout(0.3),
                              bx.Residual([bx.Dense(48, 48, activation="tanh")]), bx.Activation(act), bx.Flatten(),
                              bx.Dense(8 * 48, 10, activation="softmax")], input_shape=(8, 40), seed=1, dtype="float64")
            randomize(net, np.random.default_rng(1))
            masks = dropout_masks(net, 48)
            out = net.forward(X, training=True)
            runs.append((out, net.backward(dY), {k: np.array(g) for k, g in net.named_gradients()}))
        (out, dX, grads), (out2, dX2, grads2) = runs
        np.testing.assert_array_equal(out2, out, err_msg=act)
        np.testing.assert_array_equal(dX2, dX, err_msg=act)
        for key in grads:
            np.testing.assert_array_equal(grads2[key], grads[key], err_msg=f"{act} {key}")
        ref_out, ref_dX, ref_grads = ref.network_vjp(ref_stack(net), X, dY, ref.Pass(training=True, masks=masks))
        assert_close(out, ref_out, TOL64, f"{act} forward")
        assert_close(dX, ref_dX, TOL64, f"{act} input gradient")
        assert_grads_close(grads, ref_grads, TOL64, act)
