"""Tables for the command line: reading CSV files (pyarrow's reader when it is
installed, our own otherwise, with the same result), and turning their
columns into the numeric features a network takes (numbers, one-hot encoded
text, missing values) in a way that is saved with the model and replayed by
``backpropx predict``."""

from .encoding import ColumnSpec, Encoding, fit_encoding
from .errors import TableError
from .readers import READERS, available_readers, read_csv
from .table import MISSING_MARKERS, Column, Table

__all__ = ["MISSING_MARKERS", "READERS", "Column", "ColumnSpec", "Encoding", "Table", "TableError",
           "available_readers", "fit_encoding", "read_csv"]
