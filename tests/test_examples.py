"""The example scripts and ``python -m backpropx`` run and print the results
they promise. Each example's ``main()`` runs in-process (from a temporary
working directory, since some write files); one script and the command-line
demo run in a subprocess, the way users start them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backpropx as bx

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_example_is_covered():
    assert {p.stem for p in EXAMPLES.glob("*.py")} == {
        "weight_table", "xor", "digits", "perturbation_vs_backprop", "fine_tune"}


def test_weight_table(in_tmp, capsys):
    w = load_example("weight_table").main()
    out = capsys.readouterr().out
    assert w == pytest.approx(2.0, abs=1e-6)
    assert "w = 4" in out and "mean squared error: 0\n" in out   # the table at w = 2 is exact
    assert re.search(r"final w = 2\.0000000\d", out)


def test_weight_table_as_a_script(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "weight_table.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"final w = 2\.0000000\d \(the answer is 2\)", proc.stdout)


def test_xor(in_tmp, capsys):
    out = load_example("xor").main()
    assert np.array_equal(out[:, 0] > 0.5, [False, True, True, False])
    assert np.all(np.abs(out[:, 0] - [0, 1, 1, 0]) < 0.1)
    printed = capsys.readouterr().out
    for line in ("0 xor 0 ->", "0 xor 1 ->", "1 xor 0 ->", "1 xor 1 ->"):
        assert line in printed
    assert re.findall(r"\((\d)\)", printed) == ["0", "1", "1", "0"]


def test_digits(in_tmp, capsys):
    accuracy = load_example("digits").main()
    out = capsys.readouterr().out
    assert accuracy >= 0.97
    assert f"held-out accuracy {accuracy:.2%}" in out
    assert (in_tmp / "digits.safetensors").exists() and "saved to digits.safetensors" in out
    confusion = np.array([[int(v) for v in re.findall(r"\d+", row)]
                          for row in re.findall(r"\[\[?([\d\s]+)\]", out)])
    X, y = bx.load_digits()
    n_test = len(bx.train_test_split(X, y, test_fraction=0.25, seed=0)[3])
    assert confusion.shape == (10, 10) and confusion.sum() == n_test
    assert np.trace(confusion) / confusion.sum() == pytest.approx(accuracy)


def test_fine_tune(in_tmp, capsys):
    accuracy = load_example("fine_tune").main()
    out = capsys.readouterr().out
    assert accuracy > 0.9
    assert "frozen layer unchanged: True; base network untouched: True" in out


def test_perturbation_vs_backprop(in_tmp, capsys):
    ratio = load_example("perturbation_vs_backprop").main()
    out = capsys.readouterr().out
    assert ratio > 100
    worst = float(re.search(r"worst relative difference between the two: (\S+)", out).group(1))
    assert worst < 1e-6


def test_command_line_demo(tmp_path):
    out_path = tmp_path / "model.safetensors"
    proc = subprocess.run([sys.executable, "-m", "backpropx", "--epochs", "30", "--out", str(out_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"held-out accuracy: (\d+\.\d+)% on (\d+) digits", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) >= 97.0
    assert f"model saved to {out_path}" in proc.stdout
    assert len(re.findall(r"^epoch \d+/30 - ", proc.stdout, flags=re.M)) == 30  # verbose, not a tty

    # The saved model reproduces the printed accuracy on the same held-out split.
    net = bx.Network.load(out_path)
    X, y = bx.load_digits()
    _, X_test, _, y_test = bx.train_test_split(X / 16.0, y, test_fraction=0.25, seed=0)
    assert len(y_test) == int(match.group(2))
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    assert f"{accuracy:.2%}" == f"{match.group(1)}%"
    again = tmp_path / "again.safetensors"
    net.save(again)
    assert np.array_equal(bx.Network.load(again).predict(X_test), net.predict(X_test))
