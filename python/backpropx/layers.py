"""Layers: descriptions that a Network turns into C++ layers.

A layer object belongs to at most one Network. Before that it only holds its
configuration; once the Network is built, `weight` and `bias` are NumPy views
of the network's C++ parameter buffer (no copy: writing to them changes the
network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._arrays import check_int

if TYPE_CHECKING:
    from .network import Network

ACTIVATIONS: tuple[str, ...] = tuple(_core.activation_names)
INITS: tuple[str, ...] = tuple(_core.init_names)


class Layer:
    """Base class of all layers.

    Subclasses describe themselves with `_config()` (a dict the C++ layer
    registry understands) and list their parameter names in `param_names`.
    """

    param_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._network: Network | None = None
        self._index = -1
        self._trainable = True

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def num_params(self) -> int:
        """Number of parameters (weights and biases)."""
        return 0

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Layer:
        raise NotImplementedError

    def _copy(self) -> Layer:
        """A new, unattached layer with the same configuration."""
        return type(self)._from_config(self._config())

    def _attach(self, network: Network, index: int) -> None:
        self._network = network
        self._index = index
        network._core.set_trainable(index, self._trainable)

    def _param(self, name: str) -> np.ndarray:
        if self._network is None:
            raise RuntimeError(f"{type(self).__name__} is not part of a Network yet; its parameters "
                               "exist once a Network is built from it")
        return self._network._param_view(self._index, name)

    @property
    def trainable(self) -> bool:
        """False freezes the layer: no gradient, no update, no optimizer state."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, got {value!r}")
        self._trainable = bool(value)
        if self._network is not None:
            self._network._core.set_trainable(self._index, self._trainable)

    @property
    def network(self) -> Network | None:
        return self._network


class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ weight.T + bias)``.

    Parameters
    ----------
    in_features, out_features:
        Sizes of each input and output sample.
    activation:
        None (identity), "sigmoid", "tanh", "relu", "leaky_relu" (slope 0.01),
        "elu" (alpha 1), "gelu" (exact erf form) or "softmax" (row-wise; on the
        last layer, fused with the cross_entropy loss).
    bias:
        Whether the layer adds a bias vector.
    init:
        Weight initialisation. "default" is "he" for relu, leaky_relu, elu and
        gelu and "xavier" otherwise. Choices:

        - "he": N(0, 2/in) (He et al. 2015)
        - "xavier" / "glorot": U(-a, a), a = sqrt(6/(in+out)) (Glorot & Bengio 2010)
        - "lecun": N(0, 1/in)
        - "uniform": U(-1/sqrt(in), 1/sqrt(in)) for weight and bias (torch.nn.Linear's default)
        - "normal": N(0, 0.01^2)
        - "zeros"

        Biases start at zero except with "uniform". Values come from the
        Network's seed (xoshiro256**), identical on every machine.

    Attributes
    ----------
    weight: ndarray (out_features, in_features), a view of the network's memory.
    bias: ndarray (out_features,) or None, a view of the network's memory.
    """

    def __init__(self, in_features: int, out_features: int, activation: str | None = None, *,
                 bias: bool = True, init: str = "default") -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        act = "identity" if activation is None else activation
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected None or one of: "
                             + ", ".join(a for a in ACTIVATIONS if a != "identity"))
        self.activation = act
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.use_bias = bool(bias)
        if not isinstance(init, str) or init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of: " + ", ".join(INITS))
        self.init = init
        self.param_names = ("weight", "bias") if self.use_bias else ("weight",)

    def _config(self) -> dict[str, Any]:
        return {"kind": "dense", "in_features": self.in_features, "out_features": self.out_features,
                "bias": self.use_bias, "activation": self.activation, "init": self.init}

    def num_params(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.use_bias else 0)

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Dense:
        act = cfg.get("activation")
        return cls(cfg.get("in_features"), cfg.get("out_features"), None if act == "identity" else act,
                   bias=cfg.get("bias", True), init=cfg.get("init", "default"))

    @property
    def weight(self) -> np.ndarray:
        return self._param("weight")

    @property
    def bias(self) -> np.ndarray | None:
        return self._param("bias") if self.use_bias else None

    def __repr__(self) -> str:
        args = [str(self.in_features), str(self.out_features)]
        if self.activation != "identity":
            args.append(f"activation={self.activation!r}")
        if not self.use_bias:
            args.append("bias=False")
        if self.init != "default":
            args.append(f"init={self.init!r}")
        if not self._trainable:
            args.append("trainable=False")
        return f"Dense({', '.join(args)})"


class Dropout(Layer):
    """Inverted dropout (Srivastava et al., 2014).

    In training, each element is zeroed with probability ``p`` and the rest
    are scaled by ``1 / (1 - p)``; in inference (predict, evaluate) the layer
    is the identity. The masks come from the Trainer's seeded generator, so
    a run is reproducible and independent of the thread count.

    The width is taken from the previous layer; give ``features`` when
    Dropout is the first layer.
    """

    def __init__(self, p: float = 0.5, *, features: int | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout probability p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.in_features = self.out_features = None if features is None else check_int(features, "features", 1)

    def _set_width(self, width: int) -> None:
        if self.in_features is not None and self.in_features != width:
            raise ValueError(f"Dropout(features={self.in_features}) follows a layer with {width} outputs")
        self.in_features = self.out_features = width

    def _config(self) -> dict[str, Any]:
        return {"kind": "dropout", "features": self.in_features, "p": self.p}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> Dropout:
        return cls(cfg.get("p"), features=cfg.get("features"))

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"


# Every layer kind, by the "kind" of its configuration (saved files use it).
LAYER_KINDS: dict[str, type[Layer]] = {"dense": Dense, "dropout": Dropout}


def layer_from_config(cfg: dict[str, Any]) -> Layer:
    kind = cfg.get("kind")
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown layer kind {kind!r}; expected one of: {', '.join(LAYER_KINDS)}")
    return LAYER_KINDS[kind]._from_config(cfg)
