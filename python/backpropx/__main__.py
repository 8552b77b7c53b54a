"""`python -m backpropx` (and the `backpropx` script): the command line in backpropx.cli.

Without a command it trains the digits demo, as it always has.
"""

from __future__ import annotations

import sys

from .cli import demo, main

__all__ = ["demo", "main"]

if __name__ == "__main__":
    sys.exit(main())
