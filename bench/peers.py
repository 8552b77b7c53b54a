"""The contestants of bench/compare.py: one class per framework, same interface.

A peer is built for one workload (layer sizes, batch size) and one data set,
outside any timing. Then:

    peer.epoch()       one training epoch over the whole data set (shuffled
                       mini-batches, forward, cross-entropy, backward, Adam);
                       this is the only thing compare.py times for training
    peer.predict(Xb)   the forward pass (softmax probabilities) of one batch

Every peer trains ``sizes = [in, h1, ..., 10]`` with ReLU hidden layers and a
softmax output under cross-entropy, float32, shuffling every epoch, with the
workload's optimizer: ``ADAM`` (lr 1e-3, betas (0.9, 0.999), eps 1e-8) or
``SGD_MOMENTUM`` (lr 0.01, momentum 0.9, torch.optim.SGD's rule). Torch and scikit-learn are
imported lazily: this module works with NumPy and backpropx alone.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
ADAM = ("adam", {"lr": LR})
SGD_MOMENTUM = ("sgd", {"lr": 0.01, "momentum": 0.9})


# ---------------------------------------------------------------- backpropx
class BackpropxPeer:
    """backpropx: the public API, exactly as a user would call it."""

    name = "backpropx"

    def __init__(self, sizes: list[int], batch: int, X: np.ndarray, y: np.ndarray, seed: int = 0,
                 optimizer: tuple[str, dict[str, float]] = ADAM) -> None:
        import backpropx as bx

        last = len(sizes) - 2
        layers = [bx.Dense(sizes[k], sizes[k + 1], activation="softmax" if k == last else "relu")
                  for k in range(len(sizes) - 1)]
        self.net = bx.Network(layers, seed=seed)
        kind, hyper = optimizer
        opt = bx.Adam(**hyper) if kind == "adam" else bx.SGD(**hyper)
        self.trainer = bx.Trainer(self.net, loss="cross_entropy", optimizer=opt,
                                  batch_size=batch, shuffle=True, seed=seed)
        self.X, self.y = X, y

    def epoch(self) -> None:
        self.trainer.fit(self.X, self.y, epochs=1, verbose=0)

    def predict(self, Xb: np.ndarray) -> np.ndarray:
        return self.net.predict(Xb)


# ---------------------------------------------------------------- NumPy
class NumpyMLP:
    """A plain NumPy MLP: forward, backward and Adam with ``@``, float32.

    Layout: ``W[k]`` is (in, out) so a layer is ``h @ W + b``. Parameters,
    gradients and the two Adam moments each live in one flat float32 buffer
    (the per-layer arrays are views into it), so Adam is a handful of
    vectorised in-place operations per step. Every activation and delta
    buffer is preallocated for a full batch; the last, smaller batch uses a
    leading slice of them.
    """

    name = "numpy"

    def __init__(self, sizes: list[int], batch: int, X: np.ndarray, y: np.ndarray, seed: int = 0,
                 optimizer: tuple[str, dict[str, float]] = ADAM) -> None:
        self.sizes, self.batch, self.X, self.y = sizes, batch, X, y
        self.kind, self.hyper = optimizer
        self.rng = np.random.default_rng(seed)
        shapes = [(sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1)]
        total = sum(i * o + o for i, o in shapes)
        f32 = np.float32
        self.params = np.zeros(total, f32)
        self.grads = np.zeros(total, f32)
        self.m = np.zeros(total, f32)
        self.v = np.zeros(total, f32)
        self.tmp = np.zeros(total, f32)
        self.tmp2 = np.zeros(total, f32)
        self.W, self.b, self.dW, self.db = [], [], [], []
        off = 0
        for fan_in, fan_out in shapes:
            for store, grad, shape in ((self.W, self.dW, (fan_in, fan_out)), (self.b, self.db, (fan_out,))):
                n = int(np.prod(shape))
                store.append(self.params[off:off + n].reshape(shape))
                grad.append(self.grads[off:off + n].reshape(shape))
                off += n
        for k, (fan_in, fan_out) in enumerate(shapes):  # torch.nn.Linear's default init
            bound = 1.0 / np.sqrt(fan_in)
            self.W[k][...] = self.rng.uniform(-bound, bound, (fan_in, fan_out))
            self.b[k][...] = self.rng.uniform(-bound, bound, fan_out)
        # acts[0] is the gathered input batch; acts[k+1] is layer k's output.
        self.acts = [np.empty((batch, s), f32) for s in sizes]
        self.deltas = [np.empty((batch, s), f32) for s in sizes[1:]]
        self.rows = np.arange(batch)
        self.t = 0

    def _forward(self, x: np.ndarray, acts: list[np.ndarray]) -> np.ndarray:
        """acts[k+1] = relu(acts[k] @ W[k] + b[k]); the last layer is a softmax."""
        last = len(self.W) - 1
        h = x
        for k in range(len(self.W)):
            out = acts[k + 1]
            np.matmul(h, self.W[k], out=out)
            out += self.b[k]
            if k < last:
                np.maximum(out, 0.0, out=out)
            h = out
        # softmax, in place: p = exp(z - max z) / sum
        h -= h.max(axis=1, keepdims=True)
        np.exp(h, out=h)
        h /= h.sum(axis=1, keepdims=True)
        return h

    def _step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        n = xb.shape[0]
        acts = [a[:n] for a in self.acts]
        deltas = [d[:n] for d in self.deltas]
        p = self._forward(xb, acts)
        rows = self.rows[:n]
        loss = -float(np.log(np.maximum(p[rows, yb], 1e-30)).mean())
        # dz_last = (p - onehot(y)) / n            (softmax fused with cross-entropy)
        d = deltas[-1]
        np.copyto(d, p)
        d[rows, yb] -= 1.0
        d *= np.float32(1.0 / n)
        for k in range(len(self.W) - 1, -1, -1):
            h_in = xb if k == 0 else acts[k]
            # z = h_in @ W + b  =>  dW = h_in.T @ dz, db = sum_rows dz, dh_in = dz @ W.T
            np.matmul(h_in.T, d, out=self.dW[k])
            np.sum(d, axis=0, out=self.db[k])
            if k > 0:
                dh = deltas[k - 1]
                np.matmul(d, self.W[k].T, out=dh)
                # h = relu(z)  =>  dz = dh * (h > 0)
                dh *= acts[k] > 0
                d = dh
        if self.kind == "adam":
            self._adam()
        else:
            self._sgd()
        return loss

    def _sgd(self) -> None:
        """b = mu b + g (b starts at 0, so the first step is b = g); p -= lr b   (torch.optim.SGD)."""
        b = self.m  # Adam's first moment buffer, unused by SGD
        b *= np.float32(self.hyper["momentum"])
        b += self.grads
        np.multiply(b, np.float32(self.hyper["lr"]), out=self.tmp)
        self.params -= self.tmp

    def _adam(self) -> None:
        """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
        p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)   (torch.optim.Adam)."""
        self.t += 1
        g, m, v, tmp, tmp2 = self.grads, self.m, self.v, self.tmp, self.tmp2
        m *= BETA1
        np.multiply(g, 1.0 - BETA1, out=tmp)
        m += tmp
        v *= BETA2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - BETA2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= np.float32(1.0 / np.sqrt(1.0 - BETA2 ** self.t))
        tmp += EPS
        np.divide(m, tmp, out=tmp2)
        tmp2 *= np.float32(LR / (1.0 - BETA1 ** self.t))
        self.params -= tmp2

    def epoch(self) -> None:
        n, bs = self.X.shape[0], self.batch
        order = self.rng.permutation(n)
        xbuf = self.acts[0]
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            xb = xbuf[:idx.shape[0]]
            np.take(self.X, idx, axis=0, out=xb)
            self._step(xb, self.y[idx])

    def predict(self, Xb: np.ndarray) -> np.ndarray:
        n = Xb.shape[0]
        if not hasattr(self, "_pacts") or self._pacts[0].shape[0] != n:
            self._pacts = [np.empty((n, s), np.float32) for s in self.sizes]
        return self._forward(Xb, self._pacts)


# ---------------------------------------------------------------- PyTorch
class TorchPeer:
    """PyTorch CPU eager, written the way its tutorials write it."""

    name = "torch"

    def __init__(self, sizes: list[int], batch: int, X: np.ndarray, y: np.ndarray, seed: int = 0,
                 optimizer: tuple[str, dict[str, float]] = ADAM) -> None:
        import torch
        from torch import nn

        self.torch = torch
        torch.manual_seed(seed)
        mods: list[Any] = []
        for k in range(len(sizes) - 1):
            mods.append(nn.Linear(sizes[k], sizes[k + 1]))
            if k < len(sizes) - 2:
                mods.append(nn.ReLU())
        self.model = nn.Sequential(*mods)  # logits; CrossEntropyLoss applies the softmax
        kind, hyper = optimizer
        make = torch.optim.Adam if kind == "adam" else torch.optim.SGD
        self.opt = make(self.model.parameters(), **hyper)
        self.loss_fn = nn.CrossEntropyLoss()
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch = batch
        self.gen = torch.Generator().manual_seed(seed)

    def epoch(self) -> None:
        torch, model, opt, loss_fn = self.torch, self.model, self.opt, self.loss_fn
        n, bs = self.X.shape[0], self.batch
        perm = torch.randperm(n, generator=self.gen)
        model.train()
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            xb, yb = self.X[idx], self.y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    def predict(self, Xb: Any) -> Any:
        with self.torch.no_grad():
            return self.model(Xb).softmax(dim=1)


# ---------------------------------------------------------------- scikit-learn
class SklearnPeer:
    """scikit-learn's MLPClassifier, one epoch per call (max_iter=1).

    ``partial_fit`` with ``max_iter=1`` runs exactly one shuffled epoch and,
    unlike ``fit(warm_start=True)``, keeps the optimizer state between epochs, as
    the other peers do. No L2 penalty (alpha=0), float32 input (kept float32).
    """

    name = "sklearn"

    def __init__(self, sizes: list[int], batch: int, X: np.ndarray, y: np.ndarray, seed: int = 0,
                 optimizer: tuple[str, dict[str, float]] = ADAM) -> None:
        from sklearn.neural_network import MLPClassifier

        kind, hyper = optimizer
        solver = ({"solver": "adam", "learning_rate_init": hyper["lr"], "beta_1": BETA1, "beta_2": BETA2,
                   "epsilon": EPS} if kind == "adam" else
                  {"solver": "sgd", "learning_rate_init": hyper["lr"], "momentum": hyper["momentum"],
                   "nesterovs_momentum": False})
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", alpha=0.0,
                                 batch_size=batch, max_iter=1, shuffle=True, random_state=seed, **solver)
        self.X, self.y = X, y
        self.classes = np.arange(sizes[-1])
        self.first = True

    def epoch(self) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.first:
                self.clf.partial_fit(self.X, self.y, classes=self.classes)
                self.first = False
            else:
                self.clf.partial_fit(self.X, self.y)


def available_peers() -> tuple[dict[str, type], list[str]]:
    """The peer classes importable here (name -> class) and notes on the missing ones."""
    peers: dict[str, type] = {"backpropx": BackpropxPeer}
    notes: list[str] = []
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        notes.append("numpy and sklearn skipped: threadpoolctl is not installed, so their BLAS threads "
                     "cannot be limited in-process (pip install threadpoolctl)")
        have_tpc = False
    else:
        have_tpc = True
    if have_tpc:
        peers["numpy"] = NumpyMLP
    try:
        import torch  # noqa: F401
    except ImportError:
        notes.append("torch skipped: not installed (pip install torch==2.13.0)")
    else:
        peers["torch"] = TorchPeer
    if have_tpc:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            notes.append("sklearn skipped: not installed (pip install scikit-learn)")
        else:
            peers["sklearn"] = SklearnPeer
    return peers, notes
