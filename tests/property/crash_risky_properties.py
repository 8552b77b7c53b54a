"""Properties that feed hostile sizes and bytes to the C++ core. A crash
here would kill the test runner, so test_crash_risky.py runs this module in
a child process (its name keeps pytest from collecting it directly):

    python -m pytest tests/property/crash_risky_properties.py
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from property_helpers import ACTIVATIONS, build, examples, network_specs

import backpropx as bx
from backpropx.io import network_to_bytes

# Sizes are tiny or impossible: a possible but huge network (Dense(2**31, 1)
# is 16 GB) would be built, and fill a CI machine's memory.
SIZES = st.one_of(st.integers(1, 6), st.integers(1, 6),
                  st.sampled_from([0, -1, 2**40, 2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64, 2**64 + 1, 10**30]),
                  st.sampled_from([3.0, "3", None, True, np.int64(3), np.uint64(2**63), [3]]))
JSON_SIZES = st.one_of(st.integers(1, 6), st.sampled_from([0, -1, 2**40, 2**62, 2**63, 2**64, 10**30, 3.0, "3", True]))
NAMES = st.one_of(st.sampled_from(ACTIVATIONS), st.sampled_from(["", "RELU", "softmax ", None, 3, "identity"]))
LOADERS = (ValueError, TypeError, OSError, MemoryError)
CONSTRUCTION = (ValueError, TypeError, MemoryError)


@st.composite
def layer_args(draw):
    if draw(st.integers(0, 3)) == 0:
        p = draw(st.one_of(st.floats(0, 0.99), st.sampled_from([1.0, -0.1, float("nan"), True, "0.5", None])))
        return ("dropout", {"p": p, "features": draw(st.one_of(st.none(), SIZES))})
    return ("dense", {"in_features": draw(SIZES), "out_features": draw(SIZES), "activation": draw(NAMES),
                      "bias": draw(st.one_of(st.booleans(), st.sampled_from([0, "yes", None]))),
                      "init": draw(st.one_of(st.sampled_from(["default", "he", "zeros"]), st.sampled_from(["", 1])))})


def make_layer(kind: str, args: dict):
    if kind == "dropout":
        return bx.Dropout(args["p"], features=args["features"])
    return bx.Dense(args["in_features"], args["out_features"], activation=args["activation"], bias=args["bias"],
                    init=args["init"])


@examples(150)
@given(args=st.lists(layer_args(), min_size=1, max_size=3),
       seed=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([-1, 2**64, 1.5, None])),
       dtype=st.sampled_from(["float32", "float64", "float16", "int32", None, np.float64]))
def test_networks_of_any_size_are_built_or_refused_cleanly(args, seed, dtype):
    try:
        layers = [make_layer(kind, a) for kind, a in args]
        net = bx.Network(layers, seed=seed, dtype=dtype)
    except CONSTRUCTION as exc:
        assert str(exc)
        return
    assert net.num_params < 10**7  # anything bigger must have been refused above
    out = None
    try:
        if net.in_features <= 10**4:  # (Dropout(features=2**62) alone has no parameters)
            out = net.predict(np.zeros((2, net.in_features)))
    except (FloatingPointError, MemoryError):
        pass
    assert out is None or (out.shape == (2, net.out_features) and np.isfinite(out).all())


def layer_config(draw) -> dict:
    junk = st.one_of(JSON_SIZES, st.text(max_size=4), st.floats(), st.none(), st.lists(st.integers(), max_size=2))
    cfg = {"kind": draw(st.sampled_from(["dense", "dropout", "conv", "", 3])),
           "in_features": draw(junk), "out_features": draw(junk), "features": draw(junk),
           "activation": draw(st.one_of(NAMES, junk)), "bias": draw(st.one_of(st.booleans(), junk)),
           "init": draw(st.one_of(st.sampled_from(["default", "uniform"]), junk)), "p": draw(st.one_of(st.floats(0, 1), junk)),
           "trainable": draw(st.one_of(st.booleans(), junk))}
    return {k: v for k, v in cfg.items() if draw(st.integers(0, 4))}  # some keys missing


@st.composite
def mutation(draw, size: int, header_len: int):
    kind = draw(st.sampled_from(["flip", "truncate", "length", "layers", "tensor", "insert"]))
    if kind == "flip":
        return kind, [(draw(st.integers(0, size - 1)), draw(st.integers(1, 255))) for _ in range(draw(st.integers(1, 6)))]
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1))
    if kind == "length":
        return kind, draw(st.one_of(st.integers(0, size + 10), st.sampled_from([2**63, 2**64 - 1, 16 * 2**20 + 1])))
    if kind == "layers":
        configs = draw(st.lists(st.builds(dict), min_size=0, max_size=3))
        return kind, json.dumps([{**c, **layer_config(draw)} for c in configs] if configs else draw(st.sampled_from([[], {}, 3])))
    if kind == "tensor":
        return kind, {"dtype": draw(st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "U8", "BOOL", "X"])),
                      "shape": draw(st.lists(st.one_of(st.integers(0, 5), st.sampled_from([2**40, 2**63, -1])), max_size=3)),
                      "offsets": draw(st.lists(st.integers(-1, header_len + size), min_size=2, max_size=2))}
    return kind, (draw(st.integers(8, size)), draw(st.binary(min_size=1, max_size=32)))


def mutate(data: bytes, kind: str, arg) -> bytes:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    if kind == "flip":
        buf = bytearray(data)
        for pos, mask in arg:
            buf[pos] ^= mask
        return bytes(buf)
    if kind == "truncate":
        return data[:arg]
    if kind == "length":
        return arg.to_bytes(8, "little") + data[8:]
    if kind == "insert":
        pos, blob = arg
        return data[:pos] + blob + data[pos:]
    if kind == "layers":
        header["__metadata__"]["layers"] = arg
    else:
        name = next(k for k in header if k != "__metadata__")
        header[name] = {"dtype": arg["dtype"], "shape": arg["shape"], "data_offsets": arg["offsets"]}
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


@examples(200)
@given(spec=network_specs(max_depth=2, max_width=3), data=st.data())
def test_mutated_model_files_load_or_fail_cleanly(spec, data):
    net = build(spec)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "m.safetensors"
        good = network_to_bytes(net)  # what save writes, without its fsyncs
        kind, arg = data.draw(mutation(len(good), int.from_bytes(good[:8], "little")), label="mutation")
        path.write_bytes(mutate(good, kind, arg))
        try:
            loaded = bx.Network.load(path)
        except LOADERS as exc:
            assert str(exc)
            return
    if loaded.in_features > 10**4:  # a parameter-free Dropout(features=2**40) file: valid, not fed
        return
    try:
        out = loaded.predict(np.zeros((2, loaded.in_features)))
    except FloatingPointError:  # absurd but finite weights: an error, never a silent NaN
        return
    assert np.isfinite(out).all()
