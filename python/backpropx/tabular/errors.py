"""The one exception of backpropx.tabular."""


class TableError(ValueError):
    """A table that cannot be used as it is (unreadable, malformed, or data that
    does not fit the request); the message names the file, line and column."""
