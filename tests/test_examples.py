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
from conftest import assert_close

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
        "weight_table", "xor", "digits", "perturbation_vs_backprop", "fine_tune", "gan", "vae",
        "policy_gradient", "distributed_digits", "mnist1d_cnn", "digits_cnn", "mnist1d_gru", "char_lm"}


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
    result = load_example("fine_tune").main(["--quick"])
    out = capsys.readouterr().out
    parity, five_to_nine = result["parity"], result["five_to_nine"]
    # Features of a digit recogniser serve a new question about the digits ...
    assert parity["transfer"] >= parity["scratch"] + 0.02 and parity["transfer_wins"] >= 4
    assert parity["transfer"] > 0.8
    # ... and features of a 0-4 recogniser serve the digits 5-9 worse than raw pixels do.
    assert five_to_nine["scratch"] > five_to_nine["transfer"] > 0.7 and five_to_nine["scratch"] > 0.9
    for r in result.values():
        assert r["frozen_unchanged"] and r["untouched"]
    assert out.count("frozen layers unchanged: True; pretrained network untouched: True") == 2
    assert f"mean {parity['transfer']:.2%}" in out and f"mean {five_to_nine['scratch']:.2%}" in out


def test_gan_covers_the_modes(in_tmp, capsys):
    result = load_example("gan").main(["--quick"])
    out = capsys.readouterr().out
    assert result["modes"] >= 6 and result["quality"] >= 0.4
    assert f"modes covered: {result['modes']}/8" in out
    assert f"high-quality samples: {result['quality']:.1%}" in out


def test_gan_mode_figures_tell_coverage_from_collapse():
    gan = load_example("gan")
    rng = np.random.default_rng(0)
    modes, quality, per_mode = gan.mode_figures(gan.sample_data(rng, 20000))
    assert modes == 8 and per_mode.sum() == round(quality * 20000)
    assert quality == pytest.approx(1 - np.exp(-4.5), abs=0.005)    # P(|2-D normal| <= 3 sigma)
    collapsed = gan.centres()[3] + gan.STD * rng.standard_normal((2000, 2))
    assert gan.mode_figures(collapsed)[0] == 1
    seven = gan.sample_data(rng, 4000)
    seven = seven[np.linalg.norm(seven - gan.centres()[5], axis=1) > 0.5]      # one mode dropped
    assert gan.mode_figures(seven)[0] == 7
    blurred = gan.sample_data(rng, 2000) + 0.3 * rng.standard_normal((2000, 2))
    modes, quality, _ = gan.mode_figures(blurred)
    assert quality < 0.1 and modes == 0


def test_vae(in_tmp, capsys):
    plt_image = pytest.importorskip("matplotlib.image")
    result = load_example("vae").main(["--quick", "--out", "samples.png"])
    out = capsys.readouterr().out
    assert result["elbo"] == pytest.approx(result["reconstruction"] - result["kl"])
    assert result["elbo"] > -21.0 and result["kl"] > 1.0         # the latent is used
    assert result["elbo"] > result["independent_pixels"] + 4.0
    assert f"held-out ELBO: {result['elbo']:.2f} nats per image" in out
    assert "samples saved to samples.png" in out
    image = plt_image.imread(in_tmp / "samples.png")
    assert image.ndim == 3 and min(image.shape[:2]) >= 300
    assert image[..., :3].std() > 0.1            # not a blank canvas


def test_vae_gradient_matches_finite_differences():
    vae = load_example("vae")
    model = vae.VAE(latent=3, hidden=7, seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    for net in (model.encoder, model.decoder):
        for _, p in net.named_parameters():
            p[...] = 0.3 * rng.standard_normal(p.shape)
    x = (rng.random((5, 64)) > 0.5).astype(np.float64)
    eps = rng.standard_normal((5, 3))

    def loss() -> float:
        reconstruction, kl, _ = model.negative_elbo(x, eps, training=False)
        return float(np.mean(reconstruction + kl))

    assert model.backward(x, eps) == pytest.approx(loss(), rel=1e-12)
    for net in (model.encoder, model.decoder):
        grads = dict(net.named_gradients())
        for name, p in net.named_parameters():
            analytic = grads[name].copy()
            numeric = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                saved = p[idx]
                p[idx] = saved + 1e-6
                up = loss()
                p[idx] = saved - 1e-6
                numeric[idx] = (up - loss()) / 2e-6
                p[idx] = saved
            assert_close(analytic, numeric, 1e-6, name)


def test_policy_gradient_balances_the_pole(in_tmp, capsys):
    result = load_example("policy_gradient").main(["--quick"])
    out = capsys.readouterr().out
    assert result["return"] >= 195 and result["greedy_return"] >= 195
    assert f"average return over 100 evaluation episodes: {result['return']:.1f}" in out


def test_cartpole_is_gymnasiums_cartpole_v1():
    gym = pytest.importorskip("gymnasium")
    pg = load_example("policy_gradient")
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    lengths = []
    for episode in range(6):
        env.reset(seed=episode)
        mine = pg.CartPole(1, rng)
        mine.state = np.array([env.unwrapped.state], dtype=np.float64)
        steps = 0
        while True:
            x, x_dot, theta, theta_dot = mine.state[0]
            # random pushes (falls) and a balancing rule (reaches the 500-step cut-off)
            action = int(rng.integers(0, 2)) if episode < 3 else int(theta + 0.5 * theta_dot + 0.01 * x
                                                                       + 0.1 * x_dot > 0)
            _, reward, terminated, truncated, _ = env.step(action)
            assert mine.step(np.array([action]))[0] == reward
            np.testing.assert_allclose(mine.state[0], env.unwrapped.state, rtol=0, atol=1e-12)
            steps += 1
            assert mine.done[0] == (terminated or truncated)
            if mine.done[0]:
                break
        lengths.append(steps)
    assert max(lengths[:3]) < 100 and lengths[3:] == [500, 500, 500]


def test_returns_to_go():
    pg = load_example("policy_gradient")
    rewards = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])   # episodes of 3 and 1 steps
    assert np.allclose(pg.returns_to_go(rewards, 0.5), [[1.75, 1.0], [1.5, 0.0], [1.0, 0.0]])


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


def test_distributed_digits_on_one_process(in_tmp, capsys):
    # without mpiexec: plain training (tests/mpi/ runs it on two processes)
    accuracy = load_example("distributed_digits").main(epochs=3)
    assert 0.85 < accuracy <= 1.0
    assert f"1 process, 3 epochs of batches of 64: held-out accuracy {accuracy:.2%}" in capsys.readouterr().out


def test_mnist1d_cnn_at_small_settings(in_tmp, capsys, restore_threads):
    """The paper's CNN on generated MNIST-1D (2,000 sequences, 300 steps): well
    above chance for both recipes, nothing downloaded, the caller's random
    states untouched (the full run is in the README)."""
    pytest.importorskip("mnist1d")
    import random

    bx.set_num_threads(1)
    np_state, py_state = np.random.get_state(), random.getstate()
    paper, decayed = load_example("mnist1d_cnn").main(steps=300, seeds=1, num_samples=2000)
    assert paper > 0.6 and decayed > 0.6
    assert random.getstate() == py_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    assert not list(in_tmp.iterdir())  # no data file written or fetched
    out = capsys.readouterr().out
    assert "paper's recipe (Adam): median test accuracy over 1 seed(s), 300 steps" in out


def test_digits_cnn_beats_the_dense_network(in_tmp, capsys, restore_threads):
    bx.set_num_threads(1)
    cnn, dense = load_example("digits_cnn").main(epochs=8)
    assert cnn > dense and cnn >= 0.98
    assert "held-out accuracy" in capsys.readouterr().out


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the example tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_mnist1d_gru(in_tmp, offline, capsys):
    """The paper's bidirectional GRU at small settings (the full run is 6000 steps, 3 seeds:
    README); the data set is generated offline, nothing is downloaded or written."""
    pytest.importorskip("mnist1d")
    import random

    np_state, py_state = np.random.get_state(), random.getstate()
    accuracy = load_example("mnist1d_gru").main(steps=80, seeds=1, num_samples=1000)
    assert random.getstate() == py_state  # the callers' generators untouched
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    out = capsys.readouterr().out
    assert "MNIST-1D: 800 training, 200 test sequences of 40 steps" in out
    assert re.search(r"seed 0: 10 epochs \(80 steps\) in [\d.]+ s, test accuracy [\d.]+%", out)
    assert accuracy > 0.3  # chance is 0.1; 80 steps on 800 samples reach 0.38
    assert list(in_tmp.iterdir()) == []


def test_char_lm(in_tmp, capsys):
    """A small character model on the first 30,000 characters: it beats the character
    frequencies on held-out text and writes a sample of the requested length."""
    bpc = load_example("char_lm").main(hidden=32, epochs=2, chars=30000, steps=25, batch_size=32, lr=1e-2,
                                       sample_length=60)
    out = capsys.readouterr().out
    baseline = float(re.search(r"frequencies alone give ([\d.]+) bits", out).group(1))
    assert re.search(r"epoch 2: held-out [\d.]+ bits per character", out)
    assert bpc < baseline - 0.4, (bpc, baseline)
    sample = out.split("--- sample ---\n")[1].split("\n---\n")[0]
    assert sample.startswith("HAMLET:\n") and len(sample) == len("HAMLET:\n") + 60
