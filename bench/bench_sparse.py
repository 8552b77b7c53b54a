"""Sparse input: backpropx.sklearn.MLPClassifier vs scikit-learn's on a TF-IDF-like CSR matrix.

    python bench/bench_sparse.py                        # full run, prints a markdown section
    python bench/bench_sparse.py --quick                # smoke run (small data, 1 repeat), numbers meaningless
    python bench/bench_sparse.py --append bench/RESULTS.md   # replaces its marked section there

Workload: 20,000 training rows x 50,000 features at 0.1 % density (50
entries per row, uniform columns, values U(0, 1)), float64 CSR; 10 classes
from a sparse linear teacher (argmax of X T, T normal); a hidden layer of
256 relu units; Adam (lr 1e-3), batch 'auto' (200), alpha 1e-4, the
estimators' defaults. Both keep X sparse: scikit-learn multiplies it with
scipy.sparse (its weight gradient is a dense 50,000 x 256 matrix per batch),
backpropx with its sparse x dense kernels in C++. Both update all 12.8 M
weights every batch (Adam, and the L2 term touches every weight).

Protocol (bench/BENCH.md): same parameters and random_state, hence
the same initial weights. The first ``partial_fit`` (initialisation and one
epoch) is the untimed warm-up; each timed repeat is one more
``partial_fit`` epoch of every estimator, the starting one alternating, all
in one process; cells are medians [min-max] of seconds per epoch and of
training samples/s; ratio = scikit-learn's median over backpropx's (> 1:
backpropx is faster), [min-max] over paired repeats. ``predict`` on 5,000
held-out rows is timed the same way (5 calls per repeat). The held-out
accuracy after the last epoch shows both learned alike. Threads:
backpropx's ``n_threads`` and threadpoolctl's limit on BLAS are set to the
same count (scipy's sparse product is single-threaded).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import backpropx as bx
from backpropx.sklearn import MLPClassifier

SECTION_BEGIN = "<!-- bench_sparse.py: begin -->"
SECTION_END = "<!-- bench_sparse.py: end -->"


def make_data(n: int, n_test: int, features: int, per_row: int, seed: int = 0):
    """CSR rows with `per_row` entries at uniform columns (duplicates summed), labels 0..9."""
    rng = np.random.default_rng(seed)
    rows = n + n_test
    cols = np.sort(rng.integers(0, features, size=(rows, per_row)), axis=1)
    X = sp.csr_matrix((rng.random(rows * per_row), cols.ravel(), np.arange(0, rows * per_row + 1, per_row)),
                      shape=(rows, features))
    X.sum_duplicates()
    teacher = sp.random(features, 10, density=0.2, random_state=seed, format="csr")
    y = np.asarray((X @ teacher).toarray().argmax(axis=1))
    return X[:n], X[n:], y[:n], y[n:]


def cell(values: list[float], fmt: str = "{:.3g}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def timed(fn: Any) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(threads: int, repeats: int, quick: bool) -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_limits

    n, features = (2_000, 5_000) if quick else (20_000, 50_000)
    Xtr, Xte, ytr, yte = make_data(n, n // 4, features, max(1, features // 1000))
    classes = np.arange(10)
    params = dict(hidden_layer_sizes=(256,), random_state=0)
    models = {
        "sklearn": SkMLPClassifier(**params),
        "bx float64": MLPClassifier(**params, n_threads=threads),
        "bx float32": MLPClassifier(**params, n_threads=threads, dtype="float32"),
    }
    order = list(models)
    fit_s: dict[str, list[float]] = {k: [] for k in order}
    predict_s: dict[str, list[float]] = {k: [] for k in order}
    with threadpool_limits(limits=threads):
        for key in order:  # warm-up: initialisation and the first epoch
            models[key].partial_fit(Xtr, ytr, classes=classes)
            models[key].predict(Xte)
        for r in range(repeats):
            for key in order[r % len(order):] + order[:r % len(order)]:
                model = models[key]
                fit_s[key].append(timed(lambda m=model: m.partial_fit(Xtr, ytr)))
                predict_s[key].append(timed(lambda m=model: [m.predict(Xte) for _ in range(5)]) / 5)
    rows = []
    for key in order:
        fit_ratio = [s / t for s, t in zip(fit_s["sklearn"], fit_s[key])]
        pred_ratio = [s / t for s, t in zip(predict_s["sklearn"], predict_s[key])]
        rows.append({
            "threads": threads, "estimator": key, "epoch": cell(fit_s[key]),
            "samples": cell([n / t for t in fit_s[key]], "{:.0f}"),
            "ratio": "–" if key == "sklearn" else
            f"{statistics.median(fit_s['sklearn']) / statistics.median(fit_s[key]):.2f} "
            f"[{min(fit_ratio):.2f}–{max(fit_ratio):.2f}]",
            "predict": cell([1e3 * t for t in predict_s[key]]),
            "predict_ratio": "–" if key == "sklearn" else
            f"{statistics.median(predict_s['sklearn']) / statistics.median(predict_s[key]):.2f} "
            f"[{min(pred_ratio):.2f}–{max(pred_ratio):.2f}]",
            "accuracy": f"{models[key].score(Xte, yte):.4f}",
            "epochs": repeats + 1,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--append", help="append the section to this markdown file")
    args = ap.parse_args(argv)
    if str(bx.config().get("build_type", "")).lower() == "debug":
        sys.exit("refusing to benchmark a Debug build (BENCH.md)")
    repeats = 1 if args.quick else args.repeats
    load = lambda: " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"  # noqa: E731
    import sklearn

    load_before, start = load(), time.perf_counter()
    rows: list[dict[str, Any]] = []
    for threads in (int(t) for t in args.threads.split(",")):
        rows.extend(run(threads, repeats, args.quick))
        print(f"threads={threads} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    cfg = bx.config()
    lines = [
        "## Sparse input (scikit-learn's MLPClassifier, CSR X)",
        "",
        "Generated by `python bench/bench_sparse.py` (see its docstring for the protocol): 20,000 x 50,000 "
        "CSR at 0.1 % density, 10 classes, hidden (256,) relu, Adam, batch 200, both estimators keeping X "
        f"sparse; {repeats} timed `partial_fit` epochs per estimator after a warm-up epoch, alternated; "
        "epoch seconds and training samples/s median [min–max]; speed-up = sklearn median / backpropx median "
        "[min–max of paired repeats]; predict = ms per `predict` of 5,000 held-out rows; accuracy on them "
        f"after {repeats + 1} epochs.",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} logical cores, "
        f"{platform.machine()}; **shared machine** (other sessions were compiling and testing): load average "
        f"{load_before} before, {load()} after; run took {time.perf_counter() - start:.0f} s",
        f"- backpropx {cfg.get('version')} (kernel {cfg.get('kernel')}, build {cfg.get('build_type', 'n/a')}), "
        f"scikit-learn {sklearn.__version__}, scipy {scipy.__version__}, numpy {np.__version__}, "
        f"Python {platform.python_version()}",
        "",
        "| threads | estimator | epoch s | samples/s | speed-up | predict ms | speed-up | accuracy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['estimator']} | {r['epoch']} | {r['samples']} | {r['ratio']} | "
                     f"{r['predict']} | {r['predict_ratio']} | {r['accuracy']} |")
    text = "\n".join([SECTION_BEGIN, *lines, SECTION_END]) + "\n"
    print(text)
    if args.append:  # replaces this script's marked section, which compare.py's rewrite keeps
        path = Path(args.append)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if SECTION_BEGIN in old and SECTION_END in old:
            head, rest = old.split(SECTION_BEGIN, 1)
            new = head + text.rstrip("\n") + rest.split(SECTION_END, 1)[1]
        else:
            new = old + ("\n" if old else "") + text
        path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
