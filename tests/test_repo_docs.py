"""The repository's documents stand on their own: every file they point at is
inside the repository, and what they say about the package is still true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "bench").glob("*.md")), *sorted((ROOT / "bench").glob("*.py")),
        *sorted((ROOT / "bench").glob("*.cpp"))]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_points_outside_the_repository(path):
    text = path.read_text()
    assert "/work/" not in text and "../shared" not in text


def test_the_benchmark_protocol_lives_in_bench():
    protocol = (ROOT / "bench" / "BENCH.md").read_text()
    for workload in ("W1", "W2", "W3", "W4"):
        assert f"| {workload} |" in protocol
    assert "Debug" in protocol and "median" in protocol
    readme = (ROOT / "bench" / "README.md").read_text()
    assert "[`BENCH.md`](BENCH.md)" in readme
    # Every markdown link in bench/README.md and README.md resolves.
    for doc in (ROOT / "bench" / "README.md", ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_build_type_is_exposed_as_bench_readme_says():
    import backpropx as bx

    assert bx.config()["build_type"] in ("Release", "RelWithDebInfo", "Debug", "MinSizeRel")
    assert "not expose" not in (ROOT / "bench" / "README.md").read_text()
    proc = subprocess.run([sys.executable, "-m", "backpropx", "info"], capture_output=True, text=True,
                          timeout=60)
    assert re.search(r"^build_type\s+\w+", proc.stdout, re.M), proc.stdout


def test_install_hints_work_from_a_checkout():
    """No hint names a package index entry ("backpropx[plot]" is not on PyPI):
    hints name the dependency itself or the checkout's extra ('.[plot]')."""
    for path in [*(ROOT / "python" / "backpropx").rglob("*.py"), *(ROOT / "examples").glob("*.py"), ROOT / "README.md",
                 ROOT / "bench" / "README.md"]:
        text = path.read_text()
        assert not re.search(r"pip install ['\"]?backpropx\[", text), path
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in re.findall(r"pip install ['\"]\.\[(\w+)\]['\"]", (ROOT / "README.md").read_text()):
        assert name in extras, name
