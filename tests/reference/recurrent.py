"""Recurrent layers (SimpleRNN, GRU, LSTM) as plain time loops, from the
equations in torch.nn.RNN/GRU/LSTM's documentation, with backpropagation
through time written out step by step.

``x`` is (n, T, F) batch first. Parameters per direction (suffix "" and
"_reverse"): ``weight_ih`` (G*H, F), ``weight_hh`` (G*H, H), ``bias_ih``,
``bias_hh`` (G*H,), gates stacked as torch does (GRU r, z, n; LSTM i, f, g, o).

Variable lengths: step t of sample i is real when ``t < lengths[i]``. The
recurrence is written as torch's packed sequences behave:
``h_t = cell(x_t, h_{t-1})`` on real steps and ``h_t = h_{t-1}`` on padded
ones, the output ``valid * h_t`` (zero on padding). So the forward direction's
final state is its state at the last real step, and the reverse direction,
which meets the padding first, starts from zero at each sample's last real
step. Without return_sequences the output is the final states, forward |
reverse (torch's h_n).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GATES", "recurrent_backward", "recurrent_forward", "recurrent_shapes"]

GATES = {"simple_rnn": 1, "gru": 3, "lstm": 4}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _directions(layer: dict[str, Any]) -> list[str]:
    return ["", "_reverse"] if layer.get("bidirectional", False) else [""]


def recurrent_shapes(layer: dict[str, Any], shape: tuple[int, ...]) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    T, F = shape
    if F != layer["input_size"]:
        raise ValueError(f"recurrent layer with input_size={layer['input_size']} receives {shape}")
    H, G = layer["hidden_size"], GATES[layer["kind"]]
    D = len(_directions(layer))
    params: dict[str, tuple[int, ...]] = {}
    for s in _directions(layer):
        params["weight_ih" + s] = (G * H, F)
        params["weight_hh" + s] = (G * H, H)
        if layer.get("bias", True):
            params["bias_ih" + s] = (G * H,)
            params["bias_hh" + s] = (G * H,)
    out = (T, D * H) if layer.get("return_sequences", False) else (D * H,)
    return out, params


def _cell_forward(kind: str, act: str, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray,
                  c: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One step of the cell: (h', c', what backward needs)."""
    H = h.shape[1]
    gi = x @ p["w_ih"].T + p["b_ih"]  # W_i* x + b_i*
    gh = h @ p["w_hh"].T + p["b_hh"]  # W_h* h + b_h*
    if kind == "simple_rnn":
        a = gi + gh
        h_new = np.tanh(a) if act == "tanh" else np.maximum(a, 0)
        return h_new, c, {"a": a, "h_new": h_new}
    if kind == "gru":
        r = _sigmoid(gi[:, :H] + gh[:, :H])
        z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, c, {"r": r, "z": z, "n": n, "ghn": gh[:, 2 * H:]}
    a = gi + gh
    i, f = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), _sigmoid(a[:, 3 * H:])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new, {"i": i, "f": f, "g": g, "o": o, "c_new": c_new}


def _cell_backward(kind: str, act: str, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
                   s: dict[str, np.ndarray], dh_new: np.ndarray, dc_new: np.ndarray,
                   grads: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of one step given d/dh' and d/dc': adds the parameter
    gradients to ``grads`` and returns (dx, dh, dc)."""
    H = h.shape[1]
    if kind == "simple_rnn":
        # h' = f(a), a = gi + gh
        da = dh_new * ((1 - s["h_new"] ** 2) if act == "tanh" else (s["a"] > 0))
        dgi = dgh = da
        dc = c * 0
    elif kind == "gru":
        r, z, n, ghn = s["r"], s["z"], s["n"], s["ghn"]
        # h' = (1 - z) n + z h
        dn = dh_new * (1 - z)
        dz = dh_new * (h - n)
        dh_direct = dh_new * z
        # n = tanh(gi_n + r * ghn)
        dan = dn * (1 - n ** 2)
        dr = dan * ghn
        dar = dr * r * (1 - r)
        daz = dz * z * (1 - z)
        dgi = np.concatenate([dar, daz, dan], axis=1)
        dgh = np.concatenate([dar, daz, dan * r], axis=1)
        dc = c * 0
    else:
        i, f, g, o, c_new = s["i"], s["f"], s["g"], s["o"], s["c_new"]
        # h' = o tanh(c'), c' = f c + i g
        do = dh_new * np.tanh(c_new)
        dct = dc_new + dh_new * o * (1 - np.tanh(c_new) ** 2)
        di, dg, df = dct * g, dct * i, dct * c
        dc = dct * f
        dgi = dgh = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
    grads["w_ih"] += dgi.T @ x
    grads["w_hh"] += dgh.T @ h
    grads["b_ih"] += dgi.sum(axis=0)
    grads["b_hh"] += dgh.sum(axis=0)
    dh = dgh @ p["w_hh"]
    if kind == "gru":
        dh = dh + dh_direct
    return dgi @ p["w_ih"], dh, dc


def _direction_params(layer: dict[str, Any], s: str, dtype: Any) -> dict[str, np.ndarray]:
    params = layer["params"]
    w_ih = params["weight_ih" + s]
    zeros = np.zeros(w_ih.shape[0], dtype=dtype)
    return {"w_ih": w_ih, "w_hh": params["weight_hh" + s],
            "b_ih": params.get("bias_ih" + s, zeros), "b_hh": params.get("bias_hh" + s, zeros)}


def recurrent_forward(layer: dict[str, Any], x: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    """The layer's output for x (n, T, F), and the cache for backward."""
    kind, act = layer["kind"], layer.get("nonlinearity", "tanh")
    n, T, _ = x.shape
    H = layer["hidden_size"]
    lengths = np.full(n, T) if lengths is None else np.asarray(lengths)
    outs, finals, caches = [], [], []
    for d, s in enumerate(_directions(layer)):
        p = _direction_params(layer, s, x.dtype)
        h = np.zeros((n, H), dtype=x.dtype)
        c = np.zeros((n, H), dtype=x.dtype)
        ys = np.zeros((n, T, H), dtype=x.dtype)
        steps = []
        for t in (range(T) if d == 0 else reversed(range(T))):
            valid = (t < lengths)[:, None]
            h_new, c_new, st = _cell_forward(kind, act, p, x[:, t], h, c)
            steps.append((t, valid, h, c, st))
            h, c = np.where(valid, h_new, h), np.where(valid, c_new, c)
            ys[:, t] = np.where(valid, h_new, 0)
        outs.append(ys)
        finals.append(h)
        caches.append((p, steps))
    y = np.concatenate(outs, axis=2) if layer.get("return_sequences", False) else np.concatenate(finals, axis=1)
    return y, (x, lengths, caches)


def recurrent_backward(layer: dict[str, Any], cache: Any, dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(dx, {parameter name: gradient}) for dy = d loss / d output."""
    x, lengths, caches = cache
    kind, act = layer["kind"], layer.get("nonlinearity", "tanh")
    H = layer["hidden_size"]
    sequences = layer.get("return_sequences", False)
    dx = np.zeros_like(x)
    out: dict[str, np.ndarray] = {}
    for d, (s, (p, steps)) in enumerate(zip(_directions(layer), caches)):
        grads = {k: np.zeros_like(v) for k, v in p.items()}
        part = slice(d * H, (d + 1) * H)
        dh = np.zeros((x.shape[0], H), dtype=x.dtype) if sequences else dy[:, part].copy()
        dc = np.zeros_like(dh)
        for t, valid, h, c, st in reversed(steps):
            if sequences:  # output_t = valid * h_t
                dh = dh + np.where(valid, dy[:, t, part], 0)
            # h_t = valid ? cell(x_t, h_{t-1}) : h_{t-1} (and c alike)
            dh_new, dc_new = np.where(valid, dh, 0), np.where(valid, dc, 0)
            dx_t, dh_cell, dc_cell = _cell_backward(kind, act, p, x[:, t], h, c, st, dh_new, dc_new, grads)
            dx[:, t] += dx_t
            dh = np.where(valid, dh_cell, dh)
            dc = np.where(valid, dc_cell, dc)
        names = {"w_ih": "weight_ih", "w_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
        for k, g in grads.items():
            if names[k] + s in layer["params"]:
                out[names[k] + s] = g
    return dx, out
