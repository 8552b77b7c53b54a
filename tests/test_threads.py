"""Thread count of the core: validated and capped, taken from the environment
at import (OMP_NUM_THREADS, BACKPROPX_NUM_THREADS; a bad value warns, never
breaks the import), driven by threadpoolctl, and set to one per worker under
joblib (GridSearchCV(n_jobs=2) no longer oversubscribes the cores)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import backpropx as bx
from backpropx.threads import MAX_THREADS


# ---- set_num_threads ---------------------------------------------------------------
@pytest.mark.parametrize("bad, error, match", [
    (0, ValueError, "at least 1"),
    (-3, ValueError, "at least 1"),
    (MAX_THREADS + 1, ValueError, f"at most {MAX_THREADS}"),
    (10**6, ValueError, f"at most {MAX_THREADS}"),
    (2**70, ValueError, f"at most {MAX_THREADS}"),
    (1.5, TypeError, "must be an integer"),
    (2.0, TypeError, "must be an integer"),
    ("2", TypeError, "must be an integer"),
    (True, TypeError, "must be an integer"),
    (None, TypeError, "must be an integer"),
])
def test_bad_thread_counts_raise_and_change_nothing(restore_threads, bad, error, match):
    bx.set_num_threads(2)
    with pytest.raises(error, match=match):
        bx.set_num_threads(bad)
    assert bx.get_num_threads() == 2


def test_the_cap_itself_is_accepted_and_runs(restore_threads):
    bx.set_num_threads(np.int64(MAX_THREADS))
    assert bx.get_num_threads() == MAX_THREADS == 1024
    net = bx.Network([bx.Dense(64, 64), bx.Dense(64, 3)], seed=0)
    X = np.random.default_rng(0).random((256, 64), dtype=np.float32)
    out = net.predict(X)
    bx.set_num_threads(1)
    np.testing.assert_array_equal(out, net.predict(X))   # same bits for any count


# ---- the environment at import --------------------------------------------------------
def threads_at_import(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "BACKPROPX_NUM_THREADS")}
    code = "import backpropx as bx; print(bx.get_num_threads(), bx.config()['threads_from'])"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "1"}, "1 OMP_NUM_THREADS"),
    ({"OMP_NUM_THREADS": "3,1"}, "3 OMP_NUM_THREADS"),           # nested levels: the outer one
    ({"BACKPROPX_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, "3 BACKPROPX_NUM_THREADS"),
    ({"OMP_NUM_THREADS": ""}, f"{min(os.cpu_count() or 1, MAX_THREADS)} processors"),
])
def test_thread_count_comes_from_the_environment(env, expected):
    proc = threads_at_import(env)
    assert proc.returncode == 0 and proc.stdout.strip() == expected, proc.stderr
    assert "RuntimeWarning" not in proc.stderr


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "many"}, "processors"),
    ({"OMP_NUM_THREADS": "100000"}, "processors"),                       # crashed the OpenMP runtime
    ({"OMP_NUM_THREADS": "99999999999999999999999"}, "processors"),
    ({"BACKPROPX_NUM_THREADS": "-2", "OMP_NUM_THREADS": "1"}, "1 OMP_NUM_THREADS"),
])
def test_a_bad_environment_value_warns_and_is_ignored(env, expected):
    proc = threads_at_import(env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(expected)
    name, value = next((k, v) for k, v in env.items() if k == "BACKPROPX_NUM_THREADS" or v != "1")
    assert f"RuntimeWarning: backpropx: {name}='{value}' is not a thread count (an integer from 1 to " \
           f"{MAX_THREADS}); ignored" in proc.stderr


# ---- threadpoolctl -----------------------------------------------------------------
def test_threadpoolctl_sees_and_limits_the_core(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    bx.set_num_threads(2)
    (info,) = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "backpropx"]
    assert info["user_api"] == "openmp" and info["num_threads"] == 2 and info["version"] == bx.__version__
    assert os.path.samefile(info["filepath"], bx._core.__file__)
    with threadpoolctl.threadpool_limits(limits=1):
        assert bx.get_num_threads() == 1
    assert bx.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert bx.get_num_threads() == 1
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):   # not ours
        assert bx.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=10**6):                # clamped, never a crash
        assert bx.get_num_threads() == MAX_THREADS
    assert bx.get_num_threads() == 2


def test_import_does_not_need_threadpoolctl():
    code = ("import sys\n"
            "sys.modules['threadpoolctl'] = None   # as if not installed\n"
            "import backpropx as bx\n"
            "print(bx.get_num_threads() >= 1, sys.modules['threadpoolctl'] is None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["True", "True"], proc.stderr


# ---- joblib ---------------------------------------------------------------------------
def train_in_worker() -> tuple[int, str]:
    """What a joblib worker's backpropx runs with, after a small fit."""
    import numpy as np

    import backpropx

    X = np.random.default_rng(0).random((64, 8))
    net = backpropx.Network([backpropx.Dense(8, 16, activation="relu"), backpropx.Dense(16, 2, activation="softmax")])
    backpropx.Trainer(net).fit(X, (X[:, 0] > 0.5).astype(int), epochs=1, verbose=0)
    return backpropx.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "")


def test_joblib_workers_run_their_share_of_the_cores():
    """GridSearchCV(n_jobs=2) runs its fits like this: joblib's workers get
    OMP_NUM_THREADS = cores // n_jobs, and backpropx now honours it (before, each
    worker ran one thread per core: bench/bench_joblib.py measures the cost)."""
    joblib = pytest.importorskip("joblib")
    results = joblib.Parallel(n_jobs=2)(joblib.delayed(train_in_worker)() for _ in range(4))
    share = max(joblib.cpu_count() // 2, 1)
    assert results == [(share, str(share))] * 4


# ---- who runs the parallel loops: the core's pool or OpenMP ----------------------------------
@pytest.fixture
def restore_threading():
    from backpropx import _core

    before = _core.get_threading()
    yield _core
    _core.set_threading(before)


def _train_twice(core, threading: str) -> dict[str, np.ndarray]:
    core.set_threading(threading)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 300)).astype(np.float32)
    y = rng.integers(0, 5, 512)
    net = bx.Network([bx.Dense(300, 128, activation="relu"), bx.Dense(128, 5, activation="softmax")], seed=1)
    bx.Trainer(net, optimizer=bx.SGD(lr=0.05, momentum=0.9), batch_size=64, seed=2).fit(X, y, epochs=2, verbose=0)
    return {name: np.array(p) for name, p in net.named_parameters()}


def test_the_pool_and_openmp_give_the_same_bits(restore_threads, restore_threading):
    bx.set_num_threads(2)
    assert bx.config()["threading"] == restore_threading.get_threading()
    pool, openmp = _train_twice(restore_threading, "pool"), _train_twice(restore_threading, "openmp")
    bx.set_num_threads(1)
    single = _train_twice(restore_threading, "pool")
    for name in pool:
        np.testing.assert_array_equal(pool[name], openmp[name], err_msg=name)
        np.testing.assert_array_equal(pool[name], single[name], err_msg=name)


def test_an_unknown_threading_is_refused(restore_threading):
    before = restore_threading.get_threading()
    with pytest.raises(ValueError, match="expected pool or openmp"):
        restore_threading.set_threading("tbb")
    assert restore_threading.get_threading() == before


def test_a_forked_child_computes_with_the_pool():
    """The parent's pool threads do not exist in a child made by fork(): the
    child's regions still finish (the caller claims every task no helper
    takes, and the child starts a pool of its own) with the same results."""
    code = (
        "import os, numpy as np, backpropx as bx\n"
        "from backpropx import _core\n"
        "_core.set_threading('pool'); bx.set_num_threads(2)\n"
        "net = bx.Network([bx.Dense(256, 256), bx.Dense(256, 3)], seed=0)\n"
        "X = np.random.default_rng(0).random((2048, 256), dtype=np.float32)\n"
        "want = net.predict(X)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(0 if np.array_equal(net.predict(X), want) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_an_unknown_threading_in_the_environment_warns_and_the_pool_runs():
    env = {**os.environ, "BACKPROPX_THREADING": "tbb"}
    code = "import backpropx as bx; print(bx.config()['threading'])"
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pool"
    assert "BACKPROPX_THREADING='tbb'" in done.stderr and "RuntimeWarning" in done.stderr
    env["BACKPROPX_THREADING"] = "openmp"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "openmp" and "Warning" not in done.stderr
