"""Reliability: hostile files, atomic saves, kills mid-training, threads, leaks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import backpropx as bx

HERE = os.path.dirname(os.path.abspath(__file__))


def small_net(seed: int = 0, dtype: str = "float32") -> bx.Network:
    return bx.Network([bx.Dense(8, 6, activation="tanh"), bx.Dropout(0.1),
                       bx.Dense(6, 3, activation="softmax")], seed=seed, dtype=dtype)


def digits_subset(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    X, y = bx.load_digits()
    return X[:n] / 16.0, y[:n]


# ---- hostile model files ---------------------------------------------------

FUZZ_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import backpropx as bx
    ok = bad = 0
    for path in sys.argv[1:]:
        try:
            net = bx.Network.load(path)
        except (ValueError, TypeError, OSError, MemoryError):
            bad += 1
            continue
        try:
            out = net.predict(np.zeros((2, net.in_features)))
            assert np.isfinite(out).all()
        except FloatingPointError:  # finite but absurd weights: an error, never a silent NaN
            pass
        ok += 1
    print(ok, bad)
""")


def mutations(data: bytes, count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.integers(5)
        if kind == 0:  # bit flips anywhere
            for _ in range(int(rng.integers(1, 8))):
                i = int(rng.integers(len(buf)))
                buf[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # truncation
            del buf[int(rng.integers(len(buf))):]
        elif kind == 2:  # insertion of random bytes
            i = int(rng.integers(len(buf)))
            buf[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif kind == 3:  # garbage in the JSON header
            header_len = int.from_bytes(buf[:8], "little")
            i = 8 + int(rng.integers(max(1, min(header_len, len(buf) - 8))))
            buf[i] = int(rng.choice(list(b'{}[]",:0123456789-e')))
        else:  # a forged header length
            buf[:8] = int(rng.integers(0, 2**63)).to_bytes(8, "little")
        yield bytes(buf)


def test_fuzzed_model_files_load_or_fail_cleanly(tmp_path):
    net = small_net()
    good = tmp_path / "good.safetensors"
    net.save(good)
    data = good.read_bytes()
    paths = []
    for i, blob in enumerate(mutations(data, 3000, seed=1)):
        p = tmp_path / f"m{i}.safetensors"
        p.write_bytes(blob)
        paths.append(str(p))
    # A child process, so that a crash is a failed test rather than a dead runner.
    proc = subprocess.run([sys.executable, "-c", FUZZ_CHILD, *paths], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ok, bad = map(int, proc.stdout.split())
    assert ok + bad == len(paths)
    assert bad > len(paths) // 2  # most mutations must be refused, not silently accepted


@pytest.mark.parametrize("payload, message", [
    (b"", "not a safetensors file"),
    (b"\x00" * 4, "not a safetensors file"),
    ((2**40).to_bytes(8, "little") + b"{}", "not a safetensors file, or is truncated"),
    ((2).to_bytes(8, "little") + b"{}", "not written by backpropx"),
])
def test_garbage_files_raise_value_error(tmp_path, payload, message):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        bx.Network.load(p)


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(OSError):
        bx.Network.load(tmp_path / "nope.safetensors")


def test_loaded_weights_must_be_finite_and_typed(tmp_path):
    from safetensors.numpy import save

    from backpropx.io import network_metadata

    net = small_net()
    tensors = {k: np.array(v) for k, v in net.named_parameters()}
    tensors["0.weight"][0, 0] = np.nan
    (tmp_path / "nan.safetensors").write_bytes(save(tensors, metadata=network_metadata(net)))
    with pytest.raises(ValueError, match="non-finite"):
        bx.Network.load(tmp_path / "nan.safetensors")
    tensors = {k: np.array(v, dtype=np.float64) for k, v in net.named_parameters()}
    (tmp_path / "f64.safetensors").write_bytes(save(tensors, metadata=network_metadata(net)))
    with pytest.raises(ValueError, match="float64"):
        bx.Network.load(tmp_path / "f64.safetensors")


# ---- atomic saves ----------------------------------------------------------

def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "model.safetensors"
    small_net(seed=1).save(path)
    small_net(seed=2).save(path)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert np.array_equal(bx.Network.load(path).state_dict()["0.weight"],
                          small_net(seed=2).state_dict()["0.weight"])


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    small_net(seed=1).save(path)
    before = path.read_bytes()

    def broken_fsync(fd):  # fault injection: the disk fails mid-save
        raise OSError("injected failure")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="injected"):
        small_net(seed=2).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


KILL_DURING_SAVE = textwrap.dedent("""
    import os, sys
    import backpropx as bx
    from backpropx import io
    real_replace = os.replace
    def slow_replace(src, dst):
        print("writing", flush=True)
        import time; time.sleep(60)   # killed here, after the data, before the rename
    io.os.replace = slow_replace
    net = bx.Network([bx.Dense(8, 6), bx.Dense(6, 3)], seed=2)
    net.save(sys.argv[1])
""")


def test_process_killed_during_save_leaves_previous_file(tmp_path):
    path = tmp_path / "model.safetensors"
    small_net(seed=1).save(path)
    before = path.read_bytes()
    with subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(path)], stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert path.read_bytes() == before
    bx.Network.load(path)


# ---- SIGKILL mid-training, then resume ---------------------------------------

TRAIN_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import backpropx as bx
    ckpt, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    X, y = bx.load_digits()
    X, y = X[:600] / 16.0, y[:600]
    net = bx.Network([bx.Dense(64, 32, activation="relu"), bx.Dropout(0.2),
                      bx.Dense(32, 10, activation="softmax")], seed=7)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=3e-3), batch_size=16, seed=11)
    class Announce(bx.Callback):
        every = 1
        def on_batch_end(self, batch, logs):
            if trainer.epochs_done == 3 and batch == 10:
                print("mid-epoch", flush=True)
                import time; time.sleep(60)   # SIGKILLed here, inside epoch 4
    callbacks = [bx.ModelCheckpoint(ckpt)]
    if mode == "kill":
        callbacks.append(Announce())
    resume = ckpt if mode == "resume" else None
    trainer.fit(X, y, epochs=6, verbose=0, callbacks=callbacks, resume_from=resume)
    np.savez(out, **net.state_dict())
""")


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    ckpt = str(tmp_path / "ckpt.safetensors")
    straight, resumed = str(tmp_path / "straight.npz"), str(tmp_path / "resumed.npz")
    subprocess.run([sys.executable, "-c", TRAIN_CHILD, str(tmp_path / "other.safetensors"), straight, "plain"],
                   check=True, timeout=300)
    with subprocess.Popen([sys.executable, "-c", TRAIN_CHILD, ckpt, resumed, "kill"],
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "mid-epoch"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert not os.path.exists(resumed)
    subprocess.run([sys.executable, "-c", TRAIN_CHILD, ckpt, resumed, "resume"], check=True, timeout=300)
    a, b = np.load(straight), np.load(resumed)
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key


# ---- threads -----------------------------------------------------------------

def test_concurrent_predict_gives_the_same_results():
    net = bx.Network([bx.Dense(64, 128, activation="relu"), bx.Dense(128, 10, activation="softmax")], seed=0)
    X = np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)
    expected = net.predict(X)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(net.predict(X))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 40
    for r in results:
        assert np.array_equal(r, expected)


def test_predict_while_fitting_sees_consistent_weights():
    X, y = digits_subset(1200)
    net = bx.Network([bx.Dense(64, 64, activation="relu"), bx.Dense(64, 10, activation="softmax")], seed=0)
    trainer = bx.Trainer(net, batch_size=8)
    outputs, done = [], threading.Event()

    def reader():
        while not done.is_set():
            out = net.predict(X[:50])
            outputs.append(out)

    t = threading.Thread(target=reader)
    t.start()
    try:
        trainer.fit(X, y, epochs=3, verbose=0)
    finally:
        done.set()
        t.join()
    assert outputs
    for out in outputs:  # never a half-updated network: rows are probabilities
        assert np.isfinite(out).all()
        assert np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_one_and_two_threads_train_identically():
    X, y = digits_subset(500)
    results = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        try:
            net = bx.Network([bx.Dense(64, 48, activation="relu"), bx.Dropout(0.3),
                              bx.Dense(48, 10, activation="softmax")], seed=3)
            bx.Trainer(net, batch_size=64, seed=4).fit(X, y, epochs=3, verbose=0)
            results.append(net.state_dict())
        finally:
            bx.set_num_threads(os.cpu_count() or 1)
    for key in results[0]:
        assert np.array_equal(results[0][key], results[1][key]), key


# ---- memory ------------------------------------------------------------------

def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_building_training_and_dropping_networks_keeps_memory_flat():
    X, y = digits_subset(256)

    def cycle():
        net = bx.Network([bx.Dense(64, 256, activation="relu"), bx.Dense(256, 10, activation="softmax")])
        trainer = bx.Trainer(net, batch_size=64)
        trainer.fit(X, y, epochs=1, verbose=0)
        net.predict(X)
        net.loss_and_gradients(X, y)

    for _ in range(20):
        cycle()
    before = rss_kib()
    for _ in range(100):
        cycle()
    grown = rss_kib() - before
    # A cycle allocates ~0.5 MiB (parameters, gradients, Adam state, batch
    # buffers); 100 leaked cycles would add ~50 MiB.
    assert grown < 16 * 1024, f"resident memory grew by {grown} KiB over 100 networks"


def test_impossible_allocation_is_memory_error():
    with pytest.raises(MemoryError, match="MiB"):
        bx.Network([bx.Dense(10**7, 10**7)])


# ---- Ctrl-C ----------------------------------------------------------------------

SIGINT_CHILD = textwrap.dedent("""
    import numpy as np
    import backpropx as bx
    X = np.random.default_rng(0).normal(size=(20000, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = bx.Network([bx.Dense(64, 256, activation="relu"), bx.Dense(256, 2, activation="softmax")])
    trainer = bx.Trainer(net, batch_size=16)
    class Started(bx.Callback):
        every = 50
        def on_batch_end(self, batch, logs):
            if trainer.epochs_done == 0 and batch == 50:
                print("started", flush=True)
    history = trainer.fit(X, y, epochs=1000, verbose=0, callbacks=[Started()])
    finite = all(np.isfinite(p).all() for p in net.parameters())
    print("interrupted", history.interrupted, trainer.epochs_done < 1000, finite, flush=True)
""")


def test_ctrl_c_stops_fit_at_a_batch_boundary():
    with subprocess.Popen([sys.executable, "-c", SIGINT_CHILD], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert out.strip() == "interrupted True True True"


def test_overflowing_weights_raise_instead_of_returning_nan():
    net = bx.Network([bx.Dense(8, 6), bx.Dense(6, 3, activation="softmax")])
    sd = net.state_dict()
    sd["0.weight"][...] = 3e38
    net.load_state_dict(sd)
    X = np.ones((3, 8))
    with pytest.raises(FloatingPointError, match="not finite"):
        net.predict(X)
    with pytest.raises(FloatingPointError, match="not finite"):
        net.loss_and_gradients(X, [0, 1, 2])
    with pytest.raises(FloatingPointError, match="not finite"):
        bx.Trainer(net).evaluate(X, [0, 1, 2])
