"""Sparse (scipy.sparse) input to a Dense first layer: the sparse x dense
products against the dense path, bit-identical results for any thread count,
batch gathering in the trainer, and the checks on malformed CSR arrays.

Dense and sparse paths sum the same products in different orders, so on
random data they agree to rounding (float64: ``TOL64``); on small integers
every sum is exact in both and they agree bit for bit.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import backpropx as bx
from backpropx import _core

sparse = pytest.importorskip("scipy.sparse")

TOL64 = 1e-12


def _random_sparse(rng, n, m, density, integers=False, dtype=np.float64):
    X = sparse.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float64)
    if integers:
        X.data = np.round(X.data * 8 - 4)
    X.data = X.data.astype(dtype)
    return X


def _net(n_in, dtype="float64", seed=0, hidden=7, out=3, last="softmax"):
    return bx.Network([bx.Dense(n_in, hidden, activation="relu"), bx.Dense(hidden, out, activation=last)],
                      seed=seed, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_integer_forward_is_exact(dtype, fmt):
    rng = np.random.default_rng(0)
    X = _random_sparse(rng, 40, 300, 0.05, integers=True, dtype=dtype)
    net = bx.Network([bx.Dense(300, 9)], seed=0, dtype=dtype)  # identity: the product itself
    net.layers[0].weight[...] = rng.integers(-3, 4, size=(9, 300))
    net.layers[0].bias[...] = rng.integers(-3, 4, size=9)
    out = net.predict(X.asformat(fmt))
    np.testing.assert_array_equal(out, net.predict(X.toarray()))
    assert out.dtype == np.dtype(dtype)


@pytest.mark.parametrize("loss,last", [("cross_entropy", "softmax"), ("mse", "tanh"), ("poisson", None)])
def test_loss_and_gradients_match_dense(loss, last):
    rng = np.random.default_rng(1)
    X = _random_sparse(rng, 50, 200, 0.03).tolil()
    X[7] = 0  # an empty row
    X = X.tocsr()
    X.eliminate_zeros()
    assert X[7].nnz == 0
    net = _net(200, last=last)
    y = {"cross_entropy": rng.integers(0, 3, 50), "mse": rng.standard_normal((50, 3)),
         "poisson": rng.poisson(1.0, (50, 3)).astype(float)}[loss]
    w = rng.random(50)
    value, grads = net.loss_and_gradients(X, y, loss=loss, sample_weight=w)
    dense_value, dense_grads = net.loss_and_gradients(X.toarray(), y, loss=loss, sample_weight=w)
    assert abs(value - dense_value) <= TOL64 * abs(dense_value)
    for key, g in dense_grads.items():
        np.testing.assert_allclose(grads[key], g, rtol=0, atol=TOL64 * np.abs(g).max())


def test_duplicates_int64_indices_and_unsorted_entries_are_scipys_matrix():
    """Duplicate column entries add up, as scipy's own product does; int64 indices
    and unsorted columns are accepted."""
    data = np.array([1.0, 2.0, 3.0, -1.0, 0.5])
    indices = np.array([4, 1, 4, 0, 2], dtype=np.int64)
    indptr = np.array([0, 3, 3, 5], dtype=np.int64)
    X = sparse.csr_matrix((data, indices, indptr), shape=(3, 5))
    net = bx.Network([bx.Dense(5, 2)], seed=3, dtype="float64")
    expected = X @ net.layers[0].weight.T + net.layers[0].bias  # scipy sums the duplicates
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-15)


def test_results_do_not_depend_on_threads(restore_threads):
    # batches of 12,000 entries x 128 units: above the size where products take threads
    rng = np.random.default_rng(2)
    X = _random_sparse(rng, 600, 4000, 0.01, dtype=np.float32)
    y = rng.integers(0, 3, 600)
    runs = []
    for threads in (1, 2):
        bx.set_num_threads(threads)
        net = _net(4000, dtype="float32", hidden=128)
        trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=300, seed=4)
        trainer.fit(X, y, epochs=2, verbose=0)
        value, grads = net.loss_and_gradients(X, y)
        runs.append((net.predict(X), value, grads, net.state_dict()))
    (p1, v1, g1, s1), (p2, v2, g2, s2) = runs
    np.testing.assert_array_equal(p1, p2)
    assert v1 == v2
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])
        np.testing.assert_array_equal(s1[key], s2[key])


@pytest.mark.parametrize("shuffle", [False, True])
def test_training_matches_dense(shuffle):
    """Same seed, same batches: the sparse epoch gathers the rows the dense one copies."""
    rng = np.random.default_rng(5)
    X = _random_sparse(rng, 130, 150, 0.05)
    y = rng.integers(0, 3, 130)
    w = rng.random(130)
    nets = []
    for data in (X, X.toarray()):
        net = _net(150, hidden=10)
        trainer = bx.Trainer(net, optimizer=bx.SGD(lr=0.1, momentum=0.9), batch_size=32, shuffle=shuffle, seed=6,
                             l2=1e-3)
        history = trainer.fit(data, y, epochs=3, verbose=0, validation_split=0.2, sample_weight=w)
        nets.append((net.state_dict(), history["val_loss"]))
    (sparse_sd, sparse_val), (dense_sd, dense_val) = nets
    for key in dense_sd:
        np.testing.assert_allclose(sparse_sd[key], dense_sd[key], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sparse_val, dense_val, rtol=1e-12)


def test_frozen_first_layer_and_lbfgs():
    rng = np.random.default_rng(7)
    X = _random_sparse(rng, 60, 80, 0.1)
    y = rng.integers(0, 3, 60)
    net = _net(80)
    net.layers[0].trainable = False
    before = net.layers[0].weight.copy()
    bx.Trainer(net, batch_size=16).fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(net.layers[0].weight, before)
    net.layers[0].trainable = True
    dense = _net(80)
    dense.load_state_dict(net.state_dict())
    result = bx.fit_lbfgs(net, X, y, max_iter=20)
    dense_result = bx.fit_lbfgs(dense, X.toarray(), y, max_iter=20)
    assert result.n_iter == dense_result.n_iter
    np.testing.assert_allclose(net.predict(X), dense.predict(X.toarray()), atol=1e-9)


def _csr(indptr, indices, data, cols=4):
    return _core.Csr_float64(np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int32),
                             np.array(data, dtype=np.float64), cols)


@pytest.mark.parametrize("arrays, message", [
    (([1, 2], [0, 1], [1.0, 2.0]), "indptr\\[0\\] must be 0"),
    (([0, 2, 1], [0, 1], [1.0, 2.0]), "indptr decreases at row 1"),
    (([0, 3], [0, 1], [1.0, 2.0]), "names 3 entries but only 2 are stored"),
    (([0, 2], [0, 4], [1.0, 2.0]), "column index 4 is outside \\[0, 4\\)"),
    (([0, 1, 2], [0, -1], [1.0, 2.0]), "column index -1"),
    (([0, 1, 2], [0, 3], [1.0, np.nan]), "non-finite value \\(nan\\) at index \\(1, 3\\)"),
])
def test_malformed_csr_is_rejected(arrays, message):
    with pytest.raises(ValueError, match=message):
        _csr(*arrays)


def test_errors_name_the_problem():
    net = _net(5)
    X = sparse.csr_matrix(np.eye(5))
    with pytest.raises(ValueError, match="has 4 features per sample, but the network expects 5"):
        net.predict(X[:, :4])
    with pytest.raises(TypeError, match="real numbers"):
        net.predict(X.astype(np.complex128))
    bad = X.copy()
    bad.data[2] = np.inf
    with pytest.raises(ValueError, match="non-finite value \\(inf\\) at index \\(2, 2\\)"):
        net.predict(bad)
    with pytest.raises(ValueError, match="too large for float32"):
        _net(5, dtype="float32").predict(X * 1e300)
    indices = np.array([0, 7], dtype=np.int64)  # scipy does not check index bounds on construction
    X64 = sparse.csr_matrix((np.ones(2), indices, np.array([0, 1, 2])), shape=(2, 5))
    with pytest.raises(ValueError, match="column index 7 is outside \\[0, 5\\)"):
        net.predict(X64)
    dropout_first = bx.Network([bx.Dropout(0.5, features=5), bx.Dense(5, 2)], seed=0)
    with pytest.raises(ValueError, match="sparse, which needs a Dense first layer over 1-d samples; the first "
                                         "layer is dropout with input shape \\(5,\\)"):
        dropout_first.predict(X)
    assert not dropout_first._core.accepts_sparse and net._core.accepts_sparse
    nd = bx.Network([bx.Dense(5, 2)], input_shape=(3, 5), seed=0)
    with pytest.raises(ValueError, match="needs 1-d samples, but the network expects per-sample shape \\(3, 5\\)"):
        nd.predict(X)
    with pytest.raises(TypeError, match="forward \\(manual mode\\) takes dense X"):
        net.forward(X, training=True)


def test_rows_are_sliceable_views():
    rows = _csr([0, 1, 3, 3, 4], [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    assert rows.shape == (4, 4) and rows.nnz == 4 and len(rows) == 4
    part = rows[1:3]
    assert part.shape == (2, 4) and part.nnz == 2
    net = bx.Network([bx.Dense(4, 2)], seed=0, dtype="float64")
    np.testing.assert_array_equal(net._core.predict(part), net.predict(np.array([[0, 2, 3, 0], [0, 0, 0, 0.0]])))
    with pytest.raises(ValueError, match="step 1"):
        rows[::2]


def test_import_without_scipy():
    """backpropx never imports scipy itself; without it, dense input still works."""
    code = ("import sys; sys.modules['scipy'] = None\n"
            "import numpy as np, backpropx as bx\n"
            "net = bx.Network([bx.Dense(3, 2)], seed=0)\n"
            "assert net.predict(np.ones((2, 3))).shape == (2, 2)\n"
            "assert 'scipy' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_distributed_training_refuses_sparse_x():
    """Data-parallel fit compares fingerprints of every process's data, which
    needs dense arrays: sparse X is refused up front, on every rank."""
    from thread_group import run_ranks

    X = sparse.random(40, 12, density=0.2, format="csr", random_state=0)
    y = np.arange(40) % 3

    def body(group):
        trainer = bx.Trainer(_net(12), batch_size=8, distributed=group)
        trainer.fit(X, y, verbose=0)

    outs = run_ranks(2, body)
    assert all(isinstance(out, TypeError) and "distributed training takes dense X" in str(out) for out in outs)
