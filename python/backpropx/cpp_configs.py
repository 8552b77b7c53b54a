"""Layer configurations written by the C++ library (backpropx/io/model_file.hpp).

The C++ LayerConfig holds integers, reals and strings, so a C++-saved file
carries a layer's boolean options as 0/1 ("bias": 1). The Python layer
classes take real booleans; this turns such a 0/1 into the bool for every
constructor parameter whose default is a bool, whatever the layer kind.
"""

from __future__ import annotations

import inspect
from typing import Any


def with_python_flags(cfg: dict[str, Any]) -> dict[str, Any]:
    from . import layers

    if isinstance(cfg.get("layers"), list):   # a container's sub-stack
        cfg = {**cfg, "layers": [with_python_flags(c) if isinstance(c, dict) else c for c in cfg["layers"]]}
    cls = getattr(layers, "LAYER_KINDS", {}).get(cfg.get("kind"))
    if cls is None:
        return cfg
    flags = {name for name, p in inspect.signature(cls.__init__).parameters.items() if isinstance(p.default, bool)}
    return {k: bool(v) if k in flags and type(v) is int and v in (0, 1) else v for k, v in cfg.items()}
