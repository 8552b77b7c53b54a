"""The CSV reader that needs nothing but Python: the csv module, with blocks of
rows converted to float64 as they come (a numeric cell then costs 8 bytes,
not a Python string)."""

from __future__ import annotations

import csv
from collections.abc import Callable

import numpy as np

from .cells import convert
from .errors import TableError
from .table import Column, Table, check_header

BLOCK_ROWS = 65536


def read(path: str, delimiter: str, on_progress: Callable[[int], None] | None = None,
         text_columns: tuple[str, ...] = ()) -> Table:
    with open(path, "rb") as raw, open(raw.fileno(), newline="", encoding="utf-8-sig", closefd=False) as f:
        reader = csv.reader(f, delimiter=delimiter, strict=False)
        header: list[str] | None = None
        names: list[str] = []
        blocks: list[list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = []
        rows: list[list[str]] = []
        n_rows = 0

        def flush() -> None:
            nonlocal rows
            if not rows:
                return
            cells = np.array(rows, dtype=object).reshape(len(rows), len(names))
            for j in range(len(names)):
                blocks[j].append(convert(cells[:, j], keep_text=names[j] in text_columns))
            rows = []
            if on_progress is not None:
                on_progress(raw.tell())

        for record in reader:
            if not record:
                continue   # empty line
            if header is None:
                header = record
                names = check_header(path, header, delimiter)
                blocks = [[] for _ in names]
                continue
            if len(record) != len(names):
                raise TableError(f"{path}, line {reader.line_num}: {len(record)} fields, but the header has "
                                 f"{len(names)}")
            rows.append([cell.strip(" \t") for cell in record])
            n_rows += 1
            if len(rows) == BLOCK_ROWS:
                flush()
        flush()
    if header is None:
        raise TableError(f"{path} is empty")
    columns = {}
    retext = [j for j, parts in enumerate(blocks) if any(p[2] is not None for p in parts)
              and any(p[2] is None for p in parts)]
    full_text = _reread_text(path, delimiter, retext) if retext else {}
    for j, name in enumerate(names):
        parts = blocks[j]
        numbers = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
        missing = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, dtype=bool)
        text = None
        if j in full_text:
            text = full_text[j]
        elif parts and parts[0][2] is not None:
            text = np.concatenate([p[2] for p in parts])
        columns[name] = Column(name, numbers, missing, text)
    return Table(path, delimiter, names, columns, n_rows, "python")


def _reread_text(path: str, delimiter: str, indices: list[int]) -> dict[int, np.ndarray]:
    """The exact text of columns that turned out to hold text only after some
    all-numeric blocks (whose text was not kept)."""
    out: dict[int, list[str]] = {j: [] for j in indices}
    with open(path, newline="", encoding="utf-8-sig") as f:
        records = (r for r in csv.reader(f, delimiter=delimiter, strict=False) if r)
        next(records)
        for record in records:
            for j in indices:
                out[j].append(record[j].strip(" \t"))
    result = {}
    for j, cells in out.items():
        arr = np.array(cells, dtype=object)
        _numbers, missing, _text = convert(arr)
        arr[missing] = ""
        result[j] = arr
    return result
