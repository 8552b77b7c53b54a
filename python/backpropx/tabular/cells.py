"""Cell rules shared by the readers (see table.py): from the stripped text of a
block of cells to numbers, missing flags and, when needed, the text."""

from __future__ import annotations

import numpy as np

from .table import MISSING_MARKERS, NOT_NUMBER_CHARS, _is_number


def convert(cells: np.ndarray, keep_text: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(numbers, missing, text or None) of a 1-d object array of stripped cells;
    the text is kept when some cell is not a number, or when `keep_text`."""
    fast = _all_numbers(cells, keep_text)
    if fast is not None:
        return fast
    markers = MISSING_MARKERS   # a set lookup per cell: np.isin sorts object arrays, far slower
    missing = np.fromiter((c in markers for c in cells), dtype=bool, count=cells.shape[0])
    present = cells[~missing]
    numbers = np.full(cells.shape[0], np.nan)
    text = None
    if keep_text:
        text = cells.copy()
        text[missing] = ""
    if present.size == 0:
        return numbers, missing, text
    joined = "".join(present)
    if not NOT_NUMBER_CHARS.search(joined):
        try:
            numbers[~missing] = present.astype(np.float64)
            return numbers, missing, text
        except ValueError:
            pass
    is_number = np.fromiter((_is_number(t) for t in present), dtype=bool, count=present.size)
    values = np.full(present.size, np.nan)
    values[is_number] = present[is_number].astype(np.float64)
    numbers[~missing] = values
    text = cells.copy()
    text[missing] = ""
    return numbers, missing, text


def _all_numbers(cells: np.ndarray, keep_text: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """The common case in one C-level pass: every cell parses as a number (the
    missing markers "NaN" and "nan" do too, and are then told apart)."""
    try:
        numbers = cells.astype(np.float64)
    except ValueError:
        return None
    if NOT_NUMBER_CHARS.search("".join(cells)):
        return None
    missing = np.zeros(cells.shape[0], dtype=bool)
    nan = np.nonzero(np.isnan(numbers))[0]
    if nan.size:
        missing[nan] = [cells[i] in MISSING_MARKERS for i in nan]
    text = None
    if keep_text:
        text = cells.copy()
        text[missing] = ""
    return numbers, missing, text
