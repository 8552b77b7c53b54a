"""Trainer checkpoints: everything needed to continue training bit for bit.

A checkpoint is a safetensors file holding the network parameters
("{k}.weight") and buffers ("{k}.running_mean"), the optimizer state ("optimizer.{name}"), the shuffling/dropout
generator state ("rng", 4 x uint64), and in the header metadata the network
description, optimizer kind, hyper-parameters and step count, epochs done,
the trainer settings, the History and callback states.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import bounded_json
from .history import History
from .interrupts import deferred_interrupt
from .io import atomic_write, network_metadata, read_checked, serialize

if TYPE_CHECKING:
    from .callbacks import Callback
    from .trainer import Trainer


def _callback_key(index: int, cb: Callback) -> str:
    return f"{index}:{type(cb).__name__}"


def save_checkpoint(trainer: Trainer, path: str | os.PathLike) -> None:
    atomic_write(path, checkpoint_bytes(trainer))


def checkpoint_bytes(trainer: Trainer) -> bytes:
    """The bytes of a checkpoint of `trainer` (what save_checkpoint writes)."""
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
        "history": bounded_json.dumps({"epoch": trainer.history.epoch, "history": trainer.history.history},
                                      "the training history"),
        # The limits load_checkpoint applies, applied here, so a checkpoint
        # that is written can be read back.
        "callbacks": bounded_json.dumps({_callback_key(i, cb): cb.state_dict()
                                         for i, cb in enumerate(trainer.callbacks)}, "the callbacks' state"),
    })
    return serialize(tensors, meta)


def _expect(meta: dict[str, str], key: str, want: str, what: str) -> None:
    if meta.get(key) != want:
        raise ValueError(f"checkpoint {what} is {meta.get(key)!r:.300}, but this trainer's is {want!r:.300}")


def _integer(meta: dict[str, str], key: str, what: str) -> int:
    text = meta.get(key)
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) >= 2**63:
        raise ValueError(f"checkpoint {what} is {text!r:.40}, not a non-negative 64-bit integer")
    return int(text)


def _history(text: Any) -> History:
    """The History saved in a checkpoint, checked; a ValueError names what is wrong."""
    saved = bounded_json.loads(text, "the checkpoint's history") if isinstance(text, str) else None
    epochs = saved.get("epoch") if isinstance(saved, dict) else None
    series = saved.get("history") if isinstance(saved, dict) else None
    if not isinstance(epochs, list) or not isinstance(series, dict):
        raise ValueError("checkpoint history is not {'epoch': [...], 'history': {...}}")
    if not all(type(e) is int and e >= 0 for e in epochs):
        raise ValueError("checkpoint history has epoch numbers that are not non-negative integers")
    for key, values in series.items():
        if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
            raise ValueError(f"checkpoint history of {key!r:.60} is not a list of numbers")
        if len(values) > len(epochs):
            raise ValueError(f"checkpoint history of {key!r:.60} has more values than epochs")
    history = History()
    history.epoch = list(epochs)
    history.history = {key: [float(v) for v in values] for key, values in series.items()}
    return history


def _dry_run(cb: Callback, state: Any, trainer: Trainer, key: str) -> None:
    """Load `state` into a copy of `cb`, so a state it refuses changes nothing."""
    memo = {id(trainer): trainer, id(cb.trainer): cb.trainer}  # share, never copy, the trainer
    try:
        trial = copy.deepcopy(cb, memo)
    except Exception:  # e.g. holds a lock or file: it is then loaded once, for real, first
        return
    try:
        trial.load_state_dict(state)
    except Exception as exc:
        raise ValueError(f"checkpoint state of callback {key} is not accepted: {exc!r}") from exc


def load_checkpoint(trainer: Trainer, path: str | os.PathLike, callbacks: list[Callback]) -> None:
    apply_checkpoint(trainer, *read_checked(path), callbacks, repr(os.fspath(path)))


def apply_checkpoint(trainer: Trainer, meta: dict[str, str], tensors: dict[str, np.ndarray],
                     callbacks: list[Callback], name: str) -> None:
    """Restore a parsed checkpoint (`name` says where it came from); all or nothing."""
    if meta.get("checkpoint") != "1":
        raise ValueError(f"{name} is a saved model, not a trainer checkpoint")
    net = trainer.network
    _expect(meta, "layers", network_metadata(net)["layers"], "architecture")
    _expect(meta, "dtype", net.dtype.name, "dtype")
    _expect(meta, "loss", trainer.loss, "loss")
    _expect(meta, "optimizer", trainer.optimizer.name, "optimizer")
    _expect(meta, "batch_size", str(trainer.batch_size), "batch size")
    # Everything is read and checked before anything changes.
    steps = _integer(meta, "optimizer_steps", "optimizer step count")
    epochs_done = _integer(meta, "epochs_done", "epoch count")
    try:
        lr = float(meta.get("lr", ""))
    except ValueError:
        lr = math.nan
    if not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"checkpoint learning rate is {meta.get('lr')!r:.40}, not a non-negative number")
    history = _history(meta.get("history"))
    cb_states = bounded_json.loads(meta.get("callbacks", ""), "the checkpoint's callback state")
    if not isinstance(cb_states, dict):
        raise ValueError("checkpoint callback state is not a mapping")
    rng = tensors.get("rng")
    if rng is None or rng.dtype != np.uint64 or rng.shape != (4,) or not rng.any():
        raise ValueError("checkpoint has no valid generator state")
    names = trainer.optimizer_state()[0]
    extra = sorted(k for k in tensors if k.startswith("optimizer.") and k[len("optimizer."):] not in names)
    if extra:
        raise ValueError(f"checkpoint holds optimizer state {extra} that this trainer's "
                         f"{trainer.optimizer!r} does not keep (other settings, e.g. momentum or amsgrad)")
    state = [tensors[f"optimizer.{name}"] for name in names if f"optimizer.{name}" in tensors]
    if state and len(state) != len(names) or not state and names and steps > 0:
        missing = [name for name in names if f"optimizer.{name}" not in tensors]
        raise ValueError(f"checkpoint lacks optimizer state {missing}")
    trainable = sum(int(np.prod(shape)) for k, _name, shape, _off, _l2 in net._tensors if net.layers[k].trainable)
    for name, buf in zip(names, state):
        # +inf is a state the optimizer reaches (a squared gradient beyond
        # float32) and carries on from; NaN never survives a step.
        if buf.dtype != net.dtype or buf.ndim != 1 or np.isnan(buf).any() or (buf == -np.inf).any():
            raise ValueError(f"checkpoint optimizer state {name!r} is malformed")
        if buf.size != trainable:
            raise ValueError(f"checkpoint optimizer state {name!r} covers {buf.size} parameters, but the "
                             f"trainable layers have {trainable}")
    params = {k: v for k, v in tensors.items() if not k.startswith("optimizer.") and k != "rng"}
    flat, flat_buffers = net._checked_state(params)
    loads = []
    for i, cb in enumerate(callbacks):
        key = _callback_key(i, cb)
        if cb_states.get(key):
            _dry_run(cb, cb_states[key], trainer, key)
            loads.append((cb, cb_states[key]))

    # Everything checked: now change the callbacks, then the trainer, with
    # Ctrl-C held back so that it cannot leave half a checkpoint applied.
    with deferred_interrupt():
        for cb, saved in loads:
            cb.load_state_dict(saved)
        net._core.assign_state(flat, flat_buffers)
        trainer.set_optimizer_state(state, steps)
        trainer.optimizer.lr = lr
        trainer.rng_state = [int(v) for v in rng]
        trainer.epochs_done = epochs_done
        trainer.history.epoch = history.epoch
        trainer.history.history = history.history
