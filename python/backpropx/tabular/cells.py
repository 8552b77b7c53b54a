"""Cell rules shared by the readers (see table.py): from the stripped text of a
block of cells to numbers, missing flags and, when needed, the text."""

from __future__ import annotations

import numpy as np

from .table import MISSING_MARKERS, NOT_NUMBER_CHARS, _is_number

_MARKERS = np.array(sorted(MISSING_MARKERS), dtype=object)


def convert(cells: np.ndarray, keep_text: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(numbers, missing, text or None) of a 1-d object array of stripped cells;
    the text is kept when some cell is not a number, or when `keep_text`."""
    missing = np.isin(cells, _MARKERS)
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
