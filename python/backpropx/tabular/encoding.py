"""From table columns to the numeric inputs of a network, and back again at
prediction time.

Each feature column gets a ColumnSpec, fitted on the training rows:
- "number": the values as they are; `fill` (the training mean) replaces a
  missing value when missing values are imputed;
- "one_hot": a text column (most of its cells are not numbers) becomes one
  0/1 input per category seen in training, sorted; a missing value, or at
  prediction time a category never seen in training, gives all zeros.

The specs are saved in the model's metadata (`Encoding.to_json`), so
``backpropx predict`` rebuilds exactly the inputs the network was trained on,
picking the columns by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import TableError
from .table import Column, Table

MISSING_POLICIES = ("error", "drop", "impute")
MAX_CATEGORIES = 100     # more distinct texts than this: an identifier or free text, not a category


@dataclass
class ColumnSpec:
    name: str
    kind: str                                   # "number" or "one_hot"
    fill: float = 0.0                           # number: the training mean (imputation)
    categories: list[str] = field(default_factory=list)   # one_hot

    def input_names(self) -> list[str]:
        return [self.name] if self.kind == "number" else [f"{self.name}={c}" for c in self.categories]

    def to_json(self) -> dict[str, Any]:
        if self.kind == "number":
            return {"name": self.name, "kind": "number", "fill": self.fill}
        return {"name": self.name, "kind": "one_hot", "categories": self.categories}

    @classmethod
    def from_json(cls, d: Any) -> ColumnSpec:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or d.get("kind") not in ("number", "one_hot"):
            raise ValueError(f"a column description must be an object with a name and a kind, got {str(d)[:80]}")
        if d["kind"] == "number":
            fill = d.get("fill", 0.0)
            if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill):
                raise ValueError(f"column {d['name']!r}: fill must be a finite number")
            return cls(d["name"], "number", fill=float(fill))
        categories = d.get("categories")
        if (not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories)
                or len(set(categories)) != len(categories)):
            raise ValueError(f"column {d['name']!r}: categories must be a list of distinct strings")
        return cls(d["name"], "one_hot", categories=list(categories))


@dataclass
class Encoding:
    specs: list[ColumnSpec]

    @property
    def columns(self) -> list[str]:
        return [s.name for s in self.specs]

    def input_names(self) -> list[str]:
        return [name for s in self.specs for name in s.input_names()]

    def to_json(self) -> str:
        return json.dumps([s.to_json() for s in self.specs])

    @classmethod
    def from_json(cls, text: str) -> Encoding:
        try:
            items = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            raise ValueError("the column descriptions are not valid JSON") from None
        if not isinstance(items, list) or not items:
            raise ValueError("the column descriptions must be a non-empty list")
        specs = [ColumnSpec.from_json(item) for item in items]
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("a column is described twice")
        return cls(specs)

    @classmethod
    def numbers(cls, names: list[str]) -> Encoding:
        """All-numeric columns (models from before one-hot encoding, .npz data)."""
        return cls([ColumnSpec(name, "number") for name in names])

    def transform(self, table: Table, rows: np.ndarray, impute: bool) -> tuple[np.ndarray, dict[str, list[str]]]:
        """Inputs (len(rows), n_inputs) float64 of the given data rows, and per
        one-hot column the categories not seen in training (their rows get
        zeros). Missing values are filled when `impute`, else a TableError."""
        if not impute:   # the first row with a missing value, in any column
            firsts = [(int(rows[np.argmax(m)]), spec.name) for spec in self.specs
                      if (m := table.columns[spec.name].missing[rows]).any()]
            if firsts:
                row, name = min(firsts)
                raise missing_error(table, name, row)
        width = len(self.input_names())
        X = np.zeros((len(rows), width))
        unseen: dict[str, list[str]] = {}
        j = 0
        for spec in self.specs:
            column = table.columns[spec.name]
            missing = column.missing[rows]
            if spec.kind == "number":
                if column.text is not None:
                    bad = ~missing & ~column.number_cells()[rows]
                    if bad.any():
                        row = int(rows[np.argmax(bad)])
                        raise TableError(f"{where(table, row)}: column {spec.name!r} has {column.text[row]!r}; "
                                         "the model takes a number there")
                values = column.numbers[rows]
                X[:, j] = np.where(missing, spec.fill, values)
                j += 1
            else:
                cells = cell_texts(column)[rows]
                index = {c: k for k, c in enumerate(spec.categories)}
                codes = np.fromiter((index.get(c, -1) for c in cells), dtype=np.int64, count=len(rows))
                known = codes >= 0
                new = sorted({c for c, m, k in zip(cells, missing, known) if not k and not m})
                if new:
                    unseen[spec.name] = new
                X[np.nonzero(known)[0], j + codes[known]] = 1.0
                j += len(spec.categories)
        return X, unseen


def where(table: Table, row: int) -> str:
    return f"{table.path}, line {table.line_of(row)}"


def missing_error(table: Table, name: str, row: int) -> TableError:
    return TableError(f"{where(table, row)}: column {name!r} has an empty (missing) value; use --missing drop "
                      "(skip such rows) or --missing impute (fill in the training mean, or no category)")


def cell_texts(column: Column) -> np.ndarray:
    """Every cell as text: a one-hot column's cells, or a numeric column's
    numbers written as text (so a category such as '3' matches)."""
    if column.text is not None:
        return column.text
    return np.array(["" if m else _number_text(v) for v, m in zip(column.numbers, column.missing)], dtype=object)


def _number_text(v: float) -> str:
    return str(int(v)) if v == round(v) and abs(v) < 2**53 else repr(float(v))


def fit_encoding(table: Table, names: list[str], rows: np.ndarray) -> Encoding:
    """ColumnSpecs of the feature columns `names`, fitted on data rows `rows`."""
    specs = []
    for name in names:
        column = table.columns[name]
        present = ~column.missing
        numeric = column.number_cells()
        n_numbers, n_texts = int(numeric.sum()), int((present & ~numeric).sum())
        if n_texts == 0:
            specs.append(ColumnSpec(name, "number", fill=_mean(column, rows)))
            continue
        if n_numbers >= n_texts:   # a number column with a stray word: a typo or an unknown missing marker
            row = int(np.argmax(present & ~numeric))
            raise TableError(f"{where(table, row)}: column {name!r} has {column.text[row]!r}; its other values "
                             "are numbers, and every value must be one (or a missing-value marker: empty, NA, ?)")
        categories = sorted({t for t in column.text[rows] if t != ""})
        if not categories:
            raise TableError(f"{table.path}: text column {name!r} has no values in the training rows")
        if len(categories) > MAX_CATEGORIES:
            raise TableError(f"{table.path}: column {name!r} has {len(categories):,} distinct text values; a "
                             "column like that (names, identifiers, free text) cannot be one-hot encoded: pass "
                             f"--id {name} to carry it to the predictions, or --ignore {name}")
        specs.append(ColumnSpec(name, "one_hot", categories=categories))
    return Encoding(specs)


def _mean(column: Column, rows: np.ndarray) -> float:
    values = column.numbers[rows]
    values = values[~column.missing[rows]]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    # Scaled, so that values near the float64 limit do not overflow the sum.
    big = float(np.max(np.abs(values)))
    return float(np.mean(values / big) * big) if big > 0 else 0.0
