"""Properties of Network: predict, loss_and_gradients and load_state_dict on
generated networks and generated input in every dtype, layout and value."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from property_helpers import (
    DTYPES,
    LOSSES,
    any_float,
    arrays,
    build,
    build_args,
    digest,
    examples,
    moderate_float,
    network_specs,
    network_state,
    ref,
    ref_stack,
    reference_output_and_bound,
    rejected_or,
    shapes_around,
    targets,
)

import backpropx as bx

NUMERIC = ("float64", "float32", "float16", ">f8", "<f4", "int8", "int64", "uint8", "bool")


def canonical(a, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a), dtype=dtype)


@examples(80)
@given(spec=network_specs(), data=st.data())
def test_predict_returns_the_reference_output_or_a_clean_error(spec, data):
    net = build(spec)
    rows = data.draw(st.integers(0, 5), label="rows")
    shape = data.draw(shapes_around(rows, net.input_shape), label="shape")
    X, values, dtype, layout = data.draw(arrays(shape), label="X")
    accepted, out = rejected_or(lambda: net.predict(X), lambda: network_state(net))
    arr = np.asarray(X)
    if not accepted:
        return
    # Only well-formed, finite, real input is accepted...
    rows = arr.shape[0] if arr.ndim else -1
    assert arr.dtype.kind in "biuf" and arr.shape == (rows, *net.input_shape)
    with np.errstate(over="ignore"):
        assert np.isfinite(arr.astype(net.dtype)).all(), "non-finite input accepted"
    # ... gives a finite array of the right shape and dtype ...
    assert out.shape == (rows, net.out_features) and out.dtype == net.dtype and np.isfinite(out).all()
    # ... whatever the layout or container: the same bits as a C-contiguous copy ...
    np.testing.assert_array_equal(out, net.predict(canonical(X, net.dtype)))
    # ... and the reference's output within the rounding bound.
    expected, bound = reference_output_and_bound(net, arr.astype(np.float64))
    assert np.all(np.abs(out - expected) <= bound), np.max(np.abs(out - expected) - bound)


@examples(100)
@given(spec=network_specs(), loss=st.sampled_from(LOSSES), data=st.data())
def test_loss_and_gradients_are_correct_or_a_clean_error(spec, loss, data):
    net = build(spec)
    n = data.draw(st.sampled_from([1, 2, 3, 4, 5, 0]), label="n")
    values = data.draw(st.sampled_from([moderate_float(), moderate_float(), any_float()]), label="values")
    # Mostly well-formed X, so that the targets and weights get tested too.
    shape = (n, *net.input_shape) if data.draw(st.integers(0, 3)) else data.draw(shapes_around(n, net.input_shape))
    dtypes = NUMERIC if data.draw(st.integers(0, 3)) else DTYPES
    X, _, _, _ = data.draw(arrays(shape, values=values, dtypes=dtypes), label="X")
    y, form = data.draw(targets(loss, n, net.out_features), label="y")
    w_kind = data.draw(st.sampled_from(["none", "none", "ones", "random", "negative", "nan", "zeros", "scalar"]))
    w = {"none": None, "ones": np.ones(n), "random": np.linspace(0.1, 2.0, n), "negative": -np.ones(n),
         "nan": np.full(n, math.nan), "zeros": np.zeros(n), "scalar": 2.0}[w_kind]
    accepted, result = rejected_or(lambda: net.loss_and_gradients(X, y, loss=loss, sample_weight=w),
                                   lambda: network_state(net))
    if not accepted:
        return
    value, grads = result
    assert math.isfinite(value)
    sd = net.state_dict()
    assert list(grads) == list(sd) and all(grads[k].shape == sd[k].shape for k in sd)
    assert all(np.isfinite(g).all() for g in grads.values())
    if w_kind == "nan" or w_kind == "negative":
        raise AssertionError(f"sample_weight {w_kind} accepted")
    # Layout, container and label form do not change a bit.
    Xc = canonical(X, net.dtype)
    again = net.loss_and_gradients(Xc, y, loss=loss, sample_weight=w)
    assert again[0] == value and digest(again[1]) == digest(grads)
    if loss == "cross_entropy" and np.asarray(y).ndim == 1:
        rows = np.eye(net.out_features)[np.asarray(y).astype(np.int64)]
        as_rows = net.loss_and_gradients(Xc, rows, loss=loss, sample_weight=w)
        assert as_rows[0] == value and digest(as_rows[1]) == digest(grads)
    if w_kind == "ones":
        plain = net.loss_and_gradients(Xc, y, loss=loss)
        assert plain[0] == value and digest(plain[1]) == digest(grads)
    # Correct: the reference (float64, unweighted, moderate values).
    if net.dtype == np.float64 and w is None and np.max(np.abs(Xc), initial=0) <= 1e3:
        y_ref = np.asarray(y)
        if loss != "cross_entropy" and y_ref.ndim == 1:
            y_ref = y_ref.reshape(-1, 1)
        if loss == "cross_entropy" and y_ref.ndim == 1:
            y_ref = y_ref.astype(np.int64)
        ref_value, expected = ref.loss_and_gradients(ref_stack(net), Xc, y_ref.astype(np.float64)
                                                     if y_ref.dtype.kind == "f" else y_ref, loss)
        assert abs(value - float(ref_value)) <= 1e-9 * max(1.0, abs(float(ref_value)))
        assert expected.keys() == grads.keys()
        for key, g in grads.items():
            scale = max(1.0, float(np.max(np.abs(expected[key]), initial=0)))
            assert np.max(np.abs(g - expected[key]), initial=0) <= 1e-7 * scale, key


STATE_EDITS = ("keep", "keep", "keep", "nan", "inf", "huge", "ints", "bools", "complex", "strings", "shape",
               "drop", "none", "list", "fortran", "readonly", "float16")


def read_only(value: np.ndarray) -> np.ndarray:
    out = value.copy()
    out.flags.writeable = False
    return out


def edited(value: np.ndarray, edit: str):
    """`value` as a user might (mis)pass it."""
    with np.errstate(over="ignore", invalid="ignore"):
        return {"keep": lambda: value, "nan": lambda: np.full_like(value, math.nan),
                "inf": lambda: value + math.inf, "huge": lambda: np.full(value.shape, 1e300),
                "ints": lambda: np.round(value * 10).astype(np.int64), "bools": lambda: value > 0,
                "complex": lambda: value.astype(np.complex128), "strings": lambda: value.astype(str),
                "shape": lambda: value.reshape(-1, 1), "none": lambda: None, "list": lambda: value.tolist(),
                "fortran": lambda: np.asfortranarray(value), "readonly": lambda: read_only(value),
                "float16": lambda: value.astype(np.float16)}[edit]()


@examples(60)
@given(spec=network_specs(), data=st.data())
def test_load_state_dict_applies_exactly_or_changes_nothing(spec, data):
    net = build(spec)
    source = build({**spec, "seed": spec["seed"] ^ 1}).state_dict()
    edits = {k: data.draw(st.sampled_from(STATE_EDITS), label=k) for k in source}
    sd: dict = {}
    for key, value in source.items():
        if edits[key] != "drop":
            sd[key] = edited(value, edits[key])
    if data.draw(st.booleans(), label="extra key"):
        sd["9.weight"] = np.zeros(1)
    accepted, _ = rejected_or(lambda: net.load_state_dict(sd), lambda: network_state(net))
    if accepted:
        got = net.state_dict()
        assert got.keys() == source.keys()
        for key in got:
            with np.errstate(over="ignore"):
                want = np.asarray(sd[key]).astype(net.dtype)
            np.testing.assert_array_equal(got[key], want, err_msg=key)
        assert all(np.isfinite(p).all() for p in net.parameters())


@examples(60)
@given(spec=network_specs(), data=st.data())
def test_a_rejected_network_leaves_its_layers_reusable(spec, data):
    args = build_args(spec)
    layers = args["layers"]
    before = [repr(layer._config()) for layer in layers]
    # A Dense layer whose input width fits nothing before it, somewhere in the stack.
    at = data.draw(st.integers(0, len(layers)), label="position")
    wrong = bx.Dense(data.draw(st.integers(50, 60), label="width"), 2)
    try:
        bx.Network(**{**args, "layers": layers[:at] + [wrong] + layers[at:]})
    except (ValueError, TypeError) as exc:
        assert str(exc)
    else:
        raise AssertionError("a layer that fits nothing was accepted")
    assert [repr(layer._config()) for layer in layers] == before
    assert all(layer.network is None for layer in layers)
    net = bx.Network(**args)  # the same layer objects, now in a valid stack
    assert net.layers == layers
