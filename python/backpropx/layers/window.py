"""Arguments of sliding-window layers (convolution, pooling), as PyTorch takes
them: an integer for every spatial axis or one integer per axis."""

from __future__ import annotations

from typing import Any

import numpy as np


def axes(value: Any, name: str, dims: int, minimum: int) -> tuple[int, ...]:
    """`value` as a tuple of `dims` integers >= minimum (an int applies to every axis)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values: tuple[Any, ...] = (value,) * dims
    elif isinstance(value, (tuple, list)):
        values = tuple(value)
    else:
        raise TypeError(f"{name} must be an integer or a tuple of {dims}, got {value!r}")
    if len(values) != dims:
        raise ValueError(f"{name} must be an integer or a tuple of {dims}, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must hold integers, got {value!r}")
        if v < minimum or v >= 2**31:
            raise ValueError(f"{name} must be {'positive' if minimum > 0 else 'non-negative'} "
                             f"(and below 2**31), got {value!r}")
    return tuple(int(v) for v in values)


def onnx_pads(before: tuple[int, ...], after: tuple[int, ...]) -> list[int]:
    """ONNX's pads attribute: every axis's begin padding, then every axis's end padding."""
    return [*before, *after]


def window_repr(name: str, args: list[str], defaults: dict[str, tuple[Any, Any]], flags: list[str]) -> str:
    """``name(args, key=value..., flags)`` listing only the options that differ from their default."""
    extra = [f"{key}={value!r}" for key, (value, default) in defaults.items() if value != default]
    return f"{name}({', '.join(args + extra + flags)})"
