"""The command line on real tables, end to end: --delimiter (and its hint),
one-hot text columns, --missing, --id, --ignore, early stopping by default,
--l2, --dropout, --threads, --log, --plot; the diabetes table no longer
overfits with the defaults."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backpropx as bx
from backpropx.cli import main


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backpropx", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write_csv(path: Path, header, rows, delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_output(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def pets(n: int = 240, seed: int = 0):
    """weight (number) and colour (text) decide the class; an id column; a note column to ignore."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n)
    weight = rng.normal(10, 3, n)
    label = np.where((colour == "red") | (weight > 12), "cat", "dog")
    ids = [f"{i:05d}" for i in range(n)]
    notes = [f"free text {i}" for i in range(n)]
    return ids, weight, colour, notes, label


@pytest.fixture
def pets_csv(tmp_path):
    ids, weight, colour, notes, label = pets()
    write_csv(tmp_path / "pets.csv", ["id", "weight", "colour", "note", "kind"],
              zip(ids, [f"{w:.3f}" for w in weight], colour, notes, label))
    return tmp_path


def train(cwd: Path, *args: str) -> int:
    return main(["train", *[str(cwd / a) if a.endswith((".csv", ".safetensors", ".png")) else a for a in args]])


# ---- one-hot, id, ignore ---------------------------------------------------------
def test_text_features_one_hot_with_id_carried_through(pets_csv, capsys):
    d = pets_csv
    assert train(d, "pets.csv", "--target", "kind", "--id", "id", "--ignore", "note", "--hidden", "16",
                 "--lr", "1e-2", "--epochs", "60", "--out", "m.safetensors") == 0
    out = capsys.readouterr().out
    assert "one-hot encoded text column(s) 'colour' into 3 inputs" in out
    net = bx.Network.load(d / "m.safetensors")
    assert net.feature_names == ["weight", "colour=blue", "colour=green", "colour=red"]
    assert net.classes == ["cat", "dog"] and net.metadata["id_column"] == "id"
    # New rows: another column order, an unseen colour, ids with leading zeros kept as text.
    write_csv(d / "new.csv", ["colour", "id", "weight"], [["red", "00007", "5"], ["purple", "x-1", "20"],
                                                         ["green", "0042", "5"]])
    assert main(["predict", "--model", str(d / "m.safetensors"), str(d / "new.csv"), "--proba"]) == 0
    captured = capsys.readouterr()
    assert "note: column 'colour' holds 1 value(s) not seen in training ('purple')" in captured.err
    header, rows = read_output(captured.out)
    assert header == ["id", "prediction", "proba_cat", "proba_dog"]
    assert [r[0] for r in rows] == ["00007", "x-1", "0042"]
    assert [r[1] for r in rows] == ["cat", "cat", "dog"]
    # The model itself takes the one-hot inputs the CLI built.
    inputs = np.array([[5, 0, 0, 1], [20, 0, 0, 0], [5, 0, 1, 0]], dtype=float)
    np.testing.assert_allclose(net.predict(inputs)[:, 0], [float(r[2]) for r in rows], rtol=1e-6)
    assert list(net.predict_classes(inputs)) == ["cat", "cat", "dog"]


def test_predict_id_option_and_a_missing_id_column(pets_csv, capsys):
    d = pets_csv
    assert train(d, "pets.csv", "--target", "kind", "--ignore", "id,note", "--epochs", "2", "--quiet",
                 "--out", "m.safetensors") == 0
    assert main(["predict", "--model", str(d / "m.safetensors"), str(d / "pets.csv"), "--id", "note"]) == 0
    header, rows = read_output(capsys.readouterr().out)
    assert header == ["note", "prediction"] and rows[3][0] == "free text 3"
    assert main(["predict", "--model", str(d / "m.safetensors"), str(d / "pets.csv"), "--id", "nope"]) == 2
    assert "pets.csv has no column 'nope'" in capsys.readouterr().err


def test_identifier_like_text_column_is_refused_with_a_hint(pets_csv, capsys):
    assert train(pets_csv, "pets.csv", "--target", "kind", "--ignore", "id", "--out", "m.safetensors") == 2
    assert re.search(r"column 'note' has 2\d\d distinct text values.*pass --id note", capsys.readouterr().err)


# ---- delimiter ------------------------------------------------------------------------
def test_delimiter_and_the_hint_when_it_is_wrong(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 2))
    write_csv(tmp_path / "semi.csv", ["a", "b", "y"], [[f"{a:.4f}", f"{b:.4f}", int(a > b)] for a, b in X],
              delimiter=";")
    assert train(tmp_path, "semi.csv", "--target", "y", "--out", "m.safetensors") == 2
    assert "the header is one column, 'a;b;y', which contains ';'" in capsys.readouterr().err
    assert train(tmp_path, "semi.csv", "--target", "y", "--delimiter", ";", "--epochs", "3", "--quiet",
                 "--out", "m.safetensors") == 0
    assert main(["predict", "--model", str(tmp_path / "m.safetensors"), str(tmp_path / "semi.csv"),
                 "--delimiter", ";"]) == 0
    assert len(read_output(capsys.readouterr().out)[1]) == 120
    # Mixed separators: the header splits, but a name still holds ';'.
    write_csv(tmp_path / "mixed.csv", ["a", "b;y"], [[1, "2;0"], [2, "3;1"]])
    assert train(tmp_path, "mixed.csv", "--target", "y", "--out", "m.safetensors") == 2
    assert ("has no column 'y'; its columns are 'a', 'b;y' (the column name 'b;y' contains ';': if the file is "
            "separated by ';', pass --delimiter ';')") in capsys.readouterr().err


# ---- missing values -------------------------------------------------------------------
@pytest.fixture
def holes_csv(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 2))
    rows = [[f"{a:.4f}", f"{b:.4f}", int(a + b > 0)] for a, b in X]
    rows[5][1] = ""       # line 7: a missing feature
    rows[9][0] = "NA"     # line 11
    rows[12][2] = "?"     # line 14: a missing target
    write_csv(tmp_path / "holes.csv", ["a", "b", "y"], rows)
    return tmp_path


def test_missing_values_error_by_default_naming_line_and_column(holes_csv, capsys):
    assert train(holes_csv, "holes.csv", "--target", "y", "--out", "m.safetensors") == 2
    assert "holes.csv, line 7: column 'b' has an empty (missing) value; use --missing drop" in \
        capsys.readouterr().err


def test_missing_drop_and_impute(holes_csv, capsys):
    d = holes_csv
    assert train(d, "holes.csv", "--target", "y", "--missing", "drop", "--epochs", "2",
                 "--out", "drop.safetensors") == 0
    out = capsys.readouterr().out
    assert "skipped 1 rows without a target value" in out
    assert "skipped 2 rows with missing feature values (--missing drop)" in out
    assert "training on 178 samples of 2 features, validating on 19" in out
    assert train(d, "holes.csv", "--target", "y", "--missing", "impute", "--epochs", "2",
                 "--out", "impute.safetensors") == 0
    assert "training on 180 samples of 2 features, validating on 19" in capsys.readouterr().out
    columns = json.loads(bx.Network.load(d / "impute.safetensors").metadata["columns"])
    assert [c["kind"] for c in columns] == ["number", "number"] and all(np.isfinite(c["fill"]) for c in columns)
    # predict: an impute-trained model fills missing cells; the others ask for --missing impute.
    assert main(["predict", "--model", str(d / "impute.safetensors"), str(d / "holes.csv")]) == 0
    assert len(read_output(capsys.readouterr().out)[1]) == 200
    assert main(["predict", "--model", str(d / "drop.safetensors"), str(d / "holes.csv")]) == 2
    err = capsys.readouterr().err
    assert "line 7: column 'b' has an empty (missing) value; use --missing impute" in err and "--missing drop" not in err
    assert main(["predict", "--model", str(d / "drop.safetensors"), str(d / "holes.csv"), "--missing",
                 "impute"]) == 0


# ---- training options -----------------------------------------------------------------
def noisy_regression(tmp_path, n=300):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 5))
    y = X[:, 0] + rng.standard_normal(n)
    return write_csv(tmp_path / "noisy.csv", [*"abcde", "y"], [[*map("{:.5f}".format, r), f"{t:.5f}"]
                                                               for r, t in zip(X, y)])


def test_early_stopping_is_on_by_default_and_logs_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    noisy_regression(tmp_path)
    assert train(tmp_path, "noisy.csv", "--target", "y", "--log", "curves.csv", "--plot", "curves.png",
                 "--out", "m.safetensors") == 0
    out = capsys.readouterr().out
    assert "validating on 30" in out and "early stopping after epoch" in out and "restored the weights of epoch" in out
    with open(tmp_path / "curves.csv") as f:
        log = list(csv.DictReader(f))
    assert 10 < len(log) < 200 and {"epoch", "loss", "val_loss", "lr"} <= set(log[0])
    best = min(range(len(log)), key=lambda i: float(log[i]["val_loss"]))
    assert f"restored the weights of epoch {best + 1} " in out
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert f"learning curves written to {tmp_path / 'curves.csv'}" in out
    # Without early stopping every epoch runs.
    assert train(tmp_path, "noisy.csv", "--target", "y", "--no-early-stopping", "--epochs", "7", "--log",
                 "curves.csv", "--quiet", "--out", "m.safetensors") == 0
    with open(tmp_path / "curves.csv") as f:
        assert len(list(csv.DictReader(f))) == 7


def test_l2_dropout_and_threads(tmp_path, restore_threads):
    noisy_regression(tmp_path)
    norms = {}
    for l2 in ("0", "30"):
        assert train(tmp_path, "noisy.csv", "--target", "y", "--l2", l2, "--no-early-stopping", "--epochs", "10",
                     "--quiet", "--threads", "1", "--out", f"l2_{l2}.safetensors") == 0
        net = bx.Network.load(tmp_path / f"l2_{l2}.safetensors")
        norms[l2] = float(np.linalg.norm(net.layers[1].weight))
    assert bx.get_num_threads() == 1
    assert norms["30"] < 0.8 * norms["0"]
    assert train(tmp_path, "noisy.csv", "--target", "y", "--dropout", "0.3", "--hidden", "8,4", "--epochs", "2",
                 "--quiet", "--out", "drop.safetensors") == 0
    kinds = [type(layer).__name__ for layer in bx.Network.load(tmp_path / "drop.safetensors").layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]


@pytest.mark.parametrize("option, value, message", [
    ("--threads", "0", "--threads: expected a number of threads from 1 to 1024"),
    ("--threads", "5000", "--threads: expected a number of threads from 1 to 1024"),
    ("--l2", "-1", "--l2: expected a non-negative number"),
    ("--dropout", "1", "--dropout: expected a number in [0, 1)"),
    ("--delimiter", ";;", "--delimiter: expected one character"),
    ("--missing", "guess", "--missing: invalid choice"),
    ("--patience", "-2", "--patience: expected a non-negative integer"),
])
def test_bad_new_options(tmp_path, capsys, option, value, message):
    noisy_regression(tmp_path)
    assert train(tmp_path, "noisy.csv", "--target", "y", option, value) == 2
    assert message in capsys.readouterr().err


def test_too_few_rows_for_the_default_split_trains_without_it(tmp_path, capsys):
    write_csv(tmp_path / "few.csv", ["a", "y"], [[1, 0], [2, 1], [3, 0], [4, 1], [5, 0], [6, 1]])
    assert train(tmp_path, "few.csv", "--target", "y", "--epochs", "2", "--out", "m.safetensors") == 0
    assert "6 rows are too few to hold out a validation split: no early stopping" in capsys.readouterr().out
    assert train(tmp_path, "few.csv", "--target", "y", "--validation-split", "0.1", "--out", "m.safetensors") == 2
    assert "--validation-split 0.1 leaves 0 of 6 samples" in capsys.readouterr().err


# ---- diabetes: the defaults no longer overfit ---------------------------------------------
@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
    order = np.random.default_rng(0).permutation(len(y))
    test, fit = order[:110], order[110:]
    root = tmp_path_factory.mktemp("diabetes")
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    write_csv(root / "fit.csv", [*names, "progression"], [[*r, t] for r, t in zip(X[fit], y[fit])])
    write_csv(root / "test.csv", names, X[test])
    return root, y[test]


def test_r2(root: Path, y_test: np.ndarray, *options: str) -> float:
    model = str(root / "m.safetensors")
    assert main(["train", str(root / "fit.csv"), "--target", "progression", "--quiet", "--out", model,
                 *options]) == 0
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        assert main(["predict", "--model", model, str(root / "test.csv")]) == 0
    pred = np.array([float(r[0]) for r in read_output(out.getvalue())[1]])
    return 1 - np.sum((pred - y_test) ** 2) / np.sum((y_test - y_test.mean()) ** 2)


test_r2.__test__ = False   # a helper, not a test


def test_diabetes_defaults_no_longer_overfit(diabetes):
    root, y_test = diabetes
    old_20 = test_r2(root, y_test, "--validation-split", "0", "--epochs", "20")    # the old defaults
    old_100 = test_r2(root, y_test, "--validation-split", "0", "--epochs", "100")
    new = test_r2(root, y_test)                                                    # early stopping
    new_long = test_r2(root, y_test, "--epochs", "1000")
    regularised = test_r2(root, y_test, "--l2", "10")
    figures = (old_20, old_100, new, new_long, regularised)
    assert old_100 < old_20 - 0.1, figures              # the old defaults overfit with more epochs
    assert new > old_100 + 0.1 and new > old_20 - 0.05, figures   # early stopping keeps the good epoch
    assert new_long == new, figures                     # whatever the epoch budget
    assert regularised > 0.45, figures                  # --l2 does better still (ridge: 0.49)
