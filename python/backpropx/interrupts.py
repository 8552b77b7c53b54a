"""Ctrl-C held back while bookkeeping that must not be left half-done runs.

Python raises KeyboardInterrupt between almost any two bytecodes, so two
updates that belong together (an epoch's count and its History entry) could
be split by Ctrl-C. Inside ``deferred_interrupt()`` a SIGINT is recorded and
delivered to the previous handler when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT held back, then deliver it.

    Only the main thread receives signals, so elsewhere (and where Python
    does not handle SIGINT at all) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL or a handler not installed from Python
        yield
        return
    received: list[FrameType | None] = []
    # A signal arriving from here on finds this handler: the delivery reads
    # the handler when it runs, not when the signal arrives.
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            previous(signal.SIGINT, received[0])
