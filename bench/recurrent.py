"""Recurrent training throughput: backpropx against PyTorch eager (torch.nn.GRU/LSTM,
batch_first=True) on BENCH.md's R1 and R2, alternated in one process.

    python bench/recurrent.py                          # R1, R2 at 1 and 2 threads, 5 repeats
    python bench/recurrent.py --workloads R2 --threads 1 --repeats 7
    python bench/recurrent.py --quick                  # smoke run, numbers meaningless

R1  MNIST-1D GRU: bidirectional GRU(1, 6) over 40 steps, all outputs flattened into
    Linear(480, 10); cross-entropy, Adam(lr=1e-2), batch 100, 4,000 MNIST-1D training
    samples (generated offline by the mnist1d package; random normal sequences if it is
    missing, which changes nothing about speed).
R2  LSTM(64, 256) over 50 steps, the last output into Linear(256, 10); cross-entropy,
    Adam(lr=1e-3), batch 64, 5,000 random normal samples, labels 0-9.

Protocol (bench/BENCH.md): float32; per peer one warm-up epoch, then --repeats
timed epochs, alternating the peers (repeat r starts with a different peer); only the
epoch is timed. A cell is the median samples/s [min-max]; the ratio is backpropx's
median over torch's, [min-max] over the per-repeat (paired) ratios. Threads:
bx.set_num_threads and torch.set_num_threads. The peers use one seed each, the same
architecture, initial distributions and optimizer; torch shuffles with randperm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

import backpropx as bx

WORKLOADS = {
    "R1": {"cell": "gru", "F": 1, "H": 6, "T": 40, "bidirectional": True, "flatten": True, "lr": 1e-2,
           "batch": 100, "samples": 4000, "quick": 400},
    "R2": {"cell": "lstm", "F": 64, "H": 256, "T": 50, "bidirectional": False, "flatten": False, "lr": 1e-3,
           "batch": 64, "samples": 5000, "quick": 256},
}


def make_data(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    w = WORKLOADS[name]
    if name == "R1":
        try:
            from mnist1d.data import get_dataset_args, make_dataset

            data = make_dataset(get_dataset_args())
            return (np.ascontiguousarray(data["x"][:n, :, None], dtype=np.float32),
                    data["y"][:n].astype(np.int64))
        except ImportError:
            pass
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, w["T"], w["F"]), dtype=np.float32), rng.integers(0, 10, n)


class Backpropx:
    name = "backpropx"

    def __init__(self, w: dict[str, Any], X: np.ndarray, y: np.ndarray) -> None:
        cls = bx.GRU if w["cell"] == "gru" else bx.LSTM
        D = 2 if w["bidirectional"] else 1
        rnn = cls(w["F"], w["H"], bidirectional=w["bidirectional"], return_sequences=w["flatten"])
        head = [bx.Flatten(), bx.Dense(w["T"] * D * w["H"], 10)] if w["flatten"] else [bx.Dense(D * w["H"], 10)]
        self.net = bx.Network([rnn, *head], input_shape=(w["T"], w["F"]), seed=0)
        self.trainer = bx.Trainer(self.net, optimizer=bx.Adam(lr=w["lr"]), batch_size=w["batch"], seed=0)
        self.X, self.y = X, y

    def epoch(self) -> None:
        self.trainer.fit(self.X, self.y, epochs=1, verbose=0)


class Torch:
    name = "torch"

    def __init__(self, w: dict[str, Any], X: np.ndarray, y: np.ndarray) -> None:
        import torch

        self.torch = torch
        torch.manual_seed(0)
        cls = torch.nn.GRU if w["cell"] == "gru" else torch.nn.LSTM
        self.rnn = cls(w["F"], w["H"], batch_first=True, bidirectional=w["bidirectional"])
        D = 2 if w["bidirectional"] else 1
        self.flatten = w["flatten"]
        self.linear = torch.nn.Linear((w["T"] if w["flatten"] else 1) * D * w["H"], 10)
        self.params = list(self.rnn.parameters()) + list(self.linear.parameters())
        self.opt = torch.optim.Adam(self.params, lr=w["lr"])
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = w["batch"]

    def forward(self, xb: Any) -> Any:
        out, _ = self.rnn(xb)
        h = out.reshape(out.shape[0], -1) if self.flatten else out[:, -1]  # R2: the last output
        return self.linear(h)

    def epoch(self) -> None:
        torch = self.torch
        order = torch.randperm(len(self.X))
        for start in range(0, len(self.X), self.batch):
            idx = order[start:start + self.batch]
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.forward(self.X[idx]), self.y[idx]).backward()
            self.opt.step()


def run(name: str, threads: int, repeats: int, quick: bool) -> dict[str, list[float]]:
    import torch

    bx.set_num_threads(threads)
    torch.set_num_threads(threads)
    w = WORKLOADS[name]
    X, y = make_data(name, w["quick" if quick else "samples"])
    peers = [Backpropx(w, X, y), Torch(w, X, y)]
    for p in peers:
        p.epoch()  # warm-up
    rates: dict[str, list[float]] = {p.name: [] for p in peers}
    for r in range(repeats):
        for p in (peers if r % 2 == 0 else peers[::-1]):
            start = time.perf_counter()
            p.epoch()
            rates[p.name].append(len(X) / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="R1,R2")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if bx.config().get("build_type", "Release") == "Debug":
        print("refusing to benchmark a Debug build", file=sys.stderr)
        return 1
    repeats = 1 if args.quick else args.repeats
    print(f"load average before: {os.getloadavg()[0]:.2f} (2-core machine shared with other sessions)")
    print("| workload | threads | backpropx samples/s | torch samples/s | ratio |")
    print("|---|---|---|---|---|")
    for name in args.workloads.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            rates = run(name, threads, repeats, args.quick)
            mine, theirs = rates["backpropx"], rates["torch"]
            ratios = [a / b for a, b in zip(mine, theirs)]
            print(f"| {name} | {threads} | {statistics.median(mine):,.0f} [{min(mine):,.0f}-{max(mine):,.0f}] | "
                  f"{statistics.median(theirs):,.0f} [{min(theirs):,.0f}-{max(theirs):,.0f}] | "
                  f"{statistics.median(mine) / statistics.median(theirs):.2f}x "
                  f"[{min(ratios):.2f}-{max(ratios):.2f}] |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
