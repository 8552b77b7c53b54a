"""`backpropx train`: fit a network to a CSV or .npz file and save it.

Everything the user gave is checked before training starts (files, columns,
values, output paths, matplotlib for --plot). Features, and for regression
the targets, are standardized for training; the scaling is then folded into
the first and last layers, so the saved model takes raw features. The fold is
verified: if the network's dtype cannot hold the folded weights precisely
(features spanning extreme ranges), training is refused with a clear message
instead of saving a model whose weights are infinite or wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..labels import label_value
from ..tabular import Table, TableError, fit_encoding
from .data import check_values, columns_preview, file_kind, read_npz, read_table, require_columns, row_describer
from .errors import Failure, UsageError
from .model_file import CLI_FORMAT

MAX_AUTO_CLASSES = 20   # an integer target with at most this many values is taken as class labels
SMALL_TABLE = 2000      # below this many training rows, an early stop earns a hint about regularisation


def say_nothing(*_args: Any) -> None:
    pass


def check_writable(out: str) -> None:
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {out}: the directory {directory} does not exist")
    if os.path.isdir(out):
        raise UsageError(f"cannot write {out}: it is a directory")


def format_label(label: Any) -> str:
    return label if isinstance(label, str) else repr(label)


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


@dataclass
class Prepared:
    """Training data ready for the network: inputs X (n, d) float64, raw
    targets y, the rows used for training and validation, and what to record."""

    X: np.ndarray
    y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    input_names: list[str] | None
    extra: dict[str, str]
    describe: Any            # row index -> "file, line N"
    notes: list[str]


def split(n: int, fraction: float, seed: int, explicit: bool) -> tuple[np.ndarray, np.ndarray, str | None]:
    """A seeded shuffle, then the last fraction is held out. A default split
    that would leave no row on either side is dropped (with a note); an
    explicit one is an error."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(math.floor(n * fraction))
    if fraction > 0 and not 1 <= n_val < n:
        if explicit:
            raise UsageError(f"--validation-split {fraction} leaves {n_val} of {n} samples for validation")
        return order, order[:0], f"{n} rows are too few to hold out a validation split: no early stopping"
    return order[:n - n_val], order[n - n_val:], None


def prepare_csv(args: argparse.Namespace) -> Prepared:
    table = read_table(args.data, args.delimiter, args.reader, progress=not args.quiet and _stderr_is_terminal(),
                       text_columns=(args.id,) if args.id else ())
    if args.target is None:
        raise UsageError(f"give --target COLUMN, the column to predict; {args.data} has columns "
                         f"{columns_preview(table.header)}")
    special = [args.target] + ([args.id] if args.id else []) + list(args.ignore or [])
    require_columns(table, special, "")
    if len(set(special)) != len(special):
        raise UsageError("--target, --id and --ignore must name different columns")
    features = [name for name in table.header if name not in special]
    if not features:
        raise UsageError(f"{args.data} has no feature columns besides {columns_preview(special)}")
    notes: list[str] = []
    rows = np.arange(table.n_rows)
    target = table.columns[args.target]
    if args.missing == "error":
        first_missing(table, [name for name in table.header if name in features or name == args.target])
    if target.missing.any():
        rows = rows[~target.missing]
        notes.append(f"skipped {int(target.missing.sum())} rows without a target value")
    if args.missing == "drop":
        keep = ~np.any([table.columns[name].missing[rows] for name in features], axis=0)
        if not keep.all():
            notes.append(f"skipped {int((~keep).sum())} rows with missing feature values (--missing drop)")
        rows = rows[keep]
    if rows.size == 0:
        raise UsageError(f"{args.data}: no rows are left to train on")
    y = _target_values(table, args.target, rows)
    train, val, note = split(rows.size, args.validation_split, args.seed, args.validation_split_given)
    if note:
        notes.append(note)
    try:
        encoding = fit_encoding(table, features, rows[train])
        X, _unseen = encoding.transform(table, rows, impute=args.missing == "impute")
    except TableError as exc:
        raise UsageError(str(exc)) from None
    describe_table = row_describer(table, args.data)
    one_hot = [s.name for s in encoding.specs if s.kind == "one_hot"]
    if one_hot:
        notes.append(f"one-hot encoded text column(s) {columns_preview(one_hot)} into "
                     f"{sum(len(s.categories) for s in encoding.specs if s.kind == 'one_hot')} inputs")
    extra = {"columns": encoding.to_json(), "target": args.target, "missing": args.missing}
    if args.id:
        extra["id_column"] = args.id
    return Prepared(X, y, train, val, encoding.input_names(), extra,
                    lambda i: describe_table(int(rows[i])), notes)


def first_missing(table: Table, names: list[str]) -> None:
    """UsageError for the first missing cell of these columns, in file order."""
    hits = [(int(np.argmax(m)), k) for k, name in enumerate(names) if (m := table.columns[name].missing).any()]
    if not hits:
        return
    row, k = min(hits)
    where = f"{table.path}, line {table.line_of(row)}"
    raise UsageError(f"{where}: column {names[k]!r} has an empty (missing) value; use --missing drop (skip such "
                     "rows) or --missing impute (fill in the training mean, or no category; rows without a "
                     "target are skipped)")


def _stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def _target_values(table: Table, name: str, rows: np.ndarray) -> np.ndarray:
    column = table.columns[name]
    if column.text is None:
        return column.numbers[rows]
    return np.array(list(column.text[rows]), dtype=str)


def prepare_npz(args: argparse.Namespace) -> Prepared:
    for option, value in (("--target", args.target), ("--id", args.id), ("--ignore", args.ignore)):
        if value:
            raise UsageError(f"{option} applies to CSV files; an .npz file holds arrays named X and y")
    X, y = read_npz(args.data, need_target=True)
    assert y is not None
    train, val, note = split(X.shape[0], args.validation_split, args.seed, args.validation_split_given)
    return Prepared(X, y, train, val, None, {}, row_describer(None, args.data), [note] if note else [])


def standardize_stats(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (constant columns: scale 1), computed
    on columns divided by their largest magnitude, so that values near the
    float64 limit do not overflow the sums of squares."""
    big = np.max(np.abs(A), axis=0)
    big[big == 0] = 1.0
    scaled = A / big
    mean = scaled.mean(axis=0) * big
    scale = scaled.std(axis=0) * big
    scale[scale == 0] = 1.0
    return mean, scale


def fold_scaling(net: Any, x_mean: np.ndarray, x_scale: np.ndarray,
                 y_mean: np.ndarray | None, y_scale: np.ndarray | None) -> None:
    """Rewrite the weights so the network takes raw features (and, for
    regression, returns raw targets) while computing the same function as on
    standardized data: W' = W / s, b' = b - W (m / s) on the first layer;
    W' = t W, b' = t b + u on the last (identity-activated) one."""
    dense = [k for k, layer in enumerate(net.layers) if hasattr(layer, "weight")]
    first, last = dense[0], dense[-1]
    state = {name: value.astype(np.float64) for name, value in net.state_dict().items()}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        W, b = state[f"{first}.weight"], state[f"{first}.bias"]
        state[f"{first}.bias"] = b - W @ (x_mean / x_scale)
        state[f"{first}.weight"] = W / x_scale[None, :]
        if y_mean is not None and y_scale is not None:
            W, b = state[f"{last}.weight"], state[f"{last}.bias"]
            state[f"{last}.weight"] = y_scale[:, None] * W
            state[f"{last}.bias"] = y_scale * b + y_mean
    try:
        net.load_state_dict(state)   # refuses non-finite weights and values too large for the dtype
    except ValueError as exc:
        raise UsageError(f"the feature scaling cannot be folded into {net.dtype.name} weights ({exc}): some "
                         "feature spans an extreme range; rescale it, or use --dtype float64") from None


def check_fold(net: Any, before: np.ndarray, X_raw: np.ndarray, y_mean: np.ndarray | None,
               y_scale: np.ndarray | None, names: list[str] | None) -> None:
    """The folded network on raw rows must give what the trained one gave on
    standardized rows, to the dtype's precision."""
    import backpropx as bx

    try:
        after = net.predict(X_raw)
    except (bx.NonFiniteError, ValueError) as exc:
        after = None
        reason = str(exc)
    if after is not None:
        if y_mean is not None and y_scale is not None:
            after = (after - y_mean) / y_scale
        tol = 1e-3 if net.dtype == np.float32 else 1e-9
        error = np.max(np.abs(after - before)) / max(1.0, float(np.max(np.abs(before))))
        if error <= tol:
            return
        reason = f"outputs differ by {error:.2g} (relative)"
    raise UsageError(f"the feature scaling cannot be folded into {net.dtype.name} weights without losing "
                     f"precision ({reason}); some feature spans an extreme range: rescale it, or use "
                     "--dtype float64")


def build_network(args: argparse.Namespace, n_in: int, n_out: int, task: str) -> Any:
    import backpropx as bx

    widths = [n_in, *args.hidden]
    layers: list[Any] = []
    try:
        for k in range(len(args.hidden)):
            layers.append(bx.Dense(widths[k], widths[k + 1], activation=args.activation))
            if args.dropout > 0:
                layers.append(bx.Dropout(args.dropout))
        layers.append(bx.Dense(widths[-1], n_out, activation="softmax" if task == "classification" else None))
        return bx.Network(layers, seed=args.seed, dtype=args.dtype)
    except (ValueError, MemoryError, OverflowError) as exc:
        raise UsageError(f"cannot build a network with --hidden {','.join(map(str, args.hidden)) or 'none'} "
                         f"on {n_in} inputs: {exc}") from None


def cmd_train(args: argparse.Namespace) -> int:
    import backpropx as bx

    group = getattr(args, "group", None)  # the mpiexec launch this process trains in, if any
    speaker = group is None or group.rank == 0
    say = say_nothing if args.quiet or not speaker else print
    check_writable(args.out)
    for option, path in (("--log", args.log), ("--plot", args.plot)):
        if path is not None:
            check_writable(path)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib (from a checkout: "
                             "pip install '.[plot]')") from None
    if args.threads is not None:
        bx.set_num_threads(args.threads)

    data = prepare_csv(args) if file_kind(args.data) == "csv" else prepare_npz(args)
    X, y = data.X, data.y
    check_values(X, args.dtype, data.input_names, data.describe)
    n = X.shape[0]
    inferred = args.task is None
    task = infer_task(y) if inferred else args.task
    why = " (inferred; use --task to change)" if inferred else ""
    extra: dict[str, str] = {"cli_format": CLI_FORMAT, "task": task, **data.extra}
    if data.input_names is not None:
        extra["feature_names"] = json.dumps(data.input_names)
    if task == "classification":
        if y.ndim != 1:
            raise UsageError(f"classification needs one label per sample; y has shape {y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise UsageError(f"the target has a single value ({format_label(label_value(classes[0]))}); "
                             "classification needs at least two classes")
        labels = [label_value(c) for c in classes]
        extra["classes"] = json.dumps(labels)
        targets = codes.astype(np.int64)
        n_out = len(classes)
        say(f"task: classification{why}, {n_out} classes: "
            + ", ".join(format_label(c) for c in labels[:10]) + (" ..." if n_out > 10 else ""))
    else:
        if y.dtype.kind in "US":
            name = repr(args.target) if args.target else "y"
            raise UsageError(f"regression needs a numeric target, but {name} holds text such as {str(y[0])!r}")
        targets = y.reshape(n, -1)
        check_values(targets, args.dtype, [args.target] if args.target else None, data.describe, what="target")
        n_out = targets.shape[1]
        say(f"task: regression{why}, {n_out} output{'s' if n_out > 1 else ''}")
    for note in data.notes:
        say(note)

    train_idx, val_idx = data.train_idx, data.val_idx
    x_mean, x_scale = standardize_stats(X[train_idx])
    Xs = (X - x_mean) / x_scale
    y_mean = y_scale = None
    fit_targets = targets
    if task == "regression":
        y_mean, y_scale = standardize_stats(targets[train_idx])
        fit_targets = (targets - y_mean) / y_scale

    net = build_network(args, X.shape[1], n_out, task)
    loss = "cross_entropy" if task == "classification" else "mse"
    n_val = len(val_idx)
    say(f"training on {len(train_idx)} samples of {X.shape[1]} features"
        + (f", validating on {n_val}" if n_val else "") + f" from {args.data}")
    say(net)
    try:
        trainer = bx.Trainer(net, loss=loss, optimizer=bx.Adam(lr=args.lr), batch_size=args.batch_size,
                             seed=args.seed, l2=args.l2, distributed=group)
    except (ValueError, TypeError, MemoryError, OverflowError) as exc:
        raise UsageError(f"cannot train with these options: {exc}") from None
    callbacks: list[Any] = []
    stopper = None
    if n_val and args.early_stopping:
        stopper = bx.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)
        callbacks.append(stopper)
    if args.log is not None:
        callbacks.append(bx.CSVLogger(args.log))
    validation = (Xs[val_idx], fit_targets[val_idx]) if n_val else None
    try:
        history = trainer.fit(Xs[train_idx], fit_targets[train_idx], epochs=args.epochs,
                              validation_data=validation, verbose=0 if args.quiet or not speaker else 1,
                              callbacks=callbacks)
    except bx.NonFiniteError as exc:
        raise Failure(f"training diverged: {exc}; try a smaller --lr") from None
    except MemoryError as exc:
        raise UsageError(f"not enough memory to train with --batch-size {args.batch_size}: {exc}") from None
    if stopper is not None and stopper.stopped_epoch and len(train_idx) < SMALL_TABLE \
            and stopper.best_epoch <= max(3, len(history) // 4):
        say(f"hint: validation loss was lowest at epoch {stopper.best_epoch} of {len(history)}: the network "
            f"may be too large for {len(train_idx)} rows; try --l2 (e.g. 10), --dropout 0.2 or a smaller "
            "--hidden")

    sample = train_idx[:4096]
    before = net.predict(Xs[sample])
    fold_scaling(net, x_mean, x_scale, y_mean, y_scale)
    check_fold(net, before, X[sample], y_mean, y_scale, data.input_names)

    for name, idx in (("training", train_idx), ("validation", val_idx)):
        if len(idx) == 0:
            continue
        pred = net.predict(X[idx])
        if task == "classification":
            accuracy = float(np.mean(pred.argmax(axis=1) == targets[idx]))
            say(f"{name} accuracy: {accuracy:.2%} on {len(idx)} samples")
        else:
            say(regression_report(name, pred, targets[idx]))
    try:
        if speaker:
            net.save(args.out, extra_metadata=extra)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    say(f"model saved to {os.path.abspath(args.out)}")
    if args.log is not None:
        say(f"learning curves written to {os.path.abspath(args.log)}")
    if args.plot is not None and speaker:
        history.plot(args.plot)
        say(f"learning curves plotted to {os.path.abspath(args.plot)}")
    return 0


def regression_report(name: str, pred: np.ndarray, y: np.ndarray) -> str:
    err = pred - y
    rmse = float(np.sqrt(np.mean(err ** 2)))
    ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum(err ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return f"{name} RMSE: {rmse:.6g}, R^2: {r2:.4f} on {len(y)} samples"
