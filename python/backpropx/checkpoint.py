"""Trainer checkpoints: everything needed to continue training bit for bit.

A checkpoint is a safetensors file holding the network parameters
("{k}.weight"), the optimizer state ("optimizer.{name}"), the shuffling/dropout
generator state ("rng", 4 x uint64), and in the header metadata the network
description, optimizer kind, hyper-parameters and step count, epochs done,
the trainer settings, the History and callback states.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .io import atomic_write, network_metadata, read_checked

if TYPE_CHECKING:
    from .callbacks import Callback
    from .trainer import Trainer


def _callback_key(index: int, cb: Callback) -> str:
    return f"{index}:{type(cb).__name__}"


def save_checkpoint(trainer: Trainer, path: str | os.PathLike) -> None:
    from safetensors.numpy import save

    net = trainer.network
    tensors = net.state_dict()  # one consistent snapshot, even while another thread trains
    names, buffers, steps = trainer.optimizer_state()
    for name, buf in zip(names, buffers):
        tensors[f"optimizer.{name}"] = buf
    tensors["rng"] = np.asarray(trainer.rng_state, dtype=np.uint64)
    meta = network_metadata(net)
    meta.update({
        "checkpoint": "1",
        "loss": trainer.loss,
        "batch_size": str(trainer.batch_size),
        "shuffle": str(int(trainer.shuffle)),
        "optimizer": trainer.optimizer.name,
        "optimizer_values": json.dumps(trainer.optimizer.hyperparameters),
        "optimizer_steps": str(steps),
        "lr": repr(float(trainer.optimizer.lr)),
        "epochs_done": str(trainer.epochs_done),
        "history": json.dumps({"epoch": trainer.history.epoch, "history": trainer.history.history}),
        "callbacks": json.dumps({_callback_key(i, cb): cb.state_dict()
                                 for i, cb in enumerate(trainer.callbacks)}),
    })
    atomic_write(path, save(tensors, metadata=meta))


def _expect(meta: dict[str, str], key: str, want: str, what: str) -> None:
    if meta.get(key) != want:
        raise ValueError(f"checkpoint {what} is {meta.get(key)!r}, but this trainer's is {want!r}")


def load_checkpoint(trainer: Trainer, path: str | os.PathLike, callbacks: list[Callback]) -> None:
    meta, tensors = read_checked(path)
    if meta.get("checkpoint") != "1":
        raise ValueError(f"{os.fspath(path)!r} is a saved model, not a trainer checkpoint")
    net = trainer.network
    _expect(meta, "layers", network_metadata(net)["layers"], "architecture")
    _expect(meta, "dtype", net.dtype.name, "dtype")
    _expect(meta, "loss", trainer.loss, "loss")
    _expect(meta, "optimizer", trainer.optimizer.name, "optimizer")
    _expect(meta, "batch_size", str(trainer.batch_size), "batch size")
    try:
        steps = int(meta["optimizer_steps"])
        epochs_done = int(meta["epochs_done"])
        lr = float(meta["lr"])
        history = json.loads(meta["history"])
        cb_states = json.loads(meta["callbacks"])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"checkpoint {os.fspath(path)!r} has a damaged header: {exc}") from None
    rng = tensors.get("rng")
    if rng is None or rng.dtype != np.uint64 or rng.shape != (4,) or not rng.any():
        raise ValueError("checkpoint has no valid generator state")
    state_names = trainer.optimizer_state()[0]
    extra = sorted(k for k in tensors if k.startswith("optimizer.") and k[len("optimizer."):] not in state_names)
    if extra:
        raise ValueError(f"checkpoint holds optimizer state {extra} that this trainer's "
                         f"{trainer.optimizer!r} does not keep (other settings, e.g. momentum or amsgrad)")
    state = []
    for name in state_names:
        buf = tensors.get(f"optimizer.{name}")
        if buf is None and steps > 0:
            raise ValueError(f"checkpoint lacks optimizer state {name!r}")
        if buf is not None:
            if buf.dtype != net.dtype or buf.ndim != 1 or not np.isfinite(buf).all():
                raise ValueError(f"checkpoint optimizer state {name!r} is malformed")
            state.append(buf)
    if state and len({b.size for b in state}) != 1:
        raise ValueError("checkpoint optimizer state buffers differ in length")
    params = {k: v for k, v in tensors.items() if not k.startswith("optimizer.") and k != "rng"}

    # Everything checked: now change the trainer.
    net.load_state_dict(params)
    trainer.set_optimizer_state(state, steps)
    trainer.optimizer.lr = lr
    trainer.rng_state = [int(v) for v in rng]
    trainer.epochs_done = epochs_done
    trainer.history.epoch = [int(e) for e in history.get("epoch", [])]
    trainer.history.history = {k: [float(x) for x in v] for k, v in history.get("history", {}).items()}
    for i, cb in enumerate(callbacks):
        saved: Any = cb_states.get(_callback_key(i, cb))
        if saved:
            cb.load_state_dict(saved)
