"""argparse types of the command line: each converts the text of one option
and says what it expected when it cannot."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from ..threads import MAX_THREADS

# Sizes beyond these cannot be meant (and would only fail later, deeper down).
MAX_WIDTH = 1 << 24          # units of one hidden layer
MAX_BATCH = 1 << 31
MAX_EPOCHS = 1 << 31


def number(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: `convert` the text, then require `accept`; errors say `expected`."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
epochs = number(int, lambda v: 1 <= v <= MAX_EPOCHS, f"a positive integer up to {MAX_EPOCHS}")
batch_size = number(int, lambda v: 1 <= v <= MAX_BATCH, f"a positive integer up to {MAX_BATCH}")
threads = number(int, lambda v: 1 <= v <= MAX_THREADS, f"a number of threads from 1 to {MAX_THREADS}")
patience = number(int, lambda v: 0 <= v <= MAX_EPOCHS, "a non-negative integer")
positive_float = number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
non_negative_float = number(float, lambda v: v >= 0 and math.isfinite(v), "a non-negative number")
fraction = number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"the seed must be in [0, 2**64), got {text!r}")
    return value


def hidden(text: str) -> list[int]:
    """"128,64" -> [128, 64]; "" or "none" -> [] (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return []
    widths = []
    for part in text.split(","):
        try:
            width = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated layer widths such as 128,64, "
                                             f"got {text!r}") from None
        if not 1 <= width <= MAX_WIDTH:
            raise argparse.ArgumentTypeError(f"layer widths must be from 1 to {MAX_WIDTH:,}, got {width} "
                                             f"in {text!r}")
        widths.append(width)
    return widths


def delimiter(text: str) -> str:
    """One character; "tab" or "\\t" for a tab."""
    if text in ("tab", "\\t", "\t"):
        return "\t"
    if len(text) != 1 or text in "\"\r\n":
        raise argparse.ArgumentTypeError(f"expected one character such as ';' or 'tab', got {text!r}")
    return text


def column_list(text: str) -> list[str]:
    """"a,b" -> ["a", "b"]."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names
