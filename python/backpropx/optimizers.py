"""Optimizers, with torch.optim's update rules and defaults.

An optimizer object holds hyper-parameters; a Trainer builds its C++ state
over the network's flat buffers. Each validates its hyper-parameters when
created, with torch's wording (``ValueError: Invalid learning rate: -1.0``).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

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
        # Manual mode: the network this optimizer steps and the C++ state for it.
        self._network_ref: weakref.ref[Any] | None = None
        self._network_core: Any = None
        # The C++ constructor validates; build once now so errors surface here.
        self._build("float64")

    def _build(self, dtype: str) -> Any:
        """A fresh C++ optimizer (state included) for a network of `dtype`.

        Each Trainer builds its own, so one optimizer object can configure
        several trainers without them sharing state."""
        core = getattr(_core, f"Optimizer_{dtype}")(self.name, self._values)
        self._cores.add(core)
        return core

    # ---- manual mode ---------------------------------------------------------
    def step(self, network: Any) -> None:
        """One update of `network`'s trainable parameters from the gradients
        accumulated by ``network.backward`` (manual mode; ``Trainer.fit`` steps
        by itself).

        The first call binds this optimizer, and its state (moments, step
        count), to `network`; use one optimizer per network, as in torch. A
        non-finite gradient raises NonFiniteError before anything changes; an
        update that overflows is undone and the state restarted, as in fit.
        """
        from .network import Network

        if not isinstance(network, Network):
            raise TypeError(f"step expects a backpropx Network, got {type(network).__name__}")
        network._core.apply_update(self._core_for(network))

    def _core_for(self, network: Any) -> Any:
        bound = self._network_ref() if self._network_ref is not None else None
        if bound is not None and bound is not network:
            raise ValueError("this optimizer already steps another network; create one optimizer per "
                             "network (its state belongs to that network's parameters)")
        if bound is None:
            self._network_core = self._build(network.dtype.name)
            self._network_ref = weakref.ref(network)
        return self._network_core

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's kind, hyper-parameters, step count and state buffers
        (copies) of manual mode, as ``torch.optim.Optimizer.state_dict`` gives."""
        core = self._network_core
        return {"name": self.name, "hyperparameters": self.hyperparameters,
                "steps": int(core.steps) if core is not None else 0,
                "state": dict(zip(core.state_names(), core.get_state())) if core is not None else {}}

    def load_state_dict(self, state_dict: Mapping[str, Any], network: Any = None) -> None:
        """Restore what ``state_dict`` returned. The state belongs to a network:
        the one this optimizer already steps, or `network`, which it then
        steps from now on (binding without a step). Checked first: on any
        error nothing changes."""
        from .network import Network

        if network is not None and not isinstance(network, Network):
            raise TypeError(f"network must be a backpropx Network, got {type(network).__name__}")
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        if state_dict.get("name") != self.name:
            raise ValueError(f"state_dict is for optimizer {state_dict.get('name')!r}, not {self.name!r}")
        values = state_dict.get("hyperparameters")
        if not isinstance(values, Mapping) or set(values) != set(self._values):
            raise ValueError(f"state_dict's hyperparameters must have the keys {sorted(self._values)}")
        checked = {key: check_real(v, key) for key, v in values.items()}
        differ = sorted(k for k in checked if k != "lr" and checked[k] != self._values[k])
        if differ:
            raise ValueError(f"state_dict was saved with {differ[0]}={checked[differ[0]]!r}, this optimizer "
                             f"has {self._values[differ[0]]!r}; create the optimizer with the same settings")
        if checked["lr"] < 0:  # 0 is valid, as in torch
            raise ValueError(f"Invalid learning rate: {checked['lr']}")
        steps = state_dict.get("steps")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"state_dict's steps must be a non-negative integer, got {steps!r}")
        state = state_dict.get("state")
        if not isinstance(state, Mapping):
            raise ValueError("state_dict's state must be a mapping of buffers")
        bound = self._network_ref() if self._network_ref is not None else None
        if network is not None and bound is not None and bound is not network:
            raise ValueError("this optimizer already steps another network; create one optimizer per network")
        if bound is None and network is None and (state or steps):
            raise ValueError("this optimizer steps no network yet: pass the network, "
                             "opt.load_state_dict(state, network=net)")
        target = network if network is not None else bound
        fresh = bound is None and network is not None
        core = self._build(network.dtype.name) if fresh else self._network_core
        if core is not None:
            names = list(core.state_names())
            if state and set(state) != set(names):
                raise ValueError(f"state_dict's state must hold the buffers {names}")
            size = sum(int(np.prod(shape)) for k, _n, shape, _o, _l in target._tensors
                       if target.layers[k].trainable)
            buffers = []
            for name in names if state else []:
                buf = np.asarray(state[name])
                if buf.shape != (size,) or buf.dtype.kind != "f" or not np.isfinite(buf).all():
                    raise ValueError(f"state_dict's state {name!r} must be {size} finite values (one per "
                                     f"trainable parameter), got shape {buf.shape}")
                buffers.append(np.ascontiguousarray(buf, dtype=target.dtype))
            core.set_state(buffers, int(steps))
        if fresh:
            self._network_core = core
            self._network_ref = weakref.ref(network)
        self.lr = checked["lr"]

    # Pickling and copying carry the hyper-parameters only: the C++ states
    # belong to the trainers built from this object (and to the network it
    # steps in manual mode), not to the object; a copy steps no network yet.
    def __getstate__(self) -> dict[str, Any]:
        return {"_values": dict(self._values)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._values = dict(state["_values"])
        self._cores = weakref.WeakSet()
        self._network_ref = None
        self._network_core = None

    @property
    def lr(self) -> float:
        return self._values["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        value = check_real(value, "lr")
        if value < 0:  # 0 is valid, as in torch: CosineAnnealingLR reaches it
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
