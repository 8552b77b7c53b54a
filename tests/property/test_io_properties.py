"""Properties of saving and loading, the JSON depth limit, and (lightly)
the command line: round trips are exact, and what save writes, load reads."""

from __future__ import annotations

import json
import pathlib
import tempfile

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from property_helpers import build, digest, examples, network_specs

import backpropx as bx
from backpropx import bounded_json
from backpropx.io import load_network_with_metadata


@examples(40)
@given(spec=network_specs(), flags=st.lists(st.booleans(), min_size=6, max_size=6),
       extra=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=30), max_size=4))
def test_save_then_load_is_exact(spec, flags, extra):
    net = build(spec)
    for layer, flag in zip(net.layers, flags):
        layer.trainable = flag
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "m.safetensors"
        net.save(path, extra_metadata=extra)
        loaded, meta = load_network_with_metadata(path)
    assert repr(loaded) == repr(net) and loaded.dtype == net.dtype and loaded.seed == net.seed
    assert [layer.trainable for layer in loaded.layers] == [layer.trainable for layer in net.layers]
    assert digest(loaded.state_dict()) == digest(net.state_dict())
    assert meta == extra


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=30)


def nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


@examples(150)
@given(value=JSON, wrap=st.integers(0, 80))
def test_json_depth_limit_is_exact_and_shared_by_reader_and_writer(value, wrap):
    for _ in range(wrap):
        value = [value]
    text = json.dumps(value)
    assert bounded_json.depth(text) == nesting(value)
    too_deep = nesting(value) > bounded_json.MAX_DEPTH
    for attempt in (lambda: bounded_json.loads(text, "x"), lambda: bounded_json.dumps(value, "x")):
        try:
            attempt()
            assert not too_deep
        except ValueError as exc:
            assert too_deep and "levels deep" in str(exc)


@examples(6)
@given(rows=st.integers(6, 20), classes=st.integers(2, 3), seed=st.integers(0, 1000))
def test_cli_trains_a_model_that_loads_and_predicts(rows, classes, seed):
    from backpropx.cli import main

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 2))
    y = np.arange(rows) % classes
    with tempfile.TemporaryDirectory() as tmp:
        csv = pathlib.Path(tmp) / "d.csv"
        csv.write_text("a,b,label\n" + "".join(f"{float(a)!r},{float(b)!r},{c}\n" for (a, b), c in zip(X, y)))
        model = pathlib.Path(tmp) / "m.safetensors"
        code = main(["train", str(csv), "--target", "label", "--epochs", "2", "--hidden", "4",
                     "--out", str(model), "--quiet", "--seed", str(seed)])
        assert code == 0
        net = bx.Network.load(model)
        assert np.isfinite(net.predict(X)).all() and net.out_features == classes
