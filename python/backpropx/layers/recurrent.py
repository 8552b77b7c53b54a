"""Recurrent layers: SimpleRNN, GRU and LSTM, trained by backpropagation through time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._arrays import check_int
from .base import Layer, register

if TYPE_CHECKING:
    from ..exchange import OnnxGraph, TorchContext

_MODULE_CLASS: Any = None


def recurrent_module_class(torch: Any) -> Any:
    """The torch module ``to_torch`` writes for a recurrent layer: a
    ``torch.nn.RNN/GRU/LSTM`` (``batch_first=True``) returning its output
    sequence, or (``return_sequences=False``) its final states concatenated
    forward | reverse, i.e. ``torch.cat(tuple(h_n), -1)``."""
    global _MODULE_CLASS
    if _MODULE_CLASS is None:
        class Recurrent(torch.nn.Module):
            """backpropx's recurrent layer: ``rnn(x)``'s output, or its final states."""

            def __init__(self, rnn: Any, return_sequences: bool) -> None:
                super().__init__()
                self.rnn = rnn
                self.return_sequences = return_sequences

            def forward(self, x: Any) -> Any:
                out, h = self.rnn(x)
                if self.return_sequences:
                    return out
                if isinstance(h, tuple):  # LSTM: (h_n, c_n)
                    h = h[0]
                dirs = 2 if self.rnn.bidirectional else 1
                return torch.cat(tuple(h[-dirs:]), dim=-1)

            def extra_repr(self) -> str:
                return f"return_sequences={self.return_sequences}"

        _MODULE_CLASS = Recurrent
    return _MODULE_CLASS


def _torch_param_name(name: str, layer: int) -> str:
    """torch's name of parameter `name` of its layer `layer`: weight_ih_reverse -> weight_ih_l0_reverse."""
    base = name.removesuffix("_reverse")
    return f"{base}_l{layer}" + ("_reverse" if base != name else "")


def _param_property(name: str) -> property:
    def get(self: _Recurrent) -> np.ndarray | None:
        return self._param(name) if name in self.param_names else None

    return property(get, doc=f"``{name}``: a view of the network's memory (None without it)")


class _Recurrent(Layer):
    """Shared by SimpleRNN, GRU and LSTM (see their docstrings)."""

    gates: ClassVar[int] = 1
    torch_class: ClassVar[str] = ""
    onnx_op: ClassVar[str] = ""
    onnx_gate_order: ClassVar[tuple[int, ...]] = (0,)  # torch's gate blocks in ONNX's order

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, bidirectional: bool = False,
                 return_sequences: bool = False) -> None:
        super().__init__()
        self.input_size = check_int(input_size, "input_size", 1)
        self.hidden_size = check_int(hidden_size, "hidden_size", 1)
        for name, value in (("bias", bias), ("bidirectional", bidirectional), ("return_sequences", return_sequences)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        self.use_bias = bool(bias)
        self.bidirectional = bool(bidirectional)
        self.return_sequences = bool(return_sequences)
        if self.gates * self.hidden_size * (self.input_size + self.hidden_size) >= 2**60:
            raise ValueError(f"{type(self).__name__}({self.input_size}, {self.hidden_size}) is too large")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.use_bias else ("weight_ih", "weight_hh")
        self.param_names = names + (tuple(f"{n}_reverse" for n in names) if self.bidirectional else ())

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "input_size": self.input_size, "hidden_size": self.hidden_size,
                "bias": self.use_bias, "bidirectional": self.bidirectional,
                "return_sequences": self.return_sequences}

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> _Recurrent:
        return cls(cfg.get("input_size"), cfg.get("hidden_size"), bias=cfg.get("bias", True),
                   bidirectional=cfg.get("bidirectional", False),
                   return_sequences=cfg.get("return_sequences", False))

    def num_params(self) -> int:
        g, h = self.gates * self.hidden_size, self.hidden_size
        per = g * (self.input_size + h) + (2 * g if self.use_bias else 0)
        return per * self.num_directions

    def _extra_config(self) -> dict[str, Any]:
        return {}

    # ---- exchange ----------------------------------------------------------------
    def _torch_rnn(self, ctx: TorchContext) -> Any:
        cls = getattr(ctx.nn, self.torch_class)
        return cls(self.input_size, self.hidden_size, bias=self.use_bias, batch_first=True,
                   bidirectional=self.bidirectional, dtype=ctx.dtype, **self._extra_config())

    def _to_torch(self, ctx: TorchContext) -> list[Any]:
        rnn = self._torch_rnn(ctx)
        for name in self.param_names:
            ctx.copy_into(getattr(rnn, _torch_param_name(name, 0)), self._param(name))
        return [recurrent_module_class(ctx.torch)(rnn, self.return_sequences)]

    @classmethod
    def _from_torch(cls, module: Any, ctx: TorchContext) -> bool:
        wrapper = recurrent_module_class(ctx.torch)
        if isinstance(module, wrapper):
            rnn, sequences = module.rnn, module.return_sequences
        else:
            rnn, sequences = module, True  # a bare RNN module: its output sequence
        if type(rnn) is not getattr(ctx.nn, cls.torch_class):
            return False
        if not rnn.batch_first:
            raise ValueError(f"{ctx.where(module)} is not supported: backpropx's recurrent layers take "
                             "(n, T, F) batch-first input; build it with batch_first=True")
        if getattr(rnn, "proj_size", 0):
            raise ValueError(f"{ctx.where(module)} is not supported: LSTM with proj_size")
        dirs = 2 if rnn.bidirectional else 1
        from .dropout import Dropout

        for k in range(rnn.num_layers):
            last = k == rnn.num_layers - 1
            layer = cls(rnn.input_size if k == 0 else dirs * rnn.hidden_size, rnn.hidden_size, bias=rnn.bias,
                        bidirectional=rnn.bidirectional, return_sequences=sequences or not last,
                        **cls._torch_options(rnn))
            params = {name: getattr(rnn, _torch_param_name(name, k)) for name in layer.param_names}
            ctx.add(layer, params)
            if not last and rnn.dropout > 0:  # torch drops the outputs of every layer but the last
                ctx.add(Dropout(rnn.dropout), {})
        return True

    @classmethod
    def _torch_options(cls, rnn: Any) -> dict[str, Any]:
        return {}

    def _onnx_weights(self, suffix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """W, R, B of one direction in ONNX's gate order."""
        H = self.hidden_size

        def reorder(a: np.ndarray) -> np.ndarray:
            return np.concatenate([a[k * H:(k + 1) * H] for k in self.onnx_gate_order])

        W = reorder(self._param("weight_ih" + suffix))
        R = reorder(self._param("weight_hh" + suffix))
        B = None
        if self.use_bias:
            B = np.concatenate([reorder(self._param("bias_ih" + suffix)), reorder(self._param("bias_hh" + suffix))])
        return W, R, B

    def _onnx_attributes(self) -> dict[str, Any]:
        return {}

    def _to_onnx(self, g: OnnxGraph, x: str) -> str:
        dirs = [""] + (["_reverse"] if self.bidirectional else [])
        parts = [self._onnx_weights(s) for s in dirs]
        W = g.initializer("W", np.stack([p[0] for p in parts]))
        R = g.initializer("R", np.stack([p[1] for p in parts]))
        B = g.initializer("B", np.stack([p[2] for p in parts])) if self.use_bias else ""
        xt = g.node("Transpose", [x], "time_major", perm=[1, 0, 2])  # (T, n, F): ONNX's layout 0
        y, y_h = g.multi_node(self.onnx_op, [xt, W, R, B], ["Y", "Y_h"], hidden_size=self.hidden_size,
                              direction="bidirectional" if self.bidirectional else "forward",
                              **self._onnx_attributes())
        if self.return_sequences:  # Y (T, D, n, H) -> (n, T, D*H)
            y = g.node("Transpose", [y], "batch_first", perm=[2, 0, 1, 3])
            shape = g.initializer("shape", np.array([0, 0, -1], dtype=np.int64), raw=True)
        else:  # Y_h (D, n, H) -> (n, D*H)
            y = g.node("Transpose", [y_h], "batch_first", perm=[1, 0, 2])
            shape = g.initializer("shape", np.array([0, -1], dtype=np.int64), raw=True)
        return g.node("Reshape", [y, shape], "concat_directions")

    def __repr__(self) -> str:
        args = [str(self.input_size), str(self.hidden_size)] + self._repr_extra()
        if not self.use_bias:
            args.append("bias=False")
        if self.bidirectional:
            args.append("bidirectional=True")
        if self.return_sequences:
            args.append("return_sequences=True")
        return f"{type(self).__name__}({', '.join(args + self._repr_flags())})"

    def _repr_extra(self) -> list[str]:
        return []


for _name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
    setattr(_Recurrent, _name, _param_property(_name))
    setattr(_Recurrent, f"{_name}_reverse", _param_property(f"{_name}_reverse"))


_SHAPES_DOC = """
    Input ``(n, T, input_size)`` (batch first, as torch's ``batch_first=True``);
    output ``(n, T, D * hidden_size)`` with ``return_sequences=True``, else
    ``(n, D * hidden_size)``: the final states, ``D = 2`` directions
    concatenated forward | reverse when ``bidirectional``. The reverse
    direction's final state is its state after reading the whole sequence
    backwards (at t = 0): torch's ``h_n``, Keras' ``Bidirectional(...,
    return_sequences=False)``. It is not torch's ``output[:, -1]``, whose
    reverse half has seen one step only. The initial state is zero.

    Variable-length sequences: give ``lengths`` (n,) to fit, predict, forward,
    evaluate or loss_and_gradients. Steps ``t >= lengths[i]`` of sample i are
    padding and influence nothing: the reverse direction starts at each
    sample's last valid step, outputs at padded steps are zero (torch's
    ``pad_packed_sequence``), the final state is taken at the last valid
    step, and per-step losses leave the padded steps out of their mean.

    Parameters (views of the network's memory), torch's names and shapes,
    gates stacked in torch's order: ``weight_ih`` ``(G*H, input_size)``,
    ``weight_hh`` ``(G*H, H)``, ``bias_ih``, ``bias_hh`` ``(G*H,)``, and with
    ``bidirectional`` the same with the suffix ``_reverse``; keys
    ``"{k}.weight_ih"`` ... in ``state_dict``. All start as
    ``U(-1/sqrt(H), 1/sqrt(H))``, torch's default.

    Backpropagation through time runs in C++: the input projection of all
    steps is one matrix product, each step one recurrent product; results are
    bit-identical for any number of threads.
"""


@register
class SimpleRNN(_Recurrent):
    __doc__ = """Elman RNN, as ``torch.nn.RNN``: ``h' = f(W_ih x + b_ih + W_hh h + b_hh)``,
    ``f`` = tanh (default) or relu (``nonlinearity``). G = 1.
    """ + _SHAPES_DOC

    kind = "simple_rnn"
    torch_class = "RNN"
    onnx_op = "RNN"

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", bias: bool = True,
                 bidirectional: bool = False, return_sequences: bool = False) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias=bias, bidirectional=bidirectional,
                         return_sequences=return_sequences)
        self.nonlinearity = nonlinearity

    def _config(self) -> dict[str, Any]:
        return dict(super()._config(), nonlinearity=self.nonlinearity)

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> SimpleRNN:
        return cls(cfg.get("input_size"), cfg.get("hidden_size"), nonlinearity=cfg.get("nonlinearity", "tanh"),
                   bias=cfg.get("bias", True), bidirectional=cfg.get("bidirectional", False),
                   return_sequences=cfg.get("return_sequences", False))

    def _extra_config(self) -> dict[str, Any]:
        return {"nonlinearity": self.nonlinearity}

    @classmethod
    def _torch_options(cls, rnn: Any) -> dict[str, Any]:
        return {"nonlinearity": rnn.nonlinearity}

    def _onnx_attributes(self) -> dict[str, Any]:
        return {"activations": [self.nonlinearity.capitalize()] * self.num_directions}

    def _repr_extra(self) -> list[str]:
        return [] if self.nonlinearity == "tanh" else [f"nonlinearity={self.nonlinearity!r}"]


@register
class GRU(_Recurrent):
    __doc__ = """Gated recurrent unit, PyTorch's variant (the reset gate applied after
    the recurrent product), as ``torch.nn.GRU``; gates r, z, n (G = 3)::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h
    """ + _SHAPES_DOC

    kind = "gru"
    gates = 3
    torch_class = "GRU"
    onnx_op = "GRU"
    onnx_gate_order = (1, 0, 2)  # ONNX: z, r, h

    def _onnx_attributes(self) -> dict[str, Any]:
        return {"linear_before_reset": 1}  # torch's variant


@register
class LSTM(_Recurrent):
    __doc__ = """Long short-term memory, as ``torch.nn.LSTM``; gates i, f, g, o (G = 4)::

        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)    f = sigmoid(... f ...)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)       o = sigmoid(... o ...)
        c' = f * c + i * g,   h' = o * tanh(c')

    The cell state starts at zero; the output is h (``return_sequences=False``:
    the final h, as torch's ``h_n``).
    """ + _SHAPES_DOC

    kind = "lstm"
    gates = 4
    torch_class = "LSTM"
    onnx_op = "LSTM"
    onnx_gate_order = (0, 3, 1, 2)  # ONNX: i, o, f, c
