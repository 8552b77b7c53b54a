"""The ``backpropx`` command line: train, predict, info and the digits demo.

Exit codes: 0 success, 2 usage or data errors (bad options, unreadable or
malformed files, missing columns, non-numeric data), 1 unexpected failures
(and training that diverges). Errors go to stderr as one line naming the
problem; unexpected ones add a traceback.

Under ``mpiexec -n N`` (N > 1), ``train`` trains one model data-parallel on
all N processes (README, "Distributed training"): rank 0 prints and saves;
a failure on any process ends all of them with its message.

Models written by ``train`` are ordinary backpropx .safetensors files whose
first layer takes the raw (unscaled) features: the standardization used for
training is folded into the first layer's weights (and, for regression, the
target scaling into the last layer's), so ``Network.load`` + ``predict``,
``to_torch`` and ``to_onnx`` all see the same model as ``predict`` here. The
header's extra metadata records the task, the class labels, the feature
names and the target column.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .distributed import DistributedError

COMMANDS = ("train", "predict", "info", "demo")
MAX_AUTO_CLASSES = 20   # an integer target with at most this many values is taken as class labels
CLI_FORMAT = "1"        # version of the extra metadata written by `train`


class UsageError(Exception):
    """Bad options or data: reported in one line, exit code 2."""


class Failure(Exception):
    """An expected failure that is not the user's input (e.g. divergence): one line, exit code 1."""


# ---- argument types ----------------------------------------------------------
def _number(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: `convert` the text, then require `accept`; errors say `expected`."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_fraction = _number(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"the seed must be in [0, 2**64), got {text!r}")
    return value


def _hidden(text: str) -> list[int]:
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
        if width < 1:
            raise argparse.ArgumentTypeError(f"layer widths must be positive, got {width} in {text!r}")
        widths.append(width)
    return widths


# ---- data files ----------------------------------------------------------------
@dataclass
class Data:
    """Features X (float64, (n, d)), raw targets y (numeric or strings) or None, and names."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None
    target: str | None
    source: str


def _file_kind(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    raise UsageError(f"unsupported input file {path!r}: expected a .csv file (with a header row) "
                     "or an .npz file (arrays X and y)")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv_table(path: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows (stripped strings) and each row's line number; UsageError on malformed files."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header: list[str] | None = None
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue   # blank lines
                cells = [cell.strip() for cell in row]
                if header is None:
                    header = cells
                    continue
                if len(cells) != len(header):
                    raise UsageError(f"{path}, line {reader.line_num}: {len(cells)} fields, but the header "
                                     f"has {len(header)}")
                rows.append(cells)
                lines.append(reader.line_num)
    except UsageError:
        raise
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a UTF-8 text (CSV) file") from None
    except csv.Error as exc:
        raise UsageError(f"{path} is not a valid CSV file: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if header is None:
        raise UsageError(f"{path} is empty")
    if all(_is_number(name) for name in header):
        raise UsageError(f"{path}: the first line looks like data ({', '.join(header[:4])}...); "
                         "CSV files need a header row of column names")
    if any(not name for name in header):
        raise UsageError(f"{path}: column {header.index('') + 1} of the header has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UsageError(f"{path}: column name {name!r} appears twice in the header")
        seen.add(name)
    if not rows:
        raise UsageError(f"{path} has a header but no data rows")
    return header, rows, lines


def _numeric_column(values: list[str], name: str, lines: list[int], path: str) -> np.ndarray:
    try:
        column = np.array(values, dtype=np.float64)
    except ValueError:
        for value, line in zip(values, lines):
            if not _is_number(value):
                what = "an empty (missing) value" if value == "" else f"{value!r}"
                raise UsageError(f"{path}, line {line}: column {name!r} has {what}; every feature must be "
                                 "a number") from None
        raise
    bad = ~np.isfinite(column)
    if bad.any():
        i = int(np.argmax(bad))
        raise UsageError(f"{path}, line {lines[i]}: column {name!r} holds {values[i]!r}; values must be finite")
    return column


def _columns_preview(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:12])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 12 else "")


def load_data(path: str, target: str | None, *, need_target: bool,
              features: list[str] | None = None) -> Data:
    """Read a CSV (header row; `target` names the label column) or an .npz (X, y).

    With `features` (names saved with a model), a CSV's feature columns are
    selected by name; other columns (such as the target) are ignored.
    """
    kind = _file_kind(path)
    if kind == "npz":
        if target is not None:
            raise UsageError("--target applies to CSV files; an .npz file holds arrays named X and y")
        return _load_npz(path, need_target)
    header, rows, lines = read_csv_table(path)
    columns = list(zip(*rows))
    if need_target:
        if target is None:
            raise UsageError(f"give --target COLUMN, the column to predict; {path} has columns "
                             f"{_columns_preview(header)}")
        if target not in header:
            raise UsageError(f"{path} has no column {target!r}; its columns are {_columns_preview(header)}")
    if features is not None:
        missing = [name for name in features if name not in header]
        if missing:
            raise UsageError(f"{path} lacks {len(missing)} feature column(s) the model was trained on: "
                             f"{_columns_preview(missing)}")
        names = list(features)
    else:
        names = [name for name in header if name != target]
    if not names:
        raise UsageError(f"{path} has no feature columns besides the target {target!r}")
    X = np.column_stack([_numeric_column(list(columns[header.index(name)]), name, lines, path)
                         for name in names])
    y = None
    if need_target:
        raw = [v for v in columns[header.index(target)]]
        if all(_is_number(v) for v in raw):
            y = _numeric_column(raw, target, lines, path)
        else:
            empty = [line for v, line in zip(raw, lines) if v == ""]
            if empty:
                raise UsageError(f"{path}, line {empty[0]}: the target column {target!r} has an empty value")
            y = np.array(raw, dtype=str)
    return Data(X, y, names, target, path)


def _load_npz(path: str, need_target: bool) -> Data:
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not an .npz file (not a zip archive); save one with "
                         "numpy.savez(path, X=X, y=y)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if "X" not in names:
                raise UsageError(f"{path} has no array named X (it holds: {', '.join(names) or 'nothing'})")
            X = archive["X"]
            y = archive["y"] if "y" in names else None
    except UsageError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UsageError(f"{path} is not a readable .npz file of numeric arrays: {exc}") from None
    if X.ndim != 2:
        raise UsageError(f"{path}: X must be 2-D (samples, features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: X must hold numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise UsageError(f"{path}: X contains NaN or infinite values")
    if X.shape[0] == 0:
        raise UsageError(f"{path}: X has no samples")
    if need_target:
        if y is None:
            raise UsageError(f"{path} has no array named y (the targets)")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
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
    return Data(X, y if need_target else None, None, None, path)


# ---- tasks and labels ------------------------------------------------------------
def infer_task(y: np.ndarray) -> str:
    """classification for string labels or an integer-valued target with at most
    MAX_AUTO_CLASSES distinct values; regression otherwise."""
    if y.dtype.kind in "US":
        return "classification"
    if y.ndim != 1:
        return "regression"
    distinct = np.unique(y)
    if np.all(distinct == np.round(distinct)) and 2 <= len(distinct) <= MAX_AUTO_CLASSES:
        return "classification"
    return "regression"


def _label_value(v: Any) -> Any:
    """A class label as a JSON value: int for whole numbers, float, or str."""
    if isinstance(v, (str, np.str_)):
        return str(v)
    f = float(v)
    return int(f) if f == round(f) and abs(f) < 2**53 else f


def format_label(label: Any) -> str:
    return label if isinstance(label, str) else repr(label)


# ---- commands ------------------------------------------------------------------
def _launched_group() -> Any:
    """Every process of an `mpiexec -n N` launch with N > 1, which then train
    one model together; None otherwise. Automatic, because N copies of a
    single-process run would only race to write the same files."""
    from . import distributed

    try:
        return distributed.world()
    except ImportError as exc:
        raise UsageError(str(exc)) from None


def _check_writable(out: str) -> None:
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {out}: the directory {directory} does not exist")
    if os.path.isdir(out):
        raise UsageError(f"cannot write {out}: it is a directory")


def _standardize_stats(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = A.mean(axis=0)
    scale = A.std(axis=0)
    scale[scale == 0] = 1.0   # constant columns: only centred
    return mean, scale


def _fold_scaling(net: Any, x_mean: np.ndarray, x_scale: np.ndarray,
                  y_mean: np.ndarray | None, y_scale: np.ndarray | None) -> None:
    """Rewrite the weights so the network takes raw features (and, for
    regression, returns raw targets) while computing the same function as on
    standardized data: W' = W / s, b' = b - W (m / s) on the first layer;
    W' = t W, b' = t b + u on the last (identity-activated) one."""
    dense = [layer for layer in net.layers if hasattr(layer, "weight")]
    first, last = dense[0], dense[-1]
    W = first.weight.astype(np.float64)
    b = first.bias.astype(np.float64)
    first.bias[...] = b - W @ (x_mean / x_scale)
    first.weight[...] = W / x_scale[None, :]
    if y_mean is not None and y_scale is not None:
        W = last.weight.astype(np.float64)
        b = last.bias.astype(np.float64)
        last.weight[...] = y_scale[:, None] * W
        last.bias[...] = y_scale * b + y_mean


def _regression_report(name: str, pred: np.ndarray, y: np.ndarray) -> str:
    err = pred - y
    rmse = float(np.sqrt(np.mean(err ** 2)))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum(err ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return f"{name} RMSE: {rmse:.6g}, R^2: {r2:.4f} on {len(y)} samples"


def cmd_train(args: argparse.Namespace) -> int:
    import backpropx as bx

    _check_writable(args.out)
    data = load_data(args.data, args.target, need_target=True)
    X, y = data.X, data.y
    assert y is not None
    n = X.shape[0]
    inferred = args.task is None
    task = infer_task(y) if inferred else args.task
    group = getattr(args, "group", None)
    say = (lambda *a: None) if args.quiet or (group is not None and group.rank != 0) else print

    extra: dict[str, str] = {"cli_format": CLI_FORMAT, "task": task}
    if data.feature_names is not None:
        extra["feature_names"] = json.dumps(data.feature_names)
    if data.target is not None:
        extra["target"] = data.target
    if task == "classification":
        if y.ndim != 1:
            raise UsageError(f"classification needs one label per sample; y has shape {y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise UsageError(f"the target has a single value ({format_label(_label_value(classes[0]))}); "
                             "classification needs at least two classes")
        labels = [_label_value(c) for c in classes]
        extra["classes"] = json.dumps(labels)
        targets = codes.astype(np.int64)
        n_out = len(classes)
        why = " (inferred; use --task to change)" if inferred else ""
        say(f"task: classification{why}, {n_out} classes: "
            + ", ".join(format_label(c) for c in labels[:10]) + (" ..." if n_out > 10 else ""))
    else:
        if y.dtype.kind in "US":
            name = repr(data.target) if data.target else "y"
            raise UsageError(f"regression needs a numeric target, but {name} holds text such as {str(y[0])!r}")
        targets = y.reshape(n, -1)
        n_out = targets.shape[1]
        why = " (inferred; use --task to change)" if inferred else ""
        say(f"task: regression{why}, {n_out} output{'s' if n_out > 1 else ''}")

    # A seeded shuffle, then the last fraction is held out.
    order = np.random.default_rng(args.seed).permutation(n)
    n_val = int(math.floor(n * args.validation_split))
    if args.validation_split > 0 and not 1 <= n_val < n:
        raise UsageError(f"--validation-split {args.validation_split} leaves {n_val} of {n} samples "
                         "for validation")
    train_idx, val_idx = order[:n - n_val], order[n - n_val:]
    x_mean, x_scale = _standardize_stats(X[train_idx])
    Xs = (X - x_mean) / x_scale
    y_mean = y_scale = None
    fit_targets = targets
    if task == "regression":
        y_mean, y_scale = _standardize_stats(targets[train_idx])
        fit_targets = (targets - y_mean) / y_scale

    widths = [X.shape[1], *args.hidden]
    layers = [bx.Dense(widths[k], widths[k + 1], activation=args.activation) for k in range(len(args.hidden))]
    layers.append(bx.Dense(widths[-1], n_out, activation="softmax" if task == "classification" else None))
    net = bx.Network(layers, seed=args.seed, dtype=args.dtype)
    loss = "cross_entropy" if task == "classification" else "mse"
    say(f"training on {len(train_idx)} samples of {X.shape[1]} features"
        + (f", validating on {n_val}" if n_val else "") + f" from {data.source}")
    say(net)
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.Adam(lr=args.lr), batch_size=args.batch_size,
                         seed=args.seed, distributed=group)
    validation = (Xs[val_idx], fit_targets[val_idx]) if n_val else None
    try:
        trainer.fit(Xs[train_idx], fit_targets[train_idx], epochs=args.epochs, validation_data=validation,
                    verbose=0 if args.quiet else 1)
    except bx.NonFiniteError as exc:
        raise Failure(f"training diverged: {exc}; try a smaller --lr") from None
    _fold_scaling(net, x_mean, x_scale, y_mean, y_scale)

    for name, idx in (("training", train_idx), ("validation", val_idx)):
        if len(idx) == 0:
            continue
        pred = net.predict(X[idx])
        if task == "classification":
            accuracy = float(np.mean(pred.argmax(axis=1) == targets[idx]))
            say(f"{name} accuracy: {accuracy:.2%} on {len(idx)} samples")
        else:
            say(_regression_report(name, pred, targets[idx]))
    try:
        if group is None or group.rank == 0:
            net.save(args.out, extra_metadata=extra)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    say(f"model saved to {os.path.abspath(args.out)}")
    return 0


def load_model(path: str) -> tuple[Any, dict[str, str]]:
    from .io import load_network_with_metadata

    try:
        return load_network_with_metadata(path)
    except OSError as exc:
        raise UsageError(f"cannot read model {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a usable backpropx model: {exc}") from None


def _model_task(net: Any, extra: dict[str, str], path: str) -> tuple[str, list[Any] | None]:
    task = extra.get("task")
    if task is None:   # a model saved from Python: a softmax last layer means classes 0..K-1
        task = "classification" if getattr(net.layers[-1], "activation", None) == "softmax" else "regression"
    if task not in ("classification", "regression"):
        raise UsageError(f"{path} records an unknown task {task!r}")
    classes = None
    if task == "classification":
        try:
            classes = json.loads(extra["classes"]) if "classes" in extra else list(range(net.out_features))
        except json.JSONDecodeError:
            raise UsageError(f"{path} has a damaged class list in its metadata") from None
        if not isinstance(classes, list) or len(classes) != net.out_features:
            raise UsageError(f"{path}: the class list does not match the model's {net.out_features} outputs")
    return task, classes


def _fmt(dtype: np.dtype) -> str:
    return ".9g" if dtype == np.float32 else ".17g"   # enough digits to round-trip


def cmd_predict(args: argparse.Namespace) -> int:
    net, extra = load_model(args.model)
    task, classes = _model_task(net, extra, args.model)
    if args.proba and task != "classification":
        raise UsageError("--proba needs a classifier; this model does regression")
    features = None
    if "feature_names" in extra and _file_kind(args.data) == "csv":
        try:
            features = json.loads(extra["feature_names"])
        except json.JSONDecodeError:
            raise UsageError(f"{args.model} has a damaged feature list in its metadata") from None
    data = load_data(args.data, None, need_target=False, features=features)
    if data.X.shape[1] != net.in_features:
        hint = "" if data.X.shape[1] < net.in_features else " (drop any target column)"
        raise UsageError(f"the model expects {net.in_features} features, but {args.data} has "
                         f"{data.X.shape[1]}{hint}")
    out = net.predict(data.X)
    fmt = _fmt(out.dtype)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if task == "classification":
        assert classes is not None
        header = ["prediction"]
        if args.proba:
            header += [f"proba_{format_label(c)}" for c in classes]
        writer.writerow(header)
        picks = out.argmax(axis=1)
        for row, pick in zip(out, picks):
            cells = [format_label(classes[pick])]
            if args.proba:
                cells += [format(float(v), fmt) for v in row]
            writer.writerow(cells)
    else:
        writer.writerow(["prediction"] if out.shape[1] == 1 else [f"prediction_{j}" for j in range(out.shape[1])])
        for row in out:
            writer.writerow([format(float(v), fmt) for v in row])
    text = buffer.getvalue()
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    from .io import atomic_write

    _check_writable(args.out)
    try:
        atomic_write(args.out, text.encode())
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {len(out)} predictions to {os.path.abspath(args.out)}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import backpropx as bx

    cfg = bx.config()
    if args.json:
        print(json.dumps(cfg))
    else:
        for key, value in cfg.items():
            if isinstance(value, list):
                value = ", ".join(map(str, value))
            print(f"{key:18} {value}")
    return 0


def demo(out: str, epochs: int, seed: int, verbose: int) -> float:
    """Train a digit recogniser on the shipped 8x8 digits; print held-out accuracy; save it."""
    import backpropx as bx

    X, y = bx.load_digits()
    X = X / 16.0
    X_train, X_test, y_train, y_test = bx.train_test_split(X, y, test_fraction=0.25, seed=seed)
    net = bx.Network([bx.Dense(64, 128, activation="relu"),
                      bx.Dense(128, 10, activation="softmax")], seed=seed)
    print(f"backpropx {bx.__version__} ({bx.get_kernel()} kernel, {bx.get_num_threads()} threads)")
    print(f"training on {len(X_train)} handwritten 8x8 digits, testing on {len(X_test)} held out")
    print(net)
    trainer = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=3e-3), batch_size=32, seed=seed)
    trainer.fit(X_train, y_train, epochs=epochs, validation_data=(X_test, y_test), verbose=verbose)
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    print(f"held-out accuracy: {accuracy:.2%} on {len(X_test)} digits")
    net.save(out)
    print(f"model saved to {os.path.abspath(out)}")
    return accuracy


def cmd_demo(args: argparse.Namespace) -> int:
    _check_writable(args.out)
    demo(args.out, args.epochs, args.seed, 0 if args.quiet else 1)
    return 0


# ---- parser and entry point ------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .layers import ACTIVATIONS

    parser = argparse.ArgumentParser(
        prog="backpropx",
        description="Train dense neural networks by backpropagation (C++ core) and predict with them. "
                    "Without a command, runs the digits demo (the same as `backpropx demo`).",
        epilog="examples:\n"
               "  backpropx train data.csv --target label --hidden 128,64 --epochs 30 --out model.safetensors\n"
               "  backpropx predict --model model.safetensors new.csv --out predictions.csv\n"
               "  backpropx info\n"
               "exit codes: 0 success, 2 usage or data error, 1 unexpected failure",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"backpropx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train a network on a CSV or .npz file and save it",
                           description="Train a network on a CSV file (header row; --target names the "
                                       "column to predict, every other column is a numeric feature) or "
                                       "an .npz file (arrays X and y), and save it as .safetensors. "
                                       "Features (and regression targets) are standardized for training; "
                                       "the scaling is folded into the saved weights.")
    train.add_argument("data", help="training data: a .csv with a header row, or an .npz with X and y")
    train.add_argument("--target", metavar="COLUMN", help="the CSV column to predict (required for CSV)")
    train.add_argument("--task", choices=("classification", "regression"),
                       help="default: classification when the target is text or integer-valued with at most "
                            f"{MAX_AUTO_CLASSES} distinct values, else regression")
    train.add_argument("--hidden", type=_hidden, default=[128, 64], metavar="W1,W2,...",
                       help="hidden layer widths (default 128,64; 'none' for no hidden layer)")
    train.add_argument("--activation", default="relu",
                       choices=[a for a in ACTIVATIONS if a not in ("softmax",)],
                       help="activation of the hidden layers (default relu)")
    train.add_argument("--epochs", type=_positive_int, default=20, help="default 20")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    train.add_argument("--seed", type=_seed, default=0, help="seeds the split, the weights and the shuffling")
    train.add_argument("--validation-split", type=_fraction, default=0.0, metavar="FRACTION",
                       help="hold out this fraction of the (shuffled) rows and report metrics on it (default 0)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--out", default="model.safetensors", help="where to save the model (default model.safetensors)")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="predict with a saved model",
                             description="Predict every row of a CSV (features selected by the names the "
                                         "model was trained with; other columns ignored) or an .npz (array "
                                         "X). Writes a CSV: column 'prediction' (class labels for "
                                         "classifiers), with --proba also one probability column per class.")
    predict.add_argument("data", help="input: a .csv with a header row, or an .npz with X")
    predict.add_argument("--model", required=True, help="a .safetensors model (from `train` or Network.save)")
    predict.add_argument("--out", help="output CSV (default: standard output)")
    predict.add_argument("--proba", action="store_true", help="add class probabilities (classifiers)")
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="version, GEMM kernel, threads and build information",
                          description="Print backpropx.config(): version, compiler, kernel, threads, CPUs.")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    demo_parser = sub.add_parser("demo", help="train a digit recogniser on the shipped 8x8 digits (default)",
                                 description="Train a recogniser of the shipped 8x8 handwritten digits, print "
                                             "its held-out accuracy and save it.")
    demo_parser.add_argument("--out", default="digits_model.safetensors", help="where to save the model")
    demo_parser.add_argument("--epochs", type=_positive_int, default=30)
    demo_parser.add_argument("--seed", type=_seed, default=0)
    demo_parser.add_argument("--quiet", action="store_true")
    demo_parser.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["demo", *argv]   # no command: the demo, with its options as before
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    try:
        args.group = _launched_group() if args.command == "train" else None
        with contextlib.nullcontext() if args.group is None else args.group.together():
            return args.func(args)
    except UsageError as exc:
        print(f"backpropx {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (Failure, DistributedError) as exc:
        print(f"backpropx {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"backpropx {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # e.g. `backpropx predict ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        traceback.print_exc()
        print(f"backpropx {args.command}: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
