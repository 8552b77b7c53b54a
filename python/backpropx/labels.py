"""Class labels: the vocabulary that maps a network's outputs to user labels.

A classifier's output k stands for ``classes[k]``. The classes are stored in a
network's ``metadata["classes"]`` as a JSON list (the key and format the
command line writes), so they travel with ``Network.save``/``load``, and
``Trainer.fit``, ``Trainer.evaluate``, ``Network.predict_classes`` and
``backpropx predict`` agree on them.

Labels are JSON values: strings, or numbers (whole numbers as int). Once a
network has classes, 1-d targets are read as labels from that list (so a
model trained on labels 3, 5, 7 is evaluated with labels 3, 5, 7, not codes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CLASSES_KEY = "classes"
FEATURES_KEY = "feature_names"


def label_value(v: Any) -> Any:
    """A class label as a JSON value: int for whole numbers, float, or str."""
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8", "replace")
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"class labels must be strings or numbers, got {v!r} ({type(v).__name__})") from None
    if not np.isfinite(f):
        raise ValueError(f"class labels must be finite, got {v!r}")
    return int(f) if f == round(f) and abs(f) < 2**53 else f


def is_label_array(y: Any) -> bool:
    """True for targets that can only be class labels: 1-d text or objects."""
    arr = y if isinstance(y, np.ndarray) else None
    if arr is None:
        if not isinstance(y, Sequence) or isinstance(y, (str, bytes)) or not len(y):
            return False
        if not any(isinstance(v, (str, bytes, np.str_, np.bytes_)) for v in y):
            return False
        arr = np.asarray(y, dtype=object)
    return arr.ndim == 1 and arr.dtype.kind in "USO"


def classes_of(y: Any, name: str = "y") -> list[Any]:
    """The sorted distinct labels of `y` as JSON values; TypeError for unorderable mixes."""
    values = [label_value(v) for v in np.asarray(y, dtype=object).reshape(-1)]
    try:
        return sorted(set(values))
    except TypeError:
        kinds = sorted({type(v).__name__ for v in values})
        raise TypeError(f"{name} mixes label types ({', '.join(kinds)}); use one type for all labels") from None


def encode(y: Any, classes: Sequence[Any], name: str = "y") -> np.ndarray:
    """Codes (int64) of the labels `y` in `classes`; ValueError naming a label not in it."""
    arr = np.asarray(y, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name} holds class labels, which must be one per sample (1-d), got shape {arr.shape}")
    fast = _encode_sorted(y, classes)
    if fast is not None:
        return fast
    index = {label: k for k, label in enumerate(classes)}
    codes = np.empty(arr.shape[0], dtype=np.int64)
    for i, v in enumerate(arr):
        k = index.get(label_value(v))
        if k is None:
            shown = ", ".join(repr(c) for c in list(classes)[:10]) + (" ..." if len(classes) > 10 else "")
            raise ValueError(f"{name}[{i}] is {v!r}, which is not one of the network's classes [{shown}]")
        codes[i] = k
    return codes


def _encode_sorted(y: Any, classes: Sequence[Any]) -> np.ndarray | None:
    """Vectorised `encode` for text labels against text classes and numbers
    against numbers, when every label is found; None otherwise (the loop then
    runs and names the first label that is missing)."""
    arr = np.asarray(y)
    if arr.ndim != 1 or not len(classes):
        return None
    if arr.dtype.kind == "U" and all(isinstance(c, str) for c in classes):
        table = np.asarray(classes, dtype=str)
    elif arr.dtype.kind in "iuf" and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        table = np.asarray(classes, dtype=np.float64)
        arr = arr.astype(np.float64)
    else:
        return None
    order = np.argsort(table, kind="stable")
    pos = np.minimum(np.searchsorted(table[order], arr), len(table) - 1)
    if not np.array_equal(table[order][pos], arr):
        return None
    return order[pos].astype(np.int64)


def classes_from_metadata(metadata: Mapping[str, str]) -> list[Any] | None:
    """The class list in a network's metadata, or None; ValueError if it is damaged."""
    return _json_list(metadata, CLASSES_KEY)


def feature_names_from_metadata(metadata: Mapping[str, str]) -> list[str] | None:
    names = _json_list(metadata, FEATURES_KEY)
    if names is not None and not all(isinstance(n, str) for n in names):
        raise ValueError(f"metadata[{FEATURES_KEY!r}] must be a JSON list of strings")
    return names


def _json_list(metadata: Mapping[str, str], key: str) -> list[Any] | None:
    if key not in metadata:
        return None
    try:
        value = json.loads(metadata[key])
    except (TypeError, ValueError, RecursionError):
        raise ValueError(f"metadata[{key!r}] is not valid JSON: {str(metadata[key])[:80]!r}") from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ValueError(f"metadata[{key!r}] must be a JSON list of strings or numbers")
    if len(set(map(json.dumps, value))) != len(value):
        raise ValueError(f"metadata[{key!r}] lists a value twice")
    return value


def resolve_labels(y: Any, loss: str, n_outputs: int, classes: list[Any] | None,
                   name: str = "y", learn: bool = False) -> tuple[Any, list[Any] | None]:
    """Targets for the core and the classes they use.

    With `classes` (the network's), 1-d targets of a classification loss are
    labels from that list and become their codes. Without, text labels define
    new classes when `learn` (training data: sorted, one per output; two for
    a single sigmoid output) and are an error otherwise (evaluation data of a
    network that has no classes); numeric targets pass unchanged (class
    indices, values or probabilities).
    """
    if loss == "mse":
        if is_label_array(y):
            raise TypeError(f"{name} holds text labels, but mse needs numeric targets "
                            "(use loss='cross_entropy' to learn classes)")
        return y, classes
    if classes is None:
        if not is_label_array(y):
            return y, None
        if not learn:
            raise ValueError(f"{name} holds text labels, but the network has no classes (it learns them from "
                             "the text labels given to Trainer.fit)")
        classes = classes_of(y, name)
        expected = 2 if n_outputs == 1 else n_outputs
        if len(classes) != expected:
            shown = ", ".join(repr(c) for c in classes[:10]) + (" ..." if len(classes) > 10 else "")
            raise ValueError(f"{name} has {len(classes)} distinct labels ({shown}) but the network has "
                             f"{n_outputs} output{'s' if n_outputs > 1 else ''}: it needs "
                             + ("2 labels for its one output" if n_outputs == 1 else "one output per class"))
    try:
        ndim = np.ndim(y)
    except ValueError:   # ragged: as_targets names the problem
        return y, classes
    return (encode(y, classes, name) if ndim == 1 else y), classes
