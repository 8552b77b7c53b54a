"""Peer comparison: backpropx against NumPy, PyTorch and scikit-learn on BENCH.md's workloads.

    python bench/compare.py                       # everything, 5 repeats, prints a markdown table
    python bench/compare.py --quick               # CI smoke run (1 repeat, tiny data, < 30 s)
    python bench/compare.py --workloads W1,W2 --threads 1 --repeats 7 --out bench/RESULTS.md

Protocol (bench/BENCH.md): float32, one warm-up epoch per peer, then
``--repeats`` timed epochs per peer, interleaved (repeat r runs every peer
once, starting from a different peer each time), all in one process. Only
the epoch is timed, never data generation or model construction. Each cell
is the median samples/s with [min-max]; a ratio is backpropx's median over
the peer's, with [min-max] over the per-repeat (paired) ratios. Threads are
set for every peer: bx.set_num_threads, torch.set_num_threads, and
threadpoolctl for NumPy's OpenBLAS (which scikit-learn uses too).

W4 trains with SGD (lr 0.01, momentum 0.9), the others with Adam (lr 1e-3).
"W1-infer" is the forward pass of W1's network on batches of 1024 rows
(net.predict vs a NumPy forward vs torch under no_grad, all ending in softmax).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backpropx as bx  # noqa: E402
from peers import ADAM, SGD_MOMENTUM, available_peers  # noqa: E402

# name: layer sizes, batch, samples (full run), samples (--quick), optimizer
WORKLOADS: dict[str, dict[str, Any]] = {
    "W1": {"sizes": [784, 256, 256, 10], "batch": 128, "samples": 60_000, "quick": 1_024, "opt": ADAM},
    "W2": {"sizes": [64, 32, 10], "batch": 32, "samples": 1_797, "quick": 1_797, "opt": ADAM},
    "W3": {"sizes": [1024, 1024, 1024, 10], "batch": 256, "samples": 20_000, "quick": 512, "opt": ADAM},
    "W4": {"sizes": [2048, 1024, 10], "batch": 32, "samples": 10_000, "quick": 256, "opt": SGD_MOMENTUM},
    "W1-infer": {"sizes": [784, 256, 256, 10], "batch": 1024, "samples": 1024, "quick": 1024, "opt": ADAM},
}
INFER_CALLS = {"full": 30, "quick": 2}  # forward passes of one 1024-row batch per timed repeat
PEER_ORDER = ["backpropx", "numpy", "torch", "sklearn"]


def make_data(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """W2: the digits scaled to [0, 1]; otherwise standard normal features, labels 0-9."""
    if name == "W2":
        X, y = bx.load_digits()
        X = (X / 16.0).astype(np.float32)
        return np.ascontiguousarray(X[:n]), np.ascontiguousarray(y[:n].astype(np.int64))
    rng = np.random.default_rng(seed)
    d = WORKLOADS[name]["sizes"][0]
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, 10, n, dtype=np.int64)
    return X, y


def set_threads(n: int) -> contextlib.AbstractContextManager[Any]:
    """Set every library's thread count to n; the returned context limits BLAS/OpenMP pools."""
    bx.set_num_threads(n)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


def timed(fn: Callable[[], Any], settle: float = 0.0) -> float:
    gc.collect()
    if settle:
        time.sleep(settle)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_case(name: str, threads: int, peers: dict[str, type], repeats: int, quick: bool, settle: float,
             log: Callable[[str], None]) -> dict[str, list[float]]:
    """samples/s per peer (one entry per timed repeat) for one workload and thread count.

    ``settle`` seconds of sleep (untimed) before each run let the previous
    peer's worker threads (OpenBLAS and OpenMP spin a while after a call) go
    idle, so one peer's leftovers do not eat the next one's cores."""
    spec = WORKLOADS[name]
    n = spec["quick"] if quick else spec["samples"]
    X, y = make_data(name, n)
    infer = name.endswith("-infer")
    with set_threads(threads):
        runners: dict[str, Callable[[], Any]] = {}
        work: dict[str, int] = {}
        for pname in PEER_ORDER:
            if pname not in peers or (infer and pname == "sklearn"):
                continue
            peer = peers[pname](spec["sizes"], spec["batch"], X, y, optimizer=spec["opt"])
            if infer:
                calls = INFER_CALLS["quick" if quick else "full"]
                Xb = X
                if pname == "torch":
                    import torch

                    Xb = torch.from_numpy(X)

                def run(peer: Any = peer, Xb: Any = Xb, calls: int = calls) -> None:
                    for _ in range(calls):
                        peer.predict(Xb)

                runners[pname], work[pname] = run, calls * n
            else:
                runners[pname], work[pname] = peer.epoch, n
        names = list(runners)
        for pname in names:  # warm-up epoch (or warm-up batch of predictions)
            runners[pname]()
        rates: dict[str, list[float]] = {p: [] for p in names}
        for r in range(repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            for pname in order:
                rates[pname].append(work[pname] / timed(runners[pname], settle))
        log(f"{name} threads={threads}: " + ", ".join(
            f"{p} {statistics.median(v):,.0f}/s" for p, v in rates.items()))
    return rates


# (name, M, N, K, trans_a, trans_b, dtype): op(A) (M, K) . op(B) (K, N), the
# training products as they occur (X.W^T forward, dY^T.X weight gradient, dY.W input gradient).
GEMM_SHAPES: list[tuple[str, int, int, int, bool, bool, str]] = [
    ("square 256", 256, 256, 256, False, False, "float32"),
    ("square 512", 512, 512, 512, False, False, "float32"),
    ("square 1024", 1024, 1024, 1024, False, False, "float32"),
    ("square 2048", 2048, 2048, 2048, False, False, "float32"),
    ("W1 784->256 fwd X.W^T", 128, 256, 784, False, True, "float32"),
    ("W1 784->256 dW = dY^T.X", 256, 784, 128, True, False, "float32"),
    ("W1 256->256 dX = dY.W", 128, 256, 256, False, False, "float32"),
    ("W3 1024->1024 fwd X.W^T", 256, 1024, 1024, False, True, "float32"),
    ("W3 1024->1024 dW = dY^T.X", 1024, 1024, 256, True, False, "float32"),
    ("W3 1024->1024 dX = dY.W", 256, 1024, 1024, False, False, "float32"),
    ("W4 2048->1024 fwd X.W^T", 32, 1024, 2048, False, True, "float32"),
    ("W4 2048->1024 dW = dY^T.X", 1024, 2048, 32, True, False, "float32"),
    ("skinny 128x256 . (10x256)^T", 128, 10, 256, False, True, "float32"),
    ("float64 square 512", 512, 512, 512, False, False, "float64"),
    ("float64 square 1024", 1024, 1024, 1024, False, False, "float64"),
    ("float64 W3 1024->1024 fwd", 256, 1024, 1024, False, True, "float64"),
    ("float64 W3 1024->1024 dW = dY^T.X", 1024, 1024, 256, True, False, "float64"),
]
GEMM_QUICK = {"square 256", "skinny 128x256 . (10x256)^T", "float64 square 512"}


def run_gemm(threads: int, repeats: int, quick: bool, settle: float,
             log: Callable[[str], None]) -> list[tuple[str, list[float], list[float]]]:
    """GFLOP/s of backpropx's GEMM and NumPy's @ per shape, alternated A B A B."""
    from backpropx import _core

    rows = []
    rng = np.random.default_rng(0)
    with set_threads(threads):
        for name, M, N, K, ta, tb, dtype in GEMM_SHAPES:
            if quick and name not in GEMM_QUICK:
                continue
            a = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
            b = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
            ours = getattr(_core, f"gemm_{dtype}")
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            if not np.allclose(ours(a, b, ta, tb), opa @ opb, rtol=1e-3, atol=1e-3 * np.sqrt(K)):
                raise SystemExit(f"gemm {name}: backpropx's result differs from NumPy's")
            calls = max(1, int(2e8 // (2 * M * N * K))) if not quick else 1
            flops = 2.0 * M * N * K * calls

            def mine() -> None:
                for _ in range(calls):
                    ours(a, b, ta, tb)

            def numpy_() -> None:
                for _ in range(calls):
                    opa @ opb

            mine(), numpy_()  # warm-up
            got: dict[str, list[float]] = {"bx": [], "np": []}
            for r in range(repeats):
                for who, fn in ((("bx", mine), ("np", numpy_)) if r % 2 == 0 else (("np", numpy_), ("bx", mine))):
                    got[who].append(flops / timed(fn, settle) / 1e9)
            log(f"gemm {name} threads={threads}: bx {statistics.median(got['bx']):.1f} GFLOP/s, "
                f"numpy {statistics.median(got['np']):.1f}")
            rows.append((name, got["bx"], got["np"]))
    return rows


def fmt_rate(v: float) -> str:
    return f"{v / 1e3:.1f}k" if v < 1e6 else f"{v / 1e6:.2f}M"


def cell(values: list[float] | None) -> str:
    if not values:
        return "–"
    return f"{fmt_rate(statistics.median(values))} [{fmt_rate(min(values))}–{fmt_rate(max(values))}]"


def ratio_cell(mine: list[float] | None, theirs: list[float] | None) -> str:
    if not mine or not theirs:
        return "–"
    paired = [a / b for a, b in zip(mine, theirs)]
    med = statistics.median(mine) / statistics.median(theirs)
    return f"{med:.2f} [{min(paired):.2f}–{max(paired):.2f}]"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def versions() -> str:
    parts = [f"numpy {np.__version__}"]
    for mod in ("torch", "sklearn", "threadpoolctl"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            parts.append(f"{mod} not installed")
    return ", ".join(parts)


def blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl missing)"
    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '-')})"
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(libs) or "none found"


def build_type_check() -> str:
    """Exit on a Debug build; return a note on what was checked."""
    build = bx.config()["build_type"]
    if str(build).lower() == "debug":
        sys.exit(f"refusing to benchmark: backpropx is a {build} build (BENCH.md: never time a Debug build)")
    return f"build type: {build}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat on tiny data: a smoke run for CI")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per peer (default 5; 1 with --quick)")
    ap.add_argument("--settle", type=float, default=None,
                    help="untimed pause in seconds before each timed run (default 0.1; 0 with --quick)")
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown report to this file")
    ap.add_argument("--no-gemm", action="store_true", help="skip the GEMM comparison with NumPy's @")
    ap.add_argument("--kernel", default=None,
                    help="force backpropx's GEMM kernel (generic, avx2, avx512); to compare like with like, "
                         "force OpenBLAS's too: OPENBLAS_CORETYPE=Haswell python bench/compare.py --kernel avx2")
    args = ap.parse_args(argv)
    if args.kernel is not None:
        try:
            bx.set_kernel(args.kernel)
        except ValueError as e:
            ap.error(str(e))

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; expected some of {list(WORKLOADS)}")
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads must be a comma list of integers, got {args.threads!r}")
    if not threads or min(threads) < 1:
        ap.error("--threads needs positive integers")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    if repeats < 1:
        ap.error("--repeats must be at least 1")
    settle = args.settle if args.settle is not None else (0.0 if args.quick else 0.1)

    build_note = build_type_check()
    peers, notes = available_peers()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = datetime.datetime.now().astimezone()
    load_before = loadavg()
    wall = time.perf_counter()
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    loads: dict[tuple[str, int], str] = {}
    for name in workloads:
        for t in threads:
            loads[(name, t)] = loadavg().split()[0]
            results[(name, t)] = run_case(name, t, peers, repeats, args.quick, settle, log)
    gemm_results = {}
    if not args.no_gemm:
        for t in threads:
            gemm_results[t] = run_gemm(t, repeats, args.quick, settle, log)
    wall = time.perf_counter() - wall

    others = [p for p in PEER_ORDER if p != "backpropx" and p in peers]
    shown = ["backpropx", *others]
    lines = [
        "# backpropx vs peers" + (" (--quick smoke run: tiny data, numbers meaningless)" if args.quick else ""),
        "",
        "Generated by `python bench/compare.py"
        + ("".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))) + "`.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M %Z}; run took {wall:.0f} s",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores "
        f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), {platform.machine()}",
        f"- shared machine: other processes may be using the CPU; load average before {load_before}, "
        f"after {loadavg()}",
        f"- backpropx: {bx.config()}; {build_note}",
        f"- {versions()}; BLAS: {blas()}; Python {platform.python_version()}",
        f"- protocol: float32, 1 warm-up epoch, {repeats} timed repeat(s) per peer interleaved (rotating order), "
        f"{settle:g} s untimed pause before each; "
        "samples/s median [min–max]; ratio = backpropx median / peer median [min–max of paired repeats]; "
        ">1 means backpropx is faster; load = 1-minute load average when the row started "
        "(this process included), a hint of how busy the machine was",
        "- sizes: " + "; ".join(
            f"{w} {'-'.join(map(str, WORKLOADS[w]['sizes']))} batch {WORKLOADS[w]['batch']}, "
            f"{WORKLOADS[w]['opt'][0]} {WORKLOADS[w]['opt'][1]}, "
            + (f"{INFER_CALLS['quick' if args.quick else 'full']} forward passes per repeat" if w.endswith("-infer")
               else f"{WORKLOADS[w]['quick' if args.quick else 'samples']:,} samples")
            for w in workloads),
    ]
    lines += [f"- note: {n}" for n in notes]
    lines += [
        "",
        "| workload | threads | load | " + " | ".join(shown) + " | " + " | ".join(f"bx/{p}" for p in others) + " |",
        "|---|---:|---:|" + "---:|" * (len(shown) + len(others)),
    ]
    for (name, t), rates in results.items():
        bxr = rates.get("backpropx")
        row = [name, str(t), loads[(name, t)]] + [cell(rates.get(p)) for p in shown] + [ratio_cell(bxr, rates.get(p)) for p in others]
        lines.append("| " + " | ".join(row) + " |")
    if gemm_results:
        lines += [
            "",
            "## GEMM: backpropx's kernel vs NumPy's `@` (OpenBLAS)",
            "",
            f"GFLOP/s (2 M N K per product) median [min–max], {repeats} repeat(s) alternated; "
            f"kernel {bx.get_kernel()}; ratio = backpropx / NumPy.",
            "",
            "| product | threads | backpropx GFLOP/s | NumPy GFLOP/s | ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for t, rows in gemm_results.items():
            for name, mine, theirs in rows:
                lines.append(f"| {name} | {t} | {statistics.median(mine):.1f} [{min(mine):.1f}–{max(mine):.1f}] | "
                             f"{statistics.median(theirs):.1f} [{min(theirs):.1f}–{max(theirs):.1f}] | "
                             f"{statistics.median(mine) / statistics.median(theirs):.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # sections other scripts own (conv_compare.py's) survive a rewrite
        kept = re.findall(r"\n<!-- [\w.]+: begin -->.*?<!-- [\w.]+: end -->\n", args.out.read_text(), re.S) \
            if args.out.exists() else []
        args.out.write_text(report + "".join(kept))
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
