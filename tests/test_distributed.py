"""Data-parallel training, with the ranks as threads (tests/thread_group.py):
N ranks equal one process to rounding, failures and interrupts on one rank
stop every rank, the start-of-fit checks, broadcasts and rank-0 decisions.
tests/mpi/ runs the same under a real mpiexec (BACKPROPX_MPI_TESTS=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from thread_group import ThreadGroup, run_ranks

import backpropx as bx
from backpropx.distributed import DistributedError, Group


def rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return float(np.abs(a - b).max() / scale) if scale > 0 else 0.0


def data(n: int = 203, d: int = 12, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, classes, n), rng.uniform(0.5, 2.0, n)


def network(loss: str = "cross_entropy", dropout: float = 0.0, seed: int = 1, frozen: bool = False) -> bx.Network:
    last = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "mse": None}[loss]
    layers: list[bx.Layer] = [bx.Dense(12, 16, activation="tanh"), bx.Dense(16, 16, activation="relu")]
    if dropout:
        layers.append(bx.Dropout(dropout))
    layers.append(bx.Dense(16, 4, activation=last))
    if frozen:
        layers[0].trainable = False
    return bx.Network(layers, seed=seed, dtype="float64")


def targets(loss: str, y: np.ndarray) -> np.ndarray:
    if loss == "cross_entropy":
        return y
    return np.eye(4)[y] * 0.8 + 0.1   # probabilities for BCE, values for mse


def train(group: Group | None, *, loss: str = "cross_entropy", epochs: int = 2, batch_size: int = 10,
          dropout: float = 0.0, frozen: bool = False, callbacks: Any = None, net_seed: int = 1,
          **fit: Any) -> tuple[dict[str, np.ndarray], bx.History, bx.Trainer]:
    X, y, w = data()
    net = network(loss, dropout, net_seed, frozen)
    trainer = bx.Trainer(net, loss=loss, optimizer=bx.Adam(lr=1e-2), batch_size=batch_size, seed=3, l2=1e-3,
                         clip_grad_norm=0.5, clip_grad_value=0.2, distributed=group)
    fit.setdefault("validation_data", (X[:57], targets(loss, y[:57])))
    history = trainer.fit(X, targets(loss, y), epochs=epochs, verbose=0, sample_weight=w,
                          callbacks=callbacks, **fit)
    return net.state_dict(), history, trainer


def results(outcomes: list[Any]) -> list[Any]:
    for out in outcomes:
        if isinstance(out, BaseException):
            raise out
    return outcomes


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


# ---- N ranks equal one process ----------------------------------------------------
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
@pytest.mark.parametrize("size", [2, 3])
def test_n_ranks_equal_one_process_to_rounding(loss, size):
    # 203 samples in batches of 10 (the last has 3 rows: one per rank at N=3), 2 epochs = 42 steps,
    # with sample weights, L2, both clippings, a frozen layer and validation
    one, one_history, _ = train(None, loss=loss, frozen=True)
    outs = results(run_ranks(size, lambda g: train(g, loss=loss, frozen=True)))
    for params, history, _ in outs:
        assert_same(params, outs[0][0])   # every rank holds the same bits
        for key in one:
            assert rel(params[key], one[key]) <= 1e-10, key
        for key, values in one_history.history.items():
            if key != "time":
                assert rel(history.history[key], values) <= 1e-10, key
    assert rel(one["1.weight"], network(loss).state_dict()["1.weight"]) > 1e-3   # training moved them


def test_n_d_samples_with_a_label_per_time_step_and_sample_weights():
    # (n, 6, 3) sequences, a Residual block, 6 loss rows per sample: the global weight sum
    # counts each sample's weight once per row, as one process does
    rng = np.random.default_rng(5)
    X = rng.standard_normal((45, 6, 3))
    y = (X.sum(axis=2) > 0).astype(int) + 2 * (X[:, :, 0] > 1)
    w = rng.uniform(0.5, 2.0, 45)

    def run(group: Group | None) -> tuple[dict[str, np.ndarray], bx.History]:
        net = bx.Network([bx.Dense(3, 8, activation="tanh"), bx.Residual([bx.Dense(8, 8, activation="relu")]),
                          bx.Dense(8, 5)], input_shape=(6, 3), seed=2, dtype="float64")
        trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=8, seed=1, distributed=group)
        history = trainer.fit(X, y, epochs=3, verbose=0, sample_weight=w, validation_data=(X[:11], y[:11]))
        return net.state_dict(), history

    one, one_history = run(None)
    for params, history in results(run_ranks(2, run)):
        for key in one:
            assert rel(params[key], one[key]) <= 1e-10, key
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert rel(history.history[key], one_history.history[key]) <= 1e-10, key


def test_a_memory_mapped_data_set_is_shared_without_a_copy(tmp_path):
    from backpropx._arrays import as_features

    X, y, w = data()
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert np.shares_memory(as_features(mapped, np.dtype("float64"), (12,)), mapped)

    def run(group: Group | None) -> dict[str, np.ndarray]:
        trainer = bx.Trainer(network(), batch_size=10, seed=3, distributed=group)
        trainer.fit(mapped, y, epochs=1, verbose=0, sample_weight=w)
        return trainer.network.state_dict()

    one = run(None)
    for params in results(run_ranks(2, run)):
        for key in one:
            assert rel(params[key], one[key]) <= 1e-10, key


def test_batches_smaller_than_the_number_of_ranks():
    one, _, _ = train(None, batch_size=2, epochs=1)
    for params, _, _ in results(run_ranks(3, lambda g: train(g, batch_size=2, epochs=1))):
        for key in one:
            assert rel(params[key], one[key]) <= 1e-10, key


class HalfReduce(ThreadGroup):
    """A broken reduction: forgets the other ranks' gradients."""

    def allreduce(self, array: np.ndarray) -> None:
        if array.size > 5:
            self._exchange(None)
            return
        super().allreduce(array)


def test_the_equality_check_catches_a_broken_reduction():
    one, _, _ = train(None, epochs=1)
    for params, _, _ in results(run_ranks(2, lambda g: train(g, epochs=1), kind=HalfReduce)):
        assert rel(params["2.weight"], one["2.weight"]) > 1e-6


def test_a_group_of_one_trains_exactly_as_no_group():
    one, _, _ = train(None)
    [(alone, _, trainer)] = results(run_ranks(1, train))
    assert_same(one, alone)
    assert trainer._dp is None


def test_dropout_is_deterministic_and_every_rank_takes_the_same_step():
    first = results(run_ranks(2, lambda g: train(g, dropout=0.3)))
    second = results(run_ranks(2, lambda g: train(g, dropout=0.3)))
    assert_same(first[0][0], first[1][0])
    assert_same(first[0][0], second[0][0])
    one, _, _ = train(None, dropout=0.3)   # masks are drawn per rank: not one process's bits
    assert rel(one["3.weight"], first[0][0]["3.weight"]) > 1e-6


def test_rank_0_parameters_and_optimizer_state_are_broadcast():
    one, _, _ = train(None)
    # rank 1 starts from other weights: rank 0's win, so the run equals one process from rank 0's
    outs = results(run_ranks(2, lambda g: train(g, net_seed=1 if g.rank == 0 else 99)))
    for params, _, _ in outs:
        for key in one:
            assert rel(params[key], one[key]) <= 1e-10, key


# ---- the start of fit: every rank must train the same thing ------------------------------
@pytest.mark.parametrize("what, change", [
    ("seed", lambda kw: kw.update(seed=4)),
    ("trainer settings", lambda kw: kw.update(batch_size=11)),
    ("training data fingerprint", lambda kw: kw.update(X=kw["X"] + 1e-9)),
    ("training data (samples", lambda kw: kw.update(X=kw["X"][:-1], y=kw["y"][:-1])),
    ("architecture", lambda kw: kw.update(net=bx.Network([bx.Dense(12, 5), bx.Dense(5, 4, activation="softmax")],
                                                         dtype="float64"))),
    ("epochs to reach", lambda kw: kw.update(epochs=3)),
])
def test_ranks_that_disagree_get_a_clear_error_on_every_rank(what, change):
    def body(g: Group) -> None:
        X, y, _ = data()
        kw: dict[str, Any] = {"X": X, "y": y, "seed": 3, "batch_size": 10, "epochs": 2, "net": network()}
        if g.rank == 1:
            change(kw)
        trainer = bx.Trainer(kw["net"], batch_size=kw["batch_size"], seed=kw["seed"], distributed=g)
        trainer.fit(kw["X"], kw["y"], epochs=kw["epochs"], verbose=0)

    outs = run_ranks(2, body)
    for out in outs:
        assert isinstance(out, ValueError), out
        assert what in str(out) and "rank 1 has" in str(out)
    assert str(outs[0]) == str(outs[1])


# ---- failures and interrupts --------------------------------------------------------------
class Fail(bx.Callback):
    def __init__(self, on_rank: int, epoch: int = 0, batch: int = 0) -> None:
        super().__init__()
        self.on_rank, self.epoch, self.batch_no = on_rank, epoch, batch
        self.every = 1 if batch else 0

    def _rank(self) -> int:
        assert self.trainer is not None and self.trainer.distributed is not None
        return self.trainer.distributed.rank

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == self.epoch and self._rank() == self.on_rank:
            raise KeyError("callback failed on purpose")

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if batch == self.batch_no and self._rank() == self.on_rank:
            raise KeyError("batch callback failed on purpose")


@pytest.mark.parametrize("where", [{"epoch": 2}, {"batch": 5}, {"epoch": 1, "on_rank": 0}])
def test_a_failing_callback_on_one_rank_stops_every_rank(where):
    on_rank = where.pop("on_rank", 1)
    outs = run_ranks(2, lambda g: train(g, epochs=4, callbacks=[Fail(on_rank, **where)]))
    failed, other = outs[on_rank], outs[1 - on_rank]
    assert isinstance(failed, KeyError) and "failed on purpose" in str(failed)
    assert isinstance(other, DistributedError) and other.failures.keys() == {on_rank}
    assert f"rank {on_rank} failed: KeyError" in str(other) and "failed on purpose" in str(other)


def test_bad_input_on_one_rank_stops_every_rank_before_training():
    def body(g: Group) -> None:
        X, y, _ = data()
        trainer = bx.Trainer(network(), distributed=g)
        trainer.fit(X if g.rank == 0 else X[:, :5], y, verbose=0)

    outs = run_ranks(2, body)
    assert isinstance(outs[1], ValueError) and "features" in str(outs[1])
    assert isinstance(outs[0], DistributedError) and "rank 1 failed: ValueError" in str(outs[0])


def test_a_failure_anywhere_in_a_together_block_reaches_ranks_inside_fit():
    def body(g: Group) -> None:
        with g.together():
            if g.rank == 1:
                raise OSError("no such file on rank 1")
            train(g)

    outs = run_ranks(2, body)
    assert isinstance(outs[1], OSError)
    assert isinstance(outs[0], DistributedError) and "no such file on rank 1" in str(outs[0])


def test_non_finite_training_stops_every_rank_with_the_same_error():
    def body(g: Group) -> None:
        X, y, _ = data()
        net = bx.Network([bx.Dense(12, 16, activation="relu"), bx.Dense(16, 4, activation="softmax")])
        bx.Trainer(net, optimizer=bx.SGD(lr=1e30), distributed=g).fit(X, y, epochs=2, verbose=0,
                                                                      warn_gradients=False)

    outs = run_ranks(2, body)
    assert all(isinstance(o, bx.NonFiniteError) for o in outs), outs
    assert "non-finite loss at batch" in str(outs[0])


class Interrupt(bx.Callback):
    """What SIGINT on this one process does (the handler sets the group's flag)."""

    every = 1

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        assert self.trainer is not None and self.trainer.distributed is not None
        if batch == 4 and self.trainer.distributed.rank == 1:
            self.trainer.distributed._interrupted = True


def test_an_interrupt_on_one_rank_stops_every_rank_at_the_same_batch():
    outs = results(run_ranks(2, lambda g: train(g, epochs=3, callbacks=[Interrupt()])))
    (p0, h0, t0), (p1, h1, t1) = outs
    assert h0.interrupted and h1.interrupted and t0.epochs_done == t1.epochs_done == 0
    assert_same(p0, p1)
    # batch 5's step was not taken, as with Ctrl-C on one process after batch 4
    assert [t._opt_core.steps for t in (t0, t1)] == [4, 4]


# ---- rank 0 decides and writes ------------------------------------------------------------
class RankLR(bx.Callback):
    """A callback whose decisions differ by rank (it should not, but rank 0 wins)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.trainer is not None and self.trainer.distributed is not None
        rank = self.trainer.distributed.rank
        self.trainer.optimizer.lr = 1e-3 * (rank + 1)
        self.trainer.stop_training = rank == 0 and epoch == 2


def test_rank_0_decisions_are_everyones():
    outs = results(run_ranks(2, lambda g: train(g, epochs=5, callbacks=[RankLR()])))
    for params, history, trainer in outs:
        assert trainer.optimizer.lr == 1e-3 and trainer.epochs_done == 2
    assert_same(outs[0][0], outs[1][0])


def test_only_rank_0_writes_checkpoints_and_logs(tmp_path):
    def body(g: Group) -> Any:
        where = tmp_path / f"rank{g.rank}"
        where.mkdir()
        return train(g, callbacks=[bx.ModelCheckpoint(where / "ckpt.safetensors", monitor="loss"),
                                   bx.CSVLogger(where / "log.csv")])

    results(run_ranks(2, body))
    assert sorted(os.listdir(tmp_path / "rank0")) == ["ckpt.safetensors", "log.csv"]
    assert os.listdir(tmp_path / "rank1") == []


def test_resume_from_a_checkpoint_on_two_ranks_continues_bit_for_bit(tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"

    def body(g: Group) -> Any:
        train(g, epochs=2, dropout=0.2, callbacks=[bx.ModelCheckpoint(ckpt, monitor="val_loss")])
        resumed = train(g, epochs=4, dropout=0.2, resume_from=ckpt,
                        callbacks=[bx.ModelCheckpoint(ckpt, monitor="val_loss")])
        whole = train(g, epochs=4, dropout=0.2)
        return resumed, whole

    for resumed, whole in results(run_ranks(2, body)):
        assert_same(resumed[0], whole[0])
        assert resumed[1].history["val_loss"] == whole[1].history["val_loss"]


def test_validation_with_fewer_rows_than_ranks():
    X, y, w = data()
    one = train(None, validation_data=(X[:1], y[:1]))[1]
    for _, history, _ in results(run_ranks(3, lambda g: train(g, validation_data=(X[:1], y[:1])))):
        assert rel(history.history["val_loss"], one.history["val_loss"]) <= 1e-10
        assert history.history["val_accuracy"] == one.history["val_accuracy"]


# ---- the API ----------------------------------------------------------------------------
def test_distributed_must_be_a_group():
    with pytest.raises(TypeError, match="bx.MPIGroup"):
        bx.Trainer(network(), distributed="mpi")


def test_the_core_checks_the_rank():
    trainer = bx.Trainer(network())
    with pytest.raises(ValueError, match="rank 2 is not in"):
        trainer._core.set_data_parallel(2, 2, lambda g, s: None)


def test_without_a_launcher_rank_is_0_size_is_1_and_mpi_is_never_imported():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMPI_", "PMI_", "PMIX_", "MV2_"))}
    code = ("import sys, backpropx as bx; assert bx.distributed.rank() == 0 and bx.distributed.size() == 1; "
            "assert bx.distributed.world() is None; assert 'mpi4py' not in sys.modules; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_rank_0_buffers_are_broadcast_with_the_parameters():
    """BatchNorm's running statistics start from rank 0's too (then each rank
    updates them from its own shard, as torch's DDP without broadcast_buffers)."""
    def run(g: Group) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        X, y, _w = data(n=40)
        net = bx.Network([bx.BatchNorm1D(12), bx.Dense(12, 4, activation="softmax")], input_shape=(12,),
                         dtype="float64", seed=1)
        net.layers[0].running_mean[...] = 0.0 if g.rank == 0 else 5.0
        net.layers[0].running_var[...] = 1.0 if g.rank == 0 else 7.0
        before = net.state_dict()
        trainer = bx.Trainer(net, optimizer=bx.SGD(lr=1e-2), batch_size=40, shuffle=False, distributed=g)
        trainer.fit(X, y, epochs=1, verbose=0)
        return before, net.state_dict()

    (before0, after0), (_before1, after1) = results(run_ranks(2, run))
    X = data(n=40)[0]
    for after, part in ((after0, X[:20]), (after1, X[20:])):  # each rank's half of the one batch
        mean, var = 0.9 * before0["0.running_mean"] + 0.1 * part.mean(0), \
            0.9 * before0["0.running_var"] + 0.1 * part.var(0, ddof=1)
        assert rel(after["0.running_mean"], mean) <= 1e-12 and rel(after["0.running_var"], var) <= 1e-12
