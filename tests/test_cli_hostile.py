"""Bad data and options given to the command line: always exit code 2 and one
line naming the problem, never a traceback, a hang or a model with infinite
weights (values too large for float32, non-finite columns, extreme feature
ranges, absurd sizes, forged .npz headers, damaged model metadata, FIFOs,
files that are not models)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import backpropx as bx
from backpropx.cli import main


def write_table(path: Path, columns: dict[str, list]) -> Path:
    names = list(columns)
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for row in zip(*columns.values()):
            f.write(",".join(map(str, row)) + "\n")
    return path


def base(n: int = 60) -> dict[str, list]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return {"a": [f"{v:.6g}" for v in a], "b": [f"{v:.6g}" for v in b], "y": list((a > 0).astype(int))}


def forged_npz(path: Path, shape: tuple, payload: bytes = b"\0" * 64, descr: str = "<f8") -> Path:
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", header.getvalue() + payload)
        z.writestr("y.npy", _npy(np.zeros(3)))
    return path


def _npy(a: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, a)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    ok = base()
    write_table(d / "ok.csv", ok)
    write_table(d / "too_big.csv", {**ok, "a": ok["a"][:4] + ["4e38"] + ok["a"][5:]})
    write_table(d / "inf.csv", {**ok, "b": ok["b"][:7] + ["-inf"] + ok["b"][8:]})
    write_table(d / "huge.csv", {**ok, "a": [f"{float(v) * 1e300:.6g}" for v in ok["a"]]})
    write_table(d / "tiny.csv", {**ok, "a": [f"{float(v) * 1e-42:.6g}" for v in ok["a"]]})
    write_table(d / "constant_big.csv", {**ok, "a": ["3e38"] * 60})
    write_table(d / "big_target.csv", {**ok, "y": [f"{float(v) * 1e39:.6g}" for v in ok["a"]]})
    forged_npz(d / "forged.npz", (10**9, 10**6))
    forged_npz(d / "short.npz", (3, 2), payload=b"\0" * 40)
    forged_npz(d / "objects.npz", (3,), descr="|O")
    np.savez(d / "flat.npz", X=np.ones(5), y=np.ones(5))
    np.savez(d / "no_features.npz", X=np.ones((5, 0)), y=np.ones(5))
    np.savez(d / "ragged_y.npz", X=np.ones((5, 2)), y=np.ones(4))
    np.savez(d / "x_inf.npz", X=np.array([[1.0, np.inf]] * 5), y=np.arange(5.0))
    np.savez(d / "x_big.npz", X=np.array([[1.0, 1e39]] * 5), y=np.arange(5.0))
    (d / "notes.txt").write_text("this is not a model\n" * 10)
    (d / "picture.safetensors").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (d / "empty.safetensors").write_bytes(b"")
    return d


@pytest.mark.parametrize("args, message", [
    (["train", "too_big.csv", "--target", "y"],
     "too_big.csv, line 6: column 'a' holds 4e+38; too large for float32 (at most 3.403e+38); use --dtype float64"),
    (["train", "inf.csv", "--target", "y"], "inf.csv, line 9: column 'b' holds -inf; values must be finite"),
    (["train", "huge.csv", "--target", "y"], "column 'a' holds"),
    (["train", "tiny.csv", "--target", "y"], "the feature scaling cannot be folded into float32 weights"),
    (["train", "constant_big.csv", "--target", "y"], "the feature scaling cannot be folded into float32 weights"),
    (["train", "big_target.csv", "--target", "y", "--task", "regression"],
     "big_target.csv, line 4: target 'y' holds 6.40423e+38; too large for float32"),
    (["train", "ok.csv", "--target", "y", "--hidden", "100000000"], "layer widths must be from 1 to 16,777,216"),
    (["train", "ok.csv", "--target", "y", "--hidden", "16000000,16000000"],
     "cannot build a network with --hidden 16000000,16000000 on 2 inputs"),
    (["train", "ok.csv", "--target", "y", "--hidden", "99999999999999999999999"], "layer widths must be"),
    (["train", "ok.csv", "--target", "y", "--batch-size", "0"], "--batch-size: expected a positive integer"),
    (["train", "ok.csv", "--target", "y", "--batch-size", "99999999999999999999"], "--batch-size: expected"),
    (["train", "ok.csv", "--target", "y", "--epochs", "1e9"], "--epochs: expected a positive integer"),
    (["train", "ok.csv", "--target", "y", "--lr", "nan"], "--lr: expected a positive number"),
    (["train", "forged.npz"], "array X declares shape (1000000000, 1000000) of float64"),
    (["train", "short.npz"], "array X declares shape (3, 2) of float64 (48 bytes) but stores 40 bytes"),
    (["train", "objects.npz"], "array X holds Python objects"),
    (["train", "flat.npz"], "X must be 2-D (samples, features), got shape (5,)"),
    (["train", "no_features.npz"], "X has no features"),
    (["train", "ragged_y.npz"], "y has shape (4,); expected (5,)"),
    (["train", "x_inf.npz"], "x_inf.npz, row 0: column 1 holds inf; values must be finite"),
    (["train", "x_big.npz"], "x_big.npz, row 0: column 1 holds 1e+39; too large for float32"),
    (["predict", "--model", "notes.txt", "ok.csv"], "notes.txt is not a safetensors file"),
    (["predict", "--model", "picture.safetensors", "ok.csv"], "picture.safetensors is not a safetensors file"),
    (["predict", "--model", "empty.safetensors", "ok.csv"], "empty.safetensors is not a safetensors file"),
    (["predict", "--model", ".", "ok.csv"], "cannot read model .: not a regular file"),
])
def test_bad_data_and_options_exit_2_in_one_line(files, monkeypatch, capsys, args, message):
    monkeypatch.chdir(files)
    assert main([*args, "--out", "out.safetensors"] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (files / "out.safetensors").exists()


def test_extreme_ranges_train_in_float64(files, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["train", "huge.csv", "--target", "y", "--dtype", "float64", "--epochs", "3", "--quiet",
                 "--out", "h.safetensors"]) == 0
    net = bx.Network.load(files / "h.safetensors")
    assert all(np.isfinite(p).all() for p in net.parameters())


# ---- damaged model metadata ---------------------------------------------------------
def model_with(tmp: Path, extra: dict[str, str], outputs: int = 2, softmax: bool = True) -> Path:
    net = bx.Network([bx.Dense(2, outputs, activation="softmax" if softmax else None)], seed=0)
    path = tmp / "damaged.safetensors"
    net.save(path, extra_metadata=extra)
    return path


@pytest.mark.parametrize("extra, message", [
    ({"classes": "[1, 2"}, "has damaged metadata: metadata['classes'] is not valid JSON"),
    ({"classes": "[" * 50000 + "]" * 50000}, "has damaged metadata"),
    ({"classes": '{"a": 1}'}, "metadata['classes'] must be a JSON list"),
    ({"classes": "[1, 2, 3]"}, "its metadata lists 3 classes for a model with 2 outputs"),
    ({"classes": '[[1], [2]]'}, "metadata['classes'] must be a JSON list of strings or numbers"),
    ({"feature_names": "[1, 2]"}, "metadata['feature_names'] must be a JSON list of strings"),
    ({"feature_names": '["a", "b", "c"]'}, "its metadata describes 3 inputs for a model with 2"),
    ({"columns": "not json"}, "the column descriptions are not valid JSON"),
    ({"columns": '[{"name": "a", "kind": "number"}]'}, "its metadata describes 1 inputs for a model with 2"),
    ({"columns": '[{"name": "a", "kind": "wavelet"}, {"name": "b", "kind": "number"}]'},
     "a column description must be an object with a name and a kind"),
    ({"task": "clustering"}, "records an unknown task 'clustering'"),
    ({"missing": "guess"}, "records an unknown missing-value policy 'guess'"),
])
def test_damaged_model_metadata_exits_2(tmp_path, capsys, extra, message):
    path = model_with(tmp_path, extra)
    write_table(tmp_path / "x.csv", {"a": [1, 2], "b": [3, 4]})
    assert main(["predict", "--model", str(path), str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


# ---- no hang on FIFOs, in a subprocess with a timeout ----------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("role", ["data", "model"])
def test_a_fifo_is_refused_without_blocking(files, tmp_path, role):
    fifo = tmp_path / ("pipe.csv" if role == "data" else "pipe.safetensors")
    os.mkfifo(fifo)
    args = (["train", str(fifo), "--target", "y"] if role == "data"
            else ["predict", "--model", str(fifo), str(files / "ok.csv")])
    proc = subprocess.run([sys.executable, "-m", "backpropx", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr, proc.stderr
