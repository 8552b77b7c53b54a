"""Optimizers, with torch.optim's update rules and defaults.

An optimizer object holds hyper-parameters; a Trainer builds its C++ state
over the network's flat buffers. Each validates its hyper-parameters when
created, with torch's wording (``ValueError: Invalid learning rate: -1.0``).
"""

from __future__ import annotations

import weakref
from typing import Any

from . import _core
from ._arrays import check_real


class Optimizer:
    """Base class: a name understood by the C++ registry and its hyper-parameters."""

    name = ""

    def __init__(self, lr: float, **values: Any) -> None:
        self._values: dict[str, float] = {"lr": check_real(lr, "lr")}
        for key, value in values.items():
            self._values[key] = float(value) if isinstance(value, bool) else check_real(value, key)
        self._cores: weakref.WeakSet[Any] = weakref.WeakSet()
        # The C++ constructor validates; build once now so errors surface here.
        self._build("float64")

    def _build(self, dtype: str) -> Any:
        """A fresh C++ optimizer (state included) for a network of `dtype`.

        Each Trainer builds its own, so one optimizer object can configure
        several trainers without them sharing state."""
        core = getattr(_core, f"Optimizer_{dtype}")(self.name, self._values)
        self._cores.add(core)
        return core

    @property
    def lr(self) -> float:
        return self._values["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_real(value, "lr")
        if value <= 0:
            raise ValueError(f"Invalid learning rate: {value}")
        self._values["lr"] = value
        for core in self._cores:
            core.lr = value

    @property
    def hyperparameters(self) -> dict[str, float]:
        return dict(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in self._values.items())
        return f"{type(self).__name__}({shown})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (torch.optim.SGD).

    ``g = grad + weight_decay * p``; with momentum ``b = g`` on the first step,
    then ``b = momentum * b + (1 - dampening) * g``; ``g = g + momentum * b``
    (nesterov) or ``g = b``; ``p -= lr * g``. Sutskever et al., 2013.
    """

    name = "sgd"

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=bool(nesterov))


class Adam(Optimizer):
    """Adam (torch.optim.Adam; Kingma & Ba, 2015).

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2`` (amsgrad: running max of v),
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``;
    weight_decay adds ``wd * p`` to the gradient (L2).
    """

    name = "adam"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        b1, b2 = _betas(betas)
        super().__init__(lr, beta1=b1, beta2=b2, eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad))


class AdamW(Optimizer):
    """AdamW (torch.optim.AdamW; Loshchilov & Hutter, 2019): Adam with decoupled
    weight decay ``p *= 1 - lr * weight_decay`` before the Adam step."""

    name = "adamw"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        b1, b2 = _betas(betas)
        super().__init__(lr, beta1=b1, beta2=b2, eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad))


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop; Hinton, Coursera lecture 6e).

    ``s = alpha s + (1-alpha) g^2``; ``avg = sqrt(s - gbar^2) + eps`` (centered) or
    ``sqrt(s) + eps``; with momentum ``b = momentum b + g/avg, p -= lr b``, else
    ``p -= lr g/avg``.
    """

    name = "rmsprop"

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=bool(centered))


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad; Duchi et al., 2011).

    ``clr = lr / (1 + (t-1) lr_decay)``, ``s += g^2``, ``p -= clr g / (sqrt(s) + eps)``.
    """

    name = "adagrad"

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)


class Rprop(Optimizer):
    """Resilient backpropagation (torch.optim.Rprop; Riedmiller & Braun, 1993).

    Per element, the step grows by ``etas[1]`` while the gradient keeps its
    sign and shrinks by ``etas[0]`` when it flips (that step is skipped),
    clamped to ``step_sizes``; ``p -= sign(g) * step``.
    """

    name = "rprop"

    def __init__(self, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0)) -> None:
        eta_minus, eta_plus = _pair(etas, "etas")
        step_min, step_max = _pair(step_sizes, "step_sizes")
        super().__init__(lr, eta_minus=eta_minus, eta_plus=eta_plus, step_min=step_min, step_max=step_max)


def _pair(value: Any, name: str) -> tuple[float, float]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}") from None
    return check_real(a, f"{name}[0]"), check_real(b, f"{name}[1]")


def _betas(betas: Any) -> tuple[float, float]:
    return _pair(betas, "betas")
