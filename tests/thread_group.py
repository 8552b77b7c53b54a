"""ThreadGroup: N "processes" of a distributed run as threads of this one, so
the data-parallel logic (the C++ split and reduction, the failure protocol,
the checks at the start of fit) is tested by the ordinary pytest run, without
MPI. tests/mpi/ runs the same scenarios under a real ``mpiexec``.

The C++ trainer releases the GIL while it computes, so the threads really
train at once and meet in the collectives as MPI processes do. Sums are taken
in rank order, the same on every thread. A collective that is not joined
within TIMEOUT seconds breaks the barrier: a hang becomes a test failure.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import numpy as np

from backpropx.distributed import Group

TIMEOUT = 60.0


class Aborted(Exception):
    """ThreadGroup.abort was called (MPI_Abort would end the run)."""


class _Shared:
    def __init__(self, size: int) -> None:
        self.barrier = threading.Barrier(size, timeout=TIMEOUT)
        self.slots: list[Any] = [None] * size


class ThreadGroup(Group):
    def __init__(self, shared: _Shared, rank: int) -> None:
        super().__init__()
        self._shared = shared
        self.rank = rank
        self.size = len(shared.slots)
        self.calls = 0   # collectives this rank took part in

    def _exchange(self, value: Any) -> list[Any]:
        self.calls += 1
        s = self._shared
        s.slots[self.rank] = value
        s.barrier.wait()
        values = list(s.slots)
        s.barrier.wait()   # nobody overwrites a slot before everyone has read them all
        return values

    def allreduce(self, array: np.ndarray) -> None:
        parts = self._exchange(array.copy())
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        array[...] = total

    def broadcast(self, array: np.ndarray, root: int = 0) -> None:
        array[...] = self._exchange(array.copy())[root]

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        return pickle.loads(self._exchange(pickle.dumps(obj))[root])

    def allgather(self, obj: Any) -> list[Any]:
        return [pickle.loads(b) for b in self._exchange(pickle.dumps(obj))]

    def abort(self, message: str, code: int = 1) -> NoReturn:
        self._shared.barrier.abort()
        raise Aborted(message)


def run_ranks(size: int, body: Callable[[ThreadGroup], Any], kind: type[ThreadGroup] = ThreadGroup) -> list[Any]:
    """body(group) on `size` threads at once, each with its `kind` of group;
    each rank's return value or raised exception, in rank order."""
    shared = _Shared(size)
    groups = [kind(shared, r) for r in range(size)]
    with ThreadPoolExecutor(size) as pool:
        futures = [pool.submit(body, g) for g in groups]
        out: list[Any] = []
        for f in futures:
            try:
                out.append(f.result(timeout=2 * TIMEOUT))
            except BaseException as exc:  # noqa: BLE001 - the test inspects it
                out.append(exc)
        return out
