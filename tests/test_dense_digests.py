"""Dense-only networks train to the same bits as before the N-d layer rework.

The digests in ``data/dense_digests.json`` were recorded with the core as it
was before layers became N-d (per-sample shapes, the network-owned softmax
fusion, ParamSpec-driven initialisation and L2). Each run covers a different
path: every activation, softmax fused into cross-entropy and softmax under
mse, dropout, frozen layers, L2, clipping, sample weights, both dtypes and
several optimizers. Regenerate only for a deliberate change of numerics:
``BACKPROPX_WRITE_DIGESTS=1 python -m pytest tests/test_dense_digests.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import backpropx as bx

DIGESTS = Path(__file__).parent / "data" / "dense_digests.json"


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _data(n: int, features: int, outputs: int, dtype: str, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(dtype)
    labels = rng.integers(0, outputs, n)
    return X, labels


def run_classifier(dtype: str):
    X, y = _data(200, 12, 5, dtype, 1)
    net = bx.Network([bx.Dense(12, 16, activation="relu"), bx.Dense(16, 8, activation="tanh"),
                      bx.Dense(8, 5, activation="softmax")], seed=3, dtype=dtype)
    tr = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adam(lr=1e-2), batch_size=32, seed=4)
    h = tr.fit(X, y, epochs=3, verbose=0, warn_gradients=False)
    return net, h


def run_dropout_l2_clip(dtype: str):
    X, y = _data(150, 10, 3, dtype, 2)
    net = bx.Network([bx.Dense(10, 20, activation="gelu"), bx.Dropout(0.3),
                      bx.Dense(20, 20, activation="elu", init="uniform"),
                      bx.Dense(20, 3, activation="softmax")], seed=5, dtype=dtype)
    tr = bx.Trainer(net, loss="cross_entropy", optimizer=bx.SGD(lr=0.05, momentum=0.9, nesterov=True),
                    batch_size=16, seed=6, l2=1e-3, clip_grad_norm=1.0, clip_grad_value=0.5)
    h = tr.fit(X, y, epochs=2, verbose=0, warn_gradients=False)
    return net, h


def run_mse_softmax_weights(dtype: str):
    X, y = _data(120, 6, 4, dtype, 3)
    target = np.eye(4, dtype=dtype)[y]
    w = np.linspace(0.5, 2.0, 120)
    net = bx.Network([bx.Dense(6, 9, activation="sigmoid"), bx.Dense(9, 4, activation="softmax")],
                     seed=7, dtype=dtype)
    tr = bx.Trainer(net, loss="mse", optimizer=bx.RMSprop(lr=1e-2, centered=True, momentum=0.5),
                    batch_size=20, seed=8)
    h = tr.fit(X, target, epochs=2, verbose=0, sample_weight=w, warn_gradients=False)
    return net, h


def run_bce_frozen(dtype: str):
    X, y = _data(100, 5, 2, dtype, 4)
    target = np.stack([y, 1 - y], axis=1).astype(dtype)
    net = bx.Network([bx.Dense(5, 7, activation="leaky_relu", init="lecun"),
                      bx.Dense(7, 7, activation="relu", bias=False),
                      bx.Dense(7, 2, activation="sigmoid", init="normal")], seed=9, dtype=dtype)
    net.layers[0].trainable = False
    tr = bx.Trainer(net, loss="binary_cross_entropy", optimizer=bx.AdamW(lr=1e-2, amsgrad=True),
                    batch_size=25, seed=10)
    h = tr.fit(X, target, epochs=2, verbose=0, warn_gradients=False)
    return net, h


def run_identity_logits_adagrad(dtype: str):
    X, y = _data(90, 4, 3, dtype, 5)
    net = bx.Network([bx.Dense(4, 6, activation="relu", init="he"), bx.Dense(6, 3)], seed=11, dtype=dtype)
    tr = bx.Trainer(net, loss="cross_entropy", optimizer=bx.Adagrad(lr=0.1), batch_size=30, seed=12)
    h = tr.fit(X, y, epochs=2, verbose=0, warn_gradients=False)
    return net, h


RUNS = {f.__name__: f for f in (run_classifier, run_dropout_l2_clip, run_mse_softmax_weights,
                                run_bce_frozen, run_identity_logits_adagrad)}


def digest_of(name: str, dtype: str) -> str:
    net, history = RUNS[name](dtype)
    arrays = [p for _, p in net.named_parameters()]
    arrays.append(np.asarray(history.history["loss"], dtype=np.float64))
    arrays.append(net.predict(_data(7, net.in_features, 1, dtype, 99)[0]))
    return _digest(*arrays)


CASES = [(kernel, name, dtype) for kernel in ("generic", "avx2", "avx512") for name in RUNS
         for dtype in ("float32", "float64")]


@pytest.fixture
def kernel_in_use():
    """Each GEMM kernel sums in its own order, so each has its own digests."""
    before = bx.get_kernel()

    def use(kernel: str) -> None:
        if kernel not in bx.supported_kernels():
            pytest.skip(f"this CPU cannot run the {kernel} kernel")
        bx.set_kernel(kernel)

    yield use
    bx.set_kernel(before)


@pytest.mark.parametrize(("kernel", "name", "dtype"), CASES)
def test_dense_runs_match_recorded_bits(kernel_in_use, kernel: str, name: str, dtype: str) -> None:
    kernel_in_use(kernel)
    got = digest_of(name, dtype)
    key = f"{kernel}/{name}/{dtype}"
    if os.environ.get("BACKPROPX_WRITE_DIGESTS"):
        stored = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
        stored[key] = got
        DIGESTS.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(DIGESTS.read_text())[key]
    assert got == want, f"{name} in {dtype} with the {kernel} kernel no longer gives the recorded bits"
