"""Optimizers with torch.optim's update rules and defaults (torch 2.13,
single-tensor path, ``maximize=False``).

Each class has ``step(params, grads)``: ``params`` and ``grads`` are dicts
name -> ndarray; every ``params[name]`` is updated in place, and the
optimizer keeps its state per name in ``self.state[name]`` (created on a
name's first step, as torch does lazily). Arithmetic is in the parameter's
dtype. Hyper-parameters are not validated (this is a reference, not an API).

Notation: ``g`` the gradient, ``p`` the parameter, ``t`` the step count of
that parameter (1 on its first step), ``lr`` the learning rate, ``wd`` the
weight decay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "Rprop"]


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """``start + weight (end - start)`` (= ``(1 - w) start + w end``), with
    torch's ``lerp`` formula switch for ``weight >= 0.5`` so results agree
    to the last bit."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Optimizer:
    """Shared bookkeeping: per-name state, the step loop."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, Any]] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            if name not in grads or grads[name] is None:
                continue  # torch skips parameters whose .grad is None
            g = np.asarray(grads[name], dtype=p.dtype)
            state = self.state.setdefault(name, {})
            self._update(p, g, state)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "state")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum (Polyak / Sutskever et al.,
    2013, in torch's formulation).

    ``g <- g + wd p``;
    if momentum: ``b <- g`` on the first step (no dampening), else
    ``b <- mu b + (1 - dampening) g``; then ``g <- g + mu b`` (nesterov) or
    ``g <- b``; finally ``p <- p - lr g``.
    """

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__()
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov

    def _update(self, p, g, state):
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = self.momentum * buf + (1 - self.dampening) * g
            state["momentum_buffer"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), torch's formulation.

    ``g <- g + wd p`` (L2 penalty, coupled);
    ``m <- beta1 m + (1 - beta1) g``; ``v <- beta2 v + (1 - beta2) g^2``;
    amsgrad: ``vmax <- max(vmax, v)`` and use ``vmax`` for ``v`` below;
    ``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``;
    ``p <- p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)``
    (eps is added after dividing by ``sqrt(bc2)``, outside the root).
    """

    _decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__()
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad

    def _update(self, p, g, state):
        beta1, beta2 = self.betas
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if self.weight_decay != 0:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m = state["exp_avg"] = _lerp(state["exp_avg"], g, 1 - beta1)
        v = state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        if self.amsgrad:
            v = state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2017): Adam with decoupled weight decay.

    ``p <- p (1 - lr wd)`` first, then the Adam update of :class:`Adam` with
    no L2 term in ``g``. Default ``weight_decay = 1e-2``.
    """

    _decoupled = True

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton, Coursera lecture 6e), torch's formulation.

    ``g <- g + wd p``; ``v <- alpha v + (1 - alpha) g^2``;
    centered: ``gbar <- alpha gbar + (1 - alpha) g``,
    ``d = sqrt(v - gbar^2) + eps``; else ``d = sqrt(v) + eps``;
    momentum > 0: ``b <- mu b + g / d`` (b starts at 0), ``p <- p - lr b``;
    else ``p <- p - lr g / d``.
    """

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__()
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.weight_decay, self.momentum, self.centered = weight_decay, momentum, centered

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if self.centered:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        v = state["square_avg"] = self.alpha * state["square_avg"] + (1 - self.alpha) * g * g
        if self.centered:
            gbar = state["grad_avg"] = _lerp(state["grad_avg"], g, 1 - self.alpha)
            avg = np.sqrt(v - gbar * gbar) + self.eps
        else:
            avg = np.sqrt(v) + self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"] = self.momentum * state["momentum_buffer"] + g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * (g / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), torch's formulation.

    ``g <- g + wd p``; ``clr = lr / (1 + (t - 1) lr_decay)``;
    ``s <- s + g^2`` (``s`` starts at ``initial_accumulator_value``);
    ``p <- p - clr g / (sqrt(s) + eps)``.
    """

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.lr, self.lr_decay, self.weight_decay = lr, lr_decay, weight_decay
        self.initial_accumulator_value, self.eps = initial_accumulator_value, eps

    def _update(self, p, g, state):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, self.initial_accumulator_value)
        state["step"] += 1
        t = state["step"]
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        clr = self.lr / (1 + (t - 1) * self.lr_decay)
        s = state["sum"] = state["sum"] + g * g
        p -= clr * (g / (np.sqrt(s) + self.eps))


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993), torch's
    formulation (no weight backtracking).

    Per element, with ``g_prev`` the gradient remembered from the last step
    (0 at first) and step size ``delta`` (``lr`` at first):
    ``g g_prev > 0``: ``delta <- min(delta eta_plus, step_max)``;
    ``g g_prev < 0``: ``delta <- max(delta eta_minus, step_min)`` and this
    step's gradient is set to 0 (no move now, and the next step sees
    ``g_prev = 0``); ``g g_prev == 0``: ``delta`` unchanged (then still
    clamped to [step_min, step_max]).
    ``p <- p - sign(g) delta``; ``g_prev <- g`` (the zeroed one).

    torch detects the sign change by ``factor == eta_minus`` after mapping
    the sign to a factor; that is the same as ``g g_prev < 0`` whenever
    ``eta_minus`` differs from 1 and from ``eta_plus``, which is assumed here.
    """

    def __init__(self, lr: float = 1e-2, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50)) -> None:
        super().__init__()
        self.lr, self.etas, self.step_sizes = lr, tuple(etas), tuple(step_sizes)

    def _update(self, p, g, state):
        eta_minus, eta_plus = self.etas
        step_min, step_max = self.step_sizes
        if not state:
            state["step"] = 0
            state["prev"] = np.zeros_like(p)
            state["step_size"] = np.full_like(p, self.lr)
        state["step"] += 1
        prod = g * state["prev"]
        factor = np.where(prod > 0, eta_plus, np.where(prod < 0, eta_minus, 1.0)).astype(p.dtype)
        delta = state["step_size"] = np.clip(state["step_size"] * factor, step_min, step_max)
        g = np.where(prod < 0, 0, g).astype(p.dtype)
        p -= np.sign(g) * delta
        state["prev"] = g
