"""Loading files that are not what they claim: no hang, no unbounded read,
no RecursionError, and a checkpoint that fails validation changes nothing.
Saving never writes a file that loading refuses."""

from __future__ import annotations

import json
import os
import pathlib
import threading

import numpy as np
import pytest
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import backpropx as bx
from backpropx import bounded_json
from backpropx.io import MAX_HEADER_BYTES, physical_memory


def small_net(seed: int = 0) -> bx.Network:
    return bx.Network([bx.Dense(4, 5, activation="tanh"), bx.Dense(5, 3, activation="softmax")], seed=seed)


def header_of(path) -> dict:
    data = pathlib.Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n])


def rewrite(path, out, **changes) -> None:
    """Copy the safetensors file at `path` to `out` with metadata entries replaced."""
    meta = header_of(path)["__metadata__"]
    meta.update(changes)
    pathlib.Path(out).write_bytes(st_save(st_load(pathlib.Path(path).read_bytes()), metadata=meta))


def load_in_thread(path, timeout: float = 10.0):
    """Network.load(path) in a daemon thread: (exception or result), or a hang."""
    box: list = []

    def run():
        try:
            box.append(bx.Network.load(path))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"loading {path} hangs"
    return box[0]


# ---- file types and sizes --------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_without_writer_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    err = load_in_thread(fifo)
    assert isinstance(err, ValueError) and "not a safetensors file: it is a FIFO" in str(err)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_refused_without_reading():
    err = load_in_thread("/dev/zero")
    assert isinstance(err, ValueError) and "it is a device" in str(err)


def test_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="it is a directory"):
        bx.Network.load(tmp_path)


def test_file_larger_than_memory_is_refused_before_reading(tmp_path):
    memory = physical_memory()
    if memory is None:
        pytest.skip("physical memory unknown")
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as f:  # sparse: no disk space used
        f.truncate(memory + 1)
    with pytest.raises(MemoryError, match="more than this machine's"):
        bx.Network.load(huge)


@pytest.mark.parametrize("payload", [
    b"a,b,label\n1,2,0\n3,4,1\n",                          # a CSV
    b"\x89PNG\r\n\x1a\n" + bytes(64),                      # an image
    b'{"layers": [1, 2, 3], "dtype": "float32"}' * 4,     # JSON text
    b"PK\x03\x04" + bytes(100),                            # a zip / .npz
    (5).to_bytes(8, "little") + b"[1, 2]",                 # right length, not a JSON object
])
def test_foreign_files_are_not_safetensors(tmp_path, payload):
    p = tmp_path / "x.safetensors"
    p.write_bytes(payload)
    with pytest.raises(ValueError, match="not a safetensors file"):
        bx.Network.load(p)


# ---- nested JSON -------------------------------------------------------------

def test_deeply_nested_header_is_a_value_error(tmp_path):
    body = b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    p = tmp_path / "deep.safetensors"
    p.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(ValueError, match="nested 200001 levels deep"):
        bx.Network.load(p)


@pytest.mark.parametrize("key", ["layers", "history", "callbacks"])
def test_deeply_nested_metadata_is_a_value_error(tmp_path, key):
    net = small_net()
    trainer = bx.Trainer(net)
    good = tmp_path / "good.ckpt"
    trainer.save_checkpoint(good)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, **{key: "[" * 100_000 + "]" * 100_000})
    # A checkpoint's layer list must equal the trainer's before it is parsed.
    with pytest.raises(ValueError, match="architecture" if key == "layers" else "levels deep"):
        bx.Trainer(small_net()).load_checkpoint(bad)
    if key == "layers":
        with pytest.raises(ValueError, match="levels deep"):
            bx.Network.load(bad)


def test_depth_ignores_brackets_inside_strings():
    assert bounded_json.depth(json.dumps({"a": ["[[[", '"]}', [[]]]})) == 4
    assert bounded_json.loads('"[[[[[[[["', "x") == "[[[[[[[["


# ---- save never writes what load refuses -------------------------------------

def test_save_refuses_a_header_load_would_refuse(tmp_path):
    net = small_net()
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="over the .* that loading accepts"):
        net.save(path, extra_metadata={"blob": "x" * (MAX_HEADER_BYTES + 1)})
    assert not path.exists()
    net.save(path, extra_metadata={"blob": "x" * (MAX_HEADER_BYTES - 4096)})  # the largest that fits loads
    assert bx.io.read_extra_metadata(path)["blob"] == "x" * (MAX_HEADER_BYTES - 4096)


def test_save_checkpoint_refuses_callback_state_load_would_refuse(tmp_path):
    class Deep(bx.Callback):
        def state_dict(self):
            state: list = []
            for _ in range(bounded_json.MAX_DEPTH + 5):
                state = [state]
            return {"x": state}

    X, y = np.zeros((4, 4)), np.array([0, 1, 2, 0])
    trainer = bx.Trainer(small_net())
    trainer.fit(X, y, verbose=0, callbacks=[Deep()])
    with pytest.raises(ValueError, match="callbacks' state is nested"):
        trainer.save_checkpoint(tmp_path / "c.ckpt")
    assert not (tmp_path / "c.ckpt").exists()


def test_infinite_optimizer_state_round_trips(tmp_path):
    # A gradient of 2e30 is finite in float32 but its square, Adam's second
    # moment, is not: the trainer carries on, so its checkpoint must load.
    net = bx.Network([bx.Dense(1, 1, bias=False, init="zeros")], seed=0)
    trainer = bx.Trainer(net, loss="mse", optimizer=bx.Adam(lr=1e-3), batch_size=1, shuffle=False)
    trainer.fit(np.ones((1, 1)), np.full((1, 1), 1e30), verbose=0, warn_gradients=False)
    assert np.isinf(trainer._opt_core.get_state()[1]).any()
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    other = bx.Trainer(bx.Network([bx.Dense(1, 1, bias=False, init="zeros")], seed=0), loss="mse",
                       optimizer=bx.Adam(lr=1e-3), batch_size=1, shuffle=False)
    other.load_checkpoint(tmp_path / "c.ckpt")
    for a, b in zip(other._opt_core.get_state(), trainer._opt_core.get_state()):
        np.testing.assert_array_equal(a, b)


# ---- a checkpoint that fails validation changes nothing ------------------------

def trainer_state(trainer: bx.Trainer, callbacks=()) -> dict:
    return {"params": trainer.network.state_dict(),
            "opt": [np.array(b) for b in trainer._opt_core.get_state()],
            "steps": trainer._opt_core.steps, "lr": trainer.optimizer.lr,
            "rng": list(trainer._core.get_rng_state()), "epochs": trainer.epochs_done,
            "history": json.dumps([trainer.history.epoch, trainer.history.history]),
            "callbacks": [json.dumps(cb.state_dict()) for cb in callbacks]}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key in ("params",):
            for name in a[key]:
                np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=name)
        elif key == "opt":
            assert len(a[key]) == len(b[key])
            for x, y in zip(a[key], b[key]):
                np.testing.assert_array_equal(x, y)
        else:
            assert a[key] == b[key], key


BAD_METADATA = [
    ("optimizer_steps", "-1"), ("optimizer_steps", "1.5"), ("optimizer_steps", str(2**64)),
    ("epochs_done", "-3"), ("epochs_done", "many"),
    ("lr", "-0.1"), ("lr", "nan"), ("lr", "inf"), ("lr", "fast"),
    ("history", "[]"), ("history", '{"epoch": [1], "history": {"loss": ["low"]}}'),
    ("history", '{"epoch": [1.5], "history": {}}'), ("history", '{"epoch": [1], "history": {"loss": [1, 2]}}'),
    ("history", "{not json"),
    ("callbacks", '"none"'), ("callbacks", '{"0:EarlyStopping": {"best": "low", "wait": 0, "best_epoch": 1}}'),
    ("callbacks", '{"0:EarlyStopping": {"best": 1.0}}'),
]


@pytest.mark.parametrize("key, value", BAD_METADATA)
def test_checkpoint_with_bad_metadata_changes_nothing(tmp_path, key, value):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    source = bx.Trainer(small_net(seed=1), optimizer=bx.Adam(lr=0.01), batch_size=8, seed=3)
    stopper = bx.EarlyStopping(monitor="loss", patience=5)
    source.fit(X, y, epochs=2, verbose=0, callbacks=[stopper])
    good = tmp_path / "good.ckpt"
    source.save_checkpoint(good)
    bad = tmp_path / "bad.ckpt"
    rewrite(good, bad, **{key: value})

    target = bx.Trainer(small_net(seed=2), optimizer=bx.Adam(lr=0.01), batch_size=8, seed=4)
    target_stopper = bx.EarlyStopping(monitor="loss", patience=5)
    target.fit(X[:16], y[:16], epochs=1, verbose=0, callbacks=[target_stopper])
    before = trainer_state(target, [target_stopper])
    with pytest.raises(ValueError, match="checkpoint"):
        target.fit(X, y, epochs=4, verbose=0, callbacks=[target_stopper], resume_from=bad)
    assert_same_state(trainer_state(target, [target_stopper]), before)
    # The good checkpoint still loads into the same trainer.
    target.fit(X, y, epochs=3, verbose=0, callbacks=[target_stopper], resume_from=good)
    assert target.epochs_done == 3


@pytest.mark.parametrize("damage", ["rng_zero", "state_nan", "state_short", "weight_nan"])
def test_checkpoint_with_bad_tensors_changes_nothing(tmp_path, damage):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 3, 40)
    source = bx.Trainer(small_net(seed=1), optimizer=bx.Adam(lr=0.01), batch_size=8)
    source.fit(X, y, epochs=1, verbose=0)
    good = tmp_path / "good.ckpt"
    source.save_checkpoint(good)
    tensors = st_load(good.read_bytes())
    if damage == "rng_zero":
        tensors["rng"] = np.zeros(4, np.uint64)
    elif damage == "state_nan":
        tensors["optimizer.exp_avg"][3] = np.nan
    elif damage == "state_short":
        tensors["optimizer.exp_avg"] = tensors["optimizer.exp_avg"][:-1]
        tensors["optimizer.exp_avg_sq"] = tensors["optimizer.exp_avg_sq"][:-1]
    else:
        tensors["1.weight"][0, 0] = np.nan
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(st_save(tensors, metadata=header_of(good)["__metadata__"]))
    target = bx.Trainer(small_net(seed=2), optimizer=bx.Adam(lr=0.01), batch_size=8)
    target.fit(X, y, epochs=1, verbose=0)
    before = trainer_state(target)
    with pytest.raises(ValueError):
        target.load_checkpoint(bad)
    assert_same_state(trainer_state(target), before)
