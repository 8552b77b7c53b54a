"""Normalisation: BatchNorm1D/2D (running statistics as buffers) and LayerNorm."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._arrays import check_int, check_real
from .base import Layer, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _eps(value: Any) -> float:
    eps = check_real(value, "eps")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return eps


class _BatchNorm(Layer):
    """Shared by BatchNorm1D and BatchNorm2D; see their docstrings."""

    dims: ClassVar[int] = 0
    torch_name: ClassVar[str] = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "num_features", 1)
        self.eps = _eps(eps)
        if momentum is not None:
            momentum = check_real(momentum, "momentum")
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"momentum must be in [0, 1] or None, got {momentum}")
        self.momentum = momentum
        self.affine = _flag(affine, "affine")
        self.track_running_stats = _flag(track_running_stats, "track_running_stats")
        self.param_names = ("weight", "bias") if self.affine else ()
        self.buffer_names = (("running_mean", "running_var", "num_batches_tracked")
                             if self.track_running_stats else ())

    def _config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": self.kind, "num_features": self.num_features, "eps": self.eps,
                               "affine": self.affine, "track_running_stats": self.track_running_stats}
        if self.momentum is None:
            cfg["cumulative_average"] = True
        else:
            cfg["momentum"] = self.momentum
        return cfg

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> _BatchNorm:
        momentum = None if cfg.get("cumulative_average", False) else cfg.get("momentum", 0.1)
        return cls(cfg.get("num_features"), eps=cfg.get("eps", 1e-5), momentum=momentum,
                   affine=cfg.get("affine", True), track_running_stats=cfg.get("track_running_stats", True))

    def num_params(self) -> int:
        return 2 * self.num_features if self.affine else 0

    def num_buffers(self) -> int:
        return 2 * self.num_features + 1 if self.track_running_stats else 0

    @property
    def weight(self) -> np.ndarray | None:
        return self._param("weight") if self.affine else None

    @property
    def bias(self) -> np.ndarray | None:
        return self._param("bias") if self.affine else None

    @property
    def running_mean(self) -> np.ndarray | None:
        return self._buffer("running_mean") if self.track_running_stats else None

    @property
    def running_var(self) -> np.ndarray | None:
        return self._buffer("running_var") if self.track_running_stats else None

    @property
    def num_batches_tracked(self) -> np.ndarray | None:
        """The count of training batches seen, a 0-d array of the network's dtype."""
        return self._buffer("num_batches_tracked") if self.track_running_stats else None

    # ---- exchange ----------------------------------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        bn = getattr(ctx.nn, self.torch_name)(self.num_features, eps=self.eps, momentum=self.momentum,
                                              affine=self.affine, track_running_stats=self.track_running_stats,
                                              dtype=ctx.dtype)
        if self.affine:
            ctx.copy_into(bn.weight, self.weight)
            ctx.copy_into(bn.bias, self.bias)
        if self.track_running_stats:
            ctx.copy_into(bn.running_mean, self.running_mean)
            ctx.copy_into(bn.running_var, self.running_var)
            with ctx.torch.no_grad():
                bn.num_batches_tracked.fill_(int(self.num_batches_tracked))
        return [bn]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if type(module) is not getattr(ctx.nn, cls.torch_name):
            return False
        layer = cls(module.num_features, eps=module.eps, momentum=module.momentum, affine=module.affine,
                    track_running_stats=module.track_running_stats)
        ctx.add(layer, {"weight": module.weight, "bias": module.bias, "running_mean": module.running_mean,
                        "running_var": module.running_var, "num_batches_tracked": module.num_batches_tracked})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        if not self.track_running_stats:
            raise ValueError(f"{self!r} normalises with batch statistics at inference too; the ONNX export "
                             "needs track_running_stats=True")
        c = self.num_features
        scale = self.weight if self.affine else np.ones(c)
        shift = self.bias if self.affine else np.zeros(c)
        inputs = [x, g.initializer("weight", scale), g.initializer("bias", shift),
                  g.initializer("running_mean", self.running_mean), g.initializer("running_var", self.running_var)]
        return g.node("BatchNormalization", inputs, "batch_norm", epsilon=self.eps)

    def __repr__(self) -> str:
        args = [str(self.num_features)]
        if self.eps != 1e-5:
            args.append(f"eps={self.eps:g}")
        if self.momentum != 0.1:
            args.append(f"momentum={self.momentum!r}")
        if not self.affine:
            args.append("affine=False")
        if not self.track_running_stats:
            args.append("track_running_stats=False")
        return f"{type(self).__name__}({', '.join(args + self._repr_flags())})"


_BN_DOC = """{name}: batch normalisation (Ioffe & Szegedy, 2015) over samples {layout},
as ``torch.nn.{torch}``: per channel c,
``y = (x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c]``.

In training (``fit``, ``forward(training=True)``) mean and (biased) variance
are the batch's, over samples{positions}, and the running estimates move
towards them: ``running = (1 - momentum) * running + momentum * statistic``,
with the unbiased variance for ``running_var`` (``momentum=None``: the
cumulative average, ``1 / num_batches_tracked``). A training batch needs more
than one value per channel. In evaluation (``predict``, ``evaluate``,
``loss_and_gradients``) the running estimates are used.

Parameters (``affine``): ``weight`` (C,) starting at 1, ``bias`` (C,) at 0;
they are not penalised by ``Trainer(l2=)``. Buffers
(``track_running_stats``): ``running_mean`` (0), ``running_var`` (1) and
``num_batches_tracked`` (0-d, held in the network's dtype); they are in
``state_dict()`` as ``"{{k}}.running_mean"`` etc., saved, loaded and
checkpointed, and never touched by an optimizer. Without
``track_running_stats`` the batch statistics are used in evaluation too.
"""


@register
class BatchNorm1D(_BatchNorm):
    __doc__ = _BN_DOC.format(name="BatchNorm1D", layout="(C,) or (C, L)", torch="BatchNorm1d",
                             positions=" (and positions)")
    kind = "batch_norm1d"
    dims = 1
    torch_name = "BatchNorm1d"


@register
class BatchNorm2D(_BatchNorm):
    __doc__ = _BN_DOC.format(name="BatchNorm2D", layout="(C, H, W)", torch="BatchNorm2d",
                             positions=" and positions")
    kind = "batch_norm2d"
    dims = 2
    torch_name = "BatchNorm2d"


@register
class LayerNorm(Layer):
    """Layer normalisation (Ba et al., 2016) over the trailing axes
    ``normalized_shape`` of each sample, as ``torch.nn.LayerNorm``:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, mean and (biased)
    variance over those axes. ``weight`` (starting at 1) and ``bias`` (at 0)
    have shape ``normalized_shape`` (``elementwise_affine``; ``bias=False``
    drops the bias); they are not penalised by ``Trainer(l2=)``."""

    kind = "layer_norm"

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        dims = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        try:
            dims = tuple(dims)
        except TypeError:
            raise TypeError(f"normalized_shape must be an integer or a tuple of sizes, got {normalized_shape!r}") \
                from None
        if not dims:
            raise ValueError("normalized_shape needs at least one axis")
        self.normalized_shape = tuple(check_int(d, "normalized_shape", 1) for d in dims)
        self.eps = _eps(eps)
        self.elementwise_affine = _flag(elementwise_affine, "elementwise_affine")
        self.use_bias = _flag(bias, "bias")
        names = []
        if self.elementwise_affine:
            names.append("weight")
            if self.use_bias:
                names.append("bias")
        self.param_names = tuple(names)

    def _config(self) -> dict[str, Any]:
        return {"kind": "layer_norm", "normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "bias": self.use_bias}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> LayerNorm:
        return cls(cfg.get("normalized_shape"), eps=cfg.get("eps", 1e-5),
                   elementwise_affine=cfg.get("elementwise_affine", True), bias=cfg.get("bias", True))

    def num_params(self) -> int:
        return len(self.param_names) * math.prod(self.normalized_shape)

    @property
    def weight(self) -> np.ndarray | None:
        return self._param("weight") if "weight" in self.param_names else None

    @property
    def bias(self) -> np.ndarray | None:
        return self._param("bias") if "bias" in self.param_names else None

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        ln = ctx.nn.LayerNorm(self.normalized_shape, eps=self.eps, elementwise_affine=self.elementwise_affine,
                              bias=self.use_bias, dtype=ctx.dtype)
        if self.weight is not None:
            ctx.copy_into(ln.weight, self.weight)
        if self.bias is not None:
            ctx.copy_into(ln.bias, self.bias)
        return [ln]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        if type(module) is not ctx.nn.LayerNorm:
            return False
        layer = cls(tuple(module.normalized_shape), eps=module.eps, elementwise_affine=module.elementwise_affine,
                    bias=module.bias is not None or not module.elementwise_affine)
        ctx.add(layer, {"weight": module.weight, "bias": module.bias})
        return True

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        shape = self.normalized_shape
        scale = self.weight if self.weight is not None else np.ones(shape)
        inputs = [x, g.initializer("weight", scale)]
        if self.bias is not None:
            inputs.append(g.initializer("bias", self.bias))
        return g.node("LayerNormalization", inputs, "layer_norm", axis=-len(shape), epsilon=self.eps)

    def __repr__(self) -> str:
        args = [str(self.normalized_shape)]
        if self.eps != 1e-5:
            args.append(f"eps={self.eps:g}")
        if not self.elementwise_affine:
            args.append("elementwise_affine=False")
        elif not self.use_bias:
            args.append("bias=False")
        return f"LayerNorm({', '.join(args + self._repr_flags())})"
