"""The CSV readers, by name: pyarrow's when it is installed (several times
faster, a fraction of the memory), our own otherwise. Both give the same
Table for the same file (tests/test_tabular.py checks it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from . import read_arrow, read_python
from .errors import TableError
from .table import Table

# name -> (is it usable here?, read(path, delimiter, on_progress)); "auto" takes the first usable.
READERS: dict[str, tuple[Callable[[], bool], Callable[..., Table]]] = {
    "pyarrow": (read_arrow.available, read_arrow.read),
    "python": (lambda: True, read_python.read),
}


def available_readers() -> list[str]:
    return [name for name, (usable, _read) in READERS.items() if usable()]


def read_csv(path: str, delimiter: str = ",", reader: str = "auto", progress: bool = False,
             progress_file: Any = None, text_columns: tuple[str, ...] = ()) -> Table:
    """Read `path` with the named reader ("auto": the fastest installed).

    Columns named in `text_columns` keep their exact text even when every
    cell is a number (identifiers such as "00123").

    With `progress`, a tqdm bar of the bytes read goes to `progress_file`
    (stderr by default). OSError when the file cannot be opened; TableError
    for everything about its content.
    """
    if reader == "auto":
        reader = available_readers()[0]
    if reader not in READERS:
        raise TableError(f"unknown CSV reader {reader!r}; expected auto or one of: {', '.join(READERS)}")
    usable, read = READERS[reader]
    if not usable():
        raise TableError(f"the {reader} CSV reader is not installed (pip install {reader})")
    size = os.path.getsize(path)
    bar = None
    on_progress = None
    if progress:
        from tqdm.std import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                   desc=f"reading {os.path.basename(path)}", file=progress_file or sys.stderr,
                   dynamic_ncols=True)

        def on_progress(position: int) -> None:
            bar.update(max(0, min(position, size) - bar.n))
    try:
        return read(path, delimiter, on_progress, tuple(text_columns))
    except UnicodeDecodeError:
        raise TableError(f"{path} is not a UTF-8 text (CSV) file") from None
    except ValueError as exc:   # csv.Error is not one; TableError is
        if isinstance(exc, TableError):
            raise
        raise TableError(f"{path} is not a valid CSV file: {exc}") from None
    except Exception as exc:
        import csv

        if isinstance(exc, csv.Error):
            raise TableError(f"{path} is not a valid CSV file: {exc}") from None
        raise
    finally:
        if bar is not None:
            bar.update(size - bar.n)
            bar.refresh()   # show the full bar once, whatever the refresh interval skipped
            bar.close()
