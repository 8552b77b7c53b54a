"""Network: a stack of layers trained by backpropagation in the C++ core."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from . import _core
from ._arrays import as_features, as_lengths, as_sample_weight, as_targets, check_seed, resolve_dtype
from ._sparse import is_sparse
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
        The layers, input side first; each receives the previous one's
        output shape (the core checks that they fit). A layer that already
        belongs to another Network is copied, weights included: the two
        networks then share no memory (use this to build a new network on
        top of trained layers).
    input_shape:
        The per-sample shape of X (``X`` is ``(n, *input_shape)``), e.g.
        ``(1, 28, 28)``. Optional when the first layer implies it, as
        ``Dense(in_features, ...)`` does (``(in_features,)``).
    seed:
        Seeds the initial weights (xoshiro256**) and manual-mode dropout: the
        same seed gives the same bits on every machine and for any number of
        threads.
    dtype:
        "float32" (default) or "float64".

    Examples
    --------
    >>> import backpropx as bx
    >>> net = bx.Network([bx.Dense(64, 32, activation="relu"),
    ...                   bx.Dense(32, 10, activation="softmax")], seed=0)
    >>> net.predict(X).shape   # doctest: +SKIP
    (n, 10)

    Manual mode (GANs, VAEs, policy gradients): ``out = net.forward(X,
    training=True)``, ``dX = net.backward(dY)`` (parameter gradients
    accumulate), ``opt.step(net)``, ``net.zero_grad()``.
    """

    def __init__(self, layers: Iterable[Layer], *, input_shape: Any = None, seed: int = 0,
                 dtype: Any = "float32") -> None:
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
        shape = self._check_input_shape(input_shape)
        self._seed = check_seed(seed)
        self._dtype = resolve_dtype(dtype)
        # Saved with the weights (see `metadata`); set by Network.load and Trainer.fit.
        self.metadata: dict[str, str] = {}
        core_class = getattr(_core, f"Network_{self._dtype.name}")
        # Nothing is changed on the given layers until the core has accepted them.
        self._core = core_class([layer._config() for layer in layers], shape, self._seed)

        # Trained layers from another network are copied, weights included.
        own: list[Layer] = []
        copied: list[tuple[int, Layer]] = []
        for k, layer in enumerate(layers):
            if _attached_anywhere(layer):
                fresh = layer._copy()
                fresh._trainable = layer.trainable
                copied.append((k, layer))
                layer = fresh
            own.append(layer)
        self._layers = own
        # (layer, name, shape, offset into the flat buffer, L2 applies) per parameter tensor; fixed for life.
        self._tensors: list[tuple[int, str, tuple[int, ...], int, bool]] = [
            (k, name, tuple(shape), offset, bool(l2)) for k, name, shape, offset, l2 in self._core.tensors()]
        self._index = {(k, name): i for i, (k, name, _s, _o, _l) in enumerate(self._tensors)}
        # (layer, name, shape, offset) per buffer tensor (running statistics); fixed for life.
        self._buffers: list[tuple[int, str, tuple[int, ...], int]] = [
            (k, name, tuple(shape), offset) for k, name, shape, offset in self._core.buffer_tensors()]
        self._buffer_index = {(k, name): i for i, (k, name, _s, _o) in enumerate(self._buffers)}
        for k, (layer, shapes) in enumerate(zip(own, self._core.layer_shapes([]))):
            layer._attach(self, (k,), shapes)
        for k, source in copied:
            for name, value in _parameters_of(source):
                self._param_view(k, name)[...] = value
            for name, value in _buffers_of(source):
                self._buffer_view(k, name)[...] = value

    @staticmethod
    def _check_input_shape(input_shape: Any) -> list[int] | None:
        if input_shape is None:
            return None
        if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
            input_shape = (input_shape,)
        try:
            dims = tuple(input_shape)
        except TypeError:
            raise TypeError(f"input_shape must be a tuple of sizes, got {input_shape!r}") from None
        if not dims:
            raise ValueError("input_shape must have at least one axis")
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
                raise ValueError(f"input_shape sizes must be positive integers, got {input_shape!r}")
        if int(np.prod([float(d) for d in dims])) >= 2**48:
            raise ValueError(f"input_shape {dims} is too large")
        return [int(d) for d in dims]

    # ---- structure -----------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers (a copy of the list; the layer objects are the network's own)."""
        return list(self._layers)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape: X is ``(n, *input_shape)``."""
        return tuple(self._core.input_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Per-sample output shape: ``predict(X)`` is ``(n, *output_shape)``."""
        return tuple(self._core.output_shape)

    @property
    def in_features(self) -> int:
        """Values per input sample (the product of input_shape)."""
        return int(self._core.in_features)

    @property
    def out_features(self) -> int:
        """Values per output sample (the product of output_shape)."""
        return int(self._core.out_features)

    @property
    def num_params(self) -> int:
        return int(self._core.num_params)

    @property
    def seed(self) -> int:
        return self._seed

    # ---- metadata (backpropx.labels) -----------------------------------------
    # ``metadata`` (str -> str) is stored in the model file's header by `save`
    # and restored by `load`: the command line records "task", "classes",
    # "feature_names" and "target" there, and Trainer.fit records "classes"
    # when it is given text labels.
    @property
    def classes(self) -> list[Any] | None:
        """The class label of each output (a list), or None when the network has none."""
        from .labels import classes_from_metadata

        return classes_from_metadata(self.metadata)

    @property
    def feature_names(self) -> list[str] | None:
        """The names of the input features (from a CLI-trained model), or None."""
        from .labels import feature_names_from_metadata

        return feature_names_from_metadata(self.metadata)

    def _param_view(self, k: int, name: str) -> np.ndarray:
        return self._core.param_view(self._index[(k, name)])

    def _buffer_view(self, k: int, name: str) -> np.ndarray:
        return self._core.buffer_view(self._buffer_index[(k, name)])

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        """("{k}.{name}", view) for every buffer (BatchNorm's running_mean,
        running_var, num_batches_tracked): state that is saved and loaded with
        the parameters but never optimised. Views share the network's memory."""
        return [(f"{t[0]}.{t[1]}", self._core.buffer_view(i)) for i, t in enumerate(self._buffers)]

    def named_parameters(self) -> list[tuple[str, np.ndarray]]:
        """("{k}.{name}", view) for every parameter tensor; views share the network's memory."""
        return [(f"{t[0]}.{t[1]}", self._core.param_view(i)) for i, t in enumerate(self._tensors)]

    def parameters(self) -> list[np.ndarray]:
        """Views of every parameter tensor, in storage order (no copies)."""
        return [p for _, p in self.named_parameters()]

    def named_gradients(self) -> list[tuple[str, np.ndarray]]:
        """("{k}.{name}", view) of every parameter's accumulated gradient (views:
        they change with the next backward, zero_grad or fit)."""
        return [(f"{t[0]}.{t[1]}", self._core.grad_view(i)) for i, t in enumerate(self._tensors)]

    # ---- computation ---------------------------------------------------
    def predict(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Forward pass in inference mode: the output for every sample of X
        ``(n, *input_shape)``, as a new ``(n, *output_shape)`` array.

        X may be a scipy.sparse matrix when the first layer is a Dense layer
        over 1-d samples (CSR is read as is, other formats are converted to
        CSR): its product is then sparse x dense in C++, never densified.
        ``lengths`` (n,): for variable-length sequences, the number of valid
        steps of each sample along the first axis (``(n, T, F)`` sequences,
        ``(n, T)`` token ids); later steps are padding and never influence the
        result (see the recurrent layers). Safe to call from several threads
        at once (the GIL is released).
        """
        Xc = as_features(X, self._dtype, self.input_shape)
        return self._core.predict(Xc, as_lengths(lengths, Xc.shape[0], self))

    __call__ = predict

    def forward(self, X: Any, training: bool = False, lengths: Any = None) -> np.ndarray:
        """Forward pass that keeps what ``backward`` needs (manual mode).

        ``training=True`` runs dropout (masks from the network's seeded
        generator) and allows one ``backward`` for this forward; with
        ``training=False`` it equals ``predict``. ``lengths`` as for
        ``predict`` (the backward uses the same). Returns a new array
        ``(n, *output_shape)``.
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, got {training!r}")
        if is_sparse(X):
            raise TypeError("forward (manual mode) takes dense X, since backward returns dL/dX; sparse X "
                            "works with predict, loss_and_gradients, Trainer.fit and bx.fit_lbfgs")
        Xc = as_features(X, self._dtype, self.input_shape)
        return self._core.forward(Xc, bool(training), as_lengths(lengths, Xc.shape[0], self))

    def backward(self, dY: Any) -> np.ndarray:
        """Backprop ``dY = dL/d(output)`` ``(n, *output_shape)`` through the last
        ``forward(X, training=True)``: adds every trainable parameter's gradient
        to ``named_gradients()`` (+=, as torch's ``.grad``) and returns
        ``dL/dX`` ``(n, *input_shape)``. Frozen layers get no gradient but pass
        it on. Call ``zero_grad()`` between steps."""
        arr = as_features(dY, self._dtype, self.output_shape, name="dY", source="the network outputs")
        return self._core.backward(arr)

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero."""
        self._core.zero_grad()

    def predict_classes(self, X: Any) -> np.ndarray:
        """The predicted class of every row: the label in `classes` (or the index,
        without classes) of the largest output (last axis); with a single
        output (sigmoid + binary cross-entropy), class 1 where it exceeds 0.5."""
        out = self.predict(X)
        picks = out.argmax(axis=-1) if out.shape[-1] > 1 else (out[..., 0] > 0.5).astype(np.int64)
        classes = self.classes
        return picks if classes is None else np.asarray(classes)[picks]

    def loss_and_gradients(self, X: Any, y: Any, loss: str = "cross_entropy",
                           sample_weight: Any = None, lengths: Any = None) -> tuple[float, dict[str, np.ndarray]]:
        """Mean loss over (X, y) and its gradient for every parameter (copies).

        Loss conventions follow PyTorch: losses act on the last axis of the
        output, so an output ``(n, T, C)`` has ``n*T`` rows of C values; "mse"
        is the mean over all elements; "cross_entropy" takes integer labels
        (``(n,)``, or ``(n, T)`` per time step) or probability rows and treats
        the network output as logits, except that a final softmax is fused
        (its input is the logits, gradient ``(p sum(y) - y)/rows``: probability
        rows in [0, 1] need not sum to 1, and the gradient is the true one of
        ``-sum(y log p)``, as torch's);
        "binary_cross_entropy" expects outputs in [0, 1] (sigmoid), with the
        logarithms clamped at -100 as torch does; "poisson" treats the output
        x as a log-rate (``mu = exp(x)``, targets >= 0) and is half the
        Poisson deviance, ``mean(exp(x) - y x + y log y - y)``: the gradient
        of ``torch.nn.PoissonNLLLoss(log_input=True)`` (whose value lacks
        the constant ``y log y - y``) and the loss of scikit-learn's
        ``MLPRegressor(loss="poisson")``. With ``sample_weight`` (one per
        sample) the loss is the weighted mean ``sum(w_i l_i) / sum(w_i)``
        over rows. X may be sparse (see ``predict``). With ``lengths`` (see
        ``predict``) and an output that keeps the steps (``(n, T, C)`` per-step
        outputs), the rows of padded steps are left out of the mean (their
        labels are ignored). Replaces any
        accumulated gradients.
        """
        loss = check_loss(loss)
        Xc = as_features(X, self._dtype, self.input_shape)
        if Xc.shape[0] == 0:
            raise ValueError("X has no samples")
        lens = as_lengths(lengths, Xc.shape[0], self)
        values, labels = as_targets(y, loss, Xc.shape[0], self.output_shape, self._dtype,
                                    lengths=self._row_lengths(lens))
        weights = as_sample_weight(sample_weight, Xc.shape[0], self._dtype)
        value, flat = self._core.loss_and_gradients(Xc, values, labels, loss, weights, lens)
        return float(value), self._split(flat)

    def _split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """A flat parameter-sized array as {"{k}.{name}": tensor} (views of `flat`)."""
        return {f"{k}.{name}": flat[offset:offset + int(np.prod(shape))].reshape(shape)
                for k, name, shape, offset, _l2 in self._tensors}

    def _row_lengths(self, lengths: np.ndarray | None) -> np.ndarray | None:
        """The lengths when losses mask the rows of padded steps, else None."""
        return lengths if lengths is not None and self._core.masks_rows else None

    # ---- state ---------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed "{k}.weight", "{k}.bias",
        "{k}.running_mean", ... (k: layer index), layer by layer as torch orders
        them, taken together under the network's lock: consistent even while
        another thread trains it (named_parameters' views are not)."""
        params, buffers = self._core.state_copy()
        entries = [(t[0], 0, name, v) for t, (name, v) in zip(self._tensors, self._split(params).items())]
        entries += [(t[0], 1, f"{t[0]}.{t[1]}", buffers[t[3]:t[3] + int(np.prod(t[2]))].reshape(t[2]))
                    for t in self._buffers]
        return {name: v for _k, _kind, name, v in sorted(entries, key=lambda e: (e[0], e[1]))}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy parameters and buffers in. Every entry is checked first (missing,
        extra or mis-shaped keys, dtype, non-finite values); on any error nothing changes."""
        self._core.assign_state(*self._checked_state(state_dict))

    def _checked_state(self, state_dict: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The flat parameter and buffer vectors `state_dict` describes, checked; changes nothing."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        expected = {f"{k}.{name}": (shape, offset, False) for k, name, shape, offset, _l2 in self._tensors}
        expected.update({f"{k}.{name}": (shape, offset, True) for k, name, shape, offset in self._buffers})
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
        flat_buffers = np.array(self._core.flat_buffers())
        for key, (shape, offset, is_buffer) in expected.items():
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
            (flat_buffers if is_buffer else flat)[offset:offset + arr.size] = cast.reshape(-1)
        return flat, flat_buffers

    def save(self, path: str | os.PathLike, *, extra_metadata: Mapping[str, str] | None = None) -> None:
        """Save architecture, dtype and weights to a .safetensors file, atomically.

        The network's ``metadata`` (str -> str: class labels, feature names)
        and ``extra_metadata`` (added to it, winning on equal keys) go into the
        file's header; ``Network.load(path).metadata`` gives them back, as does
        ``backpropx.io.read_extra_metadata(path)`` without loading the weights.
        """
        from .io import save_network

        save_network(self, path, extra_metadata)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        """Pickle (and copy.deepcopy) as the bytes `save` writes: architecture,
        dtype, seed, trainable flags and weights; unpickling checks them as
        `load` does."""
        from .io import network_from_bytes, network_to_bytes

        return network_from_bytes, (network_to_bytes(self),)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Network:
        """Load a network written by `save` (or `backpropx train`), with its
        ``metadata``. The file is treated as untrusted."""
        from .io import load_network

        return load_network(path)

    # ---- exchange (backpropx.exchange) ------------------------------------
    @classmethod
    def from_torch(cls, module: Any, dtype: Any = None, input_shape: Any = None) -> Network:
        """A Network with the architecture and weights of a ``torch.nn.Sequential``
        (see ``backpropx.exchange.from_torch``)."""
        from .exchange import from_torch

        return from_torch(module, dtype=dtype, input_shape=input_shape)

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
        return (f"Network([\n{inner}\n], input_shape={self.input_shape}, dtype={self._dtype.name}, "
                f"params={self.num_params:,})")


def _attached_anywhere(layer: Layer) -> bool:
    """True when the layer, or a layer inside it, belongs to a network."""
    return layer.network is not None or any(_attached_anywhere(c) for c in getattr(layer, "_layers", ()))


def _buffers_of(layer: Layer) -> list[tuple[str, np.ndarray]]:
    """(name within the layer, values) of the buffers, as _parameters_of does for parameters."""
    if layer.network is not None:
        return [(name, layer._buffer(name)) for name in layer.buffer_names]
    out = []
    for j, child in enumerate(getattr(layer, "_layers", ())):
        out.extend((f"{j}.{name}", value) for name, value in _buffers_of(child))
    return out


def _parameters_of(layer: Layer) -> list[tuple[str, np.ndarray]]:
    """(name within the layer, values) of an attached layer or of the attached
    layers inside a container; unattached inner layers keep their fresh init."""
    if layer.network is not None:
        return [(name, layer._param(name)) for name in layer.param_names]
    out = []
    for j, child in enumerate(getattr(layer, "_layers", ())):
        out.extend((f"{j}.{name}", value) for name, value in _parameters_of(child))
    return out
