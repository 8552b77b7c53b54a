"""What ``Trainer.fit`` does differently on N processes (see distributed.py).

The C++ trainer splits every global batch and calls ``Group.reduce_step``
once per step; this module does the rest: it checks at the start that every
process trains the same thing, broadcasts rank 0's parameters and optimizer
state, shards and reduces validation, and makes rank 0's end-of-epoch
decisions (stop, learning rate) everyone's.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ._core import __version__
from .distributed import Group, _agreed
from .io import network_metadata

if TYPE_CHECKING:
    from .trainer import Trainer

F = TypeVar("F", bound=Callable[..., Any])
FINGERPRINT_ROWS = 32   # rows of each array hashed to tell whether every process holds the same data


class DataParallel:
    """The distributed side of one Trainer on a Group of more than one process."""

    def __init__(self, trainer: Trainer, group: Group) -> None:
        self.trainer = trainer
        self.group = group
        self.rank = group.rank
        trainer._core.set_data_parallel(group.rank, group.size, group.reduce_step)

    # ---- the start of fit ------------------------------------------------
    def begin(self, Xc: np.ndarray, values: Any, labels: Any, weights: Any, val: Any, target: int,
              callbacks: list[Any], lens: Any = None) -> None:
        """Check that every process trains the same thing, then make rank 0's
        parameters and optimizer state everyone's.

        Local work that can fail happens before a status collective and is
        reported in it, never between the collectives that follow one (a
        process that left that sequence would leave the others waiting)."""
        mine, failure = None, None
        try:
            mine = self._signature(Xc, values, labels, weights, val, target, callbacks, lens)
        except Exception as exc:
            failure = exc
        self.group.agree(failure=failure)   # also stops everyone if a process failed earlier in fit
        if failure is not None:
            raise failure
        signatures = self.group.allgather(mine)
        problems = [f"{key}: rank 0 has {signatures[0][key]!r:.120}, rank {r} has {sig[key]!r:.120}"
                    for key in mine for r, sig in enumerate(signatures) if sig[key] != signatures[0][key]]
        if problems:   # every process sees the same signatures, so all raise alike
            raise _agreed(ValueError("the processes of this distributed fit disagree on "
                                     + "; ".join(problems[:4])
                                     + ". Every process must build the same network and trainer and "
                                       "pass the same data (whole, not sharded)"))
        self._broadcast_state()

    def _signature(self, Xc: np.ndarray, values: Any, labels: Any, weights: Any, val: Any, target: int,
                   callbacks: list[Any], lens: Any = None) -> dict[str, Any]:
        t = self.trainer
        return {
            "backpropx version": __version__,
            "architecture": network_metadata(t.network)["layers"],
            "dtype": t.network.dtype.name,
            "loss": t.loss,
            "optimizer": repr(t.optimizer),
            "trainer settings": (t.batch_size, t.shuffle, t.clip_grad_norm, t.clip_grad_value, t.l2),
            "seed": t.seed,
            "generator state": t.rng_state,
            "epochs done": t.epochs_done,
            "epochs to reach": target,
            "callbacks": [type(cb).__name__ for cb in callbacks],
            "training data (samples, features, targets)": _shape_of(Xc, values, labels, weights, lens),
            "training data fingerprint": _fingerprint(Xc, values, labels, weights, lens),
            "validation data (samples, features, targets)": None if val is None else _shape_of(*val),
            "validation data fingerprint": None if val is None else _fingerprint(*val),
        }

    def _broadcast_state(self) -> None:
        t, g = self.trainer, self.group
        net_core = t.network._core
        flat, flat_buffers, state, steps, failure = None, None, [], 0, None
        try:
            flat = np.array(net_core.flat_params())
            flat_buffers = np.array(net_core.flat_buffers())  # running statistics start alike too
            _names, state, steps = t.optimizer_state()
        except Exception as exc:
            failure = exc
        g.agree(failure=failure)
        if failure is not None:
            raise failure
        steps, lr, sizes = g.broadcast_object((steps, t.optimizer.lr, [b.size for b in state]))
        buffers = state
        if self.rank != 0:
            try:
                buffers = [np.empty(n, dtype=t.network.dtype) for n in sizes]
            except Exception as exc:
                failure = exc
        g.agree(failure=failure)
        if failure is not None:
            raise failure
        g.broadcast(flat)
        if flat_buffers.size:
            g.broadcast(flat_buffers)
        for buf in buffers:
            g.broadcast(buf)
        if self.rank != 0:   # after the collectives: a failure here is told at the next one
            net_core.assign_state(flat, flat_buffers)
            t.set_optimizer_state(buffers, steps)
            t.optimizer.lr = lr

    # ---- every epoch -----------------------------------------------------
    def evaluate(self, Xc: np.ndarray, values: Any, labels: Any, weights: Any = None,
                 lens: Any = None) -> dict[str, float]:
        """Validation metrics: each process evaluates its contiguous share of
        the samples; the loss sums, weight sums and correct counts are summed
        (a sample counts once per loss row, as in Trainer.evaluate; rows of
        padded steps not at all)."""
        n, size = Xc.shape[0], self.group.size
        core = self.trainer.network._core
        rows = core.rows_per_sample
        # counted loss rows per sample: all of them, or those of its valid steps
        counted = np.full(n, float(rows))
        if lens is not None and core.masks_rows:
            counted = lens * float(rows // self.trainer.network.output_shape[0])
        lo, hi = n * self.rank // size, n * (self.rank + 1) // size
        payload, failure = (0.0, 0.0, 0.0), None
        if hi > lo:
            try:
                part = [_samples(a, lo, hi, n) for a in (Xc, values, labels, weights, lens)]
                loss, correct, _ = core.evaluate(part[0], part[1], part[2], self.trainer.loss, part[3], part[4])
                mine = counted[lo:hi]
                weight = float(np.sum(mine if weights is None else mine * part[3], dtype=np.float64))
                payload = (loss * weight, weight, correct)
            except Exception as exc:   # told to the others in the status collective below
                failure = exc
        loss_sum, weight, correct = self.group.agree(payload, failure)
        if failure is not None:
            raise failure
        out = {"loss": float(loss_sum / weight) if weight > 0 else 0.0}
        if self.trainer.loss != "mse":
            out["accuracy"] = float(correct) / float(np.sum(counted)) if n else float("nan")
        return out

    def end_epoch(self) -> None:
        """Rank 0's decisions after the epoch's callbacks are everyone's (they
        agree anyway on the same metrics; this makes it a guarantee)."""
        t = self.trainer
        mine = (float(t.stop_training), t.optimizer.lr, 0.0) if self.rank == 0 else (0.0, 0.0, 0.0)
        stop, lr, _ = self.group.agree(mine)   # others add zeros: rank 0's values exactly
        t.stop_training = bool(stop)
        if lr != t.optimizer.lr:
            t.optimizer.lr = float(lr)


def collective(fit: F) -> F:
    """Runs a distributed Trainer's `fit` inside ``Group.together()`` (a
    failure on one process stops all); a plain call otherwise."""

    @functools.wraps(fit)
    def run(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        if self._dp is None:
            return fit(self, *args, **kwargs)
        with self._dp.group.together():
            return fit(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def _samples(a: Any, lo: int, hi: int, n: int) -> Any:
    """Samples [lo, hi) of an array of n samples (labels are flat: one per loss row)."""
    if a is None:
        return None
    per_sample = a.shape[0] // n
    return a[lo * per_sample:hi * per_sample]


def _shape_of(Xc: np.ndarray, values: Any, labels: Any, weights: Any, lens: Any = None) -> tuple[Any, ...]:
    return (Xc.shape, None if values is None else values.shape, None if labels is None else labels.shape,
            weights is not None, lens is not None)


def _fingerprint(*arrays: Any) -> str:
    """A hash of up to FINGERPRINT_ROWS evenly spaced rows of each array:
    cheap, and catches processes that loaded or generated different data."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"-")
            continue
        rows = np.unique(np.linspace(0, a.shape[0] - 1, min(a.shape[0], FINGERPRINT_ROWS)).astype(np.int64))
        h.update(json.dumps([a.dtype.str, a.shape]).encode())
        h.update(np.ascontiguousarray(a[rows]).tobytes())
    return h.hexdigest()
