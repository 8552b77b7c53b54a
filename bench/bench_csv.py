"""Reading a large CSV for the command line: backpropx.tabular's readers (pyarrow's
and our own) against pandas.read_csv, time and peak memory.

    python bench/bench_csv.py                    # 1,000,000 rows x 20 columns (~200 MB), 3 repeats
    python bench/bench_csv.py --rows 100000 --repeats 1

Protocol (bench/BENCH.md): the file is written once; every measurement runs
in a fresh process (so peak RSS is that reader's), the readers alternate
within a repeat, starting from a different one each time. Cells are the
median seconds [min-max] and the median peak RSS of the process; ratios are
against pandas in the same run. pandas and pyarrow are optional; a missing
one is skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# name -> (imports, untimed; the read, timed)
READ = {
    "backpropx (pyarrow)": ("from backpropx.tabular import read_csv; import pyarrow.csv, pyarrow.compute",
                            "n = read_csv(PATH, reader='pyarrow').n_rows"),
    "backpropx (python)": ("from backpropx.tabular import read_csv", "n = read_csv(PATH, reader='python').n_rows"),
    "pandas.read_csv": ("import pandas", "n = len(pandas.read_csv(PATH))"),
    # The command line's reader before backpropx.tabular (commit 01f9cae), with --old-reader.
    "old CLI reader": ("sys.path.insert(0, OLD); from old_cli import load_data",
                       "n = load_data(PATH, 'label', need_target=True).X.shape[0]"),
}

RUN = """
import resource, sys, time
PATH, OLD = sys.argv[1], sys.argv[2]
{setup}
start = time.perf_counter()
{read}
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)
"""


def write_table(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write(",".join(f"x{j}" for j in range(cols - 1)) + ",label\n")
        for start in range(0, rows, 100_000):
            m = min(100_000, rows - start)
            block = rng.standard_normal((m, cols - 1))
            lines = [",".join(f"{v:.6g}" for v in r) + f",{k}" for r, k in zip(block, rng.integers(0, 10, m))]
            f.write("\n".join(lines) + "\n")


def available(name: str) -> bool:
    module = {"backpropx (pyarrow)": "pyarrow", "pandas.read_csv": "pandas"}.get(name)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old-reader", action="store_true", help="also the reader before (from git: 01f9cae)")
    args = ap.parse_args(argv)
    names = [n for n in READ if available(n) and (args.old_reader or n != "old CLI reader")]
    skipped = [n for n in READ if not available(n)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        write_table(path, args.rows, args.cols)
        if args.old_reader:
            old = subprocess.run(["git", "show", "01f9cae:python/backpropx/cli.py"], capture_output=True, text=True,
                                 check=True, cwd=Path(__file__).parent).stdout
            (Path(tmp) / "old_cli.py").write_text(old)
        size = path.stat().st_size
        results: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
        load = os.getloadavg()[0]
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                proc = subprocess.run([sys.executable, "-c", RUN.format(setup=READ[name][0], read=READ[name][1]), str(path), tmp],
                                      capture_output=True, text=True, check=True, timeout=1800)
                seconds, rss_kb, n = proc.stdout.split()
                assert int(n) == args.rows, (name, n)
                results[name].append((float(seconds), int(rss_kb)))
    print(f"{args.rows:,} rows x {args.cols} columns ({size / 2**20:.0f} MiB), {args.repeats} repeats, "
          f"{os.cpu_count()} cores, load average {load:.1f} at start, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| reader | seconds, median [min-max] | peak RSS, MiB | time / pandas |")
    print("|---|---|---|---|")
    base = statistics.median(t for t, _ in results["pandas.read_csv"]) if "pandas.read_csv" in results else None
    for name in names:
        times = [t for t, _ in results[name]]
        rss = statistics.median(m for _, m in results[name]) / 1024
        ratio = f"{statistics.median(times) / base:.2f}" if base else "n/a"
        print(f"| {name} | {statistics.median(times):.2f} [{min(times):.2f}-{max(times):.2f}] | {rss:.0f} | {ratio} |")
    for name in skipped:
        print(f"\n{name} skipped: not installed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
