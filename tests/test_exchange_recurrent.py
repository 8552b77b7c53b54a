"""Recurrent layers and embeddings through backpropx.exchange: to_torch and
from_torch (nn.RNN/GRU/LSTM with batch_first=True, stacked num_layers,
nn.Embedding) with equal outputs, and ONNX export (RNN, GRU with
linear_before_reset=1, LSTM; Embedding as Gather) equal to onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

import backpropx as bx
from backpropx.exchange import from_torch, onnx_model, to_torch
from backpropx.layers.recurrent import recurrent_module_class

torch = pytest.importorskip("torch")

LAYERS = [
    lambda: bx.SimpleRNN(3, 4, return_sequences=True),
    lambda: bx.SimpleRNN(3, 4, nonlinearity="relu", bidirectional=True),
    lambda: bx.GRU(3, 4, bidirectional=True, return_sequences=True),
    lambda: bx.GRU(3, 4, bias=False),
    lambda: bx.LSTM(3, 4, return_sequences=True),
    lambda: bx.LSTM(3, 4, bidirectional=True),
]


def _net(make, dtype="float64"):
    layer = make()
    out = layer.hidden_size * (2 if layer.bidirectional else 1)
    tail = [bx.Flatten(), bx.Dense(6 * out, 3)] if layer.return_sequences else [bx.Dense(out, 3)]
    net = bx.Network([layer, *tail], input_shape=(6, 3), seed=3, dtype=dtype)
    rng = np.random.default_rng(0)
    for _, p in net.named_parameters():
        p[...] = rng.uniform(-0.7, 0.7, p.shape)
    return net


@pytest.mark.parametrize("make", LAYERS)
def test_to_torch_and_back(make):
    net = _net(make)
    X = np.random.default_rng(1).standard_normal((5, 6, 3))
    model = to_torch(net)
    with torch.no_grad():
        out = model(torch.from_numpy(X)).numpy()
    assert_close(out, net.predict(X), 1e-12, "to_torch output")
    back = from_torch(model, input_shape=(6, 3))
    assert repr(back.layers) == repr(net.layers)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_from_torch_stacked_and_embedding():
    """A bare nn.GRU with num_layers=2 and dropout becomes two GRU layers (returning
    sequences) with Dropout between; nn.Embedding becomes Embedding."""
    torch.manual_seed(0)
    wrapper = recurrent_module_class(torch)
    model = torch.nn.Sequential(
        torch.nn.Embedding(12, 5, padding_idx=0),
        wrapper(torch.nn.LSTM(5, 4, num_layers=2, batch_first=True, bidirectional=True, dropout=0.25), False),
        torch.nn.Linear(8, 3)).double().eval()
    net = from_torch(model, input_shape=(7,))
    assert [type(layer).__name__ for layer in net.layers] == ["Embedding", "LSTM", "Dropout", "LSTM", "Dense"]
    assert net.layers[1].return_sequences and not net.layers[3].return_sequences
    assert net.layers[0].padding_idx == 0
    X = np.random.default_rng(2).integers(0, 12, size=(4, 7))
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy()
    assert_close(net.predict(X), expected, 1e-12, "from_torch output")
    back = to_torch(net)
    with torch.no_grad():
        assert_close(back(torch.from_numpy(X)).numpy(), expected, 1e-12, "round trip")

    seq = torch.nn.Sequential(torch.nn.GRU(3, 4, batch_first=True))  # a bare module: its output sequence
    net = from_torch(seq.double(), input_shape=(5, 3))
    assert net.layers[0].return_sequences and net.output_shape == (5, 4)
    with pytest.raises(ValueError, match="batch_first"):
        from_torch(torch.nn.Sequential(torch.nn.GRU(3, 4)), input_shape=(5, 3))
    with pytest.raises(ValueError, match="proj_size"):
        from_torch(torch.nn.Sequential(torch.nn.LSTM(3, 4, batch_first=True, proj_size=2)), input_shape=(5, 3))
    with pytest.raises(ValueError, match="max_norm"):
        from_torch(torch.nn.Sequential(torch.nn.Embedding(3, 4, max_norm=1.0)), input_shape=(5,))


onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("make", LAYERS)
def test_onnx_export_matches_onnxruntime(make):
    net = _net(make, "float32")
    X = np.random.default_rng(3).standard_normal((5, 6, 3)).astype(np.float32)
    sess = ort.InferenceSession(onnx_model(net).SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, {"input": X})[0], net.predict(X), 1e-5, "onnxruntime output")


@pytest.mark.parametrize("make", [m for k, m in enumerate(LAYERS) if k != 1])
def test_onnx_export_in_float64(make):
    """onnxruntime has no float64 RNN/GRU/LSTM kernels; onnx's reference evaluator runs
    them (all but the relu RNN, whose activation it lacks: onnxruntime checked it above)."""
    from onnx.reference import ReferenceEvaluator

    net = _net(make, "float64")
    X = np.random.default_rng(3).standard_normal((5, 6, 3))
    got = ReferenceEvaluator(onnx_model(net)).run(None, {"input": X})[0]
    assert got.dtype == np.float64
    assert_close(got, net.predict(X), 1e-12, "onnx reference output")


def test_onnx_embedding_and_stack():
    net = bx.Network([bx.Embedding(9, 4), bx.GRU(4, 3, bidirectional=True, return_sequences=True),
                      bx.LSTM(6, 5, return_sequences=True), bx.Dense(5, 9)], input_shape=(6,), seed=1)
    X = np.random.default_rng(4).integers(0, 9, size=(3, 6)).astype(np.float32)
    sess = ort.InferenceSession(onnx_model(net).SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, {"input": X})[0], net.predict(X), 1e-5, "onnxruntime output")
