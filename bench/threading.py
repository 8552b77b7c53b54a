"""The core's own thread pool against OpenMP (as it comes, and tuned), on the same products and epochs.

    python bench/threading.py                 # both parts, prints a markdown report
    python bench/threading.py --quick         # CI smoke run (seconds)

Each backend runs in processes of its own (BACKPROPX_THREADING, and for
"openmp passive" OMP_WAIT_POLICY=passive, OpenMP tuned for a shared machine),
in rotating order: in one process, OpenMP's idle threads keep spinning for a
while after each region and would take the core that the pool's helper needs.

1. Products: per-call times of two-thread GEMMs of training sizes (about
   0.1 to 2 ms each), on a quiet machine and while another process spins on
   one core (the case where a helper thread gets descheduled). Reported: the
   median, the 99th percentile and the share of calls slower than 3x the
   median ("stalls").
2. Training: samples/s of compare.py's W1 and W4 networks at two threads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import backpropx as bx
from backpropx import _core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import WORKLOADS, cpu_model, loadavg, make_data  # noqa: E402
from peers import BackpropxPeer  # noqa: E402

# name: the environment of its processes. "openmp passive": OpenMP tuned for a
# shared machine, its idle threads sleeping at once instead of spinning.
BACKENDS: dict[str, dict[str, str]] = {
    "pool": {"BACKPROPX_THREADING": "pool"},
    "openmp": {"BACKPROPX_THREADING": "openmp"},
    "openmp passive": {"BACKPROPX_THREADING": "openmp", "OMP_WAIT_POLICY": "passive"},
}
# (name, M, N, K, trans_a, trans_b): W1's and W4's products
PRODUCTS = [
    ("W1 fwd 128x256x784", 128, 256, 784, False, True),
    ("W4 fwd 32x1024x2048", 32, 1024, 2048, False, True),
    ("W4 dW 1024x2048x32", 1024, 2048, 32, True, False),
    ("square 192", 192, 192, 192, False, False),
]


def spin(stop: mp.Event) -> None:  # another process's work on one core
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def product_times(calls: int, busy: bool) -> dict[str, list[float]]:
    rng = np.random.default_rng(0)
    stop = mp.Event()
    spinner = mp.Process(target=spin, args=(stop,), daemon=True) if busy else None
    if spinner:
        spinner.start()
        time.sleep(0.2)
    out: dict[str, list[float]] = {}
    try:
        for name, M, N, K, ta, tb in PRODUCTS:
            a = rng.standard_normal((K, M) if ta else (M, K)).astype(np.float32)
            b = rng.standard_normal((N, K) if tb else (K, N)).astype(np.float32)
            _core.gemm_float32(a, b, ta, tb)  # warm-up
            out[name] = []
            for _ in range(calls):
                t = time.perf_counter()
                _core.gemm_float32(a, b, ta, tb)
                out[name].append(time.perf_counter() - t)
    finally:
        if spinner:
            stop.set()
            spinner.join()
    return out


def training(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in ("W1", "W4"):
        spec = WORKLOADS[name]
        n = spec["quick"] if quick else min(spec["samples"], 10_000)
        X, y = make_data(name, n)
        peer = BackpropxPeer(spec["sizes"], spec["batch"], X, y, optimizer=spec["opt"])
        peer.epoch()  # warm-up
        t = time.perf_counter()
        peer.epoch()
        out[name] = n / (time.perf_counter() - t)
    return out


def one_process(calls: int, quick: bool) -> dict[str, object]:
    """This process's measurements, with the backend BACKPROPX_THREADING chose."""
    bx.set_num_threads(2)
    return {"backend": _core.get_threading(), "quiet": product_times(calls, False),
            "busy": product_times(calls, True), "train": training(quick)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few calls: a smoke run for CI")
    ap.add_argument("--calls", type=int, default=None, help="calls per product and process (default 200)")
    ap.add_argument("--repeats", type=int, default=None, help="processes per backend (default 4)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    calls = args.calls or (4 if args.quick else 200)
    repeats = args.repeats or (1 if args.quick else 4)
    if calls < 1 or repeats < 1:
        ap.error("--calls and --repeats must be at least 1")
    if args.child:
        print(json.dumps(one_process(calls, args.quick)))
        return 0
    load_before = loadavg()
    runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    names = list(BACKENDS)
    for r in range(repeats):
        for backend in names[r % len(names):] + names[:r % len(names)]:  # rotating order
            cmd = [sys.executable, __file__, "--child", "--calls", str(calls)] + (["--quick"] if args.quick else [])
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env.update(BACKENDS[backend])
            got = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            assert got["backend"] == BACKENDS[backend]["BACKPROPX_THREADING"], got["backend"]
            runs[backend].append(got)
    lines = ["# Thread pool vs OpenMP" + (" (--quick smoke run, numbers meaningless)" if args.quick else ""), "",
             f"Generated by `python bench/threading.py{''.join(' ' + a for a in (argv if argv is not None else sys.argv[1:]))}`.",
             "",
             f"- CPU: {cpu_model()}, two threads, kernel {bx.get_kernel()}; load average before {load_before}, "
             f"after {loadavg()}",
             f"- {repeats} process(es) per backend, in rotating order; {calls} calls per product and process; "
             "stall = a call over 3x the product's median (over all of that backend's calls)", ""]
    for case, title in (("quiet", "no other work started"), ("busy", "another process spinning on one core")):
        lines += [f"## Products, {title}", "", "| product | backend | median us | p99 us | stalls |",
                  "|---|---|---:|---:|---:|"]
        for name, *_ in PRODUCTS:
            for backend in BACKENDS:
                ts = [t for run in runs[backend] for t in run[case][name]]
                med = statistics.median(ts)
                stalls = sum(t > 3 * med for t in ts) / len(ts)
                lines.append(f"| {name} | {backend} | {med * 1e6:.0f} | {np.percentile(ts, 99) * 1e6:.0f} | "
                             f"{stalls:.1%} |")
        lines.append("")
    lines += ["## Training, two threads (samples/s per process: median [min-max])", "",
              "| workload | " + " | ".join(BACKENDS) + " | pool/openmp |", "|---|" + "---:|" * (len(BACKENDS) + 1)]
    for name in ("W1", "W4"):
        rates = {b: [run["train"][name] for run in runs[b]] for b in BACKENDS}
        cells = [f"{statistics.median(v):,.0f} [{min(v):,.0f}-{max(v):,.0f}]" for v in rates.values()]
        ratio = statistics.median(rates["pool"]) / statistics.median(rates["openmp"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
