"""Shared pieces of the property-based suite (Hypothesis).

The guarantee every property checks: a call on generated input either
returns a correct result or raises one of the documented exception types
(ValueError, TypeError, MemoryError, FloatingPointError/NonFiniteError,
RuntimeError for busy trainers) and then leaves everything exactly as it
was. Nothing crashes: the properties that feed hostile bytes or sizes to the
C++ core run in a child process (test_crash_risky.py).

Runs are reproducible and bounded: the "ci" profile derandomizes (a fixed
seed per test), keeps no example database and caps the examples per test
(``examples(n)``). ``BACKPROPX_HYPOTHESIS_PROFILE=thorough`` multiplies the
caps by 20 and draws fresh random examples, for a longer local hunt.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

import backpropx as bx

from conftest import ref, ref_stack  # tests/ is on sys.path: tests/conftest.py and tests/reference

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much, HealthCheck.large_base_example])
settings.register_profile("ci", derandomize=True, **_COMMON)
settings.register_profile("thorough", derandomize=False, **_COMMON)
PROFILE = os.environ.get("BACKPROPX_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 20 if PROFILE == "thorough" else 1


def examples(n: int) -> settings:
    """Settings for a property run on `n` examples in CI (n * 20 when thorough)."""
    return settings(max_examples=n * SCALE)


#: What a rejected call may raise (NonFiniteError is a FloatingPointError).
DOCUMENTED = (ValueError, TypeError, MemoryError, FloatingPointError)

ELEMENTWISE = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu")
ACTIVATIONS = ELEMENTWISE + ("softmax",)
LOSSES = ("cross_entropy", "mse", "binary_cross_entropy")


# ---- values ---------------------------------------------------------------------

SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e-310, 1.4e-45, 1e-40, 1e-7, 65504.0,
           3.4e38, 3.5e38, -3.5e38, 1e300, -1e300, 1.7976931348623157e308]


def any_float() -> st.SearchStrategy[float]:
    """Any double, with NaN, infinities, subnormals, float32 overflow and -0 made likely."""
    return st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                     st.floats(-10, 10))


def moderate_float() -> st.SearchStrategy[float]:
    """Finite values the network can take without overflow, subnormals included."""
    return st.one_of(st.floats(-1e3, 1e3, allow_subnormal=True), st.sampled_from([0.0, -0.0, 5e-324, 1e-310, 1e-40]))


# ---- arrays in every dtype and layout ---------------------------------------------

DTYPES = ("float64", "float32", "float16", ">f8", "<f4", "int8", "int64", "uint8", "bool", "complex128",
          "object", "str")
LAYOUTS = ("c", "fortran", "strided", "reversed", "readonly", "broadcast", "list", "tuple_rows")


def as_layout(a: np.ndarray, layout: str) -> Any:
    """`a` (values kept except for "broadcast", which repeats the first row)
    in another memory layout or container."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim >= 1:
        wide = np.repeat(a, 2, axis=-1) if a.ndim >= 1 else a
        return wide[..., ::2]
    if layout == "reversed" and a.ndim >= 1:
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "readonly":
        b = np.array(a)  # (a 0-d cast may be a NumPy scalar, which has no flags)
        b.flags.writeable = False
        return b
    if layout == "broadcast" and a.ndim >= 1 and a.shape[0] > 0:
        return np.broadcast_to(a[:1], a.shape)
    if layout == "list":
        return a.tolist()
    if layout == "tuple_rows" and a.ndim >= 1:
        return tuple(a[i] for i in range(a.shape[0]))
    return a


def cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 `values` as `dtype` the way a user's data would arrive (overflow
    and NaN conversions included; NumPy's warnings about them are expected)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "object":
            return values.astype(object)
        if dtype == "str":
            return values.astype(str)
        if np.dtype(dtype).kind in "iub":
            return np.nan_to_num(values, nan=0, posinf=0, neginf=0).astype(dtype)
        return values.astype(dtype)


@st.composite
def arrays(draw, shape: tuple[int, ...], values: st.SearchStrategy[float] | None = None,
           dtypes: tuple[str, ...] = DTYPES, layouts: tuple[str, ...] = LAYOUTS) -> tuple[Any, np.ndarray, str, str]:
    """(array as the user passes it, its float64 values, dtype, layout)."""
    values = values if values is not None else any_float()
    size = int(np.prod(shape)) if shape else 1
    flat = np.array(draw(st.lists(values, min_size=size, max_size=size)), dtype=np.float64)
    base = flat.reshape(shape)
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    return as_layout(cast(base, dtype), layout), base, dtype, layout


@st.composite
def shapes_around(draw, rows: int, sample: int | tuple[int, ...]) -> tuple[int, ...]:
    """Usually (rows, *sample); sometimes a wrong last size, flattened, one
    axis too many, 0-d or empty."""
    sample = (sample,) if isinstance(sample, int) else tuple(sample)
    kind = draw(st.sampled_from(["right"] * 6 + ["wide", "flat", "deep", "scalar", "empty"]))
    if kind == "wide":
        return (rows, *sample[:-1], draw(st.sampled_from([0, sample[-1] + 1, max(sample[-1] - 1, 0)])))
    if kind == "flat":
        return (rows * int(np.prod(sample)),)
    if kind == "deep":
        return (rows, *sample, 1)
    if kind == "scalar":
        return ()
    if kind == "empty":
        return (0, *sample)
    return (rows, *sample)


# ---- networks ---------------------------------------------------------------------

@st.composite
def network_specs(draw, max_depth: int = 3, max_width: int = 5, n_in: int | None = None,
                  n_out: int | None = None, last: tuple[str, ...] = ACTIVATIONS) -> dict[str, Any]:
    """A stack of Dense layers, each hidden one possibly followed by Dropout,
    an Activation layer, or wrapped in a Residual block; the input is (F,) or
    a sequence (T, F) that Dense layers map step by step until a Flatten
    before the last layer (so the output is always (C,))."""
    depth = draw(st.integers(1, max_depth))
    widths = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    if n_in is not None:
        widths[0] = n_in
    if n_out is not None:
        widths[-1] = n_out
    steps = draw(st.sampled_from([None, None, 2, 3])) if depth > 1 and n_in is None else None
    layers = []
    for k in range(depth):
        hidden = k < depth - 1
        act = draw(st.sampled_from(last if not hidden else ELEMENTWISE))
        extra = draw(st.sampled_from(["none", "none", "dropout", "activation", "residual"])) if hidden else "none"
        layers.append({"in": widths[k], "out": widths[k + 1], "activation": act, "bias": draw(st.booleans()),
                       "extra": extra, "extra_activation": draw(st.sampled_from(ELEMENTWISE))})
    return {"layers": layers, "steps": steps, "dtype": draw(st.sampled_from(["float64", "float32"])),
            "seed": draw(st.integers(0, 2**64 - 1)), "init": draw(st.sampled_from(["default", "uniform", "normal"]))}


def build(spec: dict[str, Any]) -> bx.Network:
    return bx.Network(**build_args(spec))


def build_args(spec: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of bx.Network for `spec` (fresh layer objects)."""
    def dense(n_in: int, n_out: int, act: str, bias: bool) -> bx.Dense:
        return bx.Dense(n_in, n_out, activation=None if act == "identity" else act, bias=bias, init=spec["init"])

    layers: list[bx.Layer] = []
    steps = spec.get("steps")
    last = len(spec["layers"]) - 1
    for k, s in enumerate(spec["layers"]):
        n_in = s["in"]
        if steps and k == last:
            layers.append(bx.Flatten())
            n_in = s["in"] * steps
        if s.get("extra") == "residual":  # y = x + f(x): f keeps the width, then the layer itself
            layers.append(bx.Residual([dense(n_in, n_in, s["activation"], s["bias"])]))
        layers.append(dense(n_in, s["out"], s["activation"], s["bias"]))
        if s.get("extra") == "dropout":
            layers.append(bx.Dropout(0.3))
        elif s.get("extra") == "activation":
            layers.append(bx.Activation(s["extra_activation"]))
    input_shape = (steps, spec["layers"][0]["in"]) if steps else (spec["layers"][0]["in"],)
    event("sequence input" if steps else "flat input")
    for s in spec["layers"]:
        if s.get("extra", "none") != "none":
            event(f"with {s['extra']}")
    return {"layers": layers, "input_shape": input_shape, "seed": spec["seed"], "dtype": spec["dtype"]}


def magnitudes(layers: list[dict[str, Any]], x: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The reference stack run on |x| with |parameters|, each non-identity
    activation replaced by z -> z + 1 (|f(z)| <= |z| + 1 for every one): an
    upper bound of every value's magnitude. Also returns the number of layers
    and the widest sum, for the rounding bound."""
    count, widest = 0, 1
    for layer in layers:
        count += 1
        kind = layer["kind"]
        if kind == "dense":
            W = np.abs(layer["params"]["weight"])
            x = x @ W.T + np.abs(layer["params"].get("bias", 0.0))
            widest = max(widest, W.shape[1] + 1)
            if layer.get("activation") not in (None, "identity"):
                x = x + 1
        elif kind == "activation":
            x = x if layer.get("activation") in (None, "identity") else x + 1
        elif kind in ("flatten", "reshape"):  # sizes spelled out: 0 rows cannot infer a -1
            size = int(np.prod(x.shape[1:]))
            shape = [size] if kind == "flatten" else list(layer["shape"])
            if -1 in shape:
                shape[shape.index(-1)] = size // int(np.prod([d for d in shape if d != -1]))
            x = x.reshape(x.shape[0], *shape)
        elif kind == "residual":
            fx, inner, wide = magnitudes(layer["layers"], x)
            x, count, widest = x + fx, count + inner, max(widest, wide)
        elif kind != "dropout":
            raise ValueError(f"no magnitude rule for layer kind {kind!r}")
    return x, count, widest


def reference_output_and_bound(net: bx.Network, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference forward pass in float64 and a bound on how far a correct
    core may be from it: every layer's rounding, relative to the magnitudes
    its sums can reach, carried through the later layers (activations are at
    most 1.2-Lipschitz), plus underflow's absolute error."""
    finfo = np.finfo(net.dtype)
    eps, tiny = float(finfo.eps), float(finfo.smallest_subnormal)
    stack = ref_stack(net)
    x = X.astype(net.dtype).astype(np.float64)
    expected = ref.forward(stack, x)
    size, count, widest = magnitudes(stack, np.abs(x))
    factor = count * (widest + 4) * 1.2**count
    return expected, factor * (eps * size + tiny) + tiny


# ---- targets ------------------------------------------------------------------------

@st.composite
def targets(draw, loss: str, n: int, c: int) -> tuple[Any, str]:
    """(y, form) for `loss`: usually valid, often not (wrong range, kind, shape, values)."""
    valid_forms = {"cross_entropy": ["labels", "float_labels", "rows", "onehot"],
                   "mse": ["values", "flat_values"], "binary_cross_entropy": ["probs", "flat_probs"]}[loss]
    form = draw(st.sampled_from(valid_forms * 6 + ["out_of_range", "negative", "fractional", "bool", "nan_rows",
                                                   "above_one", "wrong_rows", "wrong_cols", "strings", "nested"]))
    ints = st.integers(0, max(c - 1, 0))
    unit = st.floats(0, 1)
    if form == "labels":
        y: Any = np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=draw(st.sampled_from(["int64", "int32", "uint8"])))
    elif form == "float_labels":
        y = np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.float64)
    elif form in ("rows", "probs"):
        y = np.array(draw(st.lists(st.lists(unit, min_size=c, max_size=c), min_size=n, max_size=n)), dtype=np.float64).reshape(n, c)
    elif form == "onehot":
        labels = draw(st.lists(ints, min_size=n, max_size=n))
        y = np.eye(c)[labels] if n else np.zeros((0, c))
    elif form in ("values",):
        y = np.array(draw(st.lists(st.lists(moderate_float(), min_size=c, max_size=c), min_size=n, max_size=n))).reshape(n, c)
    elif form in ("flat_values", "flat_probs"):
        y = np.array(draw(st.lists(unit if form == "flat_probs" else moderate_float(), min_size=n, max_size=n)))
    elif form == "out_of_range":
        y = np.full(n, c + draw(st.integers(0, 2**62)), dtype=np.int64)
    elif form == "negative":
        y = np.full(n, -draw(st.integers(1, 2**62)), dtype=np.int64)
    elif form == "fractional":
        y = np.full(n, 0.5)
    elif form == "bool":
        y = np.zeros(n, dtype=bool)
    elif form == "nan_rows":
        y = np.full((n, c), draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    elif form == "above_one":
        y = np.full((n, c), draw(st.sampled_from([1.5, -0.5, 3.5e38, 1e300])))
    elif form == "wrong_rows":
        y = np.zeros(n + 1, dtype=np.int64)
    elif form == "wrong_cols":
        y = np.zeros((n, c + 1))
    elif form == "strings":
        y = np.array(["a"] * n)
    else:
        y = [[[0]]] * n
    return y, form


# ---- snapshots: "exactly as it was" ----------------------------------------------------

def digest(arrays: Any) -> str:
    h = hashlib.sha256()
    if isinstance(arrays, dict):
        for key in sorted(arrays):
            h.update(str(key).encode())
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
    else:
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def network_state(net: bx.Network) -> tuple:
    return digest(net.state_dict()), tuple(layer.trainable for layer in net.layers)


def trainer_state(trainer: bx.Trainer) -> tuple:
    """Everything a rejected call must leave alone."""
    return (network_state(trainer.network), digest(trainer._opt_core.get_state()), trainer._opt_core.steps,
            trainer._opt_core.lr, tuple(trainer._core.get_rng_state()), trainer.epochs_done, id(trainer.history),
            json.dumps([trainer.history.epoch, trainer.history.history]), trainer.optimizer.lr)


def rejected_or(call: Callable[[], Any], state: Callable[[], Any], allowed: tuple = DOCUMENTED) -> tuple[bool, Any]:
    """Runs `call`; if it raises, the exception must be one of `allowed` and
    `state()` must not have changed. Returns (accepted, result or exception)."""
    before = state()
    try:
        result = call()
    except allowed as exc:
        event(f"rejected: {type(exc).__name__}")
        after = state()
        assert after == before, f"rejected call ({type(exc).__name__}: {exc}) changed the state"
        assert str(exc), f"{type(exc).__name__} without a message"
        return False, exc
    event("accepted")
    return True, result


def all_finite(net: bx.Network) -> bool:
    return all(np.isfinite(p).all() for p in net.parameters())
