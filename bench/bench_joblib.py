"""Thread oversubscription under joblib: GridSearchCV(n_jobs=2) over backpropx's
MLPClassifier, with the core honouring the OMP_NUM_THREADS that joblib's
workers get (one thread each on two cores) against every worker running one
thread per core (what backpropx did before it read OMP_NUM_THREADS; forced
here with BACKPROPX_NUM_THREADS).

    python bench/bench_joblib.py                 # 5 alternated repeats, prints a markdown table
    python bench/bench_joblib.py --repeats 1     # smoke run

Protocol (bench/BENCH.md): each repeat runs both variants, alternating which
goes first, each in a fresh process (the workers' environment is fixed when
they start): one untimed warm-up search that starts the workers and imports
everything, then one timed ``search.fit``. Cells are the median seconds with
[min-max]; the ratio is oversubscribed over honoured (>1: honouring
OMP_NUM_THREADS is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SEARCH = """
import time, warnings
import backpropx as bx
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from backpropx.sklearn import MLPClassifier

X, y = bx.load_digits()
X = X / 16
search = GridSearchCV(MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=15, random_state=0),
                      {"alpha": [1e-4, 1e-3, 1e-2, 1e-1]}, cv=3, n_jobs=2)
warnings.simplefilter("ignore", ConvergenceWarning)
search.fit(X, y)                      # warm-up: starts the workers
start = time.perf_counter()
search.fit(X, y)
print(time.perf_counter() - start, search.best_score_)
"""

VARIANTS = {
    "honours OMP_NUM_THREADS (1 thread per worker)": {},
    "ignores it (2 threads per worker, as before)": {"BACKPROPX_NUM_THREADS": "2"},
}


def run(extra_env: dict[str, str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "BACKPROPX_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", SEARCH], env={**env, **extra_env}, capture_output=True,
                          text=True, timeout=600, check=True)
    return float(proc.stdout.split()[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    names = list(VARIANTS)
    times: dict[str, list[float]] = {name: [] for name in names}
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    for r in range(args.repeats):
        for name in names[r % 2:] + names[:r % 2]:
            times[name].append(run(VARIANTS[name]))
    print(f"GridSearchCV(n_jobs=2), 4 x 3 fits of MLPClassifier((256, 128), max_iter=15) on the digits; "
          f"{os.cpu_count()} cores, load average at start {load}, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| backpropx in the workers | seconds, median [min-max] |")
    print("|---|---|")
    for name in names:
        t = times[name]
        print(f"| {name} | {statistics.median(t):.2f} [{min(t):.2f}-{max(t):.2f}] |")
    ratios = [b / a for a, b in zip(times[names[0]], times[names[1]])]
    print(f"\nratio (as before / now): {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
