"""Re-entrancy and concurrency: callbacks that call back into the trainer
and the network in every way, threads mixing fit, predict, evaluate,
loss_and_gradients, save, state_dict and load_state_dict, and Ctrl-C at
random points. Each gives a clear RuntimeError or a correct result; never a
crash, never a torn state."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import backpropx as bx

HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end", "on_train_end")


def data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)


def make_trainer(seed: int = 0, dtype: str = "float64") -> bx.Trainer:
    net = bx.Network([bx.Dense(5, 8, activation="relu"), bx.Dropout(0.2), bx.Dense(8, 3, activation="softmax")],
                     seed=seed, dtype=dtype)
    return bx.Trainer(net, optimizer=bx.Adam(lr=0.01), batch_size=8, seed=seed)


def digest(state: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(np.ascontiguousarray(state[key]).tobytes())
    return h.hexdigest()


class At(bx.Callback):
    """Runs `action(trainer)` once from hook `hook` (at batch 3 for on_batch_end)."""

    every = 1

    def __init__(self, hook: str, action) -> None:
        super().__init__()
        self.hook, self.action, self.result, self.done = hook, action, None, False

    def _maybe(self, hook: str, batch: int | None = None) -> None:
        if hook == self.hook and not self.done and (batch is None or batch == 3):
            self.done = True
            self.result = self.action(self.trainer)

    def on_train_begin(self, logs):
        self._maybe("on_train_begin")

    def on_epoch_begin(self, epoch, logs):
        self._maybe("on_epoch_begin")

    def on_batch_end(self, batch, logs):
        self._maybe("on_batch_end", batch)

    def on_epoch_end(self, epoch, logs):
        self._maybe("on_epoch_end")

    def on_train_end(self, logs):
        self._maybe("on_train_end")


def assert_usable(trainer: bx.Trainer) -> None:
    """The trainer is consistent and free again: finite weights, and fit runs."""
    assert all(np.isfinite(p).all() for p in trainer.network.parameters())
    X, y = data(16, seed=9)
    before = trainer.epochs_done
    trainer.fit(X, y, epochs=1, verbose=0)
    assert trainer.epochs_done == before + 1


# ---- callbacks that call back in -------------------------------------------------

@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("call", ["fit", "load_checkpoint"])
def test_re_entering_fit_or_loading_a_checkpoint_from_a_callback_is_refused(tmp_path, hook, call):
    X, y = data()
    trainer = make_trainer()
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    action = {"fit": lambda t: t.fit(X, y, epochs=1, verbose=0),
              "load_checkpoint": lambda t: t.load_checkpoint(tmp_path / "c.ckpt")}[call]
    with pytest.raises(RuntimeError, match=f"Trainer.{call} cannot run while this trainer is busy from one of its"):
        trainer.fit(X, y, epochs=2, verbose=0, callbacks=[At(hook, action)])
    assert_usable(trainer)


def test_the_core_refuses_a_second_epoch_on_a_busy_trainer():
    # Below the Python guard: the C++ binding refuses too.
    X, y = data()
    trainer = make_trainer()
    errors = []

    def inner(*_):
        try:
            trainer._core.train_epoch(X, None, y.astype(np.int64), None, 0)
        except RuntimeError as exc:
            errors.append(str(exc))

    trainer._core.train_epoch(X, None, y.astype(np.int64), inner, 1)
    assert errors and all("already running an epoch" in e for e in errors)


@pytest.mark.parametrize("hook", HOOKS)
def test_callbacks_may_save_evaluate_predict_and_pickle(tmp_path, hook):
    X, y = data()
    trainer = make_trainer()
    Xv, yv = data(20, seed=1)

    def action(t: bx.Trainer):
        snapshot = t.network.state_dict()
        t.save_checkpoint(tmp_path / "c.ckpt")
        t.network.save(tmp_path / "m.safetensors")
        clone = pickle.loads(pickle.dumps(t))
        return {"state": snapshot, "evaluate": t.evaluate(Xv, yv), "predict": t.network.predict(Xv),
                "loss": t.network.loss_and_gradients(Xv, yv), "clone": clone}

    cb = At(hook, action)
    trainer.fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    got = cb.result
    # What the callback saw is exactly the network of that moment.
    saved = bx.Network.load(tmp_path / "m.safetensors")
    assert digest(saved.state_dict()) == digest(got["state"])
    assert digest(got["clone"].network.state_dict()) == digest(got["state"])
    replay = bx.Trainer(saved, loss=trainer.loss, batch_size=8)
    assert replay.evaluate(Xv, yv) == got["evaluate"]
    np.testing.assert_array_equal(saved.predict(Xv), got["predict"])
    loss, grads = saved.loss_and_gradients(Xv, yv)
    assert loss == got["loss"][0] and digest(grads) == digest(got["loss"][1])
    # The checkpoint written mid-fit loads and is the same moment.
    other = make_trainer(seed=5)
    other.load_checkpoint(tmp_path / "c.ckpt")
    assert digest(other.network.state_dict()) == digest(got["state"])


def test_loss_and_gradients_from_a_callback_does_not_disturb_training():
    X, y = data()
    plain, probed = make_trainer(), make_trainer()
    plain.fit(X, y, epochs=2, verbose=0)

    class Probe(bx.Callback):
        every = 1

        def on_batch_end(self, batch, logs):
            self.trainer.network.loss_and_gradients(X[:7], y[:7])
            self.trainer.evaluate(X, y)
            self.trainer.network.predict(X)

    probed.fit(X, y, epochs=2, verbose=0, callbacks=[Probe()])
    assert digest(plain.network.state_dict()) == digest(probed.network.state_dict())


def test_load_state_dict_from_a_callback_takes_effect_at_the_next_batch():
    X, y = data()
    trainer = make_trainer()
    start = trainer.network.state_dict()

    class Reset(bx.Callback):
        every = 1

        def on_batch_end(self, batch, logs):
            if batch == logs["batches"]:  # the last batch of each epoch
                self.trainer.network.load_state_dict(start)

    trainer.fit(X, y, epochs=2, verbose=0, callbacks=[Reset()])
    assert digest(trainer.network.state_dict()) == digest(start)


def test_another_trainer_may_train_the_same_network_from_a_callback():
    X, y = data()
    trainer = make_trainer()
    helper = bx.Trainer(trainer.network, optimizer=bx.SGD(lr=0.01), batch_size=16)
    cb = At("on_batch_end", lambda t: helper.fit(X, y, epochs=1, verbose=0))
    trainer.fit(X, y, epochs=2, verbose=0, callbacks=[cb])
    assert helper.epochs_done == 1 and trainer.epochs_done == 2
    assert_usable(trainer)


def test_manual_mode_on_the_training_network_from_a_callback():
    # forward/backward/opt.step/zero_grad between two batches: the network is
    # whole there; fit's next batch starts from fresh gradients.
    X, y = data()
    trainer = make_trainer()
    net = trainer.network
    manual = bx.SGD(lr=0.01)
    seen = []

    class Manual(bx.Callback):
        every = 1

        def on_batch_end(self, batch, logs):
            out = net.forward(X[:4], training=True)
            net.backward(np.ones_like(out))
            manual.step(net)
            net.zero_grad()
            seen.append(np.isfinite(out).all())

    trainer.fit(X, y, epochs=2, verbose=0, callbacks=[Manual()])
    assert seen and all(seen)
    assert_usable(trainer)


# ---- threads ---------------------------------------------------------------------

class Gate(bx.Callback):
    """Holds fit at its first batch boundary until `release` is set."""

    every = 1

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.release = threading.Event(), threading.Event()

    def on_batch_end(self, batch, logs):
        if not self.inside.is_set():
            self.inside.set()
            assert self.release.wait(30)


@pytest.mark.parametrize("call", ["fit", "load_checkpoint", "save_checkpoint", "pickle"])
def test_a_second_thread_is_refused_while_fit_runs(tmp_path, call):
    X, y = data()
    trainer = make_trainer()
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    gate = Gate()
    runner = threading.Thread(target=lambda: trainer.fit(X, y, epochs=2, verbose=0, callbacks=[gate]))
    runner.start()
    try:
        assert gate.inside.wait(30)
        action = {"fit": lambda: trainer.fit(X, y, verbose=0),
                  "load_checkpoint": lambda: trainer.load_checkpoint(tmp_path / "c.ckpt"),
                  "save_checkpoint": lambda: trainer.save_checkpoint(tmp_path / "d.ckpt"),
                  "pickle": lambda: pickle.dumps(trainer)}[call]
        with pytest.raises(RuntimeError, match="busy in another thread"):
            action()
    finally:
        gate.release.set()
        runner.join(60)
    assert trainer.epochs_done == 2
    assert_usable(trainer)


def test_threads_mixing_everything_see_only_whole_states(tmp_path):
    """One thread trains; others predict, evaluate, take gradients, state dicts,
    save and load, while the training thread's callback installs other
    weights (load_state_dict) with the network unlocked. Every observation
    must belong to a state the network really had between two batches.

    Only the callback installs weights: it records the state first, so every
    state the readers can meet is recorded. (A reader thread installing
    weights could replace a freshly updated state before the callback saw
    it, and a correct reading of that state would look like a torn one.)"""
    X, y = data(96)
    Xp = X[:10]
    trainer = make_trainer(dtype="float32")
    net = trainer.network
    loaded = [bx.Network([bx.Dense(5, 8, activation="relu"), bx.Dropout(0.2),
                          bx.Dense(8, 3, activation="softmax")], seed=s, dtype="float32").state_dict()
              for s in (11, 12)]
    lock = threading.Lock()
    seen: dict[str, set] = {"state": set(), "predict": set(), "grad": set()}

    def record() -> None:  # called where the network is whole: before fit and at every batch boundary
        sd = net.state_dict()
        with lock:
            seen["state"].add(digest(sd))
            seen["predict"].add(net.predict(Xp).tobytes())
            seen["grad"].add(digest(net.loss_and_gradients(Xp, y[:10])[1]))

    for sd in loaded:  # states another thread may install
        keep = net.state_dict()
        net.load_state_dict(sd)
        record()
        net.load_state_dict(keep)
    record()

    install = np.random.default_rng(99)

    class Record(bx.Callback):
        every = 1

        def on_batch_end(self, batch, logs):
            record()
            cycled.wait(60)  # every kind of reading happens during the fit, however busy the machine
            if install.integers(3) == 0:
                net.load_state_dict(loaded[int(install.integers(2))])

    observed: dict[str, list] = {"state": [], "predict": [], "grad": [], "saved": []}
    errors: list[BaseException] = []
    done = threading.Event()

    cycled = threading.Event()

    def worker(k: int) -> None:
        rng = np.random.default_rng(k)
        try:
            count = 0
            while not done.is_set():
                op = count if count < 5 else int(rng.integers(5))  # each kind once, then at random
                count += 1
                if count == 6:
                    cycled.set()
                if op == 0:
                    observed["state"].append(digest(net.state_dict()))
                elif op == 1:
                    observed["predict"].append(net.predict(Xp).tobytes())
                elif op == 2:
                    observed["grad"].append(digest(net.loss_and_gradients(Xp, y[:10])[1]))
                elif op == 3:
                    path = tmp_path / f"w{k}.safetensors"
                    net.save(path)
                    observed["saved"].append(digest(bx.Network.load(path).state_dict()))
                else:
                    assert np.isfinite(trainer.evaluate(X, y)["loss"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for w in workers:
        w.start()
    try:
        trainer.fit(X, y, epochs=4, verbose=0, callbacks=[Record()])
    finally:
        done.set()
        for w in workers:
            w.join(60)
    assert not errors, errors
    assert all(len(v) for v in observed.values()), {k: len(v) for k, v in observed.items()}
    assert set(observed["state"]) <= seen["state"]
    assert set(observed["saved"]) <= seen["state"]
    assert set(observed["predict"]) <= seen["predict"]
    assert set(observed["grad"]) <= seen["grad"]


def test_toggling_trainable_from_another_thread_while_fitting():
    X, y = data(256)
    trainer = make_trainer()
    done = threading.Event()

    def toggle() -> None:
        flag = False
        while not done.is_set():
            trainer.network.layers[0].trainable = flag
            flag = not flag

    t = threading.Thread(target=toggle)
    t.start()
    try:
        trainer.fit(X, y, epochs=3, verbose=0)
    finally:
        done.set()
        t.join(60)
    assert_usable(trainer)


def test_manual_mode_in_another_thread_while_fitting():
    X, y = data(256)
    trainer = make_trainer()
    net = trainer.network
    done = threading.Event()
    errors: list[BaseException] = []

    def manual() -> None:
        opt = bx.SGD(lr=1e-3)
        try:
            while not done.is_set():
                try:
                    out = net.forward(X[:8], training=True)
                    net.backward(np.ones_like(out) * 1e-3)
                    opt.step(net)
                except ValueError as exc:  # fit ended this forward's pending backward: documented
                    assert "backward" in str(exc) or "superseded" in str(exc), exc
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=manual)
    t.start()
    try:
        trainer.fit(X, y, epochs=3, verbose=0)
    finally:
        done.set()
        t.join(60)
    assert not errors, errors
    assert_usable(trainer)


def test_two_trainers_on_one_network_in_two_threads():
    X, y = data(128)
    a = make_trainer()
    b = bx.Trainer(a.network, optimizer=bx.SGD(lr=0.01, momentum=0.9), batch_size=4)
    errors: list[BaseException] = []

    def run(t: bx.Trainer) -> None:
        try:
            t.fit(X, y, epochs=3, verbose=0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and a.epochs_done == 3 and b.epochs_done == 3
    assert_usable(a)


# ---- Ctrl-C at random points -----------------------------------------------------

CTRL_C_CHILD = textwrap.dedent("""
    import _thread, json, os, sys, threading, time
    import numpy as np
    import backpropx as bx

    workdir, rounds = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 6)); y = (X[:, 0] > 0).astype(int)
    Xv, yv = X[:40], y[:40]

    class Busy(bx.Callback):  # Python work at every batch, where Ctrl-C can land
        every = 1
        def on_batch_end(self, batch, logs):
            self.trainer.network.state_dict()

    def make():
        net = bx.Network([bx.Dense(6, 16, activation="relu"), bx.Dropout(0.1),
                          bx.Dense(16, 2, activation="softmax")], seed=1)
        return bx.Trainer(net, optimizer=bx.Adam(lr=0.01), batch_size=16, seed=2)

    def callbacks():
        return [Busy(), bx.ModelCheckpoint(os.path.join(workdir, "ckpt"), monitor="val_loss"),
                bx.CSVLogger(os.path.join(workdir, "log.csv")), bx.StepLR(2, 0.5),
                bx.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)]

    def fit(trainer):
        return trainer.fit(X, y, epochs=3, validation_data=(Xv, yv), verbose=0, callbacks=callbacks())

    start = time.perf_counter(); fit(make()); duration = time.perf_counter() - start
    results = {"interrupted": 0, "escaped": 0, "completed": 0, "problems": []}
    trainer = make()
    for r in range(rounds):
        trainer.optimizer.lr = 0.01  # each round's StepLR starts from here, not from the last decay
        before_epochs = trainer.epochs_done
        before_history = trainer.history
        before_state = {k: v.copy() for k, v in trainer.network.state_dict().items()}
        timer = threading.Timer(float(rng.uniform(0, 1.2 * duration)), _thread.interrupt_main)
        returned = None
        try:
            timer.start()  # inside the try: a tiny delay can interrupt before fit is even called
            try:
                returned = fit(trainer)
            finally:
                timer.cancel(); timer.join()
            for _ in range(3):
                time.sleep(0)  # a late signal is delivered here, after fit returned
        except KeyboardInterrupt:
            pass
        if returned is None:  # Ctrl-C escaped fit: only before anything changed
            results["escaped"] += 1
            same = (trainer.epochs_done == before_epochs and trainer.history is before_history and
                    all(np.array_equal(v, before_state[k]) for k, v in trainer.network.state_dict().items()))
            if not same:
                results["problems"].append(f"round {r}: KeyboardInterrupt escaped after a change")
        else:
            h = returned
            results["interrupted" if h.interrupted else "completed"] += 1
            if trainer.epochs_done != before_epochs + len(h.epoch):
                results["problems"].append(f"round {r}: {trainer.epochs_done} epochs done, "
                                           f"{before_epochs} + {len(h.epoch)} recorded")
            for key in ("loss", "lr", "time", "val_loss"):
                if len(h.history.get(key, [])) != len(h.epoch):
                    results["problems"].append(f"round {r}: history[{key!r}] is torn")
        if not all(np.isfinite(p).all() for p in trainer.network.parameters()):
            results["problems"].append(f"round {r}: non-finite weights")
        try:  # free again, consistent again
            trainer.fit(X[:32], y[:32], epochs=1, verbose=0)
        except BaseException as exc:
            results["problems"].append(f"round {r}: next fit failed: {exc!r}")
        ckpt = os.path.join(workdir, "ckpt")
        if os.path.exists(ckpt):
            try:
                make().load_checkpoint(ckpt)
            except BaseException as exc:
                results["problems"].append(f"round {r}: checkpoint unreadable: {exc!r}")
        leftovers = [f for f in os.listdir(workdir) if f.endswith(".partial")]
        if leftovers:
            results["problems"].append(f"round {r}: temporary files left: {leftovers}")
    print(json.dumps(results))
""")


def test_ctrl_c_at_random_points_never_tears_state(tmp_path):
    # A child process: a crash is a failed test, and signals stay out of pytest.
    proc = subprocess.run([sys.executable, "-c", CTRL_C_CHILD, str(tmp_path), "40"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not results["problems"], results["problems"]
    # The delays must really interrupt fit, or the test proves nothing.
    assert results["interrupted"] >= 10, results
