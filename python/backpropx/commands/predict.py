"""`backpropx predict`: run a saved model on a CSV or .npz file and write its
predictions as CSV (class labels, with --proba the probabilities; an id
column first when the model or --id names one)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from typing import Any

import numpy as np

from ..tabular import TableError
from ..tabular.encoding import cell_texts
from .data import check_values, file_kind, read_npz, read_table, require_columns, row_describer
from .errors import UsageError
from .model_file import load_model, model_info
from .train import check_writable, format_label


def _fmt(dtype: np.dtype) -> str:
    return ".9g" if dtype == np.float32 else ".17g"   # enough digits to round-trip


def cmd_predict(args: argparse.Namespace) -> int:
    if args.threads is not None:
        import backpropx as bx

        bx.set_num_threads(args.threads)
    net, extra = load_model(args.model)
    info = model_info(net, extra, args.model)
    if args.proba and info.task != "classification":
        raise UsageError("--proba needs a classifier; this model does regression")
    if args.out is not None:
        check_writable(args.out)
    ids = id_name = None
    names = None
    if file_kind(args.data) == "csv":
        wanted = tuple(name for name in (args.id, info.id_column) if name)
        table = read_table(args.data, args.delimiter, args.reader, progress=False, text_columns=wanted)
        id_name = args.id or (info.id_column if info.id_column in table.columns else None)
        if id_name is not None:
            require_columns(table, [id_name], "")
        rows = np.arange(table.n_rows)
        impute = (args.missing or ("impute" if info.missing == "impute" else "error")) == "impute"
        if info.encoding is not None:
            require_columns(table, info.encoding.columns, "feature")
            encoding = info.encoding
        else:   # a model saved from Python: every column but the id, in file order
            from ..tabular import Encoding

            encoding = Encoding.numbers([n for n in table.header if n != id_name])
        try:
            X, unseen = encoding.transform(table, rows, impute=impute)
        except TableError as exc:
            message = str(exc).replace("use --missing drop (skip such rows) or --missing impute",
                                       "use --missing impute")
            raise UsageError(message) from None
        for column, values in unseen.items():
            shown = ", ".join(repr(v) for v in values[:5]) + (" ..." if len(values) > 5 else "")
            print(f"note: column {column!r} holds {len(values)} value(s) not seen in training ({shown}); "
                  "their one-hot inputs are all zero", file=sys.stderr)
        names = encoding.input_names()
        describe = row_describer(table, args.data)
        if id_name is not None:
            ids = cell_texts(table.columns[id_name])
    else:
        if args.id:
            raise UsageError("--id applies to CSV files; an .npz file holds arrays named X")
        X, _ = read_npz(args.data, need_target=False)
        describe = row_describer(None, args.data)
    if X.shape[1] != net.in_features:
        hint = "" if X.shape[1] < net.in_features else " (drop any target column)"
        raise UsageError(f"the model expects {net.in_features} features, but {args.data} has "
                         f"{X.shape[1]}{hint}")
    check_values(X, net.dtype.name, names, describe)
    out = net.predict(X)
    text = format_predictions(out, info, args.proba, id_name, ids)
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    from ..io import atomic_write

    try:
        atomic_write(args.out, text.encode())
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {len(out)} predictions to {os.path.abspath(args.out)}")
    return 0


def format_predictions(out: np.ndarray, info: Any, proba: bool, id_name: str | None, ids: Any) -> str:
    fmt = _fmt(out.dtype)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    lead = [id_name] if id_name is not None else []
    if info.task == "classification":
        classes = info.classes
        header = lead + ["prediction"]
        if proba:
            header += [f"proba_{format_label(c)}" for c in classes]
        writer.writerow(header)
        picks = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5).astype(np.int64)
        for i, (row, pick) in enumerate(zip(out, picks)):
            cells = ([ids[i]] if ids is not None else []) + [format_label(classes[pick])]
            if proba:
                probs = row if out.shape[1] > 1 else np.array([1 - row[0], row[0]])
                cells += [format(float(v), fmt) for v in probs]
            writer.writerow(cells)
    else:
        writer.writerow(lead + (["prediction"] if out.shape[1] == 1 else
                                [f"prediction_{j}" for j in range(out.shape[1])]))
        for i, row in enumerate(out):
            writer.writerow(([ids[i]] if ids is not None else []) + [format(float(v), fmt) for v in row])
    return buffer.getvalue()
