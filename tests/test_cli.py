"""The ``backpropx`` command line, end to end in subprocesses (train, predict,
info, --help, the exit codes and messages of bad input), plus in-process
checks of the pieces it stands on: the extra metadata in model files, models
saved from Python, and the demo that runs when no command is given."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backpropx as bx
from backpropx.cli import main
from backpropx.io import load_network_with_metadata, read_extra_metadata, save_network


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backpropx", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    """train.csv / test.csv: the shipped digits (raw 0..16 pixels) and a 'digit' column."""
    root = tmp_path_factory.mktemp("digits")
    X, y = bx.load_digits()
    X_train, X_test, y_train, y_test = bx.train_test_split(X, y, test_fraction=0.25, seed=0)
    header = [f"pixel{i}" for i in range(64)] + ["digit"]
    write_csv(root / "train.csv", header, [[*map(int, r), t] for r, t in zip(X_train, y_train)])
    # The target column comes first here: predict selects features by name.
    write_csv(root / "test.csv", ["digit", *header[:-1]], [[t, *map(int, r)] for r, t in zip(X_test, y_test)])
    return root, y_test


@pytest.fixture(scope="module")
def digits_model(digits_csv):
    root, _ = digits_csv
    proc = run("train", "train.csv", "--target", "digit", "--hidden", "64", "--epochs", "15",
               "--lr", "3e-3", "--validation-split", "0.1", "--out", "digits.safetensors", cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root, proc.stdout


# ---- train / predict, end to end --------------------------------------------------
def test_train_classifier_on_csv(digits_model):
    root, out = digits_model
    assert "task: classification (inferred; use --task to change), 10 classes" in out
    assert "training on 1214 samples of 64 features, validating on 134" in out
    assert len([line for line in out.splitlines() if line.startswith("epoch ")]) == 15
    assert float(out.split("validation accuracy: ")[1].split("%")[0]) > 90
    assert f"model saved to {root / 'digits.safetensors'}" in out
    extra = read_extra_metadata(root / "digits.safetensors")
    assert extra["task"] == "classification" and json.loads(extra["classes"]) == list(range(10))
    assert json.loads(extra["feature_names"]) == [f"pixel{i}" for i in range(64)] and extra["target"] == "digit"


def test_predict_labels_and_probabilities(digits_model, digits_csv):
    root, y_test = digits_csv
    proc = run("predict", "--model", "digits.safetensors", "test.csv", "--out", "pred.csv", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {len(y_test)} predictions to {root / 'pred.csv'}" in proc.stdout
    header, rows = read_csv((root / "pred.csv").read_text())
    assert header == ["prediction"] and len(rows) == len(y_test)
    predicted = np.array([int(r[0]) for r in rows])
    assert np.mean(predicted == y_test) > 0.93

    proc = run("predict", "--model", "digits.safetensors", "test.csv", "--proba", cwd=root)  # to stdout
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv(proc.stdout)
    assert header == ["prediction"] + [f"proba_{k}" for k in range(10)]
    proba = np.array([[float(v) for v in r[1:]] for r in rows])
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(proba.argmax(axis=1), predicted)
    assert np.array_equal([int(r[0]) for r in rows], predicted)

    # The saved model takes raw pixels (the training scaling is folded in) and
    # agrees with Network.load + predict.
    net = bx.Network.load(root / "digits.safetensors")
    X, y = bx.load_digits()
    _, X_test, _, _ = bx.train_test_split(X, y, test_fraction=0.25, seed=0)
    assert np.allclose(net.predict(X_test), proba, atol=1e-6)


def test_regression_on_a_synthetic_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, 1000.0]   # unscaled features
    y = 3 * X[:, 0] - 0.2 * X[:, 1] + 0.01 * X[:, 2] + 50 + 0.05 * rng.standard_normal(500)
    write_csv(tmp_path / "train.csv", ["a", "b", "c", "price"], [[*r, t] for r, t in zip(X[:400], y[:400])])
    write_csv(tmp_path / "new.csv", ["c", "b", "a"], [[r[2], r[1], r[0]] for r in X[400:]])
    proc = run("train", "train.csv", "--target", "price", "--hidden", "32", "--epochs", "60", "--lr", "3e-3",
               "--quiet", "--out", "reg.safetensors", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    proc = run("predict", "--model", "reg.safetensors", "new.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv(proc.stdout)
    assert header == ["prediction"]
    pred = np.array([float(r[0]) for r in rows])
    r2 = 1 - np.sum((pred - y[400:]) ** 2) / np.sum((y[400:] - y[400:].mean()) ** 2)
    assert r2 > 0.97, r2
    proc = run("predict", "--model", "reg.safetensors", "new.csv", "--proba", cwd=tmp_path)
    assert proc.returncode == 2 and "--proba needs a classifier" in proc.stderr


def test_npz_input_with_labels_that_are_not_0_to_k(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4))
    y = np.where(X[:, 0] > 0, 7, np.where(X[:, 1] > 0, 3, -1))   # classes -1, 3, 7
    np.savez(tmp_path / "data.npz", X=X, y=y)
    np.savez(tmp_path / "new.npz", X=X[:50])
    proc = run("train", "data.npz", "--hidden", "16", "--epochs", "40", "--lr", "1e-2", "--quiet",
               "--out", "m.safetensors", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(read_extra_metadata(tmp_path / "m.safetensors")["classes"]) == [-1, 3, 7]
    proc = run("predict", "--model", "m.safetensors", "new.npz", "--proba", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv(proc.stdout)
    assert header == ["prediction", "proba_-1", "proba_3", "proba_7"]
    assert np.mean(np.array([int(r[0]) for r in rows]) == y[:50]) > 0.9


def test_info(tmp_path):
    proc = run("info", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = bx.config()
    for key in ("version", "kernel", "threads"):
        assert any(line.split()[:2] == [key, str(cfg[key])] for line in proc.stdout.splitlines()), proc.stdout
    proc = run("info", "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)["version"] == bx.__version__


def test_help(tmp_path, capsys):
    proc = run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("train", "predict", "info", "demo"):
        assert command in proc.stdout
    for command in ("train", "predict", "info", "demo"):
        assert main([command, "--help"]) == 0
        assert f"usage: backpropx {command}" in capsys.readouterr().out


# ---- bad input: exit code 2 and a message that names the problem -------------------
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "ok.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (root / "text.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    (root / "empty_cell.csv").write_text("a,b,label\n1,2,0\n3,,1\n")
    (root / "ragged.csv").write_text("a,b,label\n1,2,0\n3,1\n")
    (root / "no_header.csv").write_text("1,2,0\n3,4,1\n")
    (root / "empty.csv").write_text("")
    (root / "garbage.npz").write_bytes(b"not a zip file")
    (root / "garbage.safetensors").write_bytes(b"\x00" * 64)
    np.savez(root / "no_y.npz", X=np.ones((3, 2)))
    return root


@pytest.mark.parametrize("args, message", [
    (["train", "missing.csv", "--target", "label"], "cannot read missing.csv: No such file"),
    (["train", "ok.csv", "--target", "nope"], "ok.csv has no column 'nope'; its columns are 'a', 'b', 'label'"),
    (["train", "ok.csv"], "give --target COLUMN"),
    (["train", "text.csv", "--target", "label"], "text.csv, line 3: column 'b' has 'oops'"),
    (["train", "empty_cell.csv", "--target", "label"], "line 3: column 'b' has an empty (missing) value"),
    (["train", "ragged.csv", "--target", "label"], "ragged.csv, line 3: 2 fields, but the header has 3"),
    (["train", "no_header.csv", "--target", "label"], "CSV files need a header row"),
    (["train", "empty.csv", "--target", "label"], "empty.csv is empty"),
    (["train", "garbage.npz"], "garbage.npz is not an .npz file"),
    (["train", "no_y.npz"], "no_y.npz has no array named y"),
    (["train", "data.parquet"], "unsupported input file 'data.parquet'"),
    (["train", "ok.csv", "--target", "label", "--hidden", "8,x"], "--hidden: expected comma-separated"),
    (["train", "ok.csv", "--target", "label", "--out", "no/such/dir/m.safetensors"], "does not exist"),
    (["predict", "--model", "garbage.safetensors", "ok.csv"], "garbage.safetensors is not a safetensors file"),
    (["predict", "--model", "missing.safetensors", "ok.csv"], "cannot read model missing.safetensors"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_exits_2_with_a_message(bad_files, args, message, monkeypatch, capsys):
    monkeypatch.chdir(bad_files)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize("args, message", [
    (["train", "missing.csv", "--target", "label"], "backpropx train: error: cannot read missing.csv"),
    (["train", "ok.csv", "--target", "nope"], "ok.csv has no column 'nope'"),
    (["train", "text.csv", "--target", "label"], "text.csv, line 3: column 'b' has 'oops'"),
    (["predict", "--model", "garbage.safetensors", "ok.csv"], "is not a safetensors file"),
])
def test_bad_input_in_a_subprocess(bad_files, args, message):
    proc = run(*args, cwd=bad_files)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_predict_checks_the_feature_columns(tmp_path):
    write_csv(tmp_path / "train.csv", ["a", "b", "y"], [[i, i % 3, i % 2] for i in range(40)])
    assert main(["train", str(tmp_path / "train.csv"), "--target", "y", "--hidden", "4", "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "m.safetensors")]) == 0
    write_csv(tmp_path / "other.csv", ["a", "c"], [[1, 2]])
    proc = run("predict", "--model", "m.safetensors", "other.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "other.csv lacks 1 feature column(s) the model was trained on: 'b'" in proc.stderr
    np.savez(tmp_path / "wide.npz", X=np.ones((2, 5)))
    proc = run("predict", "--model", "m.safetensors", "wide.npz", cwd=tmp_path)
    assert proc.returncode == 2 and "the model expects 2 features, but wide.npz has 5" in proc.stderr


# ---- in-process: the pieces underneath ------------------------------------------
def test_unexpected_failures_exit_1(tmp_path, monkeypatch, capsys):
    import backpropx.cli as cli

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "cmd_info", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "unexpected error: RuntimeError: boom" in err


def test_text_labels_and_task_override(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 2))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "cat", "dog")
    write_csv(tmp_path / "pets.csv", ["x1", "x2", "animal"], [[*r, t] for r, t in zip(X, labels)])
    model = str(tmp_path / "pets.safetensors")
    assert main(["train", str(tmp_path / "pets.csv"), "--target", "animal", "--hidden", "none",
                 "--epochs", "30", "--lr", "3e-2", "--quiet", "--out", model]) == 0
    assert main(["predict", "--model", model, str(tmp_path / "pets.csv")]) == 0
    header, rows = read_csv(capsys.readouterr().out)
    assert header == ["prediction"] and np.mean(np.array([r[0] for r in rows]) == labels) > 0.95
    assert main(["train", str(tmp_path / "pets.csv"), "--target", "animal", "--task", "regression",
                 "--out", model]) == 2
    assert "regression needs a numeric target, but 'animal' holds text such as 'dog'" in capsys.readouterr().err
    # An integer target with many values is a regression unless told otherwise.
    write_csv(tmp_path / "ages.csv", ["x", "age"], [[i, i % 60] for i in range(120)])
    assert main(["train", str(tmp_path / "ages.csv"), "--target", "age", "--epochs", "1",
                 "--out", str(tmp_path / "a.safetensors")]) == 0
    assert "task: regression (inferred" in capsys.readouterr().out
    assert main(["train", str(tmp_path / "ages.csv"), "--target", "age", "--epochs", "1", "--task",
                 "classification", "--quiet", "--out", str(tmp_path / "a.safetensors")]) == 0
    assert len(json.loads(read_extra_metadata(tmp_path / "a.safetensors")["classes"])) == 60


def test_predict_with_a_model_saved_from_python(tmp_path, capsys):
    net = bx.Network([bx.Dense(3, 4, activation="softmax")], seed=0)
    net.save(tmp_path / "plain.safetensors")
    assert read_extra_metadata(tmp_path / "plain.safetensors") == {}
    np.savez(tmp_path / "x.npz", X=np.eye(3))
    assert main(["predict", "--model", str(tmp_path / "plain.safetensors"), str(tmp_path / "x.npz")]) == 0
    _, rows = read_csv(capsys.readouterr().out)
    assert [r[0] for r in rows] == [str(k) for k in net.predict(np.eye(3)).argmax(axis=1)]


def test_extra_metadata_round_trip_and_checks(tmp_path):
    net = bx.Network([bx.Dense(2, 2)], seed=0)
    path = tmp_path / "m.safetensors"
    net.save(path, extra_metadata={"task": "regression", "format": "mine"})   # no clash with backpropx's keys
    loaded, extra = load_network_with_metadata(path)
    assert extra == {"task": "regression", "format": "mine"}
    assert np.array_equal(loaded.predict(np.eye(2)), net.predict(np.eye(2)))
    assert np.array_equal(bx.Network.load(path).predict(np.eye(2)), net.predict(np.eye(2)))
    save_network(net, path)   # the old two-argument call
    assert read_extra_metadata(path) == {}
    with pytest.raises(TypeError, match=r"extra_metadata\['n'\] must be a string"):
        net.save(path, extra_metadata={"n": 3})
    with pytest.raises(TypeError, match="keys must be non-empty strings"):
        net.save(path, extra_metadata={"": "x"})


def test_no_command_runs_the_demo(tmp_path, capsys):
    out = tmp_path / "demo.safetensors"
    assert main(["--epochs", "1", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy: " in printed and f"model saved to {out}" in printed
    assert out.exists()
