"""The CSV reader on pyarrow (``pip install pyarrow``): its C++ parser reads the
file in blocks as strings (so a late text cell cannot break a type guessed
from the first block), then each column is trimmed, checked for missing
markers and cast to float64 in C++. Missing and number cells follow the same
rules as the Python reader (table.py); a column with text keeps its cells."""

from __future__ import annotations

import csv
from collections.abc import Callable

import numpy as np

from .cells import convert
from .errors import TableError
from .table import MISSING_MARKERS, Column, Table, check_header, ragged_row_error

BLOCK_BYTES = 16 << 20


def available() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _raw_header(path: str, delimiter: str) -> list[str] | None:
    with open(path, newline="", encoding="utf-8-sig") as f:
        for record in csv.reader(f, delimiter=delimiter, strict=False):
            if record:
                return record
    return None


def read(path: str, delimiter: str, on_progress: Callable[[int], None] | None = None,
         text_columns: tuple[str, ...] = ()) -> Table:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    raw_header = _raw_header(path, delimiter)
    if raw_header is None:
        raise TableError(f"{path} is empty")
    names = check_header(path, raw_header, delimiter)
    read_options = pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True)
    parse_options = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=True)
    convert_options = pcsv.ConvertOptions(column_types={name: pa.string() for name in raw_header},
                                          strings_can_be_null=False, quoted_strings_can_be_null=False,
                                          null_values=[], check_utf8=True)
    batches = []
    try:
        with pa.OSFile(path) as source:
            reader = pcsv.open_csv(source, read_options=read_options, parse_options=parse_options,
                                   convert_options=convert_options)
            for batch in reader:
                batches.append(batch)
                if on_progress is not None:
                    on_progress(source.tell())
    except pa.ArrowInvalid as exc:
        message = str(exc)
        if "Expected" in message and "columns" in message:
            raise ragged_row_error(path, delimiter, len(names)) from None
        if "UTF8" in message:
            raise TableError(f"{path} is not a UTF-8 text (CSV) file") from None
        raise TableError(f"{path} is not a valid CSV file: {message}") from None
    table = pa.Table.from_batches(batches, schema=reader.schema) if batches else None
    n_rows = table.num_rows if table is not None else 0
    markers = pa.array(sorted(MISSING_MARKERS), type=pa.string())
    columns = {}
    for j, name in enumerate(names):
        if table is None:
            columns[name] = Column(name, np.empty(0), np.empty(0, dtype=bool))
            continue
        clean = None if name in text_columns else _clean_numbers(pc, pa, table.column(j))
        if clean is not None:
            columns[name] = Column(name, *clean)
            continue
        cells = pc.utf8_trim(table.column(j), characters=" \t")
        missing = pc.is_in(cells, value_set=markers)
        numbers = None if name in text_columns else _cast_numbers(pc, pa, cells, missing)
        if numbers is not None:
            columns[name] = Column(name, numbers, missing.to_numpy(zero_copy_only=False))
        else:   # some cell is not a number: the shared rules on the text
            column = Column(name, *convert(np.asarray(cells.to_pylist(), dtype=object),
                                           keep_text=name in text_columns))
            columns[name] = column
        del cells, missing
    return Table(path, delimiter, names, columns, n_rows, "pyarrow")


def _cast_numbers(pc, pa, cells, missing) -> np.ndarray | None:
    """float64 with NaN at missing cells, or None when a present cell is not a
    number. Arrow's cast already refuses what table.py calls text (underscores,
    non-ASCII digits), so no extra check is needed here."""
    try:
        values = pc.cast(pc.if_else(missing, pa.scalar(None, pa.string()), cells), pa.float64())
    except pa.ArrowInvalid:
        return None
    return values.to_numpy(zero_copy_only=False)


def _clean_numbers(pc, pa, raw) -> tuple[np.ndarray, np.ndarray] | None:
    """The common case in one pass: every cell is a number as it stands (no
    spaces, no empty cell). The markers "NaN" and "nan" cast to NaN too and
    are told apart from the numbers afterwards."""
    try:
        numbers = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    missing = np.zeros(numbers.shape[0], dtype=bool)
    nan = np.nonzero(np.isnan(numbers))[0]
    if nan.size:
        missing[nan] = [cell in MISSING_MARKERS for cell in raw.take(pa.array(nan)).to_pylist()]
    return numbers, missing
