"""The ``backpropx`` command line: train, predict, info and the digits demo.

Exit codes: 0 success, 2 usage or data errors (bad options, unreadable or
malformed files, missing columns, values that do not fit), 1 unexpected
failures (and training that diverges). Errors go to stderr as one line naming
the problem; unexpected ones add a traceback.

Under ``mpiexec -n N`` (N > 1), ``train`` trains one model data-parallel on
all N processes (README, "Distributed training"): rank 0 prints and saves;
a failure on any process ends all of them with its message.

Models written by ``train`` are ordinary backpropx .safetensors files whose
first layer takes the raw (unscaled) features: the standardization used for
training is folded into the first layer's weights (and, for regression, the
target scaling into the last layer's), so ``Network.load`` + ``predict``,
``to_torch`` and ``to_onnx`` all see the same model as ``predict`` here. The
header's metadata (``Network.metadata``) records the task, the class labels,
the input names, how each CSV column becomes inputs (numbers or one-hot
categories, with the values that fill missing cells), the target and the id
column. The commands live in backpropx.commands; this module parses options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from typing import Any

import numpy as np

from .commands import options
from .commands.errors import Failure, UsageError
from .commands.model_file import CLI_FORMAT
from .commands.predict import cmd_predict
from .commands.train import MAX_AUTO_CLASSES, check_writable, cmd_train
from .distributed import DistributedError

COMMANDS = ("train", "predict", "info", "demo")

__all__ = ["CLI_FORMAT", "COMMANDS", "Failure", "UsageError", "build_parser", "demo", "main"]


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
    check_writable(args.out)
    demo(args.out, args.epochs, args.seed, 0 if args.quiet else 1)
    return 0


# ---- parser and entry point ------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported in one line (with where to look)
    instead of the whole usage block, as every other error of the command line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def add_table_options(parser: argparse.ArgumentParser) -> None:
    from .tabular import READERS

    parser.add_argument("--delimiter", type=options.delimiter, default=",", metavar="CHAR",
                        help="the CSV field separator (default ','; 'tab' for tabs)")
    parser.add_argument("--reader", choices=("auto", *READERS), default="auto",
                        help="CSV reader: pyarrow's (fast; pip install pyarrow) or our own; auto takes the "
                             "fastest installed. Both give the same result")
    parser.add_argument("--threads", type=options.threads, metavar="N",
                        help="threads of the C++ core (default: OMP_NUM_THREADS or the number of processors)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .layers import ACTIVATIONS
    from .tabular.encoding import MISSING_POLICIES
    from .tabular.table import MISSING_MARKERS

    markers = ", ".join(repr(m) for m in sorted(MISSING_MARKERS))
    parser = Parser(
        prog="backpropx",
        description="Train dense neural networks by backpropagation (C++ core) and predict with them. "
                    "Without a command, runs the digits demo (the same as `backpropx demo`).",
        epilog="examples:\n"
               "  backpropx train data.csv --target label --hidden 128,64 --out model.safetensors\n"
               "  backpropx train houses.csv --target price --id address --missing impute --l2 1 "
               "--log curves.csv --plot curves.png\n"
               "  backpropx predict --model model.safetensors new.csv --out predictions.csv\n"
               "  backpropx info\n"
               "exit codes: 0 success, 2 usage or data error, 1 unexpected failure",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"backpropx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train = sub.add_parser(
        "train", help="train a network on a CSV or .npz file and save it",
        description="Train a network on a CSV file (header row; --target names the column to predict, the "
                    "other columns are features: numbers, or text categories, which are one-hot encoded) or "
                    "an .npz file (arrays X and y), and save it as .safetensors. Features (and regression "
                    "targets) are standardized for training; the scaling is folded into the saved weights. "
                    "By default a tenth of the rows is held out and training stops when the validation loss "
                    "has not improved for --patience epochs, keeping the best epoch's weights. Missing "
                    f"values are the cells {markers}.")
    train.add_argument("data", help="training data: a .csv with a header row, or an .npz with X and y")
    train.add_argument("--target", metavar="COLUMN", help="the CSV column to predict (required for CSV)")
    train.add_argument("--id", metavar="COLUMN", help="an identifier column: not a feature; `predict` "
                                                      "copies it into the predictions")
    train.add_argument("--ignore", type=options.column_list, metavar="COL1,COL2",
                       help="columns that are not features")
    train.add_argument("--task", choices=("classification", "regression"),
                       help="default: classification when the target is text or integer-valued with at most "
                            f"{MAX_AUTO_CLASSES} distinct values, else regression")
    train.add_argument("--hidden", type=options.hidden, default=[128, 64], metavar="W1,W2,...",
                       help="hidden layer widths (default 128,64; 'none' for no hidden layer)")
    train.add_argument("--activation", default="relu",
                       choices=[a for a in ACTIVATIONS if a not in ("softmax",)],
                       help="activation of the hidden layers (default relu)")
    train.add_argument("--epochs", type=options.epochs, default=200,
                       help="at most this many epochs (default 200; early stopping usually ends sooner)")
    train.add_argument("--batch-size", type=options.batch_size, default=32, help="default 32")
    train.add_argument("--lr", type=options.positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    train.add_argument("--l2", type=options.non_negative_float, default=0.0, metavar="ALPHA",
                       help="L2 penalty on the weights, as scikit-learn's alpha (default 0; try 1 to 10 on "
                            "small tables)")
    train.add_argument("--dropout", type=options.fraction, default=0.0, metavar="P",
                       help="dropout after every hidden layer (default 0)")
    train.add_argument("--seed", type=options.seed, default=0, help="seeds the split, the weights and the shuffling")
    train.add_argument("--validation-split", type=options.fraction, default=None, metavar="FRACTION",
                       help="hold out this fraction of the (shuffled) rows for validation and early stopping "
                            "(default 0.1; 0 trains on every row for --epochs epochs)")
    train.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=True,
                       help="stop when the validation loss stops improving and keep the best weights "
                            "(default on)")
    train.add_argument("--patience", type=options.patience, default=10,
                       help="epochs without improvement before early stopping (default 10)")
    train.add_argument("--missing", choices=MISSING_POLICIES, default="error",
                       help="missing values: error (default), drop the rows, or impute (a feature's "
                            "training mean; no category for text). Rows without a target are skipped with "
                            "drop or impute")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--out", default="model.safetensors", help="where to save the model (default model.safetensors)")
    train.add_argument("--log", metavar="CURVES.csv", help="write the learning curves (one row per epoch) to a CSV")
    train.add_argument("--plot", metavar="CURVES.png", help="plot the learning curves (needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="print nothing but errors")
    add_table_options(train)
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser(
        "predict", help="predict with a saved model",
        description="Predict every row of a CSV (the columns the model was trained on, picked by name and "
                    "encoded as in training; other columns ignored) or an .npz (array X). Writes a CSV: the "
                    "id column when the model has one (or --id), then 'prediction' (class labels for "
                    "classifiers), with --proba one probability column per class.")
    predict.add_argument("data", help="input: a .csv with a header row, or an .npz with X")
    predict.add_argument("--model", required=True, help="a .safetensors model (from `train` or Network.save)")
    predict.add_argument("--out", help="output CSV (default: standard output)")
    predict.add_argument("--proba", action="store_true", help="add class probabilities (classifiers)")
    predict.add_argument("--id", metavar="COLUMN", help="copy this column into the predictions (default: the "
                                                        "model's id column, when the file has it)")
    predict.add_argument("--missing", choices=("error", "impute"), default=None,
                         help="missing values: error, or impute with the training means (default: impute "
                              "for models trained with --missing impute, else error)")
    add_table_options(predict)
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="version, GEMM kernel, threads and build information",
                          description="Print backpropx.config(): version, compiler, kernel, threads, CPUs.")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    demo_parser = sub.add_parser("demo", help="train a digit recogniser on the shipped 8x8 digits (default)",
                                 description="Train a recogniser of the shipped 8x8 handwritten digits, print "
                                             "its held-out accuracy and save it.")
    demo_parser.add_argument("--out", default="digits_model.safetensors", help="where to save the model")
    demo_parser.add_argument("--epochs", type=options.epochs, default=30)
    demo_parser.add_argument("--seed", type=options.seed, default=0)
    demo_parser.add_argument("--quiet", action="store_true")
    demo_parser.set_defaults(func=cmd_demo)
    return parser


def _launched_group() -> Any:
    """Every process of an `mpiexec -n N` launch with N > 1, which then train
    one model together; None otherwise. Automatic, because N copies of a
    single-process run would only race to write the same files."""
    from . import distributed

    try:
        return distributed.world()
    except ImportError as exc:
        raise UsageError(str(exc)) from None


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
    if args.command == "train":
        args.validation_split_given = args.validation_split is not None
        if args.validation_split is None:
            args.validation_split = 0.1
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
