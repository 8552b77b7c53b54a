"""Check backpropagation against weight perturbation (finite differences)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._arrays import as_features, as_targets
from .network import Network, check_loss


@dataclass
class GradcheckResult:
    """Worst relative error of backprop against central differences, per tensor.

    The error of a tensor is ``max |backprop - numeric| / max(|backprop|, |numeric|)``
    with both maxima over the tensor's checked elements, so a 100% error in
    any large element shows as ~1, and tiny gradients do not inflate it.
    """

    errors: dict[str, float] = field(default_factory=dict)
    tolerance: float = 1e-6
    checked: int = 0

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return self.max_error <= self.tolerance

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}: {v:.2e}" for k, v in self.errors.items())
        verdict = "passed" if self.passed else "FAILED"
        return f"GradcheckResult({verdict}, tolerance {self.tolerance:g}, {self.checked} elements; {rows})"


def gradcheck(network: Network, X: Any, y: Any, loss: str = "cross_entropy", *, eps: float = 1e-6,
              tolerance: float = 1e-6, max_per_tensor: int | None = None, seed: int = 0) -> GradcheckResult:
    """Compare ``network.loss_and_gradients`` with central finite differences.

    Each checked weight w is perturbed to w + eps and w - eps and the loss
    re-evaluated: ``(L(w + eps) - L(w - eps)) / (2 eps)``, the "weight
    perturbation" estimate, which costs two forward passes per weight where
    backprop costs about one forward and one backward pass for all of them.

    The check runs on a float64 copy of the network (float32 differences are
    too noisy to judge); the network itself is not modified. Dropout layers are
    inactive (as in ``loss_and_gradients``). ``max_per_tensor`` checks a seeded
    random subset of each tensor's elements instead of all of them.
    """
    loss = check_loss(loss)
    net = Network(network.layers, dtype="float64")  # a copy: layers of another network are copied
    Xc = as_features(X, net.dtype, net.input_shape)
    values, labels = as_targets(y, loss, Xc.shape[0], net.output_shape, net.dtype)
    _, grads = net.loss_and_gradients(Xc, y if labels is None else labels, loss=loss)
    rng = np.random.default_rng(seed)
    result = GradcheckResult(tolerance=tolerance)

    def loss_value() -> float:
        return float(net._core.evaluate(Xc, values, labels, loss)[0])

    for name, view in net.named_parameters():
        flat = view.reshape(-1)
        idx = np.arange(flat.size)
        if max_per_tensor is not None and flat.size > max_per_tensor:
            idx = np.sort(rng.choice(flat.size, size=max_per_tensor, replace=False))
        numeric = np.empty(idx.size)
        for j, i in enumerate(idx):
            original = flat[i]
            flat[i] = original + eps
            up = loss_value()
            flat[i] = original - eps
            down = loss_value()
            flat[i] = original
            numeric[j] = (up - down) / (2 * eps)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[idx]
        scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
        result.errors[name] = float(np.abs(analytic - numeric).max(initial=0.0) / scale)
        result.checked += idx.size
    return result
