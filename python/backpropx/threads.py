"""Thread count of the C++ core: validation, the environment, threadpoolctl.

At import the core takes its thread count from ``BACKPROPX_NUM_THREADS``,
else the first level of ``OMP_NUM_THREADS`` (joblib's workers, e.g. in
``GridSearchCV(n_jobs=...)``, and job schedulers set it so that processes do
not oversubscribe the cores), else the number of processors. A value that
is not an integer from 1 to `MAX_THREADS` is ignored with a RuntimeWarning
(import never fails because of it); so is a ``BACKPROPX_THREADING`` other
than ``pool`` (the core's own threads, the default) or ``openmp``.

When threadpoolctl (>= 3.5) is installed, the core registers with it as an
OpenMP thread pool (``internal_api="backpropx"``), so
``threadpoolctl.threadpool_limits(1)`` and ``threadpool_info()`` see it.
threadpoolctl is imported only if it is installed.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

from . import _core
from ._arrays import check_int

MAX_THREADS: int = int(_core.max_threads)


def set_num_threads(n: int) -> None:
    """Threads the C++ core uses, from 1 to `MAX_THREADS` (1024). Results are
    bit-identical for any count; more threads than cores only slows it down."""
    n = check_int(n, "n", 1)
    if n > MAX_THREADS:
        raise ValueError(f"n must be at most {MAX_THREADS} threads, got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the C++ core uses (see `set_num_threads`)."""
    return int(_core.get_num_threads())


def thread_source() -> str:
    """Where the start-up thread count came from: "BACKPROPX_NUM_THREADS",
    "OMP_NUM_THREADS" or "processors"."""
    return str(_core.thread_default()[1])


def warn_about_ignored_environment() -> None:
    for problem in _core.thread_default()[2]:
        warnings.warn(f"backpropx: {problem}; ignored", RuntimeWarning, stacklevel=3)
    threading = os.environ.get("BACKPROPX_THREADING")
    if threading is not None and threading not in ("pool", "openmp"):
        warnings.warn(f"backpropx: BACKPROPX_THREADING={threading!r} is not 'pool' or 'openmp'; "
                      "ignored (the core's own thread pool runs)", RuntimeWarning, stacklevel=3)


def _controller_class() -> Any:
    from threadpoolctl import LibController

    class BackpropxController(LibController):  # type: ignore[misc]
        """threadpoolctl's view of the core's thread count, through the plain C
        functions the extension module exports (csrc/python/threadpool_symbols.cpp)."""

        user_api = "openmp"          # the core's threads are an OpenMP team
        internal_api = "backpropx"
        filename_prefixes = ("_core",)
        # Another library's "_core" module lacks these, so it is not taken for ours.
        check_symbols = ("backpropx_get_num_threads", "backpropx_set_num_threads")

        def get_num_threads(self) -> int:
            return int(self.dynlib.backpropx_get_num_threads())

        def set_num_threads(self, num_threads: int) -> None:
            self.dynlib.backpropx_set_num_threads(int(num_threads))

        def get_version(self) -> str:
            return str(_core.__version__)

    return BackpropxController


def register_with_threadpoolctl() -> bool:
    """Register the core's thread pool with threadpoolctl if it is installed and
    new enough (>= 3.5, which has ``register``); True when registered."""
    try:
        if importlib.util.find_spec("threadpoolctl") is None:
            return False
        import threadpoolctl
    except (ImportError, ValueError):   # not installed, or a broken installation
        return False

    if not hasattr(threadpoolctl, "register"):
        return False
    threadpoolctl.register(_controller_class())
    return True
