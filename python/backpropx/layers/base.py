"""The Layer base class and the registry of layer kinds.

A layer object holds its configuration until a Network is built from it;
then its parameters are NumPy views of the network's C++ buffers and its
per-sample ``input_shape``/``output_shape`` are read from the core.

Adding a layer kind: its C++ class and registry line, a subclass here with
``kind``, ``_config``, ``_from_config`` and its torch/ONNX conversions,
decorated with :func:`register`, and its entry in ``tests/reference``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import _core

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext
    from ..network import Network

ACTIVATIONS: tuple[str, ...] = tuple(_core.activation_names)
INITS: tuple[str, ...] = tuple(_core.init_names)

# Every layer kind, by the "kind" of its configuration (saved files use it).
LAYER_KINDS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: makes `cls` buildable from configs and known to exchange."""
    if cls.kind not in _core.layer_kinds:
        raise RuntimeError(f"layer kind {cls.kind!r} is not in the C++ registry")
    LAYER_KINDS[cls.kind] = cls
    return cls


def check_activation(activation: Any) -> str:
    act = "identity" if activation is None else activation
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected None or one of: "
                         + ", ".join(a for a in ACTIVATIONS if a != "identity"))
    return act


def check_weights(layer: Layer, bias: Any, init: Any) -> None:
    """Validate a weight layer's ``bias`` flag and ``init`` scheme and set
    ``use_bias``, ``init`` and ``param_names`` (weight, then bias) on it."""
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of: " + ", ".join(INITS))
    layer.use_bias = bool(bias)
    layer.init = init
    layer.param_names = ("weight", "bias") if layer.use_bias else ("weight",)


class Layer:
    """Base class of all layers.

    Subclasses describe themselves with `_config()` (a dict the C++ layer
    registry understands) and list their parameter names in `param_names`.
    """

    kind: ClassVar[str] = ""
    param_names: tuple[str, ...] = ()
    # State that is not a parameter (BatchNorm's running statistics): saved,
    # loaded and checkpointed with the parameters, never optimised.
    buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._network: Network | None = None
        self._index = -1
        self._path: tuple[int, ...] = ()
        self._prefix = ""  # "j." for layer j inside a container such as Residual
        self._trainable = True
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    # ---- description ---------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Layer:
        raise NotImplementedError

    def _copy(self) -> Layer:
        """A new, unattached layer with the same configuration."""
        return layer_from_config(self._config())

    def num_params(self) -> int:
        """Number of parameters (weights and biases)."""
        if not self.param_names:
            return 0
        if self._network is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet; its size is known "
                               "once a Network is built from it")
        return sum(self._param(name).size for name in self.param_names)

    def num_buffers(self) -> int:
        """Number of buffer values (running statistics); 0 for most layers."""
        if not self.buffer_names:
            return 0
        if self._network is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet")
        return sum(self._buffer(name).size for name in self.buffer_names)

    # ---- membership of a network -------------------------------------------------
    def _attach(self, network: Network, path: tuple[int, ...],
                shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
        """Bind to `network` at `path`: (k,) for its layer k, (k, j) for layer j
        inside container k, ...; `shapes` as the core reports them."""
        self._network = network
        self._path = path
        self._index = path[0]
        self._prefix = "".join(f"{j}." for j in path[1:])
        self._shapes = (tuple(shapes[0]), tuple(shapes[1]))
        if not self._prefix:
            network._core.set_trainable(self._index, self._trainable)

    def _param(self, name: str) -> np.ndarray:
        if self._network is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet; its parameters "
                               "exist once a Network is built from it")
        return self._network._param_view(self._index, self._prefix + name)

    def _buffer(self, name: str) -> np.ndarray:
        if self._network is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet; its buffers "
                               "exist once a Network is built from it")
        return self._network._buffer_view(self._index, self._prefix + name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape, as the core computed it (once in a Network)."""
        return self._shape(0)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Per-sample output shape, as the core computed it (once in a Network)."""
        return self._shape(1)

    def _shape(self, which: int) -> tuple[int, ...]:
        if self._shapes is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet; its shapes are "
                               "known once a Network is built from it")
        return self._shapes[which]

    @property
    def trainable(self) -> bool:
        """False freezes the layer: no gradient, no update, no optimizer state."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, got {value!r}")
        if self._prefix:
            raise ValueError("a layer inside a Residual block is frozen with its block: set trainable "
                             "on the Residual layer")
        self._trainable = bool(value)
        if self._network is not None:
            self._network._core.set_trainable(self._index, self._trainable)

    @property
    def network(self) -> Network | None:
        return self._network

    # ---- exchange (see backpropx.exchange) -----------------------------------------
    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        """The torch modules computing this layer (weights copied)."""
        raise ValueError(f"{self!r} has no PyTorch equivalent in backpropx.exchange")

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        """Append the layer(s) for torch `module` to ctx and return True, or
        return False when `module` is not of this kind."""
        return False

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        """Add this layer's nodes reading tensor `x`; return the output's name."""
        raise ValueError(f"{self!r} has no ONNX export")

    def _repr_flags(self) -> list[str]:
        return [] if self._trainable else ["trainable=False"]


def layer_from_config(cfg: dict[str, Any]) -> Layer:
    kind = cfg.get("kind")
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; expected one of: {', '.join(LAYER_KINDS)}")
    cls = LAYER_KINDS[kind]
    allowed = set(_core.layer_kinds[kind]) | {"kind"}
    extra = sorted(set(cfg) - allowed)
    if extra:
        raise ValueError(f"{kind} layer has no option {extra[0]!r}; its options are: "
                         + (", ".join(sorted(allowed - {'kind'})) or "(none)"))
    return cls._from_config(cfg)
