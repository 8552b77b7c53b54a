"""Threads, kernel choice and build information."""

from __future__ import annotations

import os
import platform

from . import _core
from .threads import get_num_threads, set_num_threads, thread_source

__all__ = ["config", "get_kernel", "get_num_threads", "set_kernel", "set_num_threads", "show_config",
           "supported_kernels"]


def get_kernel() -> str:
    """The GEMM kernel in use: "avx512", "avx2" or "generic"."""
    return str(_core.get_kernel())


def set_kernel(name: str) -> None:
    """Force a GEMM kernel ("generic", "avx2", "avx512"); ValueError if this CPU lacks it.

    The environment variable BACKPROPX_KERNEL does the same at import time.
    """
    if name not in ("generic", "avx2", "avx512"):
        raise ValueError(f"unknown kernel {name!r}; expected one of: generic, avx2, avx512")
    _core.set_kernel(name)


def supported_kernels() -> list[str]:
    """The GEMM kernels this CPU can run, e.g. ["generic", "avx2", "avx512"]."""
    return list(_core.supported_kernels())


def config() -> dict[str, object]:
    """Version, compiler, kernel in use and supported, threads, CPUs, machine and Python, as a dict."""
    return {
        "version": _core.__version__,
        "compiler": _core.compiler,
        "build_type": _core.build_type,
        "kernel": get_kernel(),
        "supported_kernels": supported_kernels(),
        "threads": get_num_threads(),
        "threads_from": thread_source(),
        "threading": _core.get_threading(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def show_config() -> None:
    """Print version, compiler, selected kernel and threads."""
    for key, value in config().items():
        print(f"{key:18} {value}")
