"""Convolutional networks: backpropx against PyTorch eager on BENCH.md's C1-C3.

    python bench/conv_compare.py                      # C1-C3, 1 and 2 threads, 5 repeats; prints markdown
    python bench/conv_compare.py --quick              # CI smoke run (tiny data, 1 repeat), numbers meaningless
    python bench/conv_compare.py --out bench/RESULTS.md   # also writes its section of RESULTS.md

Workloads (float32, one shuffled training epoch per timed repeat after one
warm-up epoch, cross-entropy on logits):

- C1: the MNIST-1D paper's CNN, Conv1d 1->25 k5 s2 p1, 25->25 k3 s2 p1 (x2),
  ReLU, Linear 125->10; Adam lr 1e-2, batch 100, the 4,000 MNIST-1D training
  sequences (generated offline by the mnist1d package; random data of the
  same shape if it is missing).
- C2: LeNet-5-like, Conv2d 1->6 k5, MaxPool 2, Conv2d 6->16 k5, MaxPool 2,
  Linear 256-120-84-10, ReLU; Adam lr 1e-3, batch 64, 10,000 random 28x28.
- C3: Conv2d 64->64 3x3 pad 1 on 32x32, ReLU, global average, Linear 64->10;
  SGD lr 0.01 momentum 0.9, batch 32, 2,000 random samples.

Peers: backpropx through ``Trainer.fit`` (the public API); PyTorch eager,
idiomatic: ``nn.Sequential``, ``nn.CrossEntropyLoss``, ``torch.optim``,
pre-made tensors, ``torch.randperm`` shuffling. Repeat r runs both, starting
with a different one each time (A B, B A, ...); each cell is the median
samples/s [min-max], ratio = backpropx / torch median [min-max of the
paired repeats].

The convolution's products are also timed alone (``_core.gemm_float32`` on
C3's shapes, against NumPy's ``@``), in GFLOP/s (2 M N K) and as a share of
the FMA peak per core: ``--peak`` (measure it with bench/fma_peak.cpp;
the default is BENCH.md's 117 GFLOP/s of a Zen 4).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import backpropx as bx
from backpropx import _core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import timed  # noqa: E402  (collect garbage, settle, time one call)

FMA_PEAK_PER_CORE = 117.0  # float32 GFLOP/s, BENCH.md
SECTION_BEGIN = "<!-- conv_compare.py: begin -->"
SECTION_END = "<!-- conv_compare.py: end -->"


# ---- the workloads: (backpropx layers, torch modules, input shape, optimizer, batch, samples)
def c1_layers(nn: Any = None) -> list[Any]:
    if nn is None:
        return [bx.Conv1D(1, 25, 5, stride=2, padding=1, activation="relu"),
                bx.Conv1D(25, 25, 3, stride=2, padding=1, activation="relu"),
                bx.Conv1D(25, 25, 3, stride=2, padding=1, activation="relu"), bx.Flatten(), bx.Dense(125, 10)]
    return [nn.Conv1d(1, 25, 5, 2, 1), nn.ReLU(), nn.Conv1d(25, 25, 3, 2, 1), nn.ReLU(), nn.Conv1d(25, 25, 3, 2, 1),
            nn.ReLU(), nn.Flatten(), nn.Linear(125, 10)]


def c2_layers(nn: Any = None) -> list[Any]:
    if nn is None:
        return [bx.Conv2D(1, 6, 5, activation="relu"), bx.MaxPool2D(2), bx.Conv2D(6, 16, 5, activation="relu"),
                bx.MaxPool2D(2), bx.Flatten(), bx.Dense(256, 120, activation="relu"),
                bx.Dense(120, 84, activation="relu"), bx.Dense(84, 10)]
    return [nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)]


def c3_layers(nn: Any = None) -> list[Any]:
    if nn is None:
        return [bx.Conv2D(64, 64, 3, padding=1, activation="relu"), bx.GlobalAvgPool(), bx.Dense(64, 10)]
    return [nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]


WORKLOADS: dict[str, dict[str, Any]] = {
    "C1": {"layers": c1_layers, "shape": (1, 40), "opt": ("Adam", {"lr": 1e-2}), "batch": 100,
           "samples": 4_000, "quick": 400},
    "C2": {"layers": c2_layers, "shape": (1, 28, 28), "opt": ("Adam", {"lr": 1e-3}), "batch": 64,
           "samples": 10_000, "quick": 256},
    "C3": {"layers": c3_layers, "shape": (64, 32, 32), "opt": ("SGD", {"lr": 0.01, "momentum": 0.9}), "batch": 32,
           "samples": 2_000, "quick": 64},
}


def make_data(name: str, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    spec = WORKLOADS[name]
    if name == "C1":
        with contextlib.suppress(ImportError):
            import random

            from mnist1d.data import get_dataset_args, make_dataset

            args = get_dataset_args()
            args.num_samples = int(np.ceil(n / args.train_split))  # the paper's 5,000 for 4,000 training samples
            state, py_state = np.random.get_state(), random.getstate()
            try:
                data = make_dataset(args)
            finally:
                np.random.set_state(state)
                random.setstate(py_state)
            X = np.ascontiguousarray(data["x"][:n, None, :], dtype=np.float32)
            return X, np.asarray(data["y"][:n], dtype=np.int64), "MNIST-1D"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, *spec["shape"]), dtype=np.float32)
    return X, rng.integers(0, 10, n, dtype=np.int64), "random"


class BackpropxPeer:
    def __init__(self, name: str, X: np.ndarray, y: np.ndarray) -> None:
        spec = WORKLOADS[name]
        self.net = bx.Network(spec["layers"](), input_shape=spec["shape"], seed=0)
        opt_name, kwargs = spec["opt"]
        self.trainer = bx.Trainer(self.net, optimizer=getattr(bx, opt_name)(**kwargs), batch_size=spec["batch"],
                                  seed=0)
        self.X, self.y = X, y

    def epoch(self) -> None:
        self.trainer.fit(self.X, self.y, epochs=1, verbose=0, warn_gradients=False)


class TorchPeer:
    def __init__(self, name: str, X: np.ndarray, y: np.ndarray) -> None:
        import torch

        spec = WORKLOADS[name]
        torch.manual_seed(0)
        self.torch = torch
        self.model = torch.nn.Sequential(*spec["layers"](torch.nn))
        opt_name, kwargs = spec["opt"]
        self.opt = getattr(torch.optim, opt_name)(self.model.parameters(), **kwargs)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = spec["batch"]

    def epoch(self) -> None:
        torch, n = self.torch, len(self.X)
        perm = torch.randperm(n)
        for s in range(0, n, self.batch):
            idx = perm[s:s + self.batch]
            self.opt.zero_grad()
            self.loss(self.model(self.X[idx]), self.y[idx]).backward()
            self.opt.step()


def set_threads(n: int) -> None:
    bx.set_num_threads(n)
    import torch

    torch.set_num_threads(n)


def run_workload(name: str, threads: int, repeats: int, quick: bool, settle: float) -> tuple[dict, str, float]:
    spec = WORKLOADS[name]
    X, y, source = make_data(name, spec["quick"] if quick else spec["samples"])
    set_threads(threads)
    peers = {"backpropx": BackpropxPeer(name, X, y), "torch": TorchPeer(name, X, y)}
    load = os.getloadavg()[0]
    for peer in peers.values():
        peer.epoch()  # warm-up
    rates: dict[str, list[float]] = {p: [] for p in peers}
    names = list(peers)
    for r in range(repeats):
        for p in names[r % 2:] + names[:r % 2]:
            rates[p].append(len(X) / timed(peers[p].epoch, settle))
    return rates, source, load


# the convolution's products in C3 (one sample per product: 1024 positions)
GEMM_SHAPES = [("C3 forward W.cols", 64, 1024, 576, False, False),
               ("C3 weight grad dZ.cols^T", 64, 576, 1024, False, True),
               ("C3 input grad W^T.dZ (not needed: first layer)", 576, 1024, 64, True, False)]


def run_gemm(threads: int, repeats: int, quick: bool) -> list[tuple[str, list[float], list[float]]]:
    set_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=threads)  # NumPy's OpenBLAS with the same threads
    with limits:
        return _gemm_rows(repeats, 2e8 if quick else 2e9)


def _gemm_rows(repeats: int, flops_per_repeat: float) -> list[tuple[str, list[float], list[float]]]:
    rng = np.random.default_rng(0)
    rows = []
    for name, M, N, K, ta, tb in GEMM_SHAPES:
        A = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        B = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        opA, opB = (A.T if ta else A), (B.T if tb else B)
        calls = max(1, int(flops_per_repeat / (2 * M * N * K)))
        flops = 2 * M * N * K * calls
        def ours(A=A, B=B, ta=ta, tb=tb, calls=calls) -> None:
            for _ in range(calls):
                _core.gemm_float32(A, B, ta, tb)

        def theirs(opA=opA, opB=opB, calls=calls) -> None:
            for _ in range(calls):
                opA @ opB

        ours()
        theirs()
        mine, numpy_rates = [], []
        for _ in range(repeats):
            mine.append(flops / timed(ours, 0.0) / 1e9)
            numpy_rates.append(flops / timed(theirs, 0.0) / 1e9)
        rows.append((name, mine, numpy_rates))
    return rows


def cell(v: list[float]) -> str:
    def fmt(x: float) -> str:
        return f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"
    return f"{fmt(statistics.median(v))} [{fmt(min(v))}–{fmt(max(v))}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="C1,C2,C3")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--settle", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="write the report as this script's section of the file")
    ap.add_argument("--peak", type=float, default=FMA_PEAK_PER_CORE,
                    help="FP32 FMA peak of one core in GFLOP/s (bench/fma_peak.cpp measures it)")
    args = ap.parse_args()
    cfg = bx.config()
    if cfg.get("build_type") not in (None, "Release", "RelWithDebInfo"):
        raise SystemExit(f"refusing to benchmark a {cfg.get('build_type')} build")
    try:
        import torch
    except ImportError:
        raise SystemExit("the peer is PyTorch: pip install torch==2.13.0") from None
    repeats = 1 if args.quick else args.repeats
    settle = 0.0 if args.quick else args.settle
    threads = [int(t) for t in args.threads.split(",")]
    started, t0, load_before = datetime.datetime.now(datetime.timezone.utc), time.time(), os.getloadavg()
    rows, sources = [], {}
    for name in args.workloads.split(","):
        for t in threads:
            rates, sources[name], load = run_workload(name, t, repeats, args.quick, settle)
            ratios = [a / b for a, b in zip(rates["backpropx"], rates["torch"])]
            rows.append((name, t, load, rates, ratios))
            print(f"{name} threads={t}: bx {statistics.median(rates['backpropx']):,.0f}/s, torch "
                  f"{statistics.median(rates['torch']):,.0f}/s", flush=True)
    gemm = {t: run_gemm(t, repeats, args.quick) for t in threads}
    lines = [
        SECTION_BEGIN,
        "## Convolutional networks: backpropx vs PyTorch eager (C1–C3)",
        "",
        f"Generated by `python bench/conv_compare.py{' --quick' if args.quick else ''}` (see its docstring).",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; run took {time.time() - t0:.0f} s; "
        f"load average before {' '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (this process counts as 1–2)",
        f"- CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; backpropx kernel "
        f"{bx.get_kernel()}, build {cfg.get('build_type')}; torch {torch.__version__}",
        f"- protocol: float32, 1 warm-up epoch, {repeats} timed epoch(s) per peer alternated (A B, B A, ...), "
        f"{settle} s untimed pause before each; samples/s median [min–max]; bx/torch = ratio of medians "
        f"[min–max of paired repeats], >1: backpropx faster",
        "- data: " + ", ".join(f"{k} {v}" for k, v in sources.items()),
        "",
        "| workload | threads | load | backpropx samples/s | torch samples/s | bx/torch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t, load, rates, ratios in rows:
        ratio = statistics.median(rates["backpropx"]) / statistics.median(rates["torch"])
        lines.append(f"| {name} | {t} | {load:.2f} | {cell(rates['backpropx'])} | {cell(rates['torch'])} | "
                     f"{ratio:.2f} [{min(ratios):.2f}–{max(ratios):.2f}] |")
    lines += ["", "The convolution's products on C3's shapes (one sample of 1024 positions per product), GFLOP/s "
              f"median [min–max], and backpropx's share of the FMA peak ({args.peak:.0f} GFLOP/s per core):", "",
              "| product (M x N x K) | threads | backpropx GFLOP/s | % of peak | NumPy @ GFLOP/s |",
              "|---|---:|---:|---:|---:|"]
    for t, rows_t in gemm.items():
        for (name, M, N, K, _a, _b), (_n, mine, theirs) in zip(GEMM_SHAPES, rows_t):
            med = statistics.median(mine)
            lines.append(f"| {name} ({M} x {N} x {K}) | {t} | {med:.1f} [{min(mine):.1f}–{max(mine):.1f}] | "
                         f"{100 * med / (args.peak * t):.0f}% | {statistics.median(theirs):.1f} |")
    lines.append(SECTION_END)
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        text = args.out.read_text() if args.out.exists() else ""
        if SECTION_BEGIN in text and SECTION_END in text:
            head, rest = text.split(SECTION_BEGIN, 1)
            text = head + report.rstrip("\n") + rest.split(SECTION_END, 1)[1]
        else:
            text = text + ("\n" if text else "") + report
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
