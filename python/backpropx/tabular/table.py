"""What a CSV reader returns: the header and one Column per header name.

Every reader follows the same rules, so a file gives the same table whatever
reader is installed:
- cells are stripped of surrounding spaces and tabs;
- a cell is *missing* when it is empty or one of `MISSING_MARKERS` (pandas'
  usual markers, without "None", which is often a real category, plus the
  "?" of the UCI data sets);
- a cell is a *number* when it is a decimal number with ASCII digits
  (``12``, ``-3.5e2``, ``.5``) or an infinity/NaN spelling; underscores
  (``1_000``) and other scripts' digits are text;
- empty lines are skipped; a row of empty cells is a row of missing values.

A column keeps its text only when some non-missing cell is not a number:
numeric columns are stored as float64 alone, which keeps large files small.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import TableError

MISSING_MARKERS: frozenset[str] = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "#N/A", "?"})

# Characters that may appear in a number cell; what the float parsers of
# NumPy and Python accept beyond them (underscores, non-ASCII digits) is text.
NOT_NUMBER_CHARS = re.compile(r"[^0-9+\-.eEinfatyINFATY]")


@dataclass
class Column:
    """One column: `numbers` (float64, NaN where missing or not a number),
    `missing` (bool), and, when some non-missing cell is not a number (or the
    reader was asked to keep it), `text` (the stripped cells, as an object
    array; missing cells hold "")."""

    name: str
    numbers: np.ndarray
    missing: np.ndarray
    text: np.ndarray | None = None

    def number_cells(self) -> np.ndarray:
        """True where a non-missing cell holds a number."""
        if self.text is None:
            return ~self.missing
        return ~self.missing & np.array([_is_number(t) for t in self.text], dtype=bool)


@dataclass
class Table:
    path: str
    delimiter: str
    header: list[str]
    columns: dict[str, Column]
    n_rows: int
    reader: str
    _lines: dict[int, int] = field(default_factory=dict, repr=False)

    def line_of(self, row: int) -> int:
        """The file's line number (from 1) where data row `row` (from 0) starts.

        Found by re-reading the file with the csv module, only on the error
        paths that name a line, so readers need not track lines.
        """
        if row not in self._lines:
            self._lines[row] = _find_line(self.path, self.delimiter, row)
        return self._lines[row]


def _is_number(text: str) -> bool:
    if NOT_NUMBER_CHARS.search(text):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _find_line(path: str, delimiter: str, row: int) -> int:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        seen_header = False
        data_row = -1
        start = 1
        for record in reader:
            if not record:
                start = reader.line_num + 1
                continue
            if not seen_header:
                seen_header = True
            else:
                data_row += 1
                if data_row == row:
                    return start
            start = reader.line_num + 1
    return start


def check_header(path: str, header: list[str], delimiter: str) -> list[str]:
    """Stripped column names, or TableError for a header that cannot be one."""
    names = [name.strip() for name in header]
    if len(names) == 1:
        for sep, flag in ((";", ";"), ("\t", "tab"), ("|", "|")):
            if sep in names[0] and sep != delimiter:
                raise TableError(f"{path}: the header is one column, {names[0][:60]!r}, which contains {flag!r}: "
                                 f"the file seems to be separated by {flag!r}, not {delimiter_name(delimiter)!r}; "
                                 f"pass --delimiter '{flag}'")
    if all(_is_number(name) for name in names):
        raise TableError(f"{path}: the first line looks like data ({', '.join(names[:4])}...); "
                         "CSV files need a header row of column names")
    if any(not name for name in names):
        raise TableError(f"{path}: column {names.index('') + 1} of the header has no name")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TableError(f"{path}: column name {name!r} appears twice in the header")
        seen.add(name)
    return names


def delimiter_name(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else delimiter


def ragged_row_error(path: str, delimiter: str, expected: int) -> TableError:
    """The first row whose field count differs from the header's, as an error."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f, delimiter=delimiter)
        for record in reader:
            if record and len(record) != expected:
                return TableError(f"{path}, line {reader.line_num}: {len(record)} fields, but the header "
                                  f"has {expected}")
    return TableError(f"{path}: rows have different numbers of fields")
