"""Model files of the command line: loading one (a clear message for a file
that is not a model at all) and reading what `train` recorded in its
metadata, every entry checked before use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..labels import classes_from_metadata, feature_names_from_metadata
from ..tabular import Encoding
from ..tabular.encoding import MISSING_POLICIES
from .data import check_regular_file
from .errors import UsageError

CLI_FORMAT = "2"   # version of the metadata `train` writes: "1" had no column descriptions


def load_model(path: str) -> tuple[Any, dict[str, str]]:
    from ..io import load_network_with_metadata

    check_regular_file(path, "model ")
    _check_safetensors(path)
    try:
        return load_network_with_metadata(path)
    except OSError as exc:
        raise UsageError(f"cannot read model {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise UsageError(f"{path} is not a usable backpropx model: {exc}") from None


def _check_safetensors(path: str) -> None:
    """A safetensors file opens with its header's length (8 bytes, little
    endian) and the header itself, a JSON object: anything else is some other
    kind of file, and saying so beats a message about its first 8 bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            f.seek(0, 2)
            size = f.tell()
    except OSError as exc:
        raise UsageError(f"cannot read model {path}: {exc.strerror or exc}") from None
    length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
    if len(head) < 9 or head[8:9] != b"{" or not 2 <= length <= size - 8:
        raise UsageError(f"{path} is not a safetensors file (a model saved by `backpropx train` or "
                         "Network.save)")


@dataclass
class ModelInfo:
    task: str
    classes: list[Any] | None
    encoding: Encoding | None        # CSV columns -> inputs; None: inputs taken as they are
    id_column: str | None
    missing: str


def model_info(net: Any, extra: dict[str, str], path: str) -> ModelInfo:
    """What `train` recorded, checked against the network; a model saved from
    Python (no such metadata) is a classifier when its last layer is softmax."""
    task = extra.get("task")
    if task is None:   # saved from Python: classes (Trainer.fit on text labels) or softmax mean classes
        softmax = getattr(net.layers[-1], "activation", None) == "softmax"
        task = "classification" if softmax or "classes" in extra else "regression"
    if task not in ("classification", "regression"):
        raise UsageError(f"{path} records an unknown task {task[:40]!r}")
    try:
        classes = classes_from_metadata(extra)
        names = feature_names_from_metadata(extra)
        encoding = Encoding.from_json(extra["columns"]) if "columns" in extra else None
    except ValueError as exc:
        raise UsageError(f"{path} has damaged metadata: {exc}") from None
    if task == "classification":
        outputs = 2 if net.out_features == 1 else net.out_features
        if classes is None:
            classes = list(range(outputs))
        if len(classes) != outputs:
            raise UsageError(f"{path}: its metadata lists {len(classes)} classes for a model with "
                             f"{net.out_features} outputs")
    if encoding is None and names is not None:
        encoding = Encoding.numbers(names)          # format 1: numeric columns by name
    if encoding is not None and len(encoding.input_names()) != net.in_features:
        raise UsageError(f"{path}: its metadata describes {len(encoding.input_names())} inputs for a model "
                         f"with {net.in_features}")
    id_column = extra.get("id_column")
    missing = extra.get("missing", "error")
    if missing not in MISSING_POLICIES:
        raise UsageError(f"{path} records an unknown missing-value policy {missing[:40]!r}")
    return ModelInfo(task, classes, encoding, id_column, missing)
