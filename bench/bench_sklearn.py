"""backpropx.sklearn vs sklearn.neural_network at equal settings: fit time and test score.

    python bench/bench_sklearn.py                      # full run, prints a markdown section
    python bench/bench_sklearn.py --quick              # smoke run (1 repeat, small data), numbers meaningless
    python bench/bench_sklearn.py --append bench/RESULTS.md

Cases (each a held-out 25 % test split, seed 0):

- ``digits``: bx.load_digits() / 16 (1,797 x 64, 10 classes), MLPClassifier defaults:
  hidden (100,), relu, adam lr 1e-3, batch 'auto' (200), max_iter 200, tol 1e-4.
- ``clf20k``: make_classification(20,000 x 100, 10 classes, 30 informative features),
  standardised, hidden (100,), max_iter 30.
- ``reg20k``: make_regression(20,000 x 100), standardised X and y, MLPRegressor,
  hidden (100,), max_iter 30.
- ``digits-lbfgs``: the digits case with ``solver="lbfgs"`` (SciPy's L-BFGS-B in
  both; max_iter 200 iterations, tol 1e-4). Same initial weights and the same
  optimizer: the two runs take the same iterations to rounding, so the
  fit-time ratio is the ratio of the cost of one full-batch evaluation.

Both estimators get the same parameters and random_state (repeat r uses
random_state=r), hence the same initial weights; they stop by the same rule
(tol / n_iter_no_change) but shuffle with different generators, so their epoch counts may differ: the
table gives both and the per-epoch time ratio besides the fit-time ratio.
backpropx runs in float64 (its default for float64 input, the precision
scikit-learn uses) and, in a second row, with dtype='float32'.

Protocol (bench/BENCH.md): one untimed warm-up fit of each, then
``--repeats`` timed fits per estimator, interleaved (the starting estimator
alternates), all in one process; cells are medians with [min-max]; ratios
are scikit-learn's median over backpropx's (>1: backpropx is faster), with
[min-max] over the per-repeat paired ratios. Threads: backpropx's
``n_threads`` and threadpoolctl's limit on OpenBLAS (which scikit-learn's
MLP uses) are set to the same count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler

import backpropx as bx
from backpropx.sklearn import MLPClassifier, MLPRegressor

CASES: dict[str, dict[str, Any]] = {
    "digits": {"kind": "clf", "params": {}},
    "clf20k": {"kind": "clf", "params": {"max_iter": 30}},
    "reg20k": {"kind": "reg", "params": {"max_iter": 30}},
    "digits-lbfgs": {"kind": "clf", "params": {"solver": "lbfgs"}},
}


def make_case(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if name.startswith("digits"):
        X, y = bx.load_digits()
        X = X / 16.0
    elif name == "clf20k":
        n = 2_000 if quick else 20_000
        X, y = make_classification(n_samples=n, n_features=100, n_informative=30, n_redundant=10,
                                   n_classes=10, class_sep=1.5, random_state=0)
        X = StandardScaler().fit_transform(X)
    else:
        n = 2_000 if quick else 20_000
        X, y = make_regression(n_samples=n, n_features=100, n_informative=30, noise=10.0, random_state=0)
        X = StandardScaler().fit_transform(X)
        y = (y - y.mean()) / y.std()
    return bx.train_test_split(X, y, test_fraction=0.25, seed=0)


def thread_limit(n: int) -> contextlib.AbstractContextManager[Any]:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def timed_fit(est: Any, X: np.ndarray, y: np.ndarray) -> float:
    gc.collect()
    start = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - start


def cell(values: list[float], fmt: str = "{:.3g}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def run_case(name: str, threads: int, repeats: int, quick: bool) -> list[dict[str, Any]]:
    Xtr, Xte, ytr, yte = make_case(name, quick)
    spec = CASES[name]
    params = dict(spec["params"])
    if quick:
        params["max_iter"] = 5
    sk_cls, bx_cls = (SkMLPClassifier, MLPClassifier) if spec["kind"] == "clf" else (SkMLPRegressor, MLPRegressor)
    # Repeat r fits every estimator with random_state=r (the same initial weights for all
    # three), so the scores are medians over 5 seeds, not one seed's luck.
    makers = {
        "sklearn": lambda seed: sk_cls(**params, random_state=seed),
        "bx float64": lambda seed: bx_cls(**params, random_state=seed, n_threads=threads),
        "bx float32": lambda seed: bx_cls(**params, random_state=seed, n_threads=threads, dtype="float32"),
    }
    times: dict[str, list[float]] = {k: [] for k in makers}
    iters: dict[str, list[int]] = {k: [] for k in makers}
    scores: dict[str, list[float]] = {k: [] for k in makers}
    order = list(makers)
    with thread_limit(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for key in order:  # warm-up
            makers[key](0).fit(Xtr, ytr)
        for r in range(repeats):
            rot = order[r % len(order):] + order[:r % len(order)]
            for key in rot:
                est = makers[key](r)
                times[key].append(timed_fit(est, Xtr, ytr))
                iters[key].append(est.n_iter_)
                scores[key].append(float(est.score(Xte, yte)))
    rows = []
    sk_t = times["sklearn"]
    sk_per_epoch = statistics.median(t / i for t, i in zip(sk_t, iters["sklearn"]))
    for key in order:
        paired = [s / t for s, t in zip(sk_t, times[key])]
        per_epoch = statistics.median(t / i for t, i in zip(times[key], iters[key]))
        rows.append({
            "case": name, "threads": threads, "estimator": key,
            "n": Xtr.shape[0], "fit": cell(times[key]),
            "epochs": f"{statistics.median(iters[key]):g}",
            "score": f"{statistics.median(scores[key]):.4f}",
            "ratio": "–" if key == "sklearn" else
            f"{statistics.median(sk_t) / statistics.median(times[key]):.1f} [{min(paired):.1f}–{max(paired):.1f}]",
            "epoch_ratio": "–" if key == "sklearn" else f"{sk_per_epoch / per_epoch:.1f}",
        })
    return rows


def machine() -> list[str]:
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    import sklearn
    from threadpoolctl import threadpool_info

    blas = ", ".join(f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                     if i.get("user_api") == "blas") or "none found"
    cfg = bx.config()
    return [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} logical cores, "
        f"{platform.machine()}; load average at start {load}",
        f"- backpropx {cfg.get('version')} (kernel {cfg.get('kernel')}, build {cfg.get('build_type', 'n/a')}), "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, BLAS {blas}, Python {platform.python_version()}",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--append", help="append the section to this markdown file")
    args = ap.parse_args(argv)
    build = str(bx.config().get("build_type", "")).lower()
    if build == "debug":
        sys.exit("refusing to benchmark a Debug build (BENCH.md)")
    repeats = 1 if args.quick else args.repeats
    header = machine()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for name in args.cases.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            rows.extend(run_case(name, threads, repeats, args.quick))
            print(f"{name} threads={threads} done ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    lines = [
        "## scikit-learn estimators" + ("" if args.cases == ",".join(CASES) else f" ({args.cases})"),
        "",
        "Generated by `python bench/bench_sklearn.py` (see its docstring for the protocol): "
        "`backpropx.sklearn.MLPClassifier` / `MLPRegressor` against scikit-learn's at equal parameters "
        f"and random_state (repeat r: random_state=r), {repeats} timed fits each after a warm-up, "
        "interleaved; fit seconds median [min–max]; speed-up = sklearn median / backpropx median "
        "[min–max of paired repeats]; "
        "per-epoch = the same on seconds per epoch; score = median test accuracy (classifiers) or R² "
        "(regressor) on a held-out 25 %, over the repeats' seeds.",
        "",
        *header,
        f"- run took {time.perf_counter() - start:.0f} s",
        "- cases: digits 1,348 train x 64, MLPClassifier defaults (hidden (100,), adam, batch 200, "
        "max_iter 200, tol 1e-4); clf20k make_classification 15,000 train x 100, 10 classes, max_iter 30; "
        "reg20k make_regression 15,000 train x 100, max_iter 30; digits-lbfgs the digits case with "
        "solver='lbfgs' (epochs = L-BFGS iterations); hidden (100,) everywhere",
        "",
        "| case | threads | estimator | fit s | epochs | score | speed-up | per-epoch |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['threads']} | {r['estimator']} | {r['fit']} | {r['epochs']} | "
                     f"{r['score']} | {r['ratio']} | {r['epoch_ratio']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
