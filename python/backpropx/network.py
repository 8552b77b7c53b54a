"""Network: a stack of layers trained by backpropagation in the C++ core."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import _core
from ._arrays import as_features, as_sample_weight, as_targets, check_seed, resolve_dtype
from .layers import Layer

LOSSES: tuple[str, ...] = tuple(_core.loss_names)


def check_loss(loss: Any) -> str:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of: " + ", ".join(LOSSES))
    return loss


class Network:
    """A feed-forward network of layers, with its parameters in C++ memory.

    Parameters
    ----------
    layers:
        The layers, input side first; each layer's ``out_features`` must equal
        the next one's ``in_features``. A layer that already belongs to another
        Network is copied, weights included: the two networks then share no
        memory (use this to build a new network on top of trained layers).
    seed:
        Seeds the initial weights (xoshiro256**): the same seed gives the same
        bits on every machine and for any number of threads.
    dtype:
        "float32" (default) or "float64".

    Examples
    --------
    >>> import backpropx as bx
    >>> net = bx.Network([bx.Dense(64, 32, activation="relu"),
    ...                   bx.Dense(32, 10, activation="softmax")], seed=0)
    >>> net.predict(X).shape   # doctest: +SKIP
    (n, 10)
    """

    def __init__(self, layers: Iterable[Layer], *, seed: int = 0, dtype: Any = "float32") -> None:
        if isinstance(layers, Layer):
            raise TypeError("layers must be a list of layers, got a single layer; wrap it in a list")
        layers = list(layers)
        if not layers:
            raise ValueError("a Network needs at least one layer")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {k} is {type(layer).__name__}, not a backpropx Layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice; create separate layers")
        for k, layer in enumerate(layers):
            if getattr(layer, "in_features", None) is None:  # width-preserving layers such as Dropout
                if k == 0:
                    raise ValueError(f"the first layer ({layer!r}) cannot infer its width; give features=")
                layer._set_width(layers[k - 1].out_features)
        for k in range(1, len(layers)):
            prev, cur = layers[k - 1], layers[k]
            if getattr(prev, "out_features", None) != getattr(cur, "in_features", None):
                raise ValueError(f"layer {k - 1} ({prev!r}) outputs {prev.out_features} features but "
                                 f"layer {k} ({cur!r}) expects {cur.in_features}")
        self._seed = check_seed(seed)
        self._dtype = resolve_dtype(dtype)
        core_class = getattr(_core, f"Network_{self._dtype.name}")
        self._core = core_class([layer._config() for layer in layers], self._seed)

        # Trained layers from another network are copied, weights included.
        own: list[Layer] = []
        copied: list[tuple[int, Layer]] = []
        for k, layer in enumerate(layers):
            if layer.network is not None:
                fresh = layer._copy()
                fresh._trainable = layer.trainable
                copied.append((k, layer))
                layer = fresh
            own.append(layer)
        self._layers = own
        # (layer, name, shape, offset into the flat buffer) per parameter tensor; fixed for life.
        self._tensors: list[tuple[int, str, tuple[int, ...], int]] = [
            (k, name, tuple(shape), offset) for k, name, shape, offset in self._core.tensors()]
        self._index = {(k, name): i for i, (k, name, _s, _o) in enumerate(self._tensors)}
        for k, layer in enumerate(own):
            layer._attach(self, k)
        for k, source in copied:
            for name in source.param_names:
                self._param_view(k, name)[...] = source._param(name)

    # ---- structure -----------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers (a copy of the list; the layer objects are the network's own)."""
        return list(self._layers)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def in_features(self) -> int:
        return int(self._core.in_features)

    @property
    def out_features(self) -> int:
        return int(self._core.out_features)

    @property
    def num_params(self) -> int:
        return int(self._core.num_params)

    @property
    def seed(self) -> int:
        return self._seed

    def _param_view(self, k: int, name: str) -> np.ndarray:
        return self._core.param_view(self._index[(k, name)])

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """("{k}.{name}", view) for every parameter tensor; views share the network's memory."""
        return [(f"{k}.{name}", self._core.param_view(i))
                for i, (k, name, _s, _o) in enumerate(self._tensors)]

    def parameters(self) -> list[np.ndarray]:
        """Views of every parameter tensor, in storage order (no copies)."""
        return [p for _, p in self.named_parameters()]

    # ---- computation ---------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Forward pass: the last layer's output for every row of X, as a new array.

        Safe to call from several threads at once (the GIL is released).
        """
        return self._core.predict(as_features(X, self._dtype, self.in_features))

    __call__ = predict

    def loss_and_gradients(self, X: Any, y: Any, loss: str = "cross_entropy",
                           sample_weight: Any = None) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss over (X, y) and its gradient for every parameter (copies).

        Loss conventions follow PyTorch: "mse" is the mean over all elements;
        "cross_entropy" takes integer labels or probability rows and treats
        the network output as logits, except that a softmax last layer is
        fused (its pre-activations are the logits, gradient ``(p - y)/n``);
        "binary_cross_entropy" expects outputs in [0, 1] (sigmoid), with the
        logarithms clamped at -100 as torch does. With ``sample_weight`` the
        loss is the weighted mean ``sum(w_i l_i) / sum(w_i)``.
        """
        loss = check_loss(loss)
        Xc = as_features(X, self._dtype, self.in_features)
        if Xc.shape[0] == 0:
            raise ValueError("X has no samples")
        values, labels = as_targets(y, loss, Xc.shape[0], self.out_features, self._dtype)
        weights = as_sample_weight(sample_weight, Xc.shape[0], self._dtype)
        value = self._core.loss_and_gradients(Xc, values, labels, loss, weights)
        grads = {f"{k}.{name}": np.array(self._core.grad_view(i))
                 for i, (k, name, _s, _o) in enumerate(self._tensors)}
        return float(value), grads

    # ---- state ---------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, keyed "{k}.weight" / "{k}.bias" (k: layer index)."""
        return {name: np.array(p) for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy parameters in. Every entry is checked first (missing, extra or
        mis-shaped keys, dtype, non-finite values); on any error nothing changes."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        expected = {f"{k}.{name}": (shape, offset) for k, name, shape, offset in self._tensors}
        missing = sorted(set(expected) - set(state_dict))
        extra = sorted(set(state_dict) - set(expected))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if extra:
                parts.append(f"unexpected keys {extra}")
            raise ValueError("state_dict does not match the network: " + "; ".join(parts))
        flat = np.array(self._core.flat_params())
        for key, (shape, offset) in expected.items():
            arr = np.asarray(state_dict[key])
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"state_dict[{key!r}] must hold real numbers, got dtype {arr.dtype}")
            if arr.shape != shape:
                raise ValueError(f"state_dict[{key!r}] has shape {arr.shape}, expected {shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"state_dict[{key!r}] contains non-finite values")
            with np.errstate(over="ignore"):  # checked on the next line, with a clearer message
                cast = arr.astype(self._dtype)
            if not np.isfinite(cast).all():
                raise ValueError(f"state_dict[{key!r}] holds values too large for {self._dtype.name} "
                                 f"(largest magnitude {np.max(np.abs(arr)):g})")
            flat[offset:offset + arr.size] = cast.reshape(-1)
        self._core.assign_params(flat)

    def save(self, path: str | os.PathLike, *, extra_metadata: Mapping[str, str] | None = None) -> None:
        """Save architecture, dtype and weights to a .safetensors file, atomically.

        ``extra_metadata`` (str -> str) goes into the file's header; read it
        back with ``backpropx.io.read_extra_metadata(path)``.
        """
        from .io import save_network

        save_network(self, path, extra_metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Network:
        """Load a network written by `save`. The file is treated as untrusted."""
        from .io import load_network

        return load_network(path)

    # ---- exchange (backpropx.exchange) ------------------------------------
    @classmethod
    def from_torch(cls, module: Any, dtype: Any = None) -> Network:
        """A Network with the weights of a ``torch.nn.Sequential`` of Linear layers
        and supported activations (see ``backpropx.exchange.from_torch``)."""
        from .exchange import from_torch

        return from_torch(module, dtype=dtype)

    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential`` (weights copied, same dtype, eval mode)."""
        from .exchange import to_torch

        return to_torch(self)

    def to_onnx(self, path: str | os.PathLike, *, opset: int = 17) -> None:
        """Write the inference graph to an ONNX file, atomically (needs ``onnx``;
        see ``backpropx.exchange.to_onnx``)."""
        from .exchange import to_onnx

        to_onnx(self, path, opset=opset)

    def __repr__(self) -> str:
        inner = ",\n".join(f"  {layer!r}" for layer in self._layers)
        return f"Network([\n{inner}\n], dtype={self._dtype.name}, params={self.num_params:,})"
