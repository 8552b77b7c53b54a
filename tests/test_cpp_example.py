"""The C++ library and Python share one model format: examples/cpp/xor.cpp,
built against the installed C++ package (find_package(backpropx)), trains and
saves a model that Network.load reads with the same predictions, and loads
models saved from Python and by the command line.

The executable is built by .ci/run (stage "C++ library: install, example");
point BACKPROPX_CPP_EXAMPLE at it to run these tests elsewhere:
    cmake -S . -B build/cpp && cmake --build build/cpp && cmake --install build/cpp --prefix build/prefix
    cmake -S examples/cpp -B build/xor -DCMAKE_PREFIX_PATH=$PWD/build/prefix && cmake --build build/xor
    BACKPROPX_CPP_EXAMPLE=build/xor/xor python -m pytest tests/test_cpp_example.py
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

import backpropx as bx

EXE = os.environ.get("BACKPROPX_CPP_EXAMPLE")
pytestmark = pytest.mark.skipif(not EXE, reason="BACKPROPX_CPP_EXAMPLE (the built examples/cpp/xor) not set")
XOR = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])


def xor(*args) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=120)


def printed(stdout: str, dtype) -> np.ndarray:
    rows = [line.split() for line in stdout.splitlines()]
    assert [list(map(float, r[:2])) for r in rows] == XOR.tolist()
    return np.array([[dtype(v) for v in r[2:]] for r in rows])


def test_a_model_trained_and_saved_in_cpp_loads_in_python(tmp_path):
    proc = xor("train", tmp_path / "xor.safetensors")
    assert proc.returncode == 0, proc.stderr
    cpp = printed(proc.stdout, np.float32)
    net = bx.Network.load(tmp_path / "xor.safetensors")
    assert net.dtype == np.float32 and net.classes == [0, 1]
    np.testing.assert_array_equal(net.predict(XOR.astype(np.float32)), cpp)   # the same bits
    assert list(net.predict_classes(XOR)) == [0, 1, 1, 0]


@pytest.mark.parametrize("dtype, residual", [("float32", False), ("float64", False), ("float32", True)])
def test_models_saved_from_python_load_in_cpp(tmp_path, dtype, residual):
    middle = [bx.Residual([bx.Dense(6, 6, activation="tanh")])] if residual else [bx.Dropout(0.3)]
    net = bx.Network([bx.Dense(2, 6, activation="gelu"), *middle, bx.Dense(6, 3, activation="softmax")],
                     seed=3, dtype=dtype)
    net.layers[0].trainable = False
    net.metadata["classes"] = '["a", "b", "c"]'
    net.save(tmp_path / "py.safetensors")
    proc = xor("predict", tmp_path / "py.safetensors")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(printed(proc.stdout, np.dtype(dtype).type), net.predict(XOR))


def test_a_cli_trained_model_loads_in_cpp(tmp_path):
    from backpropx.cli import main

    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (200, 2))
    with open(tmp_path / "xor.csv", "w") as f:
        f.write("a,b,label\n" + "".join(f"{a},{b},{'same' if a == b else 'different'}\n" for a, b in X))
    assert main(["train", str(tmp_path / "xor.csv"), "--target", "label", "--epochs", "5", "--quiet",
                 "--out", str(tmp_path / "cli.safetensors")]) == 0
    proc = xor("predict", tmp_path / "cli.safetensors")
    assert proc.returncode == 0, proc.stderr
    net = bx.Network.load(tmp_path / "cli.safetensors")
    np.testing.assert_array_equal(printed(proc.stdout, np.float32), net.predict(XOR))


@pytest.mark.parametrize("damage", ["truncate", "not a model", "garbled header"])
def test_damaged_files_are_errors_in_cpp_not_crashes(tmp_path, damage):
    net = bx.Network([bx.Dense(2, 1)], seed=0)
    net.save(tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    if damage == "truncate":
        data = data[:len(data) - 3]
    elif damage == "not a model":
        data = b"a,b\n1,2\n" * 10
    else:
        data = data[:8] + b"{" + b"\xff" * 20 + data[29:]
    (tmp_path / "bad.safetensors").write_bytes(data)
    proc = xor("predict", tmp_path / "bad.safetensors")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "bad.safetensors" in proc.stderr, \
        (proc.returncode, proc.stderr)
