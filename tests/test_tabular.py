"""backpropx.tabular: every CSV reader gives the same Table for the same file
(cell rules, missing markers, quoting, line numbers, errors), progress while
reading, and the column encoding the command line saves with a model."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from backpropx.tabular import Encoding, TableError, available_readers, fit_encoding, read_csv

READERS = available_readers()
needs_both = pytest.mark.skipif("pyarrow" not in READERS, reason="pyarrow not installed: nothing to compare")

TRICKY = (
    "\ufeffnum , text,mixed,empty,quoted\r\n"
    "1, a ,3,,\"x,y\"\r\n"
    "\r\n"
    "-.5e1,b,NA,,\"multi\nline\"\r\n"
    " 7 ,\"c\",?,NaN,plain\r\n"
    "+3,1_000,4,,\"\"\"q\"\"\"\r\n"
    "1e400,٣,5,,z\r\n"
    "0.25,inf,6, ,\r\n"
)


def write(tmp_path, text: str, name: str = "t.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def same_tables(a, b) -> None:
    assert a.header == b.header and a.n_rows == b.n_rows
    for name in a.header:
        ca, cb = a.columns[name], b.columns[name]
        np.testing.assert_array_equal(ca.missing, cb.missing, err_msg=name)
        np.testing.assert_array_equal(ca.numbers, cb.numbers, err_msg=name)
        assert (ca.text is None) == (cb.text is None), name
        if ca.text is not None:
            assert list(ca.text) == list(cb.text), name


@needs_both
def test_readers_agree_on_a_tricky_file(tmp_path):
    path = write(tmp_path, TRICKY)
    arrow, python = (read_csv(path, reader=r) for r in ("pyarrow", "python"))
    same_tables(arrow, python)
    t = python
    assert t.header == ["num", "text", "mixed", "empty", "quoted"] and t.n_rows == 6
    num = t.columns["num"]
    assert num.text is None and list(num.numbers[:4]) == [1.0, -5.0, 7.0, 3.0] and num.numbers[4] == np.inf
    assert list(t.columns["text"].text) == ["a", "b", "c", "1_000", "٣", "inf"]   # underscores, other digits: text
    assert list(t.columns["mixed"].missing) == [False, True, True, False, False, False]
    assert t.columns["empty"].missing.all()
    assert list(t.columns["quoted"].text) == ["x,y", "multi\nline", "plain", '"q"', "z", ""]
    assert [t.line_of(r) for r in range(6)] == [2, 4, 6, 7, 8, 9]


@needs_both
@pytest.mark.parametrize("seed", [0, 1])
def test_readers_agree_on_random_tables(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    cells = {
        "x": [repr(float(v)) for v in rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)],
        "k": [str(v) for v in rng.integers(-5, 5, n)],
        "color": list(rng.choice(["red", "green", "blue", "NA", ""], n)),
        "sparse": [("" if rng.random() < 0.3 else f"{rng.random():.4f}") for _ in range(n)],
    }
    text = "x,k,color,sparse\n" + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in zip(*cells.values()))
    path = write(tmp_path, text)
    arrow, python = (read_csv(path, reader=r) for r in ("pyarrow", "python"))
    same_tables(arrow, python)
    np.testing.assert_array_equal(python.columns["x"].numbers, [float(v) for v in cells["x"]])


@needs_both
def test_a_late_text_cell_keeps_the_exact_text_in_both_readers(tmp_path):
    # 70,000 numbers, then more texts than numbers: the Python reader saw
    # all-numeric blocks first and re-reads the column's text.
    numbers = [f"{i}.50" for i in range(70_000)]
    texts = [f"w{i % 7}" for i in range(80_000)]
    path = write(tmp_path, "c,d\n" + "".join(f"{v},1\n" for v in numbers + texts))
    arrow, python = (read_csv(path, reader=r) for r in ("pyarrow", "python"))
    same_tables(arrow, python)
    assert python.columns["c"].text[1] == "1.50"


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n3\n", r"t.csv, line 3: 1 fields, but the header has 2"),
    ("", r"t.csv is empty"),
    ("1,2\n3,4\n", r"CSV files need a header row"),
    ("a,a\n1,2\n", r"column name 'a' appears twice"),
    ("a,,c\n1,2,3\n", r"column 2 of the header has no name"),
    ("a;b;c\n1;2;3\n", r"the header is one column, 'a;b;c', which contains ';'.*pass --delimiter ';'"),
    ("a\tb\n1\t2\n", r"which contains 'tab'.*pass --delimiter 'tab'"),
])
def test_errors_name_the_problem(tmp_path, reader, text, message):
    with pytest.raises(TableError, match=message):
        read_csv(write(tmp_path, text), reader=reader)


@pytest.mark.parametrize("reader", READERS)
def test_invalid_utf8_and_other_delimiters(tmp_path, reader):
    with pytest.raises(TableError, match="is not a UTF-8 text"):
        read_csv(write(tmp_path, b"a,b\n1,\xff\xfe\n"), reader=reader)
    t = read_csv(write(tmp_path, "a;b\n1,5;x\n2;y\n"), delimiter=";", reader=reader)
    assert list(t.columns["a"].text) == ["1,5", "2"] and list(t.columns["b"].text) == ["x", "y"]
    t = read_csv(write(tmp_path, "a\tb\n1\t2\n"), delimiter="\t", reader=reader)
    assert list(t.columns["b"].numbers) == [2.0]


@pytest.mark.parametrize("reader", READERS)
def test_text_columns_keep_the_exact_text_of_numbers(tmp_path, reader):
    t = read_csv(write(tmp_path, "id,v\n00012,1\n7.50,2\n,3\n"), reader=reader, text_columns=("id",))
    assert list(t.columns["id"].text) == ["00012", "7.50", ""] and t.columns["v"].text is None


@pytest.mark.parametrize("reader", READERS)
def test_progress_bar_while_reading(tmp_path, reader):
    path = write(tmp_path, "a,b\n" + "1.5,2\n" * 200_000)
    out = io.StringIO()
    table = read_csv(path, reader=reader, progress=True, progress_file=out)
    assert table.n_rows == 200_000
    bar = out.getvalue()
    assert "reading t.csv" in bar and "100%" in bar and "/1.14M" in bar   # bytes, 1024-based


def test_unknown_or_missing_reader(tmp_path):
    with pytest.raises(TableError, match="unknown CSV reader 'excel'"):
        read_csv(write(tmp_path, "a\n1\n"), reader="excel")


# ---- encoding ----------------------------------------------------------------------
def test_encoding_one_hot_numbers_and_imputation(tmp_path):
    path = write(tmp_path, "size,color,weight\n1,red,10\n2,blue,\n3,red,30\n4,,40\n5,green,50\n")
    table = read_csv(path)
    train = np.arange(4)   # green appears only in the last row
    enc = fit_encoding(table, ["size", "color", "weight"], train)
    assert enc.input_names() == ["size", "color=blue", "color=red", "weight"]
    assert enc.specs[2].fill == pytest.approx((10 + 30 + 40) / 3)
    X, unseen = enc.transform(table, np.arange(5), impute=True)
    np.testing.assert_allclose(X, [[1, 0, 1, 10], [2, 1, 0, 80 / 3], [3, 0, 1, 30], [4, 0, 0, 40],
                                      [5, 0, 0, 50]])
    assert unseen == {"color": ["green"]}
    with pytest.raises(TableError, match=r"t.csv, line 3: column 'weight' has an empty \(missing\) value"):
        enc.transform(table, np.arange(5), impute=False)
    again = Encoding.from_json(enc.to_json())
    np.testing.assert_array_equal(again.transform(table, np.arange(5), impute=True)[0], X)


def test_encoding_refuses_identifiers_and_stray_words(tmp_path):
    names = "".join(f"{i},person{i}\n" for i in range(150))
    table = read_csv(write(tmp_path, "v,name\n" + names))
    with pytest.raises(TableError, match="column 'name' has 150 distinct text values.*--id name"):
        fit_encoding(table, ["v", "name"], np.arange(150))
    table = read_csv(write(tmp_path, "v\n1\n2\noops\n4\n", "s.csv"))
    with pytest.raises(TableError, match=r"s.csv, line 4: column 'v' has 'oops'; its other values are numbers"):
        fit_encoding(table, ["v"], np.arange(4))


@pytest.mark.parametrize("bad", [
    "[", "{}", "[]", json.dumps([{"name": "a"}]), json.dumps([{"name": "a", "kind": "number", "fill": "x"}]),
    json.dumps([{"name": "a", "kind": "one_hot", "categories": []}]),
    json.dumps([{"name": "a", "kind": "one_hot", "categories": ["x", "x"]}]),
    json.dumps([{"name": "a", "kind": "number"}, {"name": "a", "kind": "number"}]),
    "[" * 100000 + "]" * 100000,
])
def test_damaged_column_descriptions_are_value_errors(bad):
    with pytest.raises(ValueError):
        Encoding.from_json(bad)


@needs_both
def test_nan_spellings_in_a_clean_number_column(tmp_path):
    """"NaN" and "nan" are missing markers; other NaN spellings are numbers (NaN),
    which the command line then refuses as non-finite: the same in both readers."""
    path = write(tmp_path, "a\n1\nNaN\nNAN\n-nan\n2\n")
    arrow, python = (read_csv(path, reader=r) for r in ("pyarrow", "python"))
    same_tables(arrow, python)
    assert list(python.columns["a"].missing) == [False, True, False, False, False]
    assert np.isnan(python.columns["a"].numbers[1:4]).all()
