"""The data files of the command line: a CSV with a header row (read by
backpropx.tabular) or an .npz with arrays X (and y). Every problem becomes a
UsageError naming the file, and for CSV files the line and the column."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ..tabular import Table, TableError, read_csv
from .errors import UsageError


def file_kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    raise UsageError(f"unsupported input file {path!r}: expected a .csv file (with a header row) "
                     "or an .npz file (arrays X and y)")


def check_regular_file(path: str, what: str = "") -> None:
    """A FIFO or a device would block or never end: only regular files are read."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {what}{path}: {exc.strerror or exc}") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"cannot read {what}{path}: not a regular file")


def read_table(path: str, delimiter: str, reader: str, progress: bool, text_columns: tuple[str, ...] = ()) -> Table:
    check_regular_file(path)
    try:
        table = read_csv(path, delimiter=delimiter, reader=reader, progress=progress,
                         text_columns=text_columns)
    except TableError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if table.n_rows == 0:
        raise UsageError(f"{path} has a header but no data rows")
    return table


def columns_preview(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:12])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 12 else "")


def require_columns(table: Table, names: list[str], what: str) -> None:
    missing = [n for n in names if n not in table.columns]
    if not missing:
        return
    hint = _delimiter_hint(table)
    if len(missing) == 1 and what != "feature":
        raise UsageError(f"{table.path} has no column {missing[0]!r}; its columns are "
                         f"{columns_preview(table.header)}{hint}")
    raise UsageError(f"{table.path} lacks {len(missing)} {what} column(s) the model was trained on: "
                     f"{columns_preview(missing)}{hint}")


def _delimiter_hint(table: Table) -> str:
    """A column name holding another usual separator suggests the wrong --delimiter."""
    for sep, flag in ((";", ";"), ("\t", "tab"), ("|", "|")):
        if sep != table.delimiter and any(sep in name for name in table.header):
            name = next(name for name in table.header if sep in name)
            return (f" (the column name {name[:60]!r} contains {flag!r}: if the file is separated by {flag!r}, "
                    f"pass --delimiter '{flag}')")
    return ""


def row_describer(table: Table | None, path: str) -> Callable[[int], str]:
    """"file, line N" for a data row of a CSV; "file, row N" (from 0) for an .npz."""
    if table is not None:
        return lambda row: f"{path}, line {table.line_of(row)}"
    return lambda row: f"{path}, row {row}"


def check_values(X: np.ndarray, dtype: str, names: list[str] | None, describe: Callable[[int], str],
                 rows: np.ndarray | None = None, what: str = "column") -> None:
    """Every value finite and representable in the network's dtype, or a UsageError
    naming the row and column of the first one that is not."""
    limit = float(np.finfo(dtype).max)
    for bad, problem in ((~np.isfinite(X), "values must be finite"),
                         (np.abs(np.nan_to_num(X)) > limit,
                          f"too large for {dtype} (at most {limit:.4g}); use --dtype float64 or rescale it")):
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad.reshape(X.shape[0], -1))[0])
            row = int(rows[i]) if rows is not None else i
            name = repr(names[j]) if names is not None else str(j)
            value = X.reshape(X.shape[0], -1)[i, j]
            raise UsageError(f"{describe(row)}: {what} {name} holds {float(value):.6g}; {problem}")


# ---- .npz ----------------------------------------------------------------------
def read_npz(path: str, need_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """X (float64, (n, d)) and y (numbers or strings, or None) of an .npz file,
    its array headers checked against the archive before anything is read."""
    check_regular_file(path)
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not an .npz file (not a zip archive); save one with "
                         "numpy.savez(path, X=X, y=y)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}
            if "X" not in members:
                raise UsageError(f"{path} has no array named X (it holds: {', '.join(members) or 'nothing'})")
            X = _read_member(archive, members["X"], path)
            y = _read_member(archive, members["y"], path) if need_target and "y" in members else None
    except UsageError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise UsageError(f"{path} is not a readable .npz file of numeric arrays: {exc}") from None
    if X.ndim != 2:
        raise UsageError(f"{path}: X must be 2-D (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: X must hold numbers, got dtype {X.dtype}")
    if X.shape[0] == 0:
        raise UsageError(f"{path}: X has no samples")
    if X.shape[1] == 0:
        raise UsageError(f"{path}: X has no features (shape {X.shape})")
    X = X.astype(np.float64)
    if not need_target:
        return X, None
    if y is None:
        raise UsageError(f"{path} has no array named y (the targets)")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0] or (y.ndim == 2 and y.shape[1] == 0):
        raise UsageError(f"{path}: y has shape {y.shape}; expected ({X.shape[0]},) to match X's "
                         f"{X.shape[0]} samples")
    if y.dtype.kind in "biuf":
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise UsageError(f"{path}: y contains NaN or infinite values")
    elif y.dtype.kind in "US" and y.ndim == 1:
        y = y.astype(str)
    else:
        raise UsageError(f"{path}: y must hold numbers or strings, got dtype {y.dtype}")
    return X, y


def _read_member(archive: zipfile.ZipFile, member: str, path: str) -> np.ndarray:
    """One .npy array of the archive, after checking that its header's shape
    and dtype account for exactly the bytes stored (a forged shape would
    otherwise ask for terabytes)."""
    info = archive.getinfo(member)
    name = member[:-4]
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise UsageError(f"{path}: array {name} has an unsupported .npy version {version}")
        if dtype.hasobject:
            raise UsageError(f"{path}: array {name} holds Python objects; save numbers or strings")
        count = 1
        for d in shape:
            count *= int(d)
        data_bytes = info.file_size - f.tell()
        if count * dtype.itemsize != data_bytes:
            raise UsageError(f"{path}: array {name} declares shape {tuple(shape)} of {dtype} "
                             f"({count * dtype.itemsize:,} bytes) but stores {data_bytes:,} bytes")
        if data_bytes > _physical_memory():
            raise UsageError(f"{path}: array {name} has {data_bytes:,} bytes, more than this machine's memory")
        data = f.read()
    array: Any = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62
