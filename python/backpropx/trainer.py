"""Trainer: runs epochs of mini-batch gradient descent in the C++ core."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _core
from ._arrays import MAX_SIZE, as_features, as_lengths, as_sample_weight, as_targets, check_int, check_real, check_seed
from ._data_parallel import DataParallel, collective
from .callbacks import Callback
from .distributed import Group
from .history import History
from .interrupts import deferred_interrupt
from .labels import CLASSES_KEY, resolve_labels
from .network import Network, check_loss
from .optimizers import Adam, Optimizer
from .progress import Progress


class GradientWarning(UserWarning):
    """Gradients of a layer vanish or explode (see ``Trainer.fit``)."""


# Thresholds of the gradient health check, on per-layer gradient L2 norms
# averaged over an epoch's batches.
VANISHING_RATIO = 1e-5    # a layer's norm below this times the largest layer's
EXPLODING_NORM = 1e4      # a layer's norm above this


def _exclusive(from_callbacks: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Runs a Trainer method alone: never during another thread's fit, nor
    re-entered from fit's own callbacks unless `from_callbacks` (then it
    runs at a batch or epoch boundary, where the trainer is consistent)."""
    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(self: Trainer, *args: Any, **kwargs: Any) -> Any:
            if from_callbacks and self._busy_thread == threading.get_ident():
                return method(self, *args, **kwargs)
            if not self._busy.acquire(blocking=False):
                where = ("from one of its callbacks" if self._busy_thread == threading.get_ident()
                         else "in another thread")
                raise RuntimeError(f"Trainer.{method.__name__} cannot run while this trainer is busy "
                                   f"{where}; one Trainer runs one fit, checkpoint load or save at a time")
            self._busy_thread = threading.get_ident()
            try:
                return method(self, *args, **kwargs)
            finally:
                self._busy_thread = None
                self._busy.release()
        return guarded
    return wrap


def _outside_package() -> int:
    """The stacklevel of warnings.warn, called by our caller, that points at
    the first frame outside backpropx (fit runs inside a wrapper)."""
    level, frame = 2, sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    return level


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Trainer:
    """Trains a Network on (X, y) with a loss and an optimizer.

    Each epoch runs entirely in C++ with the GIL released: a seeded shuffle
    (xoshiro256**, so the same seed gives the same run), mini-batches of
    ``batch_size`` (the last one may be smaller), forward, loss, backward,
    optional clipping and the optimizer update. The trainer keeps the
    optimizer state and the shuffling generator, so calling ``fit`` twice
    continues training.

    Parameters
    ----------
    network: the Network to train (updated in place).
    loss: "cross_entropy" (default), "mse", "binary_cross_entropy" or "poisson"
        (see ``Network.loss_and_gradients``).
    optimizer: an Optimizer (default ``Adam()``); the trainer builds its own state.
    batch_size: samples per update.
    shuffle: reshuffle the samples every epoch.
    seed: seeds shuffling and dropout masks.
    clip_grad_value: clamp every gradient element to [-v, v] before the update.
    clip_grad_norm: then scale all gradients so their global L2 norm is at
        most this (torch.nn.utils.clip_grad_norm_).
    l2: L2 penalty on weight matrices, not biases, as scikit-learn's MLP
        ``alpha``: each batch adds ``0.5 * l2 * ||W||^2 / B`` to the loss and
        ``l2 * W / B`` to the gradient (B: the weight sum of the batch's loss
        rows -- its sample-weight sum, times T for per-step outputs (n, T, C)
        -- the denominator of the batch's mean loss). Weights are what
        the layers mark as such (ParamSpec), inside Residual blocks too. For
        decay applied by the optimizer instead, use its ``weight_decay``.
    distributed: a ``bx.MPIGroup()`` to train data-parallel on every process
        of an ``mpiexec`` launch (README, "Distributed training"): the same
        result as one process with the same global ``batch_size``.
    """

    def __init__(self, network: Network, loss: str = "cross_entropy", optimizer: Optimizer | None = None,
                 batch_size: int = 32, shuffle: bool = True, seed: int = 0, *,
                 clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
                 l2: float = 0.0, distributed: Group | None = None) -> None:
        if not isinstance(network, Network):
            raise TypeError(f"network must be a backpropx Network, got {type(network).__name__}")
        self.loss = check_loss(loss)
        if optimizer is None:
            optimizer = Adam()
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a backpropx optimizer such as bx.Adam(), got {optimizer!r}")
        self.batch_size = check_int(batch_size, "batch_size", 1, MAX_SIZE)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        self.seed = check_seed(seed)
        self.clip_grad_norm = self._clip_arg(clip_grad_norm, "clip_grad_norm")
        self.clip_grad_value = self._clip_arg(clip_grad_value, "clip_grad_value")
        self.network = network
        self.optimizer = optimizer
        dtype = network.dtype.name
        self._opt_core = optimizer._build(dtype)
        self._core = getattr(_core, f"Trainer_{dtype}")(network._core, self._opt_core, self.loss,
                                                       self.batch_size, self.shuffle, self.seed)
        self._core.set_clipping(self.clip_grad_value or 0.0, self.clip_grad_norm or 0.0)
        self.l2 = check_real(l2, "l2")
        if self.l2 < 0:
            raise ValueError(f"l2 must be non-negative, got {self.l2}")
        self._core.set_l2(self.l2)
        self.epochs_done = 0
        self.stop_training = False
        self.verbose = 0
        self.history = History()
        self._callbacks: list[Callback] = []
        self._pending_checkpoints: list[str] = []
        self._busy = threading.Lock()  # held by fit, load_checkpoint and save_checkpoint
        self._busy_thread: int | None = None
        if distributed is not None and not isinstance(distributed, Group):
            raise TypeError(f"distributed must be a backpropx Group such as bx.MPIGroup(), got {distributed!r}")
        self.distributed = distributed
        self._dp = DataParallel(self, distributed) if distributed is not None and distributed.size > 1 else None

    @staticmethod
    def _clip_arg(value: Any, name: str) -> float | None:
        if value is None:
            return None
        value = check_real(value, name)
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
        return value

    def _data(self, X: Any, y: Any, name: str = "", sample_weight: Any = None,
              classes: list[Any] | None = None, lengths: Any = None) -> tuple[np.ndarray, Any, Any, Any, Any]:
        net = self.network
        Xc = as_features(X, net.dtype, net.input_shape, name=f"{name}X")
        lens = as_lengths(lengths, Xc.shape[0], net, name=f"{name}lengths")
        y, _ = resolve_labels(y, self.loss, net.output_shape[-1], classes if classes is not None else net.classes,
                              name=f"{name}y")
        values, labels = as_targets(y, self.loss, Xc.shape[0], net.output_shape, net.dtype, name=f"{name}y",
                                    lengths=net._row_lengths(lens))
        return Xc, values, labels, as_sample_weight(sample_weight, Xc.shape[0], net.dtype), lens

    # ---- training --------------------------------------------------------
    @_exclusive(from_callbacks=False)
    @collective
    def fit(self, X: Any, y: Any, epochs: int = 1, validation_data: tuple[Any, Any] | None = None,
            verbose: int = 1, callbacks: Sequence[Callback] | None = None, validation_split: float = 0.0,
            resume_from: str | os.PathLike | None = None, warn_gradients: bool = True,
            sample_weight: Any = None, lengths: Any = None, validation_lengths: Any = None) -> History:
        """Train for `epochs` more epochs (with ``resume_from``: up to epoch `epochs`
        in all, as Keras's ``initial_epoch``); return this fit's History.

        Parameters
        ----------
        X, y: training data; targets as for ``Network.loss_and_gradients``, or
            class labels of any kind (text, numbers) for a classification
            loss: text labels give the network its ``classes`` (sorted, one
            per output), and a network that has classes reads every 1-d ``y``
            as labels from them (``Network.predict_classes`` maps back).
            X may be a scipy.sparse matrix when the first layer is Dense
            (batches gather its CSR rows; it is never densified).
        epochs: epochs to run; after ``resume_from``, the total to reach, so
            the same call continues an interrupted run to the same end.
        validation_data: (X_val, y_val), evaluated after every epoch ("val_loss",
            "val_accuracy").
        validation_split: alternatively, hold out this last fraction of (X, y)
            (taken before shuffling, as Keras does).
        verbose: 0 silent; 1 a progress bar per epoch in a terminal, else one
            line per epoch; 2 one line per epoch.
        callbacks: Callback objects (EarlyStopping, ModelCheckpoint, CSVLogger,
            learning-rate schedules, ...).
        resume_from: a checkpoint written by ``save_checkpoint`` or
            ModelCheckpoint: weights, optimizer state, epoch, RNG state and
            callback state are restored, and training continues exactly as an
            uninterrupted run would (bit for bit).
        sample_weight: per-sample weights (n,); the loss of each batch is then
            ``sum(w_i l_i) / sum(w_i)``.
        lengths: variable-length sequences: the valid steps of each sample
            along the first axis (n,), shuffled with it (see
            ``Network.predict``); padded steps influence no output, loss or
            gradient. ``validation_lengths``: the same for validation_data
            (validation_split splits ``lengths``).
        warn_gradients: warn (GradientWarning, once per fit) when a layer's
            mean gradient norm falls below 1e-5 times the largest layer's
            (vanishing) or exceeds 1e4 (exploding).

        The per-epoch History holds loss, accuracy (except for mse), the
        validation metrics, lr, time, and per layer k ``grad_norm/k`` (mean
        gradient L2 norm) and ``update_ratio/k`` (||step|| / ||weights|| of
        the epoch's last step).

        A non-finite loss or gradient raises ``NonFiniteError`` naming the
        epoch, batch and layer; the network keeps its last finite weights and
        the exception carries ``.history``. Ctrl-C stops at the next batch
        boundary with the network consistent and returns the History so far.

        One fit at a time per Trainer: calling fit (or load_checkpoint) from
        one of its callbacks or from another thread while it runs raises
        RuntimeError. Callbacks may call evaluate, save_checkpoint and the
        network's predict, evaluate, save, load_state_dict and layer
        ``trainable`` (effective from the next batch).
        """
        epochs = check_int(epochs, "epochs", 0)
        verbose = check_int(verbose, "verbose", 0)
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be backpropx Callback objects, got {cb!r}")
            check_int(cb.every, f"{type(cb).__name__}.every", 0, MAX_SIZE)
        split = check_real(validation_split, "validation_split")
        if not 0.0 <= split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {split}")
        if split > 0 and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        # Text labels give the network its classes (stored once everything is checked).
        _, classes = resolve_labels(y, self.loss, self.network.output_shape[-1], self.network.classes, learn=True)
        Xc, values, labels, weights, lens = self._data(X, y, sample_weight=sample_weight, classes=classes,
                                                       lengths=lengths)
        if self._dp is not None and not isinstance(Xc, np.ndarray):
            raise TypeError("distributed training takes dense X (the processes compare fingerprints of their "
                            "data first); train a sparse X in one process, or densify it")
        if Xc.shape[0] == 0:
            raise ValueError("X has no samples")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise TypeError("validation_data must be a pair (X_val, y_val) or a triple "
                                "(X_val, y_val, sample_weight_val)")
            val = self._data(*validation_data[:2], name="validation ", classes=classes,
                             sample_weight=validation_data[2] if len(validation_data) == 3 else None,
                             lengths=validation_lengths)
            if val[0].shape[0] == 0:
                raise ValueError("validation X has no samples")
        elif validation_lengths is not None:
            raise ValueError("validation_lengths needs validation_data")
        if split > 0:
            n_val = int(math.floor(Xc.shape[0] * split))
            if n_val < 1 or n_val >= Xc.shape[0]:
                raise ValueError(f"validation_split={split} leaves {n_val} validation samples of {Xc.shape[0]}")
            cut = Xc.shape[0] - n_val

            def head_tail(a: Any, per_sample: int = 1) -> tuple[Any, Any]:
                return (None, None) if a is None else (a[:cut * per_sample], a[cut * per_sample:])

            (Xc, Xv), (values, vv), (weights, wv), (lens, lenv) = map(head_tail, (Xc, values, weights, lens))
            labels, lv = head_tail(labels, self.network._core.rows_per_sample)  # flat: one label per row
            val = (Xv, vv, lv, wv, lenv)
        if resume_from is not None:
            from .checkpoint import load_checkpoint

            load_checkpoint(self, resume_from, callbacks)
            target = epochs
        else:
            target = self.epochs_done + epochs
        if self._dp is not None:
            self._dp.begin(Xc, values, labels, weights, val, target, callbacks, lens)
            if self._dp.rank != 0:   # one process speaks for all
                verbose, warn_gradients = 0, False

        history = self.history if resume_from is not None else History()
        progress = Progress(verbose, target)
        warned: set[str] = set()
        batches = math.ceil(Xc.shape[0] / self.batch_size)
        every = max(1, batches // 50)
        # From here on Ctrl-C returns the History so far; before, it changed nothing.
        try:
            if classes is not None and self.network.classes is None:
                self.network.metadata[CLASSES_KEY] = json.dumps(classes)
            self.verbose = verbose  # callbacks that report follow fit's verbosity
            for cb in callbacks:
                cb.set_trainer(self)
            self._callbacks = callbacks
            self._pending_checkpoints.clear()
            self.stop_training = False
            self.history = history
            for cb in callbacks:
                cb.on_train_begin({})
            while self.epochs_done < target and not self.stop_training:
                epoch = self.epochs_done + 1
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                start = time.perf_counter()
                progress.start_epoch(epoch, Xc.shape[0])
                stats = self._run_epoch(Xc, values, labels, weights, lens, epoch, every, progress, history)
                metrics = self._metrics(stats, val)
                metrics["lr"] = self.optimizer.lr
                metrics["time"] = time.perf_counter() - start
                with deferred_interrupt():  # the epoch is counted in both places or in neither
                    self.epochs_done = epoch
                    history._record(epoch, metrics)
                progress.end_epoch(epoch, metrics, stats["samples"], metrics["time"])
                if warn_gradients:
                    self._check_gradients(stats, epoch, warned)
                for cb in callbacks:
                    cb.on_epoch_end(epoch, metrics)
                if self._dp is not None:
                    self._dp.end_epoch()
                # Checkpoints requested this epoch are written after every
                # callback has updated its state, so a resume sees all of it.
                for path in self._pending_checkpoints if self._dp is None or self._dp.rank == 0 else ():
                    self.save_checkpoint(path)
                self._pending_checkpoints.clear()
        except KeyboardInterrupt:
            progress.close()  # end the bar before printing
            history.interrupted = True
            if verbose:
                print(f"interrupted during epoch {self.epochs_done + 1}; the network holds the weights "
                      "after the last completed batch", flush=True)
        finally:
            progress.close()
        try:
            for cb in callbacks:
                cb.on_train_end({})
        except KeyboardInterrupt:
            history.interrupted = True
        return history

    def _run_epoch(self, Xc: np.ndarray, values: Any, labels: Any, weights: Any, lens: Any, epoch: int,
                   every: int, progress: Progress, history: History) -> dict[str, Any]:
        batch_callbacks = [cb for cb in self._callbacks if cb.every > 0]

        def on_batches(batch: int, batches: int, samples: int, loss: float) -> None:
            progress.batch(samples, loss)
            for cb in batch_callbacks:
                if batch % cb.every == 0 or batch == batches:
                    cb.on_batch_end(batch, {"batch": batch, "batches": batches, "samples": samples,
                                            "loss": loss})

        # Each call from C++ takes the GIL: call back only when someone listens.
        wanted = progress.live or bool(batch_callbacks)
        step = every if not batch_callbacks else math.gcd(every, *(cb.every for cb in batch_callbacks))
        try:
            return self._core.train_epoch(Xc, values, labels, on_batches if wanted else None, step, weights, lens)
        except _core.NonFiniteError as exc:
            err = _core.NonFiniteError(f"training stopped in epoch {epoch}: {exc}. The network keeps its "
                                       "last finite weights; try a lower learning rate, gradient clipping "
                                       "(clip_grad_norm=) or scaling the inputs")
            err.history = history
            err.epoch = epoch
            raise err from None

    def _metrics(self, stats: dict[str, Any], val: Any) -> dict[str, Any]:
        metrics: dict[str, Any] = {"loss": stats["loss"]}
        if not math.isnan(stats["accuracy"]):
            metrics["accuracy"] = stats["accuracy"]
        if val is not None:
            evaluate = self._evaluate if self._dp is None else self._dp.evaluate
            for key, value in evaluate(*val).items():
                metrics[f"val_{key}"] = value
        for k, (norm, ratio) in enumerate(zip(stats["grad_norm"], stats["update_ratio"])):
            if not math.isnan(norm):
                metrics[f"grad_norm/{k}"] = norm
                metrics[f"update_ratio/{k}"] = ratio
        return metrics

    def _check_gradients(self, stats: dict[str, Any], epoch: int, warned: set[str]) -> None:
        norms = {k: n for k, n in enumerate(stats["grad_norm"]) if not math.isnan(n)}
        if not norms:
            return
        largest = max(norms.values())
        # stacklevel=4 names the user's line: here, fit, its _exclusive wrapper, the caller.
        for k, norm in norms.items():
            ratio = stats["update_ratio"][k]
            layer = f"layer {k} ({self.network.layers[k]!r})"
            if "explode" not in warned and norm > EXPLODING_NORM:
                warned.add("explode")
                warnings.warn(f"epoch {epoch}: gradients of {layer} are exploding (mean norm {norm:.3g}, "
                              f"update/weight ratio {ratio:.3g}). Try a lower learning rate, "
                              "clip_grad_norm=, or scaled inputs.", GradientWarning,
                              stacklevel=_outside_package())
            if "vanish" not in warned and len(norms) > 1 and largest > 0 and norm < VANISHING_RATIO * largest:
                warned.add("vanish")
                warnings.warn(f"epoch {epoch}: gradients of {layer} are vanishing (mean norm {norm:.3g}, "
                              f"{norm / largest:.2g} of the largest layer's). Try relu-like activations "
                              "with init='he', fewer layers, or a higher learning rate.",
                              GradientWarning, stacklevel=_outside_package())

    # ---- evaluation ------------------------------------------------------
    def _evaluate(self, Xc: np.ndarray, values: Any, labels: Any, weights: Any = None,
                  lens: Any = None) -> dict[str, float]:
        if Xc.shape[0] == 0:  # no data, no metric (rather than a made-up 0 or NaN)
            raise ValueError("cannot evaluate on X with no samples")
        loss, correct, rows = self.network._core.evaluate(Xc, values, labels, self.loss, weights, lens)
        out = {"loss": float(loss)}
        if not math.isnan(correct):  # losses without an accuracy (mse, poisson) count NaN
            out["accuracy"] = float(correct) / rows  # rows of padded steps not counted
        return out

    def evaluate(self, X: Any, y: Any, sample_weight: Any = None, lengths: Any = None) -> dict[str, float]:
        """Mean loss (weighted by sample_weight when given) and accuracy (except
        for mse; unweighted) of the network on (X, y); labels as for `fit`, and
        ``lengths`` too (padded steps are not counted)."""
        return self._evaluate(*self._data(X, y, sample_weight=sample_weight, lengths=lengths))

    # ---- the surface callbacks and checkpoints use --------------------------
    @property
    def callbacks(self) -> tuple[Callback, ...]:
        """The callbacks of the current (or last) fit."""
        return tuple(self._callbacks)

    def request_checkpoint(self, path: str | os.PathLike) -> None:
        """Write a checkpoint to `path` at the end of the current epoch, once
        every callback has updated its state (so a resume sees all of it)."""
        self._pending_checkpoints.append(os.fspath(path))

    # Like fit's own state, these are refused from another thread while fit
    # runs (the optimizer may be reallocating its buffers); callbacks may use them.
    @_exclusive(from_callbacks=True)
    def optimizer_state(self) -> tuple[list[str], list[np.ndarray], int]:
        """(state buffer names, copies of the buffers, step count) of the optimizer."""
        core = self._opt_core
        return list(core.state_names()), list(core.get_state()), int(core.steps)

    @_exclusive(from_callbacks=True)
    def set_optimizer_state(self, buffers: Sequence[np.ndarray], steps: int) -> None:
        """Restore buffers in ``optimizer_state()``'s order and the step count."""
        self._opt_core.set_state(list(buffers), int(steps))

    @property
    @_exclusive(from_callbacks=True)
    def rng_state(self) -> list[int]:
        """The shuffling/dropout generator's state (xoshiro256**: four 64-bit words)."""
        return list(self._core.get_rng_state())

    @rng_state.setter
    @_exclusive(from_callbacks=True)
    def rng_state(self, state: Sequence[int]) -> None:
        self._core.set_rng_state([int(v) for v in state])

    # ---- checkpoints -----------------------------------------------------
    @_exclusive(from_callbacks=True)
    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Atomically write weights, optimizer state, epoch, RNG and callback state."""
        from .checkpoint import save_checkpoint

        save_checkpoint(self, path)

    @_exclusive(from_callbacks=False)
    def load_checkpoint(self, path: str | os.PathLike, callbacks: Sequence[Callback] = ()) -> None:
        """Restore a checkpoint into this trainer (same architecture, dtype, loss,
        optimizer kind and batch size); the file is checked before anything changes."""
        from .checkpoint import load_checkpoint

        load_checkpoint(self, path, list(callbacks))

    # ---- pickling: the settings, the network and a checkpoint's bytes ----------
    @_exclusive(from_callbacks=True)
    def __getstate__(self) -> dict[str, Any]:
        from .checkpoint import checkpoint_bytes

        settings = {"loss": self.loss, "optimizer": self.optimizer, "batch_size": self.batch_size,
                    "shuffle": self.shuffle, "seed": self.seed, "clip_grad_norm": self.clip_grad_norm,
                    "clip_grad_value": self.clip_grad_value, "l2": self.l2}
        return {"network": self.network, "settings": settings, "checkpoint": checkpoint_bytes(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from .checkpoint import apply_checkpoint
        from .io import parse_checked

        self.__init__(state["network"], **state["settings"])  # type: ignore[misc]
        apply_checkpoint(self, *parse_checked(state["checkpoint"], "pickled Trainer"), [], "pickled Trainer")

    def __repr__(self) -> str:
        return (f"Trainer(loss={self.loss!r}, optimizer={self.optimizer!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epochs_done={self.epochs_done})")
