"""Runs crash_risky_properties.py in a child process, so that a crash in the
C++ core is a failed test with its traceback (faulthandler), not a dead runner."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_crash_risky_properties_in_a_child_process():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(HERE / "crash_risky_properties.py")],
                          capture_output=True, text=True, timeout=1800, cwd=HERE.parents[1], env=dict(os.environ))
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{report}"
    assert " passed" in proc.stdout and "2 passed" in proc.stdout, report
