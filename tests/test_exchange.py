"""backpropx.exchange: PyTorch round trips both ways for every activation and
both dtypes, refusals of what backpropx cannot represent, and ONNX export run
in onnxruntime (or onnx's reference evaluator where onnxruntime's CPU
provider has no float64 kernel) against ``Network.predict``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ALL_ACTIVATIONS, assert_close

import backpropx as bx

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = {"float32": 2e-6, "float64": 1e-13}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}


def torch_activation(act: str):
    return {"identity": None, "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "relu": nn.ReLU(),
            "leaky_relu": nn.LeakyReLU(), "elu": nn.ELU(), "gelu": nn.GELU(),
            "softmax": nn.Softmax(dim=-1)}[act]


def torch_forward(module, X: np.ndarray, dtype: str) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(X).to(TORCH_DTYPE[dtype])).numpy()


def inputs(n: int, d: int, dtype: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)


def net_with(act: str, dtype: str, seed: int = 0) -> bx.Network:
    """Dense(6, 9, act) -> Dropout -> Dense(9, 5, act or softmax, no bias), random biases."""
    last = act
    hidden = "tanh" if act == "softmax" else act
    net = bx.Network([bx.Dense(6, 9, activation=None if hidden == "identity" else hidden),
                      bx.Dropout(0.3),
                      bx.Dense(9, 5, activation=None if last == "identity" else last, bias=False)],
                     seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for _, p in net.named_parameters():
        p[...] = rng.standard_normal(p.shape)
    return net


# ---- PyTorch -> backpropx ----------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
def test_from_torch_matches_torch(act, dtype):
    torch.manual_seed(0)
    hidden = "tanh" if act == "softmax" else act
    mods = [nn.Linear(6, 9), torch_activation(hidden), nn.Dropout(0.25), nn.Linear(9, 5, bias=False),
            torch_activation(act)]
    model = nn.Sequential(*[m for m in mods if m is not None]).to(TORCH_DTYPE[dtype]).eval()
    net = bx.Network.from_torch(model)
    assert net.dtype == np.dtype(dtype)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense"]
    assert net.layers[0].activation == hidden and net.layers[2].activation == act
    assert net.layers[1].p == 0.25 and not net.layers[2].use_bias
    X = inputs(17, 6, dtype)
    assert_close(net.predict(X), torch_forward(model, X, dtype), TOL[dtype], f"{act} {dtype}")
    # The weights are copies: changing the torch model leaves the network alone.
    before = net.predict(X)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert np.array_equal(net.predict(X), before)


def test_from_torch_dtype_conversion_and_nesting():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Sequential(nn.Dropout(0.1), nn.Linear(4, 3), nn.ReLU()),
                          nn.Linear(3, 2)).to(torch.float16)
    with pytest.raises(ValueError, match="float16.*pass dtype="):
        bx.Network.from_torch(model)
    net = bx.Network.from_torch(model, dtype="float64")
    assert net.dtype == np.float64
    assert [repr(layer) for layer in net.layers] == ["Dropout(p=0.1)", "Dense(4, 3, activation='relu')",
                                                     "Dense(3, 2)"]
    X = inputs(8, 4, "float64")
    expected = torch_forward(model.to(torch.float64).eval(), X, "float64")
    assert_close(net.predict(X), expected, 1e-12)


@pytest.mark.parametrize("module, match", [
    (nn.Sequential(nn.Linear(3, 4), nn.ConvTranspose1d(1, 1, 1)), r"module '1' \(ConvTranspose1d.*not supported"),
    (nn.Sequential(nn.Conv1d(2, 2, 1, groups=2)), r"module '0' \(Conv1d.*groups=1"),
    (nn.Sequential(nn.Conv2d(1, 1, 3, padding_mode="reflect")), r"module '0'.*padding_mode='zeros'"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), r"module '0'.*ceil_mode=False"),
    (nn.Sequential(nn.MaxPool1d(2, dilation=2)), r"module '0'.*no dilation"),
    (nn.Sequential(nn.AdaptiveAvgPool2d(2)), r"module '0'.*output_size=1"),
    (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2)), r"module '1'.*negative_slope=0.2"),
    (nn.Sequential(nn.Linear(3, 4), nn.ELU(alpha=0.5)), r"module '1'.*alpha=0.5"),
    (nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh")), r"module '1'.*approximate='tanh'"),
    (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), r"module '1'.*dim=0"),
    (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)),
     r"do not fit together: layer 1 \(dense\): expects in_features=5.*\(4,\)"),
    (nn.Sequential(nn.Linear(3, 4), nn.Dropout(1.0)), r"module '1'.*0 <= p < 1"),
    (nn.Sequential(nn.Linear(3, 4), nn.AlphaDropout(0.1)), r"module '1' \(AlphaDropout.*not supported: backpropx converts"),
    (nn.Sequential(nn.Linear(3, 4), nn.Flatten(0)), r"module '1'.*nn.Flatten\(1, -1\)"),
    (nn.Sequential(nn.ReLU()), r"pass input_shape="),
    (nn.Sequential(), r"empty"),
])
def test_from_torch_refuses_what_it_cannot_represent(module, match):
    with pytest.raises(ValueError, match=match):
        bx.Network.from_torch(module)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_keeps_activations_it_cannot_fold_as_layers(dtype):
    torch.manual_seed(3)
    model = nn.Sequential(nn.ReLU(), nn.Linear(3, 4), nn.Softmax(dim=-1), nn.Linear(4, 5), nn.ReLU(), nn.Tanh(),
                          nn.Dropout(0.5), nn.GELU(), nn.Identity()).to(TORCH_DTYPE[dtype]).eval()
    net = bx.Network.from_torch(model)
    assert [repr(layer) for layer in net.layers] == [
        "Activation('relu')", "Dense(3, 4, activation='softmax')", "Dense(4, 5, activation='relu')",
        "Activation('tanh')", "Dropout(p=0.5)", "Activation('gelu')", "Activation('identity')"]
    X = inputs(9, 3, dtype)
    assert_close(net.predict(X), torch_forward(model, X, dtype), TOL[dtype])


def nd_net(dtype: str, seed: int = 0) -> bx.Network:
    """Every kind at once on samples (2, 3, 4): Dense over the last axis, a
    Residual block, Flatten, Reshape, Activation, Dropout."""
    net = bx.Network([bx.Dense(4, 6, activation="tanh"),
                      bx.Residual([bx.Dense(6, 5, activation="relu"), bx.Dropout(0.2), bx.Dense(5, 6)]),
                      bx.Flatten(), bx.Reshape((3, -1)), bx.Activation("sigmoid"),
                      bx.Dense(12, 7), bx.Flatten(), bx.Dense(21, 4, activation="softmax")],
                     input_shape=(2, 3, 4), seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for _, p in net.named_parameters():
        p[...] = rng.standard_normal(p.shape)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_kind_round_trips_through_torch(dtype):
    net = nd_net(dtype)
    model = net.to_torch()
    X = np.random.default_rng(5).standard_normal((11, 2, 3, 4)).astype(dtype)
    assert_close(torch_forward(model, X, dtype), net.predict(X), TOL[dtype])
    back = bx.Network.from_torch(model, input_shape=(2, 3, 4))
    # Reshape((3, -1)) comes back as nn.Unflatten's resolved Reshape((3, 12)).
    assert [type(layer).__name__ for layer in back.layers] == [type(layer).__name__ for layer in net.layers]
    assert back.layers[3].shape == (3, 12)
    assert back.output_shape == net.output_shape == (4,)
    for (name, a), (name_b, b) in zip(net.named_parameters(), back.named_parameters()):
        assert name == name_b and np.array_equal(a, b)
    assert np.array_equal(back.predict(X), net.predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_kind_exports_to_onnx(tmp_path, dtype):
    ort = pytest.importorskip("onnxruntime")
    net = nd_net(dtype, seed=4)
    net.to_onnx(tmp_path / "nd.onnx")
    session = ort.InferenceSession(str(tmp_path / "nd.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [2, 3, 4]
    for n in (1, 6):
        X = np.random.default_rng(n).standard_normal((n, 2, 3, 4)).astype(dtype)
        assert_close(session.run(None, {"input": X})[0], net.predict(X), TOL[dtype] * 10)


def test_from_torch_needs_a_sequential():
    with pytest.raises(TypeError, match="torch.nn.Sequential"):
        bx.Network.from_torch(nn.Linear(2, 2))


# ---- backpropx -> PyTorch ------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
def test_to_torch_matches_predict_and_round_trips(act, dtype):
    net = net_with(act, dtype)
    model = net.to_torch()
    assert not model.training
    assert all(p.dtype == TORCH_DTYPE[dtype] for p in model.parameters())
    X = inputs(13, 6, dtype, seed=2)
    expected = net.predict(X)
    assert_close(torch_forward(model, X, dtype), expected, TOL[dtype], f"{act} {dtype}")
    back = bx.Network.from_torch(model)
    assert back.dtype == net.dtype
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in net.layers]
    for (name, a), (name_b, b) in zip(net.named_parameters(), back.named_parameters()):
        assert name == name_b and np.array_equal(a, b)


def test_to_torch_is_a_copy_and_trainable():
    net = net_with("relu", "float32")
    model = net.to_torch().train()
    before = net.state_dict()
    model(torch.ones(4, 6)).sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            assert p.requires_grad and p.grad is not None
            p.sub_(0.1 * p.grad)
    for key, value in net.state_dict().items():
        assert np.array_equal(value, before[key])


# ---- ONNX ----------------------------------------------------------------------------
# onnxruntime's CPU provider has no float64 kernels for these (Erf/Gelu, Elu, LeakyRelu
# outside a fused Gemm); the exported float64 graph is run in onnx's reference evaluator.
ORT_NO_FLOAT64 = {"gelu", "elu", "leaky_relu"}


def run_onnx(path, X: np.ndarray, act: str, dtype: str) -> np.ndarray:
    if dtype == "float64" and act in ORT_NO_FLOAT64:
        onnx = pytest.importorskip("onnx")
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(onnx.load(str(path))).run(None, {"input": X})[0]
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "output")
    assert isinstance(inp.shape[0], str) and inp.shape[1] == 6   # dynamic batch dimension
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
def test_onnx_export_matches_predict(tmp_path, act, dtype, opset):
    onnx = pytest.importorskip("onnx")
    net = net_with(act, dtype)
    path = tmp_path / "model.onnx"
    net.to_onnx(path, opset=opset)
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert "Dropout" not in ops and ops.count("Gemm") == 2
    if act == "gelu":
        assert ("Gelu" in ops) == (opset >= 20) and ("Erf" in ops) == (opset < 20)
    assert model.opset_import[0].version == opset
    for n in (1, 7, 64):   # any batch size
        X = inputs(n, 6, dtype, seed=n)
        got = run_onnx(path, X, act, dtype)
        assert got.dtype == np.dtype(dtype) and got.shape == (n, 5)
        # float64: onnx stores LeakyRelu's alpha as float32, and the reference
        # evaluator's erf is not exact to the last bit.
        tol = 2e-6 if dtype == "float32" else (1e-12 if act not in ORT_NO_FLOAT64 else 1e-7)
        assert_close(got, net.predict(X), tol, f"onnx {act} {dtype} opset {opset}")


def test_onnx_export_of_a_trained_digits_model(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    X, y = bx.load_digits()
    X = X / 16.0
    net = bx.Network([bx.Dense(64, 32, activation="relu"), bx.Dropout(0.1),
                      bx.Dense(32, 10, activation="softmax")], seed=0)
    bx.Trainer(net, optimizer=bx.Adam(lr=3e-3), batch_size=64).fit(X, y, epochs=3, verbose=0)
    net.to_onnx(tmp_path / "digits.onnx")
    session = ort.InferenceSession(str(tmp_path / "digits.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": X.astype(np.float32)})[0]
    assert_close(got, net.predict(X), 2e-6)
    assert np.array_equal(got.argmax(axis=1), net.predict(X).argmax(axis=1))


def test_onnx_export_checks_opset_and_writes_atomically(tmp_path):
    pytest.importorskip("onnx")
    net = net_with("relu", "float32")
    with pytest.raises(ValueError, match="opset must be an integer >= 17"):
        net.to_onnx(tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="newer than this onnx package"):
        net.to_onnx(tmp_path / "m.onnx", opset=999)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError):
        net.to_onnx(tmp_path / "missing-dir" / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_optional_dependency_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name in ("torch", "onnx"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    net = net_with("relu", "float32")
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        net.to_torch()
    with pytest.raises(ImportError, match=r"pip install 'onnx>=1\.15'"):
        net.to_onnx("unused.onnx")
