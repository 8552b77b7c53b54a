"""JSON from untrusted files, parsed with a nesting limit.

``json.loads`` recurses once per level of nesting, so a header of a million
``[`` raises RecursionError (or, in other parsers, overflows the stack). The
depth is measured first, in one vectorised pass over the text with string
literals blanked out, and deeper documents are refused with a ValueError.
Writers apply the same limit (``check_depth``), so backpropx never saves a
file it would refuse to read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

#: Deepest nesting accepted; backpropx's own metadata needs 4.
MAX_DEPTH = 64

# A string literal, written as an unrolled loop (linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def depth(text: str | bytes) -> int:
    """Maximum nesting of [ and { outside string literals."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    codes = np.frombuffer(_STRING.sub(b'""', text) if b'"' in text else text, dtype=np.uint8)
    steps = ((codes == ord("[")) | (codes == ord("{"))).astype(np.int64)
    steps -= (codes == ord("]")) | (codes == ord("}"))
    return int(np.cumsum(steps).max(initial=0))


def loads(text: str | bytes, what: str) -> Any:
    """``json.loads(text)``, or a ValueError naming `what` when the text is not
    JSON or is nested deeper than MAX_DEPTH."""
    found = depth(text)
    if found > MAX_DEPTH:
        raise ValueError(f"{what} is nested {found} levels deep; at most {MAX_DEPTH} are allowed")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def dumps(value: Any, what: str) -> str:
    """``json.dumps(value)`` checked to read back with `loads`; a ValueError
    naming `what` when it is too deep or not JSON-serialisable."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} cannot be saved as JSON: {exc}") from None
    found = depth(text)
    if found > MAX_DEPTH:
        raise ValueError(f"{what} is nested {found} levels deep; a file allows at most {MAX_DEPTH}")
    return text
