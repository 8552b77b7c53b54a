"""Learning-rate schedules, applied at the end of every epoch (as callbacks).

Each follows the torch.optim.lr_scheduler formula of the same name, counted
in epochs. The learning rate used by epoch e (1-based) is the schedule's value
after e - 1 epochs.
"""

from __future__ import annotations

import math
from typing import Any

from .callbacks import Callback, Monitor


class LRSchedule(Callback):
    """Base class: ``lr_at(epochs_done)`` gives the rate for the next epoch."""

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        assert self.trainer is not None
        if not hasattr(self, "base_lr"):
            self.base_lr = self.trainer.optimizer.lr
        elif getattr(self, "_resumed", False):
            # After resume_from: the checkpoint's rate may predate this epoch's
            # schedule step (a ModelCheckpoint listed before the schedule), so
            # set the rate of the next epoch from the epochs done.
            self.trainer.optimizer.lr = self.lr_at(self.trainer.epochs_done)
        self._resumed = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.trainer is not None
        self.trainer.optimizer.lr = self.lr_at(epoch)

    def lr_at(self, epochs_done: int) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": getattr(self, "base_lr", None)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("base_lr") is not None:
            self.base_lr = float(state["base_lr"])
            self._resumed = True


class StepLR(LRSchedule):
    """lr = base_lr * gamma ** (epochs_done // step_size)."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        self.step_size, self.gamma = step_size, float(gamma)

    def lr_at(self, epochs_done: int) -> float:
        return self.base_lr * self.gamma ** (epochs_done // self.step_size)

    def __repr__(self) -> str:
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma:g})"


class ExponentialLR(LRSchedule):
    """lr = base_lr * gamma ** epochs_done."""

    def __init__(self, gamma: float) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        self.gamma = float(gamma)

    def lr_at(self, epochs_done: int) -> float:
        return self.base_lr * self.gamma ** epochs_done

    def __repr__(self) -> str:
        return f"ExponentialLR(gamma={self.gamma:g})"


class CosineAnnealingLR(LRSchedule):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi * epochs_done / T_max)) / 2
    (SGDR without restarts, Loshchilov & Hutter 2017; the closed form)."""

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__()
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        if eta_min < 0:
            raise ValueError(f"eta_min must be non-negative, got {eta_min}")
        self.T_max, self.eta_min = T_max, float(eta_min)

    def lr_at(self, epochs_done: int) -> float:
        cos = math.cos(math.pi * epochs_done / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2

    def __repr__(self) -> str:
        return f"CosineAnnealingLR(T_max={self.T_max}, eta_min={self.eta_min:g})"


class ReduceLROnPlateau(Callback):
    """Multiply the rate by `factor` when `monitor` has not improved by more
    than `min_delta` for `patience` epochs; then wait `cooldown` epochs; never
    below `min_lr` (torch's ReduceLROnPlateau with threshold_mode="abs")."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0, mode: str = "auto") -> None:
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        self.tracker = Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.cooldown, self.min_lr = float(factor), patience, cooldown, float(min_lr)
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.trainer is not None
        value = self.tracker.value(logs)
        if self.tracker.improved(value):
            self.tracker.best = value
            self.wait = 0
        else:
            self.wait += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.wait > self.patience:
            opt = self.trainer.optimizer
            new_lr = max(opt.lr * self.factor, self.min_lr)
            if new_lr < opt.lr:  # never raise the rate (a start below min_lr stays)
                opt.lr = new_lr
            self.cooldown_left = self.cooldown
            self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.tracker.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.best = float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.tracker.monitor!r}, factor={self.factor:g}, "
                f"patience={self.patience})")
