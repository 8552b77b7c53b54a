"""Scenarios of distributed training, run on every rank by
``mpiexec -n N python scenarios.py NAME OUTDIR`` (test_mpi.py launches them).

Each rank writes what it ended with to OUTDIR/rank{r}.npz (parameters,
history) and OUTDIR/rank{r}.json (outcome: "ok", or the exception's type and
message); the tests compare them across ranks, runs and process counts.
Assertions live in test_mpi.py, never here: a rank that stopped on a failed
assertion would leave the other waiting, which is what these tests guard
against.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import numpy as np

import backpropx as bx

SCENARIOS: dict[str, Any] = {}


def scenario(fn: Any) -> Any:
    SCENARIOS[fn.__name__] = fn
    return fn


UNCAUGHT = {"uncaught"}   # scenarios whose exception must escape the script


def classification_data(n: int = 203, features: int = 12, classes: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)   # the same data on every rank
    X = rng.normal(size=(n, features))
    y = rng.integers(0, classes, n)
    w = rng.uniform(0.5, 2.0, n)
    return X, y, w


def small_trainer(dtype: str = "float64", dropout: float = 0.0, **kwargs: Any) -> bx.Trainer:
    layers = [bx.Dense(12, 16, activation="tanh")]
    if dropout:
        layers.append(bx.Dropout(dropout))
    layers.append(bx.Dense(16, 4, activation="softmax"))
    net = bx.Network(layers, seed=1, dtype=dtype)
    kwargs.setdefault("optimizer", bx.Adam(lr=1e-2))
    return bx.Trainer(net, batch_size=10, seed=3, distributed=bx.MPIGroup(), **kwargs)


def result(trainer: bx.Trainer, history: bx.History | None = None) -> dict[str, np.ndarray]:
    out = {f"param.{k}": v for k, v in trainer.network.state_dict().items()}
    if history is not None:
        for key, values in history.history.items():
            if key != "time":
                out[f"history.{key}"] = np.asarray(values)
        out["interrupted"] = np.asarray(history.interrupted)
    return out


@scenario
def equal(outdir: str) -> dict[str, np.ndarray]:
    """21 steps of float64 training with sample weights, an uneven last batch,
    L2, clipping and validation; X comes memory-mapped (whole data per rank,
    one copy in the page cache)."""
    X, y, w = classification_data()
    path = os.path.join(outdir, f"X{bx.distributed.rank()}.npy")
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    trainer = small_trainer(l2=1e-3, clip_grad_norm=1.0)
    history = trainer.fit(Xm, y, epochs=1, sample_weight=w, validation_data=(X[:57], y[:57]), verbose=0)
    return result(trainer, history)


@scenario
def dropout(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    trainer = small_trainer(dropout=0.3)
    return result(trainer, trainer.fit(X, y, epochs=3, verbose=0))


class FailOn(bx.Callback):
    """Raises on one rank at one epoch's end or one batch."""

    def __init__(self, rank: int, epoch: int = 0, batch: int = 0) -> None:
        super().__init__()
        self.rank, self.epoch, self.batch_no = rank, epoch, batch
        self.every = 1 if batch else 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == self.epoch and bx.distributed.rank() == self.rank:
            raise RuntimeError(f"callback failed on purpose at epoch {epoch}")

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if batch == self.batch_no and bx.distributed.rank() == self.rank:
            raise RuntimeError(f"batch callback failed on purpose at batch {batch}")


@scenario
def fail_epoch_callback(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    trainer = small_trainer()
    trainer.fit(X, y, epochs=5, verbose=0, callbacks=[FailOn(rank=1, epoch=2)])
    return result(trainer)


@scenario
def fail_batch_callback(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    trainer = small_trainer()
    trainer.fit(X, y, epochs=5, verbose=0, callbacks=[FailOn(rank=1, batch=7)])
    return result(trainer)


@scenario
def bad_data(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    if bx.distributed.rank() == 1:
        X = X + 1e-3   # e.g. a rank that generated its own random data
    trainer = small_trainer()
    trainer.fit(X, y, epochs=1, verbose=0)
    return result(trainer)


@scenario
def bad_input_on_one_rank(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    if bx.distributed.rank() == 1:
        y = y.astype(float) + 0.5   # not integer labels: fit rejects it before training
    trainer = small_trainer()
    trainer.fit(X, y, epochs=1, verbose=0)
    return result(trainer)


@scenario
def non_finite(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    net = bx.Network([bx.Dense(12, 16, activation="relu"), bx.Dense(16, 4, activation="softmax")], seed=1,
                     dtype="float32")
    trainer = bx.Trainer(net, optimizer=bx.SGD(lr=1e30), batch_size=10, seed=3, distributed=bx.MPIGroup())
    trainer.fit(X, y, epochs=3, verbose=0, warn_gradients=False)
    return result(trainer)


class InterruptOn(bx.Callback):
    """Sends SIGINT to this one process at a batch (as `kill -INT pid` would)."""

    every = 1

    def __init__(self, rank: int, batch: int) -> None:
        super().__init__()
        self.rank, self.batch_no = rank, batch

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if batch == self.batch_no and bx.distributed.rank() == self.rank:
            os.kill(os.getpid(), signal.SIGINT)


@scenario
def interrupt(outdir: str) -> dict[str, np.ndarray]:
    X, y, _ = classification_data()
    trainer = small_trainer()
    history = trainer.fit(X, y, epochs=4, verbose=0, callbacks=[InterruptOn(rank=1, batch=5)])
    out = result(trainer, history)
    out["epochs_done"] = np.asarray(trainer.epochs_done)
    return out


@scenario
def uncaught(outdir: str) -> dict[str, np.ndarray]:
    """An exception outside fit on one rank, never caught: MPI_Abort ends the run."""
    X, y, _ = classification_data()
    trainer = small_trainer()
    if bx.distributed.rank() == 1:
        raise LookupError("uncaught on purpose on rank 1")
    trainer.fit(X, y, epochs=50, verbose=0)
    return result(trainer)


@scenario
def crash(outdir: str) -> dict[str, np.ndarray]:
    """A rank that dies without a word (as when killed for lack of memory)."""

    class Die(bx.Callback):
        every = 1

        def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
            if batch == 3 and bx.distributed.rank() == 1:
                os._exit(9)

    X, y, _ = classification_data()
    trainer = small_trainer()
    trainer.fit(X, y, epochs=50, verbose=0, callbacks=[Die()])
    return result(trainer)


@scenario
def endless(outdir: str) -> dict[str, np.ndarray]:
    """Trains until stopped from outside (the test sends SIGINT to mpiexec)."""

    class Started(bx.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            if epoch == 1 and bx.distributed.rank() == 0:
                open(os.path.join(outdir, "training"), "w").close()

    X, y, _ = classification_data()
    trainer = small_trainer()
    trainer.fit(X, y, epochs=1_000_000, verbose=0, callbacks=[Started()])
    return result(trainer)


@scenario
def resume(outdir: str) -> dict[str, np.ndarray]:
    """2 epochs with a checkpoint, then a fresh trainer resumes to 4; and an
    uninterrupted 4-epoch run to compare with."""
    X, y, _ = classification_data()
    ckpt = os.path.join(outdir, "ckpt.safetensors")
    first = small_trainer(dropout=0.2)
    first.fit(X, y, epochs=2, verbose=0, validation_data=(X[:40], y[:40]),
              callbacks=[bx.ModelCheckpoint(ckpt, monitor="val_loss"), bx.ReduceLROnPlateau(patience=0)])
    resumed = small_trainer(dropout=0.2)
    history = resumed.fit(X, y, epochs=4, verbose=0, validation_data=(X[:40], y[:40]), resume_from=ckpt,
                          callbacks=[bx.ModelCheckpoint(ckpt, monitor="val_loss"),
                                     bx.ReduceLROnPlateau(patience=0)])
    whole = small_trainer(dropout=0.2)
    whole_history = whole.fit(X, y, epochs=4, verbose=0, validation_data=(X[:40], y[:40]),
                              callbacks=[bx.ModelCheckpoint(os.path.join(outdir, "other.safetensors"),
                                                            monitor="val_loss"),
                                         bx.ReduceLROnPlateau(patience=0)])
    out = result(resumed, history)
    out.update({f"whole.{k}": v for k, v in result(whole, whole_history).items()})
    return out


@scenario
def w1(outdir: str) -> dict[str, np.ndarray]:
    """Workload W1 (784-256-256-10, Adam 1e-3, batch 128, float32), 60,000
    samples: one epoch, plus 20 float64 steps of the same network."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 60_000)
    out: dict[str, np.ndarray] = {}
    for dtype, n in (("float32", 60_000), ("float64", 20 * 128)):
        net = bx.Network([bx.Dense(784, 256, activation="relu"), bx.Dense(256, 256, activation="relu"),
                          bx.Dense(256, 10, activation="softmax")], seed=0, dtype=dtype)
        trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-3), batch_size=128, seed=0,
                             distributed=bx.MPIGroup())
        history = trainer.fit(X[:n], y[:n], epochs=1, verbose=0)
        out.update({f"{dtype}.{k}": v for k, v in result(trainer, history).items()})
    return out


def main() -> int:
    name, outdir = sys.argv[1], sys.argv[2]
    bx.set_num_threads(1)   # the ranks share the machine's cores
    r = bx.distributed.rank()
    if name in UNCAUGHT:
        SCENARIOS[name](outdir)
    try:
        arrays = SCENARIOS[name](outdir)
        outcome: dict[str, Any] = {"outcome": "ok"}
    except (Exception, KeyboardInterrupt) as exc:
        arrays = {}
        outcome = {"outcome": type(exc).__name__, "message": str(exc)}
    np.savez(os.path.join(outdir, f"rank{r}.npz"), **arrays)
    with open(os.path.join(outdir, f"rank{r}.json"), "w") as f:
        json.dump(outcome, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
